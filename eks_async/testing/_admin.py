"""The admin API under ``/_emulator/``: control an emulator that runs in another process.

    GET  /_emulator/health        {"ok": true}
    GET  /_emulator/config        the configuration (JSON form of EmulatorConfig)
    POST /_emulator/config        change some settings: {"faults": {"throttle": 0.3}, ...};
                                  {"rate_limit": {"rate": 20, "burst": 10, "per_operation":
                                  {"CreatePodIdentityAssociation": [5, 5]}}}, or null: off
    POST /_emulator/reset         forget everything; optional {"seed": 7}
    POST /_emulator/faults        script faults: {"operation": "DescribeUpdate",
                                  "fault": "server_error", "times": 2}
    GET  /_emulator/counters      calls by operation and outcome (rate_limited: of the
                                  throttled calls, those the rate limit refused)
    POST /_emulator/clock         {"advance": 60} or {"settle": true} (ManualClock only)
    POST /_emulator/credentials   accept another key: {"access_key_id": ..., ...}
    POST /_emulator/clusters      add an ACTIVE cluster: {"name": "prod", "region": ...}
    POST /_emulator/principals    delete and re-create an IAM role or user (a new unique id:
                                  access entries made before stop matching it):
                                  {"recreate": "arn:aws:iam::123456789012:role/ci"}
    GET  /_emulator/state         configuration, clock, scripted faults still waiting and
                                  the rate limit's tokens by account/region/bucket now

Its requests are neither signed, counted nor faulted. Bad input gets 400 with
``{"message": ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from ._wire import EmulatorRequest, EmulatorResponse

if TYPE_CHECKING:
    from ._emulator import EKSEmulator

__all__ = ["handle_admin"]


class _AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _answer(status: int, data: Any) -> EmulatorResponse:
    return EmulatorResponse(
        status=status,
        headers=(("Content-Type", "application/json"),),
        body=json.dumps(data, separators=(",", ":")).encode(),
    )


def _body(request: EmulatorRequest) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    try:
        data = json.loads(request.body)
    except ValueError:
        raise _AdminError(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise _AdminError(400, "the body must be a JSON object")
    return data


def _string(data: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise _AdminError(400, f"{key} must be a non-empty string")
    return value


def _health(emulator: EKSEmulator, request: EmulatorRequest) -> Any:
    return {"ok": True}


def _get_config(emulator: EKSEmulator, request: EmulatorRequest) -> Any:
    return emulator.config.to_json()


def _set_config(emulator: EKSEmulator, request: EmulatorRequest) -> Any:
    return emulator.configure(emulator.config.updated(_body(request))).to_json()


def _reset(emulator: EKSEmulator, request: EmulatorRequest) -> Any:
    seed = _body(request).get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _AdminError(400, "seed must be an integer")
    emulator.reset(seed=seed)
    return {"ok": True, "seed": emulator.config.seed}


def _faults(emulator: EKSEmulator, request: EmulatorRequest) -> Any:
    data = _body(request)
    operation = _string(data, "operation")
    fault = _string(data, "fault")
    times = data.get("times", 1)
    if isinstance(times, bool) or not isinstance(times, int):
        raise _AdminError(400, "times must be an integer")
    assert operation is not None and fault is not None
    emulator.script(
        operation,
        fault,
        times=times,
        message=_string(data, "message", required=False),
        error_code=_string(data, "error_code", required=False),
    )
    return {"ok": True}


def _counters(emulator: EKSEmulator, request: EmulatorRequest) -> Any:
    return {
        op: {**attrs.asdict(counts), "total": counts.total}
        for op, counts in emulator.counters().items()
    }


def _clock(emulator: EKSEmulator, request: EmulatorRequest) -> Any:
    data = _body(request)
    moved = 0.0
    if data.get("settle") is True:
        moved = emulator.settle()
    elif "advance" in data:
        seconds = data["advance"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise _AdminError(400, "advance must be a non-negative number of seconds")
        emulator.advance(seconds)
        moved = float(seconds)
    else:
        raise _AdminError(400, 'give {"advance": seconds} or {"settle": true}')
    return {"moved": moved, "now": emulator.clock.monotonic()}


def _credentials(emulator: EKSEmulator, request: EmulatorRequest) -> Any:
    data = _body(request)
    key_id = _string(data, "access_key_id")
    secret = _string(data, "secret_access_key")
    assert key_id is not None and secret is not None
    emulator.register_credentials(
        key_id,
        secret,
        session_token=_string(data, "session_token", required=False),
        account_id=_string(data, "account_id", required=False),
    )
    return {"ok": True}


def _clusters(emulator: EKSEmulator, request: EmulatorRequest) -> Any:
    data = _body(request)
    name = _string(data, "name")
    assert name is not None
    arn = emulator.add_cluster(
        name,
        region=_string(data, "region", required=False),
        account_id=_string(data, "account_id", required=False),
        active=data.get("active", True) is not False,
    )
    return {"arn": arn}


def _principals(emulator: EKSEmulator, request: EmulatorRequest) -> Any:
    arn = _string(_body(request), "recreate")
    assert arn is not None
    return {"arn": arn, "unique_id": emulator.recreate_principal(arn)}


def _state(emulator: EKSEmulator, request: EmulatorRequest) -> Any:
    state = emulator._admin_state()
    with emulator._lock:
        state["rate_limit_tokens"] = emulator._faults.buckets.tokens(emulator.clock.monotonic())
    return state


_ROUTES: dict[tuple[str, str], Callable[[EKSEmulator, EmulatorRequest], Any]] = {
    ("GET", "health"): _health,
    ("GET", "config"): _get_config,
    ("POST", "config"): _set_config,
    ("POST", "reset"): _reset,
    ("POST", "faults"): _faults,
    ("GET", "counters"): _counters,
    ("POST", "clock"): _clock,
    ("POST", "credentials"): _credentials,
    ("POST", "clusters"): _clusters,
    ("POST", "principals"): _principals,
    ("GET", "state"): _state,
}


def handle_admin(emulator: EKSEmulator, request: EmulatorRequest) -> EmulatorResponse:
    name = request.path.removeprefix("/_emulator").strip("/")
    handler = _ROUTES.get((request.method, name))
    if handler is None:
        known = ", ".join(f"{m} /_emulator/{n}" for m, n in _ROUTES)
        return _answer(404, {"message": f"no admin endpoint {request.method} {name!r}; {known}"})
    try:
        return _answer(200, handler(emulator, request))
    except _AdminError as exc:
        return _answer(exc.status, {"message": exc.message})
    except (TypeError, ValueError) as exc:
        return _answer(400, {"message": str(exc)})
