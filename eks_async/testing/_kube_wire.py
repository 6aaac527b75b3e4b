"""How the emulator's Kubernetes API reads requests and writes answers: JSON or protobuf.

As the API server: a request body is JSON (``application/json``) or Kubernetes' protobuf
(``application/vnd.kubernetes.protobuf``: the 4 bytes ``k8s\\x00``, then a
``runtime.Unknown`` message holding the object's ``TypeMeta`` and its own message's
bytes); the answer's encoding is the first one the ``Accept`` header names that the object
has (objects without a protobuf message, such as discovery documents and tables, are
answered in JSON). ``Accept`` may also ask for a ``meta.k8s.io`` ``Table`` (``kubectl
get``) or an aggregated discovery document (``apidiscovery.k8s.io`` v2 or v2beta1).

Objects are handled as JSON-shaped dicts throughout; ``to_protobuf``/``from_protobuf``
convert with Kubernetes' own message definitions (``_kube_proto``, made by
``codegen/kube_protos.py``). The ``protobuf`` package is imported only when a protobuf
body arrives or a protobuf answer is asked for; without it, protobuf bodies get 415 and
answers fall back to JSON.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import attrs

if TYPE_CHECKING:
    from google.protobuf.message import Message

__all__ = [
    "JSON",
    "MAGIC",
    "PROTOBUF",
    "Negotiated",
    "NotAcceptable",
    "UnsupportedBody",
    "decode_body",
    "encode",
    "from_protobuf",
    "negotiate",
    "protobuf_available",
    "to_protobuf",
]

JSON: Final = "application/json"
PROTOBUF: Final = "application/vnd.kubernetes.protobuf"
#: What a protobuf body starts with.
MAGIC: Final = b"k8s\x00"
TABLE_GROUP: Final = "meta.k8s.io"
DISCOVERY_GROUP: Final = "apidiscovery.k8s.io"

_META: Final = "k8s.io.apimachinery.pkg.apis.meta.v1."
_TIME: Final = (_META + "Time", _META + "MicroTime")

#: (apiVersion, kind) -> (module of _kube_proto, message name).
_MESSAGES: Final = {
    ("v1", "Namespace"): ("core_v1_pb2", "Namespace"),
    ("v1", "NamespaceList"): ("core_v1_pb2", "NamespaceList"),
    ("v1", "ServiceAccount"): ("core_v1_pb2", "ServiceAccount"),
    ("v1", "ServiceAccountList"): ("core_v1_pb2", "ServiceAccountList"),
    ("v1", "Status"): ("meta_v1_pb2", "Status"),
    ("v1", "DeleteOptions"): ("meta_v1_pb2", "DeleteOptions"),
    ("meta.k8s.io/v1", "DeleteOptions"): ("meta_v1_pb2", "DeleteOptions"),
    ("authentication.k8s.io/v1", "TokenRequest"): ("authentication_v1_pb2", "TokenRequest"),
    ("authentication.k8s.io/v1", "SelfSubjectReview"): (
        "authentication_v1_selfsubjectreview_pb2",
        "SelfSubjectReview",
    ),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): (
        "authorization_v1_pb2",
        "SelfSubjectAccessReview",
    ),
}


class UnsupportedBody(Exception):
    """A request body that cannot be read: ``code`` 415 (its media type) or 400 (its bytes)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class NotAcceptable(Exception):
    """No encoding the ``Accept`` header allows (406)."""


@attrs.frozen
class Negotiated:
    """What the ``Accept`` header asked for, in its order of preference."""

    #: ``"json"``/``"protobuf"`` encodings, best first.
    encodings: tuple[str, ...]
    #: ``"v1"``/``"v1beta1"`` if a meta.k8s.io Table is acceptable (JSON).
    table: str | None = None
    #: ``"v2"``/``"v2beta1"`` if an aggregated discovery document is acceptable (JSON).
    discovery: str | None = None


@attrs.frozen
class _Range:
    media: str
    params: dict[str, str]
    q: float


def _parse_accept(header: str) -> list[_Range]:
    ranges = []
    for part in header.split(","):
        media, *raw_params = (p.strip() for p in part.split(";"))
        if not media:
            continue
        params: dict[str, str] = {}
        for raw in raw_params:
            key, _, value = raw.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 0.0
        if q > 0:
            ranges.append(_Range(media.lower(), params, q))
    ranges.sort(key=lambda r: -r.q)  # stable: equal weights keep their order
    return ranges


def negotiate(accept: str | None) -> Negotiated:
    """Read ``Accept`` as the API server does; raises ``NotAcceptable`` if nothing fits."""
    if not accept or not accept.strip():
        return Negotiated(encodings=("json",))
    encodings: list[str] = []
    table: str | None = None
    discovery: str | None = None
    for r in _parse_accept(accept):
        as_ = r.params.get("as")
        if as_ is not None:
            group, version = r.params.get("g"), r.params.get("v")
            if r.media != JSON:
                continue
            if as_ == "Table" and group == TABLE_GROUP and version in ("v1", "v1beta1"):
                table = table or version
            elif (
                as_ == "APIGroupDiscoveryList"
                and group == DISCOVERY_GROUP
                and version in ("v2", "v2beta1")
            ):
                discovery = discovery or version
            continue
        if r.media in (JSON, "application/*", "*/*"):
            if "json" not in encodings:
                encodings.append("json")
        elif r.media == PROTOBUF and "protobuf" not in encodings:
            encodings.append("protobuf")
    if not encodings and table is None and discovery is None:
        raise NotAcceptable(accept)
    return Negotiated(encodings=tuple(encodings), table=table, discovery=discovery)


