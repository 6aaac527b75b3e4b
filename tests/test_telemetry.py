"""OpenTelemetry spans, checked with the SDK's in-memory exporter against the emulator.

A span per call (``EKS.DescribeCluster``, kind CLIENT, the AWS SDK conventions' attributes),
an event per attempt and per wait before a retry (rate-limiter waits included), status
ERROR with ``error.type`` on failure; a span per waiter with an event per poll, holding the
spans of its calls; EKS Auth calls alike. With the API absent, or present with no tracer
provider, nothing of it is imported or called.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import eks_async
from eks_async import _telemetry
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    Delays,
    EKSEmulator,
    Fault,
    ManualClock,
)
from eks_async.testing._wire import EmulatorRequest

from . import _internals
from ._telemetry_support import events, named, spans

__all__ = ["spans"]

ROOT = Path(__file__).resolve().parent.parent
ROLE = "arn:aws:iam::123456789012:role/app"
POD_AUDIENCE = "pods.eks.amazonaws.com"


@pytest.fixture(autouse=True)
def _instant() -> Iterator[None]:
    with eks_async.instant_retries():
        yield


def _emulator(**settings: object) -> EKSEmulator:
    emulator = EKSEmulator(seed=3, clock=ManualClock(), delays=Delays.none(), **settings)  # type: ignore[arg-type]
    emulator.add_cluster("prod")
    return emulator


async def test_a_call_is_one_client_span_with_the_aws_sdk_attributes(
    spans: InMemorySpanExporter,
) -> None:
    async with _emulator().client() as eks:
        out = await eks.describe_cluster(name="prod")
    (span,) = spans.get_finished_spans()
    assert span.name == "EKS.DescribeCluster"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "eks_async"
    assert span.instrumentation_scope.version == eks_async.__version__
    attributes = dict(span.attributes or {})
    assert attributes == {
        "rpc.system": "aws-api",
        "rpc.service": "EKS",
        "rpc.method": "DescribeCluster",
        "cloud.region": "us-west-2",
        "server.address": "eks.us-west-2.amazonaws.com",
        "server.port": 443,
        "aws.request_id": out.response_metadata.request_id,
        "http.response.status_code": 200,
        "eks_async.attempts": 1,
    }
    (attempt,) = events(span, "eks_async.attempt")
    assert attempt["eks_async.attempt"] == 1
    assert attempt["http.response.status_code"] == 200
    assert attempt["aws.request_id"] == out.response_metadata.request_id
    assert "error.type" not in attempt
    assert events(span, "eks_async.retry") == []


async def test_server_address_and_port_follow_the_endpoint(spans: InMemorySpanExporter) -> None:
    emulator = _emulator()
    async with emulator.serve() as url, eks_async.EKSClient(
        region="eu-west-1", endpoint_url=url, aws_access_key_id=TEST_ACCESS_KEY_ID,
        aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
    ) as eks:
        await eks.list_clusters()
    (span,) = spans.get_finished_spans()
    parts = urlsplit(url)
    assert span.attributes is not None
    assert span.attributes["server.address"] == parts.hostname
    assert span.attributes["server.port"] == parts.port
    assert span.attributes["cloud.region"] == "eu-west-1"


async def test_a_failed_call_has_status_error_and_the_error_code(
    spans: InMemorySpanExporter,
) -> None:
    async with _emulator().client() as eks:
        with pytest.raises(eks_async.ResourceNotFoundException) as caught:
            await eks.describe_cluster(name="nope")
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description is not None
    assert "ResourceNotFoundException" in span.status.description
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "ResourceNotFoundException"
    assert attributes["http.response.status_code"] == 404
    assert attributes["aws.request_id"] == caught.value.request_id
    assert attributes["eks_async.attempts"] == 1
    (attempt,) = events(span, "eks_async.attempt")
    assert attempt["error.type"] == "ResourceNotFoundException"


async def test_a_refused_parameter_is_a_failed_span_too(spans: InMemorySpanExporter) -> None:
    async with _emulator().client() as eks:
        with pytest.raises(eks_async.ParamValidationError):
            await eks.describe_cluster(name="")
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "ParamValidationError"
    assert events(span, "eks_async.attempt") == []  # nothing was sent
    assert "eks_async.attempts" not in span.attributes


async def test_retries_are_attempt_and_retry_events_of_the_one_span(
    spans: InMemorySpanExporter,
) -> None:
    emulator = _emulator()
    emulator.script("DescribeCluster", Fault.THROTTLE, times=1)
    emulator.script("DescribeCluster", Fault.SERVER_ERROR, times=1)
    seen: list[eks_async.RetryEvent] = []
    async with emulator.client(on_retry=seen.append) as eks:
        out = await eks.describe_cluster(name="prod")
    (span,) = spans.get_finished_spans()
    attempts = events(span, "eks_async.attempt")
    assert [a["eks_async.attempt"] for a in attempts] == [1, 2, 3]
    assert [a["http.response.status_code"] for a in attempts] == [429, 500, 200]
    assert [a.get("error.type") for a in attempts] == [
        "ThrottlingException", "ServerException", None,
    ]
    assert all(a["aws.request_id"] for a in attempts)
    assert attempts[-1]["aws.request_id"] == out.response_metadata.request_id
    retries = events(span, "eks_async.retry")
    assert retries == [
        {
            "eks_async.attempt": event.attempt,
            "eks_async.retry.kind": "backoff",
            "eks_async.retry.reason": event.reason,
            "eks_async.retry.delay_s": event.delay,
        }
        for event in seen
    ]
    assert [r["eks_async.attempt"] for r in retries] == [1, 2]
    # Events in the order they happened: attempt, wait, attempt, wait, attempt.
    assert [e.name for e in span.events] == [
        "eks_async.attempt", "eks_async.retry", "eks_async.attempt", "eks_async.retry",
        "eks_async.attempt",
    ]
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes is not None
    assert span.attributes["eks_async.attempts"] == 3
    assert span.attributes["http.response.status_code"] == 200


async def test_a_call_that_runs_out_of_attempts_ends_in_error(
    spans: InMemorySpanExporter,
) -> None:
    emulator = _emulator()
    emulator.script("DescribeCluster", Fault.UNAVAILABLE, times=5)
    async with emulator.client(retry=eks_async.RetryConfig(max_attempts=2)) as eks:
        with pytest.raises(eks_async.ServiceError):
            await eks.describe_cluster(name="prod")
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "ServiceUnavailableException"
    assert span.attributes["http.response.status_code"] == 503
    assert span.attributes["eks_async.attempts"] == 2
    assert len(events(span, "eks_async.attempt")) == 2
    assert len(events(span, "eks_async.retry")) == 1


async def test_a_dropped_connection_is_an_attempt_without_a_status(
    spans: InMemorySpanExporter,
) -> None:
    emulator = _emulator()
    emulator.script("ListClusters", Fault.DROP_BEFORE, times=1)
    async with emulator.client() as eks:
        await eks.list_clusters()
    (span,) = spans.get_finished_spans()
    first, second = events(span, "eks_async.attempt")
    assert "http.response.status_code" not in first
    assert first["error.type"] in ("TransportError", "ProtocolError")
    assert second["http.response.status_code"] == 200


async def test_a_rate_limiter_wait_is_a_retry_event(spans: InMemorySpanExporter) -> None:
    # Paced at 1000 requests/s on a clock that stands still, with one token left: the
    # first call takes it, the second waits a millisecond for the next.
    limiter = _internals.paced_limiter(1000.0, tokens=1.0)
    async with _emulator().client(retry=eks_async.RetryConfig(mode="adaptive")) as eks:
        _internals.install_rate_limiter(eks, limiter)
        await eks.list_clusters()  # the bucket's one token
        await eks.list_clusters()  # waits for the next
    first, second = named(spans, "EKS.ListClusters")
    assert events(first, "eks_async.retry") == []
    (wait,) = events(second, "eks_async.retry")
    assert wait["eks_async.retry.kind"] == "rate_limit"
    assert wait["eks_async.attempt"] == 1
    assert wait["eks_async.retry.delay_s"] > 0
    assert "requests/s" in str(wait["eks_async.retry.reason"])


async def test_an_iam_propagation_retry_is_a_retry_event_of_its_kind(
    spans: InMemorySpanExporter,
) -> None:
    # The emulator holds a role unknown for 5 s after it is first named.
    emulator = EKSEmulator(seed=3, clock=ManualClock(), delays=Delays.none(), role_propagation=5.0)
    emulator.add_cluster("prod")

    def moving(event: eks_async.RetryEvent) -> None:
        emulator.advance(event.delay)

    async with emulator.client(on_retry=moving) as eks:
        await eks.create_pod_identity_association(
            cluster_name="prod", namespace="ns", service_account="sa", role_arn=ROLE
        )
    (span,) = spans.get_finished_spans()
    attempts = events(span, "eks_async.attempt")
    retries = events(span, "eks_async.retry")
    assert len(attempts) == len(retries) + 1 >= 2
    assert {r["eks_async.retry.kind"] for r in retries} == {"iam_propagation"}
    assert {a.get("error.type") for a in attempts[:-1]} == {"InvalidParameterException"}
    assert span.status.status_code is StatusCode.UNSET


async def test_a_waiter_is_a_span_holding_its_polls_and_their_calls(
    spans: InMemorySpanExporter,
) -> None:
    clock = ManualClock()
    emulator = EKSEmulator(seed=9, clock=clock, delays=Delays(association_create=3.0))
    emulator.add_cluster("prod")
    polls: list[eks_async.WaitProgress] = []
    async with emulator.client() as eks:
        out = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="ns", service_account="sa", role_arn=ROLE
        )
        assert out.association is not None
        spans.clear()
        await eks.waiters.pod_identity_association_visible(
            cluster_name="prod", association_id=out.association.association_id,
            config=eks_async.WaiterConfig(
                clock=clock.monotonic, sleep=clock.sleep, rng=random.Random(1).random,
                min_delay=1.0, max_delay=5.0, max_wait=60.0,
            ),
            on_progress=polls.append,
        )
    (wait,) = named(spans, "wait pod_identity_association_visible")
    assert wait.kind is SpanKind.INTERNAL
    assert wait.status.status_code is StatusCode.UNSET
    assert wait.attributes is not None
    assert wait.attributes["eks_async.waiter"] == "pod_identity_association_visible"
    assert wait.attributes["eks_async.waiter.polls"] == len(polls) > 1
    got = events(wait, "eks_async.waiter.poll")
    assert [p["eks_async.waiter.poll"] for p in got] == [p.attempt for p in polls]
    assert [p["eks_async.waiter.state"] for p in got] == [p.state for p in polls]
    assert [p.get("eks_async.waiter.next_delay_s") for p in got] == [
        p.next_delay for p in polls
    ]
    assert got[-1]["eks_async.waiter.state"] == "visible"
    assert "eks_async.waiter.next_delay_s" not in got[-1]
    # The calls of the wait are its children.
    calls = [s for s in spans.get_finished_spans() if s is not wait]
    assert calls and all(s.kind is SpanKind.CLIENT for s in calls)
    assert all(s.parent is not None and s.parent.span_id == wait.context.span_id for s in calls)
    assert {s.name for s in calls} <= {
        "EKS.DescribePodIdentityAssociation", "EKS.ListPodIdentityAssociations",
    }


async def test_a_waiter_that_times_out_ends_in_error(spans: InMemorySpanExporter) -> None:
    clock = ManualClock()
    emulator = EKSEmulator(seed=9, clock=clock, delays=Delays.none())
    emulator.add_cluster("prod")
    async with emulator.client() as eks:
        with pytest.raises(eks_async.WaiterTimeoutError):
            await eks.waiters.pod_identity_association_visible(
                cluster_name="prod", association_id="a-doesnotexist0000",
                config=eks_async.WaiterConfig(
                    clock=clock.monotonic, sleep=clock.sleep, min_delay=1.0, max_delay=2.0,
                    max_wait=5.0,
                ),
            )
    (wait,) = named(spans, "wait pod_identity_association_visible")
    assert wait.status.status_code is StatusCode.ERROR
    assert wait.attributes is not None
    assert wait.attributes["error.type"] == "WaiterTimeoutError"
    got = events(wait, "eks_async.waiter.poll")
    assert len(got) == wait.attributes["eks_async.waiter.polls"] >= 2
    assert "eks_async.waiter.next_delay_s" not in got[-1]


def _pod_token(emulator: EKSEmulator, cluster_token: str, endpoint: str) -> str:
    endpoint_id = urlsplit(endpoint).netloc.split(".")[0]
    body = {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "spec": {"audiences": [POD_AUDIENCE], "expirationSeconds": 3600},
    }
    answer = emulator.handle_kubernetes(EmulatorRequest(
        method="POST",
        path=f"/k8s/{endpoint_id}/api/v1/namespaces/default/serviceaccounts/default/token",
        headers=(("Authorization", f"Bearer {cluster_token}"),
                 ("Content-Type", "application/json")),
        body=json.dumps(body).encode(),
    ))
    assert answer.status == 201, answer.body
    token: str = answer.json()["status"]["token"]
    return token


async def eks_auth_run(emulator: EKSEmulator) -> tuple[str, eks_async.EKSAuthClient, object]:
    """A pod token (an association gives its service account a role) and an EKS Auth client."""
    async with emulator.client() as eks:
        cluster_token = (await eks.get_token(cluster_name="prod")).token
        cluster = (await eks.describe_cluster(name="prod")).cluster
        assert cluster is not None and cluster.endpoint
        await eks.create_pod_identity_association(
            cluster_name="prod", namespace="default", service_account="default", role_arn=ROLE
        )
    emulator.advance(60.0)  # past any propagation delay of the emulator's
    token = _pod_token(emulator, cluster_token, cluster.endpoint)
    auth = eks_async.EKSAuthClient(
        region="us-west-2", aws_access_key_id=TEST_ACCESS_KEY_ID,
        aws_secret_access_key=TEST_SECRET_ACCESS_KEY, transport=emulator.transport(),
    )
    return token, auth, cluster_token


async def test_eks_auth_calls_are_spans_of_their_service(spans: InMemorySpanExporter) -> None:
    emulator = _emulator()
    token, auth, cluster_token = await eks_auth_run(emulator)
    spans.clear()
    async with auth:
        out = await auth.assume_role_for_pod_identity(cluster_name="prod", token=token)
        with pytest.raises(eks_async.ServiceError) as caught:
            await auth.assume_role_for_pod_identity(cluster_name="prod", token="not-a-token" * 4)
    ok, failed = named(spans, "EKS Auth.AssumeRoleForPodIdentity")
    assert ok.kind is SpanKind.CLIENT
    assert ok.attributes is not None and failed.attributes is not None
    assert ok.attributes["rpc.system"] == "aws-api"
    assert ok.attributes["rpc.service"] == "EKS Auth"
    assert ok.attributes["rpc.method"] == "AssumeRoleForPodIdentity"
    assert ok.attributes["server.address"] == "eks-auth.us-west-2.api.aws"
    assert ok.attributes["http.response.status_code"] == 200
    assert ok.attributes["aws.request_id"] == out.response_metadata.request_id
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == caught.value.code
    # Neither the pod's token nor the credentials EKS Auth handed out are in a span.
    from ._telemetry_support import everything

    text = everything(spans)
    creds = out.credentials
    assert creds is not None
    for secret in (token, cluster_token, creds.secret_access_key, creds.session_token):
        assert isinstance(secret, str) and secret not in text


# --- nothing of OpenTelemetry when it is off ------------------------------------------------

_BLOCKED = r"""
import asyncio, sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Block())
import eks_async
from eks_async import _telemetry
from eks_async.testing import EKSEmulator, ManualClock, Delays, Fault

