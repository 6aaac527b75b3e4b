"""The client's engine: configuration, signing and sending, shared by every operation."""

from __future__ import annotations

import asyncio
import copy
import datetime
import functools
import logging
import os
import ssl
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import attrs

if TYPE_CHECKING:
    # Imported where used: httpx only on a caller's http_client/transport, tenacity only
    # when a call retries. ``import eks_async`` pays for neither.
    import httpx
    import tenacity

from ._credentials import (
    ChainCredentialsProvider,
    Credentials,
    CredentialsProvider,
    StaticCredentialsProvider,
)
from ._endpoints import region_from_fips_pseudo, resolve_endpoint
from ._exceptions import (
    ConfigurationError,
    EKSAsyncError,
    ServiceError,
    TimeoutError_,
    TransportError,
)
from ._http11 import Http11Pool, SendError
from ._operation import OperationSpec
from ._parse import parse_error, parse_output
from ._ratelimit import RateLimiter
from ._retry import (
    RetryConfig,
    RetryQuota,
    backoff,
    classify,
    instant,
    is_clock_skew,
    retry_after,
    sleep,
)
from ._serialize import serialize, values_from_params
from ._sigv4 import SigV4Signer, _host_header, _split_url
from ._version import __version__

T = TypeVar("T")
logger = logging.getLogger("eks_async")


@attrs.frozen(kw_only=True, slots=True)
class RetryEvent:
    """One retry about to happen: the operation, the attempt that failed, why, and the wait."""

    operation: str
    attempt: int
    reason: str
    delay: float

_USER_AGENT = f"eks-async/{__version__}"
_TRUE = ("1", "true", "yes", "on")


def _proxy_in_env() -> bool:
    return any(
        os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY",
                                          "http_proxy", "ALL_PROXY", "all_proxy")
    )


@functools.cache
def _ca_bundle_context(path: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=path)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


