"""The examples, run against the emulator: the FastAPI app and the batch onboarding job.

The app is tested through its real lifespan (which must open and close the one client)
and ASGI, with a propagation delay on new associations, so a create that answered before
the association was visible would show up as a listing that misses it. The batch job is
cut off halfway through a run with throttling and connections dropped after EKS acted,
then run again: the rerun must not duplicate anything and must recognise what the first
run made.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
from fastapi import FastAPI

from eks_async import (
    ConfigurationError,
    EKSClient,
    RetryConfig,
    WaiterConfig,
    instant_retries,
    set_instant_retries,
)
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    TEST_REGION,
    TEST_SECRET_ACCESS_KEY,
    Delays,
    EKSEmulator,
    Exchange,
    Fault,
    FaultRates,
    ManualClock,
)
from eks_async.testing._config import RateLimit
from examples import batch_onboard
from examples.batch_onboard import Assignment, Outcome, Report, Result, load_plan, onboard
from examples.fastapi_app import create_app

from ._virtual_time import run_virtual
from .test_emulator_ratelimit import LoopClock

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/payments-api"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/payments-api-v2"
PATH = "/clusters/{}/pod-identity-associations"


# --- the FastAPI app ---------------------------------------------------------------------------


class RecordingClient(EKSClient):
    """An EKSClient that notes when it is opened and closed."""

    events: list[str]

    async def __aenter__(self) -> Self:
        self.events.append("open")
        return await super().__aenter__()

    async def aclose(self) -> None:
        self.events.append("close")
        await super().aclose()


class ClientFactory:
    """Makes clients wired to the emulator in-process, and keeps them for inspection."""

    def __init__(self, emulator: EKSEmulator, retry: RetryConfig | None = None) -> None:
        self.emulator = emulator
        self.retry = retry
        self.made: list[RecordingClient] = []

    def __call__(self) -> EKSClient:
        client = RecordingClient(
            region=TEST_REGION,
            aws_access_key_id=TEST_ACCESS_KEY_ID,
            aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
            transport=self.emulator.transport(),
            retry=self.retry,
        )
        client.events = []
        self.made.append(client)
        return client


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (start-up and shutdown) around an HTTP client for it."""
    try:
        from asgi_lifespan import LifespanManager  # type: ignore[import-not-found]
    except ImportError:
        lifespan: Any = app.router.lifespan_context(app)
    else:
        lifespan = LifespanManager(app)
    async with lifespan:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            yield http


def app_emulator() -> EKSEmulator:
    # A manual clock: a new association stays unseen for 4 EKS seconds, and those pass
    # only while a waiter sleeps (on this clock), never while the machine is busy. (On a
    # sped-up real clock, a slow machine could let them pass before the first poll.)
    emulator = EKSEmulator(seed=5, clock=ManualClock(), delays=Delays(association_create=4.0))
    emulator.add_cluster("prod")
    return emulator


def eks_time_wait(emulator: EKSEmulator) -> WaiterConfig:
    """Waiter pacing measured on the emulator's clock: its pauses move that clock."""
    clock = emulator.clock
    return WaiterConfig(min_delay=0.5, max_delay=2.0, max_wait=60.0,
                        clock=clock.monotonic, sleep=clock.sleep)


def body(namespace: str = "payments", service_account: str = "api",
         role_arn: str = ROLE) -> dict[str, str]:
    return {"namespace": namespace, "service_account": service_account, "role_arn": role_arn}


async def test_app_lifespan_opens_and_closes_one_client() -> None:
    emulator = app_emulator()
    factory = ClientFactory(emulator)
    app = create_app(factory, visibility_wait=eks_time_wait(emulator))
    assert factory.made == []  # nothing is opened before start-up
    async with running(app) as http:
        assert len(factory.made) == 1
        client = factory.made[0]
        assert client.events == ["open"]
        assert app.state.eks is client
        for _ in range(3):
            response = await http.get(PATH.format("prod"))
            assert response.status_code == 200, response.text
        assert len(factory.made) == 1  # one client for every request
    assert client.events == ["open", "close"]
    assert not hasattr(app.state, "eks")
    with pytest.raises(ConfigurationError):
        await client.list_clusters()


