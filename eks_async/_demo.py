"""``eks-async demo``: a platform team's identity workflow against an embedded emulator.

EKS's real durations run sped up (the waiters keep EKS time, so what they print reads as it
would against AWS), some calls are throttled, and every propagation delay is waited out by
a waiter. Needs no AWS account and no network.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ._client import EKSClient
from ._core import RetryEvent
from ._retry import RetryConfig
from ._waiters.engine import WaiterConfig, WaitProgress

T = TypeVar("T")

ROLE = "arn:aws:iam::111122223333:role/{}"
SERVICE_ACCOUNTS = (("payments", "api"), ("payments", "worker"), ("search", "indexer"),
                    ("search", "query"))


class Timeline:
    """Prints each step with its real and EKS duration, and keeps the totals."""

    def __init__(self, eks_clock: Callable[[], float]) -> None:
        self.eks_clock = eks_clock
        self.real_start = time.monotonic()
        self.polls = 0
        self.waited_eks = 0.0
        self.retries = 0
        self.width = 0

    def progress(self, event: WaitProgress) -> None:
        self.polls += 1
        if event.next_delay is None:
            self.waited_eks += event.elapsed
        if sys.stdout.isatty():
            line = f"      … {event.waiter}: {event.state}, poll {event.attempt}, {_eks(event.elapsed)}"
            sys.stdout.write("\r\x1b[2K" + line)
            sys.stdout.flush()
        elif event.next_delay is None or event.attempt == 1:
            print(f"      {event.waiter}: {event.state} after {event.attempt} polls, "
                  f"{_eks(event.elapsed)} EKS time")

    def retry(self, event: RetryEvent) -> None:
        self.retries += 1

    async def step(self, title: str, work: Awaitable[T]) -> T:
        real0, eks0 = time.monotonic(), self.eks_clock()
        print(f"  {title}")
        result = await work
        if sys.stdout.isatty():
            sys.stdout.write("\r\x1b[2K")
        print(f"    done in {time.monotonic() - real0:.1f}s real, "
              f"{_eks(self.eks_clock() - eks0)} of EKS time")
        return result


def _eks(seconds: float) -> str:
    if seconds >= 60:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{seconds:.1f}s"


async def run_demo(args: argparse.Namespace) -> None:
    from .testing import Delays, EKSEmulator, FaultRates

    scale = 1200.0 if getattr(args, "fast", False) else 150.0
    emulator = EKSEmulator(
        seed=2026,
        time_scale=scale,
        delays=Delays(
            cluster_create=(540, 720),
            association_create=(5, 10),
            association_update=(3, 8),
            association_delete=(3, 8),
            identity_provider_associate=(900, 1500),
            identity_provider_disassociate=(300, 600),
        ),
        faults=FaultRates(throttle=0.08),
        throttle_code="TooManyRequestsException",
    )
    clock = emulator.clock
    timeline = Timeline(clock.monotonic)
    waits = WaiterConfig(min_delay=1.0, max_delay=10.0, max_wait=300.0,
                         clock=clock.monotonic, sleep=clock.sleep)
    long_waits = WaiterConfig(min_delay=10.0, max_delay=120.0, max_wait=3600.0,
                              clock=clock.monotonic, sleep=clock.sleep)
    print(f"eks-async demo: an embedded EKS emulator, {scale:.0f}x faster than EKS, "
          "with 8% of calls throttled")
    eks: EKSClient
    async with emulator.client(retry=RetryConfig(max_attempts=6, max_backoff=0.5),
                               on_retry=timeline.retry) as eks:
        await _workflow(eks, timeline, waits, long_waits)
    counts = emulator.counters()
    calls = sum(c.total for c in counts.values())
    throttled = sum(c.throttled for c in counts.values())
    print()
    print("Summary")
    print(f"  calls made:                  {calls} ({throttled} throttled by the emulator)")
    print(f"  retries absorbed:            {timeline.retries}")
    print(f"  waiter polls:                {timeline.polls}")
    print(f"  waiting for propagation:     {_eks(timeline.waited_eks)} of EKS time")
    print(f"  wall time:                   {time.monotonic() - timeline.real_start:.1f}s")


async def _workflow(eks: EKSClient, timeline: Timeline, waits: WaiterConfig,
                    long_waits: WaiterConfig) -> None:
    import asyncio

    from ._generated import models

    on = timeline.progress
    cluster = "demo"
    print("\n1. Create a cluster and wait until it is ACTIVE")
    await timeline.step("CreateCluster demo", eks.create_cluster(
        name=cluster,
        role_arn=ROLE.format("eks-cluster"),
        resources_vpc_config=models.VpcConfigRequest(subnet_ids=["subnet-1", "subnet-2"]),
    ))
    await timeline.step("waiters.cluster_active", eks.waiters.cluster_active(
        name=cluster, config=long_waits, on_progress=on))

    print("\n2. Associate an OIDC identity provider and follow its update")
    started = await timeline.step("AssociateIdentityProviderConfig okta",
                                  eks.associate_identity_provider_config(
                                      cluster_name=cluster,
                                      oidc=models.OidcIdentityProviderConfigRequest(
                                          identity_provider_config_name="okta",
                                          issuer_url="https://example.okta.com",
                                          client_id="kubernetes",
                                      )))
    assert started.update is not None and started.update.id is not None
    await timeline.step("waiters.update_successful", eks.waiters.update_successful(
        cluster_name=cluster, update_id=started.update.id, config=long_waits, on_progress=on))
    await timeline.step("waiters.identity_provider_config_active",
                        eks.waiters.identity_provider_config_active(
                            cluster_name=cluster, name="okta", config=long_waits,
                            on_progress=on))

    print("\n3. Create pod identity associations and wait until each is visible")

    async def onboard(namespace: str, account: str) -> Any:
        out = await eks.create_pod_identity_association(
            cluster_name=cluster, namespace=namespace, service_account=account,
            role_arn=ROLE.format(f"{namespace}-{account}"),
        )
        assert out.association is not None and out.association.association_id
        await eks.waiters.pod_identity_association_visible(
            cluster_name=cluster, association_id=out.association.association_id,
            config=waits, on_progress=on)
        return out.association

    created = await timeline.step(
        f"{len(SERVICE_ACCOUNTS)} x CreatePodIdentityAssociation + pod_identity_association_visible",
        asyncio.gather(*(onboard(ns, sa) for ns, sa in SERVICE_ACCOUNTS)))

    print("\n4. Give one service account a new role and see it through")
    first = created[0]
    new_role = ROLE.format("payments-api-v2")
    await timeline.step("UpdatePodIdentityAssociation", eks.update_pod_identity_association(
        cluster_name=cluster, association_id=first.association_id, role_arn=new_role))
    await timeline.step("waiters.pod_identity_association_updated",
                        eks.waiters.pod_identity_association_updated(
                            cluster_name=cluster, association_id=first.association_id,
                            role_arn=new_role, config=waits, on_progress=on))

    print("\n5. List them")
    listed = [a async for a in eks.paginate.list_pod_identity_associations(cluster_name=cluster)]
    for assoc in listed:
        print(f"    {assoc.association_id}  {assoc.namespace}/{assoc.service_account}")

    print("\n6. Delete them and wait until they are gone")

    async def remove(association_id: str) -> None:
        await eks.delete_pod_identity_association(cluster_name=cluster,
                                                  association_id=association_id)
        await eks.waiters.pod_identity_association_deleted(
            cluster_name=cluster, association_id=association_id, config=waits, on_progress=on)

    await timeline.step("DeletePodIdentityAssociation + pod_identity_association_deleted",
                        asyncio.gather(*(remove(a.association_id) for a in created)))

    print("\n7. Disassociate the identity provider")
    ended = await timeline.step("DisassociateIdentityProviderConfig okta",
                                eks.disassociate_identity_provider_config(
                                    cluster_name=cluster,
                                    identity_provider_config=models.IdentityProviderConfig(
                                        type="oidc", name="okta")))
    assert ended.update is not None and ended.update.id is not None
    await timeline.step("waiters.update_successful", eks.waiters.update_successful(
        cluster_name=cluster, update_id=ended.update.id, config=long_waits, on_progress=on))
    await timeline.step("waiters.identity_provider_config_deleted",
                        eks.waiters.identity_provider_config_deleted(
                            cluster_name=cluster, name="okta", config=long_waits,
                            on_progress=on))
