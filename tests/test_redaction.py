"""No secret in any error: session tokens, signatures and cluster tokens are redacted.

EKS (and the emulator, like it) answers a signature mismatch with the canonical request it
computed, which holds the ``x-amz-security-token:<token>`` line of a caller with temporary
credentials. The end-to-end tests make that happen for real and then look for the token
and the signature everywhere the caller (or a log) could see them.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import traceback
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from eks_async import (
    EKSAsyncError,
    EKSClient,
    ResponseParseError,
    RetryConfig,
    ServiceError,
    TransportError,
)
from eks_async._auth.sigv4 import SigV4Signer
from eks_async._exceptions import ParamValidationError
from eks_async._generated.errors import ClientException, InvalidParameterException
from eks_async._redact import REDACTED, redact, redact_error, redact_value
from eks_async.testing import Delays, EKSEmulator, Exchange, ManualClock

ACCESS_KEY = "ASIAREDACTIONTEST01"
SECRET_KEY = "the-right-secret-key-0123456789abcdefghij"
WRONG_SECRET = "a-wrong-secret-key-0123456789abcdefghijk"
# Shaped like an STS session token: base64 with '+', '/' and '=' (percent-encoded in a query).
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLXdlc3QtMiJHMEUCIQD+redaction/test/token=="
NO_RETRY = RetryConfig(max_attempts=1)
HEX64 = re.compile(r"[0-9a-f]{64}")


# --- the redaction itself --------------------------------------------------------------


def test_the_session_token_line_of_a_canonical_request() -> None:
    text = f"GET\n/clusters\n\nhost:eks.us-west-2.amazonaws.com\nx-amz-security-token:{TOKEN}\n"
    out = redact(text)
    assert TOKEN not in out
    assert f"x-amz-security-token:{REDACTED}\n" in out
    assert out.startswith("GET\n/clusters\n\nhost:eks.us-west-2.amazonaws.com\n")
    # As a header, with a space and another case.
    assert redact(f"X-Amz-Security-Token: {TOKEN}") == f"X-Amz-Security-Token: {REDACTED}"


def test_tokens_and_signatures_in_query_strings() -> None:
    query = (
        "Action=GetCallerIdentity&X-Amz-Security-Token=IQoJb3J%2Babc%2Fdef%3D%3D"
        "&X-Amz-Signature=" + "ab" * 32 + "&X-Amz-Date=20240101T000000Z"
    )
    assert redact(query) == (
        f"Action=GetCallerIdentity&X-Amz-Security-Token={REDACTED}"
        f"&X-Amz-Signature={REDACTED}&X-Amz-Date=20240101T000000Z"
    )


def test_the_signature_of_an_authorization_header() -> None:
    header = (
        "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-west-2/eks/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0f" * 32
    )
    out = redact(header)
    assert out.endswith(f"SignedHeaders=host;x-amz-date, Signature={REDACTED}")
    assert "0f" * 32 not in out
    # Quoted in JSON or a repr, the value stops at the quote.
    assert redact(json.dumps({"auth": header})).endswith(f'Signature={REDACTED}"}}')


def test_cluster_bearer_tokens() -> None:
    token = "k8s-aws-v1.aHR0cHM6Ly9zdHMudXMtd2VzdC0yLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1H-_"
    assert redact(f"Authorization: Bearer {token}, then") == (
        f"Authorization: Bearer k8s-aws-v1.{REDACTED}, then"
    )


def test_text_without_a_secret_passes_through_unchanged() -> None:
    for text in (
        "",
        "ResourceNotFoundException: No cluster found for name: prod.",
        "Signature expired: 20240101T000000Z is now earlier than 20240101T000500Z",
        "the signature you provided is not valid; SignedHeaders=host",
        "x-amz-date:20240101T000000Z\nhost:eks.us-west-2.amazonaws.com",
    ):
        assert redact(text) is text
        assert redact(text, [SECRET_KEY, TOKEN]) is text


def test_exact_values_wherever_they_appear() -> None:
    quoted = TOKEN.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    text = f"token {TOKEN}, in a URL {quoted}, key {SECRET_KEY}."
    assert redact(text, [TOKEN, SECRET_KEY]) == (
        f"token {REDACTED}, in a URL {REDACTED}, key {REDACTED}."
    )
    # Cut short at either end of a snippet.
    assert redact(f"body: {TOKEN[:30]}", [TOKEN]) == f"body: {REDACTED}"
    assert redact(f"{TOKEN[-30:]} and more", [TOKEN]) == f"{REDACTED} and more"
    # Values too short to be credentials are not redacted (they would mangle the text).
    assert redact("a tok here", ["tok"]) == "a tok here"


def test_redact_value_goes_into_containers() -> None:
    value = {"a": [f"Signature={'1' * 64}", 3], "b": (TOKEN, None)}
    assert redact_value(value, [TOKEN]) == {
        "a": [f"Signature={REDACTED}", 3],
        "b": (REDACTED, None),
    }
    assert redact_value(42) == 42
    clean = {"a": ["nothing", ("here", 1)]}
    assert redact_value(clean, [TOKEN]) is clean  # unchanged: the same object


# --- the exceptions redact what they are made with ------------------------------------


def _texts(error: BaseException) -> Iterator[str]:
    """Every text the caller could see of ``error``: str, repr, args, attributes, traceback."""
    yield str(error)
    yield repr(error)
    yield repr(error.args)
    for name in dir(error):
        if name.startswith("__") and name not in ("__notes__",):
            continue
        try:
            value = getattr(error, name)
        except Exception:  # a property that cannot answer shows nothing
            continue
        if not callable(value):
            yield f"{name}={value!r}"
            yield f"{name}={value}"
    yield "".join(traceback.format_exception(error))


def _assert_clean(error: BaseException, *secrets: str) -> None:
    seen = "\n".join(_texts(error))
    for secret in secrets:
        assert secret not in seen, f"a secret shows in {type(error).__name__}"


def test_service_errors_and_their_fields_are_redacted() -> None:
    body = {
        "message": f"nope: x-amz-security-token:{TOKEN}",
        "clusterName": f"Signature={'a' * 64}",
    }
    error = InvalidParameterException(
        code="InvalidParameterException",
        message=body["message"],
        http_status=400,
        request_id="r-1",
        operation="DescribeCluster",
        body=body,
    )
    assert error.message == f"nope: x-amz-security-token:{REDACTED}"
    assert error.cluster_name == f"Signature={REDACTED}"
    _assert_clean(error, TOKEN, "a" * 64)


def test_parse_transport_and_other_errors_are_redacted() -> None:
    parse = ResponseParseError(
        f"not JSON: X-Amz-Security-Token={TOKEN}", http_status=200, request_id="r-2"
    )
    transport = TransportError(f"proxy said: Signature={'b' * 64}", operation="ListClusters")
    param = ParamValidationError("GetToken", "token", f"bad k8s-aws-v1.{'c' * 40}")
    for error, secret in ((parse, TOKEN), (transport, "b" * 64), (param, "c" * 40)):
        _assert_clean(error, secret)


def test_redact_error_takes_exact_values_out_of_the_whole_chain() -> None:
    class Odd(Exception):
        def __init__(self, text: str) -> None:
            super().__init__(text)
            self.detail = {"seen": [text]}

    try:
        try:
            raise Odd(f"underlying failure with {SECRET_KEY}")
        except Odd as inner:
            raise TransportError(
                f"failed: {TOKEN}", operation="ListClusters"
            ) from inner
    except TransportError as caught:
        error = caught
    error.add_note(f"note with {TOKEN}")
    assert TOKEN in str(error)  # no marker: only the exact value gives it away
    assert redact_error(error, [SECRET_KEY, TOKEN, "x"]) is error
    _assert_clean(error, TOKEN, SECRET_KEY)
    assert error.__cause__ is not None
    assert str(error.__cause__) == f"underlying failure with {REDACTED}"
    assert error.__cause__.detail == {"seen": [f"underlying failure with {REDACTED}"]}  # type: ignore[attr-defined]


def test_redact_error_on_a_service_error_with_a_bare_secret() -> None:
    # What the pipeline does with the attempt's credentials: a value with no marker.
    error = ClientException(
        code="ClientException",
        message=f"echo {TOKEN} echo",
        http_status=400,
        request_id="r-3",
        body={"clusterName": f"prod {TOKEN}", "nodegroupName": None},
    )
    assert TOKEN in str(error)
    redact_error(error, [SECRET_KEY, TOKEN])
    assert error.message == f"echo {REDACTED} echo"
    assert error.cluster_name == f"prod {REDACTED}"
    assert error.nodegroup_name is None
    assert error.args == ("ClientException", f"echo {REDACTED} echo")
    _assert_clean(error, TOKEN)


def test_the_no_secret_path_keeps_the_message_object() -> None:
    message = "No cluster found for name: prod."
    error = ServiceError(
        code="ResourceNotFoundException", message=message, http_status=404, request_id="r"
    )
    assert error.message is message


# --- end to end, against the emulator ---------------------------------------------------


class _Seen:
    """What the client signed (its Authorization headers) and what the emulator answered."""

    def __init__(self) -> None:
        self.signatures: list[str] = []
        self.answers: list[str] = []

    def exchange(self, exchange: Exchange) -> None:
        self.answers.append(exchange.response.body.decode("utf-8", "replace"))


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> _Seen:
    record = _Seen()
    original = SigV4Signer.sign_headers

    def sign_headers(self: SigV4Signer, **kwargs: Any) -> None:
        original(self, **kwargs)
        auth = kwargs["headers"]["Authorization"]
        record.signatures.append(auth.rsplit("Signature=", 1)[1])

    monkeypatch.setattr(SigV4Signer, "sign_headers", sign_headers)
    return record


def _emulator(seen: _Seen, **settings: Any) -> EKSEmulator:
    emu = EKSEmulator(clock=ManualClock(), delays=Delays.none(), **settings)
    emu.add_cluster("prod")
    emu.register_credentials(ACCESS_KEY, SECRET_KEY, session_token=TOKEN)
    emu.add_listener(seen.exchange)
    return emu


def _check_end_to_end(error: ServiceError, seen: _Seen, caplog: pytest.LogCaptureFixture) -> None:
    # The emulator did echo the token: the test would see it if redaction failed.
    assert any(f"x-amz-security-token:{TOKEN}" in answer for answer in seen.answers)
    assert seen.signatures and all(HEX64.fullmatch(s) for s in seen.signatures)
    assert error.code == "InvalidSignatureException"
    assert error.message is not None
    assert f"x-amz-security-token:{REDACTED}" in error.message  # the rest of the echo stays
    assert "Canonical request computed:" in error.message
    _assert_clean(error, TOKEN, WRONG_SECRET, SECRET_KEY, *seen.signatures)
    for secret in (TOKEN, WRONG_SECRET, *seen.signatures):
        assert secret not in caplog.text


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG, logger="eks_async"):
        yield caplog


async def test_a_signature_mismatch_with_a_session_token_in_process(
    seen: _Seen, debug_log: pytest.LogCaptureFixture
) -> None:
    emu = _emulator(seen)
    async with emu.client(
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=WRONG_SECRET,
        aws_session_token=TOKEN,
    ) as eks:
        with pytest.raises(ServiceError) as caught:
            await eks.describe_cluster(name="prod")
        logging.getLogger("eks_async").debug("call failed", exc_info=caught.value)
    assert caught.value.attempts == 1  # a mismatch is not retried
    _check_end_to_end(caught.value, seen, debug_log)


@pytest.fixture
async def served(seen: _Seen) -> AsyncIterator[tuple[EKSEmulator, str]]:
    emu = _emulator(seen)
    async with emu.serve() as url:
        yield emu, url


async def test_a_signature_mismatch_over_a_real_server(
    seen: _Seen, served: tuple[EKSEmulator, str], debug_log: pytest.LogCaptureFixture
) -> None:
    _, url = served
    async with EKSClient(
        region="us-west-2",
        endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=WRONG_SECRET,
        aws_session_token=TOKEN,
        retry=NO_RETRY,
    ) as eks:
        with pytest.raises(ServiceError) as caught:
            await eks.list_pod_identity_associations(cluster_name="prod")
    _check_end_to_end(caught.value, seen, debug_log)


async def test_the_clock_skew_retry_path_and_its_logs(
    seen: _Seen, debug_log: pytest.LogCaptureFixture
) -> None:
    # The emulator's clock is 20 minutes ahead: the first attempt is "expired", the client
    # corrects its clock and retries once; that attempt fails on the wrong secret and the
    # emulator echoes the canonical request with the token.
    ahead = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=20)
    emu = _emulator(seen, signature_clock=ahead.timestamp)
    retried: list[object] = []
    async with emu.client(
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=WRONG_SECRET,
        aws_session_token=TOKEN,
        on_retry=retried.append,
    ) as eks:
        with pytest.raises(ServiceError) as caught:
            await eks.describe_cluster(name="prod")
    assert len(seen.signatures) == 2 and caught.value.attempts == 2
    assert "Signature expired" in seen.answers[0]
    assert any("retrying" in r.getMessage() for r in debug_log.records)
    assert all(TOKEN not in repr(event) for event in retried)
    _check_end_to_end(caught.value, seen, debug_log)


# --- other echo paths: bodies that are not EKS's JSON -----------------------------------


def _answering(status: int, content: bytes) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, content=content))


def _client(transport: httpx.AsyncBaseTransport) -> EKSClient:
    return EKSClient(
        region="us-west-2",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=TOKEN,
        transport=transport,
        retry=NO_RETRY,
    )


async def test_a_text_body_quoting_the_request_is_redacted() -> None:
    # A proxy's error page quoting the request's headers; the error keeps its first 200
    # bytes, which cut the token short.
    page = (
        f"Forbidden.\nAuthorization: AWS4-HMAC-SHA256 Signature={'d' * 64}\n"
        f"X-Amz-Security-Token: {TOKEN * 3}\n"
    ).encode()
    async with _client(_answering(403, page)) as eks:
        with pytest.raises(ServiceError) as caught:
            await eks.list_clusters()
    assert caught.value.message is not None and caught.value.message.startswith("Forbidden.")
    _assert_clean(caught.value, TOKEN[:20], "d" * 64)


async def test_a_parse_error_quoting_a_value_is_redacted() -> None:
    body = json.dumps({"cluster": {"name": "prod", "createdAt": f"k8s-aws-v1.{'e' * 50}"}})
    async with _client(_answering(200, body.encode())) as eks:
        with pytest.raises(ResponseParseError) as caught:
            await eks.describe_cluster(name="prod")
    assert "does not match the model" in str(caught.value)
    _assert_clean(caught.value, "e" * 20)


async def test_a_transport_error_quoting_a_secret_is_redacted() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused: Signature={'f' * 64}", request=request)

    async with _client(httpx.MockTransport(refuse)) as eks:
        with pytest.raises(TransportError) as caught:
            await eks.list_clusters()
    assert isinstance(caught.value, EKSAsyncError)
    assert "f" * 64 not in str(caught.value) and "f" * 64 not in repr(caught.value.args)
    # The httpx error it was raised from is the caller's own library's; redact_error
    # (what the pipeline calls with the attempt's credentials) cleans the chain too.
    redact_error(caught.value, [TOKEN, SECRET_KEY])
    _assert_clean(caught.value, "f" * 64)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "bad response: {'SecretAccessKey': 'abcdEFGH1234', 'Token': 'tok+en/xyz=='}",
            "bad response: {'SecretAccessKey': '<redacted>', 'Token': '<redacted>'}",
        ),
        ('{"SessionToken":"AQoDYXdzEJr"}', '{"SessionToken":"<redacted>"}'),
        ("aws_session_token = FwoGZXIvYXdzE", "aws_session_token = <redacted>"),
        ("secret_access_key: hunter22222", "secret_access_key: <redacted>"),
        ("nextToken=abc is not a credential", "nextToken=abc is not a credential"),
        ("Token expired", "Token expired"),
    ],
)
def test_credential_fields_quoted_by_a_provider_are_redacted(text: str, expected: str) -> None:
    from eks_async._redact import redact

    assert redact(text) == expected
