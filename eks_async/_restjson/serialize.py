"""rest-json requests from typed values: URI labels, query string and JSON body.

Each operation is compiled once, on first use, into a plan (its members, where each goes and
the function that turns the Python value into wire form). A call then walks the plan: no
reflection over the model per call. Values are checked while they are converted, so a bad
parameter raises ``ParamValidationError`` before anything is sent.
"""

from __future__ import annotations

import calendar
import datetime
import importlib
import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import quote

from .._exceptions import ParamValidationError
from .._operation import OperationSpec
from .walk import Compiled, model_class, shape_row

_SAFE: Final = "-._~"
_DOT_SEGMENTS: Final = frozenset({".", ".."})
_LABEL = re.compile(r"\{([^}+]+)(\+?)\}")

ToWire = Callable[[Any, str], Any]


class _Invalid(Exception):
    """A value is wrong at ``path``; turned into ParamValidationError with the operation."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem


def _type_name(value: object) -> str:
    return type(value).__name__


# --- value converters, one per shape, built once (``converter``, below) ---------------


def _unencodable(value: str, path: str) -> _Invalid | None:
    """The error for text UTF-8 cannot encode (a lone surrogate), else ``None``."""
    if value.isascii():
        return None
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        return _Invalid(path, f"cannot be encoded as UTF-8 ({exc.reason} at {exc.start})")
    return None


def _string(minimum: int | None) -> ToWire:
    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, str):
            raise _Invalid(path, f"expected a str, got {_type_name(value)}")
        if minimum is not None and len(value) < minimum:
            raise _Invalid(path, f"length {len(value)} is below the minimum of {minimum}")
        if not value.isascii():
            bad = _unencodable(value, path)
            if bad is not None:
                raise bad
        return value

    return convert


def _integer(minimum: int | None) -> ToWire:
    # As botocore's validator: any int, bool included (True is sent as JSON true).
    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, int):
            raise _Invalid(path, f"expected an int, got {_type_name(value)}")
        if minimum is not None and value < minimum:
            raise _Invalid(path, f"{value} is below the minimum of {minimum}")
        return value

    return convert


def _boolean(value: Any, path: str) -> Any:
    if not isinstance(value, bool):
        raise _Invalid(path, f"expected a bool, got {_type_name(value)}")
    return value


def _timestamp(value: Any, path: str) -> Any:
    """A timestamp as botocore takes it (datetime, ISO 8601 text, epoch seconds), as epoch."""
    if isinstance(value, datetime.datetime):
        when = value
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
    else:
        # Anything else is read by botocore's own reader, so that exactly the same text and
        # numbers are accepted. (No EKS input has a timestamp member today.)
        botocore_utils = importlib.import_module("botocore.utils")  # untyped, hence Any
        try:
            when = botocore_utils.parse_to_aware_datetime(value)
        except (TypeError, ValueError, AttributeError, OverflowError, OSError, RuntimeError):
            raise _Invalid(
                path, f"expected a datetime, ISO 8601 text or epoch seconds, got {value!r:.40}"
            ) from None
    seconds = calendar.timegm(when.utctimetuple())
    if when.microsecond:
        # botocore's default precision: microseconds added before dividing, rounded once.
        return (seconds * 10**6 + when.microsecond) / 10**6
    return seconds


def _list(member: str, minimum: int | None) -> ToWire:
    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, list | tuple):
            raise _Invalid(path, f"expected a list, got {_type_name(value)}")
        if minimum is not None and len(value) < minimum:
            raise _Invalid(path, f"{len(value)} items is below the minimum of {minimum}")
        inner = converter(member)
        if inner is None:  # pragma: no cover - every shape has a converter
            return list(value)
        return [inner(item, f"{path}[{i}]") for i, item in enumerate(value)]

    return convert


def _map(key: str, value_shape: str) -> ToWire:
    # botocore's validator checks no length of a map (TagMap's min of 1 included): {} is sent.
    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, Mapping):
            raise _Invalid(path, f"expected a mapping, got {_type_name(value)}")
        check_key = converter(key)
        inner = converter(value_shape)
        out = {}
        for k, v in value.items():
            where = f"{path}[{k!r}]"
            if check_key is not None:
                check_key(k, where)
            out[k] = inner(v, where) if inner is not None else v
        return out

    return convert


def _structure(shape_name: str) -> ToWire:
    _, cls_name, members = shape_row(shape_name)
    cls = model_class(shape_name, cls_name)
    # (python name, wire name, converter, required)
    plan: list[tuple[str, str, ToWire | None, bool]] = []

    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, cls):
            raise _Invalid(path, f"expected {cls_name}, got {_type_name(value)}")
        if not plan:
            plan.extend((m[0], m[2], converter(m[3]), m[5]) for m in members)
        out: dict[str, Any] = {}
        for py, wire, conv, required in plan:
            item = getattr(value, py)
            if item is None:
                if required:
                    raise _Invalid(f"{path}.{py}", "is required")
                continue
            out[wire] = conv(item, f"{path}.{py}") if conv is not None else item
        return out

    return convert


#: ``converter(shape)``: the function that checks a typed value of the shape and returns its
#: JSON form; ``None`` where the value is sent as it is.
converter: Compiled[ToWire] = Compiled(
    string=lambda _, shape: _string(shape[1]),
    integer=lambda _, shape: _integer(shape[1]),
    boolean=lambda _, shape: _boolean,
    timestamp=lambda _, shape: _timestamp,
    list=lambda _, shape: _list(shape[1], shape[2]),
    map=lambda _, shape: _map(shape[1], shape[2]),
    structure=lambda name, _: _structure(name),
)


# --- operations ---------------------------------------------------------------------------


class RequestPlan:
    """How one operation's values become method, path, query and body."""

    __slots__ = ("body_members", "empty_body", "method", "name", "path_parts", "query_members")

    def __init__(self, op: OperationSpec[Any]) -> None:
        _, _, members = shape_row(op.input_shape)
        self.name = op.name
        self.method = op.method
        index_by_wire = {m[2]: i for i, m in enumerate(members) if m[4] == "uri"}
        # The path as pieces: (literal text, -1, ...) or ("", member index, greedy, name).
        parts: list[tuple[str, int, bool, str]] = []
        pos = 0
        for match in _LABEL.finditer(op.uri):
            if match.start() > pos:
                parts.append((op.uri[pos : match.start()], -1, False, ""))
            i = index_by_wire[match.group(1)]
            parts.append(("", i, bool(match.group(2)), members[i][0]))
            pos = match.end()
        if pos < len(op.uri):
            parts.append((op.uri[pos:], -1, False, ""))
        self.path_parts = tuple(parts)
        # (index, python name, wire name, converter, required, idempotency token)
        self.query_members = tuple(
            (i, m[0], m[2], converter(m[3]), m[5], m[6], shape_row(m[3])[0])
            for i, m in enumerate(members)
            if m[4] == "querystring"
        )
        self.body_members = tuple(
            (i, m[0], m[2], converter(m[3]), m[5], m[6])
            for i, m in enumerate(members)
            if m[4] is None
        )
        for i, m in enumerate(members):
            if m[4] not in (None, "uri", "querystring"):  # pragma: no cover - not in EKS
                raise AssertionError(f"{op.name}: unsupported location {m[4]} ({i})")
        self.empty_body = b"{}" if self.body_members else b""

    def serialize(self, values: tuple[Any, ...]) -> tuple[str, bytes]:
        """``(path with query, body)`` for these values, checked; raises ``_Invalid``."""
        path: list[str] = []
        for literal, i, greedy, py in self.path_parts:
            if i < 0:
                path.append(literal)
                continue
            value = values[i]
            if value is None:
                raise _Invalid(py, "is required")
            if not isinstance(value, str):
                raise _Invalid(py, f"expected a str, got {_type_name(value)}")
            if not value or value in _DOT_SEGMENTS:
                # "", "." and ".." would address another resource once the path is normalized.
                raise _Invalid(py, f"{value!r} cannot be a path segment of the URL")
            if not value.isascii():
                bad = _unencodable(value, py)
                if bad is not None:
                    raise bad
            path.append(quote(value, safe="/~" if greedy else _SAFE))
        url = "".join(path)
        if self.query_members:
            pairs: list[str] = []
            given = False  # botocore writes "?" once any query member is given, even []
            for i, py, wire, conv, required, token, kind in self.query_members:
                value = values[i]
                if value is None and token:
                    value = str(uuid.uuid4())
                if value is None:
                    if required:
                        raise _Invalid(py, "is required")
                    continue
                given = True
                if conv is not None:
                    value = conv(value, py)
                key = quote(wire, safe=_SAFE)
                # Text as it is (a str subclass is not str()-ed), anything else str()-ed, as
                # botocore's percent_encode does: an int given as True is sent as "True".
                if kind == "list":
                    pairs.extend(
                        f"{key}={quote(v if isinstance(v, str) else str(v), safe=_SAFE)}"
                        for v in value
                    )
                elif kind == "boolean":
                    pairs.append(f"{key}={'true' if value else 'false'}")
                else:
                    text = value if isinstance(value, str) else str(value)
                    pairs.append(f"{key}={quote(text, safe=_SAFE)}")
            if given:
                url = f"{url}?{'&'.join(pairs)}"
        if not self.body_members:
            return url, b""
        body: dict[str, Any] = {}
        for i, py, wire, conv, required, token in self.body_members:
            value = values[i]
            if value is None:
                if token:
                    value = str(uuid.uuid4())
                elif required:
                    raise _Invalid(py, "is required")
                else:
                    continue
            body[wire] = conv(value, py) if conv is not None else value
        if not body:
            return url, self.empty_body
        return url, json.dumps(body).encode()


