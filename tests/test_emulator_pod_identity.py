"""EKS Auth and the Pod Identity Agent in the emulator: a service account's token, from the
cluster's TokenRequest, is traded for the association's role credentials only once the
association has reached EKS Auth (``Delays.pod_identity_auth``, on a ManualClock); bad,
foreign-audience and expired tokens are refused with EKS Auth's errors; every answer fits
botocore's ``eks-auth`` model; botocore's own container credential provider reads the
agent's answer; and the credentials handed out are accepted by the emulator and never
logged.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import botocore.credentials
import botocore.session
import httpx
import pytest
from botocore.model import ServiceModel

import eks_async
from eks_async.eks_auth import (
    AccessDeniedException as AuthAccessDenied,
)
from eks_async.eks_auth import (
    EKSAuthClient,
    ExpiredTokenException,
    InvalidTokenException,
    ResourceNotFoundException,
)
from eks_async.testing import (
    POD_AUDIENCE,
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    Delays,
    EKSEmulator,
    EmulatorRequest,
    ManualClock,
    pod_identity_agent_url,
)

from ._emulator_support import OTHER_ROLE, ROLE, check_value

# Describe sees the association 2 s after Create; EKS Auth 3 s after that.
SEEN_BY_AUTH = 5.0
DELAYS = attrs.evolve(Delays.none(), association_create=2.0, pod_identity_auth=3.0)


def _model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("eks-auth")


class _Checked(httpx.AsyncBaseTransport):
    """Passes requests on and checks each EKS Auth answer against botocore's model."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.problems: list[str] = []
        self.checked = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = json.loads(await response.aread())
        model = _model()
        self.checked += 1
        if response.status_code == 200:
            output = model.operation_model("AssumeRoleForPodIdentity").output_shape
            assert output is not None
            check_value(output, body, "AssumeRoleForPodIdentity", self.problems)
        else:
            code = response.headers["x-amzn-ErrorType"].split(":")[0]
            shapes = {shape.name: shape for shape in model.error_shapes}
            if code not in shapes:
                self.problems.append(f"{code} is not an EKS Auth error")
            else:
                status = shapes[code].metadata["error"]["httpStatusCode"]
                if status != response.status_code:
                    self.problems.append(f"{code}: status {response.status_code}, not {status}")
                check_value(shapes[code], body, code, self.problems)
        return response


@attrs.define
class Pods:
    emulator: EKSEmulator
    endpoint_id: str
    cluster_token: str

    def token(
        self,
        *,
        audiences: list[str] | None = None,
        seconds: int = 3600,
        namespace: str = "default",
        name: str = "default",
    ) -> str:
        """A service account token from the cluster's TokenRequest."""
        body = {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "spec": {"audiences": audiences or [POD_AUDIENCE], "expirationSeconds": seconds},
        }
        answer = self.emulator.handle_kubernetes(
            EmulatorRequest(
                method="POST",
                path=f"/k8s/{self.endpoint_id}/api/v1/namespaces/{namespace}/serviceaccounts/"
                f"{name}/token",
                headers=(
                    ("Authorization", f"Bearer {self.cluster_token}"),
                    ("Content-Type", "application/json"),
                ),
                body=json.dumps(body).encode(),
            )
        )
        assert answer.status == 201, answer.body
        token: str = answer.json()["status"]["token"]
        return token


@pytest.fixture
async def pods() -> AsyncIterator[Pods]:
    emulator = EKSEmulator(seed=11, clock=ManualClock(), delays=DELAYS)
    emulator.add_cluster("prod")
    async with emulator.client() as eks:
        cluster_token = (await eks.get_token(cluster_name="prod")).token
        cluster = (await eks.describe_cluster(name="prod")).cluster
        assert cluster is not None and cluster.endpoint
        await eks.create_pod_identity_association(
            cluster_name="prod", namespace="default", service_account="default", role_arn=ROLE
        )
    host = urlsplit(cluster.endpoint).netloc
    yield Pods(emulator, host.split(".")[0], cluster_token)


def _auth(emulator: EKSEmulator, transport: httpx.AsyncBaseTransport, **kwargs: Any) -> Any:
    return EKSAuthClient(
        region="us-west-2",
        aws_access_key_id=TEST_ACCESS_KEY_ID,
        aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
        transport=transport,
        **kwargs,
    )


