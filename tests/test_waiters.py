"""Waiters and paginators, on scripted answers (the emulator tests cover them end to end)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import botocore.waiter
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eks_async
from eks_async._generated.waiters import WAITERS
from eks_async._waiters.engine import Waiter, WaiterConfig, WaitProgress

from ._answers import ERROR_TYPE, FakeTime
from ._botomodel import operation

STATUS_CODES = {"ResourceNotFoundException": 404, "AccessDeniedException": 403,
                "InvalidParameterException": 400}


class Answers(httpx.AsyncBaseTransport):
    """Answers each request with ``respond(request)``."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response]) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)


def _client(transport: httpx.AsyncBaseTransport) -> eks_async.EKSClient:
    return eks_async.EKSClient(
        region="us-west-2", aws_access_key_id="AKID", aws_secret_access_key="secret",
        transport=transport, retry=eks_async.RetryConfig(max_attempts=1),
    )


def _json(body: dict[str, Any], status: int = 200, code: str | None = None) -> httpx.Response:
    headers = {"x-amzn-RequestId": "rid"}
    if code:
        headers["x-amzn-ErrorType"] = code + ERROR_TYPE
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


def _sequence(answers: list[httpx.Response]) -> Callable[[httpx.Request], httpx.Response]:
    it: Iterator[httpx.Response] = iter(answers)
    last: list[httpx.Response] = []

    def respond(request: httpx.Request) -> httpx.Response:
        with contextlib.suppress(StopIteration):
            last[:] = [next(it)]
        return last[0]

    return respond


# --- the model's waiters behave as botocore's -------------------------------------------------


def _status_path(name: str) -> tuple[str, str]:
    arg = next(a.argument for a in WAITERS[name].acceptors if a.argument)
    assert arg is not None
    outer, field = arg.split(".")
    return outer, field


def _answer_strategy(name: str) -> st.SearchStrategy[tuple[str, str]]:
    outer, field = _status_path(name)
    op = operation(WAITERS[name].operation)
    shape = op.output_shape.members[outer].members[field]
    statuses = st.sampled_from(list(shape.enum))
    errors = st.sampled_from(sorted(STATUS_CODES))
    return st.one_of(statuses.map(lambda s: ("status", s)), errors.map(lambda e: ("error", e)))


class _BotoFake:
    """Enough of a botocore client for botocore's waiter: answers from a list."""

    def __init__(self, answers: list[tuple[str, str]], outer: str, field: str) -> None:
        self.answers = answers
        self.calls = 0
        self.outer, self.field = outer, field

    def __call__(self, **kwargs: Any) -> dict[str, Any]:
        kind, value = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if kind == "error":
            return {"Error": {"Code": value, "Message": "m"},
                    "ResponseMetadata": {"HTTPStatusCode": STATUS_CODES[value]}}
        return {self.outer: {self.field: value}}


def _botocore_outcome(name: str, answers: list[tuple[str, str]], attempts: int) -> tuple[str, int]:
    outer, field = _status_path(name)
    fake = _BotoFake(answers, outer, field)
    config = botocore.waiter.SingleWaiterConfig(
        {"delay": 0, "maxAttempts": attempts, "operation": WAITERS[name].operation,
         "acceptors": [
             {k: v for k, v in {"state": a.state, "matcher": a.matcher,
                                "expected": a.expected, "argument": a.argument}.items()
              if v is not None}
             for a in WAITERS[name].acceptors
         ]}
    )
    waiter = botocore.waiter.Waiter(name, config, fake)
    try:
        waiter.wait()
    except botocore.waiter.WaiterError as exc:
        kind = "timeout" if "Max attempts" in str(exc) else "failure"
        return kind, fake.calls
    return "success", fake.calls


async def _our_outcome(name: str, answers: list[tuple[str, str]], attempts: int) -> tuple[str, int]:
    outer, field = _status_path(name)
    responses = [
        _json({outer: {field: value}}) if kind == "status"
        else _json({"message": "m"}, STATUS_CODES[value], value)
        for kind, value in answers
    ]
    transport = Answers(_sequence(responses))
    fake = FakeTime()
    config = WaiterConfig(min_delay=1, max_delay=1, max_wait=attempts - 1 or 0.5,
                          jitter=False, clock=fake.clock, sleep=fake.sleep)
    spec = WAITERS[name]
    op = operation(spec.operation)
    kwargs = {_py(n): "x" for n in op.input_shape.required_members}
    method = getattr(eks_async.Waiters, _py(name))
    async with _client(transport) as eks:
        try:
            await method(eks.waiters, **kwargs, config=config)
        except eks_async.WaiterTimeoutError:
            return "timeout", len(transport.requests)
        except eks_async.WaiterFailureError:
            return "failure", len(transport.requests)
    return "success", len(transport.requests)


