"""Cluster tokens (eks_async._auth.token) against what ``aws eks get-token`` makes.

The reference is awscli's ``TokenGenerator`` / ``STSClientFactory`` logic, repeated here with
botocore directly (awscli itself is not a test dependency): an STS client for the region, the
``x-k8s-aws-id`` parameter moved into the request context and from there into a header just
before signing, and ``generate_presigned_url('get_caller_identity', ExpiresIn=60,
HttpMethod='GET')``.  botocore's clock is frozen by patching ``botocore.auth.
get_current_datetime``, which its SigV4 query signer reads.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import botocore.auth
import botocore.session
import pytest
from aiohttp import web
from botocore.config import Config

from eks_async._auth.credentials import Credentials, StaticCredentialsProvider
from eks_async._auth.sigv4 import SigV4Signer
from eks_async._auth.token import ClusterToken, TokenSource
from eks_async._exceptions import (
    ConfigurationError,
    CredentialsError,
    EndpointResolutionError,
    ParamValidationError,
)

from ._botomodel import isolated_session

ROOT = Path(__file__).resolve().parent.parent
AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE/TOKEN+with=odd/chars=="
T0 = datetime.datetime(2024, 5, 1, 12, 34, 56, 789012, tzinfo=datetime.UTC)
ROLE = "arn:aws:iam::123456789012:role/eks-admin"
K8S_AWS_ID = "x-k8s-aws-id"
# The query parameters EKS's authenticator allows (aws-iam-authenticator, pkg/token).
ALLOWED_PARAMS = {
    "action",
    "version",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-signedheaders",
}


class FakeClock:
    def __init__(self, now: datetime.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += datetime.timedelta(**kwargs)


def _creds(with_token: bool = True, expiry: datetime.datetime | None = None) -> Credentials:
    return Credentials(
        access_key_id=AKID,
        secret_access_key=SECRET,
        session_token=SESSION_TOKEN if with_token else None,
        expiry=expiry,
    )


def _source(
    region: str = "us-west-2",
    *,
    use_fips: bool = False,
    credentials: Credentials | None = None,
    clock: Callable[[], datetime.datetime] | None = None,
    **kwargs: Any,
) -> TokenSource:
    return TokenSource(
        region=region,
        use_fips=use_fips,
        credentials=StaticCredentialsProvider(credentials or _creds()),
        clock=clock or FakeClock(),
        **kwargs,
    )


def decode(token: str) -> str:
    """The presigned URL inside a token."""
    assert token.startswith("k8s-aws-v1.")
    body = token[len("k8s-aws-v1.") :]
    assert "=" not in body
    assert set(body) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


# --------------------------------------------------------------------------- the reference


@pytest.fixture(scope="module")
def session() -> Iterator[botocore.session.Session]:
    with isolated_session() as session:
        yield session


def cli_presigned_url(
    session: botocore.session.Session,
    *,
    region: str,
    use_fips: bool,
    credentials: Credentials,
    cluster: str,
    now: datetime.datetime,
) -> str:
    """The URL ``aws eks get-token`` signs, made the way awscli makes it, at time ``now``."""
    client = session.create_client(
        "sts",
        region_name=region,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
        config=Config(use_fips_endpoint=use_fips),
    )

    # awscli STSClientFactory._retrieve_k8s_aws_id / _inject_k8s_aws_id_header
    def retrieve(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if K8S_AWS_ID in params:
            context[K8S_AWS_ID] = params.pop(K8S_AWS_ID)

    def inject(request: Any, **_: Any) -> None:
        if K8S_AWS_ID in request.context:
            request.headers[K8S_AWS_ID] = request.context[K8S_AWS_ID]

    client.meta.events.register("provide-client-params.sts.GetCallerIdentity", retrieve)
    client.meta.events.register("before-sign.sts.GetCallerIdentity", inject)

    def frozen(remove_tzinfo: bool = True) -> datetime.datetime:
        return now.replace(tzinfo=None) if remove_tzinfo else now

    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(botocore.auth, "get_current_datetime", frozen)
            url: str = client.generate_presigned_url(
                "get_caller_identity",
                Params={K8S_AWS_ID: cluster},
                ExpiresIn=60,
                HttpMethod="GET",
            )
    finally:
        client.close()
    return url


def cli_token(url: str) -> str:
    # awscli TokenGenerator.get_token
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode("utf-8")).decode("utf-8").rstrip("=")


def _partition_regions(*names: str) -> list[str]:
    data = json.loads((Path(botocore.__file__).parent / "data" / "partitions.json").read_text())
    return sorted(r for p in data["partitions"] if p["id"] in names for r in p["regions"])


CONFORMANCE_REGIONS = [
    *_partition_regions("aws", "aws-cn", "aws-us-gov"),
    "aws-global",  # the global host, signed for us-east-1
    "fips-us-east-1",
    "us-gov-east-1-fips",
    "us-west-9",  # not listed, matched by the aws pattern
]


# --------------------------------------------------------------------------- conformance


@pytest.mark.parametrize("region", CONFORMANCE_REGIONS)
@pytest.mark.parametrize("use_fips", [False, True], ids=["plain", "fips"])
@pytest.mark.parametrize("with_token", [False, True], ids=["keys", "session"])
async def test_token_is_what_the_cli_makes(
    session: botocore.session.Session, region: str, use_fips: bool, with_token: bool
) -> None:
    creds = _creds(with_token)
    by_id = region.endswith("1") and with_token  # cluster_id for some (Outposts local clusters)
    cluster = "0a1b2c3d-4e5f-6789-abcd-ef0123456789" if by_id else "prod_cluster-1"
    source = _source(region, use_fips=use_fips, credentials=creds, clock=FakeClock(T0))
    if by_id:
        token = await source.get_token(cluster_id=cluster)
    else:
        token = await source.get_token(cluster_name=cluster)

    expected = cli_presigned_url(
        session, region=region, use_fips=use_fips, credentials=creds, cluster=cluster, now=T0
    )
    ours = decode(token.token)
    # Parameter by parameter, in order, then the URL and the token as whole strings.
    assert urlsplit(ours)[:3] == urlsplit(expected)[:3]
    assert parse_qsl(urlsplit(ours).query) == parse_qsl(urlsplit(expected).query)
    assert ours == expected
    assert token.token == cli_token(expected)

    # What EKS's authenticator looks at.
    query = params(ours)
    assert {k.lower() for k in query} <= ALLOWED_PARAMS
    assert len(parse_qsl(urlsplit(ours).query)) == len(query)  # no parameter twice
    assert query["Action"] == "GetCallerIdentity" and query["Version"] == "2011-06-15"
    assert query["X-Amz-Date"] == "20240501T123456Z"
    assert query["X-Amz-Expires"] == "60"
    assert query["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
    assert query["X-Amz-Credential"].startswith(f"{AKID}/20240501/")
    assert query["X-Amz-Credential"].endswith("/sts/aws4_request")
    assert ("X-Amz-Security-Token" in query) is with_token
    if with_token:
        assert query["X-Amz-Security-Token"] == SESSION_TOKEN
    assert urlsplit(ours).scheme == "https" and urlsplit(ours).path == "/"
    assert len(token.token) < 4096
    # The CLI reports expiry 14 minutes after signing (whole seconds, like X-Amz-Date).
    assert token.expires_at == datetime.datetime(2024, 5, 1, 12, 48, 56, tzinfo=datetime.UTC)


async def test_token_hosts_spot_checks() -> None:
    """Known hosts and scopes, so a reference gone wrong cannot pass unnoticed."""
    cases = {
        ("us-east-1", False): ("sts.us-east-1.amazonaws.com", "us-east-1"),
        ("us-east-1", True): ("sts-fips.us-east-1.amazonaws.com", "us-east-1"),
        ("aws-global", False): ("sts.amazonaws.com", "us-east-1"),
        ("cn-north-1", False): ("sts.cn-north-1.amazonaws.com.cn", "cn-north-1"),
        ("us-gov-west-1", True): ("sts.us-gov-west-1.amazonaws.com", "us-gov-west-1"),
        ("us-iso-east-1", False): ("sts.us-iso-east-1.c2s.ic.gov", "us-iso-east-1"),
    }
    for (region, use_fips), (host, scope) in cases.items():
        token = await _source(region, use_fips=use_fips).get_token(cluster_name="c")
        url = decode(token.token)
        assert urlsplit(url).netloc == host
        assert params(url)["X-Amz-Credential"].split("/")[2] == scope


def test_region_without_sts_endpoint_is_refused() -> None:
    with pytest.raises(EndpointResolutionError):
        _source("us_west_2")
    with pytest.raises(ConfigurationError):
        TokenSource(region="us-west-2", use_fips=False, credentials=_creds())  # type: ignore[arg-type]


async def test_naive_clock_is_refused() -> None:
    source = _source(clock=lambda: datetime.datetime(2024, 5, 1))
    with pytest.raises(ConfigurationError, match="aware"):
        await source.get_token(cluster_name="c")


async def test_non_utc_clock_signs_in_utc(session: botocore.session.Session) -> None:
    paris = datetime.timezone(datetime.timedelta(hours=2))
    source = _source(clock=lambda: T0.astimezone(paris))
    token = await source.get_token(cluster_name="c")
    assert params(decode(token.token))["X-Amz-Date"] == "20240501T123456Z"
    assert token.expires_at.utcoffset() == datetime.timedelta(0)


# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({}, "cluster_name"),
        ({"cluster_name": "a", "cluster_id": "b"}, "cluster_name"),
        ({"cluster_name": ""}, "cluster_name"),
        ({"cluster_id": ""}, "cluster_id"),
        ({"cluster_name": 7}, "cluster_name"),
        ({"cluster_name": "a", "role_arn": "arn:short"}, "role_arn"),
        ({"cluster_name": "a", "role_arn": ROLE, "session_name": "x"}, "session_name"),
        ({"cluster_name": "a", "role_arn": ROLE, "session_name": "has space"}, "session_name"),
        ({"cluster_name": "a", "role_arn": ROLE, "session_name": "s" * 65}, "session_name"),
    ],
)
async def test_bad_parameters_are_refused(kwargs: dict[str, Any], path: str) -> None:
    with pytest.raises(ParamValidationError) as caught:
        await _source().get_token(**kwargs)
    assert caught.value.operation == "GetToken"
    assert caught.value.path == path
    assert isinstance(caught.value, ValueError)


async def test_cluster_name_and_id_make_the_same_token() -> None:
    source = _source()
    by_name = await source.get_token(cluster_name="abc")
    by_id = await source.get_token(cluster_id="abc")
    assert by_name.token == by_id.token


# --------------------------------------------------------------------------- secrecy


async def test_repr_and_str_never_show_the_token() -> None:
    token = await _source().get_token(cluster_name="c")
    encoded = token.token[len("k8s-aws-v1.") :]
    for text in (repr(token), str(token), f"{token}", f"{token!r}", repr([token])):
        assert encoded[:8] not in text and encoded[-16:] not in text
        assert "k8s-aws-v1.…" in text
        assert "2024, 5, 1, 12, 48, 56" in text
    assert repr(token) == (
        "ClusterToken(token='k8s-aws-v1.…', expires_at=datetime.datetime(2024, 5, 1, 12, 48, 56, "
        "tzinfo=datetime.timezone.utc))"
    )
    source = _source()
    assert SECRET not in repr(source) and AKID not in repr(source)


def test_cluster_token_is_frozen_slotted_and_kw_only() -> None:
    token = ClusterToken(token="k8s-aws-v1.abc", expires_at=T0)
    with pytest.raises(AttributeError):
        token.token = "x"  # type: ignore[misc]
    assert not hasattr(token, "__dict__")
    with pytest.raises(TypeError):
        ClusterToken("k8s-aws-v1.abc", T0)  # type: ignore[misc]
    with pytest.raises(ValueError):
        ClusterToken(token="k8s-aws-v1.abc", expires_at=datetime.datetime(2024, 1, 1))
    assert repr(ClusterToken(token="other", expires_at=T0)).startswith("ClusterToken(token='…'")


# --------------------------------------------------------------------------- caching


@pytest.fixture
def presign_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts (and records the host of) every URL SigV4Signer presigns."""
    calls: list[str] = []
    original = SigV4Signer.presign_url

    def counting(self: SigV4Signer, **kwargs: Any) -> str:
        calls.append(urlsplit(kwargs["url"]).netloc)
        return original(self, **kwargs)

    monkeypatch.setattr(SigV4Signer, "presign_url", counting)
    return calls


