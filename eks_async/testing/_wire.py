"""The emulator's HTTP edge: requests in, routing, decoding per the model, answers out.

Routes come from the generated operation table (method plus URI template); a request's
URI labels, query string and JSON body are decoded and checked against the input shape's
members (type, required, minimum and maximum sizes, enum values), so a bad request gets
the 400 EKS would give instead of reaching the state. Answers are dicts in wire form,
serialized here with the headers EKS sends (``x-amzn-RequestId``, ``x-amzn-ErrorType``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote

import attrs

from .._generated import models
from .._generated.errors import ERRORS_BY_CODE
from .._generated.operations import OPERATIONS
from .._generated.shapes import SHAPES
from .._operation import OperationSpec

__all__ = [
    "EmulatorRequest",
    "EmulatorResponse",
    "Route",
    "WireError",
    "decode_input",
    "error_response",
    "json_response",
    "match_route",
]

EKS_NAMESPACE: Final = "http://internal.amazon.com/coral/com.amazonaws.eks.v20171101/"
#: Where AWS's front end puts the errors it raises before a service sees the request.
CORAL_SERVICE_NAMESPACE: Final = "http://internal.amazon.com/coral/com.amazon.coral.service/"
CORAL_AVAILABILITY_NAMESPACE: Final = (
    "http://internal.amazon.com/coral/com.amazon.coral.availability/"
)

#: HTTP status of each error code the emulator sends (the model's, and AWS's front end's).
ERROR_STATUS: Final[Mapping[str, int]] = {
    **{code: cls.modeled_status or 400 for code, cls in ERRORS_BY_CODE.items()},
    # Not in the EKS model: sent by AWS's front end.
    "TooManyRequestsException": 429,
    "IncompleteSignatureException": 403,
    "InvalidSignatureException": 403,
    "MissingAuthenticationTokenException": 403,
    "UnrecognizedClientException": 403,
    "UnknownOperationException": 404,
}
_FRONT_END = {
    "IncompleteSignatureException": CORAL_SERVICE_NAMESPACE,
    "InvalidSignatureException": CORAL_SERVICE_NAMESPACE,
    "MissingAuthenticationTokenException": CORAL_SERVICE_NAMESPACE,
    "UnrecognizedClientException": CORAL_SERVICE_NAMESPACE,
    "UnknownOperationException": CORAL_SERVICE_NAMESPACE,
    "TooManyRequestsException": CORAL_AVAILABILITY_NAMESPACE,
}



@functools.cache
def _pattern(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


def _maximum(shape: tuple[Any, ...]) -> int | None:
    """The model's maximum size (or value, for integers) of a shape, when it has one."""
    index = {"string": 3, "integer": 2, "list": 3, "map": 4}.get(shape[0])
    limit: int | None = shape[index] if index is not None else None
    return limit


class WireError(Exception):
    """An EKS error answer: code, message and the error shape's fields (wire names)."""

    def __init__(self, code: str, message: str, **fields: Any) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.fields = {k: v for k, v in fields.items() if v is not None}

    @property
    def status(self) -> int:
        return ERROR_STATUS.get(self.code, 400)

    def body(self) -> dict[str, Any]:
        """The JSON body: ``message`` plus the fields the error's shape has."""
        allowed = ERRORS_BY_CODE.get(self.code)
        names = {wire for _py, wire in allowed._fields} if allowed is not None else set()
        out: dict[str, Any] = {"message": self.message}
        out.update({k: v for k, v in self.fields.items() if k in names})
        return out


@attrs.frozen(kw_only=True)
class EmulatorRequest:
    """One HTTP request as the emulator receives it: the path and query as sent."""

    method: str
    #: The path exactly as received (percent-encoded), without the query.
    path: str
    #: The query string exactly as received, without the ``?``.
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), or ``None``."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def header_values(self, name: str) -> list[str]:
        """Every value of a header (case-insensitive), in order."""
        lname = name.lower()
        return [value for key, value in self.headers if key.lower() == lname]

    @classmethod
    def from_target(
        cls,
        method: str,
        target: str,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
    ) -> EmulatorRequest:
        """From a request target such as ``/clusters?maxResults=2``."""
        path, _, query = target.partition("?")
        return cls(method=method.upper(), path=path, query=query, headers=headers, body=body)


