"""Regression tests: each one fails on a specific small bug an audit planted and the suite missed.

Every test drives the public API (real calls through an httpx transport double, or the
emulator) and says in its docstring which bug it catches. Where internal state must be
read (the retry quota, the rate limiter) it goes through ``tests/_internals.py``. No test
here depends on the machine's speed: no real time passes (instant retries, injected
waiter clocks), and every loop a bug could make endless is bounded by a request cap that
ends it at once, with ``asyncio.timeout`` only as a backstop.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import email.utils
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import eks_async
from eks_async import RetryConfig
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    EKSEmulator,
    Fault,
    ManualClock,
)

from . import _internals
from ._answers import FakeTime
from ._answers import error_answer as _error
from ._answers import ok_answer as _ok

#: Bounds for loops a bug could make endless: the transport refuses further requests past
#: ``REQUEST_CAP`` (a non-retryable error ends the call at once), and ``BACKSTOP`` seconds
#: of real time end the test should even that not hold. Neither is reached when correct.
REQUEST_CAP = 25
BACKSTOP = 60.0


@pytest.fixture(autouse=True)
def _instant() -> Iterator[None]:
    with eks_async.instant_retries():
        yield





Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


class Recorder(httpx.AsyncBaseTransport):
    """An httpx transport double: answers from ``handler`` and keeps every request.

    Past ``cap`` requests it answers a non-retryable 400, so a runaway loop in the code
    under test ends quickly and visibly (the test then sees too many requests).
    """

    def __init__(self, handler: Handler, cap: int = REQUEST_CAP) -> None:
        self.handler = handler
        self.cap = cap
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if len(self.requests) > self.cap:
            return _error(400, "InvalidRequestException", "test transport: request cap reached")
        answer = self.handler(request)
        if not isinstance(answer, httpx.Response):
            answer = await answer
        return answer

    def paths(self, fragment: str = "") -> list[httpx.Request]:
        return [r for r in self.requests if fragment in r.url.path]


def _answers(*answers: httpx.Response) -> Handler:
    """Answer from the list in order; the last one repeats."""
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handler


def _client(transport: httpx.AsyncBaseTransport, **kwargs: Any) -> eks_async.EKSClient:
    return eks_async.EKSClient(
        region="us-west-2",
        aws_access_key_id="AKIDREGRESSION",
        aws_secret_access_key="regression-secret",
        transport=transport,
        **kwargs,
    )


# --- a. the retry quota refunds on success, on both paths ---------------------------------------


async def test_a_first_attempt_success_puts_back_one_token_up_to_capacity() -> None:
    """Plant: the first-attempt path never calls ``quota.release`` (no NO_RETRY_INCREMENT)."""
    transport = Recorder(_answers(*[_error(500, "ServerException")] * 3, _ok()))
    async with _client(transport, retry=RetryConfig(max_attempts=3, quota=500)) as eks:
        assert _internals.retry_quota_available(eks) == 500
        with pytest.raises(eks_async.ServerException):
            await eks.list_clusters()  # two retries (5 tokens each), then gives up: no refund
        assert len(transport.requests) == 3
        assert _internals.retry_quota_available(eks) == 490
        await eks.list_clusters()  # succeeds on its first attempt: one token back
        assert _internals.retry_quota_available(eks) == 491
        await eks.list_clusters()
        assert _internals.retry_quota_available(eks) == 492
        for _ in range(20):  # never past the capacity
            await eks.list_clusters()
        assert _internals.retry_quota_available(eks) == 500
        assert len(transport.requests) == 3 + 22


async def test_a_success_after_retries_puts_back_what_its_retries_took() -> None:
    """Plant: ``_RetryLoop.run`` never releases (or releases one token, not its retries')."""
    transport = Recorder(
        _answers(
            *[_error(500, "ServerException")] * 3,  # call 1: spends 10, fails
            _error(503, "ServiceUnavailableException"),  # call 2: two retries (10 tokens) ...
            _error(429, "ThrottlingException"),
            _ok(),  # ... then success: the 10 come back
        )
    )
    async with _client(transport, retry=RetryConfig(max_attempts=3, quota=500)) as eks:
        with pytest.raises(eks_async.ServerException):
            await eks.list_clusters()
        assert _internals.retry_quota_available(eks) == 490
        out = await eks.list_clusters()
        assert out.response_metadata is not None and out.response_metadata.attempts == 3
        assert len(transport.requests) == 6
        assert _internals.retry_quota_available(eks) == 490  # took 10, gave 10 back


async def test_a_success_after_a_timeout_retry_puts_back_ten() -> None:
    """Plant: a timeout retry's cost (10) is not what is refunded after the success."""
    calls = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        calls[0] += 1
        if calls[0] == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return _ok()

    async with _client(Recorder(handler), retry=RetryConfig(quota=500)) as eks:
        _internals.set_retry_quota_available(eks, 100)
        out = await eks.list_clusters()
        assert out.response_metadata is not None and out.response_metadata.attempts == 2
        assert _internals.retry_quota_available(eks) == 100


async def test_a_views_share_the_clients_quota_and_its_refunds() -> None:
    """Plant: ``with_options`` views spend or refund a quota of their own."""
    transport = Recorder(_answers(*[_error(500, "ServerException")] * 2, _ok()))
    async with _client(transport, retry=RetryConfig(quota=500)) as eks:
        view = eks.with_options(retry=RetryConfig(max_attempts=2))
        with pytest.raises(eks_async.ServerException):
            await view.list_clusters()  # one retry through the view: 5 tokens of the client's
        assert _internals.retry_quota_available(eks) == 495
        await view.list_clusters()  # a first-attempt success through the view: one back
        assert _internals.retry_quota_available(eks) == 496


@pytest.mark.parametrize("served", [False, True], ids=["in-process", "own-http-pool"])
async def test_a_refunds_against_the_emulators_scripted_faults(served: bool) -> None:
    """The same two refunds, through the emulator: in process (an httpx transport) and
    over a socket (the client's own HTTP/1.1 pool, the default path)."""
    emulator = EKSEmulator(clock=ManualClock())
    emulator.add_cluster("prod")
    retry = RetryConfig(max_attempts=3, quota=500)

    async def check(eks: eks_async.EKSClient) -> None:
        emulator.script("ListClusters", Fault.SERVER_ERROR, times=3)
        with pytest.raises(eks_async.ServerException):
            await eks.list_clusters()
        assert _internals.retry_quota_available(eks) == 490
        emulator.script("ListClusters", Fault.UNAVAILABLE, times=1)
        emulator.script("DescribeCluster", Fault.THROTTLE, times=1)
        out = await eks.list_clusters()  # one retry: 5 taken, 5 given back
        assert out.response_metadata is not None and out.response_metadata.attempts == 2
        assert _internals.retry_quota_available(eks) == 490
        await eks.describe_cluster(name="prod")  # the same after a throttle
        assert _internals.retry_quota_available(eks) == 490
        await eks.describe_cluster(name="prod")  # first-attempt success: one back
        assert _internals.retry_quota_available(eks) == 491

    if served:
        async with emulator.serve() as url, emulator.client(
            endpoint_url=url, transport=None, retry=retry
        ) as eks:
            await check(eks)
    else:
        async with emulator.client(retry=retry) as eks:
            await check(eks)
    assert emulator.calls("ListClusters").total == 5
    assert emulator.calls("DescribeCluster").total == 3


# --- b. a clock-skew answer earns one corrected retry, not an endless loop ----------------------


def _skewed(hours: float) -> httpx.Response:
    server_time = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=hours)
    return _error(
        403,
        "InvalidSignatureException",
        "Signature expired: 20240101T000000Z is now earlier than 20240101T001000Z "
        "(20240101T000500Z - 5 min.)",
        Date=email.utils.format_datetime(server_time, usegmt=True),
    )


