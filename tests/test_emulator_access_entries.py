"""Access entries and access policies in the emulator: the EKS operations through eks_async,
aiobotocore and boto3 (every answer checked against botocore's model), EKS's errors, and
what the cluster's Kubernetes API makes of them on a ManualClock: 401 until an entry
propagates, 403 until a policy does, 401 again once the deletion does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiobotocore.session
import boto3
import pytest

import eks_async
from eks_async import (
    AccessScope,
    AccessScopeType,
    InvalidParameterException,
    InvalidRequestException,
    ResourceInUseException,
    ResourceNotFoundException,
    VpcConfigRequest,
)
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    Delays,
    EKSEmulator,
    EmulatorRequest,
    EmulatorResponse,
    ManualClock,
    run_emulator_server,
)
from eks_async.testing._access import Grant, allowed, expand_username

from ._emulator_support import (
    VPC,
    ResponseChecker,
    validate_emulator_responses,  # noqa: F401 - autouse: checks every answer
)

ACCOUNT = "123456789012"
POLICY = "arn:aws:eks::aws:cluster-access-policy/"
ADMIN = POLICY + "AmazonEKSClusterAdminPolicy"
EDIT = POLICY + "AmazonEKSEditPolicy"
VIEW = POLICY + "AmazonEKSViewPolicy"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/ci/deployer"
NODE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/nodes"
ME = f"arn:aws:iam::{ACCOUNT}:user/{TEST_ACCESS_KEY_ID}"
CLUSTER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/eks-cluster"
SA_BODY = json.dumps(
    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder"}}
).encode()


# --------------------------------------------------------------------------- helpers


class Cluster:
    """One cluster's Kubernetes API, in-process, with a token per caller."""

    def __init__(self, emulator: EKSEmulator, endpoint_id: str) -> None:
        self.emulator = emulator
        self.endpoint_id = endpoint_id

    def __call__(
        self, token: str, method: str, path: str, body: bytes = b""
    ) -> tuple[int, dict[str, Any]]:
        headers = [("Authorization", f"Bearer {token}")]
        if body:
            headers.append(("Content-Type", "application/json"))
        response: EmulatorResponse = self.emulator.handle_kubernetes(
            EmulatorRequest(
                method=method,
                path=f"/k8s/{self.endpoint_id}{path}",
                query="",
                headers=tuple(headers),
                body=body,
            )
        )
        data: dict[str, Any] = json.loads(response.body)
        return response.status, data

    def whoami(self, token: str) -> tuple[int, dict[str, Any]]:
        status, body = self(
            token,
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            json.dumps(
                {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
            ).encode(),
        )
        return status, body["status"]["userInfo"] if status == 201 else body

    def can(
        self, token: str, verb: str, resource: str, namespace: str = "", subresource: str = ""
    ) -> bool:
        attributes = {"verb": verb, "resource": resource, "namespace": namespace}
        if subresource:
            attributes["subresource"] = subresource
        status, body = self(
            token,
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            json.dumps(
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SelfSubjectAccessReview",
                    "spec": {"resourceAttributes": attributes},
                }
            ).encode(),
        )
        assert status == 201, body
        return bool(body["status"]["allowed"])


async def _cluster(emulator: EKSEmulator, name: str) -> Cluster:
    async with emulator.client() as eks:
        cluster = (await eks.describe_cluster(name=name)).cluster
    assert cluster is not None and cluster.endpoint
    return Cluster(emulator, urlsplit(cluster.endpoint).netloc.split(".")[0])


async def _token(emulator: EKSEmulator, cluster: str, key: str, secret: str) -> str:
    async with emulator.client(aws_access_key_id=key, aws_secret_access_key=secret) as eks:
        return (await eks.get_token(cluster_name=cluster)).token


def _forbidden(answer: tuple[int, dict[str, Any]]) -> str:
    status, body = answer
    assert status == 403, body
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Forbidden", 403)
    message: str = body["message"]
    return message


# --------------------------------------------------------------------------- the operations


