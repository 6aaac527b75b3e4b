"""eks_async refuses exactly the parameters botocore's validator refuses, for every operation.

Parameters are drawn valid from botocore's model and then broken (or not) in place: members
deleted, unknown members added, values replaced by other types, empty or below-minimum values,
``None``, dict-like objects that are not dicts, map keys replaced, nested deep inside structures,
lists and maps. botocore's ``ParamValidator`` is the oracle: eks_async raises
``ParamValidationError`` exactly when it reports errors, with two documented exceptions:
a URI label that is "", "." or "..", and text that UTF-8 cannot encode (a lone surrogate), are
refused by eks_async only. What eks_async accepts, it sends as botocore's serializer does.
"""

from __future__ import annotations

import collections
import copy
import datetime
import decimal
import enum
import types
import uuid
from typing import Any

import botocore
import pytest
from botocore.awsrequest import prepare_request_dict
from botocore.model import Shape
from botocore.serialize import create_serializer
from botocore.validate import ParamValidator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eks_async
from eks_async._generated.operations import OPERATIONS
from eks_async._restjson.serialize import serialize, values_from_params

from ._botomodel import input_strategy, operation, operation_names

_ENDPOINT = "https://eks.us-west-2.amazonaws.com"
_LONE_SURROGATE = "a\ud800b"


class _Text(str):
    """A str subclass whose str() is not its value: sent as its value, as botocore does."""

    def __str__(self) -> str:
        return "not the value"


_TEXT = _Text("sub/class text")


class _Number(enum.IntEnum):
    SEVEN = 7


_ANY: tuple[Any, ...] = (
    None, 0, 1, -1, True, False, 1.5, "", "x", [], ("x",), {}, {"k": "v"}, b"x",
    decimal.Decimal("1"), datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
    types.MappingProxyType({}), collections.OrderedDict(),
)


def _replacements(shape: Shape, current: Any) -> list[Any]:
    """Values to put where a value of ``shape`` is: right and wrong, in many ways."""
    kind = shape.type_name
    minimum = shape.metadata.get("min", 0)
    out = list(_ANY)
    if kind == "string":
        out += ["a" * max(minimum - 1, 0), "a" * minimum, ".", "..", "é", "/?#&=+ %",
                _LONE_SURROGATE, "\udfff", _TEXT, "x" * 300]
    elif kind == "integer":
        out += [minimum - 1, minimum, minimum + 1, 2**40, -(2**40), 1.0, "5", _Number.SEVEN]
    elif kind == "boolean":
        out += ["true", 0.0]
    elif kind == "list":
        out += [(), "abc", [None], [1], [""], [_LONE_SURROGATE]]
        if isinstance(current, list):
            out += [tuple(current), [*current, None], current[:1], current * 2]
    elif kind == "map":
        out += [{"": "v"}, {"k": None}, {1: "v"}, {"k": 1}, {"k": ""}, {_LONE_SURROGATE: "v"}]
        if isinstance(current, dict):
            out += [collections.OrderedDict(current), types.MappingProxyType(current)]
    elif kind == "structure":
        out += [{"bogus": 1}]
        if isinstance(current, dict):
            out += [collections.OrderedDict(current), types.MappingProxyType(current),
                    collections.defaultdict(list, current)]
    return out


_KEYS: tuple[Any, ...] = ("", "k", "a" * 200, 1, True, None, 1.5, b"k", _LONE_SURROGATE, _TEXT)


def _nodes(value: Any, shape: Shape, found: list[tuple[Any, ...]]) -> None:
    """Every place a mutation can go: ("value", container, key, shape), ("key", map, key,
    key shape) and ("struct", dict, shape). Only mutable containers are entered."""
    kind = shape.type_name
    if kind == "structure" and type(value) is dict:
        found.append(("struct", value, shape))
        for name, item in value.items():
            member = shape.members.get(name)
            if member is not None:
                found.append(("value", value, name, member))
                _nodes(item, member, found)
    elif kind == "list" and type(value) is list:
        for i, item in enumerate(value):
            found.append(("value", value, i, shape.member))
            _nodes(item, shape.member, found)
    elif kind == "map" and type(value) is dict:
        for key, item in value.items():
            found.append(("key", value, key, shape.key))
            found.append(("value", value, key, shape.value))
            _nodes(item, shape.value, found)


