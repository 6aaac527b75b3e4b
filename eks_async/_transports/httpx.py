"""The httpx adapter: a caller's ``httpx.AsyncClient`` or httpx transport behind ``Transport``.

Three uses: a caller's own client (its proxies, certificates, event hooks), a caller's
``httpx.AsyncBaseTransport`` (respx, ``httpx.MockTransport``, the emulator's in-process
transport), and a client of eks_async's own, made with ``trust_env=True`` when the
environment names a proxy (httpx reads HTTP(S)_PROXY, ALL_PROXY and NO_PROXY itself).

The request goes out as given: ``httpx.Request`` keeps a percent-encoded path and query as
they are (SigV4 signed them) and the given Host; a caller's client sends it through
``AsyncClient.send``, which adds none of the client's default headers. The answer is read
in a stream, so ``Limits.max_body`` stops it without holding more. httpx's errors become
eks_async's: timeouts ``TimeoutError_``, protocol errors ``ProtocolError``, any other
failure ``TransportError``. This module is the only one that imports httpx for sending.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping

import httpx

from .._exceptions import ProtocolError, TimeoutError_, TransportError
from .base import Answer, Limits, Timeouts, Transport

__all__ = ["HttpxTransport"]


class HttpxTransport(Transport):
    """Sends through a caller's ``client`` or ``transport`` (exactly one of them).

    Neither is ever closed here: they belong to the caller. ``owns_client`` hands the
    client over instead, to be closed by ``aclose`` (what ``from_environment`` does).
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: Limits | None = None,
        owns_client: bool = False,
    ) -> None:
        if (client is None) == (transport is None):
            raise TypeError("give an httpx client or an httpx transport, one of them")
        self._client = client
        self._transport = transport
        self._limits = limits or Limits()
        self._owns_client = owns_client and client is not None
        self._closed = False

    @classmethod
    def from_environment(
        cls,
        *,
        max_connections: int = 100,
        ssl_context: ssl.SSLContext | None = None,
        limits: Limits | None = None,
    ) -> HttpxTransport:
        """A transport owning an ``httpx.AsyncClient`` that honours the environment's proxies
        (and NO_PROXY, SSL_CERT_FILE, SSL_CERT_DIR), as httpx reads them."""
        client = httpx.AsyncClient(
            trust_env=True,
            verify=ssl_context if ssl_context is not None else True,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=False,
        )
        return cls(client=client, limits=limits, owns_client=True)

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        timeouts: Timeouts,
        retry_safe: bool,
    ) -> Answer:
        # retry_safe: httpcore never sends a request twice on its own, so nothing to decide.
        if self._closed:
            raise TransportError("the transport is closed")
        flat = url + "".join([f"{k}{v}" for k, v in headers.items()])
        if "\r" in flat or "\n" in flat:
            raise TransportError("CR or LF in a header or in the URL: refused")
        connect, read = timeouts.connect, timeouts.read
        try:
            request = httpx.Request(
                method,
                url,
                headers=headers,
                content=body,
                extensions={
                    "timeout": {"connect": connect, "read": read, "write": read, "pool": connect}
                },
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
            raise TransportError(f"cannot send to this URL: {type(exc).__name__}") from exc
        # httpx's read timeout is an idle timer; the answer's deadline is the contract.
        deadline = None if connect is None or read is None else connect + read
        try:
            async with asyncio.timeout(deadline):
                return await self._exchange(request)
        except TimeoutError as exc:
            raise TimeoutError_("no complete answer within the read timeout") from exc
        except httpx.TimeoutException as exc:
            raise TimeoutError_(f"{type(exc).__name__}: {exc}") from exc
        except (httpx.ProtocolError, httpx.DecodingError) as exc:
            raise ProtocolError(f"{type(exc).__name__}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        except RuntimeError as exc:  # httpx: "Cannot send a request, as the client has been closed."
            raise TransportError(f"the httpx client cannot send: {exc}") from exc

    async def _exchange(self, request: httpx.Request) -> Answer:
        if self._client is not None:
            response = await self._client.send(request, stream=True)
        else:
            assert self._transport is not None
            response = await self._transport.handle_async_request(request)
        try:
            limit = self._limits.max_body
            length = response.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > limit:
                raise ProtocolError("body larger than the limit")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise ProtocolError("body larger than the limit")
                chunks.append(chunk)
        finally:
            await response.aclose()
        found: dict[str, str] = {}
        for name, value in response.headers.multi_items():
            old = found.get(name)
            found[name] = value if old is None else f"{old}, {value}"
        return response.status_code, found, b"".join(chunks)

    async def aclose(self) -> None:
        self._closed = True
        if self._owns_client and self._client is not None:
            await self._client.aclose()
