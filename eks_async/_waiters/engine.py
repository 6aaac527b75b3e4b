"""Waiters: poll a read operation, with growing jittered delays, until a change shows.

A waiter polls, decides from the answer (an output or an error) whether the wait succeeded,
failed or goes on, and sleeps a delay that grows exponentially between ``min_delay`` and
``max_delay``, never past ``max_wait`` in all. Throttling while polling is a reason to slow
down, not to fail. Success returns the typed output of the last poll; failure raises
``WaiterFailureError`` with that output; running out of time raises ``WaiterTimeoutError``
with the last output or error seen.

The acceptors of botocore's ``waiters-2.json`` (matchers ``path``, ``pathAll``, ``pathAny``,
``status``, ``error``) are evaluated here on the model-named form of the output, so the
generated waiters behave as botocore's on the same answers.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import attrs

from .._exceptions import EKSAsyncError, ServiceError, TimeoutError_
from .._operation import Acceptor, State
from .._pipeline import call_budget
from .._restjson.walk import Compiled
from .._retry import classify
from .._telemetry import poll as _telemetry_poll
from .._telemetry import tracer as _telemetry_tracer

T = TypeVar("T")


@attrs.frozen(kw_only=True, slots=True)
class WaiterConfig:
    """How a waiter paces itself. All times are in seconds.

    ``clock`` and ``sleep`` can be replaced (tests drive time by hand with them).
    """

    min_delay: float = attrs.field(default=2.0, validator=attrs.validators.gt(0))
    max_delay: float = attrs.field(default=120.0, validator=attrs.validators.gt(0))
    max_wait: float = attrs.field(default=600.0, validator=attrs.validators.gt(0))
    jitter: bool = True
    clock: Callable[[], float] = attrs.field(default=time.monotonic, eq=False, repr=False)
    sleep: Callable[[float], Awaitable[None]] = attrs.field(
        default=asyncio.sleep, eq=False, repr=False
    )
    rng: Callable[[], float] = attrs.field(default=random.random, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.max_delay < self.min_delay:
            raise ValueError("max_delay must not be below min_delay")


@attrs.frozen(kw_only=True, slots=True)
class WaitProgress:
    """One poll of a waiter, as a progress callback sees it."""

    waiter: str
    #: 1 for the first poll.
    attempt: int
    #: Seconds since the wait began.
    elapsed: float
    #: What the poll saw: a status such as ``InProgress``, an error code, or ``visible``.
    state: str
    #: Seconds until the next poll; ``None`` when this poll ended the wait.
    next_delay: float | None


class WaiterError(EKSAsyncError):
    """A waiter ended without the state it waited for."""

    def __init__(self, message: str, *, waiter: str, polls: int, elapsed: float) -> None:
        self.waiter = waiter
        self.polls = polls
        self.elapsed = elapsed
        super().__init__(message)


class WaiterFailureError(WaiterError):
    """The resource reached a state from which the awaited one cannot follow."""

    def __init__(
        self,
        message: str,
        *,
        waiter: str,
        polls: int,
        elapsed: float,
        output: Any = None,
        error: EKSAsyncError | None = None,
        errors: Sequence[Any] = (),
    ) -> None:
        super().__init__(message, waiter=waiter, polls=polls, elapsed=elapsed)
        #: The typed output of the last poll (``None`` when the poll raised).
        self.output = output
        #: The error of the last poll, when an error ended the wait.
        self.error = error
        #: For a failed or cancelled update: its ``errors`` (ErrorDetail) list.
        self.errors = list(errors)


class WaiterTimeoutError(WaiterError):
    """The maximum wait passed before the awaited state showed."""

    def __init__(
        self,
        message: str,
        *,
        waiter: str,
        polls: int,
        elapsed: float,
        last_output: Any = None,
        last_error: EKSAsyncError | None = None,
    ) -> None:
        super().__init__(message, waiter=waiter, polls=polls, elapsed=elapsed)
        self.last_output = last_output
        self.last_error = last_error


# --- acceptors ------------------------------------------------------------------------------


ToForm = Callable[[Any], Any]


def _enum_value(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _form_structure(_: str, shape: tuple[Any, ...]) -> ToForm:
    members = shape[2]

    def form(value: Any) -> Any:
        out = {}
        for m in members:
            item = getattr(value, m[0])
            if item is not None:
                inner = _form(m[3])
                out[m[1]] = inner(item) if inner is not None else item
        return out

    return form


def _form_list(_: str, shape: tuple[Any, ...]) -> ToForm:
    def form(value: Any) -> Any:
        inner = _form(shape[1])
        if inner is None:
            return list(value)
        return [None if v is None else inner(v) for v in value]

    return form


def _form_map(_: str, shape: tuple[Any, ...]) -> ToForm:
    def form(value: Any) -> Any:
        inner = _form(shape[2])
        if inner is None:
            return dict(value)
        return {k: None if v is None else inner(v) for k, v in value.items()}

    return form


#: The model-named, JSON-like form of a typed value, per shape (``None``: the value itself).
_form: Compiled[ToForm] = Compiled(
    string=lambda _, shape: _enum_value if shape[2] else None,
    integer=lambda _, shape: None,
    boolean=lambda _, shape: None,
    timestamp=lambda _, shape: None,
    list=_form_list,
    map=_form_map,
    structure=_form_structure,
)


def to_model_form(value: Any, shape_name: str) -> Any:
    """A typed value in the model-named, JSON-like form waiter paths are written against."""
    if value is None:
        return None
    form = _form(shape_name)
    return value if form is None else form(value)


def search(path: str, data: Any) -> Any:
    """The subset of JMESPath that EKS's waiters use: ``a.b``, ``a[].b``, ``length(a)``."""
    if path.startswith("length(") and path.endswith(")"):
        inner = search(path[7:-1], data)
        return len(inner) if isinstance(inner, list | dict | str) else None
    current: Any = data
    projected = False
    for part in path.split("."):
        flatten = part.endswith("[]")
        name = part[:-2] if flatten else part
        if projected:
            current = [
                item.get(name) if isinstance(item, dict) else None for item in current
            ]
            current = [c for c in current if c is not None]
            if flatten:
                current = [x for c in current if isinstance(c, list) for x in c]
        else:
            current = current.get(name) if isinstance(current, dict) else None
            if flatten:
                if not isinstance(current, list):
                    return None
                projected = True
    return current


