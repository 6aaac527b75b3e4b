"""Clocks for the emulator: EKS time, which may run faster than the wall, or only by hand.

Every delay the emulator keeps (an association becoming visible, an identity provider
config turning ACTIVE) is measured in *EKS seconds*: the durations real EKS takes. A clock
maps them onto the time a test can afford. ``ScaledClock(time_scale=60)`` runs 25 EKS
minutes in 25 real seconds; ``ManualClock`` stands still until the test moves it, which
makes every run of a test see exactly the same states.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "ScaledClock"]


@runtime_checkable
class Clock(Protocol):
    """What the emulator asks of a clock. All values are in EKS seconds."""

    def monotonic(self) -> float:
        """Seconds since some fixed start; never goes backwards."""
        ...

    def time(self) -> float:
        """The current time as epoch seconds (what ``createdAt`` shows)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of EKS time pass (used for injected latency)."""
        ...


class ScaledClock:
    """Wall-clock time, optionally sped up: ``time_scale`` EKS seconds per real second."""

    __slots__ = ("_base", "_epoch", "_lock", "_scale", "_start")

    def __init__(self, time_scale: float = 1.0) -> None:
        if not time_scale > 0:
            raise ValueError("time_scale must be positive")
        self._scale = float(time_scale)
        self._start = time.monotonic()
        self._base = 0.0  # EKS seconds already run at earlier scales
        self._epoch = time.time()
        self._lock = threading.Lock()

    @property
    def time_scale(self) -> float:
        """EKS seconds per real second."""
        return self._scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        """Change speed from now on; the time run so far stays as it was."""
        if not value > 0:
            raise ValueError("time_scale must be positive")
        with self._lock:
            now = time.monotonic()
            self._base += (now - self._start) * self._scale
            self._start = now
            self._scale = float(value)

    def monotonic(self) -> float:
        """EKS seconds since the clock was made, scaled; never goes backwards."""
        return self._base + (time.monotonic() - self._start) * self._scale

    def time(self) -> float:
        """The current EKS time as epoch seconds."""
        return self._epoch + self.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of EKS time (that many real seconds divided by ``time_scale``)."""
        await asyncio.sleep(max(0.0, seconds) / self._scale)

    def __repr__(self) -> str:
        return f"ScaledClock(time_scale={self.time_scale!r})"


class ManualClock:
    """A clock that moves only when told to (``advance``), from any thread.

    ``sleep`` (injected latency) moves it too, so a latency of 2 s shows as 2 s of EKS
    time passing, without waiting for it.
    """

    __slots__ = ("_epoch", "_lock", "_now")

    def __init__(self, *, start: float | None = None) -> None:
        #: Epoch seconds at which the clock starts (now, by default).
        self._epoch = time.time() if start is None else float(start)
        self._now = 0.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        """EKS seconds moved so far; changes only through ``advance`` and ``sleep``."""
        return self._now

    def time(self) -> float:
        """The current EKS time as epoch seconds."""
        return self._epoch + self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` EKS seconds."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += seconds

    async def sleep(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward at once, then yield to the event loop."""
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"ManualClock(monotonic={self._now!r})"
