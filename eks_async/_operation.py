"""The static descriptions the generated tables are made of: operations, paginators, waiters.

A foundation module: the generated code may import it, and it imports nothing of eks_async,
so generated modules stay leaves that the runtime imports and that never import it back.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

import attrs

T = TypeVar("T")

#: Where a waiter's poll leaves it.
State = Literal["success", "failure", "retry"]


@attrs.frozen(slots=True, kw_only=True)
class OperationSpec(Generic[T]):
    """One operation of the model: where it is sent and what comes back."""

    name: str
    method: str
    uri: str
    input_shape: str
    output_shape: str
    errors: tuple[str, ...]


@attrs.frozen(slots=True, kw_only=True)
class PaginatorSpec:
    """How an operation pages: which input takes the token and which output carries it."""

    input_token: str
    output_token: str
    limit_key: str | None
    result_key: str


@attrs.frozen(kw_only=True, slots=True)
class Acceptor:
    """One rule of a model waiter: when ``matcher`` on ``argument`` gives ``expected``."""

    state: State
    matcher: Literal["path", "pathAll", "pathAny", "status", "error"]
    expected: Any
    argument: str | None = None


@attrs.frozen(kw_only=True, slots=True)
class WaiterSpec:
    """A waiter of botocore's model: its operation, fixed delay, attempts and acceptors."""

    operation: str
    delay: int
    max_attempts: int
    acceptors: tuple[Acceptor, ...]
