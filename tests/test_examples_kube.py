"""The batch onboarding job with its Kubernetes step, against the served emulator.

The emulator runs over HTTP, with each cluster's Kubernetes API over HTTPS; the job
creates every row's ServiceAccount (and namespace) through ``eks_async.kubernetes`` before
the row's Pod Identity association. EKS throttles and drops connections after acting
(``FaultRates``); the Kubernetes API is made to do the same by the client factory the test
hands the job (the emulator's Kubernetes API has no faults of its own). The first run is
cut off halfway and a second run finishes the plan: afterwards each service account exists
exactly once in Kubernetes and has exactly one association in EKS, and the second run
reports what the first one made as already present.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client as k8s

from eks_async import EKSClient, RetryConfig, instant_retries
from eks_async.kubernetes import api_client
from eks_async.testing import (
    TEST_REGION,
    Delays,
    EKSEmulator,
    Fault,
    FaultRates,
    ManualClock,
    run_emulator_server,
)
from examples import batch_onboard
from examples.batch_onboard import RUN_ANNOTATION, Assignment, Outcome, Result, onboard

from .test_examples import (
    ACCOUNT,
    ROLE,
    committed_creates,
    keys_of,
    listed_keys,
    manual_wait,
)

CLUSTERS = ("alpha", "beta")
# "default" is there from the start; the others the job must create, once per cluster.
NAMESPACES = ("default", "team-a", "team-b")
CONCURRENCY = 6
# The API server's answer when its priority and fairness limits are reached.
TOO_MANY_REQUESTS = json.dumps({
    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
    "message": "Too many requests, please try again later.", "reason": "TooManyRequests",
    "details": {"retryAfterSeconds": 1}, "code": 429,
}).encode()


def kube_plan() -> list[Assignment]:
    """30 service accounts over two clusters, the clusters' rows interleaved."""
    return [
        Assignment(cluster=cluster, namespace=NAMESPACES[n % 3], service_account=f"svc-{n:02d}",
                   role_arn=f"arn:aws:iam::{ACCOUNT}:role/{cluster}-svc-{n:02d}")
        for n in range(15)
        for cluster in CLUSTERS
    ]


class FaultyKubeClients:
    """The job's ApiClientFactory: ``eks_async.kubernetes.api_client``, noting each client it
    opens and the Kubernetes requests in flight, and injecting faults: some requests are
    throttled (429) before reaching the API server, and some creates lose their connection
    after the API server answered. At most ``MAX_STREAK`` requests in a row for one object
    fail, so the job's retries (8 attempts) always get through: a row that fails is a bug."""

    MAX_STREAK = 3

    def __init__(self, seed: int, *, throttle: float = 0.1, drop_after: float = 0.15) -> None:
        self.rng = random.Random(seed)
        self.throttle = throttle
        self.drop_after = drop_after
        self.opened: list[str] = []
        self.clients: list[Any] = []
        self.faults: Counter[str] = Counter()
        self.streaks: Counter[tuple[str, str, str | None]] = Counter()
        self.in_flight = 0
        self.most = 0

    @contextlib.asynccontextmanager
    async def __call__(self, eks: EKSClient, cluster: str) -> AsyncIterator[Any]:
        async with api_client(eks, cluster) as api:
            self.opened.append(cluster)
            self.clients.append(api)
            inner = api.rest_client.request

            async def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
                self.in_flight += 1
                self.most = max(self.most, self.in_flight)
                body = kwargs.get("body") or {}
                key = (method, url, (body.get("metadata") or {}).get("name"))
                draw = self.rng.random() if self.streaks[key] < self.MAX_STREAK else 1.0
                self.streaks[key] += 1
                try:
                    if draw < self.throttle:
                        self.faults["throttled"] += 1
                        throttled = k8s.ApiException(status=429, reason="Too Many Requests")
                        throttled.body = TOO_MANY_REQUESTS
                        raise throttled
                    drop = method == "POST" and draw < self.throttle + self.drop_after
                    try:
                        response = await inner(method, url, *args, **kwargs)
                    except k8s.ApiException:
                        if not drop:
                            self.streaks[key] = 0  # an answer, if not a success
                            raise
                    if drop:  # the server acted (or refused), but its answer is lost
                        self.faults["dropped"] += 1
                        raise aiohttp.ServerDisconnectedError()
                    self.streaks[key] = 0
                    return response
                finally:
                    self.in_flight -= 1

            api.rest_client.request = request
            yield api


