"""An httpx transport that sends requests with aiohttp.

``AiohttpTransport`` takes an ``httpx.Request`` and returns a fully read
``httpx.Response``, with aiohttp's HTTP/1.1 client and connection pool doing the work
in between. It writes the request as given: the URL is not re-quoted (SigV4
signatures cover the exact path and query) and aiohttp adds no headers of its own.
The response body is left encoded by aiohttp and decoded by httpx, exactly once,
as with httpx's own transport.
"""

from __future__ import annotations

import functools
import os
import ssl
import time
import urllib.request
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import aiohttp
import certifi
import httpx
from yarl import URL

from ._http11 import SendError

__all__ = ["AiohttpTransport", "SendError"]

# Headers aiohttp would otherwise add on its own (Host and Content-Length are not in
# this list: aiohttp only adds them when missing, and httpx.Request always sets Host).
_SKIP_AUTO_HEADERS = frozenset({"User-Agent", "Accept", "Accept-Encoding", "Content-Type"})

_TIMEOUTS: dict[tuple[Any, Any, Any], aiohttp.ClientTimeout] = {}
_TIMEOUTS_MAX = 256


class _ExactRequest(aiohttp.ClientRequest):
    # aiohttp adds "Content-Length: 0" to a body-less request unless its method is in
    # GET_METHODS (so a DELETE would gain one). httpx already sets Content-Length on
    # the requests that need it, so no method gets one added here.
    GET_METHODS = set(aiohttp.ClientRequest.ALL_METHODS)  # noqa: RUF012 (base class's type)


@functools.cache
def _ssl_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    # The same context httpx builds for verify=True: certifi's CA bundle, or
    # SSL_CERT_FILE / SSL_CERT_DIR when the environment is trusted.
    return ssl.create_default_context(cafile=cafile, capath=capath)


def _ca_location(trust_env: bool) -> tuple[str | None, str | None]:
    if trust_env:
        if cafile := os.environ.get("SSL_CERT_FILE"):
            return cafile, None
        if capath := os.environ.get("SSL_CERT_DIR"):
            return None, capath
    return certifi.where(), None


def _client_timeout(connect: Any, read: Any, pool: Any) -> aiohttp.ClientTimeout:
    key = (connect, read, pool)
    timeout = _TIMEOUTS.get(key)
    if timeout is None:
        # aiohttp's ``connect`` covers waiting for a pool slot plus connecting;
        # ``sock_connect`` only the connecting. httpx has no write timeout equivalent
        # in aiohttp; request bodies here are small.
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None if connect is None or pool is None else pool + connect,
            sock_connect=connect,
            sock_read=read,
        )
        if len(_TIMEOUTS) >= _TIMEOUTS_MAX:
            _TIMEOUTS.clear()
        _TIMEOUTS[key] = timeout
    return timeout


def _env_proxies() -> dict[str, str]:
    """HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY, read the way httpx reads them."""
    found = urllib.request.getproxies()
    proxies: dict[str, str] = {}
    for scheme in ("http", "https", "all"):
        if value := found.get(scheme):
            url = value if "://" in value else f"http://{value}"
            if not url.startswith("http://"):
                raise ValueError(
                    f"proxy {url!r} from the environment: only http:// proxies are supported"
                )
            proxies[scheme] = url
    return proxies


def _normalised(headers: list[tuple[str, str]], body_length: int) -> list[tuple[str, str]]:
    """The slow path for unusual header lists.

    A name repeated with different spellings takes its first spelling: aiohttp merges
    headers case-sensitively, so ``X-A: 1`` then ``x-a: 2`` would lose the first value.
    A streamed (``Transfer-Encoding``) body has been read in full and is sent in one
    piece, so it gets a ``Content-Length`` instead.
    """
    spelling: dict[str, str] = {}
    out: list[tuple[str, str]] = []
    streamed = False
    for name, value in headers:
        lowered = name.lower()
        if lowered == "transfer-encoding":
            streamed = True
        else:
            out.append((spelling.setdefault(lowered, name), value))
    if streamed:
        out = [(k, v) for k, v in out if k.lower() != "content-length"]
        out.append(("Content-Length", str(body_length)))
    return out


