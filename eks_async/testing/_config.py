"""The emulator's settings: delays, fault rates, rate limits, seed, signature checks.

Everything here is a frozen attrs class, so a configuration can be shared, compared and
changed only by making a new one (``attrs.evolve`` or ``EmulatorConfig.updated``). The JSON
form (``to_json`` / ``updated``) is what the admin API under ``/_emulator/`` reads and writes.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from .._generated.eks_auth.operations import OPERATIONS as AUTH_OPERATIONS
from .._generated.operations import OPERATIONS

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_REGION",
    "DelayRange",
    "Delays",
    "EmulatorConfig",
    "Fault",
    "FaultRates",
    "RateLimit",
]

DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-west-2"

#: The operations faults and rate limits may name: EKS's and EKS Auth's
#: (``AssumeRoleForPodIdentity``, also the Pod Identity Agent's call to it).
KNOWN_OPERATIONS = frozenset(OPERATIONS) | frozenset(AUTH_OPERATIONS)
#: The bucket EKS Auth's calls share when ``per_operation`` does not name them: a service of
#: its own, with limits of its own.
EKS_AUTH_BUCKET = "eks-auth"

ThrottleCode = Literal["ThrottlingException", "TooManyRequestsException"]
_THROTTLE_CODES = ("ThrottlingException", "TooManyRequestsException")


class Fault(enum.StrEnum):
    """What can go wrong with one call (scripted with ``EKSEmulator.script``)."""

    #: HTTP 429, ``ThrottlingException`` or ``TooManyRequestsException`` (see the config).
    THROTTLE = "throttle"
    #: HTTP 500 ``ServerException``.
    SERVER_ERROR = "server_error"
    #: HTTP 503 ``ServiceUnavailableException``.
    UNAVAILABLE = "unavailable"
    #: The connection closes before the emulator acted on the request.
    DROP_BEFORE = "drop_before"
    #: The emulator acts on the request, then closes the connection without answering.
    DROP_AFTER = "drop_after"
    #: The call succeeds, but the cluster Update it starts ends ``Failed``.
    FAIL_UPDATE = "fail_update"


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("expected a finite number")
    return number


def _non_negative(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative")


def _probability(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1")


@attrs.frozen(kw_only=True)
class DelayRange:
    """A delay drawn uniformly between ``low`` and ``high`` seconds (EKS time)."""

    low: float = attrs.field(converter=_number, validator=_non_negative)
    high: float = attrs.field(converter=_number, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.high < self.low:
            raise ValueError("a DelayRange needs low <= high")

    @classmethod
    def fixed(cls, seconds: float) -> DelayRange:
        """A range of one value: always ``seconds``."""
        return cls(low=seconds, high=seconds)

    def draw(self, rng: random.Random) -> float:
        """One delay; always takes one number from ``rng``, so sequences stay aligned."""
        return rng.uniform(self.low, self.high)

    def to_json(self) -> list[float]:
        """``[low, high]``, the admin API's form."""
        return [self.low, self.high]


def _to_range(value: Any) -> DelayRange:
    """``DelayRange``, a number (fixed) or a ``[low, high]`` pair."""
    if isinstance(value, DelayRange):
        return value
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise ValueError("a delay range is [low, high]")
        return DelayRange(low=value[0], high=value[1])
    return DelayRange.fixed(_number(value))


