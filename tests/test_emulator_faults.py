"""Injected faults: seeded rates, scripted failures, drops, latency, and their counters."""

from __future__ import annotations

import json

import aiobotocore.session
import httpx
import pytest

import eks_async
from eks_async import (
    RetryConfig,
    ServerException,
    ServiceError,
    ServiceUnavailableException,
    ThrottlingException,
    TransportError,
    instant_retries,
)
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    CallCounts,
    Delays,
    EKSEmulator,
    Fault,
    FaultRates,
    ManualClock,
)

from ._emulator_support import ROLE, VPC, body_of, error_code, signed, validate_emulator_responses  # noqa: F401

NO_RETRY = RetryConfig(max_attempts=1)


def emulator(**settings: object) -> EKSEmulator:
    emu = EKSEmulator(clock=ManualClock(), delays=Delays.none(), **settings)
    emu.add_cluster("prod")
    return emu


async def test_thirty_percent_throttling_shows_in_the_counters() -> None:
    emu = emulator(seed=11, faults=FaultRates(throttle=0.3))
    throttled = ok = 0
    async with emu.client(retry=NO_RETRY) as eks:
        for _ in range(200):
            try:
                await eks.describe_cluster(name="prod")
            except ThrottlingException as exc:
                assert exc.http_status == 429 and exc.message == "Rate exceeded"
                throttled += 1
            else:
                ok += 1
    counts = emu.calls("DescribeCluster")
    assert counts == CallCounts(ok=ok, throttled=throttled)
    assert 40 <= throttled <= 80  # 30% of 200, give or take
    assert emu.counters() == {"DescribeCluster": counts}


async def test_retries_absorb_throttling_and_every_attempt_is_counted() -> None:
    emu = emulator(seed=5, faults=FaultRates(throttle=0.3))
    retries = []
    with instant_retries():
        async with emu.client(retry=RetryConfig(max_attempts=6), on_retry=retries.append) as eks:
            for _ in range(50):
                await eks.describe_cluster(name="prod")
    counts = emu.calls("DescribeCluster")
    assert counts.ok == 50
    assert counts.throttled == len(retries) > 0
    assert counts.total == 50 + len(retries)


async def test_a_create_dropped_after_commit_is_visible_in_list() -> None:
    emu = emulator()
    emu.script("CreatePodIdentityAssociation", Fault.DROP_AFTER)
    async with emu.client(retry=NO_RETRY) as eks:
        with pytest.raises(TransportError):
            await eks.create_pod_identity_association(
                cluster_name="prod", namespace="payments", service_account="api", role_arn=ROLE
            )
        listed = await eks.list_pod_identity_associations(cluster_name="prod")
        assert [(a.namespace, a.service_account) for a in listed.associations] == [
            ("payments", "api")
        ]
    assert emu.calls("CreatePodIdentityAssociation") == CallCounts(dropped=1)


async def test_a_create_dropped_before_acting_leaves_nothing() -> None:
    emu = emulator()
    emu.script("CreatePodIdentityAssociation", Fault.DROP_BEFORE)
    async with emu.client(retry=NO_RETRY) as eks:
        with pytest.raises(TransportError):
            await eks.create_pod_identity_association(
                cluster_name="prod", namespace="payments", service_account="api", role_arn=ROLE
            )
        assert (await eks.list_pod_identity_associations(cluster_name="prod")).associations == []


async def test_a_retried_dropped_create_returns_the_first_result() -> None:
    # The retry carries the same clientRequestToken: the emulator answers with the
    # association the dropped attempt made, instead of a 409 for a second one.
    emu = emulator()
    emu.script("CreatePodIdentityAssociation", Fault.DROP_AFTER)
    with instant_retries():
        async with emu.client() as eks:
            out = await eks.create_pod_identity_association(
                cluster_name="prod", namespace="payments", service_account="api", role_arn=ROLE
            )
            listed = await eks.list_pod_identity_associations(cluster_name="prod")
    assert [a.association_id for a in listed.associations] == [out.association.association_id]
    assert emu.calls("CreatePodIdentityAssociation") == CallCounts(ok=1, dropped=1)


