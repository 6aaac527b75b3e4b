"""What the emulator puts on the wire, and the EKS rules it enforces."""

from __future__ import annotations

import json
import re

import attrs
import httpx
import pytest

import eks_async
from eks_async import (
    BadRequestException,
    InvalidParameterException,
    InvalidRequestException,
    NotFoundException,
    OidcIdentityProviderConfigRequest,
    ResourceInUseException,
    ResourceNotFoundException,
    RetryConfig,
    ServiceError,
)
from eks_async.testing import (
    DelayRange,
    Delays,
    EKSEmulator,
    EmulatorConfig,
    EmulatorResponse,
    Exchange,
    Fault,
    FaultRates,
    ManualClock,
    pytest_plugin,
)

from ._emulator_support import (  # noqa: F401
    ASSOCIATION_ID,
    ROLE,
    UUID,
    body_of,
    error_code,
    problems_with,
    signed,
    validate_emulator_responses,
)

# The plugin's fixtures, for this module's tests.
eks_emulator_config = pytest_plugin.eks_emulator_config
eks_emulator_clock = pytest_plugin.eks_emulator_clock
eks_emulator = pytest_plugin.eks_emulator
eks_client = pytest_plugin.eks_client

EKS_ERROR_TYPE = "{}:http://internal.amazon.com/coral/com.amazonaws.eks.v20171101/"
NO_RETRY = RetryConfig(max_attempts=1)


def emulator(**settings: object) -> EKSEmulator:
    emu = EKSEmulator(clock=ManualClock(), delays=Delays.none(), **settings)
    emu.add_cluster("prod")
    return emu


def okta(**changes: str) -> OidcIdentityProviderConfigRequest:
    fields = {
        "identity_provider_config_name": "okta",
        "issuer_url": "https://example.okta.com/oauth2/default",
        "client_id": "kubernetes",
        **changes,
    }
    return OidcIdentityProviderConfigRequest(**fields)


async def test_errors_carry_eks_headers_and_body() -> None:
    emu = emulator()
    answer = await emu.handle(signed("GET", "/clusters/nope"))
    assert answer.status == 404
    assert answer.header("x-amzn-ErrorType") == EKS_ERROR_TYPE.format("ResourceNotFoundException")
    assert UUID.fullmatch(answer.header("x-amzn-RequestId") or "")
    assert answer.header("Content-Type") == "application/json"
    assert body_of(answer) == {"message": "No cluster found for name: nope.", "clusterName": "nope"}


async def test_successes_carry_epoch_floats_and_eks_ids() -> None:
    emu = emulator()
    body = json.dumps(
        {"namespace": "payments", "serviceAccount": "api", "roleArn": ROLE, "tags": {"a": "b"}}
    ).encode()
    answer = await emu.handle(signed("POST", "/clusters/prod/pod-identity-associations", body))
    assert answer.status == 200 and answer.header("x-amzn-ErrorType") is None
    raw = answer.body.decode()
    association = body_of(answer)["association"]
    assert ASSOCIATION_ID.fullmatch(association["associationId"])
    assert association["associationArn"] == (
        "arn:aws:eks:us-west-2:123456789012:podidentityassociation/prod/"
        + association["associationId"]
    )
    assert isinstance(association["createdAt"], float)
    assert re.search(r'"createdAt":\d{10}\.\d+', raw)  # epoch seconds, not ISO text
    assert association["tags"] == {"a": "b"}


async def test_request_ids_and_association_ids_differ_per_call() -> None:
    emu = emulator()
    ids = set()
    request_ids = set()
    async with emu.client() as eks:
        for i in range(20):
            out = await eks.create_pod_identity_association(
                cluster_name="prod", namespace="n", service_account=f"s{i}", role_arn=ROLE
            )
            ids.add(out.association.association_id)
            request_ids.add(out.response_metadata.request_id)
    assert len(ids) == 20 and len(request_ids) == 20


