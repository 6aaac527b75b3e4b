"""Deciding, per call, what goes wrong: the rate limit, scripted faults, seeded chance.

All draws come from one ``random.Random`` seeded from the emulator's seed, so the same
calls in the same order meet the same faults on every run. The rate limit's token buckets
(``RateBuckets``) draw nothing: they only read the emulator's clock.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Final

import attrs

from ._config import KNOWN_OPERATIONS, Fault, FaultRates, RateLimit
from ._service import FailUpdate

__all__ = ["Decision", "FaultPlanner", "RateBuckets", "ScriptedFault"]

#: Operations that start a cluster Update (the only ones ``FAIL_UPDATE`` applies to).
UPDATE_OPERATIONS: Final = frozenset(
    {"AssociateIdentityProviderConfig", "DisassociateIdentityProviderConfig", "UpdateClusterConfig"}
)
_OUTCOMES: Final = (
    Fault.THROTTLE,
    Fault.SERVER_ERROR,
    Fault.UNAVAILABLE,
    Fault.DROP_BEFORE,
    Fault.DROP_AFTER,
)
ANY_OPERATION: Final = "*"
#: Float slack when counting tokens, so ``rate * t`` tokens let exactly ``floor(rate * t)``
#: calls through although ``0.1 + 0.2 < 0.3`` and the like.
_TOKEN_SLACK: Final = 1e-9


@attrs.frozen(kw_only=True)
class ScriptedFault:
    """One scripted fault waiting for its call."""

    fault: Fault
    #: For error faults: the message to send (else the usual one). For FAIL_UPDATE: the
    #: ErrorDetail's message.
    message: str | None = None
    #: For FAIL_UPDATE: the ErrorDetail's errorCode.
    error_code: str | None = None


@attrs.frozen(kw_only=True)
class Decision:
    """What happens to one call."""

    fault: Fault | None = None
    message: str | None = None
    latency: float = 0.0
    fail_update: FailUpdate | None = None


@attrs.define
class _Bucket:
    tokens: float
    #: The clock's ``monotonic()`` when ``tokens`` was last brought up to date.
    last: float


class RateBuckets:
    """The token buckets of a ``RateLimit``, per account, region and bucket (not thread-safe).

    A bucket is made full on the first call that needs it, which is the same as full from
    the start. ``admit`` tops it up by ``rate`` tokens per EKS second since it last looked
    (never above ``burst``), then lets the call through if a whole token is there, taking
    it. A refused call takes nothing. A ``RateLimit`` other than the last one seen (a new
    setting) starts every bucket again, full; ``None`` forgets them.
    """

    def __init__(self) -> None:
        self._limit: RateLimit | None = None
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}

    def clear(self) -> None:
        self._buckets.clear()

    def admit(
        self, limit: RateLimit | None, account_id: str, region: str, operation: str, now: float
    ) -> bool:
        """Whether a call of ``operation`` at ``now`` (EKS seconds) is within the limit."""
        if limit != self._limit:
            self._limit = limit
            self._buckets.clear()
        if limit is None:
            return True
        key, rate, burst = limit.bucket_for(operation)
        bucket = self._buckets.get((account_id, region, key))
        if bucket is None:
            bucket = self._buckets[account_id, region, key] = _Bucket(tokens=float(burst), last=now)
        elif now > bucket.last:
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.last) * rate)
            bucket.last = now
        if bucket.tokens < 1.0 - _TOKEN_SLACK:
            return False
        bucket.tokens = max(0.0, bucket.tokens - 1.0)
        return True

    def tokens(self, now: float) -> dict[str, float]:
        """Tokens in each bucket used so far at ``now``, keyed ``account/region/bucket``
        (``*``: the shared one)."""
        if self._limit is None:
            return {}
        out: dict[str, float] = {}
        for key, bucket in sorted(self._buckets.items()):
            _, rate, burst = self._limit.bucket_for(key[2])
            out["/".join(key)] = min(
                float(burst), bucket.tokens + max(0.0, now - bucket.last) * rate
            )
        return out


class FaultPlanner:
    """Scripted faults per operation, the seeded draws for fault rates and the rate limit's
    buckets (not thread-safe)."""

    def __init__(self, seed: int) -> None:
        self.reset(seed)

    def reset(self, seed: int) -> None:
        self._rng = random.Random(f"{seed}/faults")
        self._scripted: dict[str, deque[ScriptedFault]] = {}
        self._updates: dict[str, deque[ScriptedFault]] = {}
        #: The rate limit's buckets (full again after a reset).
        self.buckets = RateBuckets()

    def reseed(self, seed: int) -> None:
        self._rng = random.Random(f"{seed}/faults")

    def script(self, operation: str, entry: ScriptedFault, times: int) -> None:
        if operation != ANY_OPERATION and operation not in KNOWN_OPERATIONS:
            raise ValueError(f"EKS has no operation named {operation!r}")
        if times < 1:
            raise ValueError("times must be at least 1")
        if entry.fault is Fault.FAIL_UPDATE:
            if operation != ANY_OPERATION and operation not in UPDATE_OPERATIONS:
                raise ValueError(f"{operation} starts no Update that could fail")
            queue = self._updates.setdefault(operation, deque())
        else:
            queue = self._scripted.setdefault(operation, deque())
        queue.extend([entry] * times)

    def pending(self) -> dict[str, list[str]]:
        """The scripted faults still waiting, by operation."""
        out: dict[str, list[str]] = {}
        for table in (self._scripted, self._updates):
            for op, queue in table.items():
                if queue:
                    out.setdefault(op, []).extend(e.fault.value for e in queue)
        return out

    @staticmethod
    def _take(table: dict[str, deque[ScriptedFault]], operation: str) -> ScriptedFault | None:
        for key in (operation, ANY_OPERATION):
            queue = table.get(key)
            if queue:
                return queue.popleft()
        return None

    def decide(self, operation: str, rates: FaultRates) -> Decision:
        latency = rates.latency.draw(self._rng) if rates.latency.high > 0 else 0.0
        fail_update: FailUpdate | None = None
        if operation in UPDATE_OPERATIONS:
            scripted_update = self._take(self._updates, operation)
            if scripted_update is not None:
                fail_update = FailUpdate(
                    error_code=scripted_update.error_code or FailUpdate().error_code,
                    message=scripted_update.message or FailUpdate().message,
                )
            elif rates.fail_update > 0 and self._rng.random() < rates.fail_update:
                fail_update = FailUpdate()
        scripted = self._take(self._scripted, operation)
        if scripted is not None:
            return Decision(
                fault=scripted.fault,
                message=scripted.message,
                latency=latency,
                fail_update=fail_update,
            )
        fault: Fault | None = None
        if any(rates.outcome_rates()):
            draw = self._rng.random()
            total = 0.0
            for kind, rate in zip(_OUTCOMES, rates.outcome_rates(), strict=True):
                total += rate
                if draw < total:
                    fault = kind
                    break
        return Decision(fault=fault, latency=latency, fail_update=fail_update)