async def main():
    emulator = EKSEmulator(clock=ManualClock(), delays=Delays.none())
    emulator.add_cluster("prod")
    emulator.script("DescribeCluster", Fault.THROTTLE, times=1)
    with eks_async.instant_retries():
        async with emulator.client() as eks:
            await eks.describe_cluster(name="prod")
            await eks.waiters.cluster_active(name="prod")
            try:
                await eks.describe_cluster(name="nope")
            except eks_async.ResourceNotFoundException:
                pass

asyncio.run(main())
assert _telemetry.tracer() is None
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
print("LOADED", loaded)
"""


def _python(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environ.update(env, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_with_the_extra_absent_nothing_of_opentelemetry_is_imported() -> None:
    out = _python(_BLOCKED)
    assert "LOADED []" in out


def test_with_the_api_installed_and_no_provider_import_and_calls_load_nothing() -> None:
    # The blocker is taken out: the API is importable, but nobody imported it.
    out = _python(_BLOCKED.replace("sys.meta_path.insert(0, Block())", ""))
    assert "LOADED []" in out


async def test_with_the_api_loaded_but_no_provider_set_the_plain_path_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_PYTHON_TRACER_PROVIDER", raising=False)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)  # the API's proxy provider
    assert _telemetry.tracer() is None

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("telemetry work with no tracer provider")

    monkeypatch.setattr(_telemetry, "traced_call", refuse)
    monkeypatch.setattr(_telemetry, "traced_wait", refuse)
    monkeypatch.setattr(_telemetry, "observed_attempt", refuse)
    monkeypatch.setattr(_telemetry, "retry_event", refuse)
    monkeypatch.setattr(trace.ProxyTracerProvider, "get_tracer", refuse)
    emulator = _emulator()
    emulator.script("DescribeCluster", Fault.THROTTLE, times=1)
    async with emulator.client() as eks:
        await eks.describe_cluster(name="prod")
        await eks.waiters.cluster_active(name="prod")
    # The API's own no-op provider counts as none too.
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", trace.NoOpTracerProvider())
    assert _telemetry.tracer() is None


async def test_a_provider_set_after_the_client_was_made_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    async with _emulator().client() as eks:
        await eks.list_clusters()
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
        await eks.list_clusters()
    assert [s.name for s in exporter.get_finished_spans()] == ["EKS.ListClusters"]


def test_a_provider_named_by_the_environment_is_honoured() -> None:
    code = _BLOCKED.replace("sys.meta_path.insert(0, Block())", "").replace(
        "assert _telemetry.tracer() is None", "assert _telemetry.tracer() is not None"
    )
    out = _python(code, OTEL_PYTHON_TRACER_PROVIDER="sdk_tracer_provider")
    assert "'opentelemetry.trace'" in out


async def test_a_sampled_out_call_does_no_telemetry_work(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an attempt was timed for a span nobody records")

    monkeypatch.setattr(_telemetry, "observed_attempt", refuse)
    monkeypatch.setattr(_telemetry, "retry_event", refuse)
    emulator = _emulator()
    emulator.script("DescribeCluster", Fault.THROTTLE, times=1)
    async with emulator.client() as eks:
        out = await eks.describe_cluster(name="prod")
        await eks.waiters.cluster_active(name="prod")
    assert out.response_metadata.attempts == 2
    assert exporter.get_finished_spans() == ()
