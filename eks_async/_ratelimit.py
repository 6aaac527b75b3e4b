"""The client-side send-rate limiter of adaptive retry mode (CUBIC, as the AWS SDKs use it).

Until EKS first throttles, requests go out unhindered. On a throttle the allowed rate drops
to ``BETA`` times the rate then being sent; with each success it climbs back along a cubic
curve towards, and past, the rate at which throttling began. Requests wait for a token of a
bucket that fills at the allowed rate. One limiter is shared by all calls of a client.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Final

BETA: Final = 0.7
SCALE: Final = 0.4
SMOOTHING: Final = 0.8
MIN_FILL_RATE: Final = 0.5
MIN_CAPACITY: Final = 1.0
BUCKET_SECONDS: Final = 0.5


class RateLimiter:
    """CUBIC send-rate control plus the token bucket that enforces it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._enabled = False
        self._fill_rate = MIN_FILL_RATE
        self._capacity = MIN_CAPACITY
        self._tokens = MIN_CAPACITY
        self._last_refill = clock()
        # Measured send rate.
        self._measured_rate = 0.0
        self._bucket = math.floor(clock() / BUCKET_SECONDS) * BUCKET_SECONDS
        self._count = 0
        # CUBIC state.
        self._last_max_rate = 0.0
        self._last_throttle = clock()
        self._time_window = 0.0
        self._lock = asyncio.Lock()
        #: Requests that waited for a token, and how long in all (for tests and benchmarks).
        self.delayed = 0
        self.delay_total = 0.0

    @property
    def enabled(self) -> bool:
        """Whether throttling has been seen, so requests are being paced."""
        return self._enabled

    @property
    def rate(self) -> float:
        """Requests per second now allowed (meaningful once enabled)."""
        return self._fill_rate

    # --- before sending ---------------------------------------------------------------

    async def acquire(self, on_wait: Callable[[float, float], None] | None = None) -> None:
        """Wait, if needed, until one more request may be sent.

        ``on_wait(seconds, rate)`` hears of a wait before it starts (for ``retry_wait``,
        ``on_retry`` and the DEBUG log). A client that was never throttled returns at once,
        without a lock, a sleep or a task.
        """
        if not self._enabled:
            return
        async with self._lock:
            self._refill()
            if self._tokens < 1.0:
                wait = (1.0 - self._tokens) / self._fill_rate
                self.delayed += 1
                self.delay_total += wait
                if on_wait is not None:
                    on_wait(wait, self._fill_rate)
                from ._retry import sleep

                await sleep(wait)
                self._refill()
            self._tokens = max(0.0, self._tokens - 1.0)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._last_refill) * self._fill_rate)
        self._last_refill = now

    # --- after an answer --------------------------------------------------------------

    def update(self, *, throttled: bool) -> None:
        """Account for one answer: lower the rate on a throttle, raise it on a success."""
        now = self._clock()
        self._measure(now)
        if throttled:
            rate = self._measured_rate if not self._enabled else min(
                self._measured_rate, self._fill_rate
            )
            self._last_max_rate = rate
            self._time_window = ((self._last_max_rate * (1 - BETA)) / SCALE) ** (1 / 3)
            self._last_throttle = now
            new_rate = rate * BETA
            self._enabled = True
        else:
            self._time_window = ((self._last_max_rate * (1 - BETA)) / SCALE) ** (1 / 3)
            t = now - self._last_throttle - self._time_window
            new_rate = SCALE * t**3 + self._last_max_rate
        self._set_rate(min(new_rate, 2 * self._measured_rate))

    def _measure(self, now: float) -> None:
        bucket = math.floor(now * 2) / 2
        self._count += 1
        if bucket > self._bucket:
            current = self._count / (bucket - self._bucket)
            self._measured_rate = current * SMOOTHING + self._measured_rate * (1 - SMOOTHING)
            self._count = 0
            self._bucket = bucket

    def _set_rate(self, rate: float) -> None:
        self._refill()
        self._fill_rate = max(rate, MIN_FILL_RATE)
        self._capacity = max(rate, MIN_CAPACITY)
        self._tokens = min(self._tokens, self._capacity)
