"""eks_async reads every answer the model describes as botocore does, and fails typed.

Outputs drawn from botocore's model are encoded as EKS sends them, parsed by botocore's
rest-json parser and by eks_async, and compared value by value. Every error shape maps to
its class with its fields; broken bodies give typed errors with status and request id.
"""

from __future__ import annotations

import datetime
import enum
import json
from typing import Any

import attrs
import httpx
import pytest
from botocore.model import Shape
from botocore.parsers import RestJSONParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eks_async
from eks_async._generated.operations import OPERATIONS
from eks_async._generated.shapes import SHAPES
from eks_async._restjson.parse import parse_error, parse_output

from ._botomodel import operation, operation_names, output_strategy, service_model


def _output_cls(op: Any) -> type:
    from eks_async._generated import models
    from eks_async._generated.shapes import SHAPES

    cls: type = getattr(models, SHAPES[op.output_shape][1])
    return cls


def _wire(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def _as_boto(value: Any, shape_name: str) -> Any:
    """eks_async's typed value in botocore's dict form, for comparison."""
    if value is None:  # a null item of a list or value of a map
        return None
    shape = SHAPES[shape_name]
    if shape[0] == "structure":
        out = {}
        for py, model_name, _wire_name, target, _loc, _req, _tok in shape[2]:
            item = getattr(value, py)
            if item is not None:
                out[model_name] = _as_boto(item, target)
        return out
    if shape[0] == "list":
        return [_as_boto(v, shape[1]) for v in value]
    if shape[0] == "map":
        return {k: _as_boto(v, shape[2]) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _botocore_parse(op_name: str, body: bytes, status: int = 200) -> dict[str, Any]:
    response = {"status_code": status, "headers": {"x-amzn-requestid": "rid-1"}, "body": body}
    parsed = RestJSONParser().parse(response, operation(op_name).output_shape)
    parsed.pop("ResponseMetadata", None)
    return dict(parsed)


@pytest.mark.parametrize("op_name", operation_names())
def test_output_parses_like_botocore(op_name: str) -> None:
    op = OPERATIONS[op_name]

    @settings(max_examples=15, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=output_strategy(op_name))
    def check(data: dict[str, Any]) -> None:
        body = json.dumps(_wire(data)).encode()
        ours = parse_output(op, 200, body, "rid-1")
        assert isinstance(ours, _output_cls(op))
        assert ours.response_metadata.request_id == "rid-1"
        assert ours.response_metadata.http_status == 200
        assert _as_boto(ours, op.output_shape) == _botocore_parse(op_name, body)

    check()


def test_timestamps_are_aware_utc_and_unknown_members_ignored() -> None:
    body = json.dumps(
        {
            "association": {
                "clusterName": "prod",
                "associationId": "a-abcdefghijklmnopq",
                "createdAt": 1700000000.5,
                "somethingNew": {"x": 1},
            },
            "brandNewTopLevel": [1, 2],
        }
    ).encode()
    out = parse_output(OPERATIONS["DescribePodIdentityAssociation"], 200, body, "r")
    assert out.association.created_at == datetime.datetime(
        2023, 11, 14, 22, 13, 20, 500000, tzinfo=datetime.UTC
    )
    assert out.association.cluster_name == "prod"


def test_unknown_enum_values_stay_strings() -> None:
    body = json.dumps({"update": {"id": "u1", "status": "Paused", "type": "VersionUpdate"}})
    out = parse_output(OPERATIONS["DescribeUpdate"], 200, body.encode(), "r")
    assert out.update.status == "Paused"
    assert not isinstance(out.update.status, enum.Enum)
    assert out.update.type is eks_async.UpdateType.VERSION_UPDATE


ERROR_SHAPES = sorted(n for n, s in service_model()._shape_resolver._shape_map.items()
                      if s.get("exception"))


@pytest.mark.parametrize("code", ERROR_SHAPES)
@pytest.mark.parametrize("via", ["header", "type", "code"])
def test_every_error_shape_maps_to_its_class(code: str, via: str) -> None:
    shape = service_model().shape_for(code)
    body: dict[str, Any] = {"message": f"boom {code}"}
    for name, member in shape.members.items():
        if name != "message":
            body[name] = ["z1", "z2"] if member.type_name == "list" else f"v-{name}"
    headers = {}
    if via == "header":
        headers["x-amzn-errortype"] = (
            f"{code}:http://internal.amazon.com/coral/com.amazonaws.eks.v20171101/"
        )
    elif via == "type":
        body["__type"] = f"com.amazonaws.eks.v20171101#{code}"
    else:
        body["code"] = code
    status = shape.metadata["error"]["httpStatusCode"]
    error = parse_error("Op", status, headers, json.dumps(body).encode(), "rid-9")
    cls = getattr(eks_async, code)
    assert type(error) is cls
    assert isinstance(error, eks_async.ServiceError)
    assert (error.code, error.message, error.http_status, error.request_id) == (
        code, f"boom {code}", status, "rid-9"
    )
    for py, wire in cls._fields:
        assert getattr(error, py) == body[wire]


def test_unmodelled_code_is_a_service_error_carrying_it() -> None:
    error = parse_error(
        "DescribeCluster", 429, {"x-amzn-errortype": "TooManyRequestsException:http://x/"},
        b'{"Message": "Too Many Requests"}', "rid",
    )
    assert type(error) is eks_async.ServiceError
    assert error.code == "TooManyRequestsException"
    assert error.message == "Too Many Requests"


@pytest.mark.parametrize("body", [b"", b"<html>502 Bad Gateway</html>", b'{"message": "cut', b"[1]"])
def test_broken_error_bodies_are_typed(body: bytes) -> None:
    error = parse_error("DescribeCluster", 502, {}, body, "rid-5")
    assert isinstance(error, eks_async.ServiceError)
    assert (error.code, error.http_status, error.request_id) == ("502", 502, "rid-5")


@pytest.mark.parametrize(
    "body",
    [
        # botocore fails on these with a bare exception (TypeError, AttributeError,
        # ValueError, RuntimeError, UnicodeDecodeError).
        b"null", b"[]", b'"text"', b"1", b'{"cluster": "text"}', b'{"cluster": [1]}',
        b'{"cluster": {"createdAt": "yesterday"}}', b'{"cluster": {"createdAt": 1e20}}',
        b'{"cluster": {"createdAt": NaN}}', b'{"cluster": {"tags": [1]}}', b"\xff{}",
        # botocore reads these as an answer with no members, or passes a value of the wrong
        # type through or coerces it: a wrong success, refused here.
        b"not json", b'{"cluster": {"name": "x"', b" ", b'{"cluster": {"name": 5}}',
        b'{"cluster": {"name": {"x": 1}}}', b'{"cluster": {"arn": null, "tags": "ab"}}',
        b'{"cluster": {"resourcesVpcConfig": {"subnetIds": "abc"}}}',
        b'{"cluster": {"resourcesVpcConfig": {"endpointPublicAccess": 1}}}',
        b'{"cluster": {"resourcesVpcConfig": {"endpointPublicAccess": "TRUE"}}}',
        b'{"cluster": {"createdAt": true}}', b'{"cluster": {"status": 3}}',
        '{"cluster": {"name": "x"}}'.encode("utf-16"),
    ],
)
def test_broken_success_bodies_raise_response_parse_error(body: bytes) -> None:
    with pytest.raises(eks_async.ResponseParseError) as info:
        parse_output(OPERATIONS["DescribeCluster"], 200, body, "rid-7")
    assert info.value.http_status == 200
    assert info.value.request_id == "rid-7"


@given(body=st.binary(max_size=200), status=st.sampled_from([200, 400, 404, 429, 500, 503]))
@settings(max_examples=200, deadline=None, database=None)
def test_any_body_gives_an_output_or_a_typed_error(body: bytes, status: int) -> None:
    op = OPERATIONS["DescribePodIdentityAssociation"]
    if status >= 300:
        assert isinstance(parse_error(op.name, status, {}, body, "r"), eks_async.ServiceError)
        return
    try:
        out = parse_output(op, status, body, "r")
    except eks_async.ResponseParseError:
        return
    assert isinstance(out, _output_cls(op))


class _Answer(httpx.AsyncBaseTransport):
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status, self.body, self.headers = status, body, headers

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(self.status, content=self.body, headers=self.headers)


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (404, b'{"message":"No cluster found for name: prod.","clusterName":"prod"}',
         {"x-amzn-ErrorType": "ResourceNotFoundException:http://internal.amazon.com/coral/"
                              "com.amazonaws.eks.v20171101/"},
         eks_async.ResourceNotFoundException),
        (200, b"null", {}, eks_async.ResponseParseError),
        (503, b"", {}, eks_async.ServiceError),
    ],
)
async def test_client_raises_typed_errors_with_request_id(
    status: int, body: bytes, headers: dict[str, str], expected: type[Exception]
) -> None:
    headers = {**headers, "x-amzn-RequestId": "req-123"}
    async with eks_async.EKSClient(
        region="us-west-2", aws_access_key_id="AKID", aws_secret_access_key="secret",
        transport=_Answer(status, body, headers),
    ) as eks:
        with pytest.raises(expected) as info:
            await eks.describe_cluster(name="prod")
    assert info.value.request_id == "req-123"  # type: ignore[attr-defined]
    if isinstance(info.value, eks_async.ResourceNotFoundException):
        assert info.value.cluster_name == "prod"
        assert info.value.operation == "DescribeCluster"