class ClientCore:
    """Holds what every call needs: region, endpoint, credentials, signer and transport."""

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        use_fips: bool | None = None,
        use_dualstack: bool | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        credentials: Credentials | CredentialsProvider | None = None,
        profile: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        connect_timeout: float | None = 10.0,
        read_timeout: float | None = 60.0,
        max_connections: int = 100,
        retry: RetryConfig | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
    ) -> None:
        if http_client is not None and transport is not None:
            raise ConfigurationError("give http_client or transport, not both")
        if (aws_access_key_id is None) != (aws_secret_access_key is None):
            raise ConfigurationError(
                "aws_access_key_id and aws_secret_access_key go together: give both or neither"
            )
        if aws_access_key_id is not None and credentials is not None:
            raise ConfigurationError("give credentials or access keys, not both")
        self._profile = profile
        if aws_access_key_id is not None and aws_secret_access_key is not None:
            credentials = Credentials(
                access_key_id=aws_access_key_id,
                secret_access_key=aws_secret_access_key,
                session_token=aws_session_token,
            )
        self._credentials: CredentialsProvider
        if credentials is None:
            self._credentials = ChainCredentialsProvider(profile)
        elif isinstance(credentials, Credentials):
            self._credentials = StaticCredentialsProvider(credentials)
        else:
            self._credentials = credentials
        self._use_fips = _env_flag("AWS_USE_FIPS_ENDPOINT") if use_fips is None else use_fips
        self._use_dualstack = (
            _env_flag("AWS_USE_DUALSTACK_ENDPOINT") if use_dualstack is None else use_dualstack
        )
        self._endpoint_override = endpoint_url.rstrip("/") if endpoint_url else None
        self._region = region or os.environ.get("AWS_REGION") or os.environ.get(
            "AWS_DEFAULT_REGION"
        )
        self._endpoint: str | None = None
        self._signer: SigV4Signer | None = None
        if self._region is not None:
            self._configure(self._region)
        self._http_client = http_client
        self._own_transport = transport is None and http_client is None
        # The default path: signed headers straight to eks_async's own HTTP/1.1 pool (no
        # aiohttp, no httpx objects per call).
        # With a proxy in the environment, the aiohttp-backed transport (which honours
        # HTTP(S)_PROXY and NO_PROXY) carries the calls instead of the lean path.
        self._lean = self._own_transport and not _proxy_in_env()
        self._pool: Http11Pool | None = None
        self._transport: httpx.AsyncBaseTransport | None = transport
        self._timeout = {
            "connect": connect_timeout,
            "read": read_timeout,
            "write": read_timeout,
            "pool": connect_timeout,
        }
        self._max_connections = max_connections
        self._closed = False
        self._retry = retry or RetryConfig()
        self._on_retry = on_retry
        self._quota = RetryQuota(self._retry.quota) if self._retry.quota else None
        self._limiter = RateLimiter() if self._retry.mode == "adaptive" else None
        self._clock_offset = 0.0

    # --- set-up -------------------------------------------------------------------------

    def _configure(self, region: str) -> None:
        if self._endpoint_override is not None:
            if self._use_fips or self._use_dualstack:
                raise ConfigurationError("endpoint_url cannot be combined with FIPS or dual-stack")
            self._endpoint = self._endpoint_override
        else:
            self._endpoint = resolve_endpoint(
                region, use_fips=self._use_fips, use_dualstack=self._use_dualstack
            )
        # "fips-us-east-1" style names sign with the plain region, as botocore does.
        self._signer = SigV4Signer(service="eks", region=region_from_fips_pseudo(region)[0])
        prefix, _, _, bracket = _split_url(self._endpoint)
        self._host = _host_header(prefix, bracket)

    async def _setup(self) -> None:
        """Find the region from the profile when neither the argument nor the env gave one."""
        from ._credentials import resolve_region

        region = await resolve_region(self._profile)
        if not region:
            raise ConfigurationError(
                "no region: pass region=..., set AWS_REGION, or configure one in the profile"
            )
        self._region = region
        self._configure(region)

    def _open_pool(self) -> Http11Pool:
        if self._closed:
            raise ConfigurationError("this client is closed")
        bundle = os.environ.get("AWS_CA_BUNDLE")  # as the AWS SDKs honour it
        self._pool = Http11Pool(
            ssl_context=_ca_bundle_context(bundle) if bundle else None,
            max_connections=self._max_connections,
            connect_timeout=self._timeout["connect"],
            read_timeout=self._timeout["read"],
        )
        return self._pool

    def _get_transport(self) -> httpx.AsyncBaseTransport:
        if self._transport is None:
            from ._transport import AiohttpTransport

            self._transport = AiohttpTransport(
                max_connections=self._max_connections,
                connect_timeout=self._timeout["connect"],
                read_timeout=self._timeout["read"],
                trust_env=True,
            )
        return self._transport

    @property
    def region(self) -> str | None:
        """The AWS region calls go to (``None`` until found, when it comes from a profile)."""
        return self._region

    @property
    def endpoint_url(self) -> str | None:
        """The endpoint calls go to."""
        return self._endpoint

    def __repr__(self) -> str:
        return f"{type(self).__name__}(region={self._region!r}, endpoint_url={self._endpoint!r})"

    # --- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._endpoint is None:
            await self._setup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections this client opened (a caller's own client stays open)."""
        self._closed = True
        if self._own_transport and self._transport is not None:
            await self._transport.aclose()
            self._transport = None
        if self._own_transport and self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    # --- calls --------------------------------------------------------------------------

    async def call(self, operation: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call any operation by its model name with boto3-style parameters.

        ``await eks.call("DescribeCluster", {"name": "prod"})`` returns the same typed
        output as ``await eks.describe_cluster(name="prod")``.
        """
        from ._generated.operations import OPERATIONS

        try:
            op = OPERATIONS[operation]
        except KeyError:
            raise ConfigurationError(f"EKS has no operation named {operation!r}") from None
        values = values_from_params(op, params or {})
        return await self._invoke(op, values)

    async def _invoke(
        self, op: OperationSpec[T], values: tuple[Any, ...], *, wait: Any = False
    ) -> T:
        path, body = serialize(op, values)
        result: T = await self._send(op, path, body)
        if wait is not False:
            await self._wait_after(op.name, values, result, None if wait is True else wait)
        return result

    async def _wait_after(
        self, operation: str, values: tuple[Any, ...], output: Any, config: Any
    ) -> None:
        """Wait until the change ``operation`` made is visible (``wait=True`` or a config)."""
        raise NotImplementedError(operation)  # pragma: no cover - EKSClient provides it

    def with_options(
        self,
        *,
        retry: RetryConfig | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
    ) -> Self:
        """A view of this client that calls with other options; it shares everything else.

        ``await eks.with_options(retry=RetryConfig(max_attempts=10)).describe_cluster(...)``.
        Closing the view closes nothing.
        """
        view = copy.copy(self)
        view._own_transport = False
        if retry is not None:
            view._retry = retry
            if retry.mode == "adaptive" and view._limiter is None:
                view._limiter = self._limiter = RateLimiter()
        if on_retry is not None:
            view._on_retry = on_retry
        return view

    async def _send(self, op: OperationSpec[Any], path: str, body: bytes) -> Any:
        if self._closed:
            raise ConfigurationError("this client is closed")
        if self._endpoint is None:
            await self._setup()
        url = f"{self._endpoint}{path}"
        if self._retry.deadline is None:
            return await self._send_with_retries(op, url, body)
        try:
            async with asyncio.timeout(self._retry.deadline):
                return await self._send_with_retries(op, url, body)
        except TimeoutError as exc:
            raise TimeoutError_(
                f"{op.name}: no answer within the deadline of {self._retry.deadline} s",
                operation=op.name,
            ) from exc

    async def _send_with_retries(self, op: OperationSpec[Any], url: str, body: bytes) -> Any:
        # The first attempt runs here, outside tenacity: it is the hot path.
        try:
            output = await self._attempt(op, url, body, 1, 0.0)
        except EKSAsyncError as error:
            first = error
        else:
            if self._quota is not None:
                self._quota.release(0)
            return output
        skew = is_clock_skew(first)
        if classify(first) is None and not skew:
            raise first
        return await _RetryLoop(self, op, url, body, first).run()

    async def _attempt(
        self, op: OperationSpec[Any], url: str, body: bytes, attempt: int, waited: float
    ) -> Any:
        """One signed request and its answer: the output, or the error raised."""
        assert self._signer is not None
        if self._limiter is not None:
            await self._limiter.acquire()
        headers = {"Host": self._host, "User-Agent": _USER_AGENT}
        if body:
            headers["Content-Type"] = "application/json"
        credentials = await self._credentials.get_credentials()
        now = datetime.datetime.now(datetime.UTC)
        if self._clock_offset:
            now += datetime.timedelta(seconds=self._clock_offset)
        self._signer.sign_headers(
            method=op.method, url=url, headers=headers, body=body, credentials=credentials, now=now
        )
        if self._lean:
            pool = self._pool or self._open_pool()
            try:
                status, resp_headers, content = await pool.send(op.method, url, headers, body)
            except SendError as exc:
                cls = TimeoutError_ if exc.timeout else TransportError
                error: EKSAsyncError = cls(f"{op.name}: {exc}", operation=op.name)
                self._account(error, attempt, waited)
                raise error from exc
            return self._answer(op, status, resp_headers, content, attempt, waited)
        return await self._attempt_httpx(op, url, headers, body, attempt, waited)

    async def _attempt_httpx(
        self,
        op: OperationSpec[Any],
        url: str,
        headers: dict[str, str],
        body: bytes,
        attempt: int,
        waited: float,
    ) -> Any:
        """The same exchange through a caller's httpx client or transport."""
        import httpx

        del headers["Host"]  # httpx.Request sets it from the URL
        request = httpx.Request(
            op.method, url, headers=headers, content=body, extensions={"timeout": self._timeout}
        )
        try:
            if self._http_client is not None:
                response = await self._http_client.send(request)
            else:
                response = await self._get_transport().handle_async_request(request)
            try:
                content = await response.aread()
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            error: EKSAsyncError = TimeoutError_(
                f"{op.name}: {type(exc).__name__}", operation=op.name
            )
            self._account(error, attempt, waited)
            raise error from exc
        except httpx.TransportError as exc:
            error = TransportError(f"{op.name}: {type(exc).__name__}: {exc}", operation=op.name)
            self._account(error, attempt, waited)
            raise error from exc
        return self._answer(op, response.status_code, response.headers, content, attempt, waited)

    def _answer(
        self,
        op: OperationSpec[Any],
        status: int,
        headers: Mapping[str, str],
        content: bytes,
        attempt: int,
        waited: float,
    ) -> Any:
        """The output of a 2xx answer, or the ServiceError of any other, raised."""
        request_id = headers.get("x-amzn-requestid")
        if status < 300:
            if self._limiter is not None:
                self._limiter.update(throttled=False)
            return parse_output(
                op, status, content, request_id, attempts=attempt, retry_wait=waited
            )
        service_error = parse_error(op.name, status, headers, content, request_id)
        if self._limiter is not None:
            self._limiter.update(throttled=classify(service_error) == "throttling")
        if is_clock_skew(service_error):
            self._correct_clock(headers.get("date"))
        service_error.retry_after = retry_after(headers)
        self._account(service_error, attempt, waited)
        raise service_error

    @staticmethod
    def _account(error: EKSAsyncError, attempt: int, waited: float) -> None:
        error.attempts = attempt
        error.retry_wait = waited

    def _correct_clock(self, date: str | None) -> None:
        """Take the offset between EKS's clock (its Date header) and ours."""
        if not date:
            return
        import email.utils

        try:
            server = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return
        if server.tzinfo is None:
            server = server.replace(tzinfo=datetime.UTC)
        self._clock_offset = (server - datetime.datetime.now(datetime.UTC)).total_seconds()


class _RetryLoop:
    """Attempts after the first, driven by tenacity; one per call that needs retrying."""

    def __init__(
        self,
        client: ClientCore,
        op: OperationSpec[Any],
        url: str,
        body: bytes,
        first: EKSAsyncError,
    ) -> None:
        self.client = client
        self.op = op
        self.url = url
        self.body = body
        self.last = first
        self.replay: EKSAsyncError | None = first
        self.attempts = 1
        self.waited = 0.0
        self.acquired = 0
        self.skew_retried = False
        self.config = client._retry

    def _should_retry(self, error: BaseException) -> bool:
        if classify(error) is not None:
            return True
        return is_clock_skew(error) and not self.skew_retried

    def _stop(self, state: tenacity.RetryCallState) -> bool:
        error = self.last
        if is_clock_skew(error) and classify(error) is None:
            # A corrected clock earns one more attempt, whatever the attempt count.
            self.skew_retried = True
            return False
        if self.attempts >= self.config.max_attempts:
            return True
        quota = self.client._quota
        if quota is not None:
            kind = classify(error)
            assert kind is not None
            cost = quota.acquire(kind)
            if cost is None:
                logger.debug("%s: retry quota spent, not retrying %s", self.op.name, _reason(error))
                return True
            self.acquired += cost
        return False

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = self.last
        if is_clock_skew(error) and classify(error) is None:
            return 0.0
        delay = backoff(self.attempts, self.config.max_backoff)
        hint = getattr(error, "retry_after", None)
        if hint is not None:
            delay = min(max(delay, hint), self.config.max_backoff)
        return delay

    async def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        delay = state.upcoming_sleep
        self.waited += 0.0 if instant() else delay
        event = RetryEvent(
            operation=self.op.name,
            attempt=self.attempts,
            reason=_reason(self.last),
            delay=delay,
        )
        logger.debug(
            "%s: attempt %d failed (%s); retrying in %.3f s",
            event.operation, event.attempt, event.reason, event.delay,
        )
        hook = self.client._on_retry
        if hook is not None:
            hook(event)

    async def _one(self) -> Any:
        if self.replay is not None:
            error, self.replay = self.replay, None
            raise error
        self.attempts += 1
        try:
            return await self.client._attempt(
                self.op, self.url, self.body, self.attempts, self.waited
            )
        except EKSAsyncError as error:
            self.last = error
            raise

    async def run(self) -> Any:
        import tenacity

        retrying = tenacity.AsyncRetrying(
            sleep=sleep,
            stop=self._stop,
            wait=self._wait,
            retry=tenacity.retry_if_exception(self._should_retry),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        output: Any = await retrying(self._one)
        quota = self.client._quota
        if quota is not None:
            quota.release(self.acquired)
        return output


def _reason(error: BaseException) -> str:
    if isinstance(error, ServiceError):
        return f"{error.code}, HTTP {error.http_status}"
    return type(error).__name__.rstrip("_")