_PLANS: dict[str, RequestPlan] = {}


def plan_for(op: OperationSpec[Any]) -> RequestPlan:
    try:
        return _PLANS[op.name]
    except KeyError:
        plan = _PLANS[op.name] = RequestPlan(op)
        return plan


def serialize(op: OperationSpec[Any], values: tuple[Any, ...]) -> tuple[str, bytes]:
    """``(path?query, body)`` for a typed call; bad values raise ParamValidationError."""
    try:
        return plan_for(op).serialize(values)
    except _Invalid as exc:
        raise ParamValidationError(op.name, exc.path, exc.problem) from None


# --- boto3-style parameters ---------------------------------------------------------------


FromParams = Callable[[Any, str], Any]


def _params_structure(name: str, shape: tuple[Any, ...]) -> FromParams:
    def read(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise _Invalid(path, f"expected a dict, got {_type_name(value)}")
        return _structure_from_params(name, shape, value, path)

    return read


def _params_list(_: str, shape: tuple[Any, ...]) -> FromParams:
    member, minimum = shape[1], shape[2]

    def read(value: Any, path: str) -> Any:
        if not isinstance(value, list | tuple):
            raise _Invalid(path, f"expected a list, got {_type_name(value)}")
        if minimum is not None and len(value) < minimum:
            raise _Invalid(path, f"{len(value)} items is below the minimum of {minimum}")
        inner = _read(member)
        return [inner(v, f"{path}[{i}]") for i, v in enumerate(value)]

    return read


def _params_map(_: str, shape: tuple[Any, ...]) -> FromParams:
    key_shape, value_shape = shape[1], shape[2]

    def read(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise _Invalid(path, f"expected a dict, got {_type_name(value)}")
        read_key, read_value = _read(key_shape), _read(value_shape)
        return {
            read_key(k, f"{path}[{k!r}]"): read_value(v, f"{path}[{k!r}]")
            for k, v in value.items()
        }

    return read


def _params_scalar(name: str, _: tuple[Any, ...]) -> FromParams:
    check = converter(name)

    def read(value: Any, path: str) -> Any:
        if check is not None:
            check(value, path)
        return value  # checked, and kept as given: the typed path converts it

    return read


#: ``from_params(shape)``: checks a boto3-style value (model member names, dicts for
#: structures) as botocore's ParamValidator does, and types it. Structures and maps are
#: dicts, lists are lists or tuples, a member given is checked even when it is ``None``
#: (botocore refuses ``None`` for every type), a required member must be given, unknown
#: members are refused; scalars go through the typed path's own converters.
from_params: Compiled[FromParams] = Compiled(
    string=_params_scalar,
    integer=_params_scalar,
    boolean=_params_scalar,
    timestamp=_params_scalar,
    list=_params_list,
    map=_params_map,
    structure=_params_structure,
)


def _read(shape_name: str) -> FromParams:
    read = from_params(shape_name)
    assert read is not None  # every builder of from_params makes a function
    return read


def _structure_from_params(
    name: str, shape: tuple[Any, ...], value: Mapping[str, Any], path: str
) -> Any:
    _, cls_name, members = shape
    by_name = {m[1]: m for m in members}
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        member = by_name.get(key)
        where = f"{path}.{key}" if path else str(key)
        if member is None:
            known = ", ".join(sorted(by_name))
            raise _Invalid(where, f"unknown parameter; known: {known}")
        kwargs[member[0]] = _read(member[3])(item, where)
    for m in members:
        if m[5] and m[0] not in kwargs and not m[6]:
            raise _Invalid(f"{path}.{m[1]}" if path else m[1], "is required")
    cls = model_class(name, cls_name)
    for m in members:  # optional members default to None; required ones must be passed
        if m[5] and m[0] not in kwargs:
            kwargs[m[0]] = None
    return cls(**kwargs)


def values_from_params(op: OperationSpec[Any], params: Mapping[str, Any]) -> tuple[Any, ...]:
    """The typed values of an operation from parameters given as boto3 takes them."""
    shape = shape_row(op.input_shape)
    members = shape[2]
    try:
        if not isinstance(params, Mapping):
            raise _Invalid("", f"expected a mapping of parameters, got {_type_name(params)}")
        # The top level is the keyword arguments of a boto3 call: any mapping will do there.
        typed = _structure_from_params(op.input_shape, shape, params, "")
    except _Invalid as exc:
        raise ParamValidationError(op.name, exc.path, exc.problem) from None
    return tuple(getattr(typed, m[0]) for m in members)