@pytest.mark.parametrize("max_attempts", [1, 3, 10])
async def test_b_a_server_that_always_says_skewed_ends_after_one_corrected_retry(
    max_attempts: int,
) -> None:
    """Plant: the skew retry has no bound (every skew answer earns another attempt)."""
    transport = Recorder(lambda request: _skewed(hours=3))
    async with _client(transport, retry=RetryConfig(max_attempts=max_attempts)) as eks:
        async with asyncio.timeout(BACKSTOP):
            with pytest.raises(eks_async.ServiceError) as info:
                await eks.list_clusters()
    assert len(transport.requests) == 2, f"{len(transport.requests)} requests"
    assert info.value.code == "InvalidSignatureException"  # the skew error, not the cap's
    # The second request was signed with the corrected clock, about 3 hours ahead.
    first, second = (
        datetime.datetime.strptime(r.headers["x-amz-date"], "%Y%m%dT%H%M%S%z")
        for r in transport.requests
    )
    assert abs((second - first).total_seconds() - 3 * 3600) < 60


async def test_b_skew_after_throttling_still_gets_only_one_corrected_retry() -> None:
    """Plant: the skew bound resets (or is skipped) once other retries happened."""
    transport = Recorder(
        _answers(_error(429, "ThrottlingException"), _skewed(hours=-2))
    )
    async with _client(transport, retry=RetryConfig(max_attempts=5)) as eks:
        async with asyncio.timeout(BACKSTOP):
            with pytest.raises(eks_async.ServiceError) as info:
                await eks.list_clusters()
    assert info.value.code == "InvalidSignatureException"
    assert len(transport.requests) == 3  # throttled, skewed, corrected and still skewed


