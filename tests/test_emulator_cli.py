"""``python -m eks_async.testing``: an emulator in its own process, driven over HTTP."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import boto3
import httpx
import pytest

from eks_async.testing import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY
from eks_async.testing.__main__ import main

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
