"""Throttling by rate: the emulator's token buckets, counted on a clock moved by hand.

Nothing here reads the wall clock: the buckets fill on the emulator's clock (a
``ManualClock``, or the virtual-time loop's clock for the adaptive-mode client), so every
count below is the same on an idle machine and on a loaded one.
"""

from __future__ import annotations

import asyncio
import json
import math

import attrs
import httpx
import pytest

import eks_async
from eks_async import RetryConfig, ServiceError, ThrottlingException
from eks_async._ratelimit import RateLimiter
from eks_async.testing import (
    CallCounts,
    Delays,
    EKSEmulator,
    EmulatorConfig,
    Exchange,
    FaultRates,
    ManualClock,
)
from eks_async.testing._config import RateLimit

from . import _internals
from ._emulator_support import ROLE, validate_emulator_responses  # noqa: F401
from ._virtual_time import run_virtual

NO_RETRY = RetryConfig(max_attempts=1)
OTHER_KEY, OTHER_SECRET, OTHER_ACCOUNT = "AKIDOTHERACCOUNT", "other-secret", "210987654321"


def emulator(limit: RateLimit | None, **settings: object) -> EKSEmulator:
    emu = EKSEmulator(clock=ManualClock(), delays=Delays.none(), rate_limit=limit, **settings)
    emu.add_cluster("prod")
    return emu


async def passed(eks: eks_async.EKSClient, calls: int, operation: str = "ListClusters") -> int:
    """Make ``calls`` calls of ``operation`` without retries; how many were let through.

    Every refusal must be the rate limit's answer: HTTP 429 with the configured code.
    """
    ok = 0
    for _ in range(calls):
        try:
            if operation == "ListClusters":
                await eks.list_clusters()
            else:
                await eks.describe_cluster(name="prod")
        except ServiceError as exc:
            assert exc.http_status == 429, exc
            assert exc.code in ("ThrottlingException", "TooManyRequestsException")
        else:
            ok += 1
    return ok


# --- (1) counts at a frozen instant, and after moving the clock --------------------------------


async def test_a_frozen_instant_lets_exactly_the_burst_through_then_the_rate_refills() -> None:
    rate, burst = 4.0, 3
    emu = emulator(RateLimit(rate=rate, burst=burst))
    async with emu.client(retry=NO_RETRY) as eks:
        assert await passed(eks, 10) == burst
        # More refused calls at the same instant take nothing, and give nothing back.
        assert await passed(eks, 25) == 0
        for step, expected in ((0.25, 1), (0.5, 2), (0.75, 3), (0.6, 2), (1.25, 3)):
            emu.advance(step)
            assert expected == min(burst, math.floor(rate * step))
            assert await passed(eks, 10) == expected
        # A long pause fills the bucket, but never past the burst.
        emu.advance(3600)
        assert await passed(eks, 10) == burst
        # Tokens add up across steps too small for a whole one each.
        emu.advance(0.1)
        assert await passed(eks, 5) == 0  # 0.4 of a token
        emu.advance(0.1)
        assert await passed(eks, 5) == 0  # 0.8
        emu.advance(0.1)
        assert await passed(eks, 5) == 1  # 1.2: one call, 0.2 left
        emu.advance(0.2)
        assert await passed(eks, 5) == 1  # 0.2 + 0.8
    calls = 10 + 25 + 5 * 10 + 10 + 4 * 5
    ok = burst + (1 + 2 + 3 + 2 + 3) + burst + 1 + 1
    assert emu.calls("ListClusters") == CallCounts(
        ok=ok, throttled=calls - ok, rate_limited=calls - ok
    )


async def test_a_refused_call_is_answered_as_eks_throttles_and_not_acted_on() -> None:
    emu = emulator(RateLimit(rate=1, burst=2), throttle_code="TooManyRequestsException")
    seen: list[Exchange] = []
    emu.add_listener(seen.append)
    async with emu.client(retry=NO_RETRY) as eks:
        created = refused = 0
        for i in range(5):
            try:
                await eks.create_pod_identity_association(
                    cluster_name="prod", namespace="ns", service_account=f"sa-{i}", role_arn=ROLE
                )
            except ServiceError as exc:
                assert (exc.code, exc.http_status) == ("TooManyRequestsException", 429)
                assert exc.message == "Too Many Requests"
                refused += 1
            else:
                created += 1
        assert (created, refused) == (2, 3)
        emu.advance(10)  # the List below must not be refused
        listed = [a async for a in eks.paginate.list_pod_identity_associations(
            cluster_name="prod")]
    # Only the calls let through made an association.
    assert sorted(a.service_account for a in listed) == ["sa-0", "sa-1"]
    creates = [e for e in seen if e.operation == "CreatePodIdentityAssociation"]
    assert [(e.outcome, e.fault, e.response.status) for e in creates] == [
        ("ok", None, 200), ("ok", None, 200),
        ("throttled", None, 429), ("throttled", None, 429), ("throttled", None, 429),
    ]
    assert emu.calls("CreatePodIdentityAssociation") == CallCounts(
        ok=2, throttled=3, rate_limited=3
    )