async def test_cached_until_one_minute_before_expiry(presign_calls: list[str]) -> None:
    clock = FakeClock(T0)
    source = _source(clock=clock)
    first = await source.get_token(cluster_name="c")
    assert await source.get_token(cluster_name="c") is first
    assert first.expires_at == T0.replace(microsecond=0) + datetime.timedelta(minutes=14)

    clock.now = first.expires_at - datetime.timedelta(minutes=1, microseconds=1)
    assert await source.get_token(cluster_name="c") is first
    assert len(presign_calls) == 1

    clock.now = first.expires_at - datetime.timedelta(minutes=1)
    second = await source.get_token(cluster_name="c")
    assert second is not first and second.token != first.token
    assert second.expires_at == clock.now.replace(microsecond=0) + datetime.timedelta(minutes=14)
    assert len(presign_calls) == 2
    assert await source.get_token(cluster_name="c") is second


async def test_cache_is_per_cluster_role_and_session(presign_calls: list[str]) -> None:
    source = _source()
    a = await source.get_token(cluster_name="a")
    b = await source.get_token(cluster_name="b")
    assert a.token != b.token
    assert await source.get_token(cluster_name="a") is a
    # Without a role the session name plays no part.
    assert await source.get_token(cluster_name="a", session_name="other-name") is a
    assert len(presign_calls) == 2


