"""No secret in the DEBUG log, the spans or the CLI's output of a run with session credentials.

The emulator knows a key with a secret access key and a session token
(``register_credentials``). A run with them, in process and through the CLI's entry point
(``eks_async._cli.main``), with faults that force retries, a wait, EKS Auth, and a
request signed with a wrong secret (the emulator then quotes its canonical request, session
token included, as EKS does) is captured whole: every log record of every logger at DEBUG,
every span the SDK exports, and stdout/stderr. Neither secret, nor any signature sent,
nor a bearer token appears in any of it.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import attrs
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import eks_async
from eks_async._auth.sigv4 import SigV4Signer
from eks_async._cli import main
from eks_async.testing import (
    Delays,
    EKSEmulator,
    Exchange,
    Fault,
    ManualClock,
    run_emulator_server,
)

from ._telemetry_support import everything, spans
from .test_telemetry import eks_auth_run

__all__ = ["spans"]

ACCESS_KEY = "ASIASECRETSCANTEST01"
SECRET_KEY = "secret-scan-secret-key-0123456789ABCDEFGHIJ"
WRONG_SECRET = "secret-scan-wrong-key-0123456789ABCDEFGHIJK"
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLXdlc3QtMiJHMEUCIQD+secret/scan/token=="
ROLE = "arn:aws:iam::123456789012:role/app"


class Seen:
    """What the scan looks for besides the two secrets: every signature sent, every echo."""

    def __init__(self) -> None:
        self.signatures: list[str] = []
        self.echoed = 0

    def exchange(self, exchange: Exchange) -> None:
        if TOKEN in exchange.response.body.decode("utf-8", "replace"):
            self.echoed += 1


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Seen:
    record = Seen()
    original = SigV4Signer.sign_headers

    def sign_headers(self: SigV4Signer, **kwargs: Any) -> None:
        original(self, **kwargs)
        record.signatures.append(kwargs["headers"]["Authorization"].rsplit("Signature=", 1)[1])

    monkeypatch.setattr(SigV4Signer, "sign_headers", sign_headers)
    return record


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="eks_async"):
        yield caplog


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        if record.exc_info and record.exc_info[1] is not None:
            parts.append(repr(record.exc_info[1]))
    return "\n".join(parts) + caplog.text


def _assert_clean(text: str, seen: Seen, *others: str) -> None:
    assert seen.signatures, "nothing was signed: the scan saw nothing"
    for secret in (SECRET_KEY, WRONG_SECRET, TOKEN, *seen.signatures, *others):
        for form in {secret, quote(secret, safe="")}:
            assert form not in text
    assert "k8s-aws-v1." not in text.replace("k8s-aws-v1.<redacted>", "")


def _emulator(seen: Seen, **settings: Any) -> EKSEmulator:
    emulator = EKSEmulator(seed=21, **settings)
    emulator.add_cluster("prod")
    emulator.register_credentials(ACCESS_KEY, SECRET_KEY, session_token=TOKEN)
    emulator.add_listener(seen.exchange)
    return emulator


async def test_an_in_process_run_shows_no_secret(
    seen: Seen, spans: InMemorySpanExporter, everything_logged: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    emulator = _emulator(seen, clock=clock, delays=attrs.evolve(Delays.none(), association_create=2.0))
    emulator.script("DescribeCluster", Fault.THROTTLE, times=1)
    emulator.script("ListClusters", Fault.DROP_AFTER, times=1)
    emulator.script("CreatePodIdentityAssociation", Fault.SERVER_ERROR, times=1)
    with eks_async.instant_retries():
        async with emulator.client(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            aws_session_token=TOKEN,
        ) as eks:
            await eks.describe_cluster(name="prod")
            await eks.list_clusters()
            token = (await eks.get_token(cluster_name="prod")).token
            out = await eks.create_pod_identity_association(
                cluster_name="prod", namespace="ns", service_account="sa", role_arn=ROLE
            )
            assert out.association is not None
            await eks.waiters.pod_identity_association_visible(
                cluster_name="prod", association_id=out.association.association_id,
                config=eks_async.WaiterConfig(
                    clock=clock.monotonic, sleep=clock.sleep, rng=random.Random(2).random,
                    min_delay=1.0, max_delay=4.0, max_wait=60.0,
                ),
            )
        # Signed with a wrong secret: EKS quotes its canonical request, the token in it.
        async with emulator.client(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=WRONG_SECRET,
            aws_session_token=TOKEN,
        ) as wrong:
            with pytest.raises(eks_async.ServiceError) as caught:
                await wrong.describe_cluster(name="prod")
            logging.getLogger("eks_async").debug("the call failed", exc_info=caught.value)
        # EKS Auth: a pod's token in, a role's credentials out.
        pod_token, auth, _ = await eks_auth_run(emulator)
        async with auth:
            creds = (await auth.assume_role_for_pod_identity(
                cluster_name="prod", token=pod_token)).credentials
    assert creds is not None
    assert seen.echoed >= 1, "the emulator did not echo the token: the scan proves less"
    assert caught.value.code == "InvalidSignatureException"
    names = {s.name for s in spans.get_finished_spans()}
    assert {"EKS.DescribeCluster", "EKS.CreatePodIdentityAssociation",
            "wait pod_identity_association_visible", "EKS Auth.AssumeRoleForPodIdentity"} <= names
    log = _log_text(everything_logged)
    assert "attempt 2: HTTP 200" in log and "poll 1:" in log
    secrets = (token, pod_token, creds.secret_access_key, creds.session_token)
    _assert_clean(log, seen, *secrets)
    _assert_clean(everything(spans), seen, *secrets)


def test_a_cli_run_shows_no_secret(
    seen: Seen,
    spans: InMemorySpanExporter,
    everything_logged: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE",
                 "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    emulator = _emulator(seen, time_scale=5000.0)
    emulator.script("DescribeCluster", Fault.THROTTLE, times=1)
    emulator.script("CreatePodIdentityAssociation", Fault.UNAVAILABLE, times=1)
    outputs: list[str] = []
    codes: list[int] = []
    with run_emulator_server(emulator) as server:
        base = ["--region", "us-west-2", "--endpoint-url", server.url]
        for argv in (
            ["call", "DescribeCluster", '{"name": "prod"}'],
            ["call", "DescribeCluster", '{"name": "nope"}'],
            ["pod-identity", "create", "--cluster-name", "prod", "--namespace", "ns",
             "--service-account", "sa", "--role-arn", ROLE, "--wait"],
            ["pod-identity", "list", "--cluster-name", "prod"],
        ):
            codes.append(main([*base, *argv]))
            out, err = capsys.readouterr()
            outputs += [out, err]
        # A wrong secret: the refusal quotes the canonical request, and the CLI prints it.
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", WRONG_SECRET)
        codes.append(main([*base, "call", "ListClusters", "{}"]))
        out, err = capsys.readouterr()
        outputs += [out, err]
    assert codes == [0, 1, 0, 0, 1], outputs
    assert json.loads(outputs[0])["cluster"]["name"] == "prod"
    assert "InvalidSignatureException" in outputs[-1]
    assert seen.echoed >= 1
    assert any(s.name == "wait pod_identity_association_visible"
               for s in spans.get_finished_spans())
    log = _log_text(everything_logged)
    assert "DescribeCluster: attempt 2: HTTP 200, request id" in log
    text = "\n".join(outputs)
    _assert_clean(text, seen)
    _assert_clean(log, seen)
    _assert_clean(everything(spans), seen)
