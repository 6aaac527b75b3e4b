"""Cluster tokens end to end: the emulator's Kubernetes endpoint, its authenticator, and
``eks_async.kubernetes`` (kubernetes_asyncio over HTTPS with the cluster's CA).

The authenticator's checks are those EKS's makes (EKS-FACTS.md, "Cluster authentication
tokens"); each refusal test builds a token that is correct but for the one thing under test
(``_presign`` with no changes is accepted, see ``test_the_token_builder_alone_is_accepted``),
and checks both the 401 and the reason the emulator gives.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import yaml
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from eks_async import ConfigurationError, Credentials, EKSClient
from eks_async._auth.sigv4 import SigV4Signer
from eks_async._cli import main
from eks_async.kubernetes import api_client
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    EKSEmulator,
    run_emulator_server,
)

from .test_token import cli_presigned_url, cli_token, session  # noqa: F401 (a fixture)

REGION = "us-west-2"
STS_HOST = f"sts.{REGION}.amazonaws.com"
TEST_CREDENTIALS = Credentials(
    access_key_id=TEST_ACCESS_KEY_ID, secret_access_key=TEST_SECRET_ACCESS_KEY
)


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _encode(url: str) -> str:
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def _decode(token: str) -> str:
    raw = token[len("k8s-aws-v1.") :]
    return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()


def _presign(
    cluster: str = "prod",
    *,
    host: str = STS_HOST,
    region: str = REGION,
    query: str = "Action=GetCallerIdentity&Version=2011-06-15",
    headers: dict[str, str] | None = None,
    credentials: Credentials = TEST_CREDENTIALS,
    now: datetime.datetime | None = None,
    expires: int = 60,
    scheme: str = "https",
    path: str = "/",
) -> str:
    """A presigned STS URL, correctly signed for whatever it says."""
    return SigV4Signer("sts", region).presign_url(
        method="GET",
        url=f"{scheme}://{host}{path}?{query}",
        headers={"x-k8s-aws-id": cluster} if headers is None else headers,
        credentials=credentials,
        now=now or _utcnow(),
        expires=expires,
    )


def _tls(ca_pem: str | bytes) -> ssl.SSLContext:
    return ssl.create_default_context(
        cadata=ca_pem.decode() if isinstance(ca_pem, bytes) else ca_pem
    )


class Served:
    """An emulator served on the test's loop, an EKS client for it, and the cluster 'prod'."""

    def __init__(self, emulator: EKSEmulator, eks: EKSClient, endpoint: str, ca_pem: str) -> None:
        self.emulator = emulator
        self.eks = eks
        self.endpoint = endpoint
        self.ca_pem = ca_pem

    async def get(self, token: str | None, path: str = "/api/v1/namespaces") -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(verify=_tls(self.ca_pem)) as http:
            return await http.get(self.endpoint + path, headers=headers)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    emulator = EKSEmulator(seed=3)
    emulator.add_cluster("prod")
    emulator.add_cluster("staging")
    async with emulator.serve() as url, EKSClient(
        region=REGION,
        endpoint_url=url,
        aws_access_key_id=TEST_ACCESS_KEY_ID,
        aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
    ) as eks:
        cluster = (await eks.describe_cluster(name="prod")).cluster
        assert cluster is not None and cluster.endpoint and cluster.certificate_authority
        assert cluster.certificate_authority.data
        ca_pem = base64.b64decode(cluster.certificate_authority.data).decode()
        yield Served(emulator, eks, cluster.endpoint, ca_pem)


# --------------------------------------------------------------------------- the endpoint


async def test_describe_cluster_points_at_the_https_endpoint_while_served() -> None:
    emulator = EKSEmulator()
    emulator.add_cluster("prod")
    emulator.add_cluster("dev")
    async with emulator.serve() as url, emulator.client(endpoint_url=url, transport=None) as eks:
        served = (await eks.describe_cluster(name="prod")).cluster
        other = (await eks.describe_cluster(name="dev")).cluster
        endpoints = emulator.kubernetes_endpoints()
    assert served is not None and served.endpoint and served.certificate_authority
    assert other is not None and other.endpoint
    assert served.endpoint.startswith("https://127.0.0.1:")
    assert served.endpoint.count("/") == 2  # no path, as EKS: kubectl drops one
    assert other.endpoint != served.endpoint  # a port per cluster
    assert endpoints == {"prod": served.endpoint, "dev": other.endpoint}
    assert emulator.kubernetes_endpoints() == {}  # nothing served any more
    ca = base64.b64decode(served.certificate_authority.data or "").decode()
    assert ca == emulator.kubernetes_ca_pem and ca.startswith("-----BEGIN CERTIFICATE-----")
    async with emulator.client() as eks:  # in-process, nothing served any more
        later = (await eks.describe_cluster(name="prod")).cluster
    assert later is not None and later.endpoint
    assert later.endpoint.endswith(f".gr7.{REGION}.eks.amazonaws.com")