@pytest.mark.parametrize(
    ("oidc", "needle"),
    [
        (okta(issuer_url="http://example.okta.com"), "issuerUrl"),
        (okta(issuer_url="https://example.okta.com/?tenant=1"), "issuerUrl"),
        (okta(issuer_url="https://"), "issuerUrl"),
        (okta(identity_provider_config_name="-bad"), "identityProviderConfigName"),
    ],
)
async def test_identity_provider_configs_are_validated(
    oidc: OidcIdentityProviderConfigRequest, needle: str
) -> None:
    emu = emulator()
    async with emu.client() as eks:
        with pytest.raises(InvalidParameterException) as caught:
            await eks.associate_identity_provider_config(cluster_name="prod", oidc=oidc)
    assert needle in (caught.value.message or "")
    assert caught.value.cluster_name == "prod"


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"role_arn": "arn:aws:iam::123:role/x"}, "roleArn"),
        ({"role_arn": "arn:aws:iam::123456789012:user/x"}, "roleArn"),
        ({"role_arn": "payments"}, "roleArn"),
        ({"target_role_arn": "arn:aws:s3:::bucket"}, "targetRoleArn"),
        ({"namespace": "Payments"}, "namespace"),
        ({"namespace": "x" * 64}, "namespace"),
        ({"service_account": "api_v1"}, "serviceAccount"),
    ],
)
async def test_associations_are_validated(changes: dict[str, str], needle: str) -> None:
    emu = emulator()
    params = {"namespace": "payments", "service_account": "api", "role_arn": ROLE, **changes}
    async with emu.client() as eks:
        with pytest.raises(InvalidParameterException) as caught:
            await eks.create_pod_identity_association(cluster_name="prod", **params)
    assert needle in (caught.value.message or "")


async def test_missing_and_malformed_members_are_named() -> None:
    emu = emulator()
    missing = await emu.handle(
        signed("POST", "/clusters/prod/pod-identity-associations", b'{"namespace": "a"}')
    )
    assert error_code(missing) == "InvalidParameterException"
    assert body_of(missing)["message"] == "serviceAccount: is required"
    nested = await emu.handle(
        signed(
            "POST",
            "/clusters/prod/identity-provider-configs/associate",
            b'{"oidc": {"identityProviderConfigName": "o", "clientId": "c"}}',
        )
    )
    assert body_of(nested)["message"] == "oidc.issuerUrl: is required"
    bad_name = await emu.handle(signed("POST", "/clusters", b'{"name": "-x", "roleArn": "r"}'))
    assert "name" in body_of(bad_name)["message"]
    not_json = await emu.handle(signed("POST", "/clusters", b"name=prod"))
    assert body_of(not_json)["message"] == "body: is not valid JSON"
    untag = await emu.handle(
        signed("DELETE", "/tags/arn%3Aaws%3Aeks%3Aus-west-2%3A1%3Acluster%2Fx")
    )
    assert error_code(untag) == "BadRequestException"  # the tag operations' own code
    assert body_of(untag)["message"] == "tagKeys: is required"


async def test_unknown_paths_and_methods() -> None:
    emu = emulator()
    for method, target in [("GET", "/nothing"), ("PUT", "/clusters"), ("GET", "/clusters/")]:
        answer = await emu.handle(signed(method, target))
        assert answer.status == 404
        assert error_code(answer) == "UnknownOperationException"
    assert emu.calls("UnknownOperation").error == 3


async def test_operations_that_are_not_emulated_say_so() -> None:
    emu = emulator()
    async with emu.client() as eks:
        with pytest.raises(InvalidRequestException) as caught:
            await eks.list_nodegroups(cluster_name="prod")
    assert caught.value.message == "eks_async emulator: operation ListNodegroups is not emulated"
    assert caught.value.http_status == 400


async def test_one_association_per_namespace_and_service_account() -> None:
    emu = emulator()
    async with emu.client() as eks:
        first = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="payments", service_account="api", role_arn=ROLE
        )
        with pytest.raises(ResourceInUseException) as caught:
            await eks.create_pod_identity_association(
                cluster_name="prod", namespace="payments", service_account="api", role_arn=ROLE
            )
        assert caught.value.http_status == 409
        assert (
            caught.value.message
            == f"Association already exists: {first.association.association_id}"
        )
        # Another service account, or another cluster, is fine.
        await eks.create_pod_identity_association(
            cluster_name="prod", namespace="payments", service_account="worker", role_arn=ROLE
        )
        with pytest.raises(ResourceNotFoundException) as missing:
            await eks.create_pod_identity_association(
                cluster_name="nope", namespace="payments", service_account="api", role_arn=ROLE
            )
        assert missing.value.cluster_name == "nope"
        with pytest.raises(ResourceNotFoundException):
            await eks.describe_pod_identity_association(
                cluster_name="prod", association_id="a-00000000000000000"
            )