def _translate(exc: Exception, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception matching an aiohttp (or asyncio) failure."""
    cls: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        cls = httpx.ConnectTimeout
    elif isinstance(exc, aiohttp.ServerTimeoutError):
        cls = httpx.ReadTimeout
    elif isinstance(exc, TimeoutError):
        cls = httpx.TimeoutException
    elif isinstance(exc, aiohttp.ClientHttpProxyError):
        cls = httpx.ProxyError  # the proxy refused to open a tunnel
    elif isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerFingerprintMismatch):
        # refused (by the server or the proxy), DNS failure, TLS handshake failure
        cls = httpx.ConnectError
    elif isinstance(
        exc,
        aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError,
    ):
        cls = httpx.RemoteProtocolError
    elif isinstance(exc, aiohttp.NonHttpUrlClientError):
        cls = httpx.UnsupportedProtocol
    elif isinstance(exc, aiohttp.InvalidURL | ValueError):
        cls = httpx.LocalProtocolError
    elif isinstance(exc, aiohttp.ClientConnectionResetError):
        cls = httpx.WriteError
    elif isinstance(exc, aiohttp.ClientConnectionError):
        cls = httpx.ReadError
    else:
        cls = httpx.TransportError
    return cls(str(exc) or type(exc).__name__, request=request)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` backed by one ``aiohttp.ClientSession``.

    The session is created on the first request, inside the running event loop, and
    belongs to that loop. ``max_keepalive_per_host`` becomes aiohttp's
    ``limit_per_host``: it caps the connections to one host, busy or idle.
    A request's ``extensions["timeout"]`` (set by ``httpx.AsyncClient``) overrides
    the connect/read defaults; a pool wait that runs out surfaces as
    ``httpx.ConnectTimeout``. With ``trust_env`` the CA bundle honours SSL_CERT_FILE /
    SSL_CERT_DIR and http:// proxies come from HTTP(S)_PROXY / ALL_PROXY / NO_PROXY;
    ~/.netrc is never consulted.
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_keepalive_per_host: int | None = None,
        keepalive_expiry: float = 30.0,
        connect_timeout: float | None = 10.0,
        read_timeout: float | None = 60.0,
        verify: ssl.SSLContext | bool = True,
        trust_env: bool = False,
    ) -> None:
        self._max_connections = max_connections
        self._limit_per_host = max_keepalive_per_host or 0
        self._keepalive_expiry = keepalive_expiry
        self._default_timeout = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        # send()'s timeout: what httpx's {"connect", "read", "pool"} extension maps to.
        self._call_timeout = _client_timeout(connect_timeout, read_timeout, connect_timeout)
        self._verify = verify
        self._ca = _ca_location(trust_env) if verify is True else (None, None)
        self._proxies = _env_proxies() if trust_env else None
        self._proxy_for: dict[tuple[str, bytes], URL | None] = {}
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("Cannot send a request, as the transport has been closed.")
        verify = self._verify
        ssl_param: ssl.SSLContext | bool = _ssl_context(*self._ca) if verify is True else verify
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=self._limit_per_host,
            keepalive_timeout=self._keepalive_expiry,
            ssl=ssl_param,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._default_timeout,
            cookie_jar=aiohttp.DummyCookieJar(),  # cookies are the client's business
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            auto_decompress=False,  # httpx.Response decodes, per Content-Encoding
            request_class=_ExactRequest,
            trust_env=False,  # proxies are resolved here; aiohttp's would also read netrc
        )
        return self._session

    def _proxy(self, url: httpx.URL, proxies: dict[str, str]) -> URL | None:
        key = (url.scheme, url.netloc)
        try:
            return self._proxy_for[key]
        except KeyError:
            pass
        proxy = proxies.get(url.scheme) or proxies.get("all")
        if proxy is not None and urllib.request.proxy_bypass(url.netloc.decode("ascii")):
            proxy = None
        result = None if proxy is None else URL(proxy)
        self._proxy_for[key] = result
        return result

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session
        if session is None:
            session = self._open()

        ext_timeout = request.extensions.get("timeout")
        if ext_timeout is None:
            timeout = self._default_timeout
        else:
            timeout = _client_timeout(
                ext_timeout.get("connect"), ext_timeout.get("read"), ext_timeout.get("pool")
            )

        try:
            body = request.content
        except httpx.RequestNotRead:
            body = await request.aread()

        raw_headers = request.headers.raw
        # aiohttp writes header strings as UTF-8, so this round-trips the bytes.
        try:
            headers = [(k.decode(), v.decode()) for k, v in raw_headers]
        except UnicodeDecodeError as exc:
            raise httpx.LocalProtocolError(
                "header bytes that are not UTF-8 cannot be sent by AiohttpTransport",
                request=request,
            ) from exc
        names = {k.lower() for k, _ in raw_headers}
        if len(names) != len(raw_headers) or b"transfer-encoding" in names:
            headers = _normalised(headers, len(body))

        proxies = self._proxies
        proxy = None if proxies is None else self._proxy(request.url, proxies)

        start = time.perf_counter()
        try:
            resp = await session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=headers,
                data=body or None,
                timeout=timeout,
                allow_redirects=False,
                proxy=proxy,
            )
            # On any failure, cancellation included, read() closes the connection
            # and gives it back to the pool; on success it is released at EOF.
            content = await resp.read()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise _translate(exc, request) from exc

        response = httpx.Response(
            resp.status,
            headers=resp.raw_headers,
            stream=httpx.ByteStream(content),
            request=request,
        )
        response.read()
        # httpx.AsyncClient only sets elapsed on responses it reads itself.
        response.elapsed = timedelta(seconds=time.perf_counter() - start)
        return response

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Mapping[str, str], bytes]:
        """eks_async's own path: ``(status, headers, body)`` with no httpx objects.

        ``url`` is sent as given (not re-quoted) and ``headers`` exactly (they include
        Host). Failures without an answer raise ``SendError``.
        """
        session = self._session
        if session is None:
            session = self._open()
        proxies = self._proxies
        try:
            resp = await session.request(
                method,
                URL(url, encoded=True),
                headers=headers,
                data=body or None,
                timeout=self._call_timeout,
                allow_redirects=False,
                auto_decompress=True,  # nothing asks for compression; decode if it comes
                proxy=None if proxies is None else self._proxy(httpx.URL(url), proxies),
            )
            content = await resp.read()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            translated = _translate(exc, httpx.Request(method, url))
            raise SendError(
                f"{type(translated).__name__}: {translated}",
                timeout=isinstance(translated, httpx.TimeoutException),
            ) from exc
        return resp.status, resp.headers, content

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()