async def test_each_clusters_port_serves_that_cluster_alone(served: Served) -> None:
    staging = (await served.eks.describe_cluster(name="staging")).cluster
    assert staging is not None and staging.endpoint and staging.endpoint != served.endpoint
    token = (await served.eks.get_token(cluster_name="staging")).token
    body = {"metadata": {"name": "only-on-staging"}}
    async with httpx.AsyncClient(verify=_tls(served.ca_pem)) as http:
        headers = {"Authorization": f"Bearer {token}"}
        path = "/api/v1/namespaces/default/serviceaccounts"
        created = await http.post(staging.endpoint + path, json=body, headers=headers)
        assert created.status_code == 201
        listed = await http.get(staging.endpoint + path, headers=headers)
        # staging's token names staging: prod's port refuses it, as EKS would.
        refused = await http.get(served.endpoint + path, headers=headers)
    assert [i["metadata"]["name"] for i in listed.json()["items"]] == ["default", "only-on-staging"]
    assert refused.status_code == 401
    prod_token = (await served.eks.get_token(cluster_name="prod")).token
    on_prod = await served.get(prod_token, "/api/v1/namespaces/default/serviceaccounts")
    assert [i["metadata"]["name"] for i in on_prod.json()["items"]] == ["default"]


async def test_eks_async_token_is_accepted_and_maps_to_the_callers_arn(served: Served) -> None:
    token = (await served.eks.get_token(cluster_name="prod")).token
    response = await served.get(token)
    assert response.status_code == 200
    names = [item["metadata"]["name"] for item in response.json()["items"]]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    review = served.emulator.token_reviews()[-1]
    assert review.authenticated and review.cluster == "prod"
    assert review.identity is not None
    assert review.identity.arn == f"arn:aws:iam::123456789012:user/{TEST_ACCESS_KEY_ID}"
    assert review.identity.username == review.identity.arn
    assert review.identity.account_id == "123456789012"