# --- c. a Cancelled (or Failed) update fails update_successful ----------------------------------


def _update(status: str, errors: list[dict[str, Any]] | None = None) -> httpx.Response:
    update: dict[str, Any] = {"id": "u-1", "status": status, "type": "AssociateIdentityProviderConfig"}
    if errors is not None:
        update["errors"] = errors
    return _ok({"update": update})


@pytest.mark.parametrize("final", ["Cancelled", "Failed"])
async def test_c_cancelled_or_failed_update_raises_with_the_updates_errors(final: str) -> None:
    """Plant: ``Cancelled`` (or ``Failed``) is taken as success, or as "keep waiting"."""
    errors = [{"errorCode": "ClusterUnreachable", "errorMessage": f"{final} by EKS",
               "resourceIds": ["prod"]}]
    transport = Recorder(_answers(_update("InProgress"), _update(final, errors)))
    fake = FakeTime()
    async with _client(transport, retry=RetryConfig(max_attempts=1)) as eks:
        with pytest.raises(eks_async.WaiterFailureError) as info:
            await eks.waiters.update_successful(
                cluster_name="prod", update_id="u-1",
                config=fake.config(min_delay=5, max_delay=60, max_wait=3600),
            )
    failure = info.value
    assert failure.polls == 2 and len(transport.requests) == 2
    assert failure.output.update.status == final
    assert [(e.error_code, e.error_message, e.resource_ids) for e in failure.errors] == [
        ("ClusterUnreachable", f"{final} by EKS", ["prod"])
    ]
    assert final in str(failure)


# --- d. pod_identity_association_visible waits for List too -------------------------------------

ASSOCIATION = {
    "clusterName": "prod", "namespace": "payments", "serviceAccount": "api",
    "associationId": "a-0123456789abcdefg",
    "associationArn": "arn:aws:eks:us-west-2:111122223333:podidentityassociation/prod/"
                      "a-0123456789abcdefg",
    "roleArn": "arn:aws:iam::111122223333:role/payments-api",
}


class LaggingList:
    """Describe finds the association at once; List leaves it out for ``lag`` polls."""

    def __init__(self, lag: int) -> None:
        self.lag = lag
        self.lists: list[httpx.Request] = []
        self.describes = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/pod-identity-associations/" + ASSOCIATION["associationId"]):
            self.describes += 1
            return _ok({"association": ASSOCIATION})
        assert path.endswith("/pod-identity-associations"), path
        self.lists.append(request)
        other = {**ASSOCIATION, "serviceAccount": "api", "associationId": "a-zzzzzzzzzzzzzzzzz"}
        if len(self.lists) <= self.lag:
            return _ok({"associations": [other] if len(self.lists) % 2 else []})
        return _ok({"associations": [other, {k: ASSOCIATION[k] for k in (
            "clusterName", "namespace", "serviceAccount", "associationId", "associationArn")}]})