def match(
    acceptors: Sequence[Acceptor], data: Any, error: EKSAsyncError | None
) -> Acceptor | None:
    """The first acceptor that matches this poll, as botocore's waiters pick it."""
    for acceptor in acceptors:
        if acceptor.matcher == "error":
            expected = acceptor.expected
            if error is None:
                if expected is False:  # "no error" matcher
                    return acceptor
                continue
            if isinstance(error, ServiceError) and (expected is True or error.code == expected):
                return acceptor
            continue
        if acceptor.matcher == "status":
            if error is None and acceptor.expected == 200:
                return acceptor
            if isinstance(error, ServiceError) and error.http_status == acceptor.expected:
                return acceptor
            continue
        if error is not None or acceptor.argument is None:
            continue
        found = search(acceptor.argument, data)
        if acceptor.matcher == "path":
            if found == acceptor.expected:
                return acceptor
        elif acceptor.matcher == "pathAll":
            if isinstance(found, list) and found and all(x == acceptor.expected for x in found):
                return acceptor
        elif (
            acceptor.matcher == "pathAny"
            and isinstance(found, list)
            and any(x == acceptor.expected for x in found)
        ):
            return acceptor
    return None


# --- the engine -----------------------------------------------------------------------------

Decision = tuple[State | None, str]
Poll = Callable[[], Awaitable[T]]
Decide = Callable[[Any, EKSAsyncError | None], Decision]