@attrs.frozen(kw_only=True)
class EmulatorResponse:
    """The emulator's answer; ``drop`` means: close the connection and send nothing."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    drop: bool = False

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), or ``None``."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def json(self) -> Any:
        """The body parsed as JSON (``None`` when it is empty)."""
        return json.loads(self.body) if self.body else None


def json_response(status: int, data: Any, request_id: str) -> EmulatorResponse:
    body = json.dumps(data, separators=(",", ":")).encode()
    headers = (
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", request_id),
    )
    return EmulatorResponse(status=status, headers=headers, body=body)


def error_response(error: WireError, request_id: str) -> EmulatorResponse:
    body = json.dumps(error.body(), separators=(",", ":")).encode()
    namespace = _FRONT_END.get(error.code, EKS_NAMESPACE)
    headers = (
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", f"{error.code}:{namespace}"),
    )
    return EmulatorResponse(status=error.status, headers=headers, body=body)


# --- routing ----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Route:
    """How one operation is addressed: method and path segments (``None`` for a label)."""

    op: OperationSpec[Any]
    segments: tuple[str | None, ...]
    #: The label wire name at each ``None`` segment, in order.
    labels: tuple[str, ...]


def _compile(op: OperationSpec[Any]) -> Route:
    segments: list[str | None] = []
    labels: list[str] = []
    for part in op.uri.split("?", 1)[0].strip("/").split("/"):
        if part.startswith("{") and part.endswith("}"):
            segments.append(None)
            labels.append(part[1:-1].rstrip("+"))
        else:
            segments.append(part)
    return Route(op=op, segments=tuple(segments), labels=tuple(labels))


_ROUTES: Final[tuple[Route, ...]] = tuple(_compile(op) for op in OPERATIONS.values())
_BY_LENGTH: dict[int, list[Route]] = {}
for _route in _ROUTES:
    _BY_LENGTH.setdefault(len(_route.segments), []).append(_route)


def match_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The operation a request addresses and its labels (still percent-encoded)."""
    if not path.startswith("/"):
        return None
    parts = path[1:].split("/")
    best: tuple[Route, dict[str, str]] | None = None
    best_literals = -1
    for route in _BY_LENGTH.get(len(parts), ()):
        if route.op.method != method:
            continue
        labels: dict[str, str] = {}
        names = iter(route.labels)
        literals = 0
        for want, got in zip(route.segments, parts, strict=True):
            if want is None:
                if not got:
                    break
                labels[next(names)] = got
            elif want != got:
                break
            else:
                literals += 1
        else:
            if literals > best_literals:  # a literal segment beats a label
                best, best_literals = (route, labels), literals
    return best


# --- decoding ---------------------------------------------------------------------------------


def validation_code(op: OperationSpec[Any]) -> str:
    """The code this operation uses for a malformed request (per its modelled errors)."""
    if "InvalidParameterException" in op.errors or "BadRequestException" not in op.errors:
        return "InvalidParameterException"
    return "BadRequestException"


class _Bad(Exception):
    def __init__(self, where: str, problem: str) -> None:
        super().__init__(where, problem)
        self.where = where
        self.problem = problem


