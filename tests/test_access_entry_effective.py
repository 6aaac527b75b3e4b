"""``eks.waiters.access_entry_effective`` against the emulator's clusters (real HTTPS on
127.0.0.1 with the test CA), on a ManualClock the waiter's injected sleep advances: it
polls through 401 (entry not propagated) and 403 (policy not propagated), slows down on
throttling (EKS's and the Kubernetes API's 429) yet returns within one maximum delay of the
entry taking effect, counting each call where it was answered, times out carrying the last
refusal, and shows no token anywhere.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

import eks_async
from eks_async import (
    AccessScope,
    AccessScopeType,
    CanI,
    Credentials,
    KubernetesAPIError,
    WaiterConfig,
    WaiterFailureError,
    WaiterTimeoutError,
    WaitProgress,
)
from eks_async._waiters.access import ACCESS_DEFAULTS
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    CallCounts,
    Delays,
    EKSEmulator,
    Fault,
    ManualClock,
)

from ._emulator_support import kubernetes_busy

ACCOUNT = "123456789012"
ME = f"arn:aws:iam::{ACCOUNT}:user/{TEST_ACCESS_KEY_ID}"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/ci/deployer"
KEY, SECRET = "AKIDDEPLOYER", "deployer-secret"
SESSION_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/alice"
VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
ENTRY_DELAY, POLICY_DELAY = 12.0, 25.0
DEPLOYER_CREDS = Credentials(access_key_id=KEY, secret_access_key=SECRET)


def _setup(**settings: Any) -> tuple[EKSEmulator, ManualClock]:
    clock = ManualClock()
    delays = Delays(
        cluster_create=0, access_entry_create=ENTRY_DELAY, access_policy_associate=POLICY_DELAY
    )
    emulator = EKSEmulator(seed=3, clock=clock, delays=delays, **settings)
    emulator.add_cluster("prod", authentication_mode="API", admin_principal=ME)
    emulator.register_credentials(KEY, SECRET, arn=SESSION_ARN)
    return emulator, clock


def _config(clock: ManualClock, **kwargs: Any) -> WaiterConfig:
    base: dict[str, Any] = {
        "min_delay": ACCESS_DEFAULTS.min_delay,
        "max_delay": ACCESS_DEFAULTS.max_delay,
        "max_wait": ACCESS_DEFAULTS.max_wait,
        "clock": clock.monotonic,
        "sleep": clock.sleep,
        "rng": random.Random(1).random,
    }
    return WaiterConfig(**{**base, **kwargs})


@pytest.fixture
async def served() -> AsyncIterator[tuple[EKSEmulator, ManualClock]]:
    emulator, clock = _setup()
    async with emulator.serve():
        yield emulator, clock


async def test_401_then_authenticated_within_one_max_delay(
    served: tuple[EKSEmulator, ManualClock],
) -> None:
    emulator, clock = served
    polls: list[WaitProgress] = []
    async with emulator.client() as eks:
        await eks.create_access_entry(
            cluster_name="prod", principal_arn=DEPLOYER, kubernetes_groups=["deployers"]
        )
        effective_at = clock.monotonic() + ENTRY_DELAY
        seen = await eks.waiters.access_entry_effective(
            cluster_name="prod", principal_arn=DEPLOYER, credentials=DEPLOYER_CREDS,
            config=_config(clock), on_progress=polls.append,
        )
    returned_at = clock.monotonic()
    assert effective_at <= returned_at <= effective_at + ACCESS_DEFAULTS.max_delay
    assert seen.username == SESSION_ARN
    assert "deployers" in seen.groups and seen.allowed is None
    states = [p.state for p in polls]
    assert states[0] == "Unauthorized (401)" and states[-1] == "authenticated"
    assert all(s == "Unauthorized (401)" for s in states[:-1])
    assert len(polls) <= 6  # growing delays: far fewer than a fixed 2 s poll's 7


async def test_403_then_allowed_after_a_policy_association(
    served: tuple[EKSEmulator, ManualClock],
) -> None:
    emulator, clock = served
    polls: list[WaitProgress] = []
    async with emulator.client() as eks:
        await eks.create_access_entry(cluster_name="prod", principal_arn=DEPLOYER)
        await eks.waiters.access_entry_effective(
            cluster_name="prod", credentials=DEPLOYER_CREDS, config=_config(clock)
        )
        await eks.associate_access_policy(
            cluster_name="prod", principal_arn=DEPLOYER, policy_arn=VIEW,
            access_scope=AccessScope(type=AccessScopeType.NAMESPACE, namespaces=["default"]),
        )
        seen = await eks.waiters.access_entry_effective(
            cluster_name="prod", credentials=DEPLOYER_CREDS,
            can_i=("list", "pods", "default"), config=_config(clock), on_progress=polls.append,
        )
        # Cluster-wide is still not allowed: namespace scope only. It times out on 403s.
        with pytest.raises(WaiterTimeoutError) as timeout:
            await eks.waiters.access_entry_effective(
                cluster_name="prod", credentials=DEPLOYER_CREDS,
                can_i=CanI(verb="list", resource="pods"), config=_config(clock, max_wait=30),
            )
    assert seen.allowed is True
    assert [p.state for p in polls][-1] == "allowed"
    assert {p.state for p in polls[:-1]} == {"Forbidden (403)"}
    assert polls[-1].elapsed <= POLICY_DELAY + ACCESS_DEFAULTS.max_delay
    error = timeout.value.last_error
    assert isinstance(error, KubernetesAPIError) and error.status == 403


async def test_timeout_carries_the_last_401_and_no_token(
    served: tuple[EKSEmulator, ManualClock], caplog: pytest.LogCaptureFixture
) -> None:
    emulator, clock = served
    caplog.set_level(logging.DEBUG)
    polls: list[WaitProgress] = []
    async with emulator.client() as eks:
        token = (await eks.get_token(cluster_name="prod")).token
        # No entry for the deployer, ever.
        with pytest.raises(WaiterTimeoutError) as caught:
            await eks.waiters.access_entry_effective(
                cluster_name="prod", credentials=DEPLOYER_CREDS,
                config=_config(clock, max_wait=60), on_progress=polls.append,
            )
        deployer_token = (
            await eks_async._auth.token.TokenSource(
                region="us-west-2", use_fips=False,
                credentials=eks_async._auth.credentials.StaticCredentialsProvider(DEPLOYER_CREDS),
            ).get_token(cluster_name="prod")
        ).token
    error = caught.value
    assert isinstance(error.last_error, KubernetesAPIError)
    assert error.last_error.status == 401 and error.last_error.code == "Unauthorized"
    assert error.elapsed <= 60 and len(polls) >= 5
    shown = " ".join(
        [str(error), repr(error), str(error.last_error), repr(error.last_error)]
        + [repr(p) for p in polls]
        + [r.getMessage() for r in caplog.records]
        + [str(r.args) for r in caplog.records]
    )
    for secret in (token, deployer_token, token[len("k8s-aws-v1."):][:40],
                   deployer_token[len("k8s-aws-v1."):][:40], SECRET):
        assert secret not in shown


async def test_wait_true_waits_for_the_callers_own_token(
    served: tuple[EKSEmulator, ManualClock],
) -> None:
    emulator, clock = served
    # The deployer makes its own entry and policy association (it may call EKS).
    async with emulator.client(aws_access_key_id=KEY, aws_secret_access_key=SECRET) as mine:
        start = clock.monotonic()
        out = await mine.create_access_entry(
            cluster_name="prod", principal_arn=DEPLOYER, kubernetes_groups=["deployers"],
            wait=_config(clock),
        )
        assert out.access_entry is not None
        entry_took = clock.monotonic() - start
        assert ENTRY_DELAY <= entry_took <= ENTRY_DELAY + ACCESS_DEFAULTS.max_delay
        start = clock.monotonic()
        await mine.associate_access_policy(
            cluster_name="prod", principal_arn=DEPLOYER, policy_arn=VIEW,
            access_scope=AccessScope(type=AccessScopeType.NAMESPACE, namespaces=["default"]),
            wait=_config(clock),
        )
        policy_took = clock.monotonic() - start
        assert POLICY_DELAY <= policy_took <= POLICY_DELAY + ACCESS_DEFAULTS.max_delay
        seen = await mine.waiters.access_entry_effective(
            cluster_name="prod", can_i=("list", "pods", "default"), config=_config(clock)
        )
        assert seen.allowed is True and seen.groups[0] == "deployers"


async def test_throttled_describe_and_kubernetes_429_slow_the_polls(
    served: tuple[EKSEmulator, ManualClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator, clock = served
    emulator.script("DescribeCluster", Fault.THROTTLE, times=2)
    kubernetes_busy(emulator, monkeypatch, times=3)
    polls: list[WaitProgress] = []
    async with emulator.client(retry=eks_async.RetryConfig(max_attempts=1)) as eks:
        await eks.create_access_entry(cluster_name="prod", principal_arn=DEPLOYER)
        seen = await eks.waiters.access_entry_effective(
            cluster_name="prod", credentials=DEPLOYER_CREDS,
            config=_config(clock, jitter=False, max_delay=40), on_progress=polls.append,
        )
    assert seen.username == SESSION_ARN
    states = [p.state for p in polls]
    assert sum(s.startswith("throttled") for s in states) == 5, states
    delays = [p.next_delay for p in polls if p.next_delay is not None]
    # Each throttled poll doubles the delay once more (unthrottled: 2, 4, 8, 16, 32).
    assert delays[:5] == [4.0, 16.0, 40.0, 40.0, 40.0]


async def test_other_answers_fail_the_wait(
    served: tuple[EKSEmulator, ManualClock],
) -> None:
    emulator, clock = served
    async with emulator.client() as eks:
        with pytest.raises(WaiterFailureError) as caught:
            await eks.waiters.access_entry_effective(
                cluster_name="nowhere", config=_config(clock)
            )
        assert isinstance(caught.value.error, eks_async.ResourceNotFoundException)
        with pytest.raises(eks_async.ConfigurationError):
            await eks.waiters.access_entry_effective(
                cluster_name="prod", can_i=("list",), config=_config(clock)
            )


async def test_timeout_after_the_401s_stopped_still_carries_the_last_401(
    served: tuple[EKSEmulator, ManualClock],
) -> None:
    emulator, clock = served
    polls: list[WaitProgress] = []
    async with emulator.client() as eks:
        await eks.create_access_entry(cluster_name="prod", principal_arn=DEPLOYER)
        with pytest.raises(WaiterTimeoutError) as caught:
            await eks.waiters.access_entry_effective(
                cluster_name="prod", credentials=DEPLOYER_CREDS, expect_username="bob",
                config=_config(clock, max_wait=60), on_progress=polls.append,
            )
    states = [p.state for p in polls]
    assert states[0] == "Unauthorized (401)"
    assert states[-1] == f"authenticated as {SESSION_ARN!r}, not 'bob'"
    error = caught.value.last_error
    assert isinstance(error, KubernetesAPIError) and error.status == 401


async def test_throttling_inside_the_window_still_returns_within_one_max_delay(
    served: tuple[EKSEmulator, ManualClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator, clock = served
    # The entry reaches the authenticator after 90 s: every throttled poll falls before.
    emulator.configure(delays=attrs.evolve(emulator.config.delays, access_entry_create=90.0))
    async with emulator.client() as eks:
        await eks.create_access_entry(
            cluster_name="prod", principal_arn=DEPLOYER, kubernetes_groups=["deployers"]
        )
    effective_at = clock.monotonic() + 90.0
    emulator.script("DescribeCluster", Fault.THROTTLE, times=2)
    emulator.script("DescribeAccessEntry", Fault.THROTTLE)
    busy = kubernetes_busy(emulator, monkeypatch, times=2)
    polls: list[WaitProgress] = []
    async with emulator.client(retry=eks_async.RetryConfig(max_attempts=1)) as eks:
        seen = await eks.waiters.access_entry_effective(
            cluster_name="prod", principal_arn=DEPLOYER, credentials=DEPLOYER_CREDS,
            config=_config(clock, jitter=False), on_progress=polls.append,
        )
    returned_at = clock.monotonic()
    assert effective_at <= returned_at <= effective_at + ACCESS_DEFAULTS.max_delay
    assert "deployers" in seen.groups
    states = [p.state for p in polls]
    assert states[:5] == ["throttled (ThrottlingException)"] * 3 + [
        "throttled (TooManyRequests)"
    ] * 2
    assert set(states[5:-1]) == {"Unauthorized (401)"} and states[-1] == "authenticated"
    # Each set-up call was asked again until it got through, and counted.
    assert emulator.calls("DescribeCluster") == CallCounts(ok=1, throttled=2)
    assert emulator.calls("DescribeAccessEntry") == CallCounts(ok=1, throttled=1)
    assert busy["refused"] == 2 and len(polls) - 3 == 2 + len(states[5:])


async def test_groups_are_still_checked_after_a_throttled_describe_access_entry(
    served: tuple[EKSEmulator, ManualClock],
) -> None:
    emulator, clock = served
    async with emulator.client() as eks:
        await eks.create_access_entry(
            cluster_name="prod", principal_arn=DEPLOYER, kubernetes_groups=["deployers"]
        )
    emulator.configure(delays=attrs.evolve(emulator.config.delays, access_entry_update=30.0))
    emulator.settle()
    clock.advance(ENTRY_DELAY)
    emulator.script("DescribeAccessEntry", Fault.THROTTLE)
    polls: list[WaitProgress] = []
    async with emulator.client(retry=eks_async.RetryConfig(max_attempts=1)) as eks:
        seen = await eks.waiters.access_entry_effective(
            cluster_name="prod", principal_arn=DEPLOYER, credentials=DEPLOYER_CREDS,
            config=_config(clock), on_progress=polls.append,
        )
        # The entry's groups were read on the second poll, not skipped.
        assert [p.state for p in polls] == ["throttled (ThrottlingException)", "authenticated"]
        assert seen.groups[0] == "deployers"
        await eks.update_access_entry(
            cluster_name="prod", principal_arn=DEPLOYER, kubernetes_groups=["auditors"]
        )
        emulator.script("DescribeAccessEntry", Fault.THROTTLE)
        polls.clear()
        # Until the update reaches the authenticator, the old groups lack "auditors".
        await eks.waiters.access_entry_effective(
            cluster_name="prod", principal_arn=DEPLOYER, credentials=DEPLOYER_CREDS,
            config=_config(clock), on_progress=polls.append,
        )
    states = [p.state for p in polls]
    assert states[0] == "throttled (ThrottlingException)"
    assert "groups lack auditors" in states and states[-1] == "authenticated"
