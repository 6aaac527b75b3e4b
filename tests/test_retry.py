"""The retry layer: what is retried, how long it waits, and what it never does."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email.utils
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

import eks_async
from eks_async._auth.credentials import Credentials
from eks_async._core import RetryEvent
from eks_async._retry import (
    THROTTLING_CODES,
    RetryConfig,
    RetryQuota,
    backoff,
    classify,
    instant_retries,
)

from . import _internals
from ._answers import ERROR_TYPE, Script
from ._answers import error_answer as _error
from ._answers import ok_answer as _ok

SECRET = "retry-test-secret-do-not-print"





def _client(transport: httpx.AsyncBaseTransport, **kwargs: Any) -> eks_async.EKSClient:
    return eks_async.EKSClient(
        region="us-west-2",
        aws_access_key_id="AKIDRETRY",
        aws_secret_access_key=SECRET,
        transport=transport,
        **kwargs,
    )


@pytest.fixture(autouse=True)
def _instant() -> Iterator[None]:
    with instant_retries():
        yield


# --- classification -------------------------------------------------------------------------


def _service_error(status: int, code: str) -> eks_async.ServiceError:
    return eks_async.ServiceError(code=code, message="m", http_status=status, request_id="r")


@pytest.mark.parametrize("code", sorted(THROTTLING_CODES))
def test_throttling_codes_retry(code: str) -> None:
    assert classify(_service_error(400, code)) == "throttling"


@pytest.mark.parametrize("code", ["Whatever", "ThrottlingException", "BadRequestException"])
def test_http_429_is_throttling_whatever_the_code(code: str) -> None:
    assert classify(_service_error(429, code)) == "throttling"


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, "ServerException"), (503, "ServiceUnavailableException"), (502, "502"),
     (504, "504"), (400, "RequestTimeout"), (400, "RequestTimeoutException"),
     (500, "InternalError")],
)
def test_transient_failures_retry(status: int, code: str) -> None:
    assert classify(_service_error(status, code)) == "transient"


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "InvalidParameterException"), (404, "ResourceNotFoundException"),
     (409, "ResourceInUseException"), (400, "InvalidRequestException"),
     (403, "AccessDeniedException"), (400, "ResourceLimitExceededException"),
     (401, "UnrecognizedClientException"), (428, "ResourcePropagationDelayException")],
)
def test_other_client_errors_never_retry(status: int, code: str) -> None:
    assert classify(_service_error(status, code)) is None


def test_transport_failures_retry_and_local_errors_do_not() -> None:
    assert classify(eks_async.TimeoutError_("t")) == "timeout"
    assert classify(eks_async.TransportError("t")) == "connection"
    assert classify(eks_async.ParamValidationError("Op", "x", "bad")) is None
    assert classify(eks_async.CredentialsError("none")) is None
    assert classify(ValueError("x")) is None


@given(
    attempt=st.integers(min_value=1, max_value=60),
    cap=st.floats(min_value=0, max_value=60),
    r=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_backoff_is_full_jitter_within_the_cap(attempt: int, cap: float, r: float) -> None:
    delay = backoff(attempt, cap, lambda: r)
    ceiling = min(2.0 ** (attempt - 1), cap)
    assert 0 <= delay <= ceiling
    assert delay == pytest.approx(r * ceiling)


def test_quota_costs_and_refunds() -> None:
    quota = RetryQuota(500)
    assert quota.acquire("throttling") == 5
    assert quota.acquire("timeout") == 10
    assert quota.available == 485
    quota.release(15)
    assert quota.available == 500
    quota.release(0)  # a success without retries gives one back, up to the capacity
    assert quota.available == 500
    spent = [quota.acquire("transient") for _ in range(100)]
    assert spent.count(5) == 100 and quota.available == 0
    assert quota.acquire("transient") is None


def test_config_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryConfig(max_attempts=0)
    with pytest.raises(ValueError):
        RetryConfig(mode="eager")  # type: ignore[arg-type]


# --- the loop -------------------------------------------------------------------------------


async def test_throttles_are_retried_and_the_output_tells_attempts() -> None:
    script = Script(
        _error(429, "TooManyRequestsException"),
        _error(500, "ServerException"),
        _ok({"association": {"associationId": "a-1"}}),
    )
    async with _client(script) as eks:
        out = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="ns", service_account="sa", role_arn="arn:r"
        )
    assert out.association is not None and out.association.association_id == "a-1"
    assert out.response_metadata is not None
    assert out.response_metadata.attempts == 3
    tokens = {json.loads(r.content)["clientRequestToken"] for r in script.requests}
    assert len(script.requests) == 3 and len(tokens) == 1  # one token kept across attempts


async def test_every_attempt_is_signed_afresh() -> None:
    class Rotating:
        def __init__(self) -> None:
            self.n = 0

        async def get_credentials(self) -> Credentials:
            self.n += 1
            return Credentials(
                access_key_id="AKID", secret_access_key=SECRET, session_token=f"token-{self.n}"
            )

    script = Script(_error(503, "ServiceUnavailableException"), _ok())
    async with eks_async.EKSClient(
        region="us-west-2", credentials=Rotating(), transport=script
    ) as eks:
        await eks.list_clusters()
    assert [r.headers["x-amz-security-token"] for r in script.requests] == ["token-1", "token-2"]
    assert script.requests[0].headers["authorization"] != script.requests[1].headers["authorization"]


async def test_client_errors_are_not_retried() -> None:
    script = Script(_error(400, "InvalidParameterException"))
    async with _client(script) as eks:
        with pytest.raises(eks_async.InvalidParameterException) as info:
            await eks.describe_cluster(name="prod")
    assert len(script.requests) == 1
    assert info.value.attempts == 1


async def test_gives_up_after_max_attempts_with_a_typed_error() -> None:
    script = Script(_error(500, "ServerException"))
    async with _client(script, retry=RetryConfig(max_attempts=4)) as eks:
        with pytest.raises(eks_async.ServerException) as info:
            await eks.describe_cluster(name="prod")
    assert len(script.requests) == 4
    assert info.value.attempts == 4


async def test_per_call_options_override_the_client() -> None:
    script = Script(_error(500, "ServerException"))
    async with _client(script) as eks:
        with pytest.raises(eks_async.ServerException):
            await eks.with_options(retry=RetryConfig(max_attempts=1)).describe_cluster(name="p")
        assert len(script.requests) == 1
        with pytest.raises(eks_async.ServerException):
            await eks.describe_cluster(name="p")
        assert len(script.requests) == 4


async def test_endpoint_down_fails_typed_and_the_quota_stops_retries() -> None:
    # A port nothing listens on: every attempt is refused.
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with eks_async.EKSClient(
        region="us-west-2",
        aws_access_key_id="AKID",
        aws_secret_access_key=SECRET,
        endpoint_url=f"http://127.0.0.1:{port}",
        retry=RetryConfig(max_attempts=3, quota=12),
    ) as eks:
        with pytest.raises(eks_async.TransportError) as first:
            await eks.list_clusters()
        assert first.value.attempts == 3  # two retries took 10 of the 12 tokens
        with pytest.raises(eks_async.TransportError) as second:
            await eks.list_clusters()
        assert second.value.attempts == 1  # 2 tokens left: no retry is allowed


async def test_retry_after_is_honoured_and_capped() -> None:
    events: list[RetryEvent] = []
    script = Script(_error(429, "ThrottlingException", **{"Retry-After": "7"}), _ok())
    async with _client(script, on_retry=events.append) as eks:
        await eks.list_clusters()
    assert [e.delay for e in events] == [7.0]
    script = Script(_error(429, "ThrottlingException", **{"Retry-After": "600"}), _ok())
    events.clear()
    async with _client(script, on_retry=events.append) as eks:
        await eks.list_clusters()
    assert [e.delay for e in events] == [20.0]


async def test_clock_skew_is_corrected_from_the_date_header_once() -> None:
    ahead = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    skew = _error(
        403,
        "InvalidSignatureException",
        "Signature expired: 20240101T000000Z is now earlier than 20240101T001000Z",
        Date=email.utils.format_datetime(ahead, usegmt=True),
    )
    script = Script(skew, _ok())
    async with _client(script, retry=RetryConfig(max_attempts=1)) as eks:
        await eks.list_clusters()
    first, second = (
        datetime.datetime.strptime(r.headers["x-amz-date"], "%Y%m%dT%H%M%S%z")
        for r in script.requests
    )
    # An hour ahead; the margin only absorbs the real time between the two attempts.
    assert abs((second - first).total_seconds() - 3600) < 60
    # A signature that is wrong for another reason is not retried.
    script = Script(_error(403, "InvalidSignatureException", "The request signature we "
                           "calculated does not match the signature you provided."))
    async with _client(script) as eks:
        with pytest.raises(eks_async.ServiceError) as info:
            await eks.list_clusters()
    assert info.value.code == "InvalidSignatureException" and info.value.http_status == 403
    assert len(script.requests) == 1


async def test_retries_are_logged_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    events: list[RetryEvent] = []
    script = Script(_error(429, "ThrottlingException"), _error(500, "ServerException"), _ok())
    with caplog.at_level(logging.DEBUG, logger="eks_async"):
        async with _client(script, on_retry=events.append) as eks:
            await eks.list_clusters()
    assert [(e.operation, e.attempt) for e in events] == [("ListClusters", 1), ("ListClusters", 2)]
    assert "ThrottlingException" in events[0].reason
    assert len([r for r in caplog.records if "retrying" in r.getMessage()]) == 2
    assert SECRET not in caplog.text
    assert all(SECRET not in repr(e) for e in events)


def test_deadline_bounds_the_whole_call() -> None:
    # Real backoff sleeps on a loop whose clock is virtual: 1000 attempts with up to 0.02 s
    # between them would take about 10 s; the 0.3 s deadline ends the call long before,
    # on an idle machine or a loaded one alike.
    from ._virtual_time import run_virtual

    async def main() -> tuple[float, eks_async.TimeoutError_]:
        loop = asyncio.get_running_loop()
        retry = RetryConfig(max_attempts=1000, max_backoff=0.02, deadline=0.3, quota=None)
        async with _client(script, retry=retry) as eks:
            start = loop.time()
            with pytest.raises(eks_async.TimeoutError_) as info:
                await eks.list_clusters()
            return loop.time() - start, info.value

    script = Script(_error(500, "ServerException"))
    eks_async.set_instant_retries(False)
    try:
        took, error = run_virtual(main())
    finally:
        eks_async.set_instant_retries(True)
    assert took == pytest.approx(0.3)
    assert "deadline" in str(error)
    assert 10 < len(script.requests) < 1000  # many retries fit in 0.3 s, not all of them


# --- cancellation against a real server -------------------------------------------------------


@contextlib.contextmanager
def _throttling_server() -> Iterator[tuple[int, list[int]]]:
    """A server that always throttles, on its own loop in a thread (its tasks are not ours).

    Yields its port and a one-item list counting the requests it has answered.
    """
    seen = [0]

    async def throttle(request: web.Request) -> web.Response:
        seen[0] += 1
        return web.json_response(
            {"message": "slow down"},
            status=429,
            headers={"x-amzn-ErrorType": "ThrottlingException" + ERROR_TYPE},
        )

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def start() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", throttle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state["runner"] = runner
        state["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop)
    assert ready.wait(60), "the throttling server did not start"
    try:
        yield state["port"], seen
    finally:
        asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def test_cancelling_calls_mid_backoff_leaves_nothing_behind() -> None:
    from eks_async import _retry

    _retry.set_instant_retries(False)  # real backoff sleeps, so calls are mid-backoff
    try:
        with _throttling_server() as (port, seen):
            eks = eks_async.EKSClient(
                region="us-west-2",
                aws_access_key_id="AKID",
                aws_secret_access_key=SECRET,
                endpoint_url=f"http://127.0.0.1:{port}",
                retry=RetryConfig(max_attempts=10, max_backoff=30, quota=None),
                on_retry=lambda event: backing_off.add(asyncio.current_task()),
            )
            backing_off: set[asyncio.Task[Any] | None] = set()
            before = asyncio.all_tasks()
            tasks = [asyncio.create_task(eks.list_clusters()) for _ in range(100)]
            # Until every call has been throttled and has started backing off (its task
            # passed through on_retry): event-driven, not a fixed sleep, so a slow machine
            # only makes this take longer.
            async with asyncio.timeout(60):
                while not backing_off >= set(tasks):
                    await asyncio.sleep(0.01)
            assert seen[0] >= 100
            assert not any(t.done() for t in tasks)
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(r, asyncio.CancelledError) for r in results)
            await asyncio.sleep(0)
            leftover = asyncio.all_tasks() - before
            assert [t for t in leftover if not t.done()] == []
            pool = _internals.connection_pool(eks)
            assert pool is not None
            assert not pool._busy  # no connection is checked out
            await eks.aclose()
            assert pool._closed and not pool._idle
    finally:
        _retry.set_instant_retries(True)


# --- adaptive mode --------------------------------------------------------------------------


async def test_adaptive_mode_paces_requests_once_throttled() -> None:
    script = Script(_error(429, "ThrottlingException"), _ok())
    async with _client(script, retry=RetryConfig(mode="adaptive")) as eks:
        await eks.list_clusters()
        limiter = _internals.rate_limiter(eks)
        assert limiter is not None and limiter.enabled


def test_errors_say_whether_they_are_throttling_and_retryable() -> None:
    throttled = _service_error(429, "TooManyRequestsException")
    assert throttled.is_throttling and throttled.is_retryable
    server = _service_error(500, "ServerException")
    assert not server.is_throttling and server.is_retryable
    missing = _service_error(404, "ResourceNotFoundException")
    assert not missing.is_throttling and not missing.is_retryable
