"""The client-side send-rate limiter of adaptive retry mode.

The AWS SDKs' adaptive mode (CUBIC) learns from the rate it *sends*: on a throttle it drops
to 0.7 of it and climbs back along a cubic curve. This one learns from what it can observe
of the service's token bucket instead:

1. **Slow start.** Until the first throttle, requests are limited only by a window of
   requests in flight that starts at ``initial_window`` and grows by one with each success
   (it doubles every round trip). A sequential caller, or one with no more calls in flight
   than the window, never meets it: no lock, no sleep, no task. A burst of many concurrent
   calls reaches full width within a few round trips, so the first overshoot into an empty
   bucket is about one window, not the whole burst. The slot of an answered request is
   held back while another sent about when it was is still in flight: that one's answer
   may be the throttle that says the bucket is empty.
2. **First throttle.** The bucket is empty; what was sent in the second before is about
   its burst, so the first target is that many requests per second, doubling every
   ``STARTUP_DOUBLING`` seconds (or ``STARTUP_CALLS`` requests) until the next throttle.
3. **Estimate.** Every throttle means the bucket held less than a token when that request
   came, every other answer that it held one. Replaying the requests sent since an
   earlier throttle against a bucket of the burst seen gives the rates that fit all their
   answers: the lowest at which every admitted request found a token, the highest at
   which no throttled one did. With a bucket that never filled up in between, the count
   says it too: it admitted what it gained, give or take one token, (admitted + 1) /
   seconds. Counted in send times; requests not answered yet count as admitted. A
   throttle of a request sent before the last decrease is no news and changes nothing.
4. **Hold.** A close range (within ``SETTLED``), or a count: the target goes to ``MARGIN``
   under it and stays there for ``SETTLE_CALLS`` requests' time. A wider range (within
   ``BRACKET``): the target goes under its middle and climbs evenly to its top within
   ``RECOVER_SECONDS`` (or ``RECOVER_CALLS`` requests), where a throttle gives a close one.
   Nothing of either: it steps down by ``HOLD`` and climbs back within ``RECOVER_SECONDS``
   to ``PLATEAU`` of where the throttle came (as CUBIC does). After a throttle the next
   request goes one step after the last one the bucket took (not one step after the
   throttle: so a throttle costs none of the service's time, however small its bucket),
   and a request already waiting its turn is woken to wait by the new pace. A
   ``Retry-After`` pauses sending that long.
5. **Probe.** Then the target climbs along a cubic: slowly at first, doubled after
   ``PROBE_SECONDS`` (or ``PROBE_CALLS`` requests, whichever is longer), so a limit that
   rose is found again, while a target that fits is questioned only rarely. It never
   climbs past 1.5 times the rate actually sent: an idle client does not build up a rate
   it never tried.

A limiter may be shared by several clients (one per cluster of one account and region):
``RetryConfig(mode="adaptive", limiter=RateLimiter())``. ``target_rate`` and
``measured_rate`` are there for progress output; each change of the target is logged at
DEBUG on the ``eks_async`` logger.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
from collections import deque
from collections.abc import Callable
from typing import Final

__all__ = ["RateLimiter"]

logger = logging.getLogger("eks_async")

#: The lowest target, in requests per second.
MIN_RATE: Final = 0.2
#: On a throttle the target never drops below this fraction of the target then in force
#: (an estimate made over a stretch in which the service's bucket filled up is too low).
HOLD: Final = 0.9
#: ...and never below this fraction of it in one step.
FLOOR: Final = 0.5
#: After a step down without an estimate, the target returns within RECOVER_SECONDS (or
#: the time of RECOVER_CALLS requests) to this fraction of where the throttle came.
PLATEAU: Final = 0.97
RECOVER_SECONDS: Final = 1.0
RECOVER_CALLS: Final = 10.0
#: On a throttle after a good estimate, the target drops at least to this fraction.
NUDGE: Final = 0.99
#: The target is this fraction under a good estimate.
MARGIN: Final = 0.01
#: The rates that fit the answers since a throttle, lowest to highest, within this
#: ratio of each other make an estimate.
BRACKET: Final = 1.3
#: ...and within this ratio, one good enough to hold a while before probing.
SETTLED: Final = 1.1
#: Tokens added to the admitted count (the bucket's fraction at either throttle).
SLACK: Final = 1.0
#: Fewer requests admitted between two throttles make no estimate.
MIN_ADMITTED: Final = 4
#: Seconds without a throttle after which probing has doubled the target.
PROBE_SECONDS: Final = 10.0
#: ...or the time of this many requests at the target, whichever is longer.
PROBE_CALLS: Final = 200.0
#: Probing starts this many requests' time after a throttle that gave a good estimate...
SETTLE_CALLS: Final = 50.0
#: ...or after this many seconds, whichever is shorter.
SETTLE_SECONDS: Final = 30.0
#: Before the first throttle, a slot held back for a request in flight is given out
#: anyway after this many round trips of the answered one, or this many seconds.
PARK_ROUND_TRIPS: Final = 3.0
PARK_SECONDS: Final = 0.05
#: The window of successes for ``measured_rate``, in seconds.
MEASURE_SECONDS: Final = 2.0
#: How far back a throttle may be to start an estimate: at least this many seconds...
HORIZON_SECONDS: Final = 6.0
#: ...or this many successes at the target, whichever is longer.
HORIZON_CALLS: Final = 100.0
#: Before the first throttle: how fast the first target climbs (doubling every this many
#: seconds) until a second throttle gives an estimate.
STARTUP_DOUBLING: Final = 0.5
#: ...or the time of this many requests at the first target, whichever is longer.
STARTUP_CALLS: Final = 2.0


class RateLimiter:
    """Paces the requests of one or more adaptive-mode clients to the rate EKS allows.

    ``initial_window``: requests in flight allowed before anything is learned (the window
    grows by one per success until the first throttle). ``clock``: seconds, monotonic;
    the running event loop's ``time()`` by default.
    """

    def __init__(
        self, *, initial_window: int = 2, clock: Callable[[], float] | None = None
    ) -> None:
        if initial_window < 1:
            raise ValueError("initial_window must be at least 1")
        self._clock = clock or self._loop_time
        self._last_time = 0.0
        # Slow start: None once throttled.
        self._window: float | None = float(initial_window)
        self._in_flight = 0
        # Send times of the requests in flight during slow start, and the slots of
        # answered ones held back until every request sent with them is answered too.
        self._flying: deque[float] = deque()
        self._parked = 0
        self._parked_from, self._parked_to = math.inf, -math.inf
        self._unpark_timer: asyncio.TimerHandle | None = None
        self._queue: deque[asyncio.Future[bool]] = deque()
        # Pacing, once throttled.
        self._target: float | None = None
        self._tokens = 0.0
        self._refilled = 0.0
        self._lock = asyncio.Lock()
        self._napping: asyncio.Future[bool] | None = None
        self._paused_until = -math.inf
        # Learning: answer times of admitted requests (MEASURE_SECONDS); send times of
        # requests (MEASURE_SECONDS, and the horizon), of throttled ones, and of the
        # throttles that lowered the target.
        self._oks: deque[float] = deque()
        self._recent: deque[float] = deque()
        self._sends: deque[float] = deque()
        self._throttled: deque[float] = deque()
        self._fresh: deque[float] = deque()
        self._cut_at = -math.inf
        self._base = 0.0
        self._plateau = 0.0
        self._since = 0.0
        self._startup = False
        self._settled = False
        self._searching = False
        self._burst = 1.0
        #: Answers seen: admitted (anything but a throttle), and throttled.
        self.admitted = 0
        self.throttles = 0
        #: Requests that waited for the limiter, and the seconds they waited in all.
        self.delayed = 0
        self.delay_total = 0.0

    def _loop_time(self) -> float:
        # The running loop's clock; outside a loop (a property read after the run), the
        # last time it gave.
        with contextlib.suppress(RuntimeError):
            self._last_time = asyncio.get_running_loop().time()
        return self._last_time

    def __repr__(self) -> str:
        target = self.target_rate
        shown = "none" if target is None else f"{target:.2f}/s"
        return f"<RateLimiter target={shown} measured={self.measured_rate:.2f}/s>"

    # --- what callers may read ---------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether EKS has throttled, so requests are being paced."""
        return self._target is not None

    @property
    def target_rate(self) -> float | None:
        """Requests per second now allowed; ``None`` until the first throttle."""
        if self._target is None:
            return None
        return self._current_target(self._clock())

    @property
    def measured_rate(self) -> float:
        """Answers per second over the last two seconds, throttles not counted."""
        self._prune(self._oks, self._clock(), MEASURE_SECONDS)
        return len(self._oks) / MEASURE_SECONDS

    @property
    def window(self) -> int | None:
        """Requests allowed in flight before the first throttle; ``None`` after it."""
        return None if self._window is None else int(self._window)

    # --- before sending ---------------------------------------------------------------

    async def acquire(self, on_wait: Callable[[float, str], None] | None = None) -> float:
        """Wait, if needed, until one more request may be sent; the clock's time then.

        Every acquire must be matched by one ``release`` when the request is done (whatever
        its outcome). ``on_wait(seconds, reason)`` hears of each wait (before a paced
        wait; after a slow-start wait, with the seconds it took). A caller that never
        meets the window and was never throttled returns at once: no lock, no sleep, no
        task, no future.
        """
        window = self._window
        if window is not None:
            if self._in_flight + self._parked < window and not self._queue:
                self._in_flight += 1
                return self._fly(self._note_send())
            slot = await self._wait_for_window(on_wait)
            if self._window is not None:  # still slow start: a slot was handed over
                return self._fly(self._note_send())
            if slot:  # handed over before the first throttle, which came since: paced
                self._in_flight -= 1
        self._in_flight += 1
        try:
            await self._pace(on_wait)
        except BaseException:
            self._in_flight -= 1
            raise
        return self._note_send()

    def release(self, sent: float | None = None) -> None:
        """A request acquired earlier is done (answered, failed or cancelled).

        ``sent``: what ``acquire`` returned for it. Before the first throttle, the slot of
        a request answered while another sent about when it was is still in flight is
        held back until that one is answered too: its answer may be the throttle that
        says the bucket is empty, and a request sent meanwhile would find it empty too.
        """
        flying = self._flying
        if self._window is not None and flying:
            if sent is None:
                flying.popleft()
            else:
                with contextlib.suppress(ValueError):
                    flying.remove(sent)
            if sent is not None:
                now = self._clock()
                start = 2.0 * sent - now  # a round trip before it was sent
                if any(start <= t <= now for t in flying):
                    self._in_flight -= 1
                    self._parked += 1
                    self._parked_from = min(self._parked_from, start)
                    self._parked_to = max(self._parked_to, now)
                    if self._unpark_timer is None:
                        # A throttle comes back about as fast as a success: one that is
                        # much slower is not one, and frees the slots anyway.
                        with contextlib.suppress(RuntimeError):
                            self._unpark_timer = asyncio.get_running_loop().call_later(
                                max(PARK_ROUND_TRIPS * (now - sent), PARK_SECONDS),
                                self._unpark,
                            )
                    return
        self._free_slot()

    def _unpark(self) -> None:
        """Give the held-back slots out again."""
        timer, self._unpark_timer = self._unpark_timer, None
        if timer is not None:
            timer.cancel()
        if self._parked:
            self._parked = 0
            self._parked_from, self._parked_to = math.inf, -math.inf
            if self._queue:
                self._grant()

    def _free_slot(self) -> None:
        """A slot is free: to the waiters in line, as far as the window has room."""
        self._in_flight -= 1
        if self._window is None:
            return
        if self._parked:
            start, end = self._parked_from, self._parked_to
            if not any(start <= t <= end for t in self._flying):
                self._unpark()
            return
        if self._queue:
            self._grant()

    def _fly(self, sent: float) -> float:
        if self._window is not None:
            self._flying.append(sent)
        return sent

    async def _wait_for_window(self, on_wait: Callable[[float, str], None] | None) -> bool:
        """Wait in line for a slot of the window: True when one was handed over, False
        when the window was lifted (the caller is then paced)."""
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(waiter)
        start = self._clock()
        try:
            slot = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self._free_slot()  # a slot handed over to a caller that is gone
            raise
        waited = self._clock() - start
        self.delayed += 1
        self.delay_total += waited
        if on_wait is not None:
            on_wait(waited, f"slow start, {self._in_flight} requests in flight")
        return slot

    async def _pace(self, on_wait: Callable[[float, str], None] | None) -> None:
        async with self._lock:
            now = start = self._clock()
            target = self._refill(now)
            wait = max((1.0 - self._tokens) / target, self._paused_until - now, 0.0)
            if wait > 0:
                self.delayed += 1
                self.delay_total += wait
                if on_wait is not None:
                    on_wait(wait, f"{target:.2f} requests/s allowed")
                while await self._nap(wait):
                    # A throttle changed the pace meanwhile: wait what is left by it.
                    now = self._clock()
                    target = self._refill(now)
                    left = max((1.0 - self._tokens) / target, self._paused_until - now, 0.0)
                    self.delay_total += left - max(0.0, wait - (now - start))
                    if left <= 0:
                        break
                    wait, start = left, now
                self._refill(self._clock())
            self._tokens = max(0.0, self._tokens - 1.0)

    async def _nap(self, seconds: float) -> bool:
        """Sleep ``seconds``; True when a throttle cut it short (see ``_wake``)."""
        from . import _retry

        if _retry._instant:
            await _retry.sleep(seconds)
            return False
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[bool] = loop.create_future()
        timer = loop.call_later(seconds, _resolve, woken, False)
        self._napping = woken
        try:
            return await woken
        finally:
            timer.cancel()
            self._napping = None

    def _wake(self) -> None:
        """Wake the request sleeping for its turn: the pace has changed."""
        napping = self._napping
        if napping is not None:
            _resolve(napping, True)

    def _refill(self, now: float) -> float:
        target = self._current_target(now)
        if now > self._refilled:
            self._tokens = min(1.0, self._tokens + (now - self._refilled) * target)
            self._refilled = now
        return target

    def _note_send(self) -> float:
        now = self._clock()
        self._recent.append(now)
        self._sends.append(now)
        if len(self._sends) > 64 and self._sends[0] < now - self._horizon():
            horizon = self._horizon()
            self._prune(self._sends, now, horizon)
            self._prune(self._throttled, now, horizon)
            self._prune(self._recent, now, MEASURE_SECONDS)
        return now

    # --- after an answer --------------------------------------------------------------

    def update(
        self, *, throttled: bool, sent: float | None = None, retry_after: float | None = None
    ) -> None:
        """Learn from one answer: admitted (``throttled=False``) or throttled.

        ``sent``: what ``acquire`` returned for the request (the service's bucket is
        reckoned in send times, and a throttle of a request sent before the last decrease
        is not news); ``retry_after``: the seconds of its ``Retry-After``, if any.
        """
        now = self._clock()
        if not throttled:
            self.admitted += 1
            oks = self._oks
            oks.append(now)
            if len(oks) > 64:
                self._prune(oks, now, MEASURE_SECONDS)
            window = self._window
            if window is not None:
                self._window = window + 1.0  # its room is given out on release
            return
        self.throttles += 1
        when = now if sent is None else sent
        self._throttled.append(when)
        if retry_after:
            self._paused_until = max(self._paused_until, now + retry_after)
            self._wake()
        if when <= self._cut_at:
            return  # sent before the last decrease: already accounted for
        if self._target is None:
            self._first_throttle(now, when)
            return
        current = self._current_target(now)
        estimate, whole, admitted = self._estimate(when)
        bracket = None
        if self._fresh:
            bracket = self._bracket(self._fresh[0], when, 4.0 * max(current, estimate or 0.0))
        plateau = 0.0
        settled = searching = False
        if whole and admitted >= MIN_ADMITTED and estimate is not None:
            new = min(estimate * (1.0 - MARGIN), current * NUDGE)
            settled = True
        elif bracket is not None and bracket[1] <= BRACKET * bracket[0]:
            # The answers pin the rate down: just under the middle of what fits them.
            estimate = (bracket[0] + bracket[1]) / 2.0
            new = min(estimate * (1.0 - MARGIN), current * NUDGE)
            settled = bracket[1] <= SETTLED * bracket[0]
            if not settled:  # climb to the top of it soon, slowly, for a closer one
                plateau = bracket[1] * (1.0 - MARGIN)
                searching = True
        elif estimate is None or admitted < MIN_ADMITTED:
            # Too few requests since the last throttle for an estimate (but a bound):
            # step down, then back to just under where the throttle came.
            bound = math.inf if estimate is None else estimate
            new = max(current * FLOOR, min(current * HOLD, bound))
            plateau = current * PLATEAU
        elif whole:
            new = min(estimate * (1.0 - MARGIN), current * NUDGE)
        else:  # the bucket may have filled up: the estimate may be low
            new = min(current * NUDGE, max(estimate, current * HOLD))
            self._fresh.clear()  # the next estimate starts here
            if self._startup:  # back up soon, for a throttle that gives a good one
                plateau = current * PLATEAU
        self._startup = False
        self._fresh.append(when)
        self._set(new, now, "throttled", estimate, current)
        self._plateau = plateau
        self._settled = settled
        self._searching = searching
        # The bucket has been filling since the last request it took, not since the
        # throttle: the next request goes a step after that one, so a throttle costs
        # none of the service's time, however small its bucket. (Unless that step had
        # passed already when the throttled request was sent: the target is too high.)
        last = self._last_admitted()
        if last is not None and (when - last) * self._base < 1.0:
            self._tokens = min(1.0, max(self._tokens, (now - last) * self._base))
        self._wake()

    def _last_admitted(self) -> float | None:
        """The send time of the last request not known to be throttled."""
        throttled: dict[float, int] = {}
        for t in itertools.islice(reversed(self._throttled), 64):
            throttled[t] = throttled.get(t, 0) + 1
        for t in reversed(self._sends):
            left = throttled.get(t, 0)
            if not left:
                return t
            throttled[t] = left - 1
        return None

    def _first_throttle(self, now: float, when: float) -> None:
        # The burst just spent says little of the rate: start at the requests sent in
        # the second before the throttled one (the burst, about) and double every
        # STARTUP_DOUBLING seconds until the next throttle tells more.
        burst = max(1.0, sum(1.0 for t in self._sends if when - 1.0 <= t <= when) - 1.0)
        self._burst = burst
        self._fresh.append(when)
        self._window = None
        self._flying.clear()
        self._unpark()
        self._startup = True
        queue, self._queue = self._queue, deque()
        for waiter in queue:  # they go on to be paced
            if not waiter.done():
                waiter.set_result(False)
        self._refilled = now
        self._set(burst, now, "first throttle", None)

    def _horizon(self) -> float:
        target = self._target
        return HORIZON_SECONDS if target is None else max(
            HORIZON_SECONDS, HORIZON_CALLS / target
        )

    def _estimate(self, when: float) -> tuple[float | None, bool, int]:
        """The service's rate, from the requests it admitted since an earlier throttle.

        Both throttles found its bucket empty, so what it admitted in between (requests
        sent in between, less those throttled) is what the bucket gained, give or take
        one: ``(admitted + 1) / seconds``. Counted in send times; requests not answered
        yet count as admitted (a throttle is answered at once, a success takes longer).

        Unless the bucket filled up in between: what it gained beyond its burst was lost,
        and the estimate is low. The second value says whether the requests came close
        enough together for that to be impossible (replayed against a bucket filling at
        the estimate, it never holds more than the burst seen at the first throttle); the
        third, how many requests were admitted in between.
        """
        fresh = self._fresh
        limit = when - self._horizon()
        while fresh and fresh[0] < limit:
            fresh.popleft()
        if not fresh:
            return None, False, 0
        first = fresh[0]
        span = when - first
        if span <= 0:
            return None, False, 0
        between = [t for t in self._sends if first < t < when]
        admitted = len(between) - sum(1 for t in self._throttled if first < t < when)
        estimate = max(MIN_RATE, (admitted + SLACK) / span)
        level, last, most = 0.0, first, self._burst
        for t in (*between, when):
            level += (t - last) * estimate
            last = t
            if level > most:
                return estimate, False, admitted
            if level >= 1.0:
                level -= 1.0
        return estimate, True, admitted

    def _bracket(self, first: float, when: float, top: float) -> tuple[float, float] | None:
        """The rates a bucket of the burst seen could have that fit every answer since the
        throttle at ``first``: ``(low, high)``, or None when none fits.

        Replayed in send times from ``first`` (where it held less than a token): every
        throttled request found less than a token (``high``), every other one found one
        (``low``; requests not answered yet count as admitted). ``high`` is ``inf`` when
        even ``top`` fits.
        """
        sent: dict[float, int] = {}
        for t in self._sends:
            if first < t <= when:
                sent[t] = sent.get(t, 0) + 1
        throttled: dict[float, int] = {}
        for t in self._throttled:
            if first < t <= when:
                throttled[t] = throttled.get(t, 0) + 1
        events = [(t, n - min(n, throttled.get(t, 0)), min(n, throttled.get(t, 0)))
                  for t, n in sent.items()]
        burst = self._burst

        def under(rate: float) -> bool:  # no throttled request found a token
            level, last = 0.0, first
            for t, ok, thr in events:
                level = min(burst, level + (t - last) * rate) - ok
                last = t
                if thr and level >= 1.0:
                    return False
            return True

        def enough(rate: float) -> bool:  # every admitted one found one
            level, last = 1.0, first
            for t, ok, _ in events:
                level = min(burst, level + (t - last) * rate) - ok
                last = t
                if level < -1e-9:
                    return False
            return True

        low, high = MIN_RATE, top
        if not under(low) or not enough(high):
            return None
        if not enough(low):
            hi = high
            for _ in range(24):
                mid = (low + hi) / 2
                low, hi = (low, mid) if enough(mid) else (mid, hi)
            low = hi
        if under(high):
            high = math.inf
        else:
            lo = MIN_RATE
            for _ in range(24):
                mid = (lo + high) / 2
                lo, high = (mid, high) if under(mid) else (lo, mid)
            high = lo
        return (low, high) if low <= high else None

    def _set(
        self, rate: float, now: float, why: str, estimate: float | None,
        old: float | None = None,
    ) -> None:
        rate = max(MIN_RATE, rate)
        if self._target is not None:
            self._refill(now)
        self._target = self._base = rate
        self._plateau = 0.0
        self._since = now
        self._cut_at = now
        self._tokens = min(self._tokens, 0.0)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "rate limit: target %.2f requests/s (%s; was %s, estimate %s, "
                "measured %.2f/s)",
                rate, why, "none" if old is None else f"{old:.2f}",
                "none" if estimate is None else f"{estimate:.2f}", self.measured_rate,
            )

    def _current_target(self, now: float) -> float:
        """The target, grown by probing since the last throttle."""
        base = self._base
        elapsed = now - self._since
        if elapsed <= 0:
            return base
        if self._startup:
            doubling = max(STARTUP_DOUBLING, STARTUP_CALLS / base)
            grown = base * math.pow(2.0, elapsed / doubling)
        else:
            # Back towards the plateau within RECOVER (concave), then beyond it, slowly
            # at first (convex).
            plateau = self._plateau
            recover = max(RECOVER_SECONDS, RECOVER_CALLS / base) if plateau > base else 0.0
            if elapsed < recover:
                if self._searching:  # evenly: a throttle on the way is a close bound
                    grown = base + (plateau - base) * elapsed / recover
                else:
                    grown = plateau - (plateau - base) * math.pow(1.0 - elapsed / recover, 3)
            else:
                period = max(PROBE_SECONDS, PROBE_CALLS / base)
                if self._settled:  # just under a good estimate: hold it a while first
                    recover = min(SETTLE_SECONDS, SETTLE_CALLS / base)
                grown = max(plateau, base) * (
                    1.0 + math.pow(max(0.0, elapsed - recover) / period, 3)
                )
        if grown <= base:
            return base
        self._prune(self._recent, now, MEASURE_SECONDS)
        ceiling = max(base, 1.5 * len(self._recent) / MEASURE_SECONDS)
        return min(grown, ceiling)

    def _grant(self) -> None:
        """Wake waiters the grown window now has room for."""
        queue = self._queue
        window = self._window
        while queue and window is not None and self._in_flight + self._parked < window:
            waiter = queue.popleft()
            if not waiter.done():
                self._in_flight += 1
                waiter.set_result(True)

    @staticmethod
    def _prune(times: deque[float], now: float, seconds: float) -> None:
        limit = now - seconds
        while times and times[0] <= limit:
            times.popleft()


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)
