"""The client's shell: construction, lifecycle and ``with_options`` views.

Each call runs through ``_pipeline.invoke``; the state every view of a client shares lives
in one ``_pipeline.Shared`` object, and a view differs from its client only in ``Options``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from ._auth.credentials import (
    ChainCredentialsProvider,
    Credentials,
    CredentialsProvider,
    StaticCredentialsProvider,
)
from ._exceptions import ConfigurationError
from ._operation import OperationSpec
from ._pipeline import EKS_SERVICE, Options, RetryEvent, Service, Shared, invoke
from ._restjson.serialize import values_from_params
from ._retry import RetryConfig
from ._transports.base import Limits, Timeouts

if TYPE_CHECKING:
    # httpx is imported only when a caller passes their own client or transport.
    import httpx

__all__ = ["ClientCore", "RetryEvent"]

T = TypeVar("T")
_TRUE = ("1", "true", "yes", "on")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


class ClientCore:
    """Holds what every call needs: region, endpoint, credentials, signer and transport."""

    #: The service this client calls (EKS; ``EKSAuthClient`` sets EKS Auth's).
    _service: Service = EKS_SERVICE

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
        limits: Limits | None = None,
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
        if aws_access_key_id is not None and aws_secret_access_key is not None:
            credentials = Credentials(
                access_key_id=aws_access_key_id,
                secret_access_key=aws_secret_access_key,
                session_token=aws_session_token,
            )
        provider: CredentialsProvider
        if credentials is None:
            provider = ChainCredentialsProvider(profile)
        elif isinstance(credentials, Credentials):
            provider = StaticCredentialsProvider(credentials)
        else:
            provider = credentials
        retry = retry or RetryConfig()
        self._shared = Shared(
            region=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
            endpoint_url=endpoint_url,
            use_fips=_env_flag("AWS_USE_FIPS_ENDPOINT") if use_fips is None else use_fips,
            use_dualstack=(
                _env_flag("AWS_USE_DUALSTACK_ENDPOINT") if use_dualstack is None else use_dualstack
            ),
            credentials=provider,
            profile=profile,
            http_client=http_client,
            transport=transport,
            timeouts=Timeouts(connect=connect_timeout, read=read_timeout),
            limits=limits or Limits(),
            max_connections=max_connections,
            quota=retry.quota,
            service=self._service,
        )
        self._options = Options(retry=retry, on_retry=on_retry)
        self._view = False

    @property
    def region(self) -> str | None:
        """The AWS region calls go to (``None`` until found, when it comes from a profile)."""
        return self._shared.region

    @property
    def endpoint_url(self) -> str | None:
        """The endpoint calls go to."""
        return self._shared.endpoint

    def __repr__(self) -> str:
        shared = self._shared
        return f"{type(self).__name__}(region={shared.region!r}, endpoint_url={shared.endpoint!r})"

    # --- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._shared.endpoint is None:
            await self._shared.setup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections this client opened (a caller's own client stays open).

        Closing a client closes it for every ``with_options`` view of it; closing a view
        closes nothing.
        """
        if not self._view:
            await self._shared.aclose()

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
        result = await invoke(self._shared, self._options, op, values)
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
        The view sends over the client's connections with its credentials, token cache,
        clock offset, retry quota and rate limiter; its waiters and paginators use the
        view's options. Closing the client closes it for every view; closing a view closes
        nothing.
        """
        view = object.__new__(type(self))
        view._shared = self._shared
        view._options = Options(
            retry=retry if retry is not None else self._options.retry,
            on_retry=on_retry if on_retry is not None else self._options.on_retry,
        )
        view._view = True
        return view