async def service_accounts(eks: EKSClient) -> tuple[Counter[tuple[str, str, str]],
                                                    set[tuple[str, str]]]:
    """The ServiceAccounts of every cluster (all but ``default``), listed namespace by
    namespace with kubernetes_asyncio, and the namespaces there are."""
    accounts: Counter[tuple[str, str, str]] = Counter()
    namespaces: set[tuple[str, str]] = set()
    for cluster in CLUSTERS:
        async with api_client(eks, cluster) as api:
            core = k8s.CoreV1Api(api)
            present = {ns.metadata.name for ns in (await core.list_namespace()).items}
            for namespace in sorted(present & set(NAMESPACES)):
                namespaces.add((cluster, namespace))
                listed = await core.list_namespaced_service_account(namespace)
                for sa in listed.items:
                    assert sa.metadata.namespace == namespace
                    if sa.metadata.name != "default":
                        mark = (sa.metadata.annotations or {}).get(RUN_ANNOTATION, "")
                        assert mark.endswith(f"/{sa.metadata.name}"), mark
                        accounts[(cluster, namespace, sa.metadata.name)] += 1
    return accounts, namespaces


def namespaces_of(results: list[Result]) -> Counter[tuple[str, str]]:
    return Counter((r.assignment.cluster, r.assignment.namespace) for r in results)


async def test_batch_with_service_accounts_interrupted_then_rerun_converges() -> None:
    clock = ManualClock()
    emulator = EKSEmulator(
        seed=21,
        clock=clock,
        delays=Delays(association_create=(2.0, 6.0)),
        faults=FaultRates(throttle=0.1, drop_after=0.05),
    )
    for cluster in CLUSTERS:
        emulator.add_cluster(cluster)
    plan = kube_plan()
    everything = {row.key for row in plan}
    all_namespaces = {(c, ns) for c in CLUSTERS for ns in NAMESPACES}
    made = committed_creates(emulator)
    # Besides the drops by chance, each run's first two creates lose their answer for sure.
    emulator.script("CreatePodIdentityAssociation", Fault.DROP_AFTER, times=2)
    kube = FaultyKubeClients(seed=7)
    finished: list[Result] = []
    halfway = asyncio.Event()

    def note(result: Result) -> None:
        finished.append(result)
        if len(finished) >= 12:
            halfway.set()

    with instant_retries():
        async with emulator.serve() as url, emulator.client(
            endpoint_url=url, transport=None, retry=RetryConfig(max_attempts=8)
        ) as eks:
            first = asyncio.create_task(onboard(
                eks, plan, concurrency=CONCURRENCY, wait=manual_wait(clock),
                kubernetes=kube, on_result=note,
            ))
            cut = asyncio.create_task(halfway.wait())
            await asyncio.wait([first, cut], return_when=asyncio.FIRST_COMPLETED)
            assert not first.done(), first.result()  # a run that ended on its own: why?
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await first
            assert first.cancelled()
            # One client per cluster for the run, closed when the run was cancelled.
            assert sorted(kube.opened) == sorted(CLUSTERS), [r.detail for r in finished]
            assert all(api.rest_client.pool_manager.closed for api in kube.clients)
            first_run_calls = emulator.counters()

            done_by_first = {r.assignment.key for r in finished}
            assert [r.detail for r in finished if r.outcome is Outcome.FAILED] == []
            assert {r.service_account_outcome for r in finished} == {Outcome.CREATED}
            accounts_before, namespaces_before = await service_accounts(eks)
            made_by_first = set(made)
            assert 12 <= len(done_by_first) < len(plan)
            # What the first run reported done is there, and it stopped short of the plan.
            assert done_by_first <= made_by_first
            assert done_by_first <= set(accounts_before)
            assert set(accounts_before) <= everything and len(accounts_before) < len(plan)
            assert max(accounts_before.values()) == 1

            kube.opened.clear()
            dropped_before = emulator.calls("CreatePodIdentityAssociation").dropped
            emulator.script("CreatePodIdentityAssociation", Fault.DROP_AFTER, times=2)
            report = await onboard(eks, plan, concurrency=CONCURRENCY,
                                   wait=manual_wait(clock, 1), kubernetes=kube)

            assert report.ok, report.summary()
            assert len(report.results) == len(plan)
            assert sorted(kube.opened) == sorted(CLUSTERS)
            # The Kubernetes step: what the first run made is "already present", the rest
            # created, and each missing namespace created once.
            assert keys_of(report.service_accounts_already_present) == set(accounts_before)
            assert keys_of(report.service_accounts_created) == everything - set(accounts_before)
            assert namespaces_of(report.namespaces_created) == Counter(
                all_namespaces - namespaces_before
            )
            # The EKS step, likewise.
            assert keys_of(report.already_present) == made_by_first
            assert keys_of(report.created) == everything - made_by_first
            assert report.updated == []
            assert made == everything
            assert emulator.calls("CreatePodIdentityAssociation").dropped >= dropped_before + 2
            assert 1 < kube.most <= CONCURRENCY

            # Exactly one ServiceAccount and one association per service account.
            accounts, namespaces = await service_accounts(eks)
            assert accounts == Counter(everything)
            assert namespaces == all_namespaces
            assert await listed_keys(eks) == Counter(everything)
            emulator.settle()
            assert await listed_keys(eks) == Counter(everything)

            # A third run finds everything in place and creates nothing.
            creates_before = emulator.calls("CreatePodIdentityAssociation").total
            third = await onboard(eks, plan, concurrency=CONCURRENCY,
                                  wait=manual_wait(clock, 2), kubernetes=kube)
            assert keys_of(third.already_present) == everything, third.summary()
            assert keys_of(third.service_accounts_already_present) == everything
            assert third.namespaces_created == []
            assert emulator.calls("CreatePodIdentityAssociation").total == creates_before
            assert (await service_accounts(eks))[0] == Counter(everything)
            assert "0 ServiceAccounts created, 30 already present" in third.summary()

    # The faults happened on both sides, and the retries absorbed them.
    assert sum(c.throttled for c in first_run_calls.values()) > 0
    assert sum(c.dropped for c in first_run_calls.values()) > 0
    assert first_run_calls["CreatePodIdentityAssociation"].dropped >= 2
    assert kube.faults["throttled"] > 0 and kube.faults["dropped"] > 0