async def test_eks_async_access_entry_operations() -> None:
    emulator = EKSEmulator(clock=ManualClock())
    async with emulator.client() as eks:
        await eks.create_cluster(
            name="prod",
            role_arn=CLUSTER_ROLE,
            resources_vpc_config=VpcConfigRequest(subnet_ids=VPC["subnetIds"]),
        )
        emulator.settle()
        cluster = (await eks.describe_cluster(name="prod")).cluster
        assert cluster.access_config is not None
        assert cluster.access_config.authentication_mode == "API_AND_CONFIG_MAP"
        # The creator has an entry with the cluster admin policy, as EKS bootstraps it.
        assert [e async for e in eks.paginate.list_access_entries(cluster_name="prod")] == [ME]
        creator = await eks.list_associated_access_policies(cluster_name="prod", principal_arn=ME)
        assert [
            (p.policy_arn, p.access_scope.type) for p in creator.associated_access_policies
        ] == [(ADMIN, AccessScopeType.CLUSTER)]

        created = (
            await eks.create_access_entry(
                cluster_name="prod",
                principal_arn=DEPLOYER,
                kubernetes_groups=["deployers"],
                tags={"team": "ci"},
            )
        ).access_entry
        assert created.type == "STANDARD"
        assert created.username == (
            f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/{{{{SessionName}}}}"
        )
        assert created.access_entry_arn is not None
        assert created.access_entry_arn.startswith(
            f"arn:aws:eks:us-west-2:{ACCOUNT}:access-entry/prod/role/{ACCOUNT}/deployer/"
        )
        described = (
            await eks.describe_access_entry(cluster_name="prod", principal_arn=DEPLOYER)
        ).access_entry
        assert described == created
        node = (
            await eks.create_access_entry(
                cluster_name="prod", principal_arn=NODE_ROLE, type="EC2_LINUX"
            )
        ).access_entry
        assert (node.username, node.kubernetes_groups) == (
            "system:node:{{EC2PrivateDNSName}}",
            ["system:nodes"],
        )

        pages = [
            p.access_entries
            async for p in eks.paginate.list_access_entries(
                cluster_name="prod", max_results=1
            ).pages()
        ]
        assert pages == [[DEPLOYER], [NODE_ROLE], [ME]]

        updated = (
            await eks.update_access_entry(
                cluster_name="prod", principal_arn=DEPLOYER, username="deploy:{{SessionName}}"
            )
        ).access_entry
        assert (updated.username, updated.kubernetes_groups) == (
            "deploy:{{SessionName}}",
            ["deployers"],
        )

        first = await eks.associate_access_policy(
            cluster_name="prod",
            principal_arn=DEPLOYER,
            policy_arn=EDIT,
            access_scope=AccessScope(type=AccessScopeType.NAMESPACE, namespaces=["dev-*"]),
        )
        assert first.associated_access_policy.access_scope == AccessScope(
            type=AccessScopeType.NAMESPACE, namespaces=["dev-*"]
        )
        # Associating the same policy again changes its scope: still one association.
        await eks.associate_access_policy(
            cluster_name="prod",
            principal_arn=DEPLOYER,
            policy_arn=EDIT,
            access_scope=AccessScope(type=AccessScopeType.CLUSTER),
        )
        await eks.associate_access_policy(
            cluster_name="prod",
            principal_arn=DEPLOYER,
            policy_arn=VIEW,
            access_scope=AccessScope(type=AccessScopeType.CLUSTER),
        )
        listed = await eks.list_associated_access_policies(
            cluster_name="prod", principal_arn=DEPLOYER
        )
        assert [(p.policy_arn, p.access_scope.type) for p in listed.associated_access_policies] == [
            (EDIT, AccessScopeType.CLUSTER),
            (VIEW, AccessScopeType.CLUSTER),
        ]
        with_edit = await eks.list_access_entries(cluster_name="prod", associated_policy_arn=EDIT)
        assert with_edit.access_entries == [DEPLOYER]

        policies = [p async for p in eks.paginate.list_access_policies(max_results=2)]
        assert {p.name for p in policies} >= {
            "AmazonEKSClusterAdminPolicy",
            "AmazonEKSAdminPolicy",
            "AmazonEKSEditPolicy",
            "AmazonEKSViewPolicy",
        }
        assert all(p.arn == POLICY + str(p.name) for p in policies)

        await eks.tag_resource(resource_arn=created.access_entry_arn, tags={"env": "test"})
        tags = (await eks.list_tags_for_resource(resource_arn=created.access_entry_arn)).tags
        assert tags == {"team": "ci", "env": "test"}

        await eks.disassociate_access_policy(
            cluster_name="prod", principal_arn=DEPLOYER, policy_arn=VIEW
        )
        with pytest.raises(ResourceNotFoundException):
            await eks.disassociate_access_policy(
                cluster_name="prod", principal_arn=DEPLOYER, policy_arn=VIEW
            )
        await eks.delete_access_entry(cluster_name="prod", principal_arn=DEPLOYER)
        with pytest.raises(ResourceNotFoundException):
            await eks.describe_access_entry(cluster_name="prod", principal_arn=DEPLOYER)
        with pytest.raises(ResourceNotFoundException):
            await eks.delete_access_entry(cluster_name="prod", principal_arn=DEPLOYER)
        assert (await eks.list_access_entries(cluster_name="prod")).access_entries == [
            NODE_ROLE,
            ME,
        ]


