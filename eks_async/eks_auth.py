"""EKS Auth's public names: ``EKSAuthClient``, its data classes and its error classes.

EKS Auth has shapes named like EKS's (``PodIdentityAssociation``, ``Credentials``,
``InvalidParameterException``) but not the same, so they live here rather than in
``eks_async``: ``from eks_async.eks_auth import InvalidTokenException``. ``import eks_async``
does not import this module; the data classes are defined on first use.
"""

from typing import TYPE_CHECKING, Any

from ._eks_auth import EKSAuthClient, resolve_eks_auth_endpoint
from ._generated.eks_auth import errors as _errors
from ._generated.eks_auth import models as _models
from ._generated.eks_auth.errors import *  # noqa: F403

__all__ = [
    "EKSAuthClient",
    "resolve_eks_auth_endpoint",
    *_models.__all__,
    *_errors.__all__,
]

if TYPE_CHECKING:
    from ._generated.eks_auth.models import *  # noqa: F403


def __getattr__(name: str) -> Any:
    if name in _MODEL_NAMES:
        return getattr(_models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _MODEL_NAMES)


_MODEL_NAMES = frozenset(_models.__all__)