def test_models_are_frozen_slotted_keyword_only() -> None:
    cls = eks_async.PodIdentityAssociation
    assert attrs.has(cls)
    assert "__slots__" in cls.__dict__
    with pytest.raises(TypeError):
        cls("prod")  # type: ignore[misc]
    assoc = cls(cluster_name="prod")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        assoc.cluster_name = "other"  # type: ignore[misc]


# --- nulls and empty answers, as botocore's rest-json parser reads them --------------------


def _answer(shape: Shape, depth: int = 0) -> st.SearchStrategy[Any]:
    """JSON values of ``shape`` as EKS might send them, nulls included at every level."""
    kind = shape.type_name
    if kind == "string":
        return st.sampled_from(shape.enum) if shape.enum else st.text(max_size=8)
    if kind == "integer":  # 5 or 5.0: botocore's int() reads both as 5
        return st.integers(-(2**40), 2**40) | st.integers(-(2**20), 2**20).map(float)
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":  # epoch seconds, whole or with milliseconds
        return st.integers(946_684_800, 4_102_444_800) | st.integers(
            946_684_800_000, 4_102_444_800_000
        ).map(lambda ms: ms / 1000)
    size = 3 if depth < 3 else 1
    if kind == "list":
        return st.lists(st.none() | _answer(shape.member, depth + 1), max_size=size)
    if kind == "map":
        return st.dictionaries(
            _answer(shape.key, depth + 1), st.none() | _answer(shape.value, depth + 1),
            max_size=size,
        )
    assert kind == "structure"
    # Members the model requires are present: eks_async's classes require them
    # (test_required_output_members_missing_are_refused).
    required = set(shape.required_members)
    return st.fixed_dictionaries(
        {
            member.serialization.get("name", name): _answer(member, depth + 1)
            for name, member in shape.members.items()
            if name in required
        },
        optional={
            member.serialization.get("name", name): st.none() | _answer(member, depth + 1)
            for name, member in shape.members.items()
            if name not in required
        },
    )


