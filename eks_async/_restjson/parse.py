"""Typed outputs and errors from EKS's JSON answers.

Like the serializer, each shape is compiled once into a function. Unknown members are
ignored, enum values the model does not list stay plain strings, and epoch timestamps
become aware UTC datetimes. Nulls read as botocore's rest-json parser reads them: a null
member is absent (None), a null item of a list or value of a map stays None, and an empty
body is an output whose members are all None. What botocore would fail on, or would accept
only by coercing a value of the wrong type, is a ``ResponseParseError``.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from .._exceptions import ResponseParseError, ServiceError
from .._generated.errors import ERRORS_BY_CODE
from .._operation import OperationSpec
from .._response import ResponseMetadata
from .walk import Compiled, model_class, shape_row

FromWire = Callable[[Any], Any]

_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


class _BadShape(Exception):
    """A value of the answer does not have the type its shape says."""


# Scalars of the wrong type are refused where botocore would pass them through (a number for
# a string), coerce them ("5" or 5.7 for an integer, 1 or "TRUE" for a boolean) or fail.


def _string(value: Any) -> Any:
    if type(value) is not str:
        raise _BadShape(f"expected str, got {type(value).__name__}")
    return value


def _integer(value: Any) -> Any:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)  # 5.0, as botocore's int(value) reads it
    raise _BadShape(f"expected int, got {type(value).__name__} {value!r:.40}")


def _boolean(value: Any) -> Any:
    if type(value) is not bool:
        raise _BadShape(f"expected bool, got {type(value).__name__}")
    return value


def _enum(shape_name: str, cls_name: str) -> FromWire:
    members = model_class(shape_name, cls_name)._value2member_map_

    def convert(value: Any) -> Any:
        if type(value) is not str:
            raise _BadShape(f"expected str, got {type(value).__name__}")
        return members.get(value, value)

    return convert


def parse_timestamp(value: Any) -> datetime.datetime:
    """Epoch seconds (EKS's form) or ISO 8601 text, as an aware UTC datetime."""
    if type(value) is int or type(value) is float:
        return _EPOCH + datetime.timedelta(seconds=value)
    if isinstance(value, str):
        try:
            parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            try:
                return _EPOCH + datetime.timedelta(seconds=float(value))
            except ValueError:
                raise _BadShape(f"not a timestamp: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=datetime.UTC)
        return parsed.astimezone(datetime.UTC)
    raise _BadShape(f"expected a timestamp, got {type(value).__name__}")


def _list(member: str) -> FromWire:
    # null items stay None, as botocore reads every list as sparse.
    def convert(value: Any) -> Any:
        if type(value) is not list:
            raise _BadShape(f"expected a list, got {type(value).__name__}")
        inner = parser(member)
        if inner is None:  # pragma: no cover - every shape has a parser
            return value
        return [None if item is None else inner(item) for item in value]

    return convert


def _map(value_shape: str) -> FromWire:
    # null values stay None, as botocore gives them.
    def convert(value: Any) -> Any:
        if type(value) is not dict:
            raise _BadShape(f"expected an object, got {type(value).__name__}")
        inner = parser(value_shape)
        if inner is None:  # pragma: no cover - every shape has a parser
            return value
        return {k: None if v is None else inner(v) for k, v in value.items()}

    return convert


def _structure(shape_name: str) -> FromWire:
    _, cls_name, members = shape_row(shape_name)
    cls = model_class(shape_name, cls_name)
    plan: list[tuple[str, str, FromWire | None]] = []

    def convert(value: Any) -> Any:
        if type(value) is not dict:
            raise _BadShape(f"expected an object, got {type(value).__name__}")
        if not plan:
            plan.extend((m[2], m[0], parser(m[3])) for m in members if m[4] is None)
        kwargs = {}
        for wire, py, conv in plan:
            item = value.get(wire)
            if item is not None:
                kwargs[py] = conv(item) if conv is not None else item
        return cls(**kwargs)

    return convert


#: ``parser(shape)``: the function that turns the JSON form of the shape into its Python
#: value; ``None`` where the JSON value is used as it is.
parser: Compiled[FromWire] = Compiled(
    string=lambda name, shape: _enum(name, shape[2]) if shape[2] else _string,
    integer=lambda _, shape: _integer,
    boolean=lambda _, shape: _boolean,
    timestamp=lambda _, shape: parse_timestamp,
    list=lambda _, shape: _list(shape[1]),
    map=lambda _, shape: _map(shape[2]),
    structure=lambda name, _: _structure(name),
)


# --- whole answers ------------------------------------------------------------------------


def parse_output(
    op: OperationSpec[Any],
    status: int,
    body: bytes,
    request_id: str | None,
    *,
    attempts: int = 1,
    retry_wait: float = 0.0,
) -> Any:
    """The operation's output class from a successful answer."""
    data: Any
    if not body:
        data = {}  # as botocore reads it: an output whose members are all None
    else:
        try:
            data = json.loads(body.decode())  # UTF-8 only, as botocore decodes it
        except ValueError:
            raise ResponseParseError(
                f"{op.name}: the answer is not JSON ({len(body)} bytes)",
                http_status=status,
                request_id=request_id,
                operation=op.name,
            ) from None
    if type(data) is not dict:
        raise ResponseParseError(
            f"{op.name}: the answer is not a JSON object",
            http_status=status,
            request_id=request_id,
            operation=op.name,
        )
    convert = parser(op.output_shape)
    assert convert is not None
    try:
        result = convert(data)
    except (_BadShape, TypeError, ValueError, OverflowError) as exc:
        raise ResponseParseError(
            f"{op.name}: the answer does not match the model: {exc}",
            http_status=status,
            request_id=request_id,
            operation=op.name,
        ) from None
    object.__setattr__(
        result,
        "response_metadata",
        ResponseMetadata(
            request_id=request_id, http_status=status, attempts=attempts, retry_wait=retry_wait
        ),
    )
    return result


def error_code(headers: Mapping[str, str], data: Mapping[str, Any], status: int) -> str:
    """The error code as AWS's rest-json clients read it."""
    code: Any = headers.get("x-amzn-errortype")
    if not code:
        code = data.get("code") or data.get("Code") or data.get("__type")
    if not code or not isinstance(code, str):
        return str(status)
    return code.split(":", 1)[0].rsplit("#", 1)[-1]


def parse_error(
    op_name: str | None,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    request_id: str | None,
    errors: Mapping[str, type[ServiceError]] | None = None,
) -> ServiceError:
    """The exception for an error answer; any body, even none or garbage, gives one.

    ``errors``: the service's classes by error code (default: EKS's)."""
    data: dict[str, Any]
    try:
        loaded = json.loads(body) if body else {}
    except ValueError:
        text = body[:200].decode("utf-8", "replace")
        loaded = {"message": text}
    data = loaded if isinstance(loaded, dict) else {}
    code = error_code(headers, data, status)
    message = data.get("message", data.get("Message"))
    if message is not None and not isinstance(message, str):
        message = str(message)
    cls = (ERRORS_BY_CODE if errors is None else errors).get(code, ServiceError)
    return cls(
        code=code,
        message=message,
        http_status=status,
        request_id=request_id,
        operation=op_name,
        body=data,
    )
