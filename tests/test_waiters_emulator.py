"""Waiters and paginators against the emulator, on one manual clock (EKS time)."""

from __future__ import annotations

import math
import random

import pytest

import eks_async
from eks_async import WaiterConfig, WaitProgress
from eks_async.testing import Delays, EKSEmulator, Fault, FaultRates, ManualClock

ROLE = "arn:aws:iam::123456789012:role/app"


def _setup(**settings: object) -> tuple[EKSEmulator, ManualClock]:
    clock = ManualClock()
    emulator = EKSEmulator(seed=9, clock=clock, **settings)  # type: ignore[arg-type]
    emulator.add_cluster("prod")
    return emulator, clock


def _config(clock: ManualClock, **kwargs: object) -> WaiterConfig:
    base = {"clock": clock.monotonic, "sleep": clock.sleep, "rng": random.Random(1).random}
    return WaiterConfig(**{**base, **kwargs})  # type: ignore[arg-type]


async def test_association_visible_returns_soon_after_both_reads_agree_with_few_polls() -> None:
    delay = 3.0
    emulator, clock = _setup(delays=Delays(association_create=delay))
    polls: list[WaitProgress] = []
    async with emulator.client() as eks:
        out = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="ns", service_account="sa", role_arn=ROLE
        )
        created_at = clock.monotonic()
        assert out.association is not None and out.association.association_id
        with pytest.raises(eks_async.ResourceNotFoundException):
            await eks.describe_pod_identity_association(
                cluster_name="prod", association_id=out.association.association_id)
        defaults = eks_async._waiters.identity.ASSOCIATION_DEFAULTS
        seen = await eks.waiters.pod_identity_association_visible(
            cluster_name="prod", association_id=out.association.association_id,
            config=_config(clock, min_delay=defaults.min_delay, max_delay=defaults.max_delay,
                           max_wait=defaults.max_wait),
            on_progress=polls.append,
        )
    assert seen.association is not None
    assert seen.association.association_id == out.association.association_id
    visible_at = created_at + delay
    returned_at = clock.monotonic()
    fixed_polls = math.ceil(delay / 1.0) + 1  # a fixed 1 s poll: at 0, 1, 2, 3 s
    print(f"\nvisible after {delay}s: {len(polls)} polls, returned {returned_at - visible_at:.2f}s "
          f"after visibility (fixed 1 s polling: {fixed_polls} polls)")
    assert returned_at >= visible_at
    assert returned_at - visible_at <= defaults.max_delay
    assert len(polls) < fixed_polls
    assert [p.state for p in polls][-1] == "visible"


async def test_throttling_during_the_wait_slows_polling_but_the_wait_succeeds() -> None:
    async def rate(throttle: float) -> tuple[int, float]:
        faults = {op: FaultRates(throttle=throttle)
                  for op in ("DescribePodIdentityAssociation", "ListPodIdentityAssociations")}
        emulator, clock = _setup(delays=Delays(association_create=120.0),
                                 operation_faults=faults)
        polls: list[WaitProgress] = []
        async with emulator.client(retry=eks_async.RetryConfig(max_attempts=1)) as eks:
            out = await eks.create_pod_identity_association(
                cluster_name="prod", namespace="ns", service_account="sa", role_arn=ROLE
            )
            start = clock.monotonic()
            assert out.association is not None and out.association.association_id
            await eks.waiters.pod_identity_association_visible(
                cluster_name="prod", association_id=out.association.association_id,
                config=_config(clock, min_delay=1, max_delay=20, max_wait=600, jitter=False),
                on_progress=polls.append,
            )
        throttled = sum(1 for p in polls if p.state.startswith("throttled"))
        return throttled, len(polls) / (clock.monotonic() - start)

    calm_throttled, calm_rate = await rate(0.0)
    throttled, busy_rate = await rate(0.3)
    print(f"\npolls per EKS second: {calm_rate:.3f} calm, {busy_rate:.3f} with 30% throttling "
          f"({throttled} throttled polls)")
    assert calm_throttled == 0 and throttled > 0
    assert busy_rate < calm_rate