@attrs.frozen(kw_only=True)
class Delays:
    """How long EKS takes to do things, in EKS seconds (a range per kind of change).

    The association delays are how long a change stays unseen by Describe and List;
    the others how long a resource stays in its transitional state.
    """

    cluster_create: DelayRange = attrs.field(
        default=DelayRange(low=540.0, high=720.0), converter=_to_range
    )
    cluster_delete: DelayRange = attrs.field(
        default=DelayRange(low=120.0, high=300.0), converter=_to_range
    )
    association_create: DelayRange = attrs.field(
        default=DelayRange(low=1.0, high=5.0), converter=_to_range
    )
    association_update: DelayRange = attrs.field(
        default=DelayRange(low=1.0, high=5.0), converter=_to_range
    )
    association_delete: DelayRange = attrs.field(
        default=DelayRange(low=1.0, high=5.0), converter=_to_range
    )
    identity_provider_associate: DelayRange = attrs.field(
        default=DelayRange(low=900.0, high=1800.0), converter=_to_range
    )
    identity_provider_disassociate: DelayRange = attrs.field(
        default=DelayRange(low=300.0, high=900.0), converter=_to_range
    )
    #: How long a new access entry stays unseen by the cluster's authenticator (401).
    access_entry_create: DelayRange = attrs.field(
        default=DelayRange(low=1.0, high=5.0), converter=_to_range
    )
    #: How long the cluster keeps an entry's old user name and groups after an update.
    access_entry_update: DelayRange = attrs.field(
        default=DelayRange(low=1.0, high=5.0), converter=_to_range
    )
    #: How long the cluster still accepts a deleted entry (and its policies).
    access_entry_delete: DelayRange = attrs.field(
        default=DelayRange(low=1.0, high=5.0), converter=_to_range
    )
    #: How long a policy association (or a new scope) stays unseen by the authorizer (403).
    access_policy_associate: DelayRange = attrs.field(
        default=DelayRange(low=1.0, high=5.0), converter=_to_range
    )
    #: How long the authorizer still grants a disassociated policy.
    access_policy_disassociate: DelayRange = attrs.field(
        default=DelayRange(low=1.0, high=5.0), converter=_to_range
    )
    #: How long an AccessConfigUpdate (UpdateClusterConfig's authentication mode) stays
    #: InProgress; the cluster keeps its old mode until then (EKS publishes no figure: "a
    #: few minutes" for cluster updates).
    access_config_update: DelayRange = attrs.field(
        default=DelayRange(low=60.0, high=180.0), converter=_to_range
    )
    #: How long EKS Auth (and so the Pod Identity Agent) lags behind what Describe sees of a
    #: pod identity association: until then AssumeRoleForPodIdentity refuses its service
    #: account (``EKSEmulator.pod_identity_missing_code``), or still uses the old role.
    pod_identity_auth: DelayRange = attrs.field(
        default=DelayRange(low=1.0, high=5.0), converter=_to_range
    )

    @classmethod
    def none(cls) -> Delays:
        """No delays at all: every change is seen at once and finishes at once."""
        zero = DelayRange.fixed(0.0)
        return cls(**{a.name: zero for a in attrs.fields(cls)})


@attrs.frozen(kw_only=True)
class FaultRates:
    """The chance, per call, of each fault (0 to 1; together at most 1), and latency."""

    throttle: float = attrs.field(default=0.0, converter=_number, validator=_probability)
    server_error: float = attrs.field(default=0.0, converter=_number, validator=_probability)
    unavailable: float = attrs.field(default=0.0, converter=_number, validator=_probability)
    drop_before: float = attrs.field(default=0.0, converter=_number, validator=_probability)
    drop_after: float = attrs.field(default=0.0, converter=_number, validator=_probability)
    #: Chance that an Update the call starts ends ``Failed`` (identity provider calls).
    fail_update: float = attrs.field(default=0.0, converter=_number, validator=_probability)
    #: Extra time before answering, in EKS seconds.
    latency: DelayRange = attrs.field(factory=lambda: DelayRange.fixed(0.0), converter=_to_range)

    def __attrs_post_init__(self) -> None:
        if sum(self.outcome_rates()) > 1.0 + 1e-9:
            raise ValueError("the fault rates add up to more than 1")

    def outcome_rates(self) -> tuple[float, float, float, float, float]:
        """The five rates in a fixed order: throttle, server error, unavailable, drop before, drop after."""
        return (
            self.throttle,
            self.server_error,
            self.unavailable,
            self.drop_before,
            self.drop_after,
        )


def _operation_faults(value: Any) -> dict[str, FaultRates]:
    if not isinstance(value, Mapping):
        raise TypeError("operation_faults maps operation names to FaultRates")
    out: dict[str, FaultRates] = {}
    for name, rates in value.items():
        if name not in KNOWN_OPERATIONS:
            raise ValueError(f"EKS has no operation named {name!r}")
        out[name] = rates if isinstance(rates, FaultRates) else _rates_from_json(rates)
    return out


