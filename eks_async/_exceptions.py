"""The exceptions eks_async raises.

Every exception eks_async raises derives from ``EKSAsyncError``:

    EKSAsyncError
    ├── ParamValidationError          parameters rejected before anything was sent
    ├── ConfigurationError            the client cannot be set up as asked
    │   └── EndpointResolutionError   no endpoint for this region / FIPS / dual-stack
    ├── CredentialsError              no credentials, or the chain failed to load them
    ├── TransportError                the request did not get an HTTP answer
    │   ├── TimeoutError_             ...because a connect or read timeout passed
    │   └── ProtocolError             ...because the answer broke HTTP/1.1 or a limit
    ├── ResponseParseError            an HTTP answer that is not what EKS sends
    └── ServiceError                  EKS answered with an error (any code)
        └── one class per error shape of the model (ResourceNotFoundException, ...),
            generated in ``eks_async._generated.errors``

``ServiceError`` carries the error code, message, HTTP status and request id of the
answer, and the shape's own fields (``cluster_name``, ...) on the generated classes. A code
the model does not define still raises a ``ServiceError`` carrying that code.

No exception shows a secret: the text each one is made with (message, the shape's fields,
every argument) goes through ``_redact.redact`` first, so a session token or signature that
EKS echoes (a signature mismatch quotes the canonical request) never reaches the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ._errorcodes import THROTTLING_CODES, Kind, service_error_kind
from ._redact import redact, redact_value

__all__ = [
    "ConfigurationError",
    "CredentialsError",
    "EKSAsyncError",
    "EndpointResolutionError",
    "ParamValidationError",
    "ProtocolError",
    "ResponseParseError",
    "ServiceError",
    "TimeoutError_",
    "TransportError",
]


class EKSAsyncError(Exception):
    """Base class of every exception eks_async raises.

    Its arguments are redacted (``_redact.redact``) before they are stored.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))

    #: How many attempts the call made before giving up (set by the retry layer).
    attempts: int = 1
    #: Seconds spent sleeping between attempts (set by the retry layer).
    retry_wait: float = 0.0
    #: Why the retry layer retries this error (``None``: it never does); fixed when made.
    retry_kind: Kind | None = None


class ParamValidationError(EKSAsyncError, ValueError):
    """Parameters were rejected before any request was sent."""

    def __init__(self, operation: str, path: str, problem: str) -> None:
        self.operation = operation
        #: Where the bad value is, as boto3 would name it: ``oidc.issuerUrl``, ``tags[key]``.
        self.path = redact(path)
        self.problem = redact(problem)
        super().__init__(f"{operation}: parameter {self.path}: {self.problem}")


class ConfigurationError(EKSAsyncError):
    """The client cannot be set up as asked (region, endpoint, options)."""


class EndpointResolutionError(ConfigurationError):
    """No EKS endpoint exists for the requested region and options."""


class CredentialsError(EKSAsyncError):
    """No credentials were found, or loading them failed."""


class TransportError(EKSAsyncError):
    """The request did not get an HTTP answer (connection refused, reset, DNS, TLS)."""

    retry_kind: Kind | None = "connection"

    def __init__(self, message: str, *, operation: str | None = None) -> None:
        self.operation = operation
        super().__init__(message)


class TimeoutError_(TransportError):
    """A connect or read timeout passed before EKS answered."""

    retry_kind: Kind | None = "timeout"


class ProtocolError(TransportError):
    """The answer broke HTTP/1.1's framing rules or one of the transport's limits."""


class ResponseParseError(EKSAsyncError):
    """EKS's answer could not be read: empty, not JSON, cut short or of the wrong shape."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int,
        request_id: str | None,
        operation: str | None = None,
    ) -> None:
        self.http_status = http_status
        self.request_id = None if request_id is None else redact(request_id)
        self.operation = operation
        super().__init__(f"{message} (HTTP {http_status}, request id {request_id})")


class ServiceError(EKSAsyncError):
    """EKS answered with an error.

    ``code`` is the error code as EKS sent it, also for codes the model does not know.
    """

    #: The model's name for the error; the generic class has none.
    shape_name: ClassVar[str | None] = None
    #: Whether the model marks the error as a fault of the service (5xx).
    fault: ClassVar[bool] = False
    #: The HTTP status the model gives this error.
    modeled_status: ClassVar[int | None] = None
    #: ``(python_name, wire_name)`` of the shape's fields, set on generated classes.
    _fields: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __init__(
        self,
        *,
        code: str,
        message: str | None,
        http_status: int,
        request_id: str | None,
        operation: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        # EKS's text is redacted here, before anything can show it.
        self.code = redact(code)
        self.message = None if message is None else redact(message)
        self.http_status = http_status
        self.request_id = None if request_id is None else redact(request_id)
        self.operation = operation
        #: How many attempts the call made before giving up (set by the retry layer).
        self.attempts = 1
        #: Seconds spent sleeping between attempts (set by the retry layer).
        self.retry_wait = 0.0
        #: Seconds the answer's Retry-After header asked to wait, if it had one.
        self.retry_after: float | None = None
        self.retry_kind = service_error_kind(code, http_status)
        data = body or {}
        for py_name, wire_name in self._fields:
            setattr(self, py_name, redact_value(data.get(wire_name)))
        super().__init__(self.code, self.message)

    @property
    def is_throttling(self) -> bool:
        """Whether EKS throttled the call (HTTP 429 or a throttling code)."""
        return self.http_status == 429 or self.code in THROTTLING_CODES

    @property
    def is_retryable(self) -> bool:
        """Whether the retry layer retries this error (throttling or a transient fault)."""
        return self.retry_kind is not None

    def __str__(self) -> str:
        where = f"{self.operation}: " if self.operation else ""
        return (
            f"{where}{self.code}: {self.message or '(no message)'} "
            f"(HTTP {self.http_status}, request id {self.request_id})"
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"http_status={self.http_status}, request_id={self.request_id!r})"
        )