def _py(name: str) -> str:
    return botocore.xform_name(name)


@pytest.mark.parametrize("name", sorted(WAITERS))
def test_model_waiters_decide_as_botocore_does(name: str) -> None:
    @settings(max_examples=25, deadline=None, database=None)
    @given(answers=st.lists(_answer_strategy(name), min_size=1, max_size=6),
           attempts=st.integers(min_value=1, max_value=7))
    def check(answers: list[tuple[str, str]], attempts: int) -> None:
        theirs = _botocore_outcome(name, answers, attempts)
        ours = asyncio.run(_our_outcome(name, answers, attempts))
        assert ours == theirs

    check()


def test_every_waiter_of_the_model_is_generated() -> None:
    import botocore.session

    loader = botocore.session.get_session().get_component("data_loader")
    model = loader.load_service_model("eks", "waiters-2")
    assert sorted(model["waiters"]) == sorted(WAITERS)
    for name in WAITERS:
        assert callable(getattr(eks_async.Waiters, _py(name)))


# --- the engine -------------------------------------------------------------------------------


@given(
    min_delay=st.floats(min_value=0.1, max_value=10),
    spread=st.floats(min_value=1, max_value=50),
    attempt=st.integers(min_value=1, max_value=40),
    throttled=st.integers(min_value=0, max_value=5),
    r=st.floats(min_value=0, max_value=1),
)
def test_delays_grow_between_min_and_max(
    min_delay: float, spread: float, attempt: int, throttled: int, r: float
) -> None:
    config = WaiterConfig(min_delay=min_delay, max_delay=min_delay * spread, rng=lambda: r)
    waiter: Waiter[None] = Waiter("w", None, None, config)  # type: ignore[arg-type]
    delay = waiter.delay(attempt, throttled)
    assert min_delay <= delay <= min_delay * spread + 1e-9
    no_jitter = Waiter("w", None, None, attrs_evolve(config, jitter=False))  # type: ignore[arg-type]
    assert no_jitter.delay(attempt + 1, throttled) >= no_jitter.delay(attempt, throttled)


def attrs_evolve(config: WaiterConfig, **changes: Any) -> WaiterConfig:
    import attrs

    return attrs.evolve(config, **changes)


def _update(status: str, errors: list[dict[str, Any]] | None = None) -> httpx.Response:
    update: dict[str, Any] = {"id": "u-1", "status": status, "type": "AssociateIdentityProviderConfig"}
    if errors is not None:
        update["errors"] = errors
    return _json({"update": update})


async def test_update_successful_follows_an_update_and_reports_every_poll() -> None:
    transport = Answers(_sequence([
        _json({"message": "no"}, 404, "ResourceNotFoundException"),
        _update("InProgress"), _update("InProgress"), _update("Successful"),
    ]))
    fake = FakeTime()
    seen: list[WaitProgress] = []
    async with _client(transport) as eks:
        out = await eks.waiters.update_successful(
            cluster_name="prod", update_id="u-1", on_progress=seen.append,
            config=WaiterConfig(min_delay=5, max_delay=60, max_wait=600,
                                clock=fake.clock, sleep=fake.sleep),
        )
    assert out.update is not None and out.update.status == "Successful"
    assert [p.state for p in seen] == ["ResourceNotFoundException", "InProgress", "InProgress",
                                       "Successful"]
    assert [p.attempt for p in seen] == [1, 2, 3, 4]
    assert seen[-1].next_delay is None and all(p.next_delay for p in seen[:-1])
    assert [p.elapsed for p in seen] == [0.0, *[sum(fake.sleeps[:i]) for i in (1, 2, 3)]]


async def test_update_failed_raises_with_the_updates_errors() -> None:
    errors = [{"errorCode": "AccessDenied", "errorMessage": "no", "resourceIds": ["r1"]}]
    transport = Answers(_sequence([_update("InProgress"), _update("Failed", errors)]))
    fake = FakeTime()
    async with _client(transport) as eks:
        with pytest.raises(eks_async.WaiterFailureError) as info:
            await eks.waiters.update_successful(
                cluster_name="prod", update_id="u-1",
                config=WaiterConfig(clock=fake.clock, sleep=fake.sleep),
            )
    assert [(e.error_code, e.error_message, e.resource_ids) for e in info.value.errors] == [
        ("AccessDenied", "no", ["r1"])
    ]
    assert info.value.output.update.status == "Failed"
    assert info.value.polls == 2