async def test_eks_refusals() -> None:
    emulator = EKSEmulator(clock=ManualClock())
    emulator.add_cluster("prod")
    emulator.add_cluster("legacy", authentication_mode="CONFIG_MAP")
    async with emulator.client() as eks:
        await eks.create_access_entry(cluster_name="prod", principal_arn=DEPLOYER)
        with pytest.raises(ResourceInUseException) as in_use:
            await eks.create_access_entry(cluster_name="prod", principal_arn=DEPLOYER)
        assert in_use.value.http_status == 409
        with pytest.raises(ResourceNotFoundException):
            await eks.describe_access_entry(cluster_name="prod", principal_arn=NODE_ROLE)
        with pytest.raises(ResourceNotFoundException):
            await eks.create_access_entry(cluster_name="nowhere", principal_arn=NODE_ROLE)

        bad: list[dict[str, Any]] = [
            {"principal_arn": NODE_ROLE, "type": "EC2_LINUX", "username": "node"},
            {"principal_arn": NODE_ROLE, "type": "FARGATE_LINUX", "kubernetes_groups": ["x"]},
            {"principal_arn": NODE_ROLE, "type": "LINUX"},
            {"principal_arn": f"arn:aws:iam::{ACCOUNT}:user/bob", "type": "EC2_LINUX"},
            {"principal_arn": "arn:aws:iam::210987654321:role/nodes", "type": "HYBRID_LINUX"},
            {"principal_arn": NODE_ROLE, "kubernetes_groups": ["system:masters"]},
            {"principal_arn": NODE_ROLE, "username": "system:admin"},
            {"principal_arn": NODE_ROLE, "username": "eks:me"},
            {"principal_arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/nodes/i-0abc"},
            {"principal_arn": "not-an-arn"},
        ]
        for params in bad:
            with pytest.raises(InvalidParameterException):
                await eks.create_access_entry(cluster_name="prod", **params)
        with pytest.raises(InvalidRequestException):
            await eks.create_access_entry(cluster_name="legacy", principal_arn=DEPLOYER)

        await eks.create_access_entry(cluster_name="prod", principal_arn=NODE_ROLE, type="EC2")
        with pytest.raises(InvalidRequestException):  # policies only on STANDARD entries
            await eks.associate_access_policy(
                cluster_name="prod",
                principal_arn=NODE_ROLE,
                policy_arn=VIEW,
                access_scope=AccessScope(type=AccessScopeType.CLUSTER),
            )
        with pytest.raises(InvalidParameterException):
            await eks.update_access_entry(
                cluster_name="prod", principal_arn=NODE_ROLE, username="node"
            )
        for policy, scope in [
            (POLICY + "AmazonEKSMadeUpPolicy", AccessScope(type=AccessScopeType.CLUSTER)),
            (VIEW, AccessScope(type=AccessScopeType.NAMESPACE)),
            (VIEW, AccessScope(type=AccessScopeType.CLUSTER, namespaces=["dev"])),
            (VIEW, AccessScope(type=AccessScopeType.NAMESPACE, namespaces=["Dev_1"])),
        ]:
            with pytest.raises(InvalidParameterException):
                await eks.associate_access_policy(
                    cluster_name="prod",
                    principal_arn=DEPLOYER,
                    policy_arn=policy,
                    access_scope=scope,
                )
        with pytest.raises(ResourceNotFoundException):
            await eks.associate_access_policy(
                cluster_name="prod",
                principal_arn=f"arn:aws:iam::{ACCOUNT}:role/nobody",
                policy_arn=VIEW,
                access_scope=AccessScope(type=AccessScopeType.CLUSTER),
            )

        # Idempotency: the same token and parameters answer the first answer again;
        # the same token with other parameters is refused.
        first = await eks.create_access_entry(
            cluster_name="prod", principal_arn=ME, client_request_token="t-1"
        )
        again = await eks.create_access_entry(
            cluster_name="prod", principal_arn=ME, client_request_token="t-1"
        )
        assert again == first
        with pytest.raises(InvalidRequestException):
            await eks.create_access_entry(
                cluster_name="prod", principal_arn=ME, username="me", client_request_token="t-1"
            )


async def test_create_cluster_without_bootstrap_has_no_entries() -> None:
    emulator = EKSEmulator(clock=ManualClock())
    async with emulator.client() as eks:
        await eks.create_cluster(
            name="locked",
            role_arn=CLUSTER_ROLE,
            resources_vpc_config=VpcConfigRequest(subnet_ids=VPC["subnetIds"]),
            access_config=eks_async.CreateAccessConfigRequest(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=False
            ),
        )
        emulator.settle()
        assert (await eks.list_access_entries(cluster_name="locked")).access_entries == []
    cluster = await _cluster(emulator, "locked")
    token = await _token(emulator, "locked", TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY)
    assert cluster.whoami(token)[0] == 401  # API mode, and no entry for the creator


