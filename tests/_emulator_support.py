"""Shared helpers for the emulator's tests: a response validator from botocore's model.

``validate_emulator_responses`` is an autouse fixture (import it into a test module): it
hooks every ``EKSEmulator`` the test creates, checks each answer against botocore's model
of EKS (output shape for a success; error shape, status and headers for an error) and fails
the test if any answer does not fit. The validator reads botocore's ``ServiceModel``, not
eks_async's generated tables, so it is an independent opinion on what EKS sends.
"""

from __future__ import annotations

import datetime
import json
import re
import threading
from collections.abc import Iterator
from functools import cache
from typing import Any, Final

import pytest
from botocore.model import ServiceModel, Shape

from eks_async._auth.credentials import Credentials
from eks_async._auth.sigv4 import SigV4Signer
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    EKSEmulator,
    EmulatorRequest,
    EmulatorResponse,
    Exchange,
)

from ._botomodel import service_model

ERROR_TYPE = re.compile(
    r"[A-Za-z]+:http://internal\.amazon\.com/coral/com\.amazon(aws\.eks\.v20171101|\.coral\.[a-z]+)/"
)
#: EKS Auth's answers (its own model and namespace) and the Pod Identity Agent's.
AUTH_OPERATION = "AssumeRoleForPodIdentity"
AUTH_ERROR_TYPE = re.compile(
    r"[A-Za-z]+:http://internal\.amazon\.com/coral/com\.amazonaws\.eksauth\.v20231126/"
)
AGENT_PATH = "/v1/credentials"
AGENT_KEYS = {"AccessKeyId", "SecretAccessKey", "Token", "AccountId", "Expiration"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
ASSOCIATION_ID = re.compile(r"a-[0-9a-z]{17}")
ROLE = "arn:aws:iam::123456789012:role/payments-api"
OTHER_ROLE = "arn:aws:iam::123456789012:role/payments-api-v2"
VPC = {"subnetIds": ["subnet-0a1", "subnet-0b2"], "securityGroupIds": ["sg-0c3"]}
_FRONT_END_CODES = {
    "IncompleteSignatureException": 403,
    "InvalidSignatureException": 403,
    "MissingAuthenticationTokenException": 403,
    "UnrecognizedClientException": 403,
    "UnknownOperationException": 404,
    "TooManyRequestsException": 429,
}


def check_value(shape: Shape, value: Any, where: str, problems: list[str]) -> None:
    """Append to ``problems`` every way ``value`` does not fit ``shape`` (botocore's)."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{where}: expected an object, got {type(value).__name__}")
            return
        members = shape.members
        for key in value:
            if key not in members:
                problems.append(f"{where}: unknown member {key!r}")
        for key in shape.required_members:
            if key not in value:
                problems.append(f"{where}: required member {key!r} missing")
        for key, item in value.items():
            if key in members and item is not None:
                check_value(members[key], item, f"{where}.{key}", problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            check_value(shape.member, item, f"{where}[{i}]", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{where}: expected an object, got {type(value).__name__}")
            return
        for key, item in value.items():
            check_value(shape.key, key, f"{where} key", problems)
            check_value(shape.value, item, f"{where}[{key!r}]", problems)
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{where}: expected a string, got {type(value).__name__}")
        elif shape.enum and value not in shape.enum:
            problems.append(f"{where}: {value!r} is not one of the enum's values")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{where}: expected an integer, got {type(value).__name__}")
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{where}: expected a number, got {type(value).__name__}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{where}: expected a boolean, got {type(value).__name__}")
    elif kind == "timestamp":
        # EKS sends epoch seconds (botocore's rest-json default timestampFormat).
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{where}: expected epoch seconds, got {type(value).__name__}")
    else:  # pragma: no cover - no other kinds in EKS's outputs
        problems.append(f"{where}: unexpected shape kind {kind}")


@cache
def _error_shapes(model: ServiceModel) -> dict[str, Shape]:
    return {shape.name: shape for shape in model.error_shapes}


def problems_with(exchange: Exchange) -> list[str]:
    """What is wrong with one answer of the emulator, measured against botocore's model."""
    problems: list[str] = []
    response = exchange.response
    where = f"{exchange.operation} {exchange.method} {exchange.path}"
    if response.drop and response.status == 0:
        return problems  # dropped before acting: nothing was built
    if exchange.path == AGENT_PATH:
        try:
            return problems_with_agent(exchange, json.loads(response.body))
        except ValueError:
            return [f"agent: body is not JSON: {response.body[:80]!r}"]
    request_id = response.header("x-amzn-RequestId")
    if request_id is None or not UUID.fullmatch(request_id):
        problems.append(f"{where}: bad x-amzn-RequestId {request_id!r}")
    if response.header("Content-Type") != "application/json":
        problems.append(f"{where}: Content-Type is {response.header('Content-Type')!r}")
    try:
        body = json.loads(response.body)
    except ValueError:
        return [*problems, f"{where}: body is not JSON: {response.body[:80]!r}"]
    model = service_model()
    error_types = ERROR_TYPE
    if exchange.operation == AUTH_OPERATION:
        model, error_types = _auth_model(), AUTH_ERROR_TYPE
    if response.status < 300:
        if response.status != 200:
            problems.append(f"{where}: success with status {response.status}")
        if response.header("x-amzn-ErrorType") is not None:
            problems.append(f"{where}: success with x-amzn-ErrorType")
        output = model.operation_model(exchange.operation).output_shape
        if output is None:
            if body:
                problems.append(f"{where}: body {body!r} for an operation without output")
        else:
            check_value(output, body, exchange.operation, problems)
        return problems
    error_type = response.header("x-amzn-ErrorType")
    if error_type is None or not error_types.fullmatch(error_type):
        return [*problems, f"{where}: bad x-amzn-ErrorType {error_type!r}"]
    code = error_type.split(":", 1)[0]
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        problems.append(f"{where}: error body without a message: {body!r}")
        return problems
    shape = _error_shapes(model).get(code)
    if shape is not None:
        status = shape.metadata.get("error", {}).get("httpStatusCode")
        if status != response.status:
            problems.append(f"{where}: {code} with status {response.status}, model says {status}")
        check_value(shape, body, code, problems)
    else:
        if _FRONT_END_CODES.get(code) != response.status:
            problems.append(f"{where}: unexpected error {code} / {response.status}")
        if set(body) != {"message"}:
            problems.append(f"{where}: {code} body has more than a message: {body!r}")
    return problems


@cache
def _auth_model() -> ServiceModel:
    import botocore.session

    return botocore.session.get_session().get_service_model("eks-auth")


def problems_with_agent(exchange: Exchange, body: Any) -> list[str]:
    """The Pod Identity Agent's answers: the container provider's keys, or Code/Message with
    the status of EKS Auth's error."""
    where = f"agent {exchange.method} {exchange.path}"
    status = exchange.response.status
    if not isinstance(body, dict):
        return [f"{where}: body is not an object"]
    if status == 200:
        return [] if set(body) == AGENT_KEYS else [f"{where}: keys {sorted(body)}"]
    problems: list[str] = []
    if set(body) != {"Code", "Message"}:
        problems.append(f"{where}: error keys {sorted(body)}")
    shape = _error_shapes(_auth_model()).get(str(body.get("Code")))
    if shape is not None and shape.metadata["error"]["httpStatusCode"] != status:
        problems.append(f"{where}: {body.get('Code')} with status {status}")
    return problems


class ResponseChecker:
    """Collects the problems of every answer of the emulators it is attached to."""

    def __init__(self) -> None:
        self.checked = 0
        self.problems: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, exchange: Exchange) -> None:
        found = problems_with(exchange)
        with self._lock:
            self.checked += 1
            self.problems.extend(found)


