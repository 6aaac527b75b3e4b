"""What eks_async sends equals what botocore sends, for every operation of the model.

For inputs drawn from botocore's model, the request eks_async builds (method, URL with path
and query string, JSON body, Content-Type) equals the one botocore's client builds for the
same parameters, and botocore's SigV4 signer, run on eks_async's request at the same time
with the same credentials, reproduces eks_async's Authorization header.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import json
import uuid
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

import botocore.auth
import botocore.credentials
import botocore.session
import httpx
import pytest
from botocore.awsrequest import AWSRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eks_async
from eks_async._generated.operations import OPERATIONS
from eks_async._generated.shapes import SHAPES

from ._botomodel import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    SESSION_TOKEN,
    input_strategy,
    operation,
    operation_names,
)


class _Captured(Exception):
    def __init__(self, request: Any) -> None:
        self.request = request


def _capture_botocore(client: Any, op_name: str, params: dict[str, Any]) -> Any:
    method = getattr(client, botocore.xform_name(op_name))
    try:
        method(**params)
    except _Captured as captured:
        return captured.request
    raise AssertionError("botocore sent nothing")  # pragma: no cover


@pytest.fixture(scope="module")
def boto_client() -> Any:
    session = botocore.session.get_session()
    client = session.create_client(
        "eks",
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=SESSION_TOKEN,
    )

    def stop(request: Any, **_: Any) -> None:
        raise _Captured(request)

    client.meta.events.register("before-send.eks", stop)
    return client


class _CaptureTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, content=b"{}", headers={"x-amzn-RequestId": "rid"})


def _send_ours(op_name: str, params: dict[str, Any], *, typed: bool) -> httpx.Request:
    transport = _CaptureTransport()

    async def run() -> None:
        async with eks_async.EKSClient(
            region=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            aws_session_token=SESSION_TOKEN,
            transport=transport,
        ) as eks:
            if typed:
                op = OPERATIONS[op_name]
                values = eks_async._restjson.serialize.values_from_params(op, params)
                names = [m[0] for m in SHAPES[op.input_shape][2]]
                kwargs = {n: v for n, v in zip(names, values, strict=True) if v is not None}
                await getattr(eks, botocore.xform_name(op_name))(**kwargs)
            else:
                await eks.call(op_name, params)

    asyncio.run(run())
    (request,) = transport.requests
    return request


def _botocore_authorization(ours: httpx.Request) -> str:
    """Sign eks_async's request with botocore at eks_async's X-Amz-Date."""
    amz_date = ours.headers["X-Amz-Date"]
    when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    headers = {
        k: v
        for k, v in ours.headers.items()
        if k.lower() not in ("authorization", "x-amz-date", "x-amz-security-token", "host",
                             "content-length")
    }
    request = AWSRequest(method=ours.method, url=str(ours.url), headers=headers, data=ours.content)
    creds = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
        botocore.auth.SigV4Auth(creds, "eks", REGION).add_auth(request)
    assert request.headers["X-Amz-Security-Token"] == ours.headers["X-Amz-Security-Token"]
    return str(request.headers["Authorization"])


def _idempotency_members(op_name: str) -> list[str]:
    shape = operation(op_name).input_shape
    assert shape is not None
    return [n for n, m in shape.members.items() if m.metadata.get("idempotencyToken")]


def test_every_operation_of_the_model_is_a_method() -> None:
    names = operation_names()
    assert sorted(OPERATIONS) == names
    assert len(names) == 70  # botocore 1.43.117
    for name in names:
        method = getattr(eks_async.EKSClient, botocore.xform_name(name))
        assert asyncio.iscoroutinefunction(method), name


@pytest.mark.parametrize("op_name", operation_names())
def test_request_equals_botocore(boto_client: Any, op_name: str) -> None:
    tokens = _idempotency_members(op_name)

    @settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(params=input_strategy(op_name), typed=st.booleans())
    def check(params: dict[str, Any], typed: bool) -> None:
        for token in tokens:  # explicit tokens, so both bodies can be compared byte for byte
            params.setdefault(token, str(uuid.uuid4()))
        params = {k: params[k] for k in operation(op_name).input_shape.members if k in params}
        theirs = _capture_botocore(boto_client, op_name, params)
        ours = _send_ours(op_name, params, typed=typed)
        assert ours.method == theirs.method
        assert str(ours.url) == theirs.url
        assert ours.content == (theirs.body or b"")
        content_type = theirs.headers.get("Content-Type")
        if isinstance(content_type, bytes):
            content_type = content_type.decode()
        assert ours.headers.get("Content-Type") == content_type
        assert ours.headers["Authorization"] == _botocore_authorization(ours)

    check()


@pytest.mark.parametrize(
    "op_name", [n for n in operation_names() if _idempotency_members(n)]
)
def test_missing_idempotency_token_is_filled_like_botocore(boto_client: Any, op_name: str) -> None:
    (token,) = _idempotency_members(op_name)

    @settings(max_examples=3, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(params=input_strategy(op_name))
    def check(params: dict[str, Any]) -> None:
        params.pop(token, None)
        theirs_request = _capture_botocore(boto_client, op_name, params)
        ours_request = _send_ours(op_name, params, typed=False)
        if theirs_request.body:
            theirs = json.loads(theirs_request.body)
            ours = json.loads(ours_request.content)
        else:  # the token travels in the query string
            theirs = dict(parse_qsl(urlsplit(theirs_request.url).query, keep_blank_values=True))
            ours = dict(parse_qsl(ours_request.url.query.decode(), keep_blank_values=True))
        assert uuid.UUID(ours.pop(token)).version == 4
        assert uuid.UUID(theirs.pop(token)).version == 4
        assert ours == theirs

    check()


@pytest.mark.parametrize("label", ["", ".", ".."])
async def test_labels_that_would_change_the_path_are_refused(label: str) -> None:
    transport = _CaptureTransport()
    async with eks_async.EKSClient(
        region=REGION, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        transport=transport,
    ) as eks:
        with pytest.raises(eks_async.ParamValidationError) as info:
            await eks.delete_addon(cluster_name="prod", addon_name=label)
    assert info.value.path == "addon_name"
    assert transport.requests == []


class _Text(str):
    """A str subclass whose str() is not its value: sent as its value, as botocore does."""

    def __str__(self) -> str:
        return "not the value"


_TEXT = _Text("sub/class text")


_TOKEN = "5f0c7a4e-2b1d-4c3e-9a8b-7d6e5f4a3b2c"


@pytest.mark.parametrize(
    ("op_name", "params"),
    [
        # Forms botocore accepts that eks_async refused before 0.1: an empty map (TagMap has
        # a min of 1 that botocore does not check), a bool for an integer, in the body and in
        # the query string.
        ("TagResource", {"resourceArn": "arn:aws:eks:us-west-2:1:cluster/p", "tags": {}}),
        ("CreateAccessEntry", {"clusterName": "p", "principalArn": "arn:aws:iam::1:role/r",
                               "tags": {}, "clientRequestToken": _TOKEN}),
        ("ListClusters", {"maxResults": True}),
        ("CreateNodegroup", {"clusterName": "p", "nodegroupName": "n", "subnets": ("s1", "s2"),
                             "nodeRole": "arn:aws:iam::1:role/n", "diskSize": True,
                             "scalingConfig": {"minSize": False, "desiredSize": True},
                             "clientRequestToken": _TOKEN}),
        # dict subclasses, tuples for lists, and str subclasses whose str() is not their value.
        ("CreateCluster", {"name": "p", "roleArn": "arn:aws:iam::1:role/c",
                           "resourcesVpcConfig": collections.OrderedDict(subnetIds=("a",)),
                           "tags": collections.OrderedDict(k="v"), "version": _TEXT,
                           "clientRequestToken": _TOKEN}),
        ("DescribeCluster", {"name": _TEXT}),
        ("ListClusters", {"include": (_TEXT, "all"), "nextToken": _TEXT}),
    ],
)
@pytest.mark.parametrize("typed", [False, True])
def test_newly_accepted_forms_are_sent_as_botocore_sends_them(
    boto_client: Any, op_name: str, params: dict[str, Any], typed: bool
) -> None:
    shape = operation(op_name).input_shape
    params = {k: params[k] for k in shape.members if k in params}  # botocore keeps the order
    theirs = _capture_botocore(boto_client, op_name, params)
    ours = _send_ours(op_name, params, typed=typed)
    assert (ours.method, str(ours.url)) == (theirs.method, theirs.url)
    assert ours.content == (theirs.body or b"")
    assert ours.headers["Authorization"] == _botocore_authorization(ours)
