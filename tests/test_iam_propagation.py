"""IAM propagation: a create or update refused because the role it names, created moments
ago, is not known to EKS yet is retried on a budget of its own, and nothing else is.

The emulator holds a role unknown for ``role_propagation`` EKS seconds after a request first
names it. The client's retries run with ``instant_retries()``, and each ``on_retry`` event
moves the emulator's ``ManualClock`` by the wait the client chose, so EKS time passes exactly
as the client's backoff says, whatever the machine's speed. One test runs the real waits on
the virtual-time loop, where the deadline bounds them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

import eks_async
from eks_async import (
    InvalidParameterException,
    RetryConfig,
    RetryEvent,
    ServiceError,
    TimeoutError_,
)
from eks_async._retry import (
    IAM_PROPAGATION_MAX_BACKOFF,
    iam_backoff,
    instant_retries,
    is_iam_propagation,
)
from eks_async.testing import Delays, EKSEmulator, EmulatorConfig, ManualClock
from eks_async.testing._service import PRINCIPAL_NOT_PROPAGATED, ROLE_NOT_PROPAGATED

from . import _internals
from ._answers import Script, error_answer, ok_answer
from ._emulator_support import OTHER_ROLE, ROLE, validate_emulator_responses  # noqa: F401
from ._virtual_time import run_virtual

PRINCIPAL = "arn:aws:iam::123456789012:role/ci-deployer"


@pytest.fixture(autouse=True)
def _instant() -> Iterator[None]:
    with instant_retries():
        yield


def emulator(role_propagation: float) -> EKSEmulator:
    emu = EKSEmulator(
        seed=3, clock=ManualClock(), delays=Delays.none(), role_propagation=role_propagation
    )
    emu.add_cluster("prod")
    return emu


class Recorder(httpx.AsyncBaseTransport):
    """Passes requests on to the emulator and keeps their JSON bodies."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.bodies: list[dict[str, object]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        if request.content:
            self.bodies.append(json.loads(request.content))
        return await self.inner.handle_async_request(request)


def moving(emu: EKSEmulator, events: list[RetryEvent]) -> eks_async.EKSClient:
    """A client whose every retry wait moves the emulator's clock by that wait."""

    def seen(event: RetryEvent) -> None:
        events.append(event)
        emu.advance(event.delay)

    return emu.client(on_retry=seen)


def _error(code: str, message: str, status: int = 400) -> ServiceError:
    return ServiceError(code=code, message=message, http_status=status, request_id="r")


# --- the matcher ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        ("CreatePodIdentityAssociation", ROLE_NOT_PROPAGATED),
        ("UpdatePodIdentityAssociation", ROLE_NOT_PROPAGATED),
        ("CreateAccessEntry", PRINCIPAL_NOT_PROPAGATED),
        ("CreatePodIdentityAssociation", "role provided in the request does not exist"),
    ],
)
def test_the_not_yet_propagated_answers_match(operation: str, message: str) -> None:
    assert is_iam_propagation(_error("InvalidParameterException", message), operation)


@pytest.mark.parametrize(
    ("operation", "code", "message"),
    [
        # Other operations, even with the same answer.
        ("CreateCluster", "InvalidParameterException", ROLE_NOT_PROPAGATED),
        ("AssociateAccessPolicy", "InvalidParameterException", PRINCIPAL_NOT_PROPAGATED),
        ("DescribePodIdentityAssociation", "InvalidParameterException", ROLE_NOT_PROPAGATED),
        # Other InvalidParameterExceptions of the same operations.
        ("CreatePodIdentityAssociation", "InvalidParameterException",
         "namespace: 'Bad_NS' is not a valid Kubernetes name"),
        ("CreatePodIdentityAssociation", "InvalidParameterException",
         "Trust policy of the role provided is invalid"),
        ("CreateAccessEntry", "InvalidParameterException", "The type is not valid."),
        # One operation's answer is not the other's.
        ("CreateAccessEntry", "InvalidParameterException", ROLE_NOT_PROPAGATED),
        ("CreatePodIdentityAssociation", "InvalidParameterException", PRINCIPAL_NOT_PROPAGATED),
        # The same words under another code.
        ("CreatePodIdentityAssociation", "InvalidRequestException", ROLE_NOT_PROPAGATED),
        ("CreatePodIdentityAssociation", "ResourceNotFoundException", ROLE_NOT_PROPAGATED),
    ],
)
def test_nothing_else_matches(operation: str, code: str, message: str) -> None:
    assert not is_iam_propagation(_error(code, message), operation)