async def test_registered_arn_is_the_kubernetes_user(served: Served) -> None:
    arn = "arn:aws:iam::210987654321:user/onboarding-bot"
    served.emulator.register_credentials(
        "AKIDONBOARDING", "onboarding-secret", account_id="210987654321", arn=arn
    )
    creds = Credentials(access_key_id="AKIDONBOARDING", secret_access_key="onboarding-secret")
    token = _encode(_presign(credentials=creds))
    async with httpx.AsyncClient(verify=_tls(served.ca_pem)) as http:
        response = await http.post(
            served.endpoint + "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            headers={"Authorization": f"Bearer {token}"},
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
    assert response.status_code == 201
    user = response.json()["status"]["userInfo"]
    assert user["username"] == arn
    assert user["uid"] == "aws-iam-authenticator:210987654321:AKIDONBOARDING"
    assert "system:authenticated" in user["groups"]
    assert user["extra"]["accessKeyId"] == ["AKIDONBOARDING"]


async def test_the_awscli_way_of_signing_is_accepted_too(
    served: Served,
    session: Any,  # noqa: F811
) -> None:
    # botocore's presigner, as `aws eks get-token` drives it: an opinion independent of
    # eks_async's signer on what a valid token is.
    url = cli_presigned_url(
        session,
        region=REGION,
        use_fips=False,
        credentials=TEST_CREDENTIALS,
        cluster="prod",
        now=_utcnow(),
    )
    response = await served.get(cli_token(url))
    assert response.status_code == 200, served.emulator.token_reviews()[-1].reason


async def test_the_token_builder_alone_is_accepted(served: Served) -> None:
    # The control for every refusal below: only their one change makes them fail.
    assert (await served.get(_encode(_presign()))).status_code == 200


# --------------------------------------------------------------------------- refusals


def _tamper_signature(token: str) -> str:
    url = _decode(token)
    head, _, signature = url.rpartition("X-Amz-Signature=")
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    return _encode(head + "X-Amz-Signature=" + flipped)


async def _expired_token(served: Served) -> str:
    return _encode(_presign(now=_utcnow() - datetime.timedelta(minutes=15, seconds=5)))


async def _other_cluster_token(served: Served) -> str:
    return (await served.eks.get_token(cluster_name="staging")).token


async def _tampered_token(served: Served) -> str:
    return _tamper_signature((await served.eks.get_token(cluster_name="prod")).token)


async def _unsigned_cluster_header(served: Served) -> str:
    # Signed for host only; the query still names the cluster nowhere.
    return _encode(_presign(headers={}))


async def _foreign_host(served: Served) -> str:
    return _encode(_presign(host="sts.example.com"))


async def _extra_parameter(served: Served) -> str:
    return _encode(
        _presign(query="Action=GetCallerIdentity&Version=2011-06-15&RoleSessionName=x")
    )


async def _wrong_action(served: Served) -> str:
    return _encode(_presign(query="Action=GetSessionToken&Version=2011-06-15"))


async def _too_large(served: Served) -> str:
    # A valid token but for its size: the session token makes it pass 4 KiB.
    session_token = "T" * 3200
    served.emulator.register_credentials("AKIDLARGE", "large-secret", session_token=session_token)
    creds = Credentials(
        access_key_id="AKIDLARGE", secret_access_key="large-secret", session_token=session_token
    )
    token = _encode(_presign(credentials=creds))
    assert len(token) > 4096
    return token


async def _garbage(served: Served) -> str:
    return "garbage"


async def _bad_base64(served: Served) -> str:
    return "k8s-aws-v1.not*base64!"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_expired_token, "X-Amz-Date parameter is expired"),
        (_other_cluster_token, "signature we calculated does not match"),
        (_tampered_token, "signature we calculated does not match"),
        (_unsigned_cluster_header, "did not sign the x-k8s-aws-id header"),
        (_foreign_host, "unexpected hostname 'sts.example.com'"),
        (_extra_parameter, "non-whitelisted query parameter 'RoleSessionName'"),
        (_wrong_action, "unexpected action parameter"),
        (_too_large, "token is too large"),
        (_garbage, "missing expected 'k8s-aws-v1.' prefix"),
        (_bad_base64, "illegal base64"),
    ],
    ids=lambda v: getattr(v, "__name__", "").lstrip("_") or None,
)
async def test_authenticator_refuses_with_401(served: Served, make: Any, reason: str) -> None:
    token = await make(served)
    response = await served.get(token)
    assert response.status_code == 401
    body = response.json()
    assert body["kind"] == "Status" and body["reason"] == "Unauthorized" and body["code"] == 401
    review = served.emulator.token_reviews()[-1]
    assert not review.authenticated
    assert reason in review.reason
    assert TEST_SECRET_ACCESS_KEY not in review.reason


async def test_a_session_token_just_under_4_kib_is_accepted(served: Served) -> None:
    session_token = "T" * 2600
    served.emulator.register_credentials("AKIDMEDIUM", "medium-secret", session_token=session_token)
    token = _encode(_presign(credentials=Credentials(
        access_key_id="AKIDMEDIUM", secret_access_key="medium-secret", session_token=session_token
    )))
    assert len(token) <= 4096
    assert (await served.get(token)).status_code == 200


async def test_no_or_non_bearer_authorization_is_401(served: Served) -> None:
    token = (await served.eks.get_token(cluster_name="prod")).token
    assert (await served.get(None)).status_code == 401
    async with httpx.AsyncClient(verify=_tls(served.ca_pem)) as http:
        basic = await http.get(
            served.endpoint + "/api/v1/namespaces", headers={"Authorization": f"Basic {token}"}
        )
    assert basic.status_code == 401


PROD = "prod"


def _creds(key_id: str, secret: str, session_token: str | None = None) -> Credentials:
    return Credentials(
        access_key_id=key_id, secret_access_key=secret, session_token=session_token
    )


def _review(emulator: EKSEmulator, url: str, *, region: str = REGION) -> str:
    review = emulator.review_token(_encode(url), PROD, region=region)
    return "accepted" if review.authenticated else review.reason


