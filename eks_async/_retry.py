"""Retries: which failures are retried, how long to wait, and when to stop.

The loop itself is tenacity's; this module keeps it behind ``RetryConfig`` so no tenacity
type shows in the public API. The first attempt of every call runs outside tenacity (it is
the hot path and usually succeeds); tenacity takes over only once an attempt has failed.

Standard mode follows the AWS SDKs' definition: a total of ``max_attempts`` attempts,
full-jitter exponential backoff capped at ``max_backoff``, and a retry quota shared by the
client (a bucket of 500 tokens: a retry takes 5, a retry after a timeout 10, a success puts
back 1, or what its retries took). Adaptive mode adds the client-side rate limiter of
``_ratelimit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from ._errorcodes import (
    CLOCK_SKEW_CODES,
    THROTTLING_CODES,
    TRANSIENT_CODES,
    TRANSIENT_STATUSES,
    Kind,
)
from ._exceptions import EKSAsyncError, ServiceError

if TYPE_CHECKING:
    import tenacity

    from ._pipeline import _Call

__all__ = [
    "CLOCK_SKEW_CODES",
    "THROTTLING_CODES",
    "TRANSIENT_CODES",
    "TRANSIENT_STATUSES",
    "Kind",
    "RetryConfig",
    "RetryQuota",
    "backoff",
    "classify",
    "instant_retries",
    "is_clock_skew",
    "retry_after",
    "retry_strategies",
    "set_instant_retries",
]

def classify(error: BaseException | None) -> Kind | None:
    """Why ``error`` is worth retrying, or ``None`` when it never is (fixed when it was made)."""
    return error.retry_kind if isinstance(error, EKSAsyncError) else None


def is_clock_skew(error: BaseException) -> bool:
    """Whether EKS refused the request because its signing time is off."""
    if not isinstance(error, ServiceError) or error.code not in CLOCK_SKEW_CODES:
        return False
    if error.code == "InvalidSignatureException":
        message = (error.message or "").lower()
        return "expired" in message or "not yet current" in message
    return True


@attrs.frozen(kw_only=True, slots=True)
class RetryConfig:
    """How a client retries. Every field has a finite default.

    ``mode``: ``"standard"`` or ``"adaptive"`` (standard plus a client-side send-rate limiter
    that slows down when EKS throttles). ``max_attempts`` counts the first attempt.
    ``deadline``: seconds a whole call may take, retries included (``None``: no limit).
    """

    mode: Literal["standard", "adaptive"] = "standard"
    max_attempts: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    max_backoff: float = attrs.field(default=20.0, validator=attrs.validators.ge(0))
    deadline: float | None = None
    #: Size of the retry quota; ``None`` turns the quota off.
    quota: int | None = 500

    def __attrs_post_init__(self) -> None:
        if self.mode not in ("standard", "adaptive"):
            raise ValueError(f"mode must be 'standard' or 'adaptive', not {self.mode!r}")


# --- the test switch ------------------------------------------------------------------------

_instant = False


def set_instant_retries(enabled: bool) -> None:
    """Make every retry sleep zero seconds (for tests); the attempts are still made."""
    global _instant
    _instant = enabled


@contextlib.contextmanager
def instant_retries() -> Iterator[None]:
    """``with instant_retries():`` retries without sleeping inside the block."""
    previous = _instant
    set_instant_retries(True)
    try:
        yield
    finally:
        set_instant_retries(previous)


def instant() -> bool:
    return _instant


# --- the retry quota ------------------------------------------------------------------------

RETRY_COST: Final = 5
TIMEOUT_RETRY_COST: Final = 10
NO_RETRY_INCREMENT: Final = 1


class RetryQuota:
    """The token bucket that stops retries when too many calls are failing."""

    __slots__ = ("_capacity", "available")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self.available = capacity

    def acquire(self, kind: Kind) -> int | None:
        """Take the cost of one retry; ``None`` when the quota is spent."""
        cost = TIMEOUT_RETRY_COST if kind == "timeout" else RETRY_COST
        if cost > self.available:
            return None
        self.available -= cost
        return cost

    def release(self, acquired: int) -> None:
        """A call succeeded: give back what its retries took, or one token."""
        self.available = min(self._capacity, self.available + (acquired or NO_RETRY_INCREMENT))


def backoff(attempt: int, max_backoff: float, rng: Callable[[], float] = random.random) -> float:
    """Full jitter: uniform in ``[0, min(2 ** (attempt - 1), max_backoff)]`` seconds.

    ``attempt`` is the number of the attempt that just failed (1 for the first).
    """
    return rng() * min(2.0 ** (attempt - 1), max_backoff)


def retry_after(headers: object) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date), if any."""
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    value = getter("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def sleep(seconds: float) -> None:
    await asyncio.sleep(0 if _instant else seconds)


# --- the strategies tenacity composes, for the attempts after a failed first one -------------


def _free_skew_retry(error: BaseException | None) -> bool:
    """A clock-skew refusal that nothing else makes retryable: one free, immediate retry."""
    return error is not None and is_clock_skew(error) and classify(error) is None


def retry_strategies(call: _Call) -> tuple[Any, Any, Any]:
    """``(stop, wait, retry)`` for one call, composed from tenacity's strategy types.

    - retry: a retryable kind, or a clock-skew refusal not yet retried once;
    - stop: ``max_attempts`` reached (the free clock-skew retry not counted), or else the
      retry quota cannot pay for the retry;
    - wait: full-jitter exponential backoff, at least ``Retry-After``, at most
      ``max_backoff``; none before the clock-skew retry.
    """
    retryable, stop_after_attempts, stop_when_quota_spent, wait_backoff = _strategy_types()
    stop = stop_after_attempts(call) | stop_when_quota_spent(call)
    return stop, wait_backoff(call), retryable(call)


@functools.cache
def _strategy_types() -> tuple[Any, Any, Any, Any]:
    # Built on first need: tenacity is imported only once a call has to retry.
    import tenacity

    class Retryable(tenacity.retry_base):
        def __init__(self, call: _Call) -> None:
            self.call = call

        def __call__(self, state: tenacity.RetryCallState) -> bool:
            error = _error_of(state)
            if error is None:
                return False
            if classify(error) is not None:
                return True
            return _free_skew_retry(error) and not self.call.skew_retried

    class StopAfterAttempts(tenacity.stop.stop_base):
        def __init__(self, call: _Call) -> None:
            self.call = call

        def __call__(self, state: tenacity.RetryCallState) -> bool:
            if _free_skew_retry(_error_of(state)):
                return False
            counted = state.attempt_number - (1 if self.call.skew_retried else 0)
            return counted >= self.call.options.retry.max_attempts

    class StopWhenQuotaSpent(tenacity.stop.stop_base):
        def __init__(self, call: _Call) -> None:
            self.call = call

        def __call__(self, state: tenacity.RetryCallState) -> bool:
            call = self.call
            quota = call.quota
            kind = classify(_error_of(state))
            if quota is None or kind is None:
                return False
            cost = quota.acquire(kind)
            if cost is None:
                logger.debug("%s: retry quota spent, not retrying", call.op.name)
                return True
            call.acquired += cost
            return False

    class WaitBackoff(tenacity.wait.wait_base):
        def __init__(self, call: _Call) -> None:
            self.cap = call.options.retry.max_backoff

        def __call__(self, state: tenacity.RetryCallState) -> float:
            error = _error_of(state)
            if _free_skew_retry(error):
                return 0.0
            delay = backoff(state.attempt_number, self.cap)
            hint = getattr(error, "retry_after", None)
            if hint is not None:
                delay = min(max(delay, hint), self.cap)
            return delay

    return Retryable, StopAfterAttempts, StopWhenQuotaSpent, WaitBackoff


def _error_of(state: tenacity.RetryCallState) -> BaseException | None:
    outcome = state.outcome
    return outcome.exception() if outcome is not None and outcome.failed else None


logger = logging.getLogger("eks_async")