async def test_idempotency_tokens() -> None:
    emu = emulator()
    async with emu.client() as eks:
        first = await eks.create_pod_identity_association(
            cluster_name="prod",
            namespace="payments",
            service_account="api",
            role_arn=ROLE,
            client_request_token="token-1",
        )
        again = await eks.create_pod_identity_association(
            cluster_name="prod",
            namespace="payments",
            service_account="api",
            role_arn=ROLE,
            client_request_token="token-1",
        )
        assert again.association == first.association
        with pytest.raises(InvalidRequestException) as caught:
            await eks.create_pod_identity_association(
                cluster_name="prod",
                namespace="payments",
                service_account="other",
                role_arn=ROLE,
                client_request_token="token-1",
            )
        assert "idempotency token reused with different parameters" in (caught.value.message or "")
        started = await eks.associate_identity_provider_config(
            cluster_name="prod", oidc=okta(), client_request_token="idp-1"
        )
        repeated = await eks.associate_identity_provider_config(
            cluster_name="prod", oidc=okta(), client_request_token="idp-1"
        )
        assert repeated.update.id == started.update.id
    assert len((await emu.handle(signed("GET", "/clusters/prod/updates"))).json()["updateIds"]) == 1


async def test_tags_on_clusters_and_associations() -> None:
    emu = emulator()
    async with emu.client() as eks:
        out = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="n", service_account="s", role_arn=ROLE, tags={"a": "1"}
        )
        arn = out.association.association_arn
        await eks.tag_resource(resource_arn=arn, tags={"b": "2"})
        assert (await eks.list_tags_for_resource(resource_arn=arn)).tags == {"a": "1", "b": "2"}
        described = await eks.describe_pod_identity_association(
            cluster_name="prod", association_id=out.association.association_id
        )
        assert described.association.tags == {"a": "1", "b": "2"}
        await eks.untag_resource(resource_arn=arn, tag_keys=["a"])
        assert (await eks.list_tags_for_resource(resource_arn=arn)).tags == {"b": "2"}
        with pytest.raises(BadRequestException):
            await eks.tag_resource(resource_arn=arn, tags={"aws:reserved": "x"})
        with pytest.raises(BadRequestException):
            await eks.list_tags_for_resource(resource_arn="not-an-arn")
        with pytest.raises(NotFoundException) as missing:
            await eks.list_tags_for_resource(
                resource_arn="arn:aws:eks:us-west-2:123456789012:cluster/nope"
            )
        assert missing.value.http_status == 404
        with pytest.raises(NotFoundException):  # another account's ARN
            await eks.list_tags_for_resource(
                resource_arn="arn:aws:eks:us-west-2:999999999999:cluster/prod"
            )


async def test_paging_tokens_and_limits() -> None:
    emu = emulator()
    for name in ("b", "a", "c"):
        emu.add_cluster(name)
    async with emu.client() as eks:
        first = await eks.list_clusters(max_results=2)
        assert first.clusters == ["a", "b"] and first.next_token
        rest = await eks.list_clusters(max_results=2, next_token=first.next_token)
        assert rest.clusters == ["c", "prod"] and rest.next_token is None
        with pytest.raises(InvalidParameterException):
            await eks.list_clusters(next_token="forged")
        with pytest.raises(InvalidParameterException):  # a token of another operation
            await eks.list_pod_identity_associations(
                cluster_name="prod", next_token=first.next_token
            )
        with pytest.raises(InvalidParameterException) as too_many:
            await eks.list_clusters(max_results=101)
        assert "maxResults" in (too_many.value.message or "")


async def test_listeners_see_every_exchange() -> None:
    emu = emulator()
    seen: list[Exchange] = []
    emu.add_listener(seen.append)
    emu.script("ListClusters", Fault.DROP_AFTER)
    async with emu.client(retry=NO_RETRY) as eks:
        await eks.describe_cluster(name="prod")
        with pytest.raises(eks_async.TransportError):
            await eks.list_clusters()
    assert [(e.operation, e.outcome, e.fault) for e in seen] == [
        ("DescribeCluster", "ok", None),
        ("ListClusters", "dropped", Fault.DROP_AFTER),
    ]
    emu.remove_listener(seen.append)


async def test_the_transport_raises_what_httpx_raises_for_a_dropped_connection() -> None:
    emu = emulator(verify_signatures=False)
    emu.script("*", Fault.DROP_BEFORE)
    async with httpx.AsyncClient(transport=emu.transport(), base_url="https://eks") as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/clusters")
        answer = await http.get("/clusters")
    assert answer.json() == {"clusters": ["prod"]}