@pytest.mark.parametrize(
    ("url", "region", "outcome"),
    [
        (lambda: _presign(), REGION, "accepted"),
        (lambda: _presign(host="sts-fips.us-west-2.amazonaws.com"), REGION, "accepted"),
        (lambda: _presign(host="sts.us-east-1.amazonaws.com", region="us-east-1"), REGION,
         "accepted"),  # any STS host of the partition
        (lambda: _presign(host="sts.amazonaws.com", region="us-east-1"), REGION, "accepted"),
        (lambda: _presign(host="sts.cn-north-1.amazonaws.com.cn", region="cn-north-1"),
         "cn-northwest-1", "accepted"),
        (lambda: _presign(host="sts.cn-north-1.amazonaws.com.cn", region="cn-north-1"), REGION,
         "unexpected hostname"),  # another partition's STS
        (lambda: _presign(host=f"{STS_HOST}:443"), REGION, "unexpected hostname"),
        (lambda: _presign(scheme="http"), REGION, "unexpected scheme 'http'"),
        (lambda: _presign(path="/sts"), REGION, "unexpected path"),
        (lambda: _presign(query="Action=GetCallerIdentity&action=GetCallerIdentity"), REGION,
         "multiple values"),
        (lambda: _presign(expires=901), REGION, "invalid X-Amz-Expires"),
        (lambda: _presign(expires=900), REGION, "accepted"),
        (lambda: _presign(now=_utcnow() + datetime.timedelta(minutes=6)), REGION,
         "not yet current"),
        (lambda: _presign(region="us-east-1"), REGION, "scoped to region 'us-west-2'"),
        (lambda: _presign(credentials=_creds("AKIDUNKNOWN", "x")), REGION, "unknown access key"),
        (lambda: _presign(credentials=_creds(TEST_ACCESS_KEY_ID, "wrong")), REGION,
         "does not match"),
        (lambda: _presign(credentials=_creds(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, "tok")),
         REGION, "security token included in the request is invalid"),
        (lambda: _presign(headers={"x-k8s-aws-id": PROD, "x-extra": "1"}), REGION,
         "signed header 'x-extra' is not in the request"),
        (lambda: _presign().replace("X-Amz-Date=", "X-Amz-Dat="), REGION,
         "non-whitelisted query parameter 'X-Amz-Dat'"),
        (lambda: _presign().replace("X-Amz-Date=", "X-Amz-Date=2026"), REGION,
         "error parsing X-Amz-Date"),
        (lambda: _presign() + "&x-amz-date=20260501T120000Z", REGION, "multiple values"),
        (lambda: _presign().replace("&", ";", 1), REGION, "malformed query parameter"),
    ],
)
def test_review_token_checks(url: Any, region: str, outcome: str) -> None:
    emulator = EKSEmulator()
    assert outcome in _review(emulator, url(), region=region)


def test_max_token_age_is_a_setting_and_the_clock_can_be_injected() -> None:
    now = [time.time()]
    emulator = EKSEmulator(token_clock=lambda: now[0], max_token_age=5)
    token = _encode(_presign())
    assert emulator.review_token(token, PROD).authenticated
    now[0] += 7
    late = emulator.review_token(token, PROD)
    assert not late.authenticated and "(0.0833333 minute expiration)" in late.reason
    emulator.max_token_age = 900
    assert emulator.review_token(token, PROD).authenticated
    with pytest.raises(ValueError):
        emulator.max_token_age = 0


def test_reviews_name_no_secret_and_token_ids_tell_tokens_apart() -> None:
    emulator = EKSEmulator()
    first = emulator.review_token(_encode(_presign()), PROD)
    second = emulator.review_token(_encode(_presign(cluster="staging")), PROD)
    assert first.token_id != second.token_id and len(first.token_id) == 16
    assert TEST_SECRET_ACCESS_KEY not in repr(emulator.token_reviews())
    assert "k8s-aws-v1" not in repr(second)


# --------------------------------------------------------------------------- kubernetes_asyncio