def _preview(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return repr(text[:60] + ("..." if len(text) > 60 else ""))


def _check(shape_name: str, value: Any, where: str) -> Any:
    shape = SHAPES[shape_name]
    kind = shape[0]
    maximum = _maximum(shape)
    if kind == "string":
        if not isinstance(value, str):
            raise _Bad(where, f"expected a string, got {_json_type(value)}")
        if shape[1] is not None and len(value) < shape[1]:
            raise _Bad(where, f"must be at least {shape[1]} characters long")
        if maximum is not None and len(value) > maximum:
            raise _Bad(where, f"must be at most {maximum} characters long")
        if shape[2] is not None:
            allowed = getattr(models, shape[2])._value2member_map_
            if value not in allowed:
                raise _Bad(where, f"{_preview(value)} is not one of {', '.join(allowed)}")
        if shape[4] is not None and not _pattern(shape[4]).match(value):
            raise _Bad(where, f"{_preview(value)} does not match the pattern {shape[4]}")
        return value
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad(where, f"expected an integer, got {_json_type(value)}")
        if shape[1] is not None and value < shape[1]:
            raise _Bad(where, f"{value} is less than the minimum of {shape[1]}")
        if maximum is not None and value > maximum:
            raise _Bad(where, f"{value} is more than the maximum of {maximum}")
        if not -(2**31) <= value < 2**31:
            raise _Bad(where, f"{value} is out of range")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _Bad(where, f"expected a boolean, got {_json_type(value)}")
        return value
    if kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Bad(where, f"expected a timestamp (epoch seconds), got {_json_type(value)}")
        return value
    if kind == "list":
        if not isinstance(value, list):
            raise _Bad(where, f"expected a list, got {_json_type(value)}")
        if shape[2] is not None and len(value) < shape[2]:
            raise _Bad(where, f"must have at least {shape[2]} items")
        if maximum is not None and len(value) > maximum:
            raise _Bad(where, f"must have at most {maximum} items")
        return [_check(shape[1], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            raise _Bad(where, f"expected an object, got {_json_type(value)}")
        if shape[3] is not None and len(value) < shape[3]:
            raise _Bad(where, f"must have at least {shape[3]} entries")
        if maximum is not None and len(value) > maximum:
            raise _Bad(where, f"must have at most {maximum} entries")
        out = {}
        for key, item in value.items():
            _check(shape[1], key, f"{where} key {_preview(key)}")
            out[key] = _check(shape[2], item, f"{where}[{key!r}]")
        return out
    if kind == "structure":
        if not isinstance(value, dict):
            raise _Bad(where, f"expected an object, got {_json_type(value)}")
        out = {}
        for member in shape[2]:
            _py, name, wire, target, _location, required, _token = member
            item = value.get(wire)
            inner = f"{where}.{name}" if where else name
            if item is None:
                if required:
                    raise _Bad(inner, "is required")
                continue
            out[name] = _check(target, item, inner)
        return out
    raise AssertionError(f"unknown shape kind {kind}")  # pragma: no cover


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _query_value(kind: str, raw: str, where: str) -> Any:
    if kind == "integer":
        if not re.fullmatch(r"-?[0-9]{1,12}", raw):
            raise _Bad(where, f"{_preview(raw)} is not an integer")
        return int(raw)
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise _Bad(where, f"{_preview(raw)} is not true or false")
        return raw == "true"
    return raw


def _unquote(text: str, where: str) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise _Bad(where, "is not valid percent-encoded UTF-8") from None


def decode_input(
    route: Route, raw_labels: Mapping[str, str], query: str, body: bytes
) -> dict[str, Any]:
    """The operation's input as ``{model member name: JSON value}``, checked.

    Raises ``WireError`` (the operation's validation code, HTTP 400) when it does not
    fit the input shape.
    """
    op = route.op
    try:
        return _decode(op, raw_labels, query, body)
    except _Bad as bad:
        raise WireError(validation_code(op), f"{bad.where}: {bad.problem}") from None


def _decode(
    op: OperationSpec[Any], raw_labels: Mapping[str, str], query: str, body: bytes
) -> dict[str, Any]:
    members = SHAPES[op.input_shape][2]
    pairs: list[tuple[str, str]] = []
    if query:
        for part in query.split("&"):
            if not part:
                continue
            raw_key, _, raw_value = part.partition("=")
            key = _unquote(raw_key, "query")
            pairs.append((key, _unquote(raw_value, key)))
    data: dict[str, Any] = {}
    has_body = False
    for _py, name, wire, target, location, _required, _token in members:
        if location == "uri":
            data[name] = _check(target, _unquote(raw_labels[wire], name), name)
        elif location == "querystring":
            kind = SHAPES[target][0]
            values = [v for k, v in pairs if k == wire]
            if not values:
                continue
            if kind == "list":
                item_kind = SHAPES[SHAPES[target][1]][0]
                data[name] = _check(
                    target, [_query_value(item_kind, v, name) for v in values], name
                )
            else:
                data[name] = _check(target, _query_value(kind, values[0], name), name)
        else:
            has_body = True
    if has_body:
        document: Any = {}
        if body.strip():
            try:
                document = json.loads(body, parse_constant=_reject_constant)
            except (ValueError, RecursionError):
                raise _Bad("body", "is not valid JSON") from None
        if not isinstance(document, dict):
            raise _Bad("body", f"expected a JSON object, got {_json_type(document)}")
        for _py, name, wire, target, location, _required, _token in members:
            item = document.get(wire) if location is None else None
            if item is not None:  # required members are checked below, all together
                data[name] = _check(target, item, name)
    for _py, name, _wire, _target, _location, required, token in members:
        if required and not token and name not in data:
            raise _Bad(name, "is required")
    return data
