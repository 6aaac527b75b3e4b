"""`eks-async token` (kubectl's exec plugin) and `eks-async kubeconfig`."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from eks_async._cli import exec_api_version, main
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    EKSEmulator,
    run_emulator_server,
)


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_ACCESS_KEY)
    monkeypatch.delenv("KUBERNETES_EXEC_INFO", raising=False)


def _decode(token: str) -> str:
    assert token.startswith("k8s-aws-v1.") and "=" not in token
    raw = token[len("k8s-aws-v1."):]
    return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()


@pytest.mark.parametrize(
    ("exec_info", "expected", "note"),
    [
        (None, "client.authentication.k8s.io/v1beta1", False),
        ('{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential"}',
         "client.authentication.k8s.io/v1", False),
        ('{"apiVersion": "client.authentication.k8s.io/v1beta1"}',
         "client.authentication.k8s.io/v1beta1", False),
        ("{not json", "client.authentication.k8s.io/v1beta1", True),
        ('{"apiVersion": "client.authentication.k8s.io/v9"}',
         "client.authentication.k8s.io/v1beta1", True),
    ],
)
def test_token_prints_an_exec_credential_for_each_exec_info(
    creds: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    exec_info: str | None, expected: str, note: bool,
) -> None:
    if exec_info is not None:
        monkeypatch.setenv("KUBERNETES_EXEC_INFO", exec_info)
    assert main(["--region", "us-west-2", "token", "--cluster-name", "prod"]) == 0
    out, err = capsys.readouterr()
    credential = json.loads(out)
    assert credential["kind"] == "ExecCredential"
    assert credential["apiVersion"] == expected
    assert credential["spec"] == {}
    status = credential["status"]
    assert status["expirationTimestamp"].endswith("Z") and len(status["expirationTimestamp"]) == 20
    url = urlsplit(_decode(status["token"]))
    assert url.netloc == "sts.us-west-2.amazonaws.com"
    query = parse_qs(url.query)
    assert query["Action"] == ["GetCallerIdentity"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0]
    assert bool(err.strip()) is note
    assert TEST_SECRET_ACCESS_KEY not in out + err


def test_exec_api_version_notes_go_to_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_EXEC_INFO", "[]")
    stream = io.StringIO()
    assert exec_api_version(stream) == "client.authentication.k8s.io/v1beta1"
    assert "unknown apiVersion" in stream.getvalue()


@pytest.fixture
def server(creds: None) -> Iterator[tuple[EKSEmulator, str]]:
    emulator = EKSEmulator(time_scale=5000.0)
    emulator.add_cluster("prod")
    with run_emulator_server(emulator) as srv:
        yield emulator, srv.url


EXISTING = {
    "apiVersion": "v1",
    "kind": "Config",
    "preferences": {"colors": True},
    "clusters": [{"name": "other", "cluster": {"server": "https://other.example",
                                               "insecure-skip-tls-verify": True}}],
    "contexts": [{"name": "other", "context": {"cluster": "other", "user": "someone",
                                               "namespace": "kube-system"}}],
    "users": [{"name": "someone", "user": {"token": "abc"}}],
    "current-context": "other",
}


def test_kubeconfig_merges_keeps_other_entries_and_its_exec_entry_works(
    server: tuple[EKSEmulator, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = server
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(EXISTING), encoding="utf-8")
    command = f"{sys.executable} -m eks_async"
    argv = ["--region", "us-west-2", "--endpoint-url", url, "kubeconfig",
            "--cluster-name", "prod", "--kubeconfig", str(path), "--exec-command", command]
    assert main(argv) == 0
    assert main(argv) == 0  # twice: replaced, not duplicated
    capsys.readouterr()
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for key in ("clusters", "contexts", "users"):
        assert config[key][0] == EXISTING[key][0]  # untouched
        assert len(config[key]) == 2
    assert config["preferences"] == EXISTING["preferences"]
    arn = config["current-context"]
    assert arn.startswith("arn:aws:eks:us-west-2:") and arn.endswith(":cluster/prod")
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == arn)
    assert cluster["server"].startswith("https://")
    user = next(u["user"] for u in config["users"] if u["name"] == arn)
    exec_entry = user["exec"]
    # What kubectl does: run the command the entry names and read its ExecCredential.
    env = {**os.environ, "KUBERNETES_EXEC_INFO": json.dumps(
        {"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential"})}
    result = subprocess.run([exec_entry["command"], *exec_entry["args"]], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    credential = json.loads(result.stdout)
    assert credential["apiVersion"] == exec_entry["apiVersion"]
    assert "x-k8s-aws-id" in _decode(credential["status"]["token"])
