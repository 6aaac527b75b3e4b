"""Eventual consistency in the emulator: seen late, seen stale, gone late; and repeatable."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import eks_async
from eks_async import (
    ClusterStatus,
    ConfigStatus,
    IdentityProviderConfig,
    InvalidRequestException,
    OidcIdentityProviderConfigRequest,
    ResourceInUseException,
    ResourceNotFoundException,
    RetryConfig,
    ServiceError,
    TransportError,
    UpdateStatus,
)
from eks_async.testing import (
    DelayRange,
    Delays,
    EKSEmulator,
    Fault,
    FaultRates,
    ManualClock,
    ScaledClock,
)

from ._emulator_support import OTHER_ROLE, ROLE, validate_emulator_responses  # noqa: F401

NO_RETRY = RetryConfig(max_attempts=1)
OKTA = OidcIdentityProviderConfigRequest(
    identity_provider_config_name="okta", issuer_url="https://example.okta.com", client_id="k8s"
)
OKTA_REF = IdentityProviderConfig(type="oidc", name="okta")


def emulator(**delays: Any) -> EKSEmulator:
    emu = EKSEmulator(clock=ManualClock(), delays=Delays(**delays))
    emu.add_cluster("prod")
    return emu


async def test_a_new_association_is_invisible_until_its_delay_passes() -> None:
    emu = emulator(association_create=DelayRange.fixed(3.0))
    async with emu.client() as eks:
        out = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="payments", service_account="api", role_arn=ROLE
        )
        assoc_id = out.association.association_id
        with pytest.raises(ResourceNotFoundException) as caught:
            await eks.describe_pod_identity_association(
                cluster_name="prod", association_id=assoc_id
            )
        assert caught.value.cluster_name == "prod"
        assert caught.value.http_status == 404
        assert (await eks.list_pod_identity_associations(cluster_name="prod")).associations == []
        emu.advance(2.9)
        with pytest.raises(ResourceNotFoundException):
            await eks.describe_pod_identity_association(
                cluster_name="prod", association_id=assoc_id
            )
        emu.advance(0.1)
        seen = await eks.describe_pod_identity_association(
            cluster_name="prod", association_id=assoc_id
        )
        assert seen.association.role_arn == ROLE
        listed = await eks.list_pod_identity_associations(
            cluster_name="prod", namespace="payments", service_account="api"
        )
        assert [a.association_id for a in listed.associations] == [assoc_id]


async def test_an_update_is_read_stale_and_a_delete_is_seen_late() -> None:
    emu = emulator(
        association_create=0.0,
        association_update=DelayRange.fixed(4.0),
        association_delete=DelayRange.fixed(6.0),
    )
    async with emu.client() as eks:
        out = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="payments", service_account="api", role_arn=ROLE
        )
        assoc_id = out.association.association_id
        answer = await eks.update_pod_identity_association(
            cluster_name="prod", association_id=assoc_id, role_arn=OTHER_ROLE
        )
        assert answer.association.role_arn == OTHER_ROLE  # the write's own answer is fresh
        stale = await eks.describe_pod_identity_association(
            cluster_name="prod", association_id=assoc_id
        )
        assert stale.association.role_arn == ROLE
        emu.advance(4.0)
        fresh = await eks.describe_pod_identity_association(
            cluster_name="prod", association_id=assoc_id
        )
        assert fresh.association.role_arn == OTHER_ROLE

        await eks.delete_pod_identity_association(cluster_name="prod", association_id=assoc_id)
        # Still there for reads, and still holding its namespace/service account.
        ghost = await eks.describe_pod_identity_association(
            cluster_name="prod", association_id=assoc_id
        )
        assert ghost.association.association_id == assoc_id
        assert (
            len((await eks.list_pod_identity_associations(cluster_name="prod")).associations) == 1
        )
        with pytest.raises(ResourceInUseException) as caught:
            await eks.create_pod_identity_association(
                cluster_name="prod", namespace="payments", service_account="api", role_arn=ROLE
            )
        assert caught.value.http_status == 409
        assert caught.value.message == f"Association already exists: {assoc_id}"
        # A second delete, or an update, acts on what is there now: nothing.
        with pytest.raises(ResourceNotFoundException):
            await eks.update_pod_identity_association(
                cluster_name="prod", association_id=assoc_id, role_arn=ROLE
            )
        emu.advance(6.0)
        with pytest.raises(ResourceNotFoundException):
            await eks.describe_pod_identity_association(
                cluster_name="prod", association_id=assoc_id
            )
        again = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="payments", service_account="api", role_arn=ROLE
        )
        assert again.association.association_id != assoc_id


async def test_later_changes_are_never_seen_before_earlier_ones() -> None:
    emu = EKSEmulator(clock=ManualClock(), seed=3, delays=Delays(association_create=0.0))
    emu.add_cluster("prod")
    async with emu.client() as eks:
        out = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="a", service_account="b", role_arn=ROLE
        )
        assoc_id = out.association.association_id
        emu.configure(delays=Delays(association_update=DelayRange.fixed(5.0)))
        await eks.update_pod_identity_association(
            cluster_name="prod", association_id=assoc_id, role_arn=OTHER_ROLE
        )
        emu.configure(delays=Delays(association_update=DelayRange.fixed(1.0)))
        third = "arn:aws:iam::123456789012:role/third"
        await eks.update_pod_identity_association(
            cluster_name="prod", association_id=assoc_id, role_arn=third
        )
        seen = []
        for _ in range(7):
            d = await eks.describe_pod_identity_association(
                cluster_name="prod", association_id=assoc_id
            )
            seen.append(d.association.role_arn)
            emu.advance(1.0)
        assert seen == [ROLE] * 5 + [third] * 2


async def test_identity_provider_config_and_update_lifecycle() -> None:
    emu = emulator(
        identity_provider_associate=DelayRange.fixed(1500.0),  # ~25 EKS minutes
        identity_provider_disassociate=DelayRange.fixed(600.0),
    )
    async with emu.client() as eks:
        started = await eks.associate_identity_provider_config(cluster_name="prod", oidc=OKTA)
        with pytest.raises(ResourceInUseException):  # one Update at a time
            await eks.disassociate_identity_provider_config(
                cluster_name="prod", identity_provider_config=OKTA_REF
            )
        with pytest.raises(ResourceInUseException):  # one OIDC config per cluster
            await eks.associate_identity_provider_config(
                cluster_name="prod",
                oidc=OidcIdentityProviderConfigRequest(
                    identity_provider_config_name="other",
                    issuer_url="https://other.example.com",
                    client_id="k8s",
                ),
            )
        emu.advance(1499.0)
        update = (await eks.describe_update(name="prod", update_id=started.update.id)).update
        assert update.status is UpdateStatus.IN_PROGRESS
        emu.advance(1.0)
        update = (await eks.describe_update(name="prod", update_id=started.update.id)).update
        assert update.status is UpdateStatus.SUCCESSFUL and update.errors == []
        config = await eks.describe_identity_provider_config(
            cluster_name="prod", identity_provider_config=OKTA_REF
        )
        assert config.identity_provider_config is not None
        assert config.identity_provider_config.oidc is not None
        assert config.identity_provider_config.oidc.status is ConfigStatus.ACTIVE

        stopped = await eks.disassociate_identity_provider_config(
            cluster_name="prod", identity_provider_config=OKTA_REF
        )
        emu.advance(599.0)
        listed = await eks.list_identity_provider_configs(cluster_name="prod")
        assert listed.identity_provider_configs == [OKTA_REF]
        emu.advance(1.0)
        assert (
            await eks.list_identity_provider_configs(cluster_name="prod")
        ).identity_provider_configs == []
        with pytest.raises(InvalidRequestException) as caught:  # nothing left to disassociate
            await eks.disassociate_identity_provider_config(
                cluster_name="prod", identity_provider_config=OKTA_REF
            )
        assert caught.value.cluster_name == "prod"
        done = await eks.describe_update(name="prod", update_id=stopped.update.id)
        assert done.update.status is UpdateStatus.SUCCESSFUL
        ids = (await eks.list_updates(name="prod")).update_ids
        assert ids == [started.update.id, stopped.update.id]


async def test_a_failed_update_reports_its_error_detail() -> None:
    emu = emulator(identity_provider_associate=DelayRange.fixed(60.0))
    emu.script(
        "AssociateIdentityProviderConfig",
        Fault.FAIL_UPDATE,
        error_code="AccessDenied",
        message="The issuer could not be reached.",
    )
    async with emu.client() as eks:
        started = await eks.associate_identity_provider_config(cluster_name="prod", oidc=OKTA)
        assert started.update.status is UpdateStatus.IN_PROGRESS
        emu.advance(60.0)
        update = (await eks.describe_update(name="prod", update_id=started.update.id)).update
        assert update.status is UpdateStatus.FAILED
        assert len(update.errors) == 1
        detail = update.errors[0]
        assert detail.error_code == eks_async.ErrorCode.ACCESS_DENIED
        assert detail.error_message == "The issuer could not be reached."
        assert detail.resource_ids == ["okta"]
        with pytest.raises(ResourceNotFoundException):  # the config never came to be
            await eks.describe_identity_provider_config(
                cluster_name="prod", identity_provider_config=OKTA_REF
            )
        retried = await eks.associate_identity_provider_config(cluster_name="prod", oidc=OKTA)
        emu.settle()
        final = await eks.describe_update(name="prod", update_id=retried.update.id)
        assert final.update.status is UpdateStatus.SUCCESSFUL


async def test_a_failed_disassociation_leaves_the_config_active() -> None:
    emu = emulator(
        identity_provider_associate=0.0,
        identity_provider_disassociate=DelayRange.fixed(30.0),
    )
    emu.configure(
        operation_faults={"DisassociateIdentityProviderConfig": FaultRates(fail_update=1.0)}
    )
    async with emu.client() as eks:
        await eks.associate_identity_provider_config(cluster_name="prod", oidc=OKTA)
        stopped = await eks.disassociate_identity_provider_config(
            cluster_name="prod", identity_provider_config=OKTA_REF
        )
        emu.advance(30.0)
        update = (await eks.describe_update(name="prod", update_id=stopped.update.id)).update
        assert update.status is UpdateStatus.FAILED
        assert update.errors[0].error_code == eks_async.ErrorCode.UNKNOWN
        config = await eks.describe_identity_provider_config(
            cluster_name="prod", identity_provider_config=OKTA_REF
        )
        assert config.identity_provider_config is not None
        assert config.identity_provider_config.oidc is not None
        assert config.identity_provider_config.oidc.status is ConfigStatus.ACTIVE


async def test_cluster_lifecycle() -> None:
    emu = EKSEmulator(
        clock=ManualClock(),
        delays=Delays(
            cluster_create=DelayRange.fixed(600.0), cluster_delete=DelayRange.fixed(200.0)
        ),
    )
    async with emu.client() as eks:
        await eks.create_cluster(
            name="prod",
            role_arn="arn:aws:iam::123456789012:role/eks",
            resources_vpc_config=eks_async.VpcConfigRequest(subnet_ids=["subnet-1"]),
        )
        with pytest.raises(InvalidRequestException) as caught:  # not ACTIVE yet
            await eks.create_pod_identity_association(
                cluster_name="prod", namespace="a", service_account="b", role_arn=ROLE
            )
        assert "CREATING" in (caught.value.message or "")
        emu.advance(600.0)
        assert (await eks.describe_cluster(name="prod")).cluster.status is ClusterStatus.ACTIVE
        deleting = await eks.delete_cluster(name="prod")
        assert deleting.cluster.status is ClusterStatus.DELETING
        assert (await eks.list_clusters()).clusters == ["prod"]
        emu.advance(200.0)
        with pytest.raises(ResourceNotFoundException) as gone:
            await eks.describe_cluster(name="prod")
        assert gone.value.message == "No cluster found for name: prod."
        assert gone.value.cluster_name == "prod"
        assert (await eks.list_clusters()).clusters == []


async def test_a_scaled_clock_runs_eks_time_faster_than_real_time() -> None:
    # 300 EKS seconds of propagation. At EKS's own pace (1x) the association is unseen
    # for 5 real minutes, so the first read cannot race it however slow the machine is;
    # sped up to 1000x, the 300 EKS seconds pass within 0.4 real seconds.
    clock = ScaledClock(time_scale=1.0)
    emu = EKSEmulator(clock=clock, delays=Delays(association_create=300.0))
    emu.add_cluster("prod")
    async with emu.client() as eks:
        out = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="a", service_account="b", role_arn=ROLE
        )
        with pytest.raises(ResourceNotFoundException):
            await eks.describe_pod_identity_association(
                cluster_name="prod", association_id=out.association.association_id
            )
        before = clock.monotonic()
        clock.time_scale = 1000.0
        await asyncio.sleep(0.4)  # the real time is the point: at least 350 EKS seconds
        assert clock.monotonic() - before >= 350.0
        await eks.describe_pod_identity_association(
            cluster_name="prod", association_id=out.association.association_id
        )


# --- the same seed, the same run --------------------------------------------------------------


async def _recorded_run(seed: int) -> list[Any]:
    emu = EKSEmulator(
        clock=ManualClock(start=1_700_000_000.0),
        seed=seed,
        faults=FaultRates(throttle=0.15, server_error=0.1, drop_after=0.05, latency=(0.0, 2.0)),
        delays=Delays(association_create=(0.0, 10.0)),
    )
    emu.add_cluster("prod")
    emu.add_listener(
        lambda ex: record.append(
            ("answer", ex.operation, ex.outcome, ex.response.header("x-amzn-RequestId"))
        )
    )
    record: list[Any] = []
    async with emu.client(retry=NO_RETRY) as eks:
        for i in range(25):
            try:
                out = await eks.create_pod_identity_association(
                    cluster_name="prod", namespace="ns", service_account=f"sa-{i}", role_arn=ROLE
                )
            except (ServiceError, TransportError) as exc:
                record.append(("failed", type(exc).__name__))
                continue
            assoc_id = out.association.association_id
            record.append(("created", assoc_id, out.association.created_at))
            # When does it become visible? Step the clock until it does.
            for step in range(30):
                try:
                    await eks.describe_pod_identity_association(
                        cluster_name="prod", association_id=assoc_id
                    )
                except ResourceNotFoundException:
                    emu.advance(0.5)
                    continue
                except (ServiceError, TransportError) as exc:
                    record.append(("describe failed", type(exc).__name__))
                    continue
                record.append(("visible after", step))
                break
    record.append(("clock", emu.clock.monotonic()))
    record.append(("counters", emu.counters()))
    return record


async def test_the_same_seed_gives_the_same_ids_delays_and_faults() -> None:
    first = await _recorded_run(7)
    second = await _recorded_run(7)
    assert first == second
    kinds = {entry[0] for entry in first}
    assert {"created", "failed", "visible after", "answer"} <= kinds
    outcomes = {entry[2] for entry in first if entry[0] == "answer"}
    assert {"ok", "throttled", "error", "dropped"} <= outcomes
    other = await _recorded_run(8)
    assert other != first