async def test_credentials_expiring_first_shorten_the_reuse(presign_calls: list[str]) -> None:
    clock = FakeClock(T0)
    expiry = T0 + datetime.timedelta(minutes=5)
    source = _source(credentials=_creds(expiry=expiry), clock=clock)
    first = await source.get_token(cluster_name="c")
    clock.now = expiry - datetime.timedelta(minutes=1, seconds=1)
    assert await source.get_token(cluster_name="c") is first
    clock.now = expiry - datetime.timedelta(minutes=1)
    assert await source.get_token(cluster_name="c") is not first
    assert len(presign_calls) == 2


class SlowProvider:
    """Credentials that take a moment to arrive, so concurrent callers really overlap."""

    def __init__(self) -> None:
        self.calls = 0

    async def get_credentials(self) -> Credentials:
        self.calls += 1
        await asyncio.sleep(0.01)
        return _creds()


async def test_concurrent_callers_share_one_signing(presign_calls: list[str]) -> None:
    provider = SlowProvider()
    source = TokenSource(
        region="us-west-2", use_fips=False, credentials=provider, clock=FakeClock()
    )
    results = await asyncio.gather(
        *[source.get_token(cluster_name="c") for _ in range(100)],
        *[source.get_token(cluster_name="d") for _ in range(100)],
    )
    assert len(presign_calls) == 2
    assert provider.calls == 2
    assert all(r is results[0] for r in results[:100])
    assert all(r is results[100] for r in results[100:])
    assert results[0].token != results[100].token


