"""Async paginators: every page of a paginated operation, or every item of its pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._generated.shapes import SHAPES
from ._operation import OperationSpec

if TYPE_CHECKING:
    from ._core import ClientCore

I = TypeVar("I")  # noqa: E741 - the item type
O = TypeVar("O")  # noqa: E741 - the page (output) type

_PLANS: dict[str, tuple[int, str, str]] = {}


def _plan(op: OperationSpec[Any]) -> tuple[int, str, str]:
    """(index of the input token, python name of the output token, of the result list)."""
    try:
        return _PLANS[op.name]
    except KeyError:
        pass
    from ._generated.operations import PAGINATORS

    spec = PAGINATORS[op.name]
    inputs = SHAPES[op.input_shape][2]
    outputs = {m[1]: m[0] for m in SHAPES[op.output_shape][2]}
    index = next(i for i, m in enumerate(inputs) if m[1] == spec.input_token)
    plan = _PLANS[op.name] = (index, outputs[spec.output_token], outputs[spec.result_key])
    return plan


class Paginator(Generic[I, O]):
    """``async for item in paginator`` walks every item; ``paginator.pages()`` every page.

    Paging stops when a page has no next token, or repeats one already seen (a service
    bug that would otherwise loop forever).
    """

    __slots__ = ("_client", "_op", "_values")

    def __init__(self, client: ClientCore, op: OperationSpec[O], values: tuple[Any, ...]) -> None:
        self._client = client
        self._op = op
        self._values = values

    async def pages(self) -> AsyncIterator[O]:
        """The pages themselves: one output per request, following the next token until the last page."""
        index, token_attr, _ = _plan(self._op)
        values = list(self._values)
        seen: set[str] = set()
        while True:
            page = await self._client._invoke(self._op, tuple(values))
            yield page
            token = getattr(page, token_attr)
            if not token or token in seen:
                return
            seen.add(token)
            values[index] = token

    def __aiter__(self) -> AsyncIterator[I]:
        return self._items()

    async def _items(self) -> AsyncIterator[I]:
        _, _, result_attr = _plan(self._op)
        async for page in self.pages():
            for item in getattr(page, result_attr) or ():
                yield item


class PaginatorCore:
    """What every paginator method needs: the client."""

    __slots__ = ("_client",)

    def __init__(self, client: ClientCore) -> None:
        self._client = client

    def _paginate(self, op: OperationSpec[O], values: tuple[Any, ...]) -> Paginator[Any, O]:
        return Paginator(self._client, op, values)