def test_the_waits_grow_with_jitter_and_stay_under_ten_seconds() -> None:
    assert [iam_backoff(n, lambda: 0.0) for n in (1, 2, 3, 4, 5, 9)] == [
        0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert [iam_backoff(n, lambda: 1.0) for n in (1, 2, 3, 4, 5, 9)] == [
        1.0, 2.0, 4.0, 8.0, IAM_PROPAGATION_MAX_BACKOFF, IAM_PROPAGATION_MAX_BACKOFF]


def test_the_budget_is_checked() -> None:
    assert RetryConfig().iam_propagation == 120.0
    assert RetryConfig(iam_propagation=None).iam_propagation is None
    with pytest.raises(ValueError, match="iam_propagation"):
        RetryConfig(iam_propagation=-1)


# --- against the emulator ---------------------------------------------------------------------


async def test_a_create_is_retried_until_the_role_is_known_with_one_token() -> None:
    emu = emulator(role_propagation=6.0)
    events: list[RetryEvent] = []
    recorder = Recorder(emu.transport())

    def seen(event: RetryEvent) -> None:
        events.append(event)
        emu.advance(event.delay)

    async with emu.client(on_retry=seen, transport=recorder) as eks:
        out = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="payments", service_account="api", role_arn=ROLE
        )
        listed = [a async for a in eks.paginate.list_pod_identity_associations(
            cluster_name="prod")]
    counts = emu.calls("CreatePodIdentityAssociation")
    assert counts.ok == 1 and counts.error == len(events) >= 2
    assert out.response_metadata is not None
    assert out.response_metadata.attempts == len(events) + 1
    assert out.response_metadata.retry_wait == 0.0  # instant retries: nothing slept
    assert {e.kind for e in events} == {"iam_propagation"}
    assert [e.attempt for e in events] == list(range(1, len(events) + 1))
    assert all("InvalidParameterException" in e.reason for e in events)
    # It stopped retrying as soon as EKS time passed the hold, not later.
    assert sum(e.delay for e in events) >= 6.0 > sum(e.delay for e in events[:-1])
    tokens = {b["clientRequestToken"] for b in recorder.bodies if "serviceAccount" in b}
    assert len(tokens) == 1 and len([b for b in recorder.bodies if "serviceAccount" in b]) == (
        len(events) + 1)
    assert out.association is not None
    assert [a.association_id for a in listed] == [out.association.association_id]


async def test_a_role_already_known_is_not_held() -> None:
    emu = emulator(role_propagation=6.0)
    events: list[RetryEvent] = []
    async with moving(emu, events) as eks:
        await eks.create_pod_identity_association(
            cluster_name="prod", namespace="a", service_account="api", role_arn=ROLE)
        held = len(events)
        out = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="b", service_account="api", role_arn=ROLE)
    assert held >= 1 and len(events) == held
    assert out.response_metadata is not None and out.response_metadata.attempts == 1


async def test_an_update_to_a_new_role_or_target_role_is_retried() -> None:
    emu = emulator(role_propagation=3.0)
    target = "arn:aws:iam::123456789012:role/cross-account-target"
    events: list[RetryEvent] = []
    async with moving(emu, events) as eks:
        created = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="payments", service_account="api", role_arn=ROLE)
        assert created.association is not None and created.association.association_id
        assoc_id = created.association.association_id
        events.clear()
        updated = await eks.update_pod_identity_association(
            cluster_name="prod", association_id=assoc_id, role_arn=OTHER_ROLE)
        assert updated.association is not None and updated.association.role_arn == OTHER_ROLE
        assert updated.response_metadata is not None
        assert updated.response_metadata.attempts == len(events) + 1 >= 2
        events.clear()
        targeted = await eks.update_pod_identity_association(
            cluster_name="prod", association_id=assoc_id, target_role_arn=target)
        assert targeted.association is not None
        assert targeted.association.target_role_arn == target
    assert {e.kind for e in events} == {"iam_propagation"} and len(events) >= 1
    assert {e.operation for e in events} == {"UpdatePodIdentityAssociation"}


async def test_it_stops_at_its_budget_with_the_typed_error_carrying_attempts() -> None:
    emu = emulator(role_propagation=10_000.0)
    events: list[RetryEvent] = []
    async with moving(emu, events) as eks:
        eks = eks.with_options(retry=RetryConfig(iam_propagation=30.0))
        with pytest.raises(InvalidParameterException) as caught:
            await eks.create_pod_identity_association(
                cluster_name="prod", namespace="payments", service_account="api",
                role_arn=ROLE)
    error = caught.value
    assert error.message == ROLE_NOT_PROPAGATED
    assert error.attempts == len(events) + 1 == emu.calls("CreatePodIdentityAssociation").error
    assert len(events) >= 4  # 30 s of waits of at most 10 s each
    assert sum(e.delay for e in events) == pytest.approx(30.0)
    assert all(0 < e.delay <= IAM_PROPAGATION_MAX_BACKOFF for e in events)