def _mutate(data: st.DataObject, params: dict[str, Any], shape: Shape) -> None:
    found: list[tuple[Any, ...]] = []
    _nodes(params, shape, found)
    node = data.draw(st.sampled_from(found))
    if node[0] == "value":
        _, container, key, member = node
        container[key] = data.draw(st.sampled_from(_replacements(member, container[key])))
    elif node[0] == "key":
        _, mapping, old, _key_shape = node
        new = data.draw(st.sampled_from(_KEYS))
        items = [(new if k == old else k, v) for k, v in mapping.items()]
        mapping.clear()
        mapping.update(items)
    else:
        _, struct, struct_shape = node
        names = list(struct_shape.members)
        choice = data.draw(st.sampled_from(["delete", "unknown", "python name"]))
        if choice == "delete" and struct:
            del struct[data.draw(st.sampled_from(sorted(struct)))]
        elif choice == "unknown" or not names:
            struct["notAMember"] = "x"
        else:  # eks_async's own (snake_case) name of a member is not a boto3 name
            name = data.draw(st.sampled_from(names))
            if botocore.xform_name(name) != name:
                struct[botocore.xform_name(name)] = "x"


def _has_unencodable(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_unencodable(k) or _has_unencodable(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_unencodable(v) for v in value)
    return False


def _refused_by_eks_only(params: dict[str, Any], shape: Shape) -> bool:
    """The two documented differences, for parameters botocore accepts."""
    for name, member in shape.members.items():
        if member.serialization.get("location") == "uri" and params.get(name) in ("", ".", ".."):
            return True
    return _has_unencodable(params)


def _tokens(op_name: str) -> list[str]:
    shape = operation(op_name).input_shape
    assert shape is not None
    return [n for n, m in shape.members.items() if m.metadata.get("idempotencyToken")]


_SERIALIZER = create_serializer("rest-json", include_validation=False)


def _botocore_wire(op_name: str, params: dict[str, Any]) -> tuple[str, bytes]:
    request = _SERIALIZER.serialize_to_request(params, operation(op_name))
    prepare_request_dict(request, endpoint_url=_ENDPOINT)
    url = str(request["url"])
    assert url.startswith(_ENDPOINT)
    return url[len(_ENDPOINT):], request["body"] or b""


def _check(op_name: str, params: dict[str, Any]) -> bool:
    """Assert parity for ``params``; True when both refuse."""
    model = operation(op_name)
    shape = model.input_shape
    assert shape is not None
    botocore_refuses = ParamValidator().validate(params, shape).has_errors()
    expected = botocore_refuses or _refused_by_eks_only(params, shape)
    op = OPERATIONS[op_name]
    try:
        path, body = serialize(op, values_from_params(op, params))
    except eks_async.ParamValidationError as exc:
        assert expected, f"eks_async refused what botocore accepts: {exc}\n{params!r}"
        assert exc.operation == op_name
        return True
    assert not expected, f"eks_async accepted what botocore refuses:\n{params!r}"
    if all(t in params for t in _tokens(op_name)):  # else eks_async filled one in
        assert (path, body) == _botocore_wire(op_name, params)
    return False


@pytest.mark.parametrize("op_name", operation_names())
def test_refuses_exactly_what_botocore_refuses(op_name: str) -> None:
    shape = operation(op_name).input_shape
    assert shape is not None
    tokens = _tokens(op_name)
    outcomes: list[bool] = []

    @settings(max_examples=20, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        drawn = data.draw(input_strategy(op_name))
        for token in tokens:
            drawn.setdefault(token, str(uuid.uuid4()))
        params = {k: drawn[k] for k in shape.members if k in drawn}  # botocore's body order
        for _ in range(data.draw(st.integers(0, 3))):
            _mutate(data, params, shape)
        outcomes.append(_check(op_name, params))

    check()
    # The draws cover both sides for every operation.
    assert True in outcomes
    assert False in outcomes


def _full(shape: Shape, depth: int = 0, *, label: bool = False) -> Any:
    """A valid value of ``shape`` with every member, list item and map entry it can have."""
    kind = shape.type_name
    minimum = shape.metadata.get("min", 0)
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        return "v" * max(minimum, 2 if label else 1)
    if kind == "integer":
        return max(minimum, 1)
    if kind == "boolean":
        return True
    if kind == "timestamp":  # pragma: no cover - no EKS input has one
        return datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    if kind == "list":
        return [_full(shape.member, depth + 1) for _ in range(max(minimum, 1))]
    if kind == "map":
        return {_full(shape.key, depth + 1): _full(shape.value, depth + 1)}
    assert kind == "structure"
    if depth > 20:  # pragma: no cover - EKS's shapes are not that deep
        return {}
    return {
        name: _full(member, depth + 1, label=member.serialization.get("location") == "uri")
        for name, member in shape.members.items()
    }


def _single_mutations(shape: Shape, base: dict[str, Any]) -> list[dict[str, Any]]:
    """``base`` broken (or not) in one place, in every way ``_mutate`` knows, everywhere."""
    found: list[tuple[Any, ...]] = []
    _nodes(base, shape, found)
    out: list[dict[str, Any]] = []
    for index, node in enumerate(found):
        if node[0] == "value":
            count = len(_replacements(node[3], node[1][node[2]]))
        elif node[0] == "key":
            count = len(_KEYS)
        else:
            count = len(node[2].members) + 2
        for choice in range(count):
            params = copy.deepcopy(base)
            again: list[tuple[Any, ...]] = []
            _nodes(params, shape, again)
            target = again[index]
            if target[0] == "value":
                _, container, key, member = target
                container[key] = _replacements(member, container[key])[choice]
            elif target[0] == "key":
                _, mapping, old, _ = target
                items = [(_KEYS[choice] if k == old else k, v) for k, v in mapping.items()]
                mapping.clear()
                mapping.update(items)
            else:
                _, struct, struct_shape = target
                names = list(struct_shape.members)
                if choice < len(names):
                    struct.pop(names[choice], None)
                elif choice == len(names):
                    struct["notAMember"] = "x"
                else:
                    struct["not_a_member"] = "x"
            out.append(params)
    return out


@pytest.mark.parametrize("op_name", operation_names())
def test_every_single_mutation_of_a_full_request(op_name: str) -> None:
    """Deterministic: every member present, then each place broken in each way, one at a time."""
    shape = operation(op_name).input_shape
    assert shape is not None
    base = _full(shape)
    assert _check(op_name, base) is False
    outcomes = [_check(op_name, params) for params in _single_mutations(shape, base)]
    assert True in outcomes
    assert False in outcomes


# --- the rules, one by one, on the operations where they matter ----------------------------


def _refused(op_name: str, params: dict[str, Any]) -> bool:
    return _check(op_name, params)


_CLUSTER = {"name": "prod", "roleArn": "arn:aws:iam::1:role/r", "resourcesVpcConfig": {}}


@pytest.mark.parametrize(
    ("op_name", "params", "refused"),
    [
        # Maps have no length check in botocore, TagMap's min of 1 notwithstanding.
        ("TagResource", {"resourceArn": "arn:x", "tags": {}}, False),
        ("CreateCluster", {**_CLUSTER, "tags": {}}, False),
        # Lists do: TagKeyList has a min of 1.
        ("UntagResource", {"resourceArn": "arn:x", "tagKeys": []}, True),
        ("UntagResource", {"resourceArn": "arn:x", "tagKeys": ("k",)}, False),
        # Integers: bool is an int; the minimum applies to it (False < 1).
        ("ListClusters", {"maxResults": True}, False),
        ("ListClusters", {"maxResults": False}, True),
        ("ListClusters", {"maxResults": 0}, True),
        ("ListClusters", {"maxResults": 10**6}, False),  # no max check
        ("ListClusters", {"maxResults": 5.0}, True),
        ("ListClusters", {"maxResults": "5"}, True),
        # Booleans are bools only.
        ("DeleteAddon", {"clusterName": "c", "addonName": "a", "preserve": 1}, True),
        # None is refused wherever it is given, even for optional members.
        ("ListClusters", {"nextToken": None}, True),
        ("CreateCluster", {**_CLUSTER, "tags": {"k": None}}, True),
        ("CreateCluster", {**_CLUSTER, "clientRequestToken": None}, True),
        # Structures and maps are dicts (subclasses too), not any mapping.
        ("CreateCluster", {**_CLUSTER, "resourcesVpcConfig": types.MappingProxyType({})}, True),
        ("CreateCluster", {**_CLUSTER, "tags": types.MappingProxyType({"k": "v"})}, True),
        ("CreateCluster", {**_CLUSTER, "tags": collections.OrderedDict(k="v")}, False),
        # Map keys are checked against the key shape (TagKey: min 1).
        ("CreateCluster", {**_CLUSTER, "tags": {"": "v"}}, True),
        # Strings: the minimum length; no maximum, no pattern, no enum check.
        ("CreateCluster", {**_CLUSTER, "name": ""}, True),
        ("CreateCluster", {**_CLUSTER, "name": "x" * 500}, False),
        ("DescribeClusterVersions", {"status": "no-such-status"}, False),
        # Unknown members, and eks_async's own member names, are unknown to boto3.
        ("DescribeCluster", {"name": "prod", "cluster_name": "prod"}, True),
        ("DescribeCluster", {}, True),
        # A label botocore sends but eks_async refuses (documented), and un-encodable text.
        ("DescribeCluster", {"name": ""}, True),
        ("DescribeCluster", {"name": ".."}, True),
        ("DescribeCluster", {"name": _LONE_SURROGATE}, True),
        ("ListClusters", {"nextToken": _LONE_SURROGATE}, True),
        ("ListClusters", {"include": ["all", _LONE_SURROGATE]}, True),
        ("CreateCluster", {**_CLUSTER, "version": _LONE_SURROGATE}, True),
        ("CreateCluster", {**_CLUSTER, "tags": {_LONE_SURROGATE: "v"}}, True),
        # Text with a str() of its own is sent as its value, in labels, queries and bodies.
        ("DescribeCluster", {"name": _TEXT}, False),
        ("ListClusters", {"nextToken": _TEXT, "include": [_TEXT]}, False),
        ("CreateCluster", {**_CLUSTER, "version": _TEXT}, False),
    ],
)
def test_rule(op_name: str, params: dict[str, Any], refused: bool) -> None:
    assert _refused(op_name, params) is refused


async def test_typed_calls_follow_the_same_rules() -> None:
    op = OPERATIONS["TagResource"]
    assert serialize(op, ("arn:x", {})) == ("/tags/arn%3Ax", b'{"tags": {}}')
    op = OPERATIONS["ListClusters"]
    path, _ = serialize(op, (True, None, None))
    assert path == "/clusters?maxResults=True"
    for bad in [(False, None, None), (None, _LONE_SURROGATE, None)]:
        with pytest.raises(eks_async.ParamValidationError):
            serialize(op, bad)
    with pytest.raises(eks_async.ParamValidationError) as info:
        serialize(OPERATIONS["DescribeCluster"], ("a\udc80",))
    assert info.value.path == "name"


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC),
        datetime.datetime(2024, 5, 6, 7, 8, 9, 3691),
        datetime.datetime(2024, 5, 6, 7, 8, 9, 123456,
                          tzinfo=datetime.timezone(datetime.timedelta(hours=-7))),
        "2024-05-06T07:08:09Z", "2024-05-06", "2024-05-06T07:08:09.5+02:00", "1714979289",
        1714979289, 1714979289.25, True, "not a time", None, [], "", b"1714979289",
    ],
)
def test_timestamps_as_botocore_takes_and_sends_them(value: Any) -> None:
    """No EKS input has a timestamp today; the converter still follows botocore exactly."""
    from botocore.model import ShapeResolver

    from eks_async._restjson.serialize import _Invalid, converter

    shape = ShapeResolver({"T": {"type": "timestamp"}}).get_shape_by_name("T")
    botocore_refuses = ParamValidator().validate(value, shape).has_errors()
    convert = converter("Timestamp")
    assert convert is not None
    try:
        ours = convert(value, "when")
    except _Invalid:
        assert botocore_refuses
        return
    assert not botocore_refuses
    assert ours == _SERIALIZER._convert_timestamp_to_str(value, "unixtimestamp")
