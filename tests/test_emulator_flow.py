"""The identity workflow end to end against the emulator, driven by three clients.

eks_async runs in-process (the emulator as its httpx transport); aiobotocore and boto3 go
over HTTP (the emulator served on this event loop, or from a background thread). Every
answer is also checked against botocore's model by ``validate_emulator_responses``.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from typing import Any

import aiobotocore.session
import boto3
import pytest

import eks_async
from eks_async import (
    ClusterStatus,
    ConfigStatus,
    IdentityProviderConfig,
    OidcIdentityProviderConfigRequest,
    ResourceNotFoundException,
    UpdateStatus,
    UpdateType,
    VpcConfigRequest,
)
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    EKSEmulator,
    ManualClock,
    pytest_plugin,
    run_emulator_server,
)

from ._emulator_support import (
    ASSOCIATION_ID,
    OTHER_ROLE,
    ROLE,
    UUID,
    VPC,
    ResponseChecker,
    validate_emulator_responses,  # noqa: F401 - autouse: checks every answer
)

# The plugin's fixtures, for this module's tests.
eks_emulator_config = pytest_plugin.eks_emulator_config
eks_emulator_clock = pytest_plugin.eks_emulator_clock
eks_emulator = pytest_plugin.eks_emulator
eks_client = pytest_plugin.eks_client

CLUSTER_ROLE = "arn:aws:iam::123456789012:role/eks-cluster"
OKTA = {
    "identityProviderConfigName": "okta",
    "issuerUrl": "https://example.okta.com",
    "clientId": "kubernetes",
}


async def test_eks_async_identity_flow(
    eks_emulator: EKSEmulator, eks_client: eks_async.EKSClient
) -> None:
    emu, eks = eks_emulator, eks_client
    created = await eks.create_cluster(
        name="prod",
        role_arn=CLUSTER_ROLE,
        resources_vpc_config=VpcConfigRequest(subnet_ids=VPC["subnetIds"]),
        tags={"team": "payments"},
    )
    assert created.cluster.status is ClusterStatus.CREATING
    assert created.cluster.arn == "arn:aws:eks:us-west-2:123456789012:cluster/prod"
    assert created.cluster.endpoint is None
    emu.advance(emu.config.delays.cluster_create.high)
    cluster = (await eks.describe_cluster(name="prod")).cluster
    assert cluster.status is ClusterStatus.ACTIVE
    assert cluster.endpoint is not None and cluster.endpoint.startswith("https://")
    assert cluster.tags == {"team": "payments"}
    assert (await eks.list_clusters()).clusters == ["prod"]

    # An identity provider: a long-running Update, followed to Successful.
    started = await eks.associate_identity_provider_config(
        cluster_name="prod",
        oidc=OidcIdentityProviderConfigRequest(
            identity_provider_config_name="okta",
            issuer_url="https://example.okta.com",
            client_id="kubernetes",
        ),
    )
    assert started.update.status is UpdateStatus.IN_PROGRESS
    assert started.update.type is UpdateType.ASSOCIATE_IDENTITY_PROVIDER_CONFIG
    assert UUID.fullmatch(started.update.id)
    ref = IdentityProviderConfig(type="oidc", name="okta")
    polls = 0
    while True:
        update = (await eks.describe_update(name="prod", update_id=started.update.id)).update
        config = (
            await eks.describe_identity_provider_config(
                cluster_name="prod", identity_provider_config=ref
            )
        ).identity_provider_config
        assert config is not None and config.oidc is not None
        if update.status is UpdateStatus.SUCCESSFUL:
            assert config.oidc.status is ConfigStatus.ACTIVE
            break
        assert update.status is UpdateStatus.IN_PROGRESS
        assert config.oidc.status is ConfigStatus.CREATING
        emu.advance(120)
        polls += 1
    assert 7 <= polls <= 15  # 900 to 1800 EKS seconds, polled every 120
    assert (
        await eks.list_identity_provider_configs(cluster_name="prod")
    ).identity_provider_configs == [ref]
    assert (await eks.list_updates(name="prod")).update_ids == [started.update.id]

    # Pod identity associations: create, page through, update, delete.
    ids = []
    for i in range(5):
        out = await eks.create_pod_identity_association(
            cluster_name="prod", namespace="payments", service_account=f"api-{i}", role_arn=ROLE
        )
        assert ASSOCIATION_ID.fullmatch(out.association.association_id)
        ids.append(out.association.association_id)
    emu.settle()
    pages: list[list[str]] = []
    token = None
    while True:
        page = await eks.list_pod_identity_associations(
            cluster_name="prod", namespace="payments", max_results=2, next_token=token
        )
        pages.append([a.association_id for a in page.associations])
        token = page.next_token
        if token is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(i for p in pages for i in p) == sorted(ids)
    only = await eks.list_pod_identity_associations(cluster_name="prod", service_account="api-3")
    assert [a.association_id for a in only.associations] == [ids[3]]

    updated = await eks.update_pod_identity_association(
        cluster_name="prod", association_id=ids[0], role_arn=OTHER_ROLE
    )
    assert updated.association.role_arn == OTHER_ROLE
    emu.settle()
    seen = await eks.describe_pod_identity_association(cluster_name="prod", association_id=ids[0])
    assert seen.association.role_arn == OTHER_ROLE
    # settle() moved the clock past the create, so the update is strictly later, and
    # Describe shows the time the update's own answer gave.
    assert seen.association.modified_at > seen.association.created_at
    assert seen.association.modified_at == updated.association.modified_at
    await eks.delete_pod_identity_association(cluster_name="prod", association_id=ids[0])
    emu.settle()
    with pytest.raises(ResourceNotFoundException):
        await eks.describe_pod_identity_association(cluster_name="prod", association_id=ids[0])
    left = await eks.list_pod_identity_associations(cluster_name="prod")
    assert len(left.associations) == 4

    # Disassociate: DELETING, then gone; its Update goes Successful.
    stopped = await eks.disassociate_identity_provider_config(
        cluster_name="prod", identity_provider_config=ref
    )
    assert stopped.update.type is UpdateType.DISASSOCIATE_IDENTITY_PROVIDER_CONFIG
    config = (
        await eks.describe_identity_provider_config(
            cluster_name="prod", identity_provider_config=ref
        )
    ).identity_provider_config
    assert config is not None and config.oidc is not None
    assert config.oidc.status is ConfigStatus.DELETING
    emu.settle()
    done = await eks.describe_update(name="prod", update_id=stopped.update.id)
    assert done.update.status is UpdateStatus.SUCCESSFUL
    with pytest.raises(ResourceNotFoundException):
        await eks.describe_identity_provider_config(
            cluster_name="prod", identity_provider_config=ref
        )


# --- botocore's clients -----------------------------------------------------------------------

Call = Callable[..., Awaitable[dict[str, Any]]]


async def botocore_flow(call: Call, emulator: EKSEmulator) -> None:
    """The identity workflow through a botocore-based client; ``call(name, **params)``."""
    created = await call(
        "create_cluster", name="prod", roleArn=CLUSTER_ROLE, resourcesVpcConfig=VPC
    )
    assert created["cluster"]["status"] == "CREATING"
    assert isinstance(created["cluster"]["createdAt"], datetime.datetime)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert UUID.fullmatch(created["ResponseMetadata"]["RequestId"])
    emulator.advance(emulator.config.delays.cluster_create.high)
    cluster = (await call("describe_cluster", name="prod"))["cluster"]
    assert cluster["status"] == "ACTIVE"
    assert cluster["identity"]["oidc"]["issuer"].startswith("https://oidc.eks.us-west-2.")

    started = (await call("associate_identity_provider_config", clusterName="prod", oidc=OKTA))[
        "update"
    ]
    assert started["status"] == "InProgress"
    ref = {"type": "oidc", "name": "okta"}
    for _ in range(40):
        update = (await call("describe_update", name="prod", updateId=started["id"]))["update"]
        if update["status"] == "Successful":
            break
        assert update["status"] == "InProgress"
        emulator.advance(60)
    else:  # pragma: no cover - the update never finished
        pytest.fail("the identity provider update never finished")
    assert update["errors"] == []
    config = await call(
        "describe_identity_provider_config", clusterName="prod", identityProviderConfig=ref
    )
    assert config["identityProviderConfig"]["oidc"]["status"] == "ACTIVE"
    assert config["identityProviderConfig"]["oidc"]["issuerUrl"] == OKTA["issuerUrl"]
    listed = await call("list_identity_provider_configs", clusterName="prod")
    assert listed["identityProviderConfigs"] == [ref]

    ids = []
    for i in range(5):
        out = await call(
            "create_pod_identity_association",
            clusterName="prod",
            namespace="payments",
            serviceAccount=f"api-{i}",
            roleArn=ROLE,
            tags={"n": str(i)},
        )
        assert isinstance(out["association"]["createdAt"], datetime.datetime)
        ids.append(out["association"]["associationId"])
    # Not visible yet: eventual consistency.
    with pytest.raises(Exception) as caught:
        await call("describe_pod_identity_association", clusterName="prod", associationId=ids[0])
    assert type(caught.value).__name__ == "ResourceNotFoundException"
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"  # type: ignore[attr-defined]
    emulator.settle()
    collected: list[str] = []
    pages = 0
    kwargs: dict[str, Any] = {"clusterName": "prod", "maxResults": 2}
    while True:
        page = await call("list_pod_identity_associations", **kwargs)
        collected += [a["associationId"] for a in page["associations"]]
        pages += 1
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert pages == 3 and sorted(collected) == sorted(ids)

    await call(
        "update_pod_identity_association",
        clusterName="prod",
        associationId=ids[1],
        roleArn=OTHER_ROLE,
    )
    stale = await call(
        "describe_pod_identity_association", clusterName="prod", associationId=ids[1]
    )
    emulator.settle()
    fresh = await call(
        "describe_pod_identity_association", clusterName="prod", associationId=ids[1]
    )
    assert fresh["association"]["roleArn"] == OTHER_ROLE
    # The clock is manual and stands still: the update's stale window (at least 1 EKS
    # second) has not passed, so the read before settle() is the old role, always.
    assert stale["association"]["roleArn"] == ROLE
    assert fresh["association"]["tags"] == {"n": "1"}
    deleted = await call(
        "delete_pod_identity_association", clusterName="prod", associationId=ids[1]
    )
    assert deleted["association"]["associationId"] == ids[1]
    emulator.settle()
    remaining = await call("list_pod_identity_associations", clusterName="prod")
    assert sorted(a["associationId"] for a in remaining["associations"]) == sorted(
        ids[:1] + ids[2:]
    )

    arn = cluster["arn"]
    await call("tag_resource", resourceArn=arn, tags={"env": "test"})
    assert (await call("list_tags_for_resource", resourceArn=arn))["tags"] == {"env": "test"}
    await call("untag_resource", resourceArn=arn, tagKeys=["env"])
    assert (await call("list_tags_for_resource", resourceArn=arn)).get("tags", {}) == {}
    updates = await call("list_updates", name="prod")
    assert updates["updateIds"] == [started["id"]]


async def test_aiobotocore_identity_flow(request: pytest.FixtureRequest) -> None:
    checker: ResponseChecker = request.getfixturevalue("validate_emulator_responses")
    emulator = EKSEmulator(clock=ManualClock())
    session = aiobotocore.session.get_session()
    async with (
        emulator.serve() as url,
        session.create_client(
            "eks",
            region_name="us-west-2",
            endpoint_url=url,
            aws_access_key_id=TEST_ACCESS_KEY_ID,
            aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
        ) as client,
    ):

        async def call(op: str, /, **params: Any) -> dict[str, Any]:
            result: dict[str, Any] = await getattr(client, op)(**params)
            return result

        await botocore_flow(call, emulator)
        # botocore's own paginator over the emulator's tokens.
        paginator = client.get_paginator("list_pod_identity_associations")
        pages = [
            page
            async for page in paginator.paginate(
                clusterName="prod", PaginationConfig={"PageSize": 3}
            )
        ]
        assert [len(p["associations"]) for p in pages] == [3, 1]
    assert checker.checked > 25
    assert emulator.calls("DescribeUpdate").ok >= 15


async def test_boto3_identity_flow_on_a_background_server() -> None:
    emulator = EKSEmulator(clock=ManualClock())
    with run_emulator_server(emulator) as server:
        client = boto3.session.Session().client(
            "eks",
            region_name="us-west-2",
            endpoint_url=server.url,
            aws_access_key_id=TEST_ACCESS_KEY_ID,
            aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
        )

        async def call(op: str, /, **params: Any) -> dict[str, Any]:
            result: dict[str, Any] = await asyncio.to_thread(getattr(client, op), **params)
            return result

        await botocore_flow(call, server.emulator)
        pages = list(
            client.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 1})
        )
        assert [p["clusters"] for p in pages] == [["prod"]]


def test_boto3_from_plain_sync_code() -> None:
    # The helper needs no event loop in the caller: it is for synchronous tests.
    with run_emulator_server(delays=eks_async.testing.Delays.none()) as server:
        server.emulator.add_cluster("prod")
        client = boto3.client(
            "eks",
            region_name="us-west-2",
            endpoint_url=server.url,
            aws_access_key_id=TEST_ACCESS_KEY_ID,
            aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
        )
        out = client.create_pod_identity_association(
            clusterName="prod", namespace="ns", serviceAccount="sa", roleArn=ROLE
        )
        found = client.describe_pod_identity_association(
            clusterName="prod", associationId=out["association"]["associationId"]
        )
        assert found["association"]["roleArn"] == ROLE
    with pytest.raises(RuntimeError):
        _ = server.url  # stopped


async def test_eks_async_over_http_with_many_concurrent_calls() -> None:
    emulator = EKSEmulator(clock=ManualClock(), delays=eks_async.testing.Delays.none())
    emulator.add_cluster("prod")
    async with (
        emulator.serve() as url,
        eks_async.EKSClient(
            region="us-west-2",
            endpoint_url=url,
            aws_access_key_id=TEST_ACCESS_KEY_ID,
            aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
        ) as eks,
    ):
        created = await asyncio.gather(
            *(
                eks.create_pod_identity_association(
                    cluster_name="prod",
                    namespace="batch",
                    service_account=f"job-{i}",
                    role_arn=ROLE,
                )
                for i in range(40)
            )
        )
        listed = await eks.list_pod_identity_associations(cluster_name="prod", namespace="batch")
    assert len({c.association.association_id for c in created}) == 40
    assert len(listed.associations) == 40
    assert emulator.calls("CreatePodIdentityAssociation").ok == 40
