"""One walk over the model's shape tables, shared by every direction of the protocol.

``Compiled`` turns a shape name into a function, made once by the builder of the shape's
kind (``string``, ``integer``, ``boolean``, ``timestamp``, ``list``, ``map``, ``structure``)
and kept. The serializer (typed values to JSON), the boto3-style reader (dicts to typed
values), the parser (JSON to typed values) and the waiters (typed values to the model's
names) are each one ``Compiled`` with their own builders; none walks the tables by itself.

Builders of containers look their members' functions up when first called, not when built,
so shapes that refer to each other compile without recursion.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .._generated.shapes import SHAPES

__all__ = ["Builder", "Compiled", "model_class", "shape_row"]

#: Shape names of EKS Auth's tables start with this (``eks-auth:Credentials``): its shapes
#: share names with EKS's (``PodIdentityAssociation``) but not their form.
AUTH_QUALIFIER = "eks-auth:"


def shape_row(shape_name: str) -> tuple[Any, ...]:
    """The row of a shape in its service's table (EKS's, or EKS Auth's when qualified)."""
    if shape_name.startswith(AUTH_QUALIFIER):
        from .._generated.eks_auth.shapes import SHAPES as AUTH_SHAPES

        return AUTH_SHAPES[shape_name]
    return SHAPES[shape_name]


def model_class(shape_name: str, cls_name: str) -> Any:
    """The data class (or enum) ``cls_name`` of the service ``shape_name`` belongs to."""
    if shape_name.startswith(AUTH_QUALIFIER):
        from .._generated.eks_auth import models as auth_models

        return getattr(auth_models, cls_name)
    from .._generated import models

    return getattr(models, cls_name)

F = TypeVar("F")

#: Makes the function of one shape from its name and its row of the table (or ``None``
#: where the value is used as it is).
Builder = Callable[[str, tuple[Any, ...]], F | None]


class Compiled(Generic[F]):
    """A function per shape, built on first need from the builder of the shape's kind."""

    __slots__ = ("_builders", "_made")

    def __init__(
        self,
        *,
        string: Builder[F],
        integer: Builder[F],
        boolean: Builder[F],
        timestamp: Builder[F],
        list: Builder[F],
        map: Builder[F],
        structure: Builder[F],
    ) -> None:
        self._builders: dict[str, Builder[F]] = {
            "string": string,
            "integer": integer,
            "boolean": boolean,
            "timestamp": timestamp,
            "list": list,
            "map": map,
            "structure": structure,
        }
        self._made: dict[str, F | None] = {}

    def __call__(self, shape_name: str) -> F | None:
        try:
            return self._made[shape_name]
        except KeyError:
            pass
        shape = shape_row(shape_name)
        made = self._made[shape_name] = self._builders[shape[0]](shape_name, shape)
        return made