@functools.cache
def protobuf_available() -> bool:
    """Whether the ``protobuf`` package (and so the generated messages) can be imported."""
    try:
        from ._kube_proto import meta_v1_pb2  # noqa: F401
    except ImportError:
        return False
    return True


def _message_class(api_version: str, kind: str) -> Callable[[], Message] | None:
    found = _MESSAGES.get((api_version, kind))
    if found is None:
        return None
    import importlib

    module = importlib.import_module(f"{__package__}._kube_proto.{found[0]}")
    cls: Callable[[], Message] = getattr(module, found[1])
    return cls


def encode(
    body: dict[str, Any], encodings: tuple[str, ...], *, media: str = JSON
) -> tuple[str, bytes]:
    """``(Content-Type, bytes)`` of ``body`` in the first of ``encodings`` it has.

    ``media`` is the JSON Content-Type to give (a Table's or discovery document's own).
    JSON is the fallback when no listed encoding fits.
    """
    for encoding in encodings:
        if encoding == "json":
            break
        if encoding == "protobuf" and media == JSON and protobuf_available():
            data = to_protobuf(body)
            if data is not None:
                return PROTOBUF, data
    return media, json.dumps(body).encode()


def decode_body(body: bytes, content_type: str | None) -> bytes:
    """A request body as JSON bytes (``content_type`` JSON or protobuf; else 415)."""
    media = (content_type or JSON).split(";")[0].strip().lower()
    if media in (JSON, "*/*", ""):
        return body
    if media == PROTOBUF:
        if not protobuf_available():
            raise UnsupportedBody(
                415,
                "the body of the request was in an unknown format - accepted media types "
                f'include: {JSON} (protobuf needs the "protobuf" package)',
            )
        return json.dumps(from_protobuf(body)).encode()
    raise UnsupportedBody(
        415,
        "the body of the request was in an unknown format - accepted media types include: "
        f'{JSON}, {PROTOBUF} (got "{media[:60]}")',
    )


# --- protobuf <-> JSON-shaped dicts ---------------------------------------------------------


def to_protobuf(body: dict[str, Any]) -> bytes | None:
    """``k8s\\x00`` + ``runtime.Unknown`` for ``body``; None if its kind has no message."""
    api_version, kind = str(body.get("apiVersion", "")), str(body.get("kind", ""))
    cls = _message_class(api_version, kind)
    if cls is None:
        return None
    from ._kube_proto import runtime_pb2

    message = cls()
    _fill(message, {k: v for k, v in body.items() if k not in ("kind", "apiVersion")})
    unknown = runtime_pb2.Unknown()
    unknown.typeMeta.apiVersion = api_version
    unknown.typeMeta.kind = kind
    unknown.raw = message.SerializeToString()
    unknown.contentEncoding = ""
    unknown.contentType = ""
    data: bytes = MAGIC + unknown.SerializeToString()
    return data


def from_protobuf(data: bytes) -> dict[str, Any]:
    """The object in a protobuf body, as a JSON-shaped dict with ``kind``/``apiVersion``."""
    from google.protobuf.message import DecodeError

    from ._kube_proto import runtime_pb2

    if not data.startswith(MAGIC):
        raise UnsupportedBody(400, "the body of the request is not Kubernetes protobuf")
    unknown = runtime_pb2.Unknown()
    try:
        unknown.ParseFromString(data[len(MAGIC) :])
    except DecodeError:
        raise UnsupportedBody(400, "the body of the request could not be decoded") from None
    api_version, kind = unknown.typeMeta.apiVersion, unknown.typeMeta.kind
    cls = _message_class(api_version, kind)
    if cls is None:
        raise UnsupportedBody(
            400, f'no kind "{kind[:60]}" is registered for version "{api_version[:60]}"'
        )
    message = cls()
    try:
        message.ParseFromString(unknown.raw)
    except DecodeError:
        raise UnsupportedBody(400, "the body of the request could not be decoded") from None
    out: dict[str, Any] = {"kind": kind, "apiVersion": api_version}
    out.update(_dict(message))
    return out


def _format_time(seconds: int, nanos: int, micro: bool) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    if micro:
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> tuple[int, int]:
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    seconds = int(moment.timestamp())
    return seconds, moment.microsecond * 1000


def _special_name(descriptor: Any) -> str:  # a Descriptor (upb's or the Python one)
    name = descriptor.full_name
    if name in _TIME:
        return "time"
    if name.endswith(".ExtraValue"):
        return "list"
    return {
        _META + "FieldsV1": "raw_json",
        "k8s.io.apimachinery.pkg.runtime.RawExtension": "raw_json",
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "intstr",
        "k8s.io.apimachinery.pkg.api.resource.Quantity": "quantity",
        _META + "Duration": "duration",
    }.get(name, "")


