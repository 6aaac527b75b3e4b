"""The emulator's SigV4 checks: what AWS refuses, with AWS's codes and words."""

from __future__ import annotations

import calendar
import datetime
import json

import botocore.auth
import botocore.credentials
import httpx
import pytest
from botocore.awsrequest import AWSRequest

import eks_async
from eks_async import RetryConfig, ServiceError
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    Delays,
    EKSEmulator,
    EmulatorRequest,
    ManualClock,
)

from ._emulator_support import ROLE, body_of, error_code, signed, validate_emulator_responses  # noqa: F401

T0 = datetime.datetime(2024, 1, 1, 0, 10, 0, tzinfo=datetime.UTC)
NO_RETRY = RetryConfig(max_attempts=1)


def emulator(**settings: object) -> EKSEmulator:
    emu = EKSEmulator(
        clock=ManualClock(),
        delays=Delays.none(),
        signature_clock=lambda: float(calendar.timegm(T0.timetuple())),
        **settings,
    )
    emu.add_cluster("prod")
    return emu


async def test_a_correct_signature_is_accepted() -> None:
    emu = emulator()
    answer = await emu.handle(signed("GET", "/clusters/prod", at=T0))
    assert answer.status == 200
    assert body_of(answer)["cluster"]["name"] == "prod"
    assert answer.header("Date") == "Mon, 01 Jan 2024 00:10:00 GMT"  # the emulator's time


async def test_a_wrong_secret_gets_invalid_signature_with_the_canonical_request() -> None:
    emu = emulator()
    answer = await emu.handle(signed("GET", "/clusters/prod", at=T0, secret_key="not-it"))
    assert answer.status == 403
    assert error_code(answer) == "InvalidSignatureException"
    message = body_of(answer)["message"]
    assert message.startswith("Signature mismatch: ")
    assert "Canonical request computed:\n'GET\n/clusters/prod\n\nhost:eks.us-west-2.amazonaws.com\n" in message
    assert "String to sign computed:\n'AWS4-HMAC-SHA256\n" in message
    assert TEST_SECRET_ACCESS_KEY not in message and "not-it" not in message


@pytest.mark.parametrize(
    ("signed_at", "message"),
    [
        (
            datetime.datetime(2024, 1, 1, 0, 0, 0, tzinfo=datetime.UTC),
            "Signature expired: 20240101T000000Z is now earlier than 20240101T000500Z "
            "(20240101T001000Z - 5 min.)",
        ),
        (
            datetime.datetime(2024, 1, 1, 0, 20, 0, tzinfo=datetime.UTC),
            "Signature not yet current: 20240101T002000Z is still later than 20240101T001500Z "
            "(20240101T001000Z + 5 min.)",
        ),
    ],
)
async def test_a_skewed_clock_gets_the_error_aws_gives(
    signed_at: datetime.datetime, message: str
) -> None:
    emu = emulator()
    answer = await emu.handle(signed("GET", "/clusters/prod", at=signed_at))
    assert answer.status == 403
    assert error_code(answer) == "InvalidSignatureException"
    assert body_of(answer) == {"message": message}
    # Within five minutes is fine.
    nearly = T0 - datetime.timedelta(minutes=4, seconds=59)
    assert (await emu.handle(signed("GET", "/clusters/prod", at=nearly))).status == 200


async def test_unknown_keys_missing_auth_and_bad_tokens() -> None:
    emu = emulator()
    unknown = await emu.handle(signed("GET", "/clusters", at=T0, access_key="AKIDNOBODY"))
    assert unknown.status == 403 and error_code(unknown) == "UnrecognizedClientException"
    assert body_of(unknown) == {"message": "The security token included in the request is invalid."}

    token = await emu.handle(signed("GET", "/clusters", at=T0, session_token="stray"))
    assert error_code(token) == "UnrecognizedClientException"

    nothing = await emu.handle(EmulatorRequest(method="GET", path="/clusters"))
    assert nothing.status == 403 and error_code(nothing) == "MissingAuthenticationTokenException"
    garbled = await emu.handle(
        EmulatorRequest(
            method="GET", path="/clusters", headers=(("Authorization", "AWS4-HMAC-SHA256 junk"),)
        )
    )
    assert garbled.status == 403 and error_code(garbled) == "IncompleteSignatureException"


async def test_a_tampered_body_or_path_fails_the_check() -> None:
    emu = emulator()
    body = json.dumps({"namespace": "a", "serviceAccount": "b", "roleArn": ROLE}).encode()
    good = signed("POST", "/clusters/prod/pod-identity-associations", body, at=T0)
    tampered = type(good)(
        method=good.method,
        path=good.path,
        query=good.query,
        headers=good.headers,
        body=body.replace(b'"a"', b'"z"'),
    )
    assert error_code(await emu.handle(tampered)) == "InvalidSignatureException"
    moved = type(good)(
        method=good.method,
        path="/clusters/other/pod-identity-associations",
        headers=good.headers,
        body=body,
    )
    assert error_code(await emu.handle(moved)) == "InvalidSignatureException"
    assert (await emu.handle(good)).status == 200


