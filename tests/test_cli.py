"""The eks-async command line against the emulator's HTTP server, and the demo."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eks_async._cli import Progress, main
from eks_async._waiters.engine import WaitProgress
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    EKSEmulator,
    run_emulator_server,
)

ROOT = Path(__file__).resolve().parent.parent
ROLE = "arn:aws:iam::111122223333:role/app"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[EKSEmulator, list[str]]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_ACCESS_KEY)
    emulator = EKSEmulator(time_scale=5000.0)
    emulator.add_cluster("prod")
    with run_emulator_server(emulator) as srv:
        yield emulator, ["--region", "us-west-2", "--endpoint-url", srv.url]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_pod_identity_lifecycle_with_json_output(
    server: tuple[EKSEmulator, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, base = server
    code, out, err = run(capsys, *base, "pod-identity", "create", "--cluster-name", "prod",
                         "--namespace", "ns", "--service-account", "sa", "--role-arn", ROLE,
                         "--tag", "team=payments", "--wait")
    assert code == 0, err
    created = json.loads(out)["association"]
    assert created["roleArn"] == ROLE and created["tags"] == {"team": "payments"}
    assoc_id = created["associationId"]
    assert "pod_identity_association_visible" in err  # one plain line per poll, no terminal
    assert "\x1b" not in err

    code, out, _ = run(capsys, *base, "pod-identity", "describe", "--cluster-name", "prod",
                       "--association-id", assoc_id)
    assert code == 0 and json.loads(out)["association"]["associationId"] == assoc_id

    code, out, _ = run(capsys, *base, "pod-identity", "list", "--cluster-name", "prod",
                       "--namespace", "ns")
    assert [a["associationId"] for a in json.loads(out)["associations"]] == [assoc_id]

    code, out, _ = run(capsys, *base, "--output", "table", "pod-identity", "list",
                       "--cluster-name", "prod")
    assert code == 0 and assoc_id in out and "serviceAccount" in out

    code, out, err = run(capsys, *base, "pod-identity", "update", "--cluster-name", "prod",
                         "--association-id", assoc_id, "--role-arn", ROLE + "-v2", "--wait")
    assert code == 0, err
    assert json.loads(out)["association"]["roleArn"] == ROLE + "-v2"

    code, out, err = run(capsys, *base, "pod-identity", "delete", "--cluster-name", "prod",
                         "--association-id", assoc_id, "--wait")
    assert code == 0, err
    code, out, err = run(capsys, *base, "pod-identity", "describe", "--cluster-name", "prod",
                         "--association-id", assoc_id)
    assert code == 1
    assert "ResourceNotFoundException" in err and "request id" in err


def test_identity_provider_and_update_commands(
    server: tuple[EKSEmulator, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, base = server
    code, out, err = run(capsys, *base, "idp", "associate", "--cluster-name", "prod",
                         "--name", "okta", "--issuer-url", "https://example.okta.com",
                         "--client-id", "kubernetes")
    assert code == 0, err
    update_id = json.loads(out)["update"]["id"]
    code, out, err = run(capsys, *base, "update", "wait", "--cluster-name", "prod",
                         "--update-id", update_id)
    assert code == 0, err
    assert json.loads(out)["update"]["status"] == "Successful"
    assert "update_successful: Successful" in err
    code, out, _ = run(capsys, *base, "update", "describe", "--cluster-name", "prod",
                       "--update-id", update_id)
    assert json.loads(out)["update"]["type"] == "AssociateIdentityProviderConfig"
    code, out, _ = run(capsys, *base, "idp", "list", "--cluster-name", "prod")
    assert json.loads(out)["identityProviderConfigs"] == [{"type": "oidc", "name": "okta"}]
    code, out, _ = run(capsys, *base, "idp", "describe", "--cluster-name", "prod", "--name", "okta")
    assert json.loads(out)["identityProviderConfig"]["oidc"]["status"] == "ACTIVE"
    code, out, err = run(capsys, *base, "idp", "disassociate", "--cluster-name", "prod",
                         "--name", "okta", "--wait")
    assert code == 0, err
    assert "identity_provider_config_deleted" in err
    # associate --wait follows the update to Successful, then waits until the config is ACTIVE.
    code, out, err = run(capsys, *base, "idp", "associate", "--cluster-name", "prod",
                         "--name", "okta2", "--issuer-url", "https://example.okta.com",
                         "--client-id", "kubernetes", "--wait")
    assert code == 0, err
    assert json.loads(out)["update"]["type"] == "AssociateIdentityProviderConfig"
    assert "update_successful: Successful" in err
    assert "identity_provider_config_active" in err
    code, out, _ = run(capsys, *base, "idp", "describe", "--cluster-name", "prod", "--name", "okta2")
    assert json.loads(out)["identityProviderConfig"]["oidc"]["status"] == "ACTIVE"


def test_call_any_operation_and_errors(
    server: tuple[EKSEmulator, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, base = server
    code, out, _ = run(capsys, *base, "call", "ListClusters", "{}")
    assert code == 0 and json.loads(out)["clusters"] == ["prod"]
    code, out, _ = run(capsys, *base, "call", "DescribeCluster", '{"name": "prod"}')
    assert json.loads(out)["cluster"]["name"] == "prod"
    code, _, err = run(capsys, *base, "call", "DescribeCluster", '{"name": "nope"}')
    assert code == 1 and "ResourceNotFoundException" in err
    code, _, err = run(capsys, *base, "call", "DescribeCluster", "{not json")
    assert code == 2 and "not JSON" in err
    code, _, err = run(capsys, *base, "call", "DescribeCluster", '{"nam": "prod"}')
    assert code == 2 and "nam" in err
    code, _, err = run(capsys, *base, "call", "NoSuchOperation")
    assert code == 2


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["pod-identity", "create", "--cluster-name", "prod"])
    assert info.value.code == 2
    assert "--namespace" in capsys.readouterr().err


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_a_live_line_on_a_terminal_and_plain_lines_otherwise() -> None:
    events = [
        WaitProgress(waiter="w", attempt=1, elapsed=0.0, state="InProgress", next_delay=5.0),
        WaitProgress(waiter="w", attempt=2, elapsed=5.0, state="Successful", next_delay=None),
    ]
    tty, plain = _Tty(), io.StringIO()
    for stream in (tty, plain):
        progress = Progress(stream)
        for event in events:
            progress(event)
    assert tty.getvalue().count("\r\x1b[2K") == 2 and tty.getvalue().endswith("\n")
    assert "next poll in 5.0s" in tty.getvalue()
    lines = plain.getvalue().splitlines()
    assert len(lines) == 2 and "\x1b" not in plain.getvalue()
    assert "poll 2" in lines[1] and "done" in lines[1]


def test_demo_runs_and_prints_the_timeline() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        [sys.executable, "-m", "eks_async", "demo", "--fast"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for text in ("1. Create a cluster", "update_successful: Successful",
                 "pod_identity_association_visible: visible", "Summary", "retries absorbed",
                 "3. Give a CI role access", "CreateAccessEntry ci-deployer",
                 "AssociateAccessPolicy AmazonEKSEditPolicy",
                 "access_entry_effective: allowed after",
                 "Kubernetes (as ci-deployer): create 4 service accounts",
                 "pod_identity_association_effective: effective after",
                 "waiters.pod_identity_association_effective (the new role)"):
        assert text in result.stdout
    # Each "effective" wait ends once, in order: the access entry before any association.
    out = result.stdout
    assert out.count("pod_identity_association_effective: effective after") == 5
    assert out.index("access_entry_effective: allowed") < out.index("4. Create pod identity")
    assert "8. Disassociate the identity provider" in out


async def test_demo_without_kubernetes_endpoints_leaves_the_effective_waits_out(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from eks_async import _demo

    monkeypatch.setattr(_demo, "_kubernetes_served", lambda emulator: False)
    await _demo.run_demo(argparse.Namespace(fast=True))
    out = capsys.readouterr().out
    assert "the access entry and the 'effective' waits are left out" in out
    assert "pod_identity_association_visible: visible" in out and "Summary" in out
    assert "_effective" not in out.replace("the 'effective' waits", "")


@pytest.mark.skipif(
    os.environ.get("EKS_ASYNC_SKIP_VENV_TEST") == "1", reason="asked to skip the fresh venv"
)
def test_readme_demo_command_on_a_fresh_virtual_environment(tmp_path: Path) -> None:
    """The README's first command, run as written (in a copy, with a new venv)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = next(line for line in readme.splitlines() if line.startswith("python3 -m venv"))
    assert "demo" in command
    # A copy of the project without its own .venv, so the venv the command makes is new.
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(
        ".venv", ".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
        ".hypothesis", "*.egg-info", "benchmarks"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIRTUAL_ENV"))}
    result = subprocess.run(
        command.replace("eks-async demo", "eks-async demo --fast"), shell=True, cwd=project,
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Summary" in result.stdout and "update_successful: Successful" in result.stdout


def test_ctrl_c_while_waiting_stops_cleanly() -> None:
    import signal

    emulator = EKSEmulator(time_scale=1.0)  # EKS's real pace: the update takes 15+ minutes
    emulator.add_cluster("prod")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=TEST_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY=TEST_SECRET_ACCESS_KEY)
    with run_emulator_server(emulator) as srv:
        base = [sys.executable, "-m", "eks_async", "--region", "us-west-2",
                "--endpoint-url", srv.url]
        started = subprocess.run(
            [*base, "idp", "associate", "--cluster-name", "prod", "--name", "okta",
             "--issuer-url", "https://example.okta.com", "--client-id", "k8s"],
            env=env, capture_output=True, text=True, timeout=60, cwd=ROOT,
        )
        update_id = json.loads(started.stdout)["update"]["id"]
        proc = subprocess.Popen(
            [*base, "update", "wait", "--cluster-name", "prod", "--update-id", update_id],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )
        assert proc.stderr is not None
        first = proc.stderr.readline()  # the first poll's line: the wait is under way
        assert "update_successful: InProgress" in first
        proc.send_signal(signal.SIGINT)
        # A hang guard only: on a loaded machine the interpreter's exit alone can take long.
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert out == ""