async def test_cached_call_costs_microseconds(presign_calls: list[str]) -> None:
    source = TokenSource(  # the real clock
        region="us-west-2", use_fips=False, credentials=StaticCredentialsProvider(_creds())
    )
    token = await source.get_token(cluster_name="c")
    # CPU time of this process, not the wall: on a loaded machine the wall clock also
    # counts the time other processes held the CPU. The best of five batches, so one
    # batch that a context switch or a GC pass landed in does not decide.
    rounds = 4_000
    per_call = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(rounds):
            assert await source.get_token(cluster_name="c") is token
        per_call = min(per_call, (time.process_time() - start) / rounds)
    assert len(presign_calls) == 1
    assert per_call < 25e-6, f"{per_call * 1e6:.1f} µs per cached call"


# --------------------------------------------------------------------------- role_arn


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _moto_assumed_role(access_key_id: str) -> Any:
    from moto.sts.models import sts_backends

    role = sts_backends["123456789012"]["aws"].get_assumed_role_from_access_key(access_key_id)
    assert role is not None, "moto has no assumed role with that access key"
    return role


def _real_now() -> datetime.datetime:
    # moto dates the assumed credentials by the real clock.
    return datetime.datetime.now(datetime.UTC)


async def test_role_arn_signs_with_the_assumed_role(
    moto_url: str, session: botocore.session.Session
) -> None:
    clock = FakeClock(_real_now())
    source = _source("us-west-2", clock=clock, sts_endpoint_url=moto_url + "/")
    token = await source.get_token(cluster_name="prod", role_arn=ROLE, session_name="alice@ops")
    url = decode(token.token)
    query = params(url)
    # The token still names the real regional STS host; only AssumeRole went to moto.
    assert urlsplit(url).netloc == "sts.us-west-2.amazonaws.com"
    access_key = query["X-Amz-Credential"].split("/")[0]
    assert access_key.startswith("ASIA") and access_key != AKID
    role = _moto_assumed_role(access_key)
    assert role.role_arn == ROLE
    assert role.session_name == "alice@ops"
    assert query["X-Amz-Security-Token"] == role.session_token

    # And the whole URL is what the CLI signs with those credentials.
    assumed = Credentials(
        access_key_id=role.access_key_id,
        secret_access_key=role.secret_access_key,
        session_token=role.session_token,
    )
    expected = cli_presigned_url(
        session,
        region="us-west-2",
        use_fips=False,
        credentials=assumed,
        cluster="prod",
        now=clock.now.replace(microsecond=0),
    )
    assert url == expected

    # moto tells who that caller is: the role, under the session name.
    sts = session.create_client(
        "sts",
        region_name="us-west-2",
        endpoint_url=moto_url,
        aws_access_key_id=access_key,
        aws_secret_access_key="moto-does-not-check",
        aws_session_token=query["X-Amz-Security-Token"],
    )
    try:
        identity = sts.get_caller_identity()
    finally:
        sts.close()
    assert identity["Arn"] == "arn:aws:sts::123456789012:assumed-role/eks-admin/alice@ops"