async def test_pytest_plugin_fixtures(
    eks_emulator: EKSEmulator, eks_client: eks_async.EKSClient
) -> None:
    assert isinstance(eks_emulator.clock, ManualClock)
    eks_emulator.add_cluster("prod")
    out = await eks_client.create_pod_identity_association(
        cluster_name="prod", namespace="n", service_account="s", role_arn=ROLE
    )
    with pytest.raises(ResourceNotFoundException):
        await eks_client.describe_pod_identity_association(
            cluster_name="prod", association_id=out.association.association_id
        )
    moved = eks_emulator.settle()
    assert 1.0 <= moved <= 5.0  # the default propagation delay
    await eks_client.describe_pod_identity_association(
        cluster_name="prod", association_id=out.association.association_id
    )


def test_configuration_is_checked_and_round_trips() -> None:
    with pytest.raises(ValueError):
        FaultRates(throttle=0.7, server_error=0.5)
    with pytest.raises(ValueError):
        FaultRates(throttle=-0.1)
    with pytest.raises(ValueError):
        DelayRange(low=5, high=1)
    with pytest.raises(ValueError):
        EmulatorConfig(operation_faults={"NoSuchOperation": FaultRates()})
    with pytest.raises(ValueError):
        EmulatorConfig(throttle_code="SlowDown")  # type: ignore[arg-type]
    config = EmulatorConfig(
        seed=9,
        delays=Delays(association_create=(2, 4)),
        faults=FaultRates(throttle=0.25, latency=0.5),
        operation_faults={"DescribeUpdate": FaultRates(server_error=1.0)},
        throttle_code="TooManyRequestsException",
    )
    rebuilt = EmulatorConfig().updated(json.loads(json.dumps(config.to_json())))
    assert rebuilt == config
    assert attrs.evolve(config, seed=1) != config
    with pytest.raises(ValueError):
        config.updated({"delays": {"nope": 1}})
    with pytest.raises(TypeError):
        config.updated({"seed": "7"})
    assert "secret" not in repr(EKSEmulator()).lower()


def test_the_validator_finds_what_is_wrong() -> None:
    # The model-based check itself must be able to fail.
    def exchange(status: int, body: object, error_type: str | None = None) -> Exchange:
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", "5f5414c7-0642-4ea4-8ff2-b00c32ecf673"),
        ]
        if error_type:
            headers.append(("x-amzn-ErrorType", error_type))
        response = EmulatorResponse(
            status=status, headers=tuple(headers), body=json.dumps(body).encode()
        )
        return Exchange(
            operation="DescribeUpdate",
            method="GET",
            path="/",
            query="",
            outcome="ok",
            fault=None,
            response=response,
        )

    good = {"update": {"id": "x", "status": "InProgress", "errors": []}}
    assert problems_with(exchange(200, good)) == []
    assert problems_with(exchange(200, {"update": {"status": "Running"}}))  # not in the enum
    assert problems_with(exchange(200, {"update": {"id": 5}}))  # wrong type
    assert problems_with(exchange(200, {"update": {"surprise": 1}}))  # unknown member
    assert problems_with(exchange(200, {"update": {"createdAt": "2024-01-01"}}))  # not epoch
    not_found = EKS_ERROR_TYPE.format("ResourceNotFoundException")
    assert problems_with(exchange(404, {"message": "m", "clusterName": "c"}, not_found)) == []
    assert problems_with(exchange(400, {"message": "m"}, not_found))  # wrong status
    assert problems_with(exchange(404, {"message": "m", "extra": 1}, not_found))
    assert problems_with(exchange(404, {"nomessage": 1}, not_found))
    assert problems_with(exchange(404, {"message": "m"}, "ResourceNotFoundException"))


async def test_service_errors_never_leak_as_crashes(monkeypatch: pytest.MonkeyPatch) -> None:
    emu = emulator()

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(type(emu._service), "describe_cluster", broken)
    from eks_async.testing import _service

    monkeypatch.setitem(_service._HANDLERS, "DescribeCluster", broken)
    async with emu.client(retry=NO_RETRY) as eks:
        with pytest.raises(ServiceError) as caught:
            await eks.describe_cluster(name="prod")
    assert caught.value.code == "ServerException" and caught.value.http_status == 500


async def test_large_bodies_over_http_get_eks_errors() -> None:
    emu = emulator(verify_signatures=False)
    body = json.dumps({"namespace": "n" * 2_000_000, "serviceAccount": "s", "roleArn": ROLE})
    async with emu.serve() as url, httpx.AsyncClient() as http:
        answer = await http.post(url + "/clusters/prod/pod-identity-associations", content=body)
    assert answer.status_code == 400
    assert answer.headers["x-amzn-ErrorType"].startswith("InvalidParameterException:")
    assert answer.json()["message"].endswith("is not a valid Kubernetes name")
    assert answer.json()["clusterName"] == "prod"
