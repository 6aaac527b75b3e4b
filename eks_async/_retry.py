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
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Final, Literal

import attrs

from ._exceptions import EKSAsyncError, ServiceError, TimeoutError_, TransportError

THROTTLING_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES: Final = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "ServerException",
        "ServiceUnavailableException",
    }
)
TRANSIENT_STATUSES: Final = frozenset({500, 502, 503, 504})
#: Codes that say the request's time is off: corrected once from the answer's Date header.
CLOCK_SKEW_CODES: Final = frozenset(
    {
        "RequestTimeTooSkewed",
        "RequestExpired",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "AuthFailure",
        "RequestInTheFuture",
    }
)

Kind = Literal["throttling", "transient", "timeout", "connection"]


def classify(error: BaseException) -> Kind | None:
    """Why ``error`` is worth retrying, or ``None`` when it never is."""
    if isinstance(error, ServiceError):
        if error.code in THROTTLING_CODES or error.http_status == 429:
            return "throttling"
        if error.code in TRANSIENT_CODES or error.http_status in TRANSIENT_STATUSES:
            return "transient"
        return None
    if isinstance(error, TimeoutError_):
        return "timeout"
    if isinstance(error, TransportError):
        return "connection"
    return None


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


class RetryExhausted(EKSAsyncError):  # pragma: no cover - internal marker, never raised
    """Internal: no more attempts."""


async def sleep(seconds: float) -> None:
    await asyncio.sleep(0 if _instant else seconds)


Attempt = Callable[[], Awaitable[object]]