async def test_the_standard_attempts_and_quota_are_not_spent() -> None:
    emu = emulator(role_propagation=5.0)
    events: list[RetryEvent] = []

    def seen(event: RetryEvent) -> None:
        events.append(event)
        emu.advance(event.delay)
        if len(events) == 1:  # after the first refusal, one throttle
            emu.script("CreatePodIdentityAssociation", "throttle", times=1)

    async with emu.client(on_retry=seen, retry=RetryConfig(max_attempts=2)) as eks:
        out = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="payments", service_account="api", role_arn=ROLE)
        # One throttle: one standard retry (5 tokens), given back by the success.
        assert _internals.retry_quota_available(eks) == _internals.retry_quota_capacity(eks)
    kinds = [e.kind for e in events]
    assert kinds[:2] == ["iam_propagation", "backoff"] and len(kinds) >= 3
    assert set(kinds[2:]) == {"iam_propagation"}
    assert emu.calls("CreatePodIdentityAssociation").throttled == 1
    assert out.response_metadata is not None
    assert out.response_metadata.attempts == len(events) + 1 > 2  # above max_attempts


async def test_a_quota_of_one_retry_still_leaves_the_iam_retries() -> None:
    emu = emulator(role_propagation=5.0)
    events: list[RetryEvent] = []
    async with moving(emu, events) as eks:
        _internals.set_retry_quota_available(eks, 0)
        eks = eks.with_options(retry=RetryConfig(max_attempts=1))
        out = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="payments", service_account="api", role_arn=ROLE)
        assert _internals.retry_quota_available(eks) == 1  # the success's one token
    assert out.response_metadata is not None and out.response_metadata.attempts >= 2


@pytest.mark.parametrize("budget", [None, 0])
async def test_off_when_configured_off(budget: float | None) -> None:
    emu = emulator(role_propagation=5.0)
    events: list[RetryEvent] = []
    async with moving(emu, events) as eks:
        eks = eks.with_options(retry=RetryConfig(iam_propagation=budget))
        with pytest.raises(InvalidParameterException) as caught:
            await eks.create_pod_identity_association(
                cluster_name="prod", namespace="payments", service_account="api",
                role_arn=ROLE)
    assert caught.value.attempts == 1 and events == []
    assert emu.calls("CreatePodIdentityAssociation").error == 1


async def test_another_invalid_parameter_of_the_same_operation_is_not_retried() -> None:
    emu = emulator(role_propagation=5.0)
    events: list[RetryEvent] = []
    async with moving(emu, events) as eks:
        with pytest.raises(InvalidParameterException) as caught:
            await eks.create_pod_identity_association(
                cluster_name="prod", namespace="Bad_NS", service_account="api", role_arn=ROLE)
    assert "namespace" in (caught.value.message or "")
    assert caught.value.attempts == 1 and events == []


async def test_the_emulator_holds_nothing_by_default() -> None:
    emu = emulator(role_propagation=0.0)
    async with emu.client(retry=RetryConfig(iam_propagation=None)) as eks:
        out = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="payments", service_account="api", role_arn=ROLE)
    assert out.response_metadata is not None and out.response_metadata.attempts == 1


# --- against scripted answers: the other operations --------------------------------------------


def _client(transport: httpx.AsyncBaseTransport, **kwargs: object) -> eks_async.EKSClient:
    return eks_async.EKSClient(
        region="us-west-2", aws_access_key_id="AKIDIAM", aws_secret_access_key="iam-secret",
        transport=transport, **kwargs,  # type: ignore[arg-type]
    )


async def test_create_access_entry_is_retried_on_the_invalid_principal_answer() -> None:
    entry = {"accessEntry": {"clusterName": "prod", "principalArn": PRINCIPAL}}
    script = Script(
        error_answer(400, "InvalidParameterException", PRINCIPAL_NOT_PROPAGATED),
        error_answer(400, "InvalidParameterException", PRINCIPAL_NOT_PROPAGATED),
        ok_answer(entry),
    )
    events: list[RetryEvent] = []
    async with _client(script, on_retry=events.append) as eks:
        out = await eks.create_access_entry(cluster_name="prod", principal_arn=PRINCIPAL)
    assert out.response_metadata is not None and out.response_metadata.attempts == 3
    assert [e.kind for e in events] == ["iam_propagation"] * 2
    tokens = {json.loads(r.content)["clientRequestToken"] for r in script.requests}
    assert len(tokens) == 1


async def test_other_operations_are_never_retried_on_it() -> None:
    script = Script(error_answer(400, "InvalidParameterException", ROLE_NOT_PROPAGATED))
    async with _client(script) as eks:
        with pytest.raises(InvalidParameterException) as caught:
            await eks.create_cluster(
                name="prod", role_arn=ROLE,
                resources_vpc_config=eks_async.VpcConfigRequest(subnet_ids=["subnet-1"]),
            )
        assert caught.value.attempts == 1
        with pytest.raises(InvalidParameterException) as caught:
            await eks.associate_access_policy(
                cluster_name="prod", principal_arn=PRINCIPAL,
                policy_arn="arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
                access_scope=eks_async.AccessScope(type="cluster"),
            )
        assert caught.value.attempts == 1
    assert len(script.requests) == 2


