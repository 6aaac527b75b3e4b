"""Test doubles for EKS's answers, shared by the retry, pipeline, waiter and regression tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from eks_async import WaiterConfig

#: What EKS appends to an error code in ``x-amzn-ErrorType``.
ERROR_TYPE = ":http://internal.amazon.com/coral/com.amazonaws.eks.v20171101/"


def error_answer(status: int, code: str, message: str = "m", **headers: str) -> httpx.Response:
    """An error answer as EKS writes it."""
    return httpx.Response(
        status,
        json={"message": message},
        headers={"x-amzn-ErrorType": code + ERROR_TYPE, "x-amzn-RequestId": "rid", **headers},
    )


def ok_answer(body: dict[str, Any] | None = None) -> httpx.Response:
    """A 200 answer with ``body`` (an empty object when not given)."""
    return httpx.Response(200, json=body or {}, headers={"x-amzn-RequestId": "rid-ok"})


Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class Script(httpx.AsyncBaseTransport):
    """Answers from a list (the last one repeats): responses, exceptions to raise, or
    functions of the request; records every request."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer


class FakeTime:
    """A waiter clock that moves only when the waiter sleeps: no real time passes."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def config(self, **kwargs: Any) -> WaiterConfig:
        return WaiterConfig(clock=self.clock, sleep=self.sleep, **kwargs)
