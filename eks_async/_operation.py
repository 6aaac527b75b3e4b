"""The static description of an operation, as the generated tables give it."""

from __future__ import annotations

from typing import Generic, TypeVar

import attrs

T = TypeVar("T")


@attrs.frozen(slots=True, kw_only=True)
class OperationSpec(Generic[T]):
    """One operation of the model: where it is sent and what comes back."""

    name: str
    method: str
    uri: str
    input_shape: str
    output_shape: str
    errors: tuple[str, ...]

    @property
    def output_cls(self) -> type[T]:
        """The output's data class (its module is imported on first use, like every model class)."""
        from ._generated import models
        from ._generated.shapes import SHAPES

        cls: type[T] = getattr(models, SHAPES[self.output_shape][1])
        return cls


@attrs.frozen(slots=True, kw_only=True)
class PaginatorSpec:
    """How an operation pages: which input takes the token and which output carries it."""

    input_token: str
    output_token: str
    limit_key: str | None
    result_key: str