async def _check_flow(pods: Pods, auth: EKSAuthClient) -> None:
    token = pods.token()
    pods.emulator.advance(SEEN_BY_AUTH - 0.5)
    with pytest.raises(ResourceNotFoundException):
        await auth.assume_role_for_pod_identity(cluster_name="prod", token=token)
    pods.emulator.advance(0.5)
    out = await auth.assume_role_for_pod_identity(cluster_name="prod", token=token)
    assert out.audience == POD_AUDIENCE
    assert out.subject is not None
    assert (out.subject.namespace, out.subject.service_account) == ("default", "default")
    assert out.pod_identity_association is not None
    assert out.pod_identity_association.association_arn is not None
    assert out.pod_identity_association.association_arn.endswith(
        f"/prod/{out.pod_identity_association.association_id}"
    )
    assert out.assumed_role_user is not None
    assert out.assumed_role_user.arn.startswith(
        "arn:aws:sts::123456789012:assumed-role/payments-api/"
    )
    creds = out.credentials
    assert creds is not None and creds.access_key_id.startswith("ASIA")
    assert creds.expiration > datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=5)
    # The credentials are the emulator's: EKS accepts requests signed with them.
    async with pods.emulator.client(
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        aws_session_token=creds.session_token,
    ) as as_pod:
        assert (await as_pod.list_clusters()).clusters == ["prod"]


async def test_eks_auth_in_process_gives_the_role_after_propagation(pods: Pods) -> None:
    checked = _Checked(pods.emulator.transport())
    async with _auth(pods.emulator, checked) as auth:
        await _check_flow(pods, auth)
    assert checked.checked == 2 and checked.problems == []


async def test_eks_auth_served_over_http(pods: Pods) -> None:
    async with pods.emulator.serve() as url:
        checked = _Checked(httpx.AsyncHTTPTransport())
        async with _auth(pods.emulator, checked, endpoint_url=url) as auth:
            await _check_flow(pods, auth)
    assert checked.checked == 2 and checked.problems == []


async def test_bad_tokens_are_refused(pods: Pods) -> None:
    pods.emulator.advance(SEEN_BY_AUTH)
    checked = _Checked(pods.emulator.transport())
    cases: list[tuple[str, type[Exception]]] = [
        ("not-a-jwt", InvalidTokenException),
        (pods.token()[:-4] + "AAAA", InvalidTokenException),  # the signature does not match
        (pods.token(audiences=["sts.amazonaws.com"]), InvalidTokenException),
        (pods.token(seconds=600), ExpiredTokenException),
    ]
    async with _auth(pods.emulator, checked) as auth:
        for token, error in cases[:3]:
            with pytest.raises(error):
                await auth.assume_role_for_pod_identity(cluster_name="prod", token=token)
        pods.emulator.advance(601)
        with pytest.raises(ExpiredTokenException):
            await auth.assume_role_for_pod_identity(cluster_name="prod", token=cases[3][0])
        # A service account with no association: "not found", or access denied if configured.
        other = pods.token(namespace="kube-system")
        with pytest.raises(ResourceNotFoundException):
            await auth.assume_role_for_pod_identity(cluster_name="prod", token=other)
        pods.emulator.pod_identity_missing_code = "AccessDeniedException"
        with pytest.raises(AuthAccessDenied):
            await auth.assume_role_for_pod_identity(cluster_name="prod", token=other)
        with pytest.raises(ResourceNotFoundException):
            await auth.assume_role_for_pod_identity(cluster_name="nope", token=pods.token())
    assert checked.checked == 7 and checked.problems == []


async def test_signatures_for_eks_auth_are_checked(pods: Pods) -> None:
    pods.emulator.advance(SEEN_BY_AUTH)
    assert pods.emulator.config.verify_signatures
    good = EKSAuthClient(
        region="us-west-2",
        aws_access_key_id=TEST_ACCESS_KEY_ID,
        aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
        transport=pods.emulator.transport(),
    )
    async with good as auth:
        out = await auth.assume_role_for_pod_identity(cluster_name="prod", token=pods.token())
        assert out.credentials is not None
    # Scoped to EKS, not EKS Auth: refused before the signature is even computed.
    bad = await pods.emulator.handle(
        EmulatorRequest(
            method="POST",
            path="/clusters/prod/assume-role-for-pod-identity",
            headers=(
                (
                    "Authorization",
                    f"AWS4-HMAC-SHA256 Credential={TEST_ACCESS_KEY_ID}/20260101/us-west-2/eks/"
                    "aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
                ),
                ("X-Amz-Date", "20260101T000000Z"),
                ("Host", "x"),
            ),
            body=json.dumps({"token": pods.token()}).encode(),
        )
    )
    assert bad.status == 403 and b"credentials" not in bad.body


# --------------------------------------------------------------------------- the agent