async def test_each_retry_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    emu = emulator(role_propagation=2.0)
    events: list[RetryEvent] = []
    with caplog.at_level(logging.DEBUG, logger="eks_async"):
        async with moving(emu, events) as eks:
            await eks.create_pod_identity_association(
                cluster_name="prod", namespace="payments", service_account="api",
                role_arn=ROLE)
    lines = [r.getMessage() for r in caplog.records if "not known to EKS yet" in r.getMessage()]
    assert len(lines) == len(events) >= 1
    assert lines[0].startswith("CreatePodIdentityAssociation: attempt 1 refused")


# --- real waits, on virtual time ----------------------------------------------------------------


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


async def _on_virtual_time(role_propagation: float, retry: RetryConfig) -> tuple[
        object, float, EKSEmulator]:
    loop = asyncio.get_running_loop()
    emu = EKSEmulator(
        seed=3, clock=LoopClock(loop), delays=Delays.none(), role_propagation=role_propagation
    )
    emu.add_cluster("prod")
    async with emu.client(retry=retry) as eks:
        try:
            result: object = await eks.create_pod_identity_association(
                cluster_name="prod", namespace="payments", service_account="api",
                role_arn=ROLE)
        except eks_async.EKSAsyncError as exc:
            result = exc
    return result, loop.time(), emu


def test_the_waits_are_slept_and_the_deadline_bounds_them() -> None:
    with instant_retries():
        eks_async.set_instant_retries(False)  # the waits sleep, on virtual time
        out, took, emu = run_virtual(_on_virtual_time(7.0, RetryConfig()))
        assert isinstance(out, eks_async.CreatePodIdentityAssociationResponse)
        assert out.response_metadata is not None
        assert took >= 7.0 and out.response_metadata.retry_wait == pytest.approx(took)
        assert emu.calls("CreatePodIdentityAssociation").ok == 1

        late, took, emu = run_virtual(_on_virtual_time(10_000.0, RetryConfig(deadline=20.0)))
        assert isinstance(late, TimeoutError_)
        assert took == pytest.approx(20.0)
        assert emu.calls("CreatePodIdentityAssociation").ok == 0


def test_the_json_form_of_the_hold() -> None:
    config = EmulatorConfig().updated({"role_propagation": 12})
    assert config.role_propagation == 12.0 and config.to_json()["role_propagation"] == 12.0
    assert EmulatorConfig().updated(json.loads(json.dumps(config.to_json()))) == config
    with pytest.raises(ValueError, match="role_propagation"):
        EmulatorConfig().updated({"role_propagation": -1})
    with pytest.raises(TypeError):
        EmulatorConfig().updated({"role_propagation": "soon"})


async def test_the_hold_is_set_through_the_admin_api() -> None:
    emu = emulator(role_propagation=0.0)
    async with httpx.AsyncClient(transport=emu.transport(), base_url="http://eks.test") as http:
        assert (await http.get("/_emulator/config")).json()["role_propagation"] == 0.0
        answer = await http.post("/_emulator/config", json={"role_propagation": 4})
        assert answer.status_code == 200 and answer.json()["role_propagation"] == 4.0
        refused = await http.post("/_emulator/config", json={"role_propagation": -4})
        assert refused.status_code == 400
    assert emu.config.role_propagation == 4.0
    async with emu.client(retry=RetryConfig(iam_propagation=None)) as eks:
        with pytest.raises(InvalidParameterException):
            await eks.create_pod_identity_association(
                cluster_name="prod", namespace="payments", service_account="api",
                role_arn=ROLE)
        emu.advance(4.0)
        out = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="payments", service_account="api", role_arn=ROLE)
    assert out.association is not None and out.association.role_arn == ROLE


async def test_create_access_entry_is_retried_until_the_emulator_knows_the_principal() -> None:
    emu = emulator(role_propagation=5.0)
    events: list[RetryEvent] = []
    principal = "arn:aws:iam::123456789012:role/ci-deployer"
    async with moving(emu, events) as eks:
        out = await eks.create_access_entry(cluster_name="prod", principal_arn=principal)
        listed = await eks.list_access_entries(cluster_name="prod")
    counts = emu.calls("CreateAccessEntry")
    assert counts.ok == 1 and counts.error == len(events) >= 1
    assert {e.kind for e in events} == {"iam_propagation"}
    assert sum(e.delay for e in events) >= 5.0 > sum(e.delay for e in events[:-1])
    assert out.access_entry is not None and out.access_entry.principal_arn == principal
    assert listed.access_entries == [principal]
