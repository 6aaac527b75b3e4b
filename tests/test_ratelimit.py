"""The adaptive mode's rate limiter: it finds the service's rate and holds it.

Nothing here reads the wall clock. Pacing runs on the virtual-time loop
(``tests/_virtual_time.py``), against the emulator's token bucket on the same clock, or on a
clock the test moves by hand; so every figure asserted below is the same on an idle machine
and on a loaded one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Iterator
from typing import Any

import pytest

import eks_async
from eks_async import RateLimiter, RetryConfig, RetryEvent
from eks_async.testing import CallCounts, Delays, EKSEmulator, FaultRates
from eks_async.testing._config import DelayRange, RateLimit

from . import _internals
from ._answers import Script
from ._answers import error_answer as _error
from ._answers import ok_answer as _ok
from ._emulator_support import ROLE
from ._virtual_time import run_virtual
from .test_emulator_ratelimit import LoopClock

CREDS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret-not-shown"}


@contextlib.contextmanager
def real_sleeps() -> Iterator[None]:
    """Backoffs and pacing sleep for real (on the virtual-time loop, that costs nothing)."""
    with eks_async.instant_retries():
        eks_async.set_instant_retries(False)
        yield


def drive(coro: Any) -> Any:
    """Run a coroutine that must finish without ever suspending: its result.

    A coroutine that awaited a sleep, a future, a lock held by another or a task would
    suspend here, and this raises instead.
    """
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise AssertionError("the coroutine suspended")


# --- a client that is never throttled loses nothing -----------------------------------------


def test_acquire_never_suspends_before_a_throttle() -> None:
    clock = [0.0]
    limiter = RateLimiter(initial_window=4, clock=lambda: clock[0])
    assert limiter.target_rate is None and limiter.window == 4
    for _ in range(1000):  # sequential: one in flight at a time
        assert drive(limiter.acquire()) == 0.0
        limiter.update(throttled=False, sent=0.0)
        limiter.release()
    for _ in range(4):  # as many at once as the window
        drive(limiter.acquire())
    assert limiter.delayed == 0 and limiter.delay_total == 0
    assert limiter.window == 1004  # grown by one per success


async def _never_throttled(mode: str) -> tuple[int, list[RetryEvent], float]:
    """500 ListClusters, sequential then 4 at a time: tasks made and sleeps asked for."""
    loop = asyncio.get_running_loop()
    created = 0
    factory = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        nonlocal created
        created += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    events: list[RetryEvent] = []
    emu = EKSEmulator(delays=Delays.none())
    retry = RetryConfig(mode=mode)  # type: ignore[arg-type]
    async with emu.client(retry=retry, on_retry=events.append) as eks:
        await eks.list_clusters()  # opens what the client opens on its first call
        loop.set_task_factory(counting)
        try:
            waited = 0.0
            for _ in range(300):
                out = await eks.list_clusters()
                assert out.response_metadata is not None
                waited += out.response_metadata.retry_wait
            for _ in range(50):
                outs = await asyncio.gather(*(eks.list_clusters() for _ in range(4)))
                waited += sum(o.response_metadata.retry_wait for o in outs)  # type: ignore[union-attr]
        finally:
            loop.set_task_factory(factory)
        if mode == "adaptive":
            limiter = _internals.rate_limiter(eks)
            assert limiter is not None
            assert not limiter.enabled and limiter.delayed == 0 and limiter.throttles == 0
    return created, events, waited


def test_a_never_throttled_adaptive_client_costs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float, *args: Any) -> Any:
        sleeps.append(delay)
        return await real_sleep(delay, *args)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    with real_sleeps():
        standard = run_virtual(_never_throttled("standard"))
        adaptive = run_virtual(_never_throttled("adaptive"))
    assert sleeps == []  # no sleep anywhere, in either mode
    # The same tasks as standard mode (asyncio.gather's own): the limiter makes none.
    assert adaptive[0] == standard[0]
    assert adaptive[1] == standard[1] == []  # no rate-limit wait reported
    assert adaptive[2] == standard[2] == 0.0  # no retry_wait


# --- it never lets a call fail for lack of tokens -------------------------------------------


def test_waiting_for_tokens_never_fails_a_call_and_keeps_order() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        limiter = _internals.paced_limiter(0.5, clock=loop.time)
        starts: list[float] = []

        async def one() -> None:
            sent = await limiter.acquire()
            starts.append(sent)
            limiter.release()

        await asyncio.gather(*(one() for _ in range(20)))
        return starts

    with real_sleeps():
        starts = run_virtual(main())
    # Twenty requests at the lowest pace are all let through, in order, 2 s apart.
    assert len(starts) == 20
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(1.9 <= gap <= 2.0 + 1e-9 for gap in gaps)  # about 2 s apart (probing)


def test_a_cancelled_waiter_gives_its_place_back() -> None:
    async def main() -> int | None:
        limiter = RateLimiter(initial_window=1)
        await limiter.acquire()  # the window is full
        waiting = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        limiter.update(throttled=False)  # the window grows to 2
        limiter.release()
        drive(limiter.acquire())  # nothing leaked: both slots are free
        drive(limiter.acquire())
        return limiter.window

    assert run_virtual(main()) == 2


def test_slow_start_holds_a_slot_while_a_request_sent_with_it_is_in_flight() -> None:
    # Two requests into a bucket of one token: the first is admitted, the second will be
    # throttled. A third sent on the first one's slot before that throttle arrives would
    # be throttled too: it waits for the second's answer instead, and is then paced.
    clock = [0.0]

    async def main() -> tuple[bool, bool, float]:
        limiter = RateLimiter(initial_window=2, clock=lambda: clock[0])
        first = drive(limiter.acquire())
        second = drive(limiter.acquire())
        third = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0)
        clock[0] = 0.01
        limiter.update(throttled=False, sent=first)
        limiter.release(first)
        await asyncio.sleep(0)
        held = not third.done()
        limiter.update(throttled=True, sent=second)  # the bucket is empty: pacing starts
        limiter.release(second)
        await asyncio.sleep(0)
        with eks_async.instant_retries():
            sent = await third
        return held, limiter.enabled, sent

    held, enabled, _ = run_virtual(main())
    assert held and enabled


def test_slow_start_passes_the_slot_on_when_the_others_are_admitted() -> None:
    clock = [0.0]

    async def main() -> tuple[bool, int | None]:
        limiter = RateLimiter(initial_window=2, clock=lambda: clock[0])
        first = drive(limiter.acquire())
        second = drive(limiter.acquire())
        third = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0)
        clock[0] = 0.01
        limiter.update(throttled=False, sent=first)
        limiter.release(first)
        limiter.update(throttled=False, sent=second)
        limiter.release(second)
        await asyncio.sleep(0)
        return third.done(), limiter.window

    done, window = run_virtual(main())
    assert done and window == 4  # one more per success, given out once both were in


def test_a_slot_is_held_back_only_about_a_round_trip() -> None:
    # The request sent with the admitted one takes far longer than it: not a throttle on
    # its way back, so the held-back slot goes out after a few round trips.
    async def main() -> tuple[bool, float]:
        limiter = RateLimiter(initial_window=2)
        first = drive(limiter.acquire())
        drive(limiter.acquire())  # in flight for good
        third = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0.02)
        limiter.update(throttled=False, sent=first)
        limiter.release(first)
        await asyncio.sleep(0)
        held = not third.done()
        sent: float = await third
        return held, sent

    held, sent = run_virtual(main())
    assert held and sent == pytest.approx(0.02 + 0.06)  # three round trips of 0.02 s


async def _scarce_batch() -> tuple[CallCounts, int]:
    """60 creates at 16 concurrent into 1 request/s, burst 1, with the default retries."""
    loop = asyncio.get_running_loop()
    emu = EKSEmulator(
        clock=LoopClock(loop), delays=Delays.none(), rate_limit=RateLimit(rate=1, burst=1)
    )
    emu.add_cluster("prod")
    gate = asyncio.Semaphore(16)
    failed = 0
    async with emu.client(retry=RetryConfig(mode="adaptive")) as eks:

        async def create(i: int) -> None:
            nonlocal failed
            async with gate:
                try:
                    await eks.create_pod_identity_association(
                        cluster_name="prod", namespace="batch", service_account=f"sa-{i}",
                        role_arn=ROLE,
                    )
                except eks_async.ServiceError:
                    failed += 1

        await asyncio.gather(*(create(i) for i in range(60)))
    return emu.calls("CreatePodIdentityAssociation"), failed


def test_a_scarce_limit_fails_no_call() -> None:
    with real_sleeps():
        counts, failed = run_virtual(_scarce_batch())
    assert failed == 0 and counts.ok == 60
    assert counts.throttled <= 6  # 0.1 per call, burst 1: little room to learn in


async def _throttled_then_ok(mode: str) -> int:
    """Calls throttled twice each, with a quota that pays for one retry: how many failed."""
    throttled = _error(429, "ThrottlingException")
    script = Script(*[a for _ in range(20) for a in (throttled, throttled, _ok())])
    failed = 0
    retry = RetryConfig(mode=mode, quota=5)  # type: ignore[arg-type]
    async with eks_async.EKSClient(
        region="us-west-2", transport=script, retry=retry, **CREDS
    ) as eks:
        for _ in range(20):
            try:
                await eks.list_clusters()
            except eks_async.ServiceError:
                failed += 1
    return failed


def test_adaptive_retries_after_throttles_take_no_quota() -> None:
    with eks_async.instant_retries():
        assert run_virtual(_throttled_then_ok("adaptive")) == 0
        assert run_virtual(_throttled_then_ok("standard")) > 0  # the quota runs out


# --- the 600 x 64 scenario of issue 15, on virtual time -------------------------------------


async def _batch(
    rate: float, burst: int, calls: int, concurrency: int, *, clients: int = 1,
    latency: tuple[float, float] = (0.002, 0.01), raise_to: tuple[float, float] | None = None,
) -> tuple[CallCounts, int, float, RateLimiter]:
    """``calls`` creates, ``concurrency`` at a time, spread over ``clients`` clients that
    share one limiter, into the emulator's token bucket (both on the loop's clock).

    ``raise_to``: ``(after, rate)``, the limit raised to ``rate`` after ``after`` seconds.
    Returns the create counts, the calls that failed, the seconds taken and the limiter.
    """
    loop = asyncio.get_running_loop()
    emu = EKSEmulator(
        clock=LoopClock(loop),
        delays=Delays.none(),
        rate_limit=RateLimit(rate=rate, burst=burst),
        faults=FaultRates(latency=DelayRange(low=latency[0], high=latency[1])),
    )
    emu.add_cluster("prod")
    limiter = RateLimiter()
    retry = RetryConfig(mode="adaptive", limiter=limiter)
    gate = asyncio.Semaphore(concurrency)
    failed = 0
    async with contextlib.AsyncExitStack() as stack:
        eks = [await stack.enter_async_context(emu.client(retry=retry)) for _ in range(clients)]

        async def create(i: int) -> None:
            nonlocal failed
            async with gate:
                try:
                    await eks[i % clients].create_pod_identity_association(
                        cluster_name="prod", namespace="batch", service_account=f"sa-{i:04d}",
                        role_arn=ROLE,
                    )
                except eks_async.ServiceError:
                    failed += 1

        async def raise_limit(after: float, to: float) -> None:
            await asyncio.sleep(after)
            emu.configure(rate_limit=RateLimit(rate=to, burst=burst))

        start = loop.time()
        async with asyncio.TaskGroup() as group:
            if raise_to is not None:
                group.create_task(raise_limit(*raise_to))
            for i in range(calls):
                group.create_task(create(i))
        took = loop.time() - start
    return emu.calls("CreatePodIdentityAssociation"), failed, took, limiter


def test_600_creates_at_64_concurrent_run_at_the_limit_with_few_throttles() -> None:
    with real_sleeps():
        counts, failed, took, limiter = run_virtual(_batch(20, 10, 600, 64))
    assert failed == 0 and counts.ok == 600
    achieved = 600 / took / 20
    print(f"\n600 x 64 @ 20/s burst 10: {achieved:.3f} of the limit, "
          f"{counts.throttled / 600:.3f} throttled per call, {took:.1f} s")
    assert achieved >= 0.95
    assert counts.throttled / 600 <= 0.05
    assert counts.throttled == limiter.throttles
    target = limiter.target_rate
    assert target is not None and 19 <= target <= 21.5  # it holds the service's rate


@pytest.mark.parametrize(
    ("rate", "burst", "calls", "concurrency"),
    [(200, 100, 3000, 512), (50, 25, 750, 8), (5, 3, 150, 64),
     # The benchmark's lowest rate: 30 s of calls, a bucket of one token, so that each
     # throttle is 1/60 of the budget and each second at half the rate 1/30 of it.
     (2, 1, 60, 8), (2, 1, 60, 512)],
)
def test_other_rates_and_concurrencies(rate: int, burst: int, calls: int, concurrency: int) -> None:
    with real_sleeps():
        counts, failed, took, _ = run_virtual(_batch(rate, burst, calls, concurrency))
    assert failed == 0 and counts.ok == calls
    assert calls / took / rate >= 0.95
    assert counts.throttled / calls <= 0.05


def test_a_limiter_shared_by_two_clients_holds_their_joint_rate() -> None:
    with real_sleeps():
        counts, failed, took, limiter = run_virtual(_batch(20, 10, 600, 64, clients=2))
    assert failed == 0 and counts.ok == 600
    assert 600 / took / 20 >= 0.95
    assert counts.throttled / 600 <= 0.05
    assert counts.throttled == limiter.throttles  # both clients' throttles reached it


def test_it_recovers_its_rate_when_the_limit_rises() -> None:
    # 10 requests/s for the first 20 s, then 40: the probing finds the new limit.
    with real_sleeps():
        counts, failed, took, limiter = run_virtual(
            _batch(10, 5, 2000, 64, raise_to=(20.0, 40.0))
        )
    assert failed == 0 and counts.ok == 2000
    target = limiter.target_rate
    assert target is not None and target >= 36
    # Had it stayed at 10/s after the rise, the 1800 calls left would have taken 180 s.
    assert took < 20 + 180 / 2


# --- what it shows ----------------------------------------------------------------------------


def test_retry_after_pauses_the_limiter() -> None:
    clock = [100.0]
    limiter = RateLimiter(clock=lambda: clock[0])

    async def main() -> list[float]:
        waits: list[float] = []
        sent = drive(limiter.acquire())
        limiter.update(throttled=True, sent=sent, retry_after=3.0)
        limiter.release()
        with eks_async.instant_retries():
            await limiter.acquire(lambda seconds, reason: waits.append(seconds))
        return waits

    waits = run_virtual(main())
    assert waits and waits[0] == pytest.approx(3.0)


def test_a_retry_after_also_holds_a_request_already_waiting_its_turn() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        limiter = _internals.paced_limiter(1.0, clock=loop.time)
        waiting = asyncio.ensure_future(limiter.acquire())  # its turn: in 1 s
        await asyncio.sleep(0.1)
        limiter.update(throttled=True, sent=0.05, retry_after=3.0)
        sent: float = await waiting
        limiter.release(sent)
        return sent

    with real_sleeps():
        sent = run_virtual(main())
    assert sent == pytest.approx(3.1)  # not at 1 s: the pause came while it waited


def test_target_changes_are_logged_and_readable(caplog: pytest.LogCaptureFixture) -> None:
    with real_sleeps(), caplog.at_level(logging.DEBUG, logger="eks_async"):
        _, _, _, limiter = run_virtual(_batch(20, 10, 200, 64))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rate limit:")]
    assert lines[0].startswith("rate limit: target ") and "first throttle" in lines[0]
    assert any("estimate 2" in line for line in lines[1:])  # an estimate near 20/s
    assert not any("secret" in r.getMessage() for r in caplog.records)
    assert limiter.target_rate is not None and limiter.measured_rate >= 0
    assert "RateLimiter target=" in repr(limiter)


async def test_views_and_configs_share_a_limiter() -> None:
    shared = RateLimiter()
    script = Script(_error(429, "ThrottlingException"), _ok())
    config = RetryConfig(mode="adaptive", limiter=shared)
    async with eks_async.EKSClient(
        region="us-west-2", transport=script, retry=config, **CREDS
    ) as one, eks_async.EKSClient(
        region="us-west-2", transport=Script(_ok()), retry=config, **CREDS
    ) as two:
        with eks_async.instant_retries():
            await one.list_clusters()
            assert shared.enabled and shared.throttles == 1
            await two.list_clusters()  # paced by the limiter the first client taught
        assert shared.delayed >= 1
    with pytest.raises(ValueError, match="adaptive"):
        RetryConfig(limiter=RateLimiter())


async def _throttled(times: int) -> tuple[bool, int]:
    """One adaptive call (max_attempts=3) throttled ``times`` times, then answered."""
    throttled = _error(429, "ThrottlingException")
    script = Script(*[throttled] * times, _ok())
    async with eks_async.EKSClient(
        region="us-west-2", transport=script, retry=RetryConfig(mode="adaptive"), **CREDS
    ) as eks:
        try:
            out = await eks.list_clusters()
        except eks_async.ServiceError as exc:
            return False, exc.attempts
        assert out.response_metadata is not None
        return True, out.response_metadata.attempts


def test_adaptive_throttled_attempts_have_an_allowance_of_their_own() -> None:
    with eks_async.instant_retries():
        assert run_virtual(_throttled(5)) == (True, 6)  # past max_attempts=3
        assert run_virtual(_throttled(9)) == (True, 10)
        assert run_virtual(_throttled(10)) == (False, 10)  # but not forever