async def test_app_create_answers_once_visible_and_list_shows_it() -> None:
    emulator = app_emulator()
    app = create_app(ClientFactory(emulator), visibility_wait=eks_time_wait(emulator))
    async with running(app) as http:
        started = emulator.clock.monotonic()
        response = await http.post(PATH.format("prod"), json=body())
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["visible"] is True
        assert created["namespace"] == "payments"
        assert created["service_account"] == "api"
        assert created["role_arn"] == ROLE
        assert created["cluster_name"] == "prod"
        association_id = created["association_id"]
        # The answer came after the propagation delay, having polled through "not found".
        assert emulator.clock.monotonic() - started >= 4.0
        assert emulator.calls("DescribePodIdentityAssociation").error >= 1

        # Straight away, with and without filters, the listing has it.
        listed = await http.get(
            PATH.format("prod"), params={"namespace": "payments", "service_account": "api"}
        )
        assert listed.status_code == 200, listed.text
        assert [a["association_id"] for a in listed.json()["associations"]] == [association_id]
        everything = await http.get(PATH.format("prod"))
        assert [a["association_id"] for a in everything.json()["associations"]] == [
            association_id
        ]
        other = await http.get(PATH.format("prod"), params={"namespace": "elsewhere"})
        assert other.json() == {"associations": []}


async def test_app_answers_202_when_the_association_shows_too_late() -> None:
    emulator = app_emulator()  # a new association stays unseen for 4 EKS seconds
    impatient = WaiterConfig(min_delay=0.5, max_delay=0.5, max_wait=1.5,
                             clock=emulator.clock.monotonic, sleep=emulator.clock.sleep)
    app = create_app(ClientFactory(emulator), visibility_wait=impatient)
    async with running(app) as http:
        response = await http.post(PATH.format("prod"), json=body())
        assert response.status_code == 202, response.text
        assert response.json()["visible"] is False
        assert response.json()["association_id"]
        # It exists all the same: creating it again is a conflict.
        assert (await http.post(PATH.format("prod"), json=body())).status_code == 409


async def test_app_maps_eks_errors_to_http() -> None:
    emulator = app_emulator()
    app = create_app(ClientFactory(emulator), visibility_wait=eks_time_wait(emulator))
    async with running(app) as http:
        assert (await http.post(PATH.format("prod"), json=body())).status_code == 201

        again = await http.post(PATH.format("prod"), json=body(role_arn=OTHER_ROLE))
        assert again.status_code == 409, again.text
        assert again.json()["code"] == "ResourceInUseException"
        assert again.json()["request_id"]

        for missing in (
            await http.post(PATH.format("staging"), json=body()),
            await http.get(PATH.format("staging")),
        ):
            assert missing.status_code == 404, missing.text
            assert missing.json()["code"] == "ResourceNotFoundException"

        # EKS's 400 for a bad role ARN: the caller's input, so 422 like any bad input.
        bad_role = await http.post(PATH.format("prod"),
                                   json=body(service_account="web", role_arn="not-an-arn"))
        assert bad_role.status_code == 422, bad_role.text
        assert bad_role.json()["code"] == "InvalidParameterException"
        assert "roleArn" in bad_role.json()["message"]

        # Refused by eks_async before sending: "." as a cluster name is no URL segment.
        dot = await http.post(PATH.format("%2E"), json=body())
        assert dot.status_code == 422, dot.text
        assert dot.json()["code"] == "ParamValidationError"

        # FastAPI's own validation still answers for malformed bodies.
        assert (await http.post(PATH.format("prod"), json={"namespace": "x"})).status_code == 422

        # Nothing of the failed calls was created.
        listed = await http.get(PATH.format("prod"))
        assert [(a["namespace"], a["service_account"])
                for a in listed.json()["associations"]] == [("payments", "api")]


async def test_app_answers_503_when_throttling_outlasts_retries() -> None:
    emulator = app_emulator()
    factory = ClientFactory(emulator, retry=RetryConfig(max_attempts=3))
    app = create_app(factory, visibility_wait=eks_time_wait(emulator))
    emulator.script("CreatePodIdentityAssociation", Fault.THROTTLE, times=3)
    with instant_retries():
        async with running(app) as http:
            response = await http.post(PATH.format("prod"), json=body())
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "1"
            assert response.json()["code"] == "ThrottlingException"
            assert response.json()["attempts"] == 3
            # Throttling that ends within the retries is invisible to the caller.
            emulator.script("CreatePodIdentityAssociation", Fault.THROTTLE, times=2)
            assert (await http.post(PATH.format("prod"), json=body())).status_code == 201
    assert emulator.calls("CreatePodIdentityAssociation").throttled == 5


