"""DEBUG lines that explain a call and a wait (logger ``eks_async``), against the emulator.

One line per attempt (operation, attempt, HTTP status, request id, elapsed), per retry
decision (why, and the delay or why not), per wait for the client-side rate limit, per
waiter poll (waiter, state, next delay). With DEBUG off, a call asks the logger once and
times nothing.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterator

import pytest

import eks_async
from eks_async import _telemetry
from eks_async.testing import Delays, EKSEmulator, Exchange, Fault, ManualClock

from . import _internals

ROLE = "arn:aws:iam::123456789012:role/app"
MS = r"\d+\.\d ms"


@pytest.fixture(autouse=True)
def _instant() -> Iterator[None]:
    with eks_async.instant_retries():
        yield


@pytest.fixture
def debug(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG, logger="eks_async"):
        yield caplog


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records
        if r.name == "eks_async" and r.levelno == logging.DEBUG
    ]


def _emulator(request_ids: list[str], **settings: object) -> EKSEmulator:
    emulator = EKSEmulator(seed=5, clock=ManualClock(), delays=Delays.none(), **settings)  # type: ignore[arg-type]
    emulator.add_cluster("prod")

    def record(exchange: Exchange) -> None:
        request_id = exchange.response.header("x-amzn-RequestId")
        if request_id:
            request_ids.append(request_id)

    emulator.add_listener(record)
    return emulator


async def test_each_attempt_and_each_retry_decision_is_a_line(
    debug: pytest.LogCaptureFixture,
) -> None:
    ids: list[str] = []
    emulator = _emulator(ids)
    emulator.script("DescribeCluster", Fault.THROTTLE, times=1)
    emulator.script("DescribeCluster", Fault.SERVER_ERROR, times=1)
    waits: list[eks_async.RetryEvent] = []
    async with emulator.client(on_retry=waits.append) as eks:
        out = await eks.describe_cluster(name="prod")
    assert len(ids) == 3 and ids[-1] == out.response_metadata.request_id
    lines = _lines(debug)
    assert len(lines) == 5, lines
    expected = [
        rf"DescribeCluster: attempt 1: HTTP 429 ThrottlingException, request id {ids[0]}, {MS}",
        rf"DescribeCluster: attempt 1 failed \(ThrottlingException, HTTP 429\); "
        rf"retrying in {waits[0].delay:.3f} s",
        rf"DescribeCluster: attempt 2: HTTP 500 ServerException, request id {ids[1]}, {MS}",
        rf"DescribeCluster: attempt 2 failed \(ServerException, HTTP 500\); "
        rf"retrying in {waits[1].delay:.3f} s",
        rf"DescribeCluster: attempt 3: HTTP 200, request id {ids[2]}, {MS}",
    ]
    for pattern, line in zip(expected, lines, strict=True):
        assert re.fullmatch(pattern, line), (pattern, line)


async def test_the_last_failure_says_why_no_attempt_follows(
    debug: pytest.LogCaptureFixture,
) -> None:
    ids: list[str] = []
    emulator = _emulator(ids)
    emulator.script("ListClusters", Fault.UNAVAILABLE, times=5)
    async with emulator.client(retry=eks_async.RetryConfig(max_attempts=2)) as eks:
        with pytest.raises(eks_async.ResourceNotFoundException):
            await eks.describe_cluster(name="nope")
        with pytest.raises(eks_async.ServiceError):
            await eks.list_clusters()
    lines = _lines(debug)
    assert re.fullmatch(
        rf"DescribeCluster: attempt 1: HTTP 404 ResourceNotFoundException, request id {ids[0]}, {MS}",
        lines[0],
    )
    assert lines[1] == (
        "DescribeCluster: attempt 1 failed (ResourceNotFoundException); "
        "not retried: not a retryable error"
    )
    assert re.fullmatch(
        rf"ListClusters: attempt 2: HTTP 503 ServiceUnavailableException, request id {ids[2]}, {MS}",
        lines[-2],
    )
    assert lines[-1] == (
        "ListClusters: attempt 2 failed (ServiceUnavailableException); not retried: no retry left"
    )


async def test_a_dropped_connection_is_an_attempt_without_an_answer(
    debug: pytest.LogCaptureFixture,
) -> None:
    emulator = _emulator([])
    emulator.script("ListClusters", Fault.DROP_BEFORE, times=1)
    async with emulator.client() as eks:
        await eks.list_clusters()
    lines = _lines(debug)
    assert re.fullmatch(rf"ListClusters: attempt 1: no answer \((TransportError|ProtocolError)\), {MS}",
                        lines[0]), lines
    assert lines[1].startswith("ListClusters: attempt 1 failed (")
    assert "retrying in" in lines[1]
    assert lines[2].startswith("ListClusters: attempt 2: HTTP 200, request id ")


async def test_a_wait_for_the_client_side_rate_limit_is_a_line(
    debug: pytest.LogCaptureFixture,
) -> None:
    # Paced at 1000 requests/s on a clock that stands still, with one token left: the
    # first call takes it, the second waits a millisecond for the next.
    limiter = _internals.paced_limiter(1000.0, tokens=1.0)
    waits: list[eks_async.RetryEvent] = []
    async with _emulator([]).client(
        retry=eks_async.RetryConfig(mode="adaptive"), on_retry=waits.append
    ) as eks:
        _internals.install_rate_limiter(eks, limiter)
        await eks.list_clusters()
        await eks.list_clusters()
    (wait,) = waits
    assert wait.kind == "rate_limit"
    lines = _lines(debug)
    assert (
        f"ListClusters: attempt 1 waits {wait.delay:.3f} s for the client-side rate limit "
        f"({wait.reason})"
    ) in lines
    assert sum(1 for line in lines if "attempt 1: HTTP 200, request id" in line) == 2


async def test_each_waiter_poll_is_a_line_with_its_state_and_next_delay(
    debug: pytest.LogCaptureFixture,
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
        await eks.waiters.pod_identity_association_visible(
            cluster_name="prod", association_id=out.association.association_id,
            config=eks_async.WaiterConfig(
                clock=clock.monotonic, sleep=clock.sleep, rng=random.Random(1).random,
                min_delay=1.0, max_delay=5.0, max_wait=60.0,
            ),
            on_progress=polls.append,
        )
    assert len(polls) > 1
    lines = [line for line in _lines(debug) if " poll " in line]
    expected = [
        f"pod_identity_association_visible: poll {p.attempt}: {p.state}; "
        + (f"next poll in {p.next_delay:.3f} s ({p.elapsed:.1f} s elapsed)"
           if p.next_delay is not None else f"the wait ends after {p.elapsed:.1f} s")
        for p in polls
    ]
    assert lines == expected
    assert polls[-1].state == "visible"
    # Each poll's calls are lines of their own, with request ids.
    calls = [line for line in _lines(debug)
             if "PodIdentityAssociation: attempt" in line and "failed" not in line]
    assert calls and all(re.search(r": attempt \d+: HTTP \d+.*, request id \S+, ", c)
                         for c in calls)


async def test_with_debug_off_a_call_asks_the_logger_once_and_times_nothing(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    logger = logging.getLogger("eks_async")
    asked: list[int] = []
    real = logger.isEnabledFor

    def is_enabled_for(level: int) -> bool:
        asked.append(level)
        return real(level)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an attempt was timed with DEBUG off")

    monkeypatch.setattr(logger, "isEnabledFor", is_enabled_for)
    monkeypatch.setattr(_telemetry, "observed_attempt", refuse)
    with caplog.at_level(logging.INFO, logger="eks_async"):
        async with _emulator([]).client() as eks:
            for _ in range(5):
                await eks.list_clusters()
    assert asked.count(logging.DEBUG) == 5  # once per call
    assert [r for r in caplog.records if r.name == "eks_async"] == []
