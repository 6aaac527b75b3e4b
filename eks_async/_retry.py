"""Retries: which failures are retried, how long to wait, and when to stop.

The loop itself is tenacity's; this module keeps it behind ``RetryConfig`` so no tenacity
type shows in the public API. The first attempt of every call runs outside tenacity (it is
the hot path and usually succeeds); tenacity takes over only once an attempt has failed.

Standard mode follows the AWS SDKs' definition: a total of ``max_attempts`` attempts,
full-jitter exponential backoff capped at ``max_backoff``, and a retry quota shared by the
client (a bucket of 500 tokens: a retry takes 5, a retry after a timeout 10, a success puts
back 1, or what its retries took). Adaptive mode adds the client-side rate limiter of
``_ratelimit``, which paces the retries of throttled attempts: those take nothing from the
quota and count not in ``max_attempts`` but in an allowance of their own
(``ADAPTIVE_THROTTLED_ATTEMPTS``), so a batch that is throttled now and then never fails
for want of attempts or quota.

IAM propagation is a retry path of its own (``is_iam_propagation``): a create or update that
EKS refuses because the IAM role it names, created moments ago, is not known to it yet. Those
retries spend a budget of backoff seconds (``RetryConfig.iam_propagation``), not the standard
attempts or the retry quota.
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
    from ._ratelimit import RateLimiter

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
    "is_iam_propagation",
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


#: The refusals that mean "this IAM principal is not known to EKS yet", by operation: an
#: ``InvalidParameterException`` whose message contains the phrase (compared in lower case).
#: Sources: the Terraform AWS provider retries CreatePodIdentityAssociation and
#: UpdatePodIdentityAssociation on "Role provided in the request does not exist"
#: (hashicorp/terraform-provider-aws#34717, for #34711), and CreateAccessEntry on "The
#: specified principalArn is invalid: invalid principal" (#35535); users of the CLI and of
#: eks-hybrid (aws/eks-hybrid#603) see the latter for a role created seconds earlier.
IAM_PROPAGATION_MESSAGES: Final = {
    "CreatePodIdentityAssociation": "role provided in the request does not exist",
    "UpdatePodIdentityAssociation": "role provided in the request does not exist",
    "CreateAccessEntry": "the specified principalarn is invalid: invalid principal",
}
#: The longest wait between two IAM-propagation retries, in seconds.
IAM_PROPAGATION_MAX_BACKOFF: Final = 10.0


def is_iam_propagation(error: BaseException, operation: str) -> bool:
    """Whether ``error`` refused ``operation`` because an IAM role is not known to EKS yet.

    Narrow on purpose: only the three operations of ``IAM_PROPAGATION_MESSAGES``, only an
    ``InvalidParameterException``, and only with that operation's message. Every other
    ``InvalidParameterException`` (a bad namespace, a malformed ARN, a bad trust policy) is
    the caller's mistake and is never retried. A role that truly does not exist gives the
    same answer, so these retries are bounded by ``RetryConfig.iam_propagation``.
    """
    phrase = IAM_PROPAGATION_MESSAGES.get(operation)
    if phrase is None or not isinstance(error, ServiceError):
        return False
    if error.code != "InvalidParameterException":
        return False
    return phrase in (error.message or "").lower()


def iam_backoff(retry: int, rng: Callable[[], float] = random.random) -> float:
    """The wait before IAM-propagation retry number ``retry`` (1 for the first).

    Growing and jittered, never below half of its step: uniform in ``[s/2, s]`` with
    ``s = min(2 ** (retry - 1), IAM_PROPAGATION_MAX_BACKOFF)`` seconds. IAM usually
    propagates within seconds, so the first retries come soon and none waits over 10 s.
    """
    step = min(2.0 ** (retry - 1), IAM_PROPAGATION_MAX_BACKOFF)
    return step * (0.5 + 0.5 * rng())


def _budget(_inst: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value >= 0:
        raise ValueError(f"{attribute.name} must be None or at least 0, not {value!r}")


@attrs.frozen(kw_only=True, slots=True)
class RetryConfig:
    """How a client retries. Every field has a finite default.

    ``mode``: ``"standard"`` or ``"adaptive"`` (standard plus a client-side send-rate limiter
    that slows down when EKS throttles). ``max_attempts`` counts the first attempt.
    ``deadline``: seconds a whole call may take, retries included (``None``: no limit).
    ``limiter``: in adaptive mode, a ``RateLimiter`` to share with other clients (of one
    account and region, whose calls EKS counts together); ``None``: the client's own.

    In adaptive mode the rate limiter paces the retries of throttled attempts, so those
    count neither in ``max_attempts`` nor against the retry ``quota``: a call gives up
    after ``ADAPTIVE_THROTTLED_ATTEMPTS`` (10) throttled attempts, or ``max_attempts``
    others, or at its ``deadline``.
    """

    mode: Literal["standard", "adaptive"] = "standard"
    max_attempts: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    max_backoff: float = attrs.field(default=20.0, validator=attrs.validators.ge(0))
    deadline: float | None = None
    #: Size of the retry quota; ``None`` turns the quota off.
    quota: int | None = 500
    #: Seconds of backoff a call may spend retrying a create or update refused because the
    #: IAM role it names is not known to EKS yet (``is_iam_propagation``); ``None`` or 0
    #: turns these retries off. They wait ``iam_backoff`` (growing, jittered, at most 10 s;
    #: the last wait is cut to what is left), count in ``attempts`` and ``retry_wait``, reach
    #: ``on_retry`` with ``kind="iam_propagation"``, and take neither ``max_attempts`` nor the
    #: retry quota. The budget counts the waits, not the requests' own time; ``deadline``
    #: bounds the whole call.
    iam_propagation: float | None = attrs.field(default=120.0, validator=_budget)
    limiter: RateLimiter | None = None

    def __attrs_post_init__(self) -> None:
        if self.mode not in ("standard", "adaptive"):
            raise ValueError(f"mode must be 'standard' or 'adaptive', not {self.mode!r}")
        if self.limiter is not None and self.mode != "adaptive":
            raise ValueError("a limiter paces requests in adaptive mode only")


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

#: In adaptive mode, the throttled attempts a call may make (paced by the rate limiter;
#: they count neither in ``max_attempts`` nor against the retry quota).
ADAPTIVE_THROTTLED_ATTEMPTS: Final = 10

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


class IamBudget:
    """One call's IAM-propagation budget: the seconds of waiting left, the retries made,
    and whether the last refusal found it spent.

    tenacity asks the wait strategy before the stop strategy, so the wait does the
    accounting and the stop reads ``spent``.
    """

    __slots__ = ("left", "retries", "spent")

    def __init__(self, seconds: float) -> None:
        self.left = seconds
        self.retries = 0
        self.spent = False

    def next_wait(self) -> float:
        """The wait before the next retry (cut to what is left); 0 and ``spent`` when none is."""
        if self.left <= 0:
            self.spent = True
            return 0.0
        self.retries += 1
        delay = min(iam_backoff(self.retries), self.left)
        self.left -= delay
        return delay


def retry_strategies(call: _Call) -> tuple[Any, Any, Any]:
    """``(stop, wait, retry)`` for one call, composed from tenacity's strategy types.

    - retry: a retryable kind, a clock-skew refusal not yet retried once, or (when
      ``iam_propagation`` is on) an IAM-propagation refusal;
    - stop: for an IAM-propagation refusal, its budget spent; otherwise ``max_attempts``
      reached (neither the free clock-skew retry nor the IAM-propagation retries counted),
      or else the retry quota cannot pay for the retry;
    - wait: full-jitter exponential backoff, at least ``Retry-After``, at most
      ``max_backoff``; none before the clock-skew retry; ``iam_backoff`` (cut to the budget
      left) before an IAM-propagation retry.
    """
    retryable, stop_after_attempts, stop_when_quota_spent, wait_backoff = _strategy_types()
    seconds = call.options.retry.iam_propagation
    iam = IamBudget(seconds) if seconds else None
    stop = stop_after_attempts(call, iam) | stop_when_quota_spent(call)
    return stop, wait_backoff(call, iam), retryable(call, iam)


@functools.cache
def _strategy_types() -> tuple[Any, Any, Any, Any]:
    # Built on first need: tenacity is imported only once a call has to retry.
    import tenacity

    class Retryable(tenacity.retry_base):
        def __init__(self, call: _Call, iam: IamBudget | None) -> None:
            self.call = call
            self.iam = iam

        def __call__(self, state: tenacity.RetryCallState) -> bool:
            error = _error_of(state)
            if error is None:
                return False
            if classify(error) is not None:
                return True
            if self.iam is not None and is_iam_propagation(error, self.call.op.name):
                return True
            return _free_skew_retry(error) and not self.call.skew_retried

    class StopAfterAttempts(tenacity.stop.stop_base):
        def __init__(self, call: _Call, iam: IamBudget | None) -> None:
            self.call = call
            self.iam = iam
            self.paced = call.options.retry.mode == "adaptive"
            self.throttled = 0

        def __call__(self, state: tenacity.RetryCallState) -> bool:
            error = _error_of(state)
            if _free_skew_retry(error):
                return False
            if self.paced and classify(error) == "throttling":
                # Adaptive mode: the limiter paces the retries of throttled attempts, so
                # they have an allowance of their own instead of max_attempts.
                self.throttled += 1
                if self.throttled >= ADAPTIVE_THROTTLED_ATTEMPTS:
                    logger.debug(
                        "%s: throttled %d times, not retrying", self.call.op.name, self.throttled
                    )
                    return True
                return False
            iam = self.iam
            if iam is not None and error is not None and is_iam_propagation(
                error, self.call.op.name
            ):
                if iam.spent:
                    logger.debug(
                        "%s: IAM propagation budget spent, not retrying", self.call.op.name
                    )
                return iam.spent
            counted = state.attempt_number - (1 if self.call.skew_retried else 0)
            counted -= self.throttled
            if iam is not None:
                counted -= iam.retries
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
            if kind == "throttling" and call.options.retry.mode == "adaptive":
                return False  # paced by the rate limiter instead
            cost = quota.acquire(kind)
            if cost is None:
                logger.debug("%s: retry quota spent, not retrying", call.op.name)
                return True
            call.acquired += cost
            return False

    class WaitBackoff(tenacity.wait.wait_base):
        def __init__(self, call: _Call, iam: IamBudget | None) -> None:
            self.cap = call.options.retry.max_backoff
            self.operation = call.op.name
            self.iam = iam

        def __call__(self, state: tenacity.RetryCallState) -> float:
            error = _error_of(state)
            if _free_skew_retry(error):
                return 0.0
            iam = self.iam
            if iam is not None and error is not None and is_iam_propagation(
                error, self.operation
            ):
                return iam.next_wait()
            delay = backoff(state.attempt_number - (iam.retries if iam else 0), self.cap)
            hint = getattr(error, "retry_after", None)
            if hint is not None:
                delay = min(max(delay, hint), self.cap)
            return delay

    return Retryable, StopAfterAttempts, StopWhenQuotaSpent, WaitBackoff


def _error_of(state: tenacity.RetryCallState) -> BaseException | None:
    outcome = state.outcome
    return outcome.exception() if outcome is not None and outcome.failed else None


logger = logging.getLogger("eks_async")