# --- the batch job ---------------------------------------------------------------------------

CLUSTERS = ("alpha", "beta", "gamma")


def big_plan() -> list[Assignment]:
    """60 service accounts over three clusters and several namespaces."""
    return [
        Assignment(cluster=cluster, namespace=f"team-{n % 4}", service_account=f"svc-{n:02d}",
                   role_arn=f"arn:aws:iam::{ACCOUNT}:role/{cluster}-svc-{n:02d}")
        for cluster in CLUSTERS
        for n in range(20)
    ]


class GaugedTransport(httpx.AsyncBaseTransport):
    """Passes requests on after a turn of the event loop, noting how many are in flight."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.in_flight = 0
        self.most = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0)  # as a network would, let other requests start meanwhile
            return await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1


def manual_wait(clock: ManualClock, seed: int = 0) -> WaiterConfig:
    """Waits that move the manual clock by their pause: time passes only while waiting."""
    return WaiterConfig(min_delay=1.0, max_delay=4.0, max_wait=120.0,
                        clock=clock.monotonic, sleep=clock.sleep, rng=random.Random(seed).random)


def committed_creates(emulator: EKSEmulator) -> set[tuple[str, str, str]]:
    """Every (cluster, namespace, service account) a create has made, answered or not.

    Returns a live set, filled by a listener from the emulator's own answers.
    """
    made: set[tuple[str, str, str]] = set()

    def listen(exchange: Exchange) -> None:
        if exchange.operation == "CreatePodIdentityAssociation" and (
            exchange.response.status == 200
        ):
            assoc = json.loads(exchange.response.body)["association"]
            made.add((assoc["clusterName"], assoc["namespace"], assoc["serviceAccount"]))

    emulator.add_listener(listen)
    return made


async def listed_keys(eks: EKSClient) -> Counter[tuple[str, str, str]]:
    """How many associations List shows per (cluster, namespace, service account)."""
    keys: Counter[tuple[str, str, str]] = Counter()
    async for cluster in eks.paginate.list_clusters():
        async for s in eks.paginate.list_pod_identity_associations(cluster_name=cluster):
            assert s.cluster_name and s.namespace and s.service_account
            keys[(s.cluster_name, s.namespace, s.service_account)] += 1
    return keys


def keys_of(results: list[Result]) -> set[tuple[str, str, str]]:
    return {r.assignment.key for r in results}


async def test_batch_interrupted_then_rerun_converges_without_duplicates() -> None:
    clock = ManualClock()
    emulator = EKSEmulator(
        seed=11,
        clock=clock,
        delays=Delays(association_create=(2.0, 6.0)),
        faults=FaultRates(throttle=0.1, drop_after=0.05),
    )
    for cluster in CLUSTERS:
        emulator.add_cluster(cluster)
    plan = big_plan()
    everything = {row.key for row in plan}
    made = committed_creates(emulator)
    halfway = asyncio.Event()

    def count(exchange: Exchange) -> None:
        if len(made) >= 25:
            halfway.set()

    emulator.add_listener(count)

    transport = GaugedTransport(emulator.transport())
    with instant_retries():
        async with emulator.client(retry=RetryConfig(max_attempts=8), transport=transport) as eks:
            first = asyncio.create_task(onboard(eks, plan, concurrency=8, wait=manual_wait(clock)))
            await halfway.wait()
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await first
            assert first.cancelled()
            made_by_first = set(made)
            assert 25 <= len(made_by_first) < len(plan)
            first_run_calls = emulator.counters()

            report = await onboard(eks, plan, concurrency=8, wait=manual_wait(clock, 1))

            assert report.ok, report.summary()
            assert len(report.results) == len(plan)
            assert keys_of(report.already_present) == made_by_first
            assert keys_of(report.created) == everything - made_by_first
            assert report.updated == []
            assert made == everything  # between them, the two runs created every row
            # Rows ran side by side, never more than 8 at once (one request at a time each).
            assert transport.most == 8

            # The run reported each row only once List showed it: no time has passed since.
            assert await listed_keys(eks) == Counter(everything)
            emulator.settle()  # and nothing else is on its way
            assert await listed_keys(eks) == Counter(everything)

            # A third run finds everything in place and creates nothing.
            creates_before = emulator.calls("CreatePodIdentityAssociation").total
            third = await onboard(eks, plan, concurrency=8, wait=manual_wait(clock, 2))
            assert keys_of(third.already_present) == everything, third.summary()
            assert emulator.calls("CreatePodIdentityAssociation").total == creates_before

    # The faults happened (before the cut and after), and the retries absorbed them.
    assert sum(c.throttled for c in first_run_calls.values()) > 0
    assert sum(c.dropped for c in first_run_calls.values()) > 0
    totals = emulator.counters()
    assert totals["CreatePodIdentityAssociation"].dropped > 0
    assert totals["CreatePodIdentityAssociation"].throttled > 0


async def test_batch_resolves_a_create_that_is_not_visible_yet() -> None:
    """A create cut off before its association showed: the rerun's create gets
    ResourceInUseException, and the job finds and reports the association instead."""
    clock = ManualClock()
    emulator = EKSEmulator(seed=3, clock=clock, delays=Delays(association_create=30.0))
    emulator.add_cluster("alpha")
    async with emulator.client() as eks:
        earlier = await eks.create_pod_identity_association(
            cluster_name="alpha", namespace="team", service_account="api", role_arn=ROLE
        )
        assert earlier.association is not None
        plan = [
            Assignment(cluster="alpha", namespace="team", service_account="api", role_arn=ROLE),
            Assignment(cluster="alpha", namespace="team", service_account="web", role_arn=ROLE),
        ]
        report = await onboard(eks, plan, concurrency=1, wait=manual_wait(clock))
    assert [r.outcome for r in report.results] == [Outcome.ALREADY_PRESENT, Outcome.CREATED]
    assert report.results[0].association_id == earlier.association.association_id
    creates = emulator.calls("CreatePodIdentityAssociation")
    assert creates.ok == 2  # the earlier one, and "web"
    assert creates.error >= 1  # "api": ResourceInUseException until it showed
    emulator.settle()
    async with emulator.client() as eks:
        assert await listed_keys(eks) == Counter(row.key for row in plan)


async def test_batch_updates_a_different_role_and_reports_failures() -> None:
    clock = ManualClock()
    emulator = EKSEmulator(seed=4, clock=clock)
    emulator.add_cluster("alpha")
    async with emulator.client() as eks:
        old = await eks.create_pod_identity_association(
            cluster_name="alpha", namespace="team", service_account="api", role_arn=ROLE,
            wait=False,
        )
        assert old.association is not None and old.association.association_id
        emulator.settle()
        plan = [
            Assignment(cluster="alpha", namespace="team", service_account="api",
                       role_arn=OTHER_ROLE),
            Assignment(cluster="missing", namespace="team", service_account="api",
                       role_arn=ROLE),
            Assignment(cluster="alpha", namespace="team", service_account="bad",
                       role_arn="not-an-arn"),
        ]
        report = await onboard(eks, plan, wait=manual_wait(clock))
        described = await eks.describe_pod_identity_association(
            cluster_name="alpha", association_id=old.association.association_id
        )
    assert [r.outcome for r in report.results] == [Outcome.UPDATED, Outcome.FAILED,
                                                   Outcome.FAILED]
    assert report.results[0].association_id == old.association.association_id
    assert described.association is not None and described.association.role_arn == OTHER_ROLE
    assert "ResourceNotFoundException" in report.results[1].detail
    assert "InvalidParameterException" in report.results[2].detail
    assert not report.ok
    assert "1 updated" in report.summary() and "2 failed" in report.summary()


async def test_batch_refuses_a_plan_with_two_roles_for_one_service_account() -> None:
    clock = ManualClock()
    emulator = EKSEmulator(clock=clock)
    row = Assignment(cluster="alpha", namespace="team", service_account="api", role_arn=ROLE)
    twice = Assignment(cluster="alpha", namespace="team", service_account="api",
                       role_arn=OTHER_ROLE)
    async with emulator.client() as eks:
        with pytest.raises(ValueError, match="two roles"):
            await onboard(eks, [row, twice])
        # The same row twice is done once.
        emulator.add_cluster("alpha")
        report = await onboard(eks, [row, row], wait=manual_wait(clock))
    assert isinstance(report, Report) and [r.outcome for r in report.results] == [Outcome.CREATED]


def test_load_plan_reads_json_and_csv(tmp_path: Path) -> None:
    rows = [
        {"cluster": "alpha", "namespace": "team", "service_account": "api", "role_arn": ROLE},
        {"cluster": "beta", "namespace": "team", "service_account": "web", "role_arn": ROLE},
    ]
    as_json = tmp_path / "plan.json"
    as_json.write_text(json.dumps(rows))
    as_csv = tmp_path / "plan.csv"
    as_csv.write_text("cluster,namespace,service_account,role_arn\n"
                      + "".join(f"{r['cluster']},{r['namespace']},{r['service_account']},"
                                f"{r['role_arn']}\n" for r in rows))
    expected = [Assignment(**r) for r in rows]
    assert load_plan(as_json) == expected
    assert load_plan(as_csv) == expected

    broken = tmp_path / "broken.csv"
    broken.write_text("cluster,namespace,service_account,role_arn\nalpha,team,,x\n")
    with pytest.raises(ValueError, match=r"broken\.csv:2: service_account"):
        load_plan(broken)
    not_a_list = tmp_path / "plan2.json"
    not_a_list.write_text("{}")
    with pytest.raises(ValueError, match="JSON list"):
        load_plan(not_a_list)



def test_batch_main_runs_a_plan_file_and_reruns_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator = EKSEmulator(delays=Delays.none())
    emulator.add_cluster("alpha")
    # main() builds its client from the environment; here it gets the emulator's instead.
    monkeypatch.setattr(batch_onboard, "EKSClient", lambda **options: emulator.client(**options))
    plan = tmp_path / "plan.csv"
    plan.write_text("cluster,namespace,service_account,role_arn\n"
                    f"alpha,team,api,{ROLE}\nalpha,team,web,{ROLE}\n")
    argv = [str(plan), "--region", TEST_REGION, "--concurrency", "2"]

    assert batch_onboard.main(argv) == 0
    out = capsys.readouterr().out
    assert "2 service accounts: 2 created, 0 already present" in out
    # Adaptive mode by default: the rate achieved, as its rate limiter saw it.
    assert "2 rows in " in out and "EKS answered " in out and "rate limit target" in out
    assert batch_onboard.main([*argv, "--retry-mode", "standard"]) == 0
    out = capsys.readouterr().out
    assert "0 created, 2 already present" in out
    assert "2 rows in " in out and "EKS answered" not in out

    plan.write_text(plan.read_text() + f"nowhere,team,api,{ROLE}\n")
    assert batch_onboard.main(argv) == 1
    out = capsys.readouterr().out
    assert "1 failed" in out and "nowhere/team/api: ResourceNotFoundException" in out

    with pytest.raises(SystemExit) as exit_info:
        batch_onboard.main([str(tmp_path / "absent.json")])
    assert exit_info.value.code == 2


async def _paced_batch() -> tuple[Report, batch_onboard.Pace, int]:
    """120 rows, 32 at a time, into 20 calls/s (burst 10), in adaptive mode, on the
    virtual-time loop (the emulator's buckets on the same clock)."""
    loop = asyncio.get_running_loop()
    emulator = EKSEmulator(
        clock=LoopClock(loop), delays=Delays.none(), rate_limit=RateLimit(rate=20, burst=10)
    )
    emulator.add_cluster("alpha")
    plan = [
        Assignment(cluster="alpha", namespace="team", service_account=f"sa-{i:03d}",
                   role_arn=ROLE)
        for i in range(120)
    ]
    retry = batch_onboard.retry_config("adaptive")
    wait = WaiterConfig(min_delay=1.0, max_delay=10.0, max_wait=120.0, jitter=False,
                        clock=loop.time)
    async with emulator.client(retry=retry) as eks:
        start = loop.time()
        report = await onboard(eks, plan, concurrency=32, wait=wait)
        pace = batch_onboard.Pace(rows=120, seconds=loop.time() - start, limiter=retry.limiter)
    throttled = sum(emulator.calls(op).throttled for op in (
        "ListPodIdentityAssociations", "CreatePodIdentityAssociation",
        "DescribePodIdentityAssociation",
    ))
    return report, pace, throttled


def test_batch_in_adaptive_mode_runs_at_the_rate_limit() -> None:
    with instant_retries():
        set_instant_retries(False)  # backoff and pacing sleep, on virtual time
        report, pace, throttled = run_virtual(_paced_batch())
    assert report.ok and len(report.created) == 120
    limiter = pace.limiter
    assert limiter is not None and limiter.throttles == throttled
    calls = limiter.admitted + limiter.throttles
    assert throttled <= 0.05 * calls
    assert limiter.admitted / pace.seconds >= 0.9 * 20  # about the limit
    assert "120 rows in" in pace.summary() and "throttled" in pace.summary()