async def test_scripted_server_errors_hit_exactly_the_next_calls() -> None:
    emu = emulator()
    async with emu.client(retry=NO_RETRY) as eks:
        started = await eks.associate_identity_provider_config(
            cluster_name="prod",
            oidc=eks_async.OidcIdentityProviderConfigRequest(
                identity_provider_config_name="okta",
                issuer_url="https://id.example.com",
                client_id="x",
            ),
        )
        emu.script("DescribeUpdate", Fault.SERVER_ERROR, times=2)
        for _ in range(2):
            with pytest.raises(ServerException) as caught:
                await eks.describe_update(name="prod", update_id=started.update.id)
            assert caught.value.http_status == 500
        await eks.describe_update(name="prod", update_id=started.update.id)
        await eks.describe_cluster(name="prod")  # other operations were never affected
        emu.script("*", Fault.UNAVAILABLE)
        with pytest.raises(ServiceUnavailableException) as unavailable:
            await eks.list_clusters()
        assert unavailable.value.http_status == 503
    assert emu.calls("DescribeUpdate") == CallCounts(ok=1, error=2)
    assert emu.calls("ListClusters") == CallCounts(error=1)


async def test_too_many_requests_is_sent_the_way_eks_sends_it_in_the_field() -> None:
    emu = emulator(throttle_code="TooManyRequestsException")
    emu.script("DescribeCluster", "throttle")
    answer = await emu.handle(signed("GET", "/clusters/prod"))
    assert answer.status == 429
    assert body_of(answer) == {"message": "Too Many Requests"}
    assert error_code(answer) == "TooManyRequestsException"
    async with emu.client(retry=NO_RETRY) as eks:
        emu.script("DescribeCluster", Fault.THROTTLE)
        with pytest.raises(ServiceError) as caught:
            await eks.describe_cluster(name="prod")
    assert caught.value.code == "TooManyRequestsException" and caught.value.http_status == 429
    assert emu.calls("DescribeCluster").throttled == 2


async def test_per_operation_rates_and_latency() -> None:
    emu = emulator(
        operation_faults={"ListClusters": FaultRates(server_error=1.0, latency=(2.0, 2.0))}
    )
    async with emu.client(retry=NO_RETRY) as eks:
        await eks.describe_cluster(name="prod")
        assert emu.clock.monotonic() == 0.0
        with pytest.raises(ServerException):
            await eks.list_clusters()
        assert emu.clock.monotonic() == 2.0  # the latency passed on the emulator's clock


async def test_dropped_connections_over_http() -> None:
    emu = emulator()
    async with emu.serve() as url, httpx.AsyncClient() as http:
        emu.script("ListClusters", Fault.DROP_BEFORE)
        request = signed("GET", "/clusters", host=url.removeprefix("http://"))
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(url + "/clusters", headers=dict(request.headers))
        answer = await http.get(url + "/clusters", headers=dict(request.headers))
        assert answer.status_code == 200 and answer.json() == {"clusters": ["prod"]}


async def test_aiobotocore_retries_a_dropped_create_into_one_association() -> None:
    emu = emulator()
    emu.script("CreatePodIdentityAssociation", Fault.DROP_AFTER)
    session = aiobotocore.session.get_session()
    async with (
        emu.serve() as url,
        session.create_client(
            "eks",
            region_name="us-west-2",
            endpoint_url=url,
            aws_access_key_id=TEST_ACCESS_KEY_ID,
            aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
        ) as client,
    ):
        out = await client.create_pod_identity_association(
            clusterName="prod", namespace="payments", serviceAccount="api", roleArn=ROLE
        )
        assert out["ResponseMetadata"]["RetryAttempts"] == 1
        listed = await client.list_pod_identity_associations(clusterName="prod")
    assert [a["associationId"] for a in listed["associations"]] == [
        out["association"]["associationId"]
    ]
    assert emu.calls("CreatePodIdentityAssociation") == CallCounts(ok=1, dropped=1)