async def test_update_successful_follows_an_identity_provider_association() -> None:
    emulator, clock = _setup()
    async with emulator.client() as eks:
        started = await eks.associate_identity_provider_config(
            cluster_name="prod",
            oidc=eks_async.OidcIdentityProviderConfigRequest(
                identity_provider_config_name="okta", issuer_url="https://example.okta.com",
                client_id="kubernetes"),
        )
        assert started.update is not None and started.update.id is not None
        assert started.update.status == "InProgress"
        polls: list[WaitProgress] = []
        done = await eks.waiters.update_successful(
            cluster_name="prod", update_id=started.update.id,
            config=_config(clock, min_delay=5, max_delay=60, max_wait=45 * 60),
            on_progress=polls.append,
        )
        assert done.update is not None and done.update.status == "Successful"
        assert 900 <= clock.monotonic() <= 1800 + 60  # EKS's 15-30 minutes, polled through
        active = await eks.waiters.identity_provider_config_active(
            cluster_name="prod", name="okta", config=_config(clock))
        oidc = active.identity_provider_config.oidc  # type: ignore[union-attr]
        assert oidc is not None and oidc.status == "ACTIVE"


async def test_a_failed_update_raises_with_its_errors_and_a_short_wait_times_out() -> None:
    emulator, clock = _setup()
    emulator.script("AssociateIdentityProviderConfig", Fault.FAIL_UPDATE,
                    error_code="AccessDenied", message="the cluster role may not do that")
    async with emulator.client() as eks:
        started = await eks.associate_identity_provider_config(
            cluster_name="prod",
            oidc=eks_async.OidcIdentityProviderConfigRequest(
                identity_provider_config_name="okta", issuer_url="https://example.okta.com",
                client_id="kubernetes"),
        )
        assert started.update is not None and started.update.id is not None
        with pytest.raises(eks_async.WaiterFailureError) as failed:
            await eks.waiters.update_successful(
                cluster_name="prod", update_id=started.update.id,
                config=_config(clock, max_wait=45 * 60))
        final = await eks.describe_update(name="prod", update_id=started.update.id)
        assert final.update is not None and final.update.status == "Failed"
        assert failed.value.errors == final.update.errors
        assert failed.value.errors and failed.value.errors[0].error_code == "AccessDenied"

    emulator, clock = _setup()
    async with emulator.client() as eks:
        started = await eks.associate_identity_provider_config(
            cluster_name="prod",
            oidc=eks_async.OidcIdentityProviderConfigRequest(
                identity_provider_config_name="okta", issuer_url="https://example.okta.com",
                client_id="kubernetes"),
        )
        assert started.update is not None and started.update.id is not None
        with pytest.raises(eks_async.WaiterTimeoutError) as timed_out:
            await eks.waiters.update_successful(
                cluster_name="prod", update_id=started.update.id,
                config=_config(clock, min_delay=5, max_delay=30, max_wait=120))
    assert timed_out.value.last_output.update.status == "InProgress"
    assert clock.monotonic() <= 120


async def test_wait_returns_once_the_change_is_visible() -> None:
    emulator, clock = _setup(delays=Delays(association_create=4.0, association_delete=4.0))
    waits = _config(clock, min_delay=1, max_delay=10, max_wait=120)  # wait= takes a config
    async with emulator.client() as eks:
        out = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="ns", service_account="sa", role_arn=ROLE, wait=waits,
        )
        assert out.association is not None and out.association.association_id
        assert clock.monotonic() >= 4.0
        seen = await eks.describe_pod_identity_association(
            cluster_name="prod", association_id=out.association.association_id)
        assert seen.association is not None
        await eks.delete_pod_identity_association(
            cluster_name="prod", association_id=out.association.association_id, wait=waits)
        with pytest.raises(eks_async.ResourceNotFoundException):
            await eks.describe_pod_identity_association(
                cluster_name="prod", association_id=out.association.association_id)


@pytest.mark.parametrize("count", [0, 1, 100, 250])
async def test_paginators_yield_every_association_exactly_once(count: int) -> None:
    emulator, _ = _setup(delays=Delays.none())
    async with emulator.client() as eks:
        for i in range(count):
            await eks.create_pod_identity_association(
                cluster_name="prod", namespace="ns", service_account=f"sa-{i}", role_arn=ROLE)
        paginator = eks.paginate.list_pod_identity_associations(cluster_name="prod",
                                                                max_results=7)
        pages = [page async for page in paginator.pages()]
        items = [a async for a in paginator]
    assert sorted(a.service_account for a in items) == sorted(f"sa-{i}" for i in range(count))
    assert len({a.association_id for a in items}) == count
    assert len(pages) == max(1, math.ceil(count / 7))