def _json_value(field: Any, value: Any) -> Any:  # a FieldDescriptor
    if field.type == field.TYPE_MESSAGE:
        return _message_json(value)
    if field.type == field.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    return value


def _message_json(message: Message) -> Any:
    special = _special_name(message.DESCRIPTOR)
    if special == "time":
        micro = message.DESCRIPTOR.name == "MicroTime"
        seconds: int = getattr(message, "seconds")  # noqa: B009
        nanos: int = getattr(message, "nanos")  # noqa: B009
        return _format_time(seconds, nanos, micro)
    if special == "list":
        return list(getattr(message, "items"))  # noqa: B009
    if special == "raw_json":
        raw: bytes = getattr(message, "Raw" if message.DESCRIPTOR.name == "FieldsV1" else "raw")
        return json.loads(raw) if raw else None
    if special == "intstr":
        if getattr(message, "type") == 1:  # noqa: B009
            return getattr(message, "strVal")  # noqa: B009
        return getattr(message, "intVal")  # noqa: B009
    if special == "quantity":
        return getattr(message, "string")  # noqa: B009
    if special == "duration":
        duration: int = getattr(message, "duration")  # noqa: B009
        return f"{duration / 1e9:g}s"
    return _dict(message)


def _dict(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = {k: _json_value(value_field, v) for k, v in value.items()}
        elif field.is_repeated:
            out[field.name] = [_json_value(field, v) for v in value]
        else:
            out[field.name] = _json_value(field, value)
    return out


def _scalar(field: Any, value: Any) -> Any:  # a FieldDescriptor
    if field.type == field.TYPE_BYTES:
        return base64.b64decode(value) if isinstance(value, str) else bytes(value)
    if field.type == field.TYPE_BOOL:
        if not isinstance(value, bool):
            raise UnsupportedBody(400, f"{field.name}: expected a boolean")
        return value
    if field.type == field.TYPE_STRING:
        if not isinstance(value, str):
            raise UnsupportedBody(400, f"{field.name}: expected a string")
        return value
    if field.cpp_type in (field.CPPTYPE_INT32, field.CPPTYPE_INT64):
        if isinstance(value, bool) or not isinstance(value, int):
            raise UnsupportedBody(400, f"{field.name}: expected an integer")
        return value
    return value


def _set_message(message: Message, value: Any) -> None:
    special = _special_name(message.DESCRIPTOR)
    if special == "time":
        if not isinstance(value, str):
            raise UnsupportedBody(400, "a time must be an RFC 3339 string")
        try:
            seconds, nanos = _parse_time(value)
        except ValueError:
            raise UnsupportedBody(400, f"not an RFC 3339 time: {value[:40]!r}") from None
        setattr(message, "seconds", seconds)  # noqa: B010
        if message.DESCRIPTOR.name == "MicroTime" or nanos:
            setattr(message, "nanos", nanos)  # noqa: B010
    elif special == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UnsupportedBody(400, "extra values must be lists of strings")
        getattr(message, "items").extend(value)  # noqa: B009
    elif special == "raw_json":
        name = "Raw" if message.DESCRIPTOR.name == "FieldsV1" else "raw"
        setattr(message, name, json.dumps(value).encode())
    elif special == "intstr":
        if isinstance(value, str):
            setattr(message, "type", 1)  # noqa: B010
            setattr(message, "strVal", value)  # noqa: B010
        else:
            setattr(message, "type", 0)  # noqa: B010
            setattr(message, "intVal", int(value))  # noqa: B010
    elif special == "quantity":
        setattr(message, "string", str(value))  # noqa: B010
    elif special == "duration":
        setattr(message, "duration", int(float(str(value).rstrip("s")) * 1e9))  # noqa: B010
    else:
        if not isinstance(value, dict):
            raise UnsupportedBody(400, f"{message.DESCRIPTOR.name}: expected an object")
        _fill(message, value)


def _fill(message: Message, data: dict[str, Any]) -> None:
    fields = message.DESCRIPTOR.fields_by_name
    for key, value in data.items():
        field = fields.get(key)
        if field is None or value is None:
            continue  # unknown fields are dropped, as the API server's lax decoding does
        target = getattr(message, key)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            if not isinstance(value, dict):
                raise UnsupportedBody(400, f"{key}: expected an object")
            value_field = field.message_type.fields_by_name["value"]
            for k, v in value.items():
                if value_field.message_type is not None:
                    _set_message(target[k], v)
                else:
                    target[k] = _scalar(value_field, v)
        elif field.is_repeated:
            if not isinstance(value, list):
                raise UnsupportedBody(400, f"{key}: expected a list")
            for item in value:
                if field.message_type is not None:
                    _set_message(target.add(), item)
                else:
                    target.append(_scalar(field, item))
        elif field.message_type is not None:
            _set_message(target, value)
            if not target.ListFields():
                target.SetInParent()  # present, if empty (``metadata: {}``)
        else:
            setattr(message, key, _scalar(field, value))
