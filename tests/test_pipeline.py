"""One call pipeline: what ``with_options`` views share, and what bounds a call's time.

A view differs from its client only in its options; it sends over the client's connections
with the client's credentials, clock offset, retry quota, rate limiter and token cache, and
its waiters and paginators use the view's options.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

import eks_async
from eks_async import RateLimiter, RetryConfig, RetryEvent, WaiterConfig

from . import _internals
from ._answers import Script
from ._answers import error_answer as _error
from ._answers import ok_answer as _ok

CREDS = {"aws_access_key_id": "AKIDPIPE", "aws_secret_access_key": "pipeline-secret"}


def _client(transport: httpx.AsyncBaseTransport, **kwargs: Any) -> eks_async.EKSClient:
    return eks_async.EKSClient(region="us-west-2", transport=transport, **CREDS, **kwargs)


@pytest.fixture(autouse=True)
def _instant() -> Iterator[None]:
    with eks_async.instant_retries():
        yield


# --- a real keep-alive server that counts connections -----------------------------------------


class CountingServer:
    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if length:
                    await reader.readexactly(length)
                self.requests += 1
                body = json.dumps({"clusters": ["a"]}).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"x-amzn-RequestId: r\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> CountingServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def server() -> AsyncIterator[CountingServer]:
    async with CountingServer() as s:
        yield s


# --- views share ------------------------------------------------------------------------------


async def test_a_view_sends_over_the_clients_connections(server: CountingServer) -> None:
    async with eks_async.EKSClient(region="us-west-2", endpoint_url=server.url, **CREDS) as eks:
        view = eks.with_options(retry=RetryConfig(max_attempts=7))
        await view.list_clusters()  # the view first: it must not open a pool of its own
        await eks.list_clusters()
        await view.list_clusters()
        other = view.with_options(on_retry=lambda e: None)
        await other.list_clusters()
    assert server.requests == 4
    assert server.connections == 1


async def test_closing_the_client_closes_every_view_and_closing_a_view_nothing(
    server: CountingServer,
) -> None:
    eks = eks_async.EKSClient(region="us-west-2", endpoint_url=server.url, **CREDS)
    view = eks.with_options(retry=RetryConfig(max_attempts=2))
    await view.list_clusters()
    await view.aclose()  # a view closes nothing
    await eks.list_clusters()
    await eks.aclose()
    with pytest.raises(eks_async.ConfigurationError, match="closed"):
        await view.list_clusters()
    with pytest.raises(eks_async.ConfigurationError, match="closed"):
        await view.with_options(retry=RetryConfig()).list_clusters()
    assert server.requests == 2


async def test_a_views_waiters_and_paginators_use_the_views_options() -> None:
    events: list[RetryEvent] = []
    update = {"update": {"id": "u1", "status": "Successful", "type": "AssociateIdentityProviderConfig"}}
    script = Script(
        _error(500, "ServerException"),
        httpx.Response(200, json=update, headers={"x-amzn-RequestId": "r"}),
        _error(500, "ServerException"),
        _ok({"clusters": ["a", "b"]}),
    )
    async with _client(script, retry=RetryConfig(max_attempts=1)) as eks:
        view = eks.with_options(retry=RetryConfig(max_attempts=3), on_retry=events.append)
        out = await view.waiters.update_successful(cluster_name="c", update_id="u1")
        assert out.update is not None and out.update.id == "u1"
        names = [name async for name in view.paginate.list_clusters()]
        assert names == ["a", "b"]
        # The client itself keeps its own options: one attempt, no hook.
        script.answers = [_error(500, "ServerException")]
        with pytest.raises(eks_async.ServiceError):
            await eks.list_clusters()
    assert [(e.operation, e.kind) for e in events] == [
        ("DescribeUpdate", "backoff"),
        ("ListClusters", "backoff"),
    ]
    assert eks.waiters is not view.waiters


async def test_views_share_the_clock_offset() -> None:
    ahead = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=2)
    skew = _error(
        403, "InvalidSignatureException", "Signature expired: it is now later than that",
        Date=email.utils.format_datetime(ahead, usegmt=True),
    )
    script = Script(skew, _ok())
    async with _client(script) as eks:
        view = eks.with_options(retry=RetryConfig(max_attempts=2))
        await view.list_clusters()  # corrected once from the Date header...
        await eks.list_clusters()  # ...and the client signs with the correction too
    stamps = [
        datetime.datetime.strptime(r.headers["x-amz-date"], "%Y%m%dT%H%M%S%z")
        for r in script.requests
    ]
    assert len(stamps) == 3
    assert abs((stamps[2] - stamps[0]).total_seconds() - 7200) < 60


async def test_views_share_the_retry_quota() -> None:
    script = Script(_error(503, "ServiceUnavailableException"))
    async with _client(script, retry=RetryConfig(max_attempts=3, quota=10)) as eks:
        view = eks.with_options(retry=RetryConfig(max_attempts=3, quota=10))
        with pytest.raises(eks_async.ServiceError) as first:
            await view.list_clusters()
        assert first.value.attempts == 3  # two retries: the quota's 10 tokens spent
        with pytest.raises(eks_async.ServiceError) as second:
            await eks.list_clusters()
        assert second.value.attempts == 1  # the client sees the view's spending


async def test_views_share_the_rate_limiter_and_the_token_cache() -> None:
    script = Script(_error(429, "ThrottlingException"), _ok())
    async with _client(script) as eks:
        view = eks.with_options(retry=RetryConfig(mode="adaptive"))
        await view.list_clusters()
        again = eks.with_options(retry=RetryConfig(mode="adaptive", max_attempts=5))
        assert again._shared.limiter is view._shared.limiter is not None
        assert again._shared.limiter.enabled
        token = await view.get_token(cluster_name="prod")
        assert await eks.get_token(cluster_name="prod") is token


# --- what bounds a call -----------------------------------------------------------------------


def _frozen_limiter(rate: float) -> RateLimiter:
    """A limiter already throttled to ``rate`` requests/s whose clock never moves, so its
    bucket never refills by itself: every acquire waits 1/rate seconds."""
    return _internals.paced_limiter(rate)


async def test_deadline_bounds_a_call_that_is_being_rate_limited() -> None:
    script = Script(_ok())
    async with _client(script, retry=RetryConfig(mode="adaptive")) as eks:
        eks._shared.limiter = _frozen_limiter(0.5)  # the next request waits 2 s for a token
        eks_async.set_instant_retries(False)
        try:
            async with asyncio.timeout(30):  # fails the test instead of hanging it
                with pytest.raises(eks_async.TimeoutError_, match="deadline"):
                    await eks.with_options(
                        retry=RetryConfig(mode="adaptive", deadline=0.05)
                    ).list_clusters()
        finally:
            eks_async.set_instant_retries(True)
    assert script.requests == []  # it never got past the limiter


async def test_rate_limit_waits_count_reach_on_retry_and_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[RetryEvent] = []
    script = Script(_ok())
    async with _client(script, retry=RetryConfig(mode="adaptive"), on_retry=events.append) as eks:
        eks._shared.limiter = _frozen_limiter(200.0)  # a 5 ms wait
        eks_async.set_instant_retries(False)
        try:
            with caplog.at_level(logging.DEBUG, logger="eks_async"):
                out = await eks.list_clusters()
        finally:
            eks_async.set_instant_retries(True)
    assert [(e.kind, e.attempt, e.operation) for e in events] == [
        ("rate_limit", 1, "ListClusters")
    ]
    assert events[0].delay == pytest.approx(0.005)
    assert out.response_metadata is not None
    assert out.response_metadata.retry_wait == pytest.approx(0.005)
    assert any("rate limit" in r.getMessage() for r in caplog.records)


async def test_a_never_throttled_client_never_waits_for_the_limiter() -> None:
    events: list[RetryEvent] = []
    script = Script(_ok())
    async with _client(script, retry=RetryConfig(mode="adaptive"), on_retry=events.append) as eks:
        for _ in range(50):
            out = await eks.list_clusters()
        limiter = eks._shared.limiter
        assert limiter is not None and not limiter.enabled and limiter.delayed == 0
    assert events == []
    assert out.response_metadata is not None and out.response_metadata.retry_wait == 0


async def test_a_waiters_max_wait_bounds_its_polls_retries() -> None:
    script = Script(_error(500, "ServerException"))
    eks_async.set_instant_retries(False)
    try:
        async with _client(
            script, retry=RetryConfig(max_attempts=1000, max_backoff=0.05, quota=None)
        ) as eks:
            async with asyncio.timeout(60):  # without the bound: ~1000 attempts, far longer
                with pytest.raises(eks_async.WaiterTimeoutError) as info:
                    await eks.waiters.update_successful(
                        cluster_name="c", update_id="u",
                        config=WaiterConfig(min_delay=0.01, max_delay=0.01, max_wait=0.3),
                    )
    finally:
        eks_async.set_instant_retries(True)
    assert isinstance(info.value.last_error, eks_async.TimeoutError_)
    assert len(script.requests) < 1000


async def test_a_retried_call_is_attempt_one_then_two_never_a_replay() -> None:
    events: list[RetryEvent] = []
    script = Script(_error(503, "ServiceUnavailableException"), _ok())
    async with _client(script, on_retry=events.append) as eks:
        out = await eks.list_clusters()
    assert len(script.requests) == 2
    assert [e.attempt for e in events] == [1]
    assert out.response_metadata is not None and out.response_metadata.attempts == 2


def test_errors_carry_their_retry_kind() -> None:
    assert eks_async.TransportError("x").retry_kind == "connection"
    assert eks_async.TimeoutError_("x").retry_kind == "timeout"
    assert eks_async.ProtocolError("x").retry_kind == "connection"
    throttled = eks_async.ServiceError(
        code="Whatever", message=None, http_status=429, request_id=None
    )
    assert throttled.retry_kind == "throttling"
    missing = eks_async.ServiceError(
        code="ResourceNotFoundException", message=None, http_status=404, request_id=None
    )
    assert missing.retry_kind is None
    assert eks_async.ParamValidationError("Op", "p", "bad").retry_kind is None