@pytest.mark.parametrize("op_name", operation_names())
def test_answers_with_nulls_parse_like_botocore(op_name: str) -> None:
    op = OPERATIONS[op_name]
    shape = operation(op_name).output_shape

    @settings(max_examples=15, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=_answer(shape))
    def check(data: dict[str, Any]) -> None:
        body = json.dumps(data).encode()
        ours = parse_output(op, 200, body, "rid-1")
        assert isinstance(ours, _output_cls(op))
        assert _as_boto(ours, op.output_shape) == _botocore_parse(op_name, body)

    check()


@pytest.mark.parametrize("op_name", operation_names())
@pytest.mark.parametrize("body", [b"", b"{}"])
def test_empty_answers_give_every_member_none(op_name: str, body: bytes) -> None:
    op = OPERATIONS[op_name]
    ours = parse_output(op, 200, body, "rid-2")
    assert isinstance(ours, _output_cls(op))
    assert _botocore_parse(op_name, body) == {}
    for py, *_ in SHAPES[op.output_shape][2]:
        assert getattr(ours, py) is None
    assert ours.response_metadata.request_id == "rid-2"


def test_nulls_in_lists_maps_and_members() -> None:
    body = json.dumps(
        {
            "nodegroup": {
                "nodegroupName": None,
                "subnets": ["s1", None],
                "labels": {"a": None, "b": "x"},
                "taints": [None, {"key": "k", "value": None}],
                "scalingConfig": None,
                "diskSize": 20.0,
            }
        }
    ).encode()
    op = OPERATIONS["DescribeNodegroup"]
    ours = parse_output(op, 200, body, "r")
    group = ours.nodegroup
    assert group.nodegroup_name is None and group.scaling_config is None
    assert group.subnets == ["s1", None]
    assert group.labels == {"a": None, "b": "x"}
    assert group.taints[0] is None and group.taints[1].key == "k"
    assert group.taints[1].value is None
    assert group.disk_size == 20 and type(group.disk_size) is int
    assert _as_boto(ours, op.output_shape) == _botocore_parse("DescribeNodegroup", body)


async def test_client_gives_an_empty_output_for_an_empty_answer() -> None:
    async with eks_async.EKSClient(
        region="us-west-2", aws_access_key_id="AKID", aws_secret_access_key="secret",
        transport=_Answer(200, b"", {"x-amzn-RequestId": "req-0"}),
    ) as eks:
        out = await eks.describe_cluster(name="prod")
    assert out.cluster is None
    assert out.response_metadata.request_id == "req-0"


@pytest.mark.parametrize(
    "cluster",
    [{"outpostConfig": {"outpostArns": ["a"]}},
     {"outpostConfig": {"outpostArns": ["a"], "controlPlaneInstanceType": None}}],
)
def test_required_output_members_missing_are_refused(cluster: dict[str, Any]) -> None:
    """botocore returns the structure without them; eks_async's class requires them."""
    body = json.dumps({"cluster": cluster}).encode()
    assert _botocore_parse("DescribeCluster", body) == {
        "cluster": {"outpostConfig": {"outpostArns": ["a"]}}
    }
    with pytest.raises(eks_async.ResponseParseError):
        parse_output(OPERATIONS["DescribeCluster"], 200, body, "r")