async def test_timeout_carries_the_last_update_and_never_overruns() -> None:
    transport = Answers(lambda request: _update("InProgress"))
    fake = FakeTime()
    async with _client(transport) as eks:
        with pytest.raises(eks_async.WaiterTimeoutError) as info:
            await eks.waiters.update_successful(
                cluster_name="prod", update_id="u-1",
                config=WaiterConfig(min_delay=5, max_delay=60, max_wait=300,
                                    clock=fake.clock, sleep=fake.sleep),
            )
    assert info.value.last_output.update.status == "InProgress"
    assert info.value.polls == len(transport.requests)
    assert 300 - 5 <= fake.now <= 300  # waited until max_wait was all but spent, not past it
    assert max(fake.sleeps) <= 60


async def test_throttling_slows_the_waiter_instead_of_failing_it() -> None:
    def run(throttle_every: int) -> Callable[[httpx.Request], httpx.Response]:
        count = [0]

        def respond(request: httpx.Request) -> httpx.Response:
            count[0] += 1
            if count[0] >= 12:
                return _update("Successful")
            if throttle_every and count[0] % throttle_every == 0:
                return _json({"message": "Too Many Requests"}, 429, "TooManyRequestsException")
            return _update("InProgress")

        return respond

    async def mean_delay(respond: Callable[[httpx.Request], httpx.Response]) -> float:
        fake = FakeTime()
        async with _client(Answers(respond)) as eks:
            await eks.waiters.update_successful(
                cluster_name="prod", update_id="u-1",
                config=WaiterConfig(min_delay=1, max_delay=64, max_wait=10_000, jitter=False,
                                    clock=fake.clock, sleep=fake.sleep),
            )
        return fake.now / len(fake.sleeps)

    calm = await mean_delay(run(0))
    throttled = await mean_delay(run(3))
    assert throttled > calm  # fewer polls per second while EKS throttles


# --- paginators -------------------------------------------------------------------------------


def _pages(total: int, page_size: int, repeat_token: bool = False) -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("nextToken")
        start = int(token) if token else 0
        items = [
            {"clusterName": "prod", "namespace": "ns", "serviceAccount": f"sa-{i}",
             "associationId": f"a-{i:017d}"}
            for i in range(start, min(total, start + page_size))
        ]
        body: dict[str, Any] = {"associations": items}
        if start + page_size < total:
            body["nextToken"] = "0" if repeat_token and start else str(start + page_size)
        return _json(body)

    return respond


@pytest.mark.parametrize("total", [0, 1, 100, 250])
async def test_paginator_yields_every_item_exactly_once(total: int) -> None:
    transport = Answers(_pages(total, 37))
    async with _client(transport) as eks:
        ids = [a.association_id async for a in
               eks.paginate.list_pod_identity_associations(cluster_name="prod", max_results=37)]
        paginator = eks.paginate.list_pod_identity_associations(cluster_name="prod")
        pages = [p async for p in paginator.pages()]
    assert ids == [f"a-{i:017d}" for i in range(total)]
    assert len(pages) == max(1, -(-total // 37))
    assert all(r.url.params.get("maxResults") == "37" for r in transport.requests[: len(pages)])


async def test_paginator_stops_on_a_repeated_token() -> None:
    # Without the guard the paginator would loop forever, and the double answers without
    # ever yielding to the event loop (so a timeout alone could not end it): the test takes
    # at most a few pages more than expected and then fails, never hangs.
    cap = 10
    transport = Answers(_pages(250, 50, repeat_token=True))
    async with asyncio.timeout(60), _client(transport) as eks:
        ids: list[str] = []
        async for item in eks.paginate.list_pod_identity_associations(cluster_name="prod"):
            ids.append(item.association_id)
            if len(ids) > cap * 50:
                break
        pages = 0
        async for _ in eks.paginate.list_pod_identity_associations(cluster_name="prod").pages():
            pages += 1
            if pages > cap:
                break
    # pages: 0 -> token "50"; 50 -> token "0"; 0 -> token "50" (seen) -> stop
    assert pages == 3
    assert len(transport.requests) == 6
    assert len(ids) == 150
