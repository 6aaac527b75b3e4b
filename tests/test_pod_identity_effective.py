"""``eks.waiters.pod_identity_association_effective`` against the served emulator (EKS over
HTTP, the cluster's Kubernetes API over HTTPS with the test CA), on a ManualClock the
waiter's injected sleep advances: it returns within one maximum delay of EKS Auth seeing
the association, times out carrying EKS Auth's last refusal, takes an updated role only
once EKS Auth hands it out, shows the credentials EKS Auth returned nowhere, and polls on
through throttled DescribePodIdentityAssociation, TokenRequest (429) and EKS Auth calls
(scripted faults and the emulator's rate limit), each counted where it was answered.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from eks_async import (
    RetryConfig,
    WaiterConfig,
    WaiterFailureError,
    WaiterTimeoutError,
    WaitProgress,
    instant_retries,
)
from eks_async._waiters.pod_identity import POD_IDENTITY_DEFAULTS, PodIdentityCheck
from eks_async.eks_auth import AccessDeniedException as AuthAccessDenied
from eks_async.testing import (
    CallCounts,
    Delays,
    EKSEmulator,
    Fault,
    ManualClock,
    RateLimit,
)
from eks_async.testing import _eks_auth as emulated_auth

from ._emulator_support import OTHER_ROLE, ROLE, kubernetes_busy

CREATE_DELAY, AUTH_DELAY = 2.0, 3.0  # Describe sees it after 2 s; EKS Auth 3 s after that
MAX_DELAY = POD_IDENTITY_DEFAULTS.max_delay


@attrs.define
class Served:
    emulator: EKSEmulator
    clock: ManualClock
    url: str

    def client(self) -> Any:
        return self.emulator.client(endpoint_url=self.url, transport=None)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    clock = ManualClock()
    delays = attrs.evolve(
        Delays.none(), association_create=CREATE_DELAY, pod_identity_auth=AUTH_DELAY
    )
    emulator = EKSEmulator(seed=5, clock=clock, delays=delays)
    emulator.add_cluster("prod")
    async with emulator.serve() as url:
        yield Served(emulator, clock, url)


def _config(clock: ManualClock, **kwargs: Any) -> WaiterConfig:
    base: dict[str, Any] = {
        "min_delay": POD_IDENTITY_DEFAULTS.min_delay,
        "max_delay": POD_IDENTITY_DEFAULTS.max_delay,
        "max_wait": POD_IDENTITY_DEFAULTS.max_wait,
        "clock": clock.monotonic,
        "sleep": clock.sleep,
        "rng": random.Random(1).random,
    }
    return WaiterConfig(**{**base, **kwargs})


async def test_effective_within_one_max_delay_of_eks_auth(served: Served) -> None:
    polls: list[WaitProgress] = []
    async with served.client() as eks:
        created = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="default", service_account="default", role_arn=ROLE
        )
        assert created.association is not None
        association_id = created.association.association_id
        effective_at = served.clock.monotonic() + CREATE_DELAY + AUTH_DELAY
        seen = await eks.waiters.pod_identity_association_effective(
            cluster_name="prod", association_id=association_id,
            config=_config(served.clock), on_progress=polls.append,
        )
    returned_at = served.clock.monotonic()
    assert effective_at <= returned_at <= effective_at + MAX_DELAY
    assert seen == PodIdentityCheck(
        association_id=association_id, role_arn=ROLE, namespace="default",
        service_account="default",
    )
    states = [p.state for p in polls]
    assert states[-1] == "effective"
    assert all(s == "ResourceNotFoundException" for s in states[:-1]) and len(states) >= 2
    assert len(polls) <= 4  # 0, 2, then growing delays past 5 s


async def test_by_service_account_times_out_with_the_last_eks_auth_error(
    served: Served,
) -> None:
    served.emulator.pod_identity_missing_code = "AccessDeniedException"
    polls: list[WaitProgress] = []
    async with served.client() as eks:
        with pytest.raises(WaiterTimeoutError) as caught:
            await eks.waiters.pod_identity_association_effective(
                cluster_name="prod", namespace="kube-system", service_account="default",
                config=_config(served.clock, max_wait=30.0), on_progress=polls.append,
            )
    assert isinstance(caught.value.last_error, AuthAccessDenied)
    assert caught.value.elapsed <= 30.0
    assert {p.state for p in polls} == {"AccessDeniedException"}
    # Without it among the not-yet codes, the first refusal ends the wait.
    async with served.client() as eks:
        with pytest.raises(WaiterFailureError) as failed:
            await eks.waiters.pod_identity_association_effective(
                cluster_name="prod", namespace="kube-system", service_account="default",
                config=_config(served.clock), not_yet_codes=("ResourceNotFoundException",),
            )
    assert isinstance(failed.value.error, AuthAccessDenied) and failed.value.polls == 1


async def test_an_updated_role_is_effective_only_once_eks_auth_sees_it(served: Served) -> None:
    polls: list[WaitProgress] = []
    async with served.client() as eks:
        created = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="default", service_account="default", role_arn=ROLE
        )
        assert created.association is not None
        association_id = created.association.association_id
        await eks.waiters.pod_identity_association_effective(
            cluster_name="prod", association_id=association_id, config=_config(served.clock)
        )
        await eks.update_pod_identity_association(
            cluster_name="prod", association_id=association_id, role_arn=OTHER_ROLE
        )
        effective_at = served.clock.monotonic() + AUTH_DELAY
        seen = await eks.waiters.pod_identity_association_effective(
            cluster_name="prod", association_id=association_id,
            config=_config(served.clock), on_progress=polls.append,
        )
    returned_at = served.clock.monotonic()
    assert effective_at <= returned_at <= effective_at + MAX_DELAY
    assert seen.role_arn == OTHER_ROLE and seen.association_id == association_id
    states = [p.state for p in polls]
    assert states[0] == "role payments-api answered, not payments-api-v2"
    assert states[-1] == "effective"


async def test_the_credentials_show_nowhere(
    served: Served, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    issued: list[dict[str, Any]] = []
    real = emulated_auth._assume

    def recording(*args: Any) -> dict[str, Any]:
        answer = real(*args)
        issued.append(answer["credentials"])
        return answer

    monkeypatch.setattr(emulated_auth, "_assume", recording)
    shown: list[str] = []
    polls: list[WaitProgress] = []
    async with served.client() as eks:
        created = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="default", service_account="default", role_arn=ROLE
        )
        assert created.association is not None
        association_id = created.association.association_id
        seen = await eks.waiters.pod_identity_association_effective(
            cluster_name="prod", association_id=association_id,
            config=_config(served.clock), on_progress=polls.append,
        )
        await eks.update_pod_identity_association(
            cluster_name="prod", association_id=association_id, role_arn=OTHER_ROLE
        )
        # Never effective in 2 s: old-role answers (with credentials) until the timeout.
        with pytest.raises(WaiterTimeoutError) as caught:
            await eks.waiters.pod_identity_association_effective(
                cluster_name="prod", association_id=association_id,
                config=_config(served.clock, max_wait=2.5), on_progress=polls.append,
            )
    assert len(issued) >= 2
    error = caught.value
    shown += [repr(seen), str(seen), repr(error), str(error), repr(error.last_output)]
    shown += [repr(error.last_error)] + [repr(p) for p in polls]
    shown += [record.getMessage() for record in caplog.records]
    shown += [repr(vars(record)) for record in caplog.records]
    for creds in issued:
        for secret in (creds["secretAccessKey"], creds["sessionToken"], creds["accessKeyId"]):
            assert all(secret not in text for text in shown)
    assert not any(hasattr(seen, name) for name in ("credentials", "secret_access_key"))


# --- through throttling ------------------------------------------------------------------------
# EKS Auth sees the association a minute after Describe: the throttled polls all fall inside
# that window, so the wait still returns within one maximum delay of EKS Auth seeing it.
SLOW_AUTH = 60.0
AUTH_OP = "AssumeRoleForPodIdentity"


@pytest.fixture
async def slow() -> AsyncIterator[Served]:
    clock = ManualClock()
    delays = attrs.evolve(
        Delays.none(), association_create=CREATE_DELAY, pod_identity_auth=SLOW_AUTH
    )
    emulator = EKSEmulator(seed=5, clock=clock, delays=delays)
    emulator.add_cluster("prod")
    async with emulator.serve() as url:
        yield Served(emulator, clock, url)


async def _create(served: Served) -> tuple[str, float]:
    async with served.client() as eks:
        created = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="default", service_account="default", role_arn=ROLE
        )
    assert created.association is not None
    return created.association.association_id, served.clock.monotonic() + CREATE_DELAY + SLOW_AUTH


async def test_polls_on_through_throttled_describe_token_request_and_eks_auth(
    slow: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = slow.emulator
    association_id, effective_at = await _create(slow)
    emulator.script("DescribePodIdentityAssociation", Fault.THROTTLE, times=2)
    emulator.script(AUTH_OP, Fault.THROTTLE, times=2)
    token_requests = kubernetes_busy(emulator, monkeypatch, times=2, path_suffix="/token")
    polls: list[WaitProgress] = []
    # No retries inside a call: every throttled answer reaches the waiter.
    async with slow.emulator.client(
        endpoint_url=slow.url, transport=None, retry=RetryConfig(max_attempts=1)
    ) as eks:
        seen = await eks.waiters.pod_identity_association_effective(
            cluster_name="prod", association_id=association_id,
            config=_config(slow.clock, jitter=False), on_progress=polls.append,
        )
    returned_at = slow.clock.monotonic()
    assert seen.association_id == association_id and seen.role_arn == ROLE
    assert effective_at <= returned_at <= effective_at + MAX_DELAY
    states = [p.state for p in polls]
    # Describe first, then the TokenRequest, then EKS Auth: each throttled twice in turn.
    assert states[:6] == ["throttled (ThrottlingException)"] * 2 + [
        "throttled (TooManyRequests)"
    ] * 2 + ["throttled (ThrottlingException)"] * 2
    assert set(states[6:-1]) == {"ResourceNotFoundException"} and states[-1] == "effective"
    # Every poll is counted where it was answered.
    describe = emulator.calls("DescribePodIdentityAssociation")
    assert (describe.throttled, describe.total) == (2, len(polls))
    assert token_requests == {"refused": 2, "served": len(polls) - 4}
    auth = emulator.calls(AUTH_OP)
    assert (auth.throttled, auth.rate_limited, auth.ok) == (2, 0, 1)
    assert auth.error == len(polls) - 7  # the ResourceNotFoundException polls
    assert emulator.calls("DescribeCluster").total == 1  # once per wait


async def test_polls_on_through_eks_auth_s_rate_limit(slow: Served) -> None:
    emulator = slow.emulator
    association_id, effective_at = await _create(slow)
    # EKS Auth admits one call per 10 s: faster polls are throttled by the rate limit.
    emulator.configure(rate_limit=RateLimit(rate=100, burst=100, per_operation={AUTH_OP: (0.1, 1)}))
    polls: list[WaitProgress] = []
    async with slow.emulator.client(
        endpoint_url=slow.url, transport=None, retry=RetryConfig(max_attempts=1)
    ) as eks:
        await eks.waiters.pod_identity_association_effective(
            cluster_name="prod", association_id=association_id,
            config=_config(slow.clock, jitter=False), on_progress=polls.append,
        )
    returned_at = slow.clock.monotonic()
    assert effective_at <= returned_at <= effective_at + MAX_DELAY
    states = [p.state for p in polls]
    auth = emulator.calls(AUTH_OP)
    assert auth.rate_limited >= 1 and auth.rate_limited == auth.throttled
    assert states.count("throttled (ThrottlingException)") == auth.rate_limited
    assert auth.ok == 1 and states[-1] == "effective"
    # The first poll came before Describe saw the association (EKS's not-found): every
    # other poll reached EKS Auth, and the limit throttled only EKS Auth.
    assert emulator.calls("DescribePodIdentityAssociation") == CallCounts(
        ok=len(polls) - 1, error=1
    )
    assert auth.total == len(polls) - 1


async def test_the_clients_own_retries_absorb_short_throttling(slow: Served) -> None:
    emulator = slow.emulator
    association_id, effective_at = await _create(slow)
    emulator.script("DescribePodIdentityAssociation", Fault.THROTTLE)
    emulator.script(AUTH_OP, Fault.THROTTLE, times=2)
    polls: list[WaitProgress] = []
    with instant_retries():
        async with slow.client() as eks:
            await eks.waiters.pod_identity_association_effective(
                cluster_name="prod", association_id=association_id,
                config=_config(slow.clock), on_progress=polls.append,
            )
    assert effective_at <= slow.clock.monotonic() <= effective_at + MAX_DELAY
    # Retried inside the first poll: the waiter saw no throttling at all.
    assert not any(p.state.startswith("throttled") for p in polls)
    assert polls[0].state == "ResourceNotFoundException"
    assert emulator.calls(AUTH_OP).throttled == 2
    assert emulator.calls("DescribePodIdentityAssociation").throttled == 1