async def test_per_operation_buckets_are_separate_from_the_shared_one() -> None:
    emu = emulator(RateLimit(rate=2, burst=3, per_operation={"DescribeCluster": (1, 5)}))
    async with emu.client(retry=NO_RETRY) as eks:
        assert await passed(eks, 10, "ListClusters") == 3
        # The shared bucket is empty; DescribeCluster's own is full, with its own burst.
        assert await passed(eks, 10, "DescribeCluster") == 5
        emu.advance(1.0)
        assert await passed(eks, 10, "ListClusters") == 2  # the shared rate
        assert await passed(eks, 10, "DescribeCluster") == 1  # its own rate
    assert emu.calls("DescribeCluster") == CallCounts(ok=6, throttled=14, rate_limited=14)


async def test_buckets_are_per_account_and_region() -> None:
    emu = emulator(RateLimit(rate=1, burst=2))
    emu.register_credentials(OTHER_KEY, OTHER_SECRET, account_id=OTHER_ACCOUNT)
    async with (
        emu.client(retry=NO_RETRY) as here,
        emu.client(retry=NO_RETRY, region="eu-west-1") as other_region,
        emu.client(
            retry=NO_RETRY, aws_access_key_id=OTHER_KEY, aws_secret_access_key=OTHER_SECRET
        ) as other_account,
    ):
        assert await passed(here, 5) == 2
        assert await passed(other_region, 5) == 2
        assert await passed(other_account, 5) == 2
        assert await passed(here, 5) == 0
    state = json.loads((await emu.handle(admin("GET", "state"))).body)
    assert state["rate_limit_tokens"] == {
        f"{OTHER_ACCOUNT}/us-west-2/*": 0.0,
        "123456789012/eu-west-1/*": 0.0,
        "123456789012/us-west-2/*": 0.0,
    }


async def test_the_random_throttle_fault_stays_separate_from_the_rate_limit() -> None:
    emu = emulator(RateLimit(rate=1, burst=4), faults=FaultRates(throttle=1.0))
    async with emu.client(retry=NO_RETRY) as eks:
        with pytest.raises(ThrottlingException):
            await eks.list_clusters()
        assert await passed(eks, 9) == 0
    # Four calls took the tokens and met the fault; the rest the empty bucket.
    assert emu.calls("ListClusters") == CallCounts(throttled=10, rate_limited=6)
    emu.configure(faults=FaultRates())
    async with emu.client(retry=NO_RETRY) as eks:
        assert await passed(eks, 3) == 0  # still empty: the setting did not change
        emu.advance(2)
        assert await passed(eks, 3) == 2


async def test_a_new_setting_starts_full_buckets_and_none_turns_the_limit_off() -> None:
    emu = emulator(RateLimit(rate=1, burst=2))
    async with emu.client(retry=NO_RETRY) as eks:
        assert await passed(eks, 5) == 2
        emu.configure(rate_limit=RateLimit(rate=1, burst=3))
        assert await passed(eks, 5) == 3
        emu.configure(rate_limit=None)
        assert await passed(eks, 50) == 50
        emu.configure(rate_limit=RateLimit(rate=1, burst=3))
        assert await passed(eks, 5) == 3
        emu.reset()  # forgets everything: the buckets start full again
        assert await passed(eks, 5) == 3
    assert emu.calls("ListClusters") == CallCounts(ok=3, throttled=2, rate_limited=2)


# --- (2) over a window -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "burst", "spacing", "calls"),
    [
        (10.0, 5, 1 / 16, 160),  # twice too fast: the burst, then the rate
        (4.0, 1, 1 / 8, 200),  # a burst of one: every other call
        (10.0, 5, 1 / 8, 80),  # as fast as the rate allows: nothing is refused
        (4.0, 2, 1.0, 30),  # slower than the rate: nothing is refused
    ],
)
async def test_calls_spread_over_a_window_pass_at_the_rate(
    rate: float, burst: int, spacing: float, calls: int
) -> None:
    emu = emulator(RateLimit(rate=rate, burst=burst))
    ok = 0
    async with emu.client(retry=NO_RETRY) as eks:
        for i in range(calls):
            if i:
                emu.advance(spacing)
            ok += await passed(eks, 1)
    window = spacing * (calls - 1)
    # The burst plus what the window refills, less the fraction of a token left at the
    # end: while calls come faster than the rate, the bucket never fills up again (so no
    # token is lost to the cap) and no call is refused while it holds a whole token.
    # (The spacings are powers of two, so the clock's sums are exact.)
    expected = min(calls, math.floor(burst + rate * window))
    assert ok == expected
    assert emu.calls("ListClusters").rate_limited == calls - expected


