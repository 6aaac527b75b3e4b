"""The one place tests read eks_async's internal client state.

Tests go through the public API wherever they can. What they cannot see that way (the
retry quota's tokens, the adaptive rate limiter, the clock-skew offset) is read here, so a
refactor of the client's internals only has to change this file.
"""

from __future__ import annotations

from typing import Any

from eks_async._ratelimit import RateLimiter


def retry_quota_available(client: Any) -> int:
    """Tokens left in the client's retry quota (shared by its ``with_options`` views)."""
    quota = client._shared.quota
    assert quota is not None, "this client has no retry quota"
    return int(quota.available)


def retry_quota_capacity(client: Any) -> int:
    """The size of the client's retry quota."""
    quota = client._shared.quota
    assert quota is not None, "this client has no retry quota"
    return int(quota._capacity)


def set_retry_quota_available(client: Any, tokens: int) -> None:
    """Put the quota at ``tokens`` (to watch refunds without first spending by hand)."""
    quota = client._shared.quota
    assert quota is not None, "this client has no retry quota"
    quota.available = tokens


def rate_limiter(client: Any) -> RateLimiter | None:
    """The adaptive-mode send-rate limiter, or ``None`` in standard mode."""
    limiter: RateLimiter | None = client._shared.limiter
    if limiter is None and client._options.retry.mode == "adaptive":
        limiter = client._shared.rate_limiter()  # made on the first adaptive call
    return limiter


def install_rate_limiter(client: Any, limiter: RateLimiter) -> None:
    """Give an adaptive-mode client a limiter of the test's making (e.g. on a fake clock)."""
    assert client._options.retry.mode == "adaptive", "only an adaptive-mode client has a limiter"
    client._shared.limiter = limiter


def paced_limiter(rate: float, clock: Any = lambda: 0.0, tokens: float = 0.0) -> RateLimiter:
    """A limiter as if already throttled down to ``rate`` requests/s, with ``tokens`` left
    (on a clock that never moves, every acquire past them waits 1/rate seconds)."""
    limiter = RateLimiter(clock=clock)
    limiter._window = None
    limiter._set(rate, clock(), "set by a test", None)
    limiter._tokens = tokens
    return limiter


def clock_offset(client: Any) -> float:
    """Seconds the client adds to its clock when signing (its clock-skew correction)."""
    return float(client._shared.clock_offset)


def connection_pool(client: Any) -> Any:
    """The client's own HTTP/1.1 keep-alive pool (``None`` before the first call)."""
    return client._shared._transport