async def test_botocore_container_provider_gets_the_role_after_propagation(
    pods: Pods, tmp_path: Path
) -> None:
    token_file = tmp_path / "eks-pod-identity-token"
    token_file.write_text(pods.token())
    async with pods.emulator.serve() as url:
        env = {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": pod_identity_agent_url(url),
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
        }
        fetcher = botocore.utils.ContainerMetadataFetcher(sleep=lambda _seconds: None)
        provider = botocore.credentials.ContainerProvider(environ=env, fetcher=fetcher)
        pods.emulator.advance(SEEN_BY_AUTH - 0.5)
        with pytest.raises(botocore.exceptions.CredentialRetrievalError):
            await _in_thread(provider.load)
        pods.emulator.advance(0.5)
        loaded = await _in_thread(provider.load)
        frozen = await _in_thread(loaded.get_frozen_credentials)
        assert frozen.access_key.startswith("ASIA") and frozen.token
        async with pods.emulator.client(
            endpoint_url=url,
            transport=None,
            aws_access_key_id=frozen.access_key,
            aws_secret_access_key=frozen.secret_key,
            aws_session_token=frozen.token,
        ) as as_pod:
            assert (await as_pod.list_clusters()).clusters == ["prod"]
        # Without the token, the agent answers 400.
        async with httpx.AsyncClient() as http:
            assert (await http.get(pod_identity_agent_url(url))).status_code == 400


async def _in_thread(call: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(call)


async def test_the_agent_answers_what_sdks_read(pods: Pods) -> None:
    def agent(token: str) -> Any:
        return pods.emulator.handle(
            EmulatorRequest(
                method="GET", path="/v1/credentials", headers=(("Authorization", token),)
            )
        )

    token = pods.token()
    early = await agent(token)
    assert early.status == 404
    assert early.json()["Code"] == "ResourceNotFoundException"
    assert (await agent(pods.token(audiences=["sts.amazonaws.com"]))).status == 400
    pods.emulator.advance(SEEN_BY_AUTH)
    answer = await agent(token)
    assert answer.status == 200
    body = answer.json()
    assert set(body) == {"AccessKeyId", "SecretAccessKey", "Token", "AccountId", "Expiration"}
    assert body["AccountId"] == "123456789012"
    expires = datetime.datetime.strptime(body["Expiration"], "%Y-%m-%dT%H:%M:%SZ")
    assert expires.replace(tzinfo=datetime.UTC) > datetime.datetime.now(datetime.UTC)
    # Each fetch is a fresh set, as EKS Auth hands out.
    assert (await agent(token)).json()["AccessKeyId"] != body["AccessKeyId"]


# --------------------------------------------------------------------------- secrets


async def test_credentials_are_never_logged_nor_in_a_repr(
    pods: Pods, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pods.emulator.advance(SEEN_BY_AUTH)
    async with _auth(pods.emulator, pods.emulator.transport()) as auth:
        out = await auth.assume_role_for_pod_identity(cluster_name="prod", token=pods.token())
        with pytest.raises(InvalidTokenException):
            await auth.assume_role_for_pod_identity(cluster_name="prod", token="x.y.z")
    agent = await pods.emulator.handle(
        EmulatorRequest(
            method="GET", path="/v1/credentials", headers=(("Authorization", pods.token()),)
        )
    )
    assert agent.status == 200
    creds = out.credentials
    assert creds is not None
    secrets = [
        creds.secret_access_key,
        creds.session_token,
        agent.json()["SecretAccessKey"],
        agent.json()["Token"],
    ]
    shown = [record.getMessage() for record in caplog.records]
    shown += [repr(pods.emulator), repr(pods.emulator.transport()), repr(pods.emulator._verifier)]
    shown += [repr(out), repr(pods.emulator.config)]
    assert any("refused a token: InvalidTokenException" in text for text in shown)
    for secret in secrets:
        assert all(secret not in text for text in shown)


def test_eks_async_exports_stay_the_same() -> None:
    assert "pod_identity_agent_url" not in dir(eks_async)


async def test_settle_waits_for_eks_auth_too(pods: Pods) -> None:
    assert pods.emulator.settle() == 2.0  # Describe sees it
    assert pods.emulator.settle(eks_auth=True) == SEEN_BY_AUTH - 2.0
    async with _auth(pods.emulator, pods.emulator.transport()) as auth:
        out = await auth.assume_role_for_pod_identity(cluster_name="prod", token=pods.token())
    assert out.credentials is not None


async def test_a_new_role_reaches_eks_auth_after_the_delay(pods: Pods) -> None:
    pods.emulator.advance(SEEN_BY_AUTH)
    async with pods.emulator.client() as eks:
        listed = await eks.list_pod_identity_associations(cluster_name="prod")
        assert listed.associations is not None
        association_id = listed.associations[0].association_id
        await eks.update_pod_identity_association(
            cluster_name="prod", association_id=association_id, role_arn=OTHER_ROLE
        )

    async def role() -> str:
        async with _auth(pods.emulator, pods.emulator.transport()) as auth:
            out = await auth.assume_role_for_pod_identity(cluster_name="prod", token=pods.token())
        assert out.assumed_role_user is not None
        return out.assumed_role_user.arn.split("/")[1]

    pods.emulator.advance(2.9)  # Describe sees the update at once; EKS Auth 3 s later
    assert await role() == "payments-api"
    pods.emulator.advance(0.1)
    assert await role() == "payments-api-v2"