async def test_kubernetes_asyncio_lists_and_creates_service_accounts(served: Served) -> None:
    async with api_client(served.eks, "prod") as api:
        core = k8s.CoreV1Api(api)
        listed = await core.list_namespaced_service_account("default")
        assert [sa.metadata.name for sa in listed.items] == ["default"]

        body = k8s.V1ServiceAccount(
            metadata=k8s.V1ObjectMeta(name="payments-api", labels={"team": "payments"})
        )
        created = await core.create_namespaced_service_account("default", body)
        assert created.kind == "ServiceAccount" and created.api_version == "v1"
        meta = created.metadata
        assert (meta.name, meta.namespace, meta.labels) == (
            "payments-api", "default", {"team": "payments"})
        assert meta.uid and meta.resource_version and meta.creation_timestamp is not None

        got = await core.read_namespaced_service_account("payments-api", "default")
        assert got.metadata.uid == meta.uid
        listed = await core.list_namespaced_service_account("default")
        assert [sa.metadata.name for sa in listed.items] == ["default", "payments-api"]

        with pytest.raises(k8s.ApiException) as conflict:
            await core.create_namespaced_service_account("default", body)
        assert conflict.value.status == 409
        status = json.loads(conflict.value.body)
        assert (status["kind"], status["reason"]) == ("Status", "AlreadyExists")
        assert status["details"] == {"name": "payments-api", "kind": "serviceaccounts"}

        await core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name="payments")))
        in_ns = await core.create_namespaced_service_account(
            "payments", k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="worker"))
        )
        assert in_ns.metadata.namespace == "payments"
        in_payments = await core.list_namespaced_service_account("payments")
        # A new namespace comes with its "default" service account, as in Kubernetes.
        assert sorted(sa.metadata.name for sa in in_payments.items) == ["default", "worker"]
        # Listing a namespace that does not exist answers an empty list, as Kubernetes does.
        assert (await core.list_namespaced_service_account("nowhere")).items == []
        with pytest.raises(k8s.ApiException) as missing_ns:
            await core.create_namespaced_service_account(
                "nowhere", k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="worker"))
            )
        assert missing_ns.value.status == 404
        with pytest.raises(k8s.ApiException) as invalid:
            await core.create_namespaced_service_account(
                "default", k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="Bad_Name"))
            )
        assert invalid.value.status == 422

        await core.delete_namespaced_service_account("payments-api", "default")
        with pytest.raises(k8s.ApiException) as gone:
            await core.read_namespaced_service_account("payments-api", "default")
        assert gone.value.status == 404
        assert json.loads(gone.value.body)["reason"] == "NotFound"

    # Each cluster has its own objects.
    async with api_client(served.eks, "staging") as api:
        listed = await k8s.CoreV1Api(api).list_namespaced_service_account("default")
        assert [sa.metadata.name for sa in listed.items] == ["default"]


async def test_a_client_without_the_clusters_ca_fails_tls_verification(served: Served) -> None:
    token = (await served.eks.get_token(cluster_name="prod")).token
    configuration = k8s.Configuration(
        host=served.endpoint,
        api_key={"BearerToken": token},
        api_key_prefix={"BearerToken": "Bearer"},
    )
    async with k8s.ApiClient(configuration=configuration) as api:
        with pytest.raises(aiohttp.ClientConnectorCertificateError) as failed:
            await k8s.CoreV1Api(api).list_namespaced_service_account("default")
    assert isinstance(failed.value.certificate_error, ssl.SSLCertVerificationError)
    assert served.emulator.token_reviews() == []  # refused before any token was sent
    # Another emulator's CA is no better.
    other = _tls(EKSEmulator().kubernetes_ca_pem)
    async with httpx.AsyncClient(verify=other) as http:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await http.get(served.endpoint + "/api/v1/namespaces")


async def test_api_client_needs_an_active_cluster(served: Served) -> None:
    served.emulator.add_cluster("creating", active=False)
    with pytest.raises(ConfigurationError, match="no Kubernetes endpoint yet"):
        async with api_client(served.eks, "creating"):
            pass


async def test_api_client_removes_its_ca_file(served: Served) -> None:
    async with api_client(served.eks, "prod") as api:
        path = Path(api.configuration.ssl_ca_cert)
        assert path.read_text() == served.ca_pem
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert not path.exists() and not path.parent.exists()


