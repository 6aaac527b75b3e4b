"""eks_async: a typed asyncio client for the Amazon EKS API.

The public names are listed below; everything in a ``_module`` is private. The data classes
and enums of the API (one per shape of EKS's model) and one exception class per error shape
are re-exported from the generated modules, whose ``__all__`` lists them by name.
"""

from typing import TYPE_CHECKING, Any

from ._auth.credentials import Credentials, CredentialsProvider
from ._auth.token import ClusterToken
from ._client import EKSClient, Paginators, Waiters
from ._exceptions import (
    ConfigurationError,
    CredentialsError,
    EKSAsyncError,
    EndpointResolutionError,
    ParamValidationError,
    ProtocolError,
    ResponseParseError,
    ServiceError,
    TimeoutError_,
    TransportError,
)
from ._generated import errors as _errors
from ._generated import models as _models
from ._generated.errors import *  # noqa: F403
from ._paginate import Paginator
from ._pipeline import RetryEvent
from ._ratelimit import RateLimiter
from ._response import ResponseMetadata
from ._retry import RetryConfig, instant_retries, set_instant_retries
from ._transports.base import Limits
from ._version import __version__
from ._waiters.engine import (
    WaiterConfig,
    WaiterError,
    WaiterFailureError,
    WaiterTimeoutError,
    WaitProgress,
)

__all__ = [
    "AccessCheck",
    "CanI",
    "ClusterToken",
    "ConfigurationError",
    "Credentials",
    "CredentialsError",
    "CredentialsProvider",
    "EKSAsyncError",
    "EKSAuthClient",
    "EKSClient",
    "EndpointResolutionError",
    "KubernetesAPIError",
    "Limits",
    "Paginator",
    "Paginators",
    "ParamValidationError",
    "PodIdentityCheck",
    "ProtocolError",
    "RateLimiter",
    "ResponseMetadata",
    "ResponseParseError",
    "RetryConfig",
    "RetryEvent",
    "ServiceError",
    "TimeoutError_",
    "TransportError",
    "WaitProgress",
    "WaiterConfig",
    "WaiterError",
    "WaiterFailureError",
    "WaiterTimeoutError",
    "Waiters",
    "__version__",
    "instant_retries",
    "set_instant_retries",
    *_models.__all__,
    *_errors.__all__,
]

if TYPE_CHECKING:
    from ._eks_auth import EKSAuthClient
    from ._generated.models import *  # noqa: F403
    from ._waiters.access import AccessCheck, CanI, KubernetesAPIError
    from ._waiters.pod_identity import PodIdentityCheck


def __getattr__(name: str) -> Any:
    # The data classes are imported on first use (see _generated/models/__init__.py).
    if name in _MODEL_NAMES:
        return getattr(_models, name)
    if name == "EKSAuthClient":
        # EKS Auth's modules load on first use: ``import eks_async`` does not pay for them.
        from ._eks_auth import EKSAuthClient

        globals()[name] = EKSAuthClient
        return EKSAuthClient
    if name in _ACCESS_NAMES:
        # access_entry_effective's types load with it, not with ``import eks_async``.
        from ._waiters import access

        value = getattr(access, name)
        globals()[name] = value
        return value
    if name == "PodIdentityCheck":
        # pod_identity_association_effective's result type, loaded with it.
        from ._waiters.pod_identity import PodIdentityCheck

        globals()[name] = PodIdentityCheck
        return PodIdentityCheck
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _MODEL_NAMES | _ACCESS_NAMES | {"EKSAuthClient", "PodIdentityCheck"})


_ACCESS_NAMES = frozenset({"AccessCheck", "CanI", "KubernetesAPIError"})


_MODEL_NAMES = frozenset(_models.__all__)
