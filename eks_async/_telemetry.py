"""OpenTelemetry spans and DEBUG log lines: what a call and a wait did, and why.

Both are opt-in and cost nothing when off:

- **Spans** are made only when the ``opentelemetry-api`` package (the ``eks-async[otel]``
  extra) is installed *and* the application has set a tracer provider. This module never
  imports ``opentelemetry`` itself: a provider can only be set through
  ``opentelemetry.trace``, so when that module is not in ``sys.modules`` there is nothing to
  look up (one dict look-up per call). The one exception is ``OTEL_PYTHON_TRACER_PROVIDER``,
  which the API reads on first use: when it is set and the package is importable, the
  module is imported once. With the API loaded but no provider set (the API's proxy or
  no-op provider), ``tracer()`` answers ``None`` and the pipeline takes its plain path.
- **DEBUG lines** go to the ``eks_async`` logger; the pipeline asks
  ``logger.isEnabledFor(DEBUG)`` once per call and times nothing when it is off.

What a span holds follows OpenTelemetry's conventions for AWS SDK client calls: name
``EKS.DescribeCluster`` (``rpc.service``.``rpc.method``), kind CLIENT, ``rpc.system`` =
``aws-api``, ``cloud.region``, ``server.address``/``server.port``, and from the last
attempt ``aws.request_id`` and ``http.response.status_code``; a failed call has status
ERROR and ``error.type`` (the error code EKS sent, or the exception's class). Each attempt
is an event ``eks_async.attempt``, each wait before the next one (a retry's backoff, an
IAM-propagation retry, a wait for the client-side rate limit) an event ``eks_async.retry``.
A waiter is a span ``wait <waiter>`` (kind INTERNAL) holding one event per poll and the
spans of the calls it makes.

Never in a span or a log line: a request's parameters, an answer's body, a header, a
credential, a token or a signature. What does go in (codes, statuses, request ids, the
error's text as status description) is text the client already shows, run through
``_redact.redact``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from ._redact import redact
from ._version import __version__

if TYPE_CHECKING:
    from ._pipeline import RetryEvent, Shared, _Call
    from ._waiters.engine import Waiter

__all__ = [
    "logger",
    "observed_attempt",
    "poll",
    "retry_event",
    "traced_call",
    "traced_wait",
    "tracer",
]

logger: Final = logging.getLogger("eks_async")
DEBUG: Final = logging.DEBUG

#: The instrumentation scope's name.
SCOPE: Final = "eks_async"
ATTEMPT_EVENT: Final = "eks_async.attempt"
RETRY_EVENT: Final = "eks_async.retry"
POLL_EVENT: Final = "eks_async.waiter.poll"

# --- is anyone listening? ------------------------------------------------------------------

#: (provider, its tracer or None) from the last look-up.
_cache: list[Any] = [None, None]
_UNKNOWN: Final = object()
#: Whether ``OTEL_PYTHON_TRACER_PROVIDER`` was set when first looked at (``None``: not yet).
_env_provider: bool | None = None


def _load_from_env() -> Any:
    """``opentelemetry.trace`` when ``OTEL_PYTHON_TRACER_PROVIDER`` names a provider and
    the API is installed; else ``None``. The environment is read once."""
    global _env_provider
    if _env_provider is None:
        _env_provider = bool(os.environ.get("OTEL_PYTHON_TRACER_PROVIDER"))
    if not _env_provider:
        return None
    import importlib.util

    if importlib.util.find_spec("opentelemetry") is None:
        return None
    import opentelemetry.trace

    return opentelemetry.trace


def tracer() -> Any:
    """The tracer to make spans with, or ``None`` when no tracer provider is set.

    Never imports ``opentelemetry`` (see the module's text): when the application has not
    imported ``opentelemetry.trace``, no provider can be set.
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        if _env_provider is False:
            return None
        trace = _load_from_env()
        if trace is None:
            return None
    elif _env_provider is None:
        _load_from_env()
    # The API's global, read directly: ``get_tracer_provider()`` looks up the environment on
    # every call (about 1 µs) while none is set. Unset and not named by the environment
    # (checked once, above): no provider.
    provider: Any = getattr(trace, "_TRACER_PROVIDER", _UNKNOWN)
    if provider is None and not _env_provider:
        return None
    if provider is None or provider is _UNKNOWN:
        provider = trace.get_tracer_provider()
    cache = _cache
    if provider is cache[0]:
        return cache[1]
    found = None
    if not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        found = provider.get_tracer(SCOPE, __version__)
    cache[0], cache[1] = provider, found
    return found


# --- one call -------------------------------------------------------------------------------


def _error_type(error: BaseException) -> str:
    code = getattr(error, "code", None)
    if isinstance(code, str) and code:
        return code
    return type(error).__name__.rstrip("_")


def _fail(span: Any, error: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    kind = _error_type(error)
    span.set_attribute("error.type", kind)
    span.set_status(Status(StatusCode.ERROR, redact(str(error)) or kind))


_servers: dict[str, tuple[str, int | None]] = {}


def _server(endpoint: str) -> tuple[str, int | None]:
    found = _servers.get(endpoint)
    if found is None:
        from urllib.parse import urlsplit

        parts = urlsplit(endpoint)
        try:
            port = parts.port
        except ValueError:
            port = None
        if port is None:
            port = {"https": 443, "http": 80}.get(parts.scheme)
        found = (parts.hostname or "", port)
        if len(_servers) < 256:
            _servers[endpoint] = found
    return found


async def traced_call(
    tracer: Any,
    invoke: Callable[..., Awaitable[Any]],
    shared: Shared,
    options: Any,
    op: Any,
    values: tuple[Any, ...],
) -> Any:
    """``invoke(shared, options, op, values, span)`` inside a CLIENT span named
    ``Service.Operation``; the span is current meanwhile (waiters' spans hold it)."""
    from opentelemetry.trace import SpanKind

    service = shared.service.name
    attributes: dict[str, Any] = {
        "rpc.system": "aws-api",
        "rpc.service": service,
        "rpc.method": op.name,
    }
    with tracer.start_as_current_span(
        f"{service}.{op.name}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            recorded = span if span.is_recording() else False  # False: do no telemetry work
            output = await invoke(shared, options, op, values, recorded)
        except BaseException as error:
            _where(span, shared)
            _fail(span, error)
            # Set by the pipeline on an error of a call that sent something (not on one
            # refused before sending, which only has the class's default).
            attempts = getattr(error, "__dict__", {}).get("attempts")
            if isinstance(attempts, int):
                span.set_attribute("eks_async.attempts", attempts)
            raise
        _where(span, shared)
        meta = getattr(output, "response_metadata", None)
        if meta is not None:
            span.set_attribute("eks_async.attempts", meta.attempts)
        return output


def _where(span: Any, shared: Shared) -> None:
    if shared.region:
        span.set_attribute("cloud.region", shared.region)
    if shared.endpoint:
        host, port = _server(shared.endpoint)
        span.set_attribute("server.address", host)
        if port is not None:
            span.set_attribute("server.port", port)


async def observed_attempt(call: _Call) -> Any:
    """``call.attempt()``, timed, with its DEBUG line and span event."""
    started = time.perf_counter()
    try:
        output = await call.attempt()
    except BaseException as error:
        _attempt_done(call, started, None, error)
        raise
    _attempt_done(call, started, output, None)
    return output


def _attempt_done(call: _Call, started: float, output: Any, error: BaseException | None) -> None:
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    operation = call.op.name
    number = call.attempts
    status: int | None = None
    request_id: str | None = None
    code: str | None = None
    if error is None:
        meta = getattr(output, "response_metadata", None)
        if meta is not None:
            status, request_id = meta.http_status, meta.request_id
    else:
        status = getattr(error, "http_status", None)
        request_id = getattr(error, "request_id", None)
        code = _error_type(error)
    if request_id is not None:
        request_id = redact(request_id)
    if call.debug:
        if status is None:
            logger.debug(
                "%s: attempt %d: no answer (%s), %.1f ms", operation, number, code, elapsed_ms
            )
        elif error is None:
            logger.debug(
                "%s: attempt %d: HTTP %d, request id %s, %.1f ms",
                operation, number, status, request_id, elapsed_ms,
            )
        else:
            logger.debug(
                "%s: attempt %d: HTTP %d %s, request id %s, %.1f ms",
                operation, number, status, code, request_id, elapsed_ms,
            )
    span = call.span
    if span is not None:
        attributes: dict[str, Any] = {"eks_async.attempt": number, "eks_async.elapsed_ms": elapsed_ms}
        if status is not None:
            attributes["http.response.status_code"] = status
            span.set_attribute("http.response.status_code", status)
        if request_id is not None:
            attributes["aws.request_id"] = request_id
            span.set_attribute("aws.request_id", request_id)
        if code is not None:
            attributes["error.type"] = code
        span.add_event(ATTEMPT_EVENT, attributes)


def not_retried(call: _Call, error: BaseException, why: str) -> None:
    """The DEBUG line of a call that ends with ``error``: why it is not retried (again)."""
    logger.debug(
        "%s: attempt %d failed (%s); not retried: %s",
        call.op.name, call.attempts, _error_type(error), why,
    )


def retry_event(span: Any, event: RetryEvent) -> None:
    """A wait before the next attempt, as a span event."""
    span.add_event(RETRY_EVENT, {
        "eks_async.attempt": event.attempt,
        "eks_async.retry.kind": event.kind,
        "eks_async.retry.reason": redact(event.reason),
        "eks_async.retry.delay_s": event.delay,
    })


# --- one wait -------------------------------------------------------------------------------


async def traced_wait(tracer: Any, waiter: Waiter[Any]) -> Any:
    """``waiter._run()`` inside a span ``wait <waiter>``; one event per poll."""
    with tracer.start_as_current_span(
        f"wait {waiter.name}",
        attributes={"eks_async.waiter": waiter.name},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        waiter.span = span if span.is_recording() else None
        try:
            return await waiter._run()
        except BaseException as error:
            _fail(span, error)
            raise
        finally:
            waiter.span = None


def poll(
    waiter: Waiter[Any], attempt: int, elapsed: float, state: str, next_delay: float | None
) -> None:
    """One poll of a waiter: its DEBUG line, and its span event when traced."""
    span = waiter.span
    debug = logger.isEnabledFor(DEBUG)
    if span is None and not debug:
        return
    state = redact(state)
    if debug:
        if next_delay is None:
            logger.debug(
                "%s: poll %d: %s; the wait ends after %.1f s",
                waiter.name, attempt, state, elapsed,
            )
        else:
            logger.debug(
                "%s: poll %d: %s; next poll in %.3f s (%.1f s elapsed)",
                waiter.name, attempt, state, next_delay, elapsed,
            )
    if span is not None:
        attributes: dict[str, Any] = {
            "eks_async.waiter.poll": attempt,
            "eks_async.waiter.state": state,
            "eks_async.waiter.elapsed_s": elapsed,
        }
        if next_delay is not None:
            attributes["eks_async.waiter.next_delay_s"] = next_delay
        span.add_event(POLL_EVENT, attributes)
        span.set_attribute("eks_async.waiter.polls", attempt)