# --- the admin API ----------------------------------------------------------------------------


async def test_the_admin_api_controls_an_emulator_over_http() -> None:
    emu = EKSEmulator(clock=ManualClock(), delays=Delays.none())
    async with emu.serve() as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/_emulator/health")).json() == {"ok": True}
        added = await http.post("/_emulator/clusters", json={"name": "prod"})
        assert added.json() == {"arn": "arn:aws:eks:us-west-2:123456789012:cluster/prod"}

        config = await http.post(
            "/_emulator/config",
            json={"faults": {"throttle": 1.0}, "delays": {"association_create": [1, 2]}},
        )
        assert config.status_code == 200
        assert config.json()["faults"]["throttle"] == 1.0
        assert config.json()["delays"]["association_create"] == [1.0, 2.0]
        assert emu.config.faults.throttle == 1.0

        host = url.removeprefix("http://")
        describe = signed("GET", "/clusters/prod", host=host)
        throttled = await http.get("/clusters/prod", headers=dict(describe.headers))
        assert throttled.status_code == 429
        await http.post("/_emulator/config", json={"faults": {"throttle": 0.0}})

        scripted = await http.post(
            "/_emulator/faults",
            json={"operation": "DescribeCluster", "fault": "server_error", "times": 1},
        )
        assert scripted.status_code == 200
        assert (await http.get("/_emulator/state")).json()["scripted"] == {
            "DescribeCluster": ["server_error"]
        }
        failed = await http.get("/clusters/prod", headers=dict(describe.headers))
        assert failed.status_code == 500 and failed.headers["x-amzn-ErrorType"].startswith(
            "ServerException:"
        )
        fine = await http.get("/clusters/prod", headers=dict(describe.headers))
        assert fine.status_code == 200

        counters = (await http.get("/_emulator/counters")).json()
        assert counters == {
            "DescribeCluster": {
                "ok": 1, "throttled": 1, "error": 1, "dropped": 0, "rate_limited": 0, "total": 3
            }
        }

        moved = await http.post("/_emulator/clock", json={"advance": 90})
        assert moved.json() == {"moved": 90.0, "now": 90.0}

        registered = await http.post(
            "/_emulator/credentials",
            json={
                "access_key_id": "AKIDOTHER",
                "secret_access_key": "s3",
                "account_id": "210987654321",
            },
        )
        assert registered.status_code == 200
        other = signed("GET", "/clusters", host=host, access_key="AKIDOTHER", secret_key="s3")
        assert (await http.get("/clusters", headers=dict(other.headers))).json() == {"clusters": []}

        reset = await http.post("/_emulator/reset", json={"seed": 42})
        assert reset.json() == {"ok": True, "seed": 42}
        assert (await http.get("/_emulator/counters")).json() == {}
        assert (await http.get("/_emulator/config")).json()["seed"] == 42
        gone = await http.get("/clusters/prod", headers=dict(describe.headers))
        assert gone.status_code == 404

        # Bad admin requests are refused, never a crash.
        assert (await http.post("/_emulator/config", content=b"{nope")).status_code == 400
        assert (
            await http.post("/_emulator/config", json={"faults": {"throttle": 2}})
        ).status_code == 400
        assert (await http.post("/_emulator/config", json={"nonsense": 1})).status_code == 400
        assert (
            await http.post("/_emulator/faults", json={"operation": "Nope", "fault": "throttle"})
        ).status_code == 400
        assert (
            await http.post(
                "/_emulator/faults", json={"operation": "ListClusters", "fault": "nope"}
            )
        ).status_code == 400
        assert (await http.post("/_emulator/clock", json={"advance": -1})).status_code == 400
        missing = await http.get("/_emulator/nothing-here")
        assert missing.status_code == 404 and "message" in missing.json()


async def test_clock_admin_needs_a_manual_clock() -> None:
    emu = EKSEmulator()
    answer = await emu.handle(
        signed("POST", "/_emulator/clock", json.dumps({"advance": 1}).encode())
    )
    assert answer.status == 400
    with pytest.raises(TypeError):
        emu.advance(1)
