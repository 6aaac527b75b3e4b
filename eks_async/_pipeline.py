"""One call, in one place: serialize → sign → send → parse, retried.

``Shared`` is what every view of one client shares (the transport and its connections,
credentials, the cluster-token cache, the clock offset, the retry quota and the rate
limiter); ``Options`` is what a view may change (retry configuration, retry hook). A call
is ``await invoke(shared, options, op, values)``.

The first attempt runs outside tenacity: it is the hot path and usually succeeds. When it
fails with something worth retrying, its outcome is handed to a tenacity loop as attempt 1
(nothing is re-raised to be counted), and tenacity's composed strategies decide the rest.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import functools
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs

from ._auth.credentials import CredentialsProvider
from ._auth.sigv4 import SigV4Signer, _host_header, _split_url
from ._endpoints import region_from_fips_pseudo, resolve_endpoint
from ._exceptions import (
    ConfigurationError,
    EKSAsyncError,
    ServiceError,
    TimeoutError_,
    TransportError,
)
from ._ratelimit import RateLimiter
from ._redact import redact_error
from ._restjson.parse import parse_error, parse_output
from ._restjson.serialize import serialize
from ._retry import RetryConfig, RetryQuota, is_clock_skew, is_iam_propagation, retry_after
from ._telemetry import tracer as _telemetry_tracer
from ._transports import proxy_in_env
from ._transports.base import Limits, Timeouts, Transport
from ._version import __version__

if TYPE_CHECKING:
    import ssl

    import httpx

    from ._auth.token import TokenSource
    from ._operation import OperationSpec

T = TypeVar("T")
logger = logging.getLogger("eks_async")

_USER_AGENT: Final = f"eks-async/{__version__}"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

#: An absolute deadline (``loop.time()``) that bounds every call made inside it: a waiter
#: sets it around each poll so the poll's retries cannot run past the waiter's max_wait.
call_budget: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "eks_async_call_budget", default=None
)


@attrs.frozen(kw_only=True, slots=True)
class RetryEvent:
    """One wait about to happen: a retry's backoff, or a wait for the client's rate limit.

    ``kind`` is ``"backoff"`` (a standard retry), ``"iam_propagation"`` (a create or update
    refused because the IAM role it names is not known to EKS yet) or ``"rate_limit"``.
    ``attempt`` is the attempt that failed (the retries) or the one about to be sent
    (``"rate_limit"``); ``delay`` the seconds of the wait.
    """

    operation: str
    attempt: int
    reason: str
    delay: float
    kind: str = "backoff"


class Service:
    """What differs between the services one pipeline calls: EKS, EKS Auth.

    ``name`` for messages; ``signing_name``, SigV4's service name (``eks``, ``eks-auth``);
    ``resolve_endpoint(region, use_fips=, use_dualstack=)``, the endpoint URL; ``errors``,
    the error classes by code (``None``: EKS's). The shapes table is found from the
    operation (its shape names say their service). A plain class: defining an attrs class
    would cost ``import eks_async`` about 0.4 ms.
    """

    __slots__ = ("errors", "name", "resolve_endpoint", "signing_name")

    def __init__(
        self,
        *,
        name: str,
        signing_name: str,
        resolve_endpoint: Callable[..., str],
        errors: Mapping[str, type[ServiceError]] | None = None,
    ) -> None:
        self.name = name
        self.signing_name = signing_name
        self.resolve_endpoint = resolve_endpoint
        self.errors = errors

    def __repr__(self) -> str:
        return f"Service({self.name!r}, signing_name={self.signing_name!r})"


EKS_SERVICE: Final = Service(name="EKS", signing_name="eks", resolve_endpoint=resolve_endpoint)


@attrs.frozen(kw_only=True, slots=True)
class Options:
    """What a ``with_options`` view may change; everything else is ``Shared``."""

    retry: RetryConfig
    on_retry: Callable[[RetryEvent], None] | None = None


class Shared:
    """The state one client and all of its views share."""

    def __init__(
        self,
        *,
        region: str | None,
        endpoint_url: str | None,
        use_fips: bool,
        use_dualstack: bool,
        credentials: CredentialsProvider,
        profile: str | None,
        http_client: httpx.AsyncClient | None,
        transport: httpx.AsyncBaseTransport | None,
        timeouts: Timeouts,
        limits: Limits,
        max_connections: int,
        quota: int | None,
        service: Service = EKS_SERVICE,
    ) -> None:
        self.service = service
        self.profile = profile
        self.use_fips = use_fips
        self.use_dualstack = use_dualstack
        self.endpoint_override = endpoint_url.rstrip("/") if endpoint_url else None
        self.region = region
        self.endpoint: str | None = None
        self.signer: SigV4Signer | None = None
        self.host = ""
        self.credentials = credentials
        self.timeouts = timeouts
        self.limits = limits
        self.max_connections = max_connections
        self._http_client = http_client
        self._user_transport = transport
        # The stack is chosen now, when the client is made: a proxy set in the environment
        # later changes nothing for this client.
        self._proxy = http_client is None and transport is None and proxy_in_env()
        self._ssl_context = _ca_bundle_context()
        self._transport: Transport | None = None
        self._owns_transport = False
        self.closed = False
        self.clock_offset = 0.0
        self.quota = RetryQuota(quota) if quota else None
        self.limiter: RateLimiter | None = None
        self.tokens: TokenSource | None = None
        self._retry_safe: dict[str, bool] = {}
        if region is not None:
            self.configure(region)

    # --- set-up ---------------------------------------------------------------------

    def configure(self, region: str) -> None:
        if self.endpoint_override is not None:
            if self.use_fips or self.use_dualstack:
                raise ConfigurationError("endpoint_url cannot be combined with FIPS or dual-stack")
            endpoint = self.endpoint_override
        else:
            endpoint = self.service.resolve_endpoint(
                region, use_fips=self.use_fips, use_dualstack=self.use_dualstack
            )
        # "fips-us-east-1" style names sign with the plain region, as botocore does.
        self.signer = SigV4Signer(
            service=self.service.signing_name, region=region_from_fips_pseudo(region)[0]
        )
        prefix, _, _, bracket = _split_url(endpoint)
        self.host = _host_header(prefix, bracket)
        self.region = region
        self.endpoint = endpoint

    async def setup(self) -> None:
        """Find the region from the profile when neither the argument nor the env gave one."""
        from ._auth.credentials import resolve_region

        region = await resolve_region(self.profile)
        if not region:
            raise ConfigurationError(
                "no region: pass region=..., set AWS_REGION, or configure one in the profile"
            )
        self.configure(region)

    def transport(self) -> Transport:
        """The transport every view sends through, opened on first use."""
        transport = self._transport
        if transport is None:
            if self.closed:
                raise ConfigurationError("this client is closed")
            from ._transports import open_transport

            transport, self._owns_transport = open_transport(
                http_client=self._http_client,
                transport=self._user_transport,
                max_connections=self.max_connections,
                ssl_context=self._ssl_context,
                limits=self.limits,
                proxy=self._proxy,
            )
            self._transport = transport
        return transport

    def rate_limiter(self) -> RateLimiter:
        """The client's own rate limiter of adaptive mode (when ``RetryConfig`` names none),
        shared by every view using it."""
        if self.limiter is None:
            self.limiter = RateLimiter()
        return self.limiter

    def retry_safe(self, op: OperationSpec[Any]) -> bool:
        """Whether a transport may send ``op`` again on its own (idempotent by method or
        by its idempotency token, which every attempt of a call repeats)."""
        safe = self._retry_safe.get(op.name)
        if safe is None:
            from ._restjson.walk import shape_row

            members = shape_row(op.input_shape)[2]
            safe = op.method in _SAFE_METHODS or any(m[6] for m in members)
            self._retry_safe[op.name] = safe
        return safe

    async def aclose(self) -> None:
        self.closed = True
        transport, self._transport = self._transport, None
        if transport is not None and self._owns_transport:
            await transport.aclose()


def _ca_bundle_context() -> ssl.SSLContext | None:
    """The context for ``AWS_CA_BUNDLE``, as the AWS SDKs honour it (``None``: certifi's)."""
    bundle = os.environ.get("AWS_CA_BUNDLE")
    return _load_ca_bundle(bundle) if bundle else None


@functools.cache
def _load_ca_bundle(path: str) -> ssl.SSLContext:
    import ssl

    return ssl.create_default_context(cafile=path)


# --- one call -----------------------------------------------------------------------------


async def invoke(
    shared: Shared,
    options: Options,
    op: OperationSpec[T],
    values: tuple[Any, ...],
    span: Any = None,
) -> T:
    """The typed output of ``op`` called with ``values``, retried as ``options`` say.

    ``span``: the call's OpenTelemetry span, or ``False`` for one not recorded
    (``_telemetry.traced_call`` passes it).
    """
    # --- telemetry: a span per call, only when a tracer provider is set (_telemetry) ---
    if span is None:
        tracer = _telemetry_tracer()
        if tracer is not None:
            from ._telemetry import traced_call

            return await traced_call(tracer, invoke, shared, options, op, values)  # type: ignore[no-any-return]
    elif span is False:  # traced, but the span is not recorded (sampled out)
        span = None
    # --- end telemetry ---
    path, body = serialize(op, values)
    if shared.closed:
        raise ConfigurationError("this client is closed")
    if shared.endpoint is None:
        await shared.setup()
    call = _Call(shared, options, op, f"{shared.endpoint}{path}", body, span)
    deadline = options.retry.deadline
    budget = call_budget.get()
    if deadline is None and budget is None:
        return await call.run()  # type: ignore[no-any-return]
    loop = asyncio.get_running_loop()
    when = loop.time() + deadline if deadline is not None else None
    if budget is not None:
        when = budget if when is None else min(when, budget)
    try:
        async with asyncio.timeout_at(when):
            return await call.run()  # type: ignore[no-any-return]
    except TimeoutError as exc:
        limit = f"the deadline of {deadline} s" if deadline is not None else "the waiter's time"
        raise TimeoutError_(
            f"{op.name}: no answer within {limit}", operation=op.name
        ) from exc


class _Call:
    """One call's attempts: the first on the hot path, the rest in tenacity."""

    __slots__ = ("acquired", "attempts", "body", "debug", "op", "options", "quota", "shared",
                 "skew_retried", "span", "url", "waited")

    def __init__(
        self, shared: Shared, options: Options, op: OperationSpec[Any], url: str, body: bytes,
        span: Any = None,
    ) -> None:
        self.shared = shared
        self.options = options
        self.op = op
        self.url = url
        self.body = body
        self.attempts = 0
        self.waited = 0.0
        self.acquired = 0
        self.skew_retried = False
        #: The client's retry quota, unless this view's configuration turns it off.
        self.quota = shared.quota if options.retry.quota else None
        # --- telemetry: the call's span, and whether DEBUG lines are wanted (_telemetry) ---
        self.span = span
        self.debug = logger.isEnabledFor(logging.DEBUG)

    def send(self) -> Awaitable[Any]:
        """One attempt; timed, logged and traced only when a DEBUG log or a span listens."""
        if self.span is None and not self.debug:
            return self.attempt()
        from ._telemetry import observed_attempt

        return observed_attempt(self)
    # --- end telemetry ---

    async def run(self) -> Any:
        quota = self.quota
        try:
            output = await self.send()
        except EKSAsyncError as error:
            if (
                error.retry_kind is None
                and not is_clock_skew(error)
                and not (
                    self.options.retry.iam_propagation
                    and is_iam_propagation(error, self.op.name)
                )
            ):
                if self.debug:  # telemetry
                    _not_retried(self, error, retried=False)
                raise
            try:
                output = await self._retry(error)
            except EKSAsyncError as last:
                if self.debug:  # telemetry
                    _not_retried(self, last, retried=True)
                raise
        if quota is not None:
            quota.release(self.acquired)
        return output

    async def _retry(self, first: EKSAsyncError) -> Any:
        import tenacity

        from ._retry import retry_strategies, sleep

        stop, wait, retry = retry_strategies(self)
        retrying = tenacity.AsyncRetrying(
            sleep=sleep, stop=stop, wait=wait, retry=retry,
            before_sleep=self._before_sleep, reraise=True,
        )
        retrying.begin()
        state = tenacity.RetryCallState(retrying, fn=None, args=(), kwargs={})
        state.set_exception((type(first), first, first.__traceback__))
        while True:
            do = await retrying.iter(state)
            if isinstance(do, tenacity.DoAttempt):
                try:
                    state.set_result(await self.send())
                except EKSAsyncError:
                    state.set_exception(sys.exc_info())  # type: ignore[arg-type]
            elif isinstance(do, tenacity.DoSleep):
                state.prepare_for_next_attempt()
                await sleep(do)
            else:
                return do

    def _before_sleep(self, state: Any) -> None:
        from ._retry import instant

        error = state.outcome.exception()
        delay: float = state.upcoming_sleep
        kind = "backoff"
        if error.retry_kind is None:
            if is_iam_propagation(error, self.op.name):
                kind = "iam_propagation"
            elif is_clock_skew(error):
                self.skew_retried = True
        self.waited += 0.0 if instant() else delay
        self._emit(RetryEvent(
            operation=self.op.name, attempt=self.attempts, reason=_reason(error), delay=delay,
            kind=kind,
        ))

    def _emit(self, event: RetryEvent) -> None:
        if event.kind == "backoff":
            logger.debug(
                "%s: attempt %d failed (%s); retrying in %.3f s",
                event.operation, event.attempt, event.reason, event.delay,
            )
        elif event.kind == "iam_propagation":
            logger.debug(
                "%s: attempt %d refused: the IAM role is not known to EKS yet (%s); "
                "retrying in %.3f s",
                event.operation, event.attempt, event.reason, event.delay,
            )
        else:
            logger.debug(
                "%s: attempt %d waits %.3f s for the client-side rate limit (%s)",
                event.operation, event.attempt, event.delay, event.reason,
            )
        if self.span is not None:  # telemetry
            from ._telemetry import retry_event

            retry_event(self.span, event)
        hook = self.options.on_retry
        if hook is not None:
            hook(event)

    def _limit_wait(self, delay: float, reason: str) -> None:
        from ._retry import instant

        self.waited += 0.0 if instant() else delay
        self._emit(RetryEvent(
            operation=self.op.name, attempt=self.attempts, kind="rate_limit",
            reason=reason, delay=delay,
        ))

    async def attempt(self) -> Any:
        """One signed request and its answer: the output, or the error raised."""
        self.attempts += 1
        retry = self.options.retry
        if retry.mode != "adaptive":
            return await self._send(None, 0.0)
        limiter = retry.limiter or self.shared.rate_limiter()
        sent = await limiter.acquire(self._limit_wait)
        try:
            return await self._send(limiter, sent)
        finally:
            limiter.release(sent)

    async def _send(self, limiter: RateLimiter | None, sent: float) -> Any:
        shared = self.shared
        op = self.op
        body = self.body
        headers = {"Host": shared.host, "User-Agent": _USER_AGENT}
        if body:
            headers["Content-Type"] = "application/json"
        credentials = await shared.credentials.get_credentials()
        now = datetime.datetime.now(datetime.UTC)
        if shared.clock_offset:
            now += datetime.timedelta(seconds=shared.clock_offset)
        signer = shared.signer
        assert signer is not None
        signer.sign_headers(
            method=op.method, url=self.url, headers=headers, body=body,
            credentials=credentials, now=now,
        )
        try:
            status, answer_headers, content = await shared.transport().send(
                op.method, self.url, headers, body,
                timeouts=shared.timeouts, retry_safe=shared.retry_safe(op),
            )
        except TransportError as exc:
            error = type(exc)(f"{op.name}: {exc}", operation=op.name)
            self._account(error)
            secrets = (credentials.secret_access_key, credentials.session_token)
            raise redact_error(error, secrets, cause=exc) from exc
        request_id = answer_headers.get("x-amzn-requestid")
        if status < 300:
            if limiter is not None:
                limiter.update(throttled=False, sent=sent)
            return parse_output(
                op, status, content, request_id, attempts=self.attempts, retry_wait=self.waited
            )
        service_error = parse_error(
            op.name, status, answer_headers, content, request_id, shared.service.errors
        )
        service_error.retry_after = retry_after(answer_headers)
        if limiter is not None:
            limiter.update(
                throttled=service_error.retry_kind == "throttling", sent=sent,
                retry_after=service_error.retry_after,
            )
        if is_clock_skew(service_error):
            _correct_clock(shared, answer_headers.get("date"))
        self._account(service_error)
        raise redact_error(
            service_error, (credentials.secret_access_key, credentials.session_token)
        )

    def _account(self, error: EKSAsyncError) -> None:
        error.attempts = self.attempts
        error.retry_wait = self.waited


def _correct_clock(shared: Shared, date: str | None) -> None:
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
    shared.clock_offset = (server - datetime.datetime.now(datetime.UTC)).total_seconds()


def _not_retried(call: _Call, error: EKSAsyncError, *, retried: bool) -> None:
    """The DEBUG line of a call's last failure: why no further attempt is made."""
    from ._telemetry import not_retried

    retryable = retried and (
        error.retry_kind is not None
        or is_clock_skew(error)
        or is_iam_propagation(error, call.op.name)
    )
    not_retried(call, error, "no retry left" if retryable else "not a retryable error")


def _reason(error: BaseException) -> str:
    if isinstance(error, ServiceError):
        return f"{error.code}, HTTP {error.http_status}"
    return type(error).__name__.rstrip("_")