async def test_a_long_running_client_keeps_working_across_token_lifetimes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Token time is a clock the test moves by hand, 4 minutes between requests: STS's
    # 15-minute limit (the emulator checks it on this clock) passes every few requests,
    # and eks_async's token cache (this clock too) renews a token once it is 13 minutes
    # old. No real time passes between the signing and the check, whatever the load.
    now = [time.time()]

    def token_utcnow() -> datetime.datetime:
        return datetime.datetime.fromtimestamp(now[0], datetime.UTC)

    # The clock TokenSource reads when none is given (EKSClient gives none).
    monkeypatch.setattr("eks_async._auth.token._utcnow", token_utcnow)
    emulator = EKSEmulator(token_clock=lambda: now[0])
    emulator.add_cluster("prod")
    async with emulator.serve() as url, emulator.client(endpoint_url=url, transport=None) as eks:
        async with api_client(eks, "prod") as api:
            core = k8s.CoreV1Api(api)
            first_token = api.configuration.api_key["BearerToken"]
            calls = 20  # 80 minutes of token time
            for _ in range(calls):
                await core.list_namespaced_service_account("default")
                now[0] += 4 * 60
        reviews = emulator.token_reviews()
        assert all(r.authenticated for r in reviews), [r.reason for r in reviews if r.reason]
        assert len(reviews) == calls
        tokens = {r.token_id for r in reviews}
        assert len(tokens) >= 4, "the client should have renewed its token every 13-15 minutes"
        # The negative control: the first token, kept, is refused by now.
        cluster = (await eks.describe_cluster(name="prod")).cluster
        assert cluster is not None and cluster.endpoint
        async with httpx.AsyncClient(verify=_tls(emulator.kubernetes_ca_pem)) as http:
            stale = await http.get(
                cluster.endpoint + "/api/v1/namespaces",
                headers={"Authorization": f"Bearer {first_token}"},
            )
        assert stale.status_code == 401
        assert "expired" in emulator.token_reviews()[-1].reason


# --------------------------------------------------------------------------- kubeconfig


@pytest.fixture
def threaded(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[EKSEmulator, str]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_ACCESS_KEY)
    monkeypatch.delenv("KUBERNETES_EXEC_INFO", raising=False)
    emulator = EKSEmulator()
    emulator.add_cluster("prod")
    with run_emulator_server(emulator) as server:
        yield emulator, server.url


def test_kubeconfig_exec_token_is_accepted_by_the_endpoint(
    threaded: tuple[EKSEmulator, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator, url = threaded
    path = tmp_path / "config"
    command = f"{sys.executable} -m eks_async"
    assert main(["--region", REGION, "--endpoint-url", url, "kubeconfig", "--cluster-name",
                 "prod", "--kubeconfig", str(path), "--exec-command", command]) == 0
    capsys.readouterr()
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    cluster = config["clusters"][0]["cluster"]
    exec_entry = config["users"][0]["user"]["exec"]
    # What kubectl does: run the exec command, read its ExecCredential, send the token.
    result = subprocess.run([exec_entry["command"], *exec_entry["args"]], env=dict(os.environ),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    token = json.loads(result.stdout)["status"]["token"]
    ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
    server = cluster["server"]
    with httpx.Client(verify=_tls(ca)) as http:
        accounts = f"{server}/api/v1/namespaces/default/serviceaccounts"
        ok = http.get(accounts, headers={"Authorization": f"Bearer {token}"})
        tampered = _tamper_signature(token)
        refused = http.get(accounts, headers={"Authorization": f"Bearer {tampered}"})
    assert ok.status_code == 200 and ok.json()["kind"] == "ServiceAccountList"
    assert refused.status_code == 401
    assert [r.authenticated for r in emulator.token_reviews()] == [True, False]


async def test_kubernetes_asyncio_loads_the_kubeconfig_and_runs_its_exec_entry(
    threaded: tuple[EKSEmulator, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator, url = threaded
    path = tmp_path / "config"
    command = f"{sys.executable} -m eks_async"
    argv = ["--region", REGION, "--endpoint-url", url, "kubeconfig", "--cluster-name", "prod",
            "--kubeconfig", str(path), "--exec-command", command]
    assert await asyncio.to_thread(main, argv) == 0  # the CLI runs its own event loop
    capsys.readouterr()
    configuration = k8s.Configuration()
    await k8s_config.load_kube_config(config_file=str(path), client_configuration=configuration)
    async with k8s.ApiClient(configuration=configuration) as api:
        listed = await k8s.CoreV1Api(api).list_namespaced_service_account("default")
    assert [sa.metadata.name for sa in listed.items] == ["default"]
    assert [r.authenticated for r in emulator.token_reviews()] == [True]