def _throttle_code(_inst: object, _attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in _THROTTLE_CODES:
        raise ValueError(f"throttle_code must be one of {', '.join(_THROTTLE_CODES)}")


def _positive(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive")


def _burst(value: Any) -> int:
    number = _number(value)
    if number != int(number):
        raise ValueError("burst must be a whole number of calls")
    if number < 1:
        raise ValueError("burst must be at least 1")
    return int(number)


def _bucket_rate(value: Any) -> float:
    rate = _number(value)
    if not rate > 0:
        raise ValueError("rate must be positive")
    return rate


def _per_operation(value: Any) -> dict[str, tuple[float, int]]:
    if not isinstance(value, Mapping):
        raise TypeError("per_operation maps operation names to (rate, burst) pairs")
    out: dict[str, tuple[float, int]] = {}
    for name, pair in value.items():
        if name not in KNOWN_OPERATIONS:
            raise ValueError(f"EKS has no operation named {name!r}")
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError(f"per_operation[{name!r}] must be a (rate, burst) pair")
        try:
            out[name] = (_bucket_rate(pair[0]), _burst(pair[1]))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"per_operation[{name!r}]: {exc}") from None
    return out


#: The key of the bucket an account and region's calls share (operations not named in
#: ``per_operation``).
SHARED_BUCKET = "*"


@attrs.frozen(kw_only=True)
class RateLimit:
    """Throttling by rate: a token bucket per account and region, as a rate-limited EKS.

    Each bucket holds at most ``burst`` tokens and starts full; it gains ``rate`` tokens per
    second of the emulator's clock (EKS time: a ``ManualClock`` moves it by hand). A call
    takes one token; a call that finds its bucket empty is answered HTTP 429 with the
    configured ``throttle_code`` and is not acted on. A refused call takes no token (as
    real token-bucket limiters), so a client that keeps retrying does not starve itself.

    ``per_operation`` gives the named operations buckets of their own, ``(rate, burst)``
    each (again per account and region), used instead of the shared one. EKS Auth's
    ``AssumeRoleForPodIdentity`` (and the Pod Identity Agent's calls to it) never share
    EKS's bucket: unless named, it has one of its own (``eks-auth``) with ``rate`` and
    ``burst``. Changing the setting starts every bucket again, full.
    """

    rate: float = attrs.field(converter=_bucket_rate)
    burst: int = attrs.field(default=1, converter=_burst)
    per_operation: Mapping[str, tuple[float, int]] = attrs.field(
        factory=dict, converter=_per_operation, hash=False
    )

    def bucket_for(self, operation: str) -> tuple[str, float, int]:
        """``(bucket key, rate, burst)`` for a call of ``operation``."""
        own = self.per_operation.get(operation)
        if own is not None:
            return operation, own[0], own[1]
        if operation in AUTH_OPERATIONS:
            return EKS_AUTH_BUCKET, self.rate, self.burst
        return SHARED_BUCKET, self.rate, self.burst

    def to_json(self) -> dict[str, Any]:
        """The rate limit as JSON data (the admin API's form)."""
        return {
            "rate": self.rate,
            "burst": self.burst,
            "per_operation": {op: list(pair) for op, pair in self.per_operation.items()},
        }


def _to_rate_limit(value: Any) -> RateLimit | None:
    """``RateLimit``, ``None`` (no limit) or its JSON form."""
    if value is None or isinstance(value, RateLimit):
        return value
    return _rate_limit_from_json(value)


def _rate_limit_from_json(data: Any, base: RateLimit | None = None) -> RateLimit | None:
    """The JSON form onto ``base``: ``null`` turns the limit off; an object sets the fields
    it names (``rate`` is needed when there is no limit yet; ``per_operation`` replaces the
    whole table)."""
    if data is None or isinstance(data, RateLimit):
        return data
    if base is None:
        if not isinstance(data, Mapping):
            raise TypeError("expected an object for RateLimit")
        if "rate" not in data:
            raise ValueError("a rate_limit needs a rate (calls per second)")
        base = RateLimit(rate=data["rate"])
    limit: RateLimit = _evolve(base, data)
    return limit


@attrs.frozen(kw_only=True)
class EmulatorConfig:
    """Everything that shapes the emulator's behaviour.

    ``seed`` makes ids, delays and faults repeat from run to run. ``time_scale`` is used
    when the emulator makes its own clock (EKS seconds per real second).
    """

    seed: int = 0
    time_scale: float = attrs.field(default=1.0, converter=_number, validator=_positive)
    delays: Delays = attrs.field(factory=Delays)
    faults: FaultRates = attrs.field(factory=FaultRates)
    #: Per-operation fault rates, used instead of ``faults`` for the named operations.
    operation_faults: Mapping[str, FaultRates] = attrs.field(
        factory=dict, converter=_operation_faults, hash=False
    )
    #: Which throttling error a throttled call gets (both with HTTP 429).
    throttle_code: ThrottleCode = attrs.field(
        default="ThrottlingException", validator=_throttle_code
    )
    #: Check each request's SigV4 signature against the known test credentials.
    verify_signatures: bool = True
    #: How far (seconds) X-Amz-Date may be from the emulator's time, as AWS allows.
    max_clock_skew: float = attrs.field(default=300.0, converter=_number, validator=_positive)
    #: Account and region of requests that carry no (checked) credential scope.
    default_account_id: str = DEFAULT_ACCOUNT_ID
    default_region: str = DEFAULT_REGION
    #: Throttling by rate (``None``: no limit), answered with ``throttle_code``; separate
    #: from the random throttle fault (``FaultRates.throttle``).
    rate_limit: RateLimit | None = attrs.field(default=None, converter=_to_rate_limit)
    #: EKS seconds an IAM role stays unknown to EKS after a request first names it, as a
    #: role created moments ago does until IAM propagates it: Create/UpdatePodIdentityAssociation
    #: naming it meanwhile get ``InvalidParameterException`` "Role provided in the request does
    #: not exist." (0: every role is known at once).
    role_propagation: float = attrs.field(
        default=0.0, converter=_number, validator=_non_negative
    )

    def rates_for(self, operation: str) -> FaultRates:
        """The fault rates an operation meets: its own in ``operation_faults``, else ``faults``."""
        return self.operation_faults.get(operation, self.faults)

    def to_json(self) -> dict[str, Any]:
        """The configuration as JSON data (the admin API's form)."""
        return {
            "seed": self.seed,
            "time_scale": self.time_scale,
            "delays": {
                a.name: getattr(self.delays, a.name).to_json() for a in attrs.fields(Delays)
            },
            "faults": _rates_to_json(self.faults),
            "operation_faults": {k: _rates_to_json(v) for k, v in self.operation_faults.items()},
            "throttle_code": self.throttle_code,
            "verify_signatures": self.verify_signatures,
            "max_clock_skew": self.max_clock_skew,
            "default_account_id": self.default_account_id,
            "default_region": self.default_region,
            "rate_limit": None if self.rate_limit is None else self.rate_limit.to_json(),
            "role_propagation": self.role_propagation,
        }

    def updated(self, data: Mapping[str, Any]) -> EmulatorConfig:
        """A copy with the settings ``data`` (JSON form, any subset) gives; checks them.

        ``delays``, ``faults`` and ``rate_limit`` may name only some of their fields;
        ``operation_faults`` and ``rate_limit.per_operation`` replace the whole table;
        ``"rate_limit": null`` turns the limit off. Raises ``ValueError``/``TypeError``.
        """
        known = {a.name for a in attrs.fields(EmulatorConfig)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(unknown)}")
        changes: dict[str, Any] = dict(data)
        if "seed" in changes and (
            isinstance(changes["seed"], bool) or not isinstance(changes["seed"], int)
        ):
            raise TypeError("seed must be an integer")
        for flag in ("verify_signatures",):
            if flag in changes and not isinstance(changes[flag], bool):
                raise TypeError(f"{flag} must be true or false")
        for text in ("default_account_id", "default_region"):
            if text in changes and not isinstance(changes[text], str):
                raise TypeError(f"{text} must be a string")
        if "delays" in changes:
            changes["delays"] = _evolve(self.delays, changes["delays"])
        if "faults" in changes:
            changes["faults"] = _rates_from_json(changes["faults"], self.faults)
        if "rate_limit" in changes:
            changes["rate_limit"] = _rate_limit_from_json(changes["rate_limit"], self.rate_limit)
        return attrs.evolve(self, **changes)


def _evolve(base: Any, data: Any) -> Any:
    # attrs.evolve runs the fields' converters and validators on the new values.
    if not isinstance(data, Mapping):
        raise TypeError(f"expected an object for {type(base).__name__}")
    names = {a.name for a in attrs.fields(type(base))}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {type(base).__name__} fields: {', '.join(unknown)}")
    return attrs.evolve(base, **data)


def _rates_to_json(rates: FaultRates) -> dict[str, Any]:
    out: dict[str, Any] = {
        a.name: getattr(rates, a.name) for a in attrs.fields(FaultRates) if a.name != "latency"
    }
    out["latency"] = rates.latency.to_json()
    return out


def _rates_from_json(data: Any, base: FaultRates | None = None) -> FaultRates:
    if isinstance(data, FaultRates):
        return data
    rates: FaultRates = _evolve(base or FaultRates(), data)
    return rates