async def test_the_credential_scope_must_be_right() -> None:
    emu = emulator()
    wrong_service = signed("GET", "/clusters", at=T0)
    auth = dict(wrong_service.headers)["Authorization"].replace("/eks/", "/sts/")
    headers = tuple((k, auth if k == "Authorization" else v) for k, v in wrong_service.headers)
    answer = await emu.handle(type(wrong_service)(method="GET", path="/clusters", headers=headers))
    assert error_code(answer) == "InvalidSignatureException"
    assert "correct service: 'eks'" in body_of(answer)["message"]


async def test_keys_with_session_tokens_and_other_accounts() -> None:
    emu = emulator()
    emu.register_credentials(
        "ASIATEMP", "temp-secret", session_token="tok", account_id="111122223333"
    )
    ok = await emu.handle(
        signed(
            "GET",
            "/clusters",
            at=T0,
            access_key="ASIATEMP",
            secret_key="temp-secret",
            session_token="tok",
        )
    )
    assert ok.status == 200 and body_of(ok) == {"clusters": []}  # another account: no clusters
    bad = await emu.handle(
        signed(
            "GET",
            "/clusters",
            at=T0,
            access_key="ASIATEMP",
            secret_key="temp-secret",
            session_token="other",
        )
    )
    assert error_code(bad) == "UnrecognizedClientException"
    other_region = await emu.handle(signed("GET", "/clusters", at=T0, region="eu-west-1"))
    assert body_of(other_region) == {"clusters": []}  # state is per region too


async def test_eks_async_signed_requests_are_accepted_and_a_wrong_secret_is_not() -> None:
    emu = EKSEmulator(clock=ManualClock(), delays=Delays.none())
    emu.add_cluster("prod")
    async with emu.client() as eks:
        arn = (await eks.describe_cluster(name="prod")).cluster.arn
        assert arn is not None
        # An ARN label: ':' and '/' are percent-encoded, and the signature still matches.
        await eks.tag_resource(resource_arn=arn, tags={"a b": "c/d"})
        assert (await eks.list_tags_for_resource(resource_arn=arn)).tags == {"a b": "c/d"}
        await eks.untag_resource(resource_arn=arn, tag_keys=["a b", "x~y"])
    async with emu.client(aws_secret_access_key="wrong", retry=NO_RETRY) as eks:
        with pytest.raises(ServiceError) as caught:
            await eks.list_clusters()
        assert caught.value.code == "InvalidSignatureException"
        assert caught.value.http_status == 403
    async with emu.client(aws_access_key_id="AKIDUNKNOWN", retry=NO_RETRY) as eks:
        with pytest.raises(ServiceError) as unknown:
            await eks.list_clusters()
        assert unknown.value.code == "UnrecognizedClientException"


async def test_botocore_signed_requests_are_accepted() -> None:
    emu = EKSEmulator(clock=ManualClock(), delays=Delays.none())
    arn = emu.add_cluster("prod")
    credentials = botocore.credentials.Credentials(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY)
    url = "https://eks.us-west-2.amazonaws.com/tags/" + arn.replace(":", "%3A").replace("/", "%2F")
    request = AWSRequest(method="DELETE", url=url + "?tagKeys=a&tagKeys=b%20c")
    botocore.auth.SigV4Auth(credentials, "eks", "us-west-2").add_auth(request)
    prepared = request.prepare()
    async with httpx.AsyncClient(transport=emu.transport()) as http:
        answer = await http.request("DELETE", prepared.url, headers=dict(prepared.headers))
        assert answer.status_code == 200, answer.text
        forged = dict(prepared.headers)
        forged["Authorization"] = forged["Authorization"][:-4] + "0000"
        refused = await http.request("DELETE", prepared.url, headers=forged)
        assert refused.status_code == 403


async def test_verification_can_be_switched_off() -> None:
    emu = emulator(verify_signatures=False)
    answer = await emu.handle(EmulatorRequest(method="GET", path="/clusters"))
    assert answer.status == 200 and body_of(answer) == {"clusters": ["prod"]}
    # The region of an unchecked scope still picks the state.
    elsewhere = await emu.handle(signed("GET", "/clusters", region="eu-west-1", secret_key="any"))
    assert body_of(elsewhere) == {"clusters": []}
    emu.configure(verify_signatures=True)
    assert (await emu.handle(EmulatorRequest(method="GET", path="/clusters"))).status == 403


async def test_the_client_corrects_its_clock_from_the_emulators_date() -> None:
    # The emulator's clock is 20 minutes ahead; the client's first attempt is "expired",
    # the answer's Date header tells it the emulator's time, and the retry succeeds.
    now = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=20)
    emu = EKSEmulator(
        clock=ManualClock(), delays=Delays.none(), signature_clock=lambda: now.timestamp()
    )
    emu.add_cluster("prod")
    async with emu.client() as eks:
        out = await eks.describe_cluster(name="prod")
    assert out.cluster.name == "prod"
    assert emu.calls("DescribeCluster") == eks_async.testing.CallCounts(ok=1, error=1)