async def botocore_flow(call: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    entry = (
        await call(
            "create_access_entry",
            clusterName="prod",
            principalArn=DEPLOYER,
            kubernetesGroups=["deployers"],
            username="deploy:{{SessionName}}",
            tags={"team": "ci"},
        )
    )["accessEntry"]
    assert entry["username"] == "deploy:{{SessionName}}"
    described = await call("describe_access_entry", clusterName="prod", principalArn=DEPLOYER)
    assert described["accessEntry"]["accessEntryArn"] == entry["accessEntryArn"]
    assert (await call("list_access_entries", clusterName="prod"))["accessEntries"] == [DEPLOYER]
    updated = await call(
        "update_access_entry", clusterName="prod", principalArn=DEPLOYER, kubernetesGroups=[]
    )
    assert updated["accessEntry"]["kubernetesGroups"] == []
    associated = await call(
        "associate_access_policy",
        clusterName="prod",
        principalArn=DEPLOYER,
        policyArn=VIEW,
        accessScope={"type": "namespace", "namespaces": ["dev-*", "qa"]},
    )
    assert associated["associatedAccessPolicy"]["accessScope"]["namespaces"] == ["dev-*", "qa"]
    listed = await call(
        "list_associated_access_policies", clusterName="prod", principalArn=DEPLOYER
    )
    assert [p["policyArn"] for p in listed["associatedAccessPolicies"]] == [VIEW]
    filtered = await call("list_access_entries", clusterName="prod", associatedPolicyArn=ADMIN)
    assert filtered["accessEntries"] == []
    policies = await call("list_access_policies")
    assert {"name": "AmazonEKSViewPolicy", "arn": VIEW} in policies["accessPolicies"]
    await call(
        "disassociate_access_policy", clusterName="prod", principalArn=DEPLOYER, policyArn=VIEW
    )
    await call("delete_access_entry", clusterName="prod", principalArn=DEPLOYER)
    assert (await call("list_access_entries", clusterName="prod"))["accessEntries"] == []


async def test_aiobotocore_access_entries(request: pytest.FixtureRequest) -> None:
    checker: ResponseChecker = request.getfixturevalue("validate_emulator_responses")
    emulator = EKSEmulator(clock=ManualClock())
    emulator.add_cluster("prod")
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

        await botocore_flow(call)
        with pytest.raises(client.exceptions.ResourceInUseException):
            for _ in range(2):
                await call("create_access_entry", clusterName="prod", principalArn=NODE_ROLE)
    assert checker.checked >= 13


async def test_boto3_access_entries() -> None:
    emulator = EKSEmulator(clock=ManualClock())
    emulator.add_cluster("prod")
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

        await botocore_flow(call)
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.describe_access_entry(clusterName="prod", principalArn=DEPLOYER)


# --------------------------------------------------------------------------- the cluster's view


PROPAGATION = Delays(
    cluster_create=0,
    access_entry_create=10,
    access_entry_update=5,
    access_entry_delete=30,
    access_policy_associate=20,
    access_policy_disassociate=7,
)
SESSION_KEY, SESSION_SECRET = "AKIDDEPLOYER", "deployer-secret"
SESSION_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/alice@example.com"


async def test_changes_reach_the_cluster_after_their_propagation_delays() -> None:
    emulator = EKSEmulator(clock=ManualClock(), delays=PROPAGATION)
    emulator.add_cluster("prod", authentication_mode="API", admin_principal=ME)
    emulator.register_credentials(SESSION_KEY, SESSION_SECRET, arn=SESSION_ARN)
    kube = await _cluster(emulator, "prod")
    admin = await _token(emulator, "prod", TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY)
    token = await _token(emulator, "prod", SESSION_KEY, SESSION_SECRET)

    # The admin given at set-up is mapped at once, by its ARN, and may do everything.
    status, who = kube.whoami(admin)
    assert (status, who["username"]) == (201, ME)
    created = kube(
        admin,
        "POST",
        "/api/v1/namespaces",
        json.dumps(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev-1"}}
        ).encode(),
    )
    assert created[0] == 201, created
    assert kube.whoami(token)[0] == 401  # API mode: no entry, no access

    async with emulator.client() as eks:
        await eks.create_access_entry(
            cluster_name="prod",
            principal_arn=DEPLOYER,  # a role with a path: the session's role matches it
            kubernetes_groups=["deployers"],
            username="deploy:{{SessionName}}:{{AccountID}}",
        )
        emulator.advance(9.5)
        assert kube.whoami(token)[0] == 401
        emulator.advance(0.5)
        status, who = kube.whoami(token)
        assert status == 201
        assert who["username"] == f"deploy:alice-example.com:{ACCOUNT}"
        assert who["groups"] == ["deployers", "system:authenticated"]
        assert who["extra"]["arn"] == [SESSION_ARN]

        # Authenticated, but no policy yet: 403 everywhere, and the review says no.
        sa_path = "/api/v1/namespaces/dev-1/serviceaccounts"
        message = _forbidden(kube(token, "POST", sa_path, SA_BODY))
        assert message == (
            'serviceaccounts is forbidden: User "deploy:alice-example.com:123456789012" cannot '
            'create resource "serviceaccounts" in API group "" in the namespace "dev-1"'
        )
        assert not kube.can(token, "create", "serviceaccounts", "dev-1")

        await eks.associate_access_policy(
            cluster_name="prod",
            principal_arn=DEPLOYER,
            policy_arn=EDIT,
            access_scope=AccessScope(type=AccessScopeType.NAMESPACE, namespaces=["dev-*"]),
        )
        emulator.advance(19)
        _forbidden(kube(token, "POST", sa_path, SA_BODY))
        emulator.advance(1)
        assert kube(token, "POST", sa_path, SA_BODY)[0] == 201
        assert kube.can(token, "create", "serviceaccounts", "dev-1")
        assert kube.can(token, "create", "serviceaccounts", "dev-1", subresource="token")
        token_request = json.dumps(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
        ).encode()
        assert kube(token, "POST", sa_path + "/builder/token", token_request)[0] == 201
        assert kube(token, "DELETE", sa_path + "/builder")[0] == 200
        # Outside its namespaces, and over the whole cluster: still no.
        _forbidden(kube(token, "POST", "/api/v1/namespaces/default/serviceaccounts", SA_BODY))
        assert not kube.can(token, "create", "serviceaccounts", "default")
        message = _forbidden(kube(token, "GET", "/api/v1/namespaces"))
        assert message.endswith("at the cluster scope")
        assert kube(token, "GET", "/api/v1/namespaces/dev-1")[0] == 200

        # View over the cluster adds reading everywhere, and nothing else.
        await eks.associate_access_policy(
            cluster_name="prod",
            principal_arn=DEPLOYER,
            policy_arn=VIEW,
            access_scope=AccessScope(type=AccessScopeType.CLUSTER),
        )
        emulator.advance(20)
        assert kube(token, "GET", "/api/v1/namespaces")[0] == 200
        assert kube(token, "GET", "/api/v1/serviceaccounts")[0] == 200
        _forbidden(kube(token, "POST", "/api/v1/namespaces/default/serviceaccounts", SA_BODY))
        _forbidden(kube(token, "POST", "/api/v1/namespaces", b"{}"))

        # An update shows its new user name after its own delay.
        await eks.update_access_entry(
            cluster_name="prod", principal_arn=DEPLOYER, username="ci:{{SessionNameRaw}}"
        )
        emulator.advance(4)
        assert kube.whoami(token)[1]["username"] == f"deploy:alice-example.com:{ACCOUNT}"
        emulator.advance(1)
        assert kube.whoami(token)[1]["username"] == "ci:alice@example.com"

        # A disassociation: the policy still works until it propagates.
        await eks.disassociate_access_policy(
            cluster_name="prod", principal_arn=DEPLOYER, policy_arn=VIEW
        )
        emulator.advance(6)
        assert kube(token, "GET", "/api/v1/namespaces")[0] == 200
        emulator.advance(1)
        _forbidden(kube(token, "GET", "/api/v1/namespaces"))

        # A deletion: the entry is gone from the API at once, from the cluster later.
        await eks.delete_access_entry(cluster_name="prod", principal_arn=DEPLOYER)
        assert (await eks.list_access_entries(cluster_name="prod")).access_entries == [ME]
        emulator.advance(29)
        assert kube.whoami(token)[0] == 201
        assert kube(token, "POST", sa_path, SA_BODY)[0] == 201
        emulator.advance(1)
        assert kube.whoami(token)[0] == 401
        assert kube(token, "POST", sa_path, SA_BODY)[0] == 401
        assert emulator.settle() == 0.0


async def test_without_an_entry_api_and_config_map_keeps_todays_access() -> None:
    emulator = EKSEmulator(clock=ManualClock(), delays=PROPAGATION)
    emulator.add_cluster("prod")  # API_AND_CONFIG_MAP, no entries
    emulator.register_credentials(SESSION_KEY, SESSION_SECRET, arn=SESSION_ARN)
    kube = await _cluster(emulator, "prod")
    token = await _token(emulator, "prod", SESSION_KEY, SESSION_SECRET)
    status, who = kube.whoami(token)
    assert (status, who["username"], who["groups"]) == (201, SESSION_ARN, ["system:authenticated"])
    assert kube(token, "POST", "/api/v1/namespaces/default/serviceaccounts", SA_BODY)[0] == 201
    assert kube.can(token, "delete", "namespaces")

    # Once the caller has an entry, its entry (and its policies) decide.
    async with emulator.client() as eks:
        await eks.create_access_entry(cluster_name="prod", principal_arn=DEPLOYER)
        await eks.associate_access_policy(
            cluster_name="prod",
            principal_arn=DEPLOYER,
            policy_arn=VIEW,
            access_scope=AccessScope(type=AccessScopeType.CLUSTER),
        )
    emulator.settle()
    status, who = kube.whoami(token)
    assert who["username"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/alice-example.com"
    assert kube(token, "GET", "/api/v1/namespaces/default/serviceaccounts")[0] == 200
    _forbidden(kube(token, "DELETE", "/api/v1/namespaces/default/serviceaccounts/builder"))
    assert not kube.can(token, "create", "serviceaccounts", "default", subresource="token")
    assert kube.can(token, "list", "serviceaccounts", "default")


# --------------------------------------------------------------------------- the rules


def _grant(*policies: tuple[str, tuple[str, ...] | None]) -> Grant:
    return Grant(policies=tuple(policies))


@pytest.mark.parametrize(
    ("policy", "verb", "resource", "subresource", "expected"),
    [
        ("AmazonEKSClusterAdminPolicy", "delete", "namespaces", "", True),
        ("AmazonEKSAdminPolicy", "delete", "serviceaccounts", "", True),
        ("AmazonEKSAdminPolicy", "create", "namespaces", "", False),
        ("AmazonEKSAdminPolicy", "create", "serviceaccounts", "token", True),
        ("AmazonEKSEditPolicy", "create", "serviceaccounts", "", True),
        ("AmazonEKSEditPolicy", "create", "rolebindings", "", True),
        ("AmazonEKSViewPolicy", "list", "serviceaccounts", "", True),
        ("AmazonEKSViewPolicy", "get", "secrets", "", False),
        ("AmazonEKSAdminViewPolicy", "get", "secrets", "", True),
        ("AmazonEKSViewPolicy", "create", "serviceaccounts", "", False),
        ("AmazonEKSViewPolicy", "create", "serviceaccounts", "token", False),
    ],
)
def test_what_each_policy_allows_over_the_cluster(
    policy: str, verb: str, resource: str, subresource: str, expected: bool
) -> None:
    grant = _grant((policy, None))
    assert (
        allowed(grant, verb=verb, resource=resource, namespace="a", subresource=subresource)
        is expected
    )


def test_edit_may_not_touch_rbac_objects() -> None:
    grant = _grant(("AmazonEKSEditPolicy", None))
    assert not allowed(
        grant,
        verb="create",
        resource="rolebindings",
        namespace="a",
        group="rbac.authorization.k8s.io",
    )


def test_namespace_scopes_use_wildcards_and_never_cover_the_cluster() -> None:
    grant = _grant(("AmazonEKSClusterAdminPolicy", ("dev-*", "qa")))
    assert allowed(grant, verb="create", resource="serviceaccounts", namespace="dev-42")
    assert allowed(grant, verb="get", resource="namespaces", name="qa")
    assert not allowed(grant, verb="create", resource="serviceaccounts", namespace="prod")
    assert not allowed(grant, verb="list", resource="serviceaccounts")
    assert not allowed(_grant(), verb="get", resource="serviceaccounts", namespace="qa")


def test_username_templates() -> None:
    expanded = expand_username(
        "{{SessionName}}|{{SessionNameRaw}}|{{AccountID}}|{{AccessKeyID}}|{{Unknown}}",
        SESSION_ARN,
        ACCOUNT,
        "AKID1",
    )
    assert expanded == f"alice-example.com|alice@example.com|{ACCOUNT}|AKID1|{{{{Unknown}}}}"


async def test_the_creator_entry_follows_the_mode_and_names_a_sessions_role() -> None:
    emulator = EKSEmulator(clock=ManualClock(), delays=Delays.none())
    emulator.register_credentials(SESSION_KEY, SESSION_SECRET, arn=SESSION_ARN)
    vpc = VpcConfigRequest(subnet_ids=VPC["subnetIds"])
    async with emulator.client(
        aws_access_key_id=SESSION_KEY, aws_secret_access_key=SESSION_SECRET
    ) as eks:
        await eks.create_cluster(name="prod", role_arn=CLUSTER_ROLE, resources_vpc_config=vpc)
        await eks.create_cluster(
            name="legacy",
            role_arn=CLUSTER_ROLE,
            resources_vpc_config=vpc,
            access_config=eks_async.CreateAccessConfigRequest(authentication_mode="CONFIG_MAP"),
        )
        with pytest.raises(InvalidParameterException):
            await eks.create_cluster(
                name="odd",
                role_arn=CLUSTER_ROLE,
                resources_vpc_config=vpc,
                access_config=eks_async.CreateAccessConfigRequest(authentication_mode="LDAP"),
            )
        emulator.settle()
        entries = (await eks.list_access_entries(cluster_name="prod")).access_entries
        assert entries == [f"arn:aws:iam::{ACCOUNT}:role/deployer"]
        assert (await eks.list_access_entries(cluster_name="legacy")).access_entries == []
    kube = await _cluster(emulator, "prod")
    token = await _token(emulator, "prod", SESSION_KEY, SESSION_SECRET)
    status, who = kube.whoami(token)
    assert (status, who["username"]) == (
        201,
        f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/alice-example.com",
    )
    assert kube.can(token, "delete", "namespaces")


async def test_an_entry_is_bound_to_the_role_s_unique_id_not_its_name() -> None:
    emulator = EKSEmulator(clock=ManualClock(), delays=PROPAGATION)
    emulator.add_cluster("prod", authentication_mode="API", admin_principal=ME)
    emulator.register_credentials(SESSION_KEY, SESSION_SECRET, arn=SESSION_ARN)
    kube = await _cluster(emulator, "prod")
    token = await _token(emulator, "prod", SESSION_KEY, SESSION_SECRET)
    admin = await _token(emulator, "prod", TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY)
    async with emulator.client() as eks:
        await eks.create_access_entry(
            cluster_name="prod", principal_arn=DEPLOYER, kubernetes_groups=["deployers"]
        )
        emulator.settle()
        assert kube.whoami(token)[0] == 201

        # The role is deleted and created again with the same name (a session of the new
        # role names the same ARN): EKS still lists the old entry, the cluster refuses.
        new_id = emulator.recreate_principal(DEPLOYER)
        assert new_id.startswith("AROA") and len(new_id) == 21
        assert kube.whoami(token)[0] == 401
        described = await eks.describe_access_entry(cluster_name="prod", principal_arn=DEPLOYER)
        assert described.access_entry is not None
        assert (await eks.list_access_entries(cluster_name="prod")).access_entries == [
            DEPLOYER, ME
        ]
        with pytest.raises(ResourceInUseException):  # the ARN still names the old entry
            await eks.create_access_entry(cluster_name="prod", principal_arn=DEPLOYER)
        # Other principals are not touched.
        assert kube.whoami(admin)[0] == 201

        # The fix, as for EKS: delete the entry and create it again, for the new role.
        await eks.delete_access_entry(cluster_name="prod", principal_arn=DEPLOYER)
        emulator.settle()
        await eks.create_access_entry(
            cluster_name="prod", principal_arn=DEPLOYER, kubernetes_groups=["deployers"]
        )
        emulator.advance(9)
        assert kube.whoami(token)[0] == 401  # the new entry propagates as any other
        emulator.advance(1)
        status, who = kube.whoami(token)
        assert status == 201 and who["groups"] == ["deployers", "system:authenticated"]

        # A role's path does not change its identity: recreating it by a session's ARN works.
        emulator.recreate_principal(SESSION_ARN)
        assert kube.whoami(token)[0] == 401
    # The same name and generation always give the same made-up id (runs repeat).
    again = EKSEmulator(clock=ManualClock())
    assert again.recreate_principal(f"arn:aws:iam::{ACCOUNT}:role/deployer") == new_id
    with pytest.raises(ValueError, match="not an IAM role or user"):
        again.recreate_principal("arn:aws:s3:::bucket")


async def test_a_recreated_role_is_unknown_again_and_api_and_config_map_falls_back() -> None:
    emulator = EKSEmulator(clock=ManualClock(), delays=PROPAGATION, role_propagation=15)
    emulator.add_cluster("prod")  # API_AND_CONFIG_MAP: no matching entry -> the ConfigMap
    emulator.register_credentials(SESSION_KEY, SESSION_SECRET, arn=SESSION_ARN)
    kube = await _cluster(emulator, "prod")
    token = await _token(emulator, "prod", SESSION_KEY, SESSION_SECRET)
    retry = eks_async.RetryConfig(iam_propagation=None)  # no IAM-propagation retries here
    async with emulator.client(retry=retry) as eks:
        with pytest.raises(InvalidParameterException):
            await eks.create_access_entry(cluster_name="prod", principal_arn=DEPLOYER)
        emulator.advance(15)
        await eks.create_access_entry(
            cluster_name="prod", principal_arn=DEPLOYER, kubernetes_groups=["deployers"]
        )
        emulator.settle()
        status, who = kube.whoami(token)
        assert status == 201 and "deployers" in who["groups"]

        emulator.recreate_principal(DEPLOYER)
        # No entry maps the new role: the aws-auth ConfigMap does (by its session's ARN).
        status, who = kube.whoami(token)
        assert (status, who["groups"]) == (201, ["system:authenticated"])
        # And, a new role, it is unknown to EKS until IAM propagates it again.
        await eks.delete_access_entry(cluster_name="prod", principal_arn=DEPLOYER)
        with pytest.raises(InvalidParameterException):
            await eks.create_access_entry(cluster_name="prod", principal_arn=DEPLOYER)
        emulator.advance(15)
        await eks.create_access_entry(
            cluster_name="prod", principal_arn=DEPLOYER, kubernetes_groups=["deployers"]
        )
        emulator.settle()
        assert "deployers" in kube.whoami(token)[1]["groups"]


def test_the_admin_api_recreates_a_principal() -> None:
    emulator = EKSEmulator(clock=ManualClock())
    with run_emulator_server(emulator) as server:
        import httpx

        answer = httpx.post(
            f"{server.url}/_emulator/principals", json={"recreate": DEPLOYER}
        )
        assert answer.status_code == 200
        assert answer.json()["unique_id"].startswith("AROA")
        assert answer.json() == {"arn": DEPLOYER, "unique_id": answer.json()["unique_id"]}
        refused = httpx.post(f"{server.url}/_emulator/principals", json={"recreate": "x"})
        assert refused.status_code == 400 and "not an IAM role" in refused.json()["message"]


# --------------------------------------------------------------------------- authentication mode


async def test_the_authentication_mode_moves_one_step_at_a_time_never_back() -> None:
    delays = Delays(cluster_create=0, access_config_update=100, access_entry_create=0)
    emulator = EKSEmulator(clock=ManualClock(), delays=delays)
    emulator.add_cluster("prod", authentication_mode="CONFIG_MAP")

    def to(mode: str) -> eks_async.UpdateAccessConfigRequest:
        return eks_async.UpdateAccessConfigRequest(authentication_mode=mode)

    async def mode(eks: eks_async.EKSClient) -> str | None:
        cluster = (await eks.describe_cluster(name="prod")).cluster
        assert cluster is not None and cluster.access_config is not None
        return cluster.access_config.authentication_mode

    async with emulator.client() as eks:
        for wanted in ("API", "CONFIG_MAP"):  # two steps at once, or to the mode it has
            with pytest.raises(InvalidParameterException) as refused:
                await eks.update_cluster_config(name="prod", access_config=to(wanted))
            assert refused.value.message == (
                f"Unsupported authentication mode update from CONFIG_MAP to {wanted}"
            )
        started = await eks.update_cluster_config(
            name="prod", access_config=to("API_AND_CONFIG_MAP")
        )
        update = started.update
        assert update is not None and update.id is not None
        assert (update.type, update.status) == ("AccessConfigUpdate", "InProgress")
        assert [(p.type, p.value) for p in update.params or []] == [
            ("AuthenticationMode", "API_AND_CONFIG_MAP")
        ]
        # Until the Update ends, the cluster keeps its mode: no access entries yet.
        assert await mode(eks) == "CONFIG_MAP"
        with pytest.raises(InvalidRequestException):
            await eks.create_access_entry(cluster_name="prod", principal_arn=DEPLOYER)
        with pytest.raises(ResourceInUseException):  # one update at a time
            await eks.update_cluster_config(name="prod", access_config=to("API"))
        emulator.advance(100)
        described = await eks.describe_update(name="prod", update_id=update.id)
        assert described.update is not None and described.update.status == "Successful"
        assert await mode(eks) == "API_AND_CONFIG_MAP"
        await eks.create_access_entry(cluster_name="prod", principal_arn=DEPLOYER)

        with pytest.raises(InvalidParameterException, match="from API_AND_CONFIG_MAP to CONFIG_MAP"):
            await eks.update_cluster_config(name="prod", access_config=to("CONFIG_MAP"))
        last = await eks.update_cluster_config(name="prod", access_config=to("API"))
        assert last.update is not None and last.update.status == "InProgress"
        emulator.settle()
        assert await mode(eks) == "API"
        for wanted in ("API_AND_CONFIG_MAP", "CONFIG_MAP", "API"):
            with pytest.raises(InvalidParameterException) as refused:
                await eks.update_cluster_config(name="prod", access_config=to(wanted))
            assert refused.value.message.endswith(f"from API to {wanted}")
        listed = await eks.list_updates(name="prod")
        assert len(listed.update_ids or []) == 2
        # Other settings are not emulated: said plainly, not ignored.
        with pytest.raises(InvalidRequestException, match="accessConfig only"):
            await eks.update_cluster_config(
                name="prod", logging=eks_async.Logging(cluster_logging=[])
            )
        with pytest.raises(ResourceNotFoundException):
            await eks.update_cluster_config(name="nowhere", access_config=to("API"))


async def test_the_new_mode_reaches_the_cluster_s_authenticator_when_the_update_ends() -> None:
    emulator = EKSEmulator(
        clock=ManualClock(), delays=Delays(cluster_create=0, access_config_update=60)
    )
    emulator.add_cluster("prod", authentication_mode="API_AND_CONFIG_MAP")
    emulator.register_credentials(SESSION_KEY, SESSION_SECRET, arn=SESSION_ARN)
    kube = await _cluster(emulator, "prod")
    token = await _token(emulator, "prod", SESSION_KEY, SESSION_SECRET)
    assert kube.whoami(token)[0] == 201  # no entry: the aws-auth ConfigMap maps it
    async with emulator.client() as eks:
        await eks.update_cluster_config(
            name="prod",
            access_config=eks_async.UpdateAccessConfigRequest(authentication_mode="API"),
        )
        emulator.advance(59)
        assert kube.whoami(token)[0] == 201
        emulator.advance(1)
        assert kube.whoami(token)[0] == 401  # API: access entries only


async def test_a_failed_access_config_update_keeps_the_mode() -> None:
    from eks_async.testing import Fault

    emulator = EKSEmulator(clock=ManualClock(), delays=Delays(cluster_create=0))
    emulator.add_cluster("prod", authentication_mode="CONFIG_MAP")
    emulator.script("UpdateClusterConfig", Fault.FAIL_UPDATE)
    async with emulator.client() as eks:
        started = await eks.update_cluster_config(
            name="prod",
            access_config=eks_async.UpdateAccessConfigRequest(
                authentication_mode="API_AND_CONFIG_MAP"
            ),
        )
        assert started.update is not None and started.update.id is not None
        with pytest.raises(eks_async.WaiterFailureError) as failed:
            await eks.waiters.update_successful(
                cluster_name="prod", update_id=started.update.id,
                config=eks_async.WaiterConfig(
                    clock=emulator.clock.monotonic, sleep=emulator.clock.sleep
                ),
            )
        assert [e.error_message for e in failed.value.errors] == [
            "The authentication mode could not be changed."
        ]
        cluster = (await eks.describe_cluster(name="prod")).cluster
        assert cluster is not None and cluster.access_config is not None
        assert cluster.access_config.authentication_mode == "CONFIG_MAP"
        # Failed is not "in progress": the same step may be tried again.
        again = await eks.update_cluster_config(
            name="prod",
            access_config=eks_async.UpdateAccessConfigRequest(
                authentication_mode="API_AND_CONFIG_MAP"
            ),
        )
        assert again.update is not None and again.update.status == "InProgress"