@pytest.mark.parametrize("lag", [0, 1, 4])
async def test_d_visible_waits_until_list_includes_the_association(lag: int) -> None:
    """Plant: the waiter returns once Describe finds it, before List includes it."""
    service = LaggingList(lag)
    transport = Recorder(service)
    fake = FakeTime()
    seen: list[eks_async.WaitProgress] = []
    async with _client(transport, retry=RetryConfig(max_attempts=1)) as eks:
        out = await eks.waiters.pod_identity_association_visible(
            cluster_name="prod", association_id=ASSOCIATION["associationId"],
            config=fake.config(min_delay=2, max_delay=10, max_wait=120), on_progress=seen.append,
        )
    assert out.association is not None
    assert out.association.association_id == ASSOCIATION["associationId"]
    assert len(service.lists) == lag + 1  # polled List until it included the association
    assert service.describes == lag + 1
    assert len(fake.sleeps) == lag  # and returned only then, without an extra poll
    assert [p.state for p in seen] == ["described, not listed"] * lag + ["visible"]
    for request in service.lists:  # List is filtered by namespace and service account
        params = request.url.params
        assert params.get("namespace") == "payments"
        assert params.get("serviceAccount") == "api"


async def test_d_visible_times_out_when_list_never_includes_it() -> None:
    """Plant: a Describe hit alone counts as visible once the wait runs long."""
    service = LaggingList(lag=10**6)
    fake = FakeTime()
    async with _client(Recorder(service, cap=10**6), retry=RetryConfig(max_attempts=1)) as eks:
        with pytest.raises(eks_async.WaiterTimeoutError):
            await eks.waiters.pod_identity_association_visible(
                cluster_name="prod", association_id=ASSOCIATION["associationId"],
                config=fake.config(min_delay=2, max_delay=10, max_wait=60),
            )
    assert fake.now <= 60
    assert len(service.lists) == service.describes >= 6


# --- e. the Kubernetes bridge makes an Outposts cluster's token from its id ---------------------


def _decode_token(token: str) -> str:
    assert token.startswith("k8s-aws-v1.") and "=" not in token
    raw = token[len("k8s-aws-v1."):]
    return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()


@pytest.mark.parametrize("local", [True, False])
async def test_e_api_client_token_names_a_local_clusters_id(local: bool) -> None:
    """Plant: ``eks_async.kubernetes`` makes an Outposts cluster's token from its name."""
    pytest.importorskip("kubernetes_asyncio")
    from eks_async.kubernetes import api_client

    emulator = EKSEmulator(clock=ManualClock())  # its STS check and test CA, nothing else
    ca = base64.b64encode(emulator.kubernetes_ca_pem.encode()).decode()
    cluster_id = "3f1c2b4e-9a7d-4c1e-8b2a-5d6e7f8a9b0c"
    cluster: dict[str, Any] = {
        "name": "edge", "arn": "arn:aws:eks:us-west-2:111122223333:cluster/edge",
        "status": "ACTIVE", "endpoint": "https://10.0.0.10", "version": "1.31",
        "certificateAuthority": {"data": ca},
    }
    if local:
        cluster["id"] = cluster_id
        cluster["outpostConfig"] = {
            "outpostArns": ["arn:aws:outposts:us-west-2:111122223333:outpost/op-0123456789abcdef0"],
            "controlPlaneInstanceType": "m5.large",
        }
    transport = Recorder(lambda request: _ok({"cluster": cluster}))
    async with eks_async.EKSClient(
        region="us-west-2", aws_access_key_id=TEST_ACCESS_KEY_ID,
        aws_secret_access_key=TEST_SECRET_ACCESS_KEY, transport=transport,
    ) as eks, api_client(eks, "edge") as api:
        token = api.configuration.api_key["BearerToken"]
    url = urlsplit(_decode_token(token))
    query = parse_qs(url.query)
    assert url.netloc == "sts.us-west-2.amazonaws.com"
    assert query["Action"] == ["GetCallerIdentity"]
    assert query["X-Amz-SignedHeaders"] == ["host;x-k8s-aws-id"]
    # The x-k8s-aws-id header is signed, not sent: the token is for whichever value makes
    # the signature hold. The emulator recomputes it as STS does.
    expected, other = (cluster_id, "edge") if local else ("edge", cluster_id)
    assert emulator.review_token(token, expected).authenticated, emulator.review_token(
        token, expected).reason
    assert not emulator.review_token(token, other).authenticated


