"""Retries against the emulator: nothing lost, nothing duplicated, and adaptive pacing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import httpx
import pytest

import eks_async
from eks_async._ratelimit import RateLimiter
from eks_async.testing import (
    Delays,
    EKSEmulator,
    Exchange,
    FaultRates,
    ManualClock,
)

from . import _internals
from ._virtual_time import run_virtual

ROLE = "arn:aws:iam::123456789012:role/app"


@pytest.fixture(autouse=True)
def _instant() -> Iterator[None]:
    with eks_async.instant_retries():
        yield


async def test_500_concurrent_creates_under_faults_lose_and_duplicate_nothing() -> None:
    emulator = EKSEmulator(
        seed=11,
        clock=ManualClock(),
        delays=Delays.none(),
        faults=FaultRates(throttle=0.30, server_error=0.10, drop_before=0.025, drop_after=0.025),
    )
    emulator.add_cluster("prod")
    outcomes: list[str] = []
    emulator.add_listener(lambda ex: outcomes.append(ex.outcome) if ex.operation ==
                          "CreatePodIdentityAssociation" else None)
    retry = eks_async.RetryConfig(max_attempts=15, quota=None)
    async with emulator.client(retry=retry) as eks:
        results = await asyncio.gather(
            *(
                eks.create_pod_identity_association(
                    cluster_name="prod", namespace="batch", service_account=f"sa-{i:03d}",
                    role_arn=ROLE,
                )
                for i in range(500)
            ),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == []
        ids = [r.association.association_id for r in results]  # type: ignore[union-attr]
        assert len(set(ids)) == 500
        listed = [a async for a in eks.paginate.list_pod_identity_associations(
            cluster_name="prod")]
    assert sorted(a.association_id for a in listed) == sorted(ids)
    assert sorted(a.service_account for a in listed) == [f"sa-{i:03d}" for i in range(500)]
    # The faults did happen, a dropped-after-commit create among them.
    assert outcomes.count("throttled") > 100
    assert outcomes.count("dropped") > 10
    assert sum(1 for r in results if r.response_metadata.attempts > 1) > 100  # type: ignore[union-attr]
    print(f"\n500 creates: {len(outcomes)} attempts, {outcomes.count('throttled')} throttled, "
          f"{outcomes.count('error')} server errors, {outcomes.count('dropped')} dropped")


class RateLimitedTransport(httpx.AsyncBaseTransport):
    """EKS in front of the emulator as it throttles: above ``rate`` calls/s, 429.

    Its token bucket reads ``clock`` (the virtual loop's time in the test below).
    """

    def __init__(
        self, inner: httpx.AsyncBaseTransport, rate: float, burst: float,
        clock: Callable[[], float],
    ) -> None:
        self.inner = inner
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.last = clock()
        self.throttled = 0
        self.passed = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            self.throttled += 1
            return httpx.Response(
                429,
                json={"message": "Too Many Requests"},
                headers={"x-amzn-ErrorType": "TooManyRequestsException:http://internal.amazon"
                                             ".com/coral/com.amazonaws.eks.v20171101/"},
            )
        self.tokens -= 1
        self.passed += 1
        return await self.inner.handle_async_request(request)


async def _throttled_batch(mode: str) -> tuple[RateLimitedTransport, float]:
    """200 calls, 16 at a time, against a 100 calls/s limit; the transport, and the
    (virtual) seconds the batch took."""
    loop = asyncio.get_running_loop()
    emulator = EKSEmulator(seed=3, clock=ManualClock(), delays=Delays.none())
    emulator.add_cluster("prod")
    transport = RateLimitedTransport(emulator.transport(), rate=100.0, burst=5.0, clock=loop.time)
    retry = eks_async.RetryConfig(mode=mode, max_attempts=30, max_backoff=0.2, quota=None)  # type: ignore[arg-type]
    semaphore = asyncio.Semaphore(16)
    async with emulator.client(transport=transport, retry=retry) as eks:
        if mode == "adaptive":  # the limiter paces on the same (virtual) clock
            _internals.install_rate_limiter(eks, RateLimiter(clock=loop.time))

        async def one() -> None:
            async with semaphore:
                await eks.list_clusters()

        start = loop.time()
        await asyncio.gather(*(one() for _ in range(200)))
        took = loop.time() - start
    return transport, took


def test_adaptive_mode_is_throttled_less_than_standard_mode() -> None:
    # Pacing needs time to pass: real backoff sleeps, on a loop whose clock is virtual, so
    # the outcome is the same on an idle machine and on a loaded one.
    eks_async.set_instant_retries(False)
    try:
        standard, standard_took = run_virtual(_throttled_batch("standard"))
        adaptive, adaptive_took = run_virtual(_throttled_batch("adaptive"))
    finally:
        eks_async.set_instant_retries(True)
    print(f"\nthrottled calls for 200 successes: standard {standard.throttled}, "
          f"adaptive {adaptive.throttled}; virtual seconds {standard_took:.2f} and "
          f"{adaptive_took:.2f}")
    assert standard.passed == adaptive.passed == 200
    # Not merely fewer: pacing avoids nearly all of them (about 2 against about 300).
    assert adaptive.throttled * 10 < standard.throttled
    # Neither beats the limit: 200 calls at 100/s with a burst of 5 take about 2 s.
    assert min(standard_took, adaptive_took) >= (200 - 5) / 100.0


async def test_a_dropped_after_commit_create_is_retried_with_the_same_token() -> None:
    emulator = EKSEmulator(seed=5, clock=ManualClock(), delays=Delays.none())
    emulator.add_cluster("prod")
    emulator.script("CreatePodIdentityAssociation", "drop_after", times=1)
    seen: list[Exchange] = []
    emulator.add_listener(seen.append)
    async with emulator.client() as eks:
        out = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="ns", service_account="sa", role_arn=ROLE
        )
        listed = [a async for a in eks.paginate.list_pod_identity_associations(
            cluster_name="prod")]
    assert [e.outcome for e in seen if e.operation == "CreatePodIdentityAssociation"] == [
        "dropped", "ok"]
    assert out.response_metadata is not None and out.response_metadata.attempts == 2
    assert [a.association_id for a in listed] == [out.association.association_id]  # type: ignore[union-attr]