async def test_assumed_credentials_are_cached_until_shortly_before_expiry(moto_url: str) -> None:
    clock = FakeClock(_real_now())
    source = _source("us-west-2", clock=clock, sts_endpoint_url=moto_url)

    def key_of(token: ClusterToken) -> str:
        return params(decode(token.token))["X-Amz-Credential"].split("/")[0]

    a = await source.get_token(cluster_name="a", role_arn=ROLE)
    assert _moto_assumed_role(key_of(a)).session_name == "EKSGetTokenAuth"  # the default
    b = await source.get_token(cluster_name="b", role_arn=ROLE)
    assert key_of(a) == key_of(b)  # one AssumeRole for both clusters
    other = await source.get_token(cluster_name="a", role_arn=ROLE, session_name="other")
    assert key_of(other) != key_of(a)
    assert _moto_assumed_role(key_of(other)).session_name == "other"
    plain = await source.get_token(cluster_name="a")
    assert key_of(plain) == AKID

    # moto's credentials last an hour; 15 minutes before that they are replaced.
    clock.advance(minutes=44)
    assert key_of(await source.get_token(cluster_name="c", role_arn=ROLE)) == key_of(a)
    clock.advance(minutes=2)
    renewed = await source.get_token(cluster_name="a", role_arn=ROLE)
    assert key_of(renewed) != key_of(a)
    assert _moto_assumed_role(key_of(renewed)).session_name == "EKSGetTokenAuth"


@pytest.fixture
async def refusing_sts() -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.Response:
        body = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
            "<Type>Sender</Type><Code>AccessDenied</Code>"
            "<Message>not authorized to perform: sts:AssumeRole</Message></Error>"
            "<RequestId>req-1</RequestId></ErrorResponse>"
        )
        return web.Response(status=403, text=body, content_type="text/xml")

    app = web.Application()
    app.router.add_post("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_assume_role_failure_is_a_credentials_error(refusing_sts: str) -> None:
    source = _source(clock=FakeClock(_real_now()), sts_endpoint_url=refusing_sts)
    with pytest.raises(CredentialsError, match="AccessDenied") as caught:
        await source.get_token(cluster_name="c", role_arn=ROLE)
    assert ROLE in str(caught.value)
    assert SECRET not in str(caught.value) and SESSION_TOKEN not in str(caught.value)


# --------------------------------------------------------------------------- imports


def test_import_does_not_load_botocore() -> None:
    code = (
        "import sys, eks_async._auth.token\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('botocore', 'boto3', 'aiobotocore', 'awscli'))\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
