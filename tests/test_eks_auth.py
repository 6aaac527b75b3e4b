"""EKS Auth: the client made by the same generator, checked against botocore's ``eks-auth``.

What eks_async sends equals what botocore sends (method, URL, body, Content-Type, and
botocore's SigV4 for service ``eks-auth`` reproduces the Authorization header); endpoints
equal botocore's for every region it names, with and without FIPS and dual-stack; answers
parse as botocore's RestJSONParser reads them; error codes map to EKS Auth's own classes;
the credentials it returns never show in a repr or a log line.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import attrs
import botocore
import botocore.auth
import botocore.credentials
import botocore.exceptions
import botocore.session
import httpx
import pytest
from botocore.awsrequest import AWSRequest
from botocore.model import OperationModel, ServiceModel
from botocore.parsers import RestJSONParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eks_async
from eks_async._eks_auth import EKS_AUTH_SERVICE, resolve_eks_auth_endpoint
from eks_async._generated.eks_auth import errors as auth_errors
from eks_async._generated.eks_auth import models as auth_models
from eks_async._generated.eks_auth.operations import ASSUME_ROLE_FOR_POD_IDENTITY, OPERATIONS
from eks_async._generated.eks_auth.shapes import SHAPES
from eks_async._restjson.parse import parse_error, parse_output
from eks_async._restjson.serialize import values_from_params

from ._botomodel import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    SESSION_TOKEN,
    botocore_sent_url,
    isolated_session,
    value_strategy,
)
from ._emulator_support import validate_emulator_responses  # noqa: F401

OP = "AssumeRoleForPodIdentity"
BOTOCORE_DIR = Path(botocore.__file__).parent
FLAGS = [(False, False), (False, True), (True, False), (True, True)]


@cache
def _model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("eks-auth")


def _operation() -> OperationModel:
    return _model().operation_model(OP)


def _input_strategy() -> st.SearchStrategy[dict[str, Any]]:
    shape = _operation().input_shape
    assert shape is not None
    return value_strategy(shape)


def _output_strategy() -> st.SearchStrategy[dict[str, Any]]:
    shape = _operation().output_shape
    assert shape is not None
    return value_strategy(shape)


# --------------------------------------------------------------------------- requests


class _Captured(Exception):
    def __init__(self, request: Any) -> None:
        self.request = request


@pytest.fixture(scope="module")
def boto_client() -> Any:
    client = botocore.session.get_session().create_client(
        "eks-auth",
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=SESSION_TOKEN,
    )

    def stop(request: Any, **_: Any) -> None:
        raise _Captured(request)

    client.meta.events.register("before-send.eks-auth", stop)
    return client


def _capture_botocore(client: Any, params: dict[str, Any]) -> Any:
    try:
        client.assume_role_for_pod_identity(**params)
    except _Captured as captured:
        return captured.request
    raise AssertionError("botocore sent nothing")  # pragma: no cover


ANSWER = {
    "subject": {"namespace": "payments", "serviceAccount": "api"},
    "audience": "pods.eks.amazonaws.com",
    "podIdentityAssociation": {
        "associationArn": "arn:aws:eks:us-west-2:111122223333:podidentityassociation/prod/a-1",
        "associationId": "a-1",
    },
    "assumedRoleUser": {
        "arn": "arn:aws:sts::111122223333:assumed-role/payments-api/eks-prod-api",
        "assumeRoleId": "AROAEXAMPLE:eks-prod-api",
    },
    "credentials": {
        "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLEsessiontokenvalue0123456789",
        "secretAccessKey": "pod/secret+ACCESSkeyEXAMPLEvalue0123456789",
        "accessKeyId": "ASIAPODEXAMPLE000001",
        "expiration": 1767225600,
    },
}
SECRETS = (
    ANSWER["credentials"]["sessionToken"],  # type: ignore[index]
    ANSWER["credentials"]["secretAccessKey"],  # type: ignore[index]
    ANSWER["credentials"]["accessKeyId"],  # type: ignore[index]
)
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJlLXZhbHVl"


class _Transport(httpx.AsyncBaseTransport):
    """Answers every request with ``responses`` in turn (the last one repeats)."""

    def __init__(self, *responses: tuple[int, dict[str, str], bytes]) -> None:
        self.requests: list[httpx.Request] = []
        self.responses = list(responses) or [(200, {}, json.dumps(ANSWER).encode())]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, headers, body = self.responses[min(len(self.requests), len(self.responses)) - 1]
        return httpx.Response(
            status, content=body, headers={"x-amzn-RequestId": "rid", **headers}
        )


def _client(transport: httpx.AsyncBaseTransport, **kwargs: Any) -> eks_async.EKSAuthClient:
    return eks_async.EKSAuthClient(
        region=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=SESSION_TOKEN,
        transport=transport,
        **kwargs,
    )


def _send_ours(params: dict[str, Any], *, typed: bool) -> httpx.Request:
    transport = _Transport()

    async def run() -> None:
        async with _client(transport) as auth:
            if typed:
                op = OPERATIONS[OP]
                values = values_from_params(op, params)
                names = [m[0] for m in SHAPES[op.input_shape][2]]
                kwargs = {n: v for n, v in zip(names, values, strict=True) if v is not None}
                await auth.assume_role_for_pod_identity(**kwargs)
            else:
                await auth.call(OP, params)

    asyncio.run(run())
    (request,) = transport.requests
    return request


def _botocore_authorization(ours: httpx.Request) -> str:
    when = datetime.datetime.strptime(ours.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    headers = {
        k: v
        for k, v in ours.headers.items()
        if k.lower()
        not in ("authorization", "x-amz-date", "x-amz-security-token", "host", "content-length")
    }
    request = AWSRequest(method=ours.method, url=str(ours.url), headers=headers, data=ours.content)
    creds = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
        botocore.auth.SigV4Auth(creds, "eks-auth", REGION).add_auth(request)
    return str(request.headers["Authorization"])


def test_the_model_has_one_operation_and_it_is_a_method() -> None:
    assert sorted(_model().operation_names) == sorted(OPERATIONS) == [OP]
    assert asyncio.iscoroutinefunction(eks_async.EKSAuthClient.assume_role_for_pod_identity)
    assert _model().signing_name == EKS_AUTH_SERVICE.signing_name == "eks-auth"


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)
@given(params=_input_strategy(), typed=st.booleans())
def test_request_equals_botocore(boto_client: Any, params: dict[str, Any], typed: bool) -> None:
    theirs = _capture_botocore(boto_client, params)
    ours = _send_ours(params, typed=typed)
    assert ours.method == theirs.method == "POST"
    assert str(ours.url) == theirs.url
    assert ours.url.host == "eks-auth.us-west-2.api.aws"
    assert ours.content == (theirs.body or b"")
    content_type = theirs.headers.get("Content-Type")
    if isinstance(content_type, bytes):
        content_type = content_type.decode()
    assert ours.headers.get("Content-Type") == content_type
    authorization = ours.headers["Authorization"]
    assert "/us-west-2/eks-auth/aws4_request" in authorization
    assert authorization == _botocore_authorization(ours)


def test_a_typed_call_sends_the_token_in_the_body() -> None:
    params = {"clusterName": "prod", "token": JWT, "eksNodeName": "node-1"}
    request = _send_ours(params, typed=True)
    assert request.url.path == "/clusters/prod/assume-role-for-pod-identity"
    assert json.loads(request.content) == {"token": JWT, "eksNodeName": "node-1"}


async def test_missing_and_wrong_parameters_are_refused_before_sending() -> None:
    transport = _Transport()
    async with _client(transport) as auth:
        with pytest.raises(eks_async.ParamValidationError) as info:
            await auth.assume_role_for_pod_identity(cluster_name="prod", token="")
        assert info.value.path == "token"
        with pytest.raises(eks_async.ParamValidationError):
            await auth.call(OP, {"clusterName": "prod"})
        with pytest.raises(eks_async.ConfigurationError):
            await auth.call("DescribeCluster", {"name": "prod"})
    assert transport.requests == []


# --------------------------------------------------------------------------- answers


def _wire(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def _as_boto(value: Any, shape_name: str) -> Any:
    shape = SHAPES[shape_name]
    if shape[0] == "structure":
        return {
            model_name: _as_boto(getattr(value, py), target)
            for py, model_name, _w, target, _l, _r, _t in shape[2]
            if getattr(value, py) is not None
        }
    return value


@settings(max_examples=60, deadline=None, database=None)
@given(answer=_output_strategy())
def test_output_parses_like_botocore(answer: dict[str, Any]) -> None:
    body = json.dumps(_wire(answer)).encode()
    response = {"status_code": 200, "headers": {"x-amzn-requestid": "rid-1"}, "body": body}
    theirs = dict(RestJSONParser().parse(response, _operation().output_shape))
    theirs.pop("ResponseMetadata", None)
    ours = parse_output(ASSUME_ROLE_FOR_POD_IDENTITY, 200, body, "rid-1")
    assert isinstance(ours, auth_models.AssumeRoleForPodIdentityResponse)
    assert _as_boto(ours, ASSUME_ROLE_FOR_POD_IDENTITY.output_shape) == theirs
    assert ours.response_metadata.request_id == "rid-1"


async def test_a_call_returns_typed_credentials() -> None:
    transport = _Transport()
    async with _client(transport) as auth:
        out = await auth.assume_role_for_pod_identity(cluster_name="prod", token=JWT)
    assert isinstance(out, auth_models.AssumeRoleForPodIdentityResponse)
    assert out.credentials is not None and out.subject is not None
    assert out.subject.service_account == "api"
    assert out.credentials.access_key_id == "ASIAPODEXAMPLE000001"
    assert out.credentials.expiration == datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    assert out.pod_identity_association is not None
    assert out.pod_identity_association.association_id == "a-1"
    assert out.response_metadata.request_id == "rid"


# --------------------------------------------------------------------------- errors


def _error_shapes() -> list[str]:
    return sorted(n for n in _model().shape_names if _model().shape_for(n).metadata.get("exception"))


@pytest.mark.parametrize("code", _error_shapes())
async def test_each_error_shape_raises_its_own_class(code: str) -> None:
    status = _model().shape_for(code).metadata["error"]["httpStatusCode"]
    body = json.dumps({"message": f"{code} happened"}).encode()
    transport = _Transport((status, {"x-amzn-ErrorType": f"{code}:http://internal/"}, body))
    async with _client(transport, retry=eks_async.RetryConfig(max_attempts=1)) as auth:
        with pytest.raises(eks_async.ServiceError) as info:
            await auth.assume_role_for_pod_identity(cluster_name="prod", token=JWT)
    error = info.value
    assert type(error) is getattr(auth_errors, code)
    assert type(error).__module__ == "eks_async._generated.eks_auth.errors"
    assert (error.code, error.message, error.http_status) == (code, f"{code} happened", status)
    assert error.operation == OP and error.request_id == "rid"


def test_eks_auth_errors_are_not_eks_errors() -> None:
    # Same names in both models, different services: EKS's classes stay EKS's.
    error = parse_error(OP, 400, {}, b'{"__type": "InvalidParameterException"}', "r")
    assert type(error) is eks_async.InvalidParameterException
    error = parse_error(
        OP, 400, {}, b'{"__type": "InvalidParameterException"}', "r", EKS_AUTH_SERVICE.errors
    )
    assert type(error) is auth_errors.InvalidParameterException
    assert type(error) is not eks_async.InvalidParameterException
    unknown = parse_error(OP, 400, {}, b'{"__type": "SomethingNew"}', "r", EKS_AUTH_SERVICE.errors)
    assert type(unknown) is eks_async.ServiceError and unknown.code == "SomethingNew"


async def test_throttling_is_retried_and_nothing_secret_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    throttled = (429, {"x-amzn-ErrorType": "ThrottlingException"}, b'{"message": "slow"}')
    transport = _Transport(throttled, (200, {}, json.dumps(ANSWER).encode()))
    events: list[eks_async.RetryEvent] = []
    with eks_async.instant_retries(), caplog.at_level(logging.DEBUG, logger="eks_async"):
        async with _client(transport, on_retry=events.append) as auth:
            out = await auth.assume_role_for_pod_identity(cluster_name="prod", token=JWT)
            logging.getLogger("eks_async").debug("answer: %r", out)
    assert len(transport.requests) == 2 and out.response_metadata.attempts == 2
    assert [e.reason for e in events] == ["ThrottlingException, HTTP 429"]
    text = caplog.text + repr(out) + str(out) + repr(events)
    assert "answer: AssumeRoleForPodIdentityResponse(" in text
    for secret in (*SECRETS, JWT):
        assert secret not in text


# --------------------------------------------------------------------------- secrets


def test_repr_masks_the_credentials_and_the_token() -> None:
    out = parse_output(ASSUME_ROLE_FOR_POD_IDENTITY, 200, json.dumps(ANSWER).encode(), "r")
    shown = repr(out)
    for secret in SECRETS:
        assert secret not in shown
    assert "secret_access_key='****'" in shown and "session_token='****'" in shown
    assert "access_key_id='****'" in shown
    assert "expiration=datetime.datetime(2026, 1, 1" in shown  # not a secret
    assert "association_id='a-1'" in shown and "service_account='api'" in shown
    request = auth_models.AssumeRoleForPodIdentityRequest(cluster_name="prod", token=JWT)
    assert JWT not in repr(request) and "token='****'" in repr(request)
    assert attrs.fields(auth_models.Credentials).expiration.repr is True
    # Masked in the repr only: the values are there to be used.
    assert out.credentials is not None
    assert out.credentials.secret_access_key == SECRETS[1]


# --------------------------------------------------------------------------- endpoints


@pytest.fixture(scope="module")
def session() -> Iterator[botocore.session.Session]:
    with isolated_session() as session:
        yield session


def _botocore_endpoint(
    session: botocore.session.Session, region: str, use_fips: bool, use_dualstack: bool
) -> str | None:
    url = botocore_sent_url(
        session, "eks-auth", region, use_fips, use_dualstack,
        lambda c: c.assume_role_for_pod_identity(clusterName="c", token="a.b.c"),
    )
    return None if url is None else url.split("/clusters/", 1)[0]


def _ours(region: str, use_fips: bool, use_dualstack: bool) -> str | None:
    try:
        return resolve_eks_auth_endpoint(region, use_fips=use_fips, use_dualstack=use_dualstack)
    except eks_async.EndpointResolutionError:
        return None


def _regions() -> list[str]:
    data = BOTOCORE_DIR / "data"
    names: set[str] = set()
    for partition in json.loads((data / "partitions.json").read_text())["partitions"]:
        names.update(partition["regions"])
    for partition in json.loads((data / "endpoints.json").read_text())["partitions"]:
        names.update(partition["regions"])
        names.update(partition["services"].get("eks-auth", {}).get("endpoints", {}))
    return sorted(names)


EXTRA_REGIONS = [
    "us-west-9", "cn-northwest-7", "us-gov-east-3", "fips-us-east-1", "us-gov-west-1-fips",
    "xx-nowhere-1", "eusc-de-east-1", "us-iso-east-1", "fips-", "-bad-", "12345",
]


@pytest.mark.parametrize("region", _regions() + EXTRA_REGIONS)
def test_endpoints_equal_botocore(session: botocore.session.Session, region: str) -> None:
    theirs = {flags: _botocore_endpoint(session, region, *flags) for flags in FLAGS}
    ours = {flags: _ours(region, *flags) for flags in FLAGS}
    assert ours == theirs


def test_endpoint_examples() -> None:
    assert resolve_eks_auth_endpoint("us-west-2") == "https://eks-auth.us-west-2.api.aws"
    assert (
        resolve_eks_auth_endpoint("us-gov-west-1", use_fips=True)
        == "https://eks-auth-fips.us-gov-west-1.api.aws"
    )
    assert (
        resolve_eks_auth_endpoint("cn-north-1")
        == "https://eks-auth.cn-north-1.api.amazonwebservices.com.cn"
    )
    covered = {p for p in ("aws", "aws-cn", "aws-us-gov")}
    regions = _regions()
    assert {"us-east-1", "cn-north-1", "us-gov-west-1"} <= set(regions) and covered


async def test_the_client_signs_for_eks_auth_at_its_endpoint() -> None:
    transport = _Transport()
    async with _client(transport) as auth:
        assert auth.endpoint_url == "https://eks-auth.us-west-2.api.aws"
        view = auth.with_options(retry=eks_async.RetryConfig(max_attempts=5))
        await view.assume_role_for_pod_identity(cluster_name="prod", token=JWT)
    (request,) = transport.requests
    assert request.headers["Host"] == "eks-auth.us-west-2.api.aws"
    assert "/eks-auth/aws4_request" in request.headers["Authorization"]


async def test_an_eks_client_still_signs_for_eks() -> None:
    transport = _Transport((200, {}, b'{"clusters": []}'))
    async with eks_async.EKSClient(
        region=REGION, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        transport=transport,
    ) as eks:
        await eks.list_clusters()
    (request,) = transport.requests
    assert request.url.host == "eks.us-west-2.amazonaws.com"
    assert "/us-west-2/eks/aws4_request" in request.headers["Authorization"]


# --------------------------------------------------------------------------- import cost


def test_import_eks_async_loads_no_eks_auth_module_nor_botocore() -> None:
    code = (
        "import sys, eks_async\n"
        "def auth(): return sorted(m for m in sys.modules if 'eks_auth' in m)\n"
        "assert auth() == [], auth()\n"
        "assert 'botocore' not in sys.modules\n"
        "assert 'EKSAuthClient' in eks_async.__all__ and 'EKSAuthClient' in dir(eks_async)\n"
        "eks_async.EKSClient(region='us-west-2', aws_access_key_id='a', aws_secret_access_key='b')\n"
        "assert auth() == [], auth()\n"
        "client = eks_async.EKSAuthClient(region='us-west-2', aws_access_key_id='a',\n"
        "                                 aws_secret_access_key='b')\n"
        "assert 'eks_async._eks_auth' in auth()\n"
        "assert 'botocore' not in sys.modules\n"
        "assert not [m for m in auth() if m.startswith('eks_async._generated.eks_auth.models.')]\n"
        "from eks_async._eks_auth import EKSAuthClient\n"
        "assert eks_async.EKSAuthClient is EKSAuthClient\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_public_module_names_the_client_its_classes_and_errors() -> None:
    from eks_async import eks_auth

    assert eks_auth.EKSAuthClient is eks_async.EKSAuthClient
    assert eks_auth.InvalidTokenException is auth_errors.InvalidTokenException
    assert eks_auth.Credentials is auth_models.Credentials
    assert eks_auth.Credentials is not eks_async.Credentials
    assert eks_auth.PodIdentityAssociation is not eks_async.PodIdentityAssociation
    assert {"AssumeRoleForPodIdentityResponse", "ExpiredTokenException"} <= set(eks_auth.__all__)
    assert "Subject" in dir(eks_auth)
    for name in eks_auth.__all__:
        assert getattr(eks_auth, name) is not None
    with pytest.raises(AttributeError):
        eks_auth.NoSuchName  # noqa: B018


# --------------------------------------------------------------------------- the emulator's EKS Auth
# EKS Auth's calls, and the Pod Identity Agent's calls to it, are counted, throttled and
# faulted as ``AssumeRoleForPodIdentity``, with EKS Auth's own errors (every answer is
# checked against botocore's eks-auth model by ``validate_emulator_responses``).


@attrs.define
class _Pods:
    emulator: Any
    endpoint_id: str
    cluster_token: str

    def token(self) -> str:
        """A service account token (audience pods.eks.amazonaws.com) from TokenRequest."""
        from eks_async.testing import POD_AUDIENCE, EmulatorRequest

        body = {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "spec": {"audiences": [POD_AUDIENCE], "expirationSeconds": 3600},
        }
        answer = self.emulator.handle_kubernetes(
            EmulatorRequest(
                method="POST",
                path=f"/k8s/{self.endpoint_id}/api/v1/namespaces/default/serviceaccounts/"
                "default/token",
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

    def agent(self, token: str) -> Any:
        from eks_async.testing import EmulatorRequest

        request = EmulatorRequest(
            method="GET", path="/v1/credentials", headers=(("Authorization", token),)
        )
        return asyncio.get_running_loop().create_task(self.emulator.handle(request))


async def _pods() -> _Pods:
    from urllib.parse import urlsplit

    from eks_async.testing import Delays, EKSEmulator, ManualClock

    emulator = EKSEmulator(seed=4, clock=ManualClock(), delays=Delays.none())
    emulator.add_cluster("prod")
    async with emulator.client() as eks:
        cluster_token = (await eks.get_token(cluster_name="prod")).token
        cluster = (await eks.describe_cluster(name="prod")).cluster
        assert cluster is not None and cluster.endpoint
        await eks.create_pod_identity_association(
            cluster_name="prod", namespace="default", service_account="default",
            role_arn="arn:aws:iam::123456789012:role/payments-api",
        )
    return _Pods(emulator, urlsplit(cluster.endpoint).netloc.split(".")[0], cluster_token)


def _emulated_auth(pods: _Pods) -> eks_async.EKSAuthClient:
    from eks_async.testing import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY

    return eks_async.EKSAuthClient(
        region=REGION,
        aws_access_key_id=TEST_ACCESS_KEY_ID,
        aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
        transport=pods.emulator.transport(),
        retry=eks_async.RetryConfig(max_attempts=1),
    )


async def test_emulated_eks_auth_is_counted_and_faulted_with_its_own_errors() -> None:
    from eks_async.testing import CallCounts, Fault

    pods = await _pods()
    emulator = pods.emulator
    token = pods.token()
    emulator.script(OP, Fault.THROTTLE)
    emulator.script(OP, Fault.SERVER_ERROR)
    emulator.script(OP, "unavailable")
    seen: list[type[Exception]] = []
    async with _emulated_auth(pods) as auth:
        for _ in range(3):
            with pytest.raises(eks_async.ServiceError) as info:
                await auth.assume_role_for_pod_identity(cluster_name="prod", token=token)
            seen.append(type(info.value))
            assert info.value.retry_kind is not None  # the client would retry each of them
        out = await auth.assume_role_for_pod_identity(cluster_name="prod", token=token)
        assert out.credentials is not None
        with pytest.raises(auth_errors.ResourceNotFoundException):  # a refusal: an error
            await auth.assume_role_for_pod_identity(cluster_name="nowhere", token=token)
    assert seen == [
        auth_errors.ThrottlingException,
        auth_errors.InternalServerException,
        auth_errors.ServiceUnavailableException,
    ]
    assert emulator.calls(OP) == CallCounts(ok=1, throttled=1, error=3)
    # EKS's calls are counted apart, as before.
    assert emulator.calls("CreatePodIdentityAssociation") == CallCounts(ok=1)


async def test_the_agent_goes_through_the_same_faults() -> None:
    from eks_async.testing import CallCounts, Fault

    pods = await _pods()
    emulator = pods.emulator
    token = pods.token()
    emulator.script(OP, Fault.THROTTLE)
    emulator.script(OP, Fault.UNAVAILABLE)
    emulator.script(OP, Fault.DROP_AFTER)
    throttled = await pods.agent(token)
    unavailable = await pods.agent(token)
    dropped = await pods.agent(token)
    ok = await pods.agent(token)
    assert (throttled.status, throttled.json()["Code"]) == (429, "ThrottlingException")
    assert (unavailable.status, unavailable.json()["Code"]) == (503, "ServiceUnavailableException")
    assert dropped.drop and ok.status == 200 and set(ok.json()) >= {"AccessKeyId", "Token"}
    assert emulator.calls(OP) == CallCounts(ok=1, throttled=1, error=1, dropped=1)
    # A request without a token never reaches EKS Auth: the agent refuses it uncounted.
    from eks_async.testing import EmulatorRequest

    bare = await emulator.handle(EmulatorRequest(method="GET", path="/v1/credentials"))
    assert bare.status == 400 and emulator.calls(OP).total == 4


async def test_the_rate_limit_gives_eks_auth_a_bucket_of_its_own() -> None:
    from eks_async.testing import CallCounts, RateLimit

    pods = await _pods()
    emulator = pods.emulator
    token = pods.token()
    emulator.configure(rate_limit=RateLimit(rate=0.5, burst=1))
    async with _emulated_auth(pods) as auth, emulator.client(
        retry=eks_async.RetryConfig(max_attempts=1)
    ) as eks:
        # One EKS call and one EKS Auth call at the same instant: separate buckets.
        await eks.list_clusters()
        await auth.assume_role_for_pod_identity(cluster_name="prod", token=token)
        with pytest.raises(auth_errors.ThrottlingException):  # the agent shares it
            await auth.assume_role_for_pod_identity(cluster_name="prod", token=token)
        assert (await pods.agent(token)).status == 429
        emulator.advance(2.0)  # one token back (0.5 a second)
        assert (await pods.agent(token)).status == 200
        with pytest.raises(auth_errors.ThrottlingException):
            await auth.assume_role_for_pod_identity(cluster_name="prod", token=token)
    assert emulator.calls(OP) == CallCounts(ok=2, throttled=3, rate_limited=3)
    assert emulator.calls("ListClusters") == CallCounts(ok=1)
    # per_operation names it like an EKS operation; its setting wins.
    emulator.configure(
        rate_limit=RateLimit(rate=0.5, burst=1, per_operation={OP: (1.0, 3)})
    )
    async with _emulated_auth(pods) as auth:
        for _ in range(3):
            await auth.assume_role_for_pod_identity(cluster_name="prod", token=token)
        with pytest.raises(auth_errors.ThrottlingException):
            await auth.assume_role_for_pod_identity(cluster_name="prod", token=token)


def test_faults_and_limits_may_name_eks_auth_s_operation() -> None:
    from eks_async.testing import EKSEmulator, EmulatorConfig, Fault

    config = EmulatorConfig().updated(
        {
            "operation_faults": {OP: {"throttle": 0.5}},
            "rate_limit": {"rate": 1, "per_operation": {OP: [2, 2]}},
        }
    )
    assert config.rates_for(OP).throttle == 0.5
    assert config.rate_limit is not None and config.rate_limit.bucket_for(OP) == (OP, 2.0, 2)
    emulator = EKSEmulator(verify_signatures=False)
    emulator.script(OP, Fault.THROTTLE)
    with pytest.raises(ValueError, match="starts no Update"):
        emulator.script(OP, Fault.FAIL_UPDATE)
    with pytest.raises(ValueError, match="no operation"):
        emulator.script("AssumeRole", Fault.THROTTLE)
