"""Transports: how a signed request reaches EKS and its answer comes back (see ``base``)."""

# Interim wiring of the earlier stacks behind the interface (replaced by pool/httpx modules).
from __future__ import annotations  # isort: skip

import ssl
from collections.abc import Mapping
from typing import Any

from .base import Answer, Limits, Timeouts, Transport


class _InterimPool(Transport):
    def __init__(self, max_connections: int, ssl_context: ssl.SSLContext | None) -> None:
        from .._http11 import Http11Pool

        self._pool = Http11Pool(max_connections=max_connections, ssl_context=ssl_context)

    async def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes, *,
                   timeouts: Timeouts, retry_safe: bool) -> Answer:
        from .._exceptions import TimeoutError_, TransportError
        from .._http11 import SendError

        self._pool._connect_timeout = timeouts.connect
        self._pool._read_timeout = timeouts.read
        try:
            return await self._pool.send(method, url, dict(headers), body)
        except SendError as exc:
            raise (TimeoutError_ if exc.timeout else TransportError)(str(exc)) from exc

    async def aclose(self) -> None:
        await self._pool.aclose()


class _InterimHttpx(Transport):
    def __init__(self, http_client: Any, transport: Any) -> None:
        self._client = http_client
        self._transport = transport

    async def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes, *,
                   timeouts: Timeouts, retry_safe: bool) -> Answer:
        import httpx

        from .._exceptions import TimeoutError_, TransportError

        h = {k: v for k, v in headers.items() if k != "Host"}
        t = {"connect": timeouts.connect, "read": timeouts.read, "write": timeouts.read,
             "pool": timeouts.connect}
        request = httpx.Request(method, url, headers=h, content=body, extensions={"timeout": t})
        try:
            if self._client is not None:
                response = await self._client.send(request)
            else:
                response = await self._transport.handle_async_request(request)
            try:
                content = await response.aread()
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise TimeoutError_(type(exc).__name__) from exc
        except httpx.TransportError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        return response.status_code, response.headers, content

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()


def open_transport(*, http_client: Any, transport: Any, max_connections: int,
                   ssl_context: ssl.SSLContext | None, limits: Limits) -> tuple[Transport, bool]:
    import os

    if http_client is not None or transport is not None:
        return _InterimHttpx(http_client, transport), False
    if any(os.environ.get(n) for n in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                                       "ALL_PROXY", "all_proxy")):
        from .._transport import AiohttpTransport

        return _InterimHttpx(None, AiohttpTransport(max_connections=max_connections,
                                                   trust_env=True)), True
    return _InterimPool(max_connections, ssl_context), True