# --- f. every throttling code botocore knows is retried as throttling ---------------------------

#: Written out here, not read from eks_async: botocore's standard-mode throttling codes
#: (botocore/retries/standard.py, ThrottledRetryableChecker). Checked against botocore below.
THROTTLING_CODES = (
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
)


def test_f_the_literal_list_is_botocores() -> None:
    import botocore
    from botocore.retries.standard import ThrottledRetryableChecker

    assert set(THROTTLING_CODES) == set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES)
    # botocore's legacy retry config (data/_retry.json) names a subset of them.
    path = f"{botocore.__path__[0]}/data/_retry.json"
    with open(path, encoding="utf-8") as fh:
        definitions = json.load(fh)["definitions"]
    legacy = {
        d["applies_when"]["response"]["service_error_code"]
        for d in definitions.values()
        if "service_error_code" in d.get("applies_when", {}).get("response", {})
    }
    assert legacy and legacy <= set(THROTTLING_CODES)


@pytest.mark.parametrize("code", THROTTLING_CODES)
async def test_f_each_throttling_code_is_retried_as_throttling(code: str) -> None:
    """Plant: one code dropped from eks_async's throttling set."""
    # HTTP 400 (not 429), so only the code can make it throttling.
    events: list[eks_async.RetryEvent] = []
    transport = Recorder(_answers(_error(400, code), _ok()))
    async with _client(transport, retry=RetryConfig(mode="adaptive"),
                       on_retry=events.append) as eks:
        limiter = _internals.rate_limiter(eks)
        assert limiter is not None and not limiter.enabled
        out = await eks.list_clusters()
        # Retried ...
        assert out.response_metadata is not None and out.response_metadata.attempts == 2
        backoffs = [e for e in events if e.kind == "backoff"]  # not the limiter's waits
        assert len(transport.requests) == 2 and len(backoffs) == 1
        assert code in backoffs[0].reason
        # ... as throttling: adaptive mode's limiter took it as a throttle.
        assert limiter.enabled
    # And the error says so when it is the last answer.
    transport = Recorder(_answers(_error(400, code)))
    async with _client(transport, retry=RetryConfig(max_attempts=1)) as eks:
        with pytest.raises(eks_async.ServiceError) as info:
            await eks.list_clusters()
    assert info.value.code == code
    assert info.value.is_throttling and info.value.is_retryable


# --- h. forged pagination tokens are refused --------------------------------------------------


async def test_h_a_forged_token_through_the_client_is_invalid_parameter() -> None:
    """Plant: the emulator takes a token it cannot decode as "from the start" (200)."""
    emulator = EKSEmulator(clock=ManualClock())
    emulator.add_cluster("prod")
    async with emulator.client(retry=RetryConfig(max_attempts=1)) as eks:
        for forged in ("x", "eyJvcCI6Ikxpc3RDbHVzdGVycyJ9", "not a token", "0"):
            with pytest.raises(eks_async.InvalidParameterException) as info:
                await eks.list_clusters(next_token=forged)
            assert info.value.http_status == 400
            assert "nextToken" in (info.value.message or "")
        # A token of another operation is forged too.
        emulator.add_cluster("prod-2")
        page = await eks.list_pod_identity_associations(cluster_name="prod")
        assert page.next_token is None
        listing = await eks.list_clusters(max_results=1)
        assert listing.next_token
        with pytest.raises(eks_async.InvalidParameterException):
            await eks.list_pod_identity_associations(cluster_name="prod",
                                                     next_token=listing.next_token)