class Waiter(Generic[T]):
    """Runs one wait: poll, decide, sleep, until success, failure or the time is up."""

    def __init__(
        self,
        name: str,
        poll: Poll[T],
        decide: Decide,
        config: WaiterConfig,
        on_progress: Callable[[WaitProgress], None] | None = None,
        failure_errors: Callable[[Any], Sequence[Any]] | None = None,
    ) -> None:
        self.name = name
        self.poll = poll
        self.decide = decide
        self.config = config
        self.on_progress = on_progress
        self.failure_errors = failure_errors
        #: The wait's OpenTelemetry span while it runs traced (``_telemetry.traced_wait``).
        self.span: Any = None

    def delay(self, attempt: int, throttled: int) -> float:
        """The pause after poll ``attempt``; each throttled poll doubles it once more."""
        cfg = self.config
        ceiling = min(cfg.max_delay, cfg.min_delay * 2.0 ** (attempt - 1 + throttled))
        if not cfg.jitter:
            return ceiling
        return cfg.min_delay + cfg.rng() * (ceiling - cfg.min_delay)

    async def run(self) -> T:
        # --- telemetry: a span per wait, only when a tracer provider is set (_telemetry) ---
        tracer = _telemetry_tracer()
        if tracer is not None:
            from .._telemetry import traced_wait

            return await traced_wait(tracer, self)  # type: ignore[no-any-return]
        # --- end telemetry ---
        return await self._run()

    async def _run(self) -> T:
        cfg = self.config
        start = cfg.clock()
        attempt = 0
        throttled = 0
        last_output: Any = None
        last_error: EKSAsyncError | None = None
        while True:
            attempt += 1
            output: Any = None
            error: EKSAsyncError | None = None
            budget = None
            if cfg.clock is time.monotonic:
                # The poll's own retries may not run past max_wait either (real time only:
                # a test's hand-driven clock says nothing of the event loop's).
                remaining = cfg.max_wait - (cfg.clock() - start)
                budget = call_budget.set(asyncio.get_running_loop().time() + remaining)
            try:
                output = await self.poll()
            except EKSAsyncError as exc:
                error = exc
            finally:
                if budget is not None:
                    call_budget.reset(budget)
            elapsed = cfg.clock() - start
            state: State | None
            if isinstance(error, TimeoutError_) and elapsed >= cfg.max_wait:
                # The poll ran out of the waiter's time: no room is left (below), so this
                # ends the wait with WaiterTimeoutError carrying the poll's error.
                state, label = "retry", "retrying a poll when max_wait ran out"
            elif error is not None and classify(error) == "throttling":
                state = "retry"
                label = f"throttled ({getattr(error, 'code', type(error).__name__)})"
                throttled += 1
            else:
                state, label = self.decide(output, error)
            if output is not None:
                last_output = output
            last_error = error
            if state is None:  # an error no acceptor expects ends the wait, as in botocore
                state = "failure"
            if state == "success":
                self._report(attempt, elapsed, label, None)
                return output  # type: ignore[no-any-return]
            if state == "failure":
                self._report(attempt, elapsed, label, None)
                errors = self.failure_errors(output) if self.failure_errors and output else ()
                raise WaiterFailureError(
                    f"{self.name}: reached {label} after {attempt} polls",
                    waiter=self.name,
                    polls=attempt,
                    elapsed=elapsed,
                    output=output,
                    error=error,
                    errors=errors,
                )
            remaining = cfg.max_wait - elapsed
            delay = min(self.delay(attempt, throttled), remaining)
            if remaining < cfg.min_delay:  # no room left for another poll
                self._report(attempt, elapsed, label, None)
                raise WaiterTimeoutError(
                    f"{self.name}: still {label} after {attempt} polls "
                    f"and {elapsed:.1f} s (max_wait {cfg.max_wait} s)",
                    waiter=self.name,
                    polls=attempt,
                    elapsed=elapsed,
                    last_output=last_output,
                    last_error=last_error,
                )
            self._report(attempt, elapsed, label, delay)
            await cfg.sleep(delay)

    def _report(self, attempt: int, elapsed: float, state: str, next_delay: float | None) -> None:
        _telemetry_poll(self, attempt, elapsed, state, next_delay)  # DEBUG line, span event
        if self.on_progress is not None:
            self.on_progress(
                WaitProgress(
                    waiter=self.name,
                    attempt=attempt,
                    elapsed=elapsed,
                    state=state,
                    next_delay=next_delay,
                )
            )


def acceptor_decider(acceptors: Sequence[Acceptor], output_shape: str) -> Decide:
    """The decision function of a model waiter."""

    def decide(output: Any, error: EKSAsyncError | None) -> Decision:
        data = to_model_form(output, output_shape) if output is not None else None
        found = match(acceptors, data, error)
        if error is not None:
            label = getattr(error, "code", type(error).__name__)
        else:
            paths = [a.argument for a in acceptors if a.argument]
            label = str(search(paths[0], data)) if paths else "ok"
        if found is None:
            return (None if error is not None else "retry"), label
        return found.state, label

    return decide