async def test_batch_kubernetes_step_fails_rows_not_the_run() -> None:
    """A cluster without a Kubernetes client fails its rows (opened, or tried, once per
    run); a refused ServiceAccount fails its row; neither gets an association."""
    clock = ManualClock()
    emulator = EKSEmulator(seed=5, clock=clock, delays=Delays(association_create=0.0))
    emulator.add_cluster("alpha")
    emulator.add_cluster("creating", active=False)  # for 9 EKS minutes at least
    rows = [("alpha", "api"), ("alpha", "Bad_Name"), ("nowhere", "api"), ("nowhere", "web"),
            ("creating", "api"), ("alpha", "web")]
    plan = [Assignment(cluster=c, namespace="payments", service_account=sa,
                       role_arn=f"arn:aws:iam::{ACCOUNT}:role/{sa}") for c, sa in rows]
    async with emulator.serve() as url, emulator.client(endpoint_url=url, transport=None) as eks:
        report = await onboard(eks, plan, concurrency=4, wait=manual_wait(clock),
                               kubernetes=True)
        emulator.settle()
        assert await listed_keys(eks) == Counter(
            [("alpha", "payments", "api"), ("alpha", "payments", "web")]
        )
    outcomes = [(r.outcome, r.service_account_outcome) for r in report.results]
    assert outcomes == [
        (Outcome.CREATED, Outcome.CREATED),
        (Outcome.FAILED, None),
        (Outcome.FAILED, None),
        (Outcome.FAILED, None),
        (Outcome.FAILED, None),
        (Outcome.CREATED, Outcome.CREATED),
    ]
    details = [r.detail for r in report.results]
    assert details[1].startswith('Kubernetes 422 Invalid: ServiceAccount "Bad_Name" is invalid')
    assert details[2] == details[3]
    assert details[2].startswith("no Kubernetes client for cluster nowhere: "
                                 "ResourceNotFoundException")
    assert "has no Kubernetes endpoint yet" in details[4]
    # One DescribeCluster per cluster for the run, whether the client could be made or not.
    assert emulator.calls("DescribeCluster").total == 3
    assert [r.namespace_created for r in report.results].count(True) == 1
    summary = report.summary()
    assert "2 created, 0 already present, 0 updated, 4 failed" in summary
    assert "in Kubernetes: 2 ServiceAccounts created, 0 already present, 1 namespaces" in summary


def test_batch_main_with_kubernetes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator = EKSEmulator(delays=Delays.none())
    emulator.add_cluster("alpha")
    plan = tmp_path / "plan.csv"
    plan.write_text("cluster,namespace,service_account,role_arn\n"
                    f"alpha,team,api,{ROLE}\nalpha,team,web,{ROLE}\n")
    argv = [str(plan), "--region", TEST_REGION, "--kubernetes"]
    with run_emulator_server(emulator) as server:
        # main() builds its client from the environment; here it gets the served emulator's.
        monkeypatch.setattr(batch_onboard, "EKSClient", lambda **options: emulator.client(
            endpoint_url=server.url, transport=None, **options))
        assert batch_onboard.main(argv) == 0
        out = capsys.readouterr().out
        assert "2 service accounts: 2 created" in out
        assert "in Kubernetes: 2 ServiceAccounts created, 0 already present, 1 namespaces" in out
        assert batch_onboard.main(argv) == 0
        out = capsys.readouterr().out
        assert "0 created, 2 already present" in out
        assert "in Kubernetes: 0 ServiceAccounts created, 2 already present, 0 namespaces" in out
        # Without the flag, no Kubernetes step and no line for it.
        assert batch_onboard.main(argv[:-1]) == 0
        assert "in Kubernetes" not in capsys.readouterr().out