# --- (3) the adaptive retry mode against it loses nothing --------------------------------------


class LoopClock:
    """The emulator's clock read from the running (virtual-time) loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def monotonic(self) -> float:
        return self._loop.time()

    def time(self) -> float:
        return 1_750_000_000.0 + self._loop.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _adaptive_batch(creates: int) -> tuple[EKSEmulator, list[str], list[str], bool]:
    loop = asyncio.get_running_loop()
    emu = EKSEmulator(
        clock=LoopClock(loop),
        delays=Delays.none(),
        rate_limit=RateLimit(
            rate=50, burst=10, per_operation={"CreatePodIdentityAssociation": (5, 3)}
        ),
    )
    emu.add_cluster("prod")
    retry = RetryConfig(mode="adaptive", max_attempts=20, quota=None)
    semaphore = asyncio.Semaphore(8)
    async with emu.client(retry=retry) as eks:
        # The client's pacing runs on the same (virtual) clock as the buckets.
        _internals.install_rate_limiter(eks, RateLimiter(clock=loop.time))

        async def create(i: int) -> str:
            async with semaphore:
                out = await eks.create_pod_identity_association(
                    cluster_name="prod", namespace="batch", service_account=f"sa-{i:03d}",
                    role_arn=ROLE,
                )
            assert out.association is not None and out.association.association_id
            return out.association.association_id

        ids = await asyncio.gather(*(create(i) for i in range(creates)))
        limiter = _internals.rate_limiter(eks)
        paced = limiter is not None and limiter.enabled
        listed = [a async for a in eks.paginate.list_pod_identity_associations(
            cluster_name="prod")]
    # Every association as listed: its id, and service account.
    assert sorted(a.association_id for a in listed) == sorted(ids)
    return emu, list(ids), sorted(a.service_account for a in listed), paced


def test_the_adaptive_retry_mode_against_the_rate_limit_loses_and_duplicates_nothing() -> None:
    creates = 60
    eks_async.set_instant_retries(False)  # backoff and pacing sleep, on virtual time
    emu, ids, accounts, paced = run_virtual(_adaptive_batch(creates))
    assert len(ids) == len(set(ids)) == creates
    assert accounts == [f"sa-{i:03d}" for i in range(creates)]
    counts = emu.calls("CreatePodIdentityAssociation")
    assert counts.ok == creates
    assert counts.error == counts.dropped == 0
    assert counts.throttled == counts.rate_limited > 0
    assert paced  # the throttles reached the client's limiter


async def _list_batch(mode: str) -> CallCounts:
    """200 ListClusters, 16 at a time, against 100 calls/s with a burst of 5."""
    loop = asyncio.get_running_loop()
    emu = EKSEmulator(
        clock=LoopClock(loop), delays=Delays.none(), rate_limit=RateLimit(rate=100, burst=5)
    )
    retry = RetryConfig(mode=mode, max_attempts=30, max_backoff=0.2, quota=None)  # type: ignore[arg-type]
    semaphore = asyncio.Semaphore(16)
    async with emu.client(retry=retry) as eks:
        if mode == "adaptive":
            _internals.install_rate_limiter(eks, RateLimiter(clock=loop.time))

        async def one() -> None:
            async with semaphore:
                await eks.list_clusters()

        await asyncio.gather(*(one() for _ in range(200)))
    return emu.calls("ListClusters")


def test_the_adaptive_mode_is_throttled_far_less_than_the_standard_mode() -> None:
    # The emulator's limit is one the adaptive mode can learn: it recovers between
    # throttles instead of slowing down forever (what a random throttle fault makes it do).
    eks_async.set_instant_retries(False)
    standard = run_virtual(_list_batch("standard"))
    adaptive = run_virtual(_list_batch("adaptive"))
    assert standard.ok == adaptive.ok == 200
    assert standard.rate_limited == standard.throttled > 0
    assert adaptive.rate_limited == adaptive.throttled
    assert adaptive.throttled * 10 < standard.throttled


# --- (4) the setting over the admin API ----------------------------------------------------


def admin(method: str, name: str, body: object = None) -> eks_async.testing.EmulatorRequest:
    return eks_async.testing.EmulatorRequest(
        method=method,
        path=f"/_emulator/{name}",
        query="",
        headers=(("Content-Type", "application/json"),),
        body=b"" if body is None else json.dumps(body).encode(),
    )


async def test_the_rate_limit_round_trips_through_the_admin_api() -> None:
    emu = emulator(None)
    async with httpx.AsyncClient(transport=emu.transport(), base_url="http://eks.test") as http:
        assert (await http.get("/_emulator/config")).json()["rate_limit"] is None
        setting = {
            "rate": 20,
            "burst": 10,
            "per_operation": {"CreatePodIdentityAssociation": [5, 5]},
        }
        answer = await http.post("/_emulator/config", json={"rate_limit": setting})
        assert answer.status_code == 200
        shown = {"rate": 20.0, "burst": 10, "per_operation": {
            "CreatePodIdentityAssociation": [5.0, 5]}}
        assert answer.json()["rate_limit"] == shown
        assert (await http.get("/_emulator/config")).json()["rate_limit"] == shown
        assert emu.config.rate_limit == RateLimit(
            rate=20, burst=10, per_operation={"CreatePodIdentityAssociation": (5, 5)}
        )

        # It is enforced, and counted where the counters show.
        async with emu.client(retry=NO_RETRY) as eks:
            assert await passed(eks, 15) == 10
        counters = (await http.get("/_emulator/counters")).json()
        assert counters["ListClusters"] == {
            "ok": 10, "throttled": 5, "error": 0, "dropped": 0, "rate_limited": 5, "total": 15
        }
        state = (await http.get("/_emulator/state")).json()
        assert state["rate_limit_tokens"] == {"123456789012/us-west-2/*": 0.0}
        await http.post("/_emulator/clock", json={"advance": 0.25})
        state = (await http.get("/_emulator/state")).json()
        assert state["rate_limit_tokens"] == {"123456789012/us-west-2/*": 5.0}

        # An object names only the fields to change; per_operation replaces the table.
        answer = await http.post(
            "/_emulator/config", json={"rate_limit": {"burst": 2, "per_operation": {}}}
        )
        assert answer.json()["rate_limit"] == {"rate": 20.0, "burst": 2, "per_operation": {}}

        # Bad settings are refused with 400 and change nothing.
        for bad in (
            {"burst": 0},
            {"burst": 1.5},
            {"rate": 0},
            {"rate": -3},
            {"rate": "fast"},
            {"rate": True},
            {"nope": 1},
            {"per_operation": {"NoSuchOperation": [1, 1]}},
            {"per_operation": {"ListClusters": [1]}},
            {"per_operation": {"ListClusters": [1, 0]}},
            {"per_operation": {"ListClusters": [0, 1]}},
            {"per_operation": ["ListClusters"]},
            [20, 10],
        ):
            refused = await http.post("/_emulator/config", json={"rate_limit": bad})
            assert refused.status_code == 400, bad
            assert "message" in refused.json()
        assert emu.config.rate_limit == RateLimit(rate=20, burst=2)
        off = await http.post("/_emulator/config", json={"rate_limit": None})
        assert off.json()["rate_limit"] is None
        # With no limit, an object must give a rate.
        refused = await http.post("/_emulator/config", json={"rate_limit": {"burst": 3}})
        assert refused.status_code == 400 and "rate" in refused.json()["message"]
        assert emu.config.rate_limit is None
        async with emu.client(retry=NO_RETRY) as eks:
            assert await passed(eks, 30) == 30


def test_the_setting_is_checked_in_python_too_and_round_trips_as_json() -> None:
    limit = RateLimit(rate=2.5, burst=4, per_operation={"DescribeCluster": [1, 2]})
    assert limit.per_operation == {"DescribeCluster": (1.0, 2)}
    assert limit.bucket_for("DescribeCluster") == ("DescribeCluster", 1.0, 2)
    assert limit.bucket_for("ListClusters") == ("*", 2.5, 4)
    config = EmulatorConfig(rate_limit=limit, throttle_code="TooManyRequestsException")
    assert EmulatorConfig().updated(json.loads(json.dumps(config.to_json()))) == config
    assert EmulatorConfig(rate_limit={"rate": 2.5, "burst": 4}) == attrs.evolve(
        config, rate_limit=RateLimit(rate=2.5, burst=4), throttle_code="ThrottlingException"
    )
    assert EKSEmulator(rate_limit=limit).config.rate_limit == limit
    assert EKSEmulator().configure(rate_limit=limit).rate_limit == limit
    for bad in (
        {"rate": 0},
        {"rate": 1, "burst": 0},
        {"rate": 1, "burst": 2.5},
        {"rate": math.inf},
        {"rate": 1, "per_operation": {"Nope": (1, 1)}},
        {"rate": 1, "per_operation": {"ListClusters": (1, 1, 1)}},
    ):
        with pytest.raises((TypeError, ValueError)):
            RateLimit(**bad)  # type: ignore[arg-type]
