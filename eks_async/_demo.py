"""``eks-async demo``: a platform team's identity workflow against an embedded emulator.

EKS's real durations run sped up (the waiters keep EKS time, so what they print reads as it
would against AWS), some calls are throttled, and every propagation delay is waited out by
a waiter: a CI role's access entry until the cluster allows it (``access_entry_effective``),
pod identity associations until EKS Auth hands out their roles
(``pod_identity_association_effective``). The cluster's Kubernetes API is served on
127.0.0.1 for those (it needs the ``emulator`` extra; without it they are left out). Needs
no AWS account and no network.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from ._client import EKSClient
from ._core import RetryEvent
from ._retry import RetryConfig
from ._waiters.engine import WaiterConfig, WaitProgress

T = TypeVar("T")

ROLE = "arn:aws:iam::111122223333:role/{}"
SERVICE_ACCOUNTS = (("payments", "api"), ("payments", "worker"), ("search", "indexer"),
                    ("search", "query"))
NAMESPACES = ("payments", "search")
EDIT_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"
#: The CI role's key in the emulator (made up; the emulator accepts it once registered).
CI_KEY = "AKIAEXAMPLEDEMOCI001"


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


class Kubernetes:
    """The demo cluster's Kubernetes API, as ``kubectl create`` would use it: JSON POSTs
    with a cluster token of the given client (no Kubernetes client library needed)."""

    def __init__(self, eks: EKSClient, cluster: str) -> None:
        from ._waiters.access import ClusterAPI

        self.eks = eks
        self.api = ClusterAPI(cluster)

    async def create(self, path: str, kind: str, name: str) -> None:
        if self.api.transport is None:
            await self.api.open(self.eks)
        token = (await self.eks.get_token(**self.api.token_target)).token
        body = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}}
        await self.api.post(path, body, token)

    async def aclose(self) -> None:
        await self.api.aclose()


def _kubernetes_served(emulator: Any) -> bool:
    """Whether the emulator can serve the clusters' Kubernetes APIs (``cryptography``)."""
    try:
        emulator.kubernetes_ca_pem  # noqa: B018 - made on first use
    except ImportError:
        return False
    return True


async def run_demo(args: argparse.Namespace) -> None:
    import secrets

    from ._auth.credentials import Credentials
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
            access_entry_create=(5, 15),
            access_policy_associate=(5, 15),
            pod_identity_auth=(3, 8),
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
    # The CI role's credentials, as STS would hand them to a pipeline.
    account = emulator.config.default_account_id
    ci = Credentials(access_key_id=CI_KEY, secret_access_key=secrets.token_urlsafe(30),
                     session_token=secrets.token_urlsafe(60))
    emulator.register_credentials(
        ci.access_key_id, ci.secret_access_key, session_token=ci.session_token,
        arn=f"arn:aws:sts::{account}:assumed-role/ci-deployer/pipeline",
    )
    kube = _kubernetes_served(emulator)
    if not kube:
        print("  (no Kubernetes endpoints without the 'cryptography' package: the access entry "
              "and the 'effective' waits are left out; pip install 'eks-async[emulator]')")
    retry = RetryConfig(max_attempts=6, max_backoff=0.5)
    eks: EKSClient
    async with contextlib.AsyncExitStack() as stack:
        if kube:
            await stack.enter_async_context(emulator.serve())
        eks = await stack.enter_async_context(
            emulator.client(retry=retry, on_retry=timeline.retry))
        as_ci = await stack.enter_async_context(emulator.client(
            aws_access_key_id=ci.access_key_id, aws_secret_access_key=ci.secret_access_key,
            aws_session_token=ci.session_token, retry=retry, on_retry=timeline.retry))
        identity = Identity(
            f"arn:aws:iam::{account}:role/ci-deployer", ci, as_ci, emulator
        ) if kube else None
        await _workflow(eks, timeline, waits, long_waits, identity)
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


#: EKS seconds per real second while the demo talks to the cluster's Kubernetes API over
#: HTTPS: faster, and a real round trip (TLS, a retried call's real back-off) would read as
#: minutes of EKS time, far longer than the propagation the waits are there to show.
KUBE_TIME_SCALE = 40.0


class Identity:
    """The CI role of the demo: its ARN, its credentials, and an EKS client signing with them;
    ``paced()`` slows the emulator's clock to ``KUBE_TIME_SCALE`` for the HTTPS steps."""

    def __init__(self, ci_role: str, ci: Any, as_ci: EKSClient, emulator: Any) -> None:
        self.ci_role = ci_role
        self.ci = ci
        self.as_ci = as_ci
        self.emulator = emulator

    @contextlib.contextmanager
    def paced(self) -> Iterator[None]:
        before = self.emulator.config.time_scale
        self.emulator.configure(time_scale=min(before, KUBE_TIME_SCALE))
        try:
            yield
        finally:
            self.emulator.configure(time_scale=before)


