"""An event loop whose clock is virtual: timers fire in order, and no real time passes.

Tests whose subject is pacing (backoff, the adaptive rate limiter, a server's token bucket)
need time to pass, but real time makes them depend on the machine's speed: on a loaded
machine the work between two timers takes longer and the outcome changes. On this loop,
``loop.time()`` moves only when every task is waiting on a timer: it then jumps to the
earliest one. Work takes no time at all, whatever the load.

Use ``run_virtual(main())`` from a plain (not ``async``) test, and read the time as
``asyncio.get_running_loop().time()`` (hand that to any clock a test double needs).
Meant for in-process work (httpx transport doubles, the emulator's in-process
transport): when nothing is ready the clock jumps to the next timer at once, so real I/O
or a thread racing a timer (a socket read under a timeout) would lose the race. With no
timer pending the loop waits for I/O and threads for real, as any loop does.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _Selector(selectors.DefaultSelector):
    """Polls without blocking; when nothing is ready, moves the virtual clock instead."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[Any]:
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:  # no timer at all: only I/O or a thread can wake the loop
            return super().select(None)
        assert self.loop is not None
        self.loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop on virtual time (see the module's docstring)."""

    def __init__(self) -> None:
        selector = _Selector()
        super().__init__(selector)
        selector.loop = self
        self._virtual_now = 0.0

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        self._virtual_now += max(0.0, seconds)


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a fresh ``VirtualTimeLoop``."""
    loop = VirtualTimeLoop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        asyncio.set_event_loop(None)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
