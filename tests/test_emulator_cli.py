"""``python -m eks_async.testing``: an emulator in its own process, driven over HTTP."""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import attrs
import boto3
import httpx
import pytest

from eks_async import EKSClient
from eks_async._cli import build_parser as cli_parser
from eks_async._emulator_cli import FAULT_FLAGS, build_parser, config_from_args, serve
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    DelayRange,
    Delays,
    EKSEmulator,
    EmulatorConfig,
    FaultRates,
    ManualClock,
    run_emulator_server,
)
from eks_async.testing.__main__ import main
from eks_async.testing._admin import _ROUTES
from eks_async.testing._config import RateLimit
from eks_async.testing._kube_tls import _crypto

from ._emulator_process import emulator_process
from ._emulator_support import ROLE, validate_emulator_responses  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


def test_the_module_serves_until_told_to_stop() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "eks_async.testing", "--port", "0", "--seed", "3", "--instant"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        # Generous timeouts: they only guard against a hang, and a loaded machine is slow.
        with httpx.Client(base_url=url, timeout=60) as http:
            assert http.get("/_emulator/health").json() == {"ok": True}
            assert http.get("/_emulator/config").json()["seed"] == 3
            http.post("/_emulator/clusters", json={"name": "prod"}).raise_for_status()
            unsigned = http.get("/clusters")
            assert unsigned.status_code == 403
            assert unsigned.headers["x-amzn-ErrorType"].startswith(
                "MissingAuthenticationTokenException:"
            )
        client = boto3.client(
            "eks",
            region_name="us-west-2",
            endpoint_url=url,
            aws_access_key_id=TEST_ACCESS_KEY_ID,
            aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
        )
        out = client.create_pod_identity_association(
            clusterName="prod", namespace="ns", serviceAccount="sa", roleArn=ROLE
        )
        listed = client.list_pod_identity_associations(
            clusterName="prod"
        )  # --instant: seen at once
        assert [a["associationId"] for a in listed["associations"]] == [
            out["association"]["associationId"]
        ]
        with httpx.Client(base_url=url, timeout=60) as http:
            counters = http.get("/_emulator/counters").json()
        assert counters["CreatePodIdentityAssociation"]["ok"] == 1
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        assert process.stderr is not None
        assert "AKIDEMULATOR" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_bad_arguments_are_reported(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--time-scale", "0"], ["--throttle-rate", "1.5"], ["--rate-limit", "10/0"],
                 ["--rate-limit", "fast"], ["--latency", "5:1"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2, argv
        assert argv[0] in capsys.readouterr().err
    # Each rate fine alone, together more than 1: the configuration refuses them.
    assert main(["--throttle-rate", "0.6", "--unavailable-rate", "0.6"]) == 2
    assert "add up to more than 1" in capsys.readouterr().err


# --- one definition for both commands -------------------------------------------------------


def _emulator_parser() -> argparse.ArgumentParser:
    """The parser of ``eks-async emulator`` (a sub-command of the eks-async parser)."""
    parser = cli_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    emulator: argparse.ArgumentParser = sub.choices["emulator"]
    return emulator


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def test_both_commands_take_the_same_flags_and_help_lists_them_all() -> None:
    module = build_parser()
    command = _emulator_parser()
    assert _flags(module) == _flags(command)
    flags = _flags(command) - {"-h", "--help"}
    for wanted in ("--port", "--host", "--seed", "--time-scale", "--instant", "--cluster",
                   "--throttle-rate", "--error-rate", "--unavailable-rate", "--rate-limit",
                   "--no-verify-signatures", "--latency"):
        assert wanted in flags
    shown = command.format_help()
    assert all(flag in shown for flag in flags), flags - {f for f in flags if f in shown}
    # Every fault rate of FaultRates has its flag (latency has --latency).
    assert set(FAULT_FLAGS) == {a.name for a in attrs.fields(FaultRates)} - {"latency"}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert all(f"`{flag}" in readme for flag in flags), [f for f in flags if f"`{f}" not in readme]


def test_the_flags_make_the_configuration() -> None:
    parser = build_parser()
    args = parser.parse_args([
        "--seed", "7", "--time-scale", "60", "--throttle-rate", "0.1", "--error-rate", "0.2",
        "--drop-after-rate", "0.05", "--fail-update-rate", "0.5", "--latency", "0.5:2",
        "--throttle-code", "TooManyRequestsException", "--rate-limit", "5/10",
        "--no-verify-signatures", "--cluster", "prod", "--cluster", "dev",
    ])
    assert args.cluster == ["prod", "dev"]
    assert config_from_args(args) == EmulatorConfig(
        seed=7,
        time_scale=60,
        faults=FaultRates(throttle=0.1, server_error=0.2, drop_after=0.05, fail_update=0.5,
                          latency=DelayRange(low=0.5, high=2)),
        throttle_code="TooManyRequestsException",
        rate_limit=RateLimit(rate=5, burst=10),
        verify_signatures=False,
    )
    plain = config_from_args(parser.parse_args(["--instant", "--rate-limit", "2.5"]))
    assert plain.delays == Delays.none()
    assert plain.rate_limit == RateLimit(rate=2.5)  # RateLimit's own burst
    assert plain.faults == FaultRates() and plain.verify_signatures
    assert config_from_args(parser.parse_args([])) == EmulatorConfig()


def _exported(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        if line.strip().startswith("export "):
            key, _, value = line.strip().removeprefix("export ").partition("=")
            found[key] = value
    return found


async def test_eks_async_emulator_starts_with_clusters_and_says_how_to_reach_them() -> None:
    flags = ("--cluster", "prod", "--cluster", "dev", "--time-scale", "60",
             "--rate-limit", "1000/100", "--seed", "5")
    with emulator_process(*flags) as served:
        lines = served.stderr_until("stop with Ctrl-C")
        exported = _exported(lines)
        assert exported == {
            "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": "us-west-2",
        }
        admin = next(line for line in lines if line.startswith("admin API: "))
        admin_url = admin.removeprefix("admin API: ")
        assert admin_url == f"{served.url}/_emulator/"
        named = {}
        for line in lines:
            if line.startswith("cluster ") and ": Kubernetes endpoint " in line:
                name, _, endpoint = line.removeprefix("cluster ").partition(
                    ": Kubernetes endpoint ")
                named[name] = endpoint
        assert set(named) == {"prod", "dev"}
        assert "time scale 60" in lines[0] and "rate limit 1000/s (burst 100)" in lines[0]

        async with EKSClient(
            region=exported["AWS_DEFAULT_REGION"],
            endpoint_url=served.url,
            aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
        ) as eks:
            for name in ("prod", "dev"):
                cluster = (await eks.describe_cluster(name=name)).cluster
                assert cluster is not None
                assert cluster.status == "ACTIVE"  # at once, not after EKS's 10 minutes
                assert cluster.endpoint == named[name]
                assert cluster.certificate_authority and cluster.certificate_authority.data
            listed = await eks.list_clusters()
            assert sorted(listed.clusters or []) == ["dev", "prod"]
        with httpx.Client(base_url=admin_url, timeout=60) as http:
            assert http.get("health").json() == {"ok": True}
            config = http.get("config").json()
        assert config["time_scale"] == 60 and config["seed"] == 5
        assert served.stop(signal.SIGTERM) == 0


async def test_without_cryptography_it_serves_the_eks_api_and_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography", None)  # as if it were not installed
    with pytest.raises(ImportError, match=re.escape('pip install "eks-async[emulator]"')):
        _crypto()
    out, err = io.StringIO(), io.StringIO()
    stop = asyncio.Event()
    args = build_parser().parse_args(["--cluster", "prod", "--instant"])
    task = asyncio.create_task(serve(config_from_args(args), host="127.0.0.1", port=0,
                                     clusters=args.cluster, stdout=out, stderr=err, stop=stop))
    try:
        async with asyncio.timeout(60):
            while "stop with Ctrl-C" not in err.getvalue():
                await asyncio.sleep(0.01)
        url = out.getvalue().splitlines()[0]
        async with EKSClient(region="us-west-2", endpoint_url=url,
                             aws_access_key_id=TEST_ACCESS_KEY_ID,
                             aws_secret_access_key=TEST_SECRET_ACCESS_KEY) as eks:
            cluster = (await eks.describe_cluster(name="prod")).cluster
            assert cluster is not None and cluster.status == "ACTIVE"
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    told = [r.getMessage() for r in caplog.records if "eks-async[emulator]" in r.getMessage()]
    assert len(told) == 1, told  # once, as it starts
    assert "cryptography" in told[0]
    assert "cluster prod: ACTIVE, no Kubernetes endpoint" in err.getvalue()


def test_the_readme_shows_every_admin_call_and_each_works() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    calls = [shlex.split(line, comments=True) for line in readme.splitlines()
             if line.startswith("curl -s $URL/_emulator/")]
    shown = set()
    emulator = EKSEmulator(clock=ManualClock())
    with run_emulator_server(emulator) as server, httpx.Client(timeout=60) as http:
        for argv in calls:
            url = argv[2].replace("$URL", server.url)
            data = argv[argv.index("-d") + 1] if "-d" in argv else None
            method = "POST" if data is not None else "GET"
            answer = http.request(method, url, content=data)
            assert answer.status_code == 200, (argv, answer.text)
            shown.add((method, url.removeprefix(f"{server.url}/_emulator/")))
    assert shown == set(_ROUTES)