async def _workflow(eks: EKSClient, timeline: Timeline, waits: WaiterConfig,
                    long_waits: WaiterConfig, identity: Identity | None = None) -> None:
    import asyncio

    from ._generated import models

    on = timeline.progress
    cluster = "demo"
    print("\n1. Create a cluster (access entries only) and wait until it is ACTIVE")
    await timeline.step("CreateCluster demo", eks.create_cluster(
        name=cluster,
        role_arn=ROLE.format("eks-cluster"),
        resources_vpc_config=models.VpcConfigRequest(subnet_ids=["subnet-1", "subnet-2"]),
        access_config=models.CreateAccessConfigRequest(
            authentication_mode="API", bootstrap_cluster_creator_admin_permissions=True),
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

    if identity is not None:
        print(f"\n   (steps 3 to 5 run at {KUBE_TIME_SCALE:.0f}x: they go over HTTPS to the "
              "cluster's Kubernetes API)")
        with identity.paced():
            await _ci_role(eks, identity, cluster, timeline, waits)

    effective = identity is not None
    print("\n4. Create pod identity associations and wait until each is visible"
          + (" and EKS Auth hands out its role" if effective else ""))

    async def onboard(namespace: str, account: str) -> Any:
        out = await eks.create_pod_identity_association(
            cluster_name=cluster, namespace=namespace, service_account=account,
            role_arn=ROLE.format(f"{namespace}-{account}"),
        )
        assert out.association is not None and out.association.association_id
        await eks.waiters.pod_identity_association_visible(
            cluster_name=cluster, association_id=out.association.association_id,
            config=waits, on_progress=on)
        if effective:
            await eks.waiters.pod_identity_association_effective(
                cluster_name=cluster, association_id=out.association.association_id,
                config=waits, on_progress=on)
        return out.association

    waited = " + pod_identity_association_effective" if effective else ""
    with identity.paced() if identity is not None else contextlib.nullcontext():
        created = await timeline.step(
            f"{len(SERVICE_ACCOUNTS)} x CreatePodIdentityAssociation + "
            f"pod_identity_association_visible{waited}",
            asyncio.gather(*(onboard(ns, sa) for ns, sa in SERVICE_ACCOUNTS)))

    print("\n5. Give one service account a new role and see it through")
    first = created[0]
    new_role = ROLE.format("payments-api-v2")
    await timeline.step("UpdatePodIdentityAssociation", eks.update_pod_identity_association(
        cluster_name=cluster, association_id=first.association_id, role_arn=new_role))
    await timeline.step("waiters.pod_identity_association_updated",
                        eks.waiters.pod_identity_association_updated(
                            cluster_name=cluster, association_id=first.association_id,
                            role_arn=new_role, config=waits, on_progress=on))
    if identity is not None:
        with identity.paced():
            await timeline.step("waiters.pod_identity_association_effective (the new role)",
                                eks.waiters.pod_identity_association_effective(
                                    cluster_name=cluster, association_id=first.association_id,
                                    config=waits, on_progress=on))

    print("\n6. List them")
    listed = [a async for a in eks.paginate.list_pod_identity_associations(cluster_name=cluster)]
    for assoc in listed:
        print(f"    {assoc.association_id}  {assoc.namespace}/{assoc.service_account}")

    print("\n7. Delete them and wait until they are gone")

    async def remove(association_id: str) -> None:
        await eks.delete_pod_identity_association(cluster_name=cluster,
                                                  association_id=association_id)
        await eks.waiters.pod_identity_association_deleted(
            cluster_name=cluster, association_id=association_id, config=waits, on_progress=on)

    await timeline.step("DeletePodIdentityAssociation + pod_identity_association_deleted",
                        asyncio.gather(*(remove(a.association_id) for a in created)))

    print("\n8. Disassociate the identity provider")
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


async def _ci_role(eks: EKSClient, identity: Identity, cluster: str, timeline: Timeline,
                   waits: WaiterConfig) -> None:
    """Step 3: the CI role gets Edit in the teams' namespaces, the demo waits until the
    cluster allows it, and the role then creates the teams' service accounts."""
    from ._generated import models

    print("\n3. Give a CI role access to the teams' namespaces and wait until it is in effect")
    admin = Kubernetes(eks, cluster)
    as_ci = Kubernetes(identity.as_ci, cluster)
    try:
        async def namespaces() -> None:
            for namespace in NAMESPACES:
                await admin.create("/api/v1/namespaces", "Namespace", namespace)

        await timeline.step(f"Kubernetes (as the cluster creator): create namespaces "
                            f"{', '.join(NAMESPACES)}", namespaces())
        await timeline.step("CreateAccessEntry ci-deployer", eks.create_access_entry(
            cluster_name=cluster, principal_arn=identity.ci_role))
        await timeline.step(
            f"AssociateAccessPolicy AmazonEKSEditPolicy (namespaces {', '.join(NAMESPACES)})",
            eks.associate_access_policy(
                cluster_name=cluster, principal_arn=identity.ci_role, policy_arn=EDIT_POLICY,
                access_scope=models.AccessScope(type="namespace", namespaces=list(NAMESPACES))))
        await timeline.step(
            "waiters.access_entry_effective (as ci-deployer: create serviceaccounts)",
            eks.waiters.access_entry_effective(
                cluster_name=cluster, principal_arn=identity.ci_role, credentials=identity.ci,
                can_i=("create", "serviceaccounts", NAMESPACES[0]), config=waits,
                on_progress=timeline.progress))

        async def service_accounts() -> None:
            for namespace, account in SERVICE_ACCOUNTS:
                await as_ci.create(f"/api/v1/namespaces/{namespace}/serviceaccounts",
                                   "ServiceAccount", account)

        await timeline.step(f"Kubernetes (as ci-deployer): create {len(SERVICE_ACCOUNTS)} "
                            "service accounts", service_accounts())
    finally:
        await admin.aclose()
        await as_ci.aclose()