@pytest.fixture(autouse=True)
def validate_emulator_responses(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResponseChecker]:
    """Check every answer of every emulator made during the test against botocore's model."""
    checker = ResponseChecker()
    original = EKSEmulator.__init__

    def init(self: EKSEmulator, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.add_listener(checker)

    monkeypatch.setattr(EKSEmulator, "__init__", init)
    yield checker
    assert checker.problems == [], "\n".join(checker.problems[:20])


# --- signed requests by hand ------------------------------------------------------------------


def signed(
    method: str,
    target: str,
    body: bytes = b"",
    *,
    access_key: str = TEST_ACCESS_KEY_ID,
    secret_key: str = TEST_SECRET_ACCESS_KEY,
    session_token: str | None = None,
    at: datetime.datetime | None = None,
    region: str = "us-west-2",
    host: str = "eks.us-west-2.amazonaws.com",
    extra_headers: dict[str, str] | None = None,
) -> EmulatorRequest:
    """An ``EmulatorRequest`` signed by eks_async's signer, as a client would send it."""
    headers = {"Host": host, **(extra_headers or {})}
    if body:
        headers["Content-Type"] = "application/json"
    SigV4Signer("eks", region).sign_headers(
        method=method,
        url=f"https://{host}{target}",
        headers=headers,
        body=body,
        credentials=Credentials(
            access_key_id=access_key, secret_access_key=secret_key, session_token=session_token
        ),
        now=at or datetime.datetime.now(datetime.UTC),
    )
    return EmulatorRequest.from_target(method, target, tuple(headers.items()), body)


def body_of(response: Any) -> dict[str, Any]:
    data = json.loads(response.body)
    assert isinstance(data, dict)
    return data


def error_code(response: Any) -> str:
    value = response.header("x-amzn-ErrorType")
    assert value is not None, response
    return str(value).split(":", 1)[0]


#: The Status a busy Kubernetes API server answers 429 with.
KUBERNETES_TOO_MANY_REQUESTS: Final = EmulatorResponse(
    status=429,
    headers=(("Content-Type", "application/json"),),
    body=b'{"kind":"Status","reason":"TooManyRequests","message":"slow down"}',
)


def kubernetes_busy(
    emulator: EKSEmulator,
    monkeypatch: pytest.MonkeyPatch,
    times: int,
    path_suffix: str = "",
) -> dict[str, int]:
    """Make the emulator's Kubernetes API answer 429 to its next ``times`` requests (those whose
    path ends with ``path_suffix``); the counts it returns say how many were refused, and how
    many of those requests were served after."""
    real = emulator.handle_kubernetes
    counts = {"refused": 0, "served": 0}

    def busy(request: EmulatorRequest, **kwargs: Any) -> EmulatorResponse:
        if request.path.endswith(path_suffix):
            if counts["refused"] < times:
                counts["refused"] += 1
                return KUBERNETES_TOO_MANY_REQUESTS
            counts["served"] += 1
        return real(request, **kwargs)

    monkeypatch.setattr(emulator, "handle_kubernetes", busy)
    return counts
