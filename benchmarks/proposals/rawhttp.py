"""Prototype: an HTTP/1.1 keep-alive client on asyncio's own protocols (no aiohttp).

What eks_async needs from HTTP is narrow: one host, small JSON bodies, keep-alive, TLS,
timeouts. This prototype does that much with ``loop.create_connection`` and a protocol
that parses the status line, headers and a ``Content-Length`` or chunked body, so that
``import aiohttp`` (110-170 ms on the benchmark machine, 60 ms of it aiohttp building two
SSL contexts at import) leaves the first call, and aiohttp's per-request machinery leaves
every call.

``RawTransport`` is an ``httpx.AsyncBaseTransport`` (``EKSClient(transport=RawTransport())``
works unchanged) and has ``send_raw()``, the httpx-free entry point the ``lean`` prototype
uses. Prototype limits, to be closed before it replaces ``AiohttpTransport``: no proxies,
no HEAD/1xx handling, no ``Content-Encoding`` decoding; a reused keep-alive connection
that fails before any answer byte is retried once on a new connection (as httpcore does).
"""

from __future__ import annotations

import asyncio
import ssl
import time

import httpx

__all__ = ["RawTransport"]

Result = tuple[int, dict[str, str], bytes]
_MAX_HEAD = 64 * 1024


class _StaleConnection(Exception):
    """A reused connection closed before answering: safe to send again."""


class _Connection(asyncio.Protocol):
    __slots__ = (
        "body", "buffer", "chunk_left", "chunked", "got_bytes", "headers", "keep_alive",
        "length", "loop", "lost", "status", "timer", "transport", "used", "waiter",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[Result] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.lost = False
        self.used = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] | None = None
        self.length = -1
        self.chunked = False
        self.chunk_left = -1
        self.body = bytearray()
        self.keep_alive = True
        self.got_bytes = False

    # -- asyncio callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        self.buffer += data
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            try:
                self._parse()
            except Exception as exc:  # a malformed answer
                self._fail(httpx.RemoteProtocolError(f"bad HTTP answer: {exc}"))

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.headers is not None and self.length == -2:  # body delimited by close
            self._done(bytes(self.buffer))
        elif not self.got_bytes:
            self._fail(_StaleConnection())
        else:
            self._fail(httpx.RemoteProtocolError("server disconnected mid-answer"))

    # -- one exchange -----------------------------------------------------------------------

    def send(self, data: bytes, timeout: float | None) -> asyncio.Future[Result]:
        assert self.transport is not None
        self._reset()
        self.waiter = waiter = self.loop.create_future()
        if timeout is not None:
            self.timer = self.loop.call_later(timeout, self._timed_out)
        self.transport.write(data)
        return waiter

    def _timed_out(self) -> None:
        self._fail(httpx.ReadTimeout("no answer within the read timeout"))
        self.close()

    def _fail(self, exc: BaseException) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.keep_alive = False

    def _done(self, body: bytes) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        waiter = self.waiter
        assert self.headers is not None
        if waiter is not None and not waiter.done():
            waiter.set_result((self.status, self.headers, body))

    def _parse(self) -> None:
        buf = self.buffer
        if self.headers is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD:
                    raise ValueError("header section too long")
                return
            lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
            del buf[: end + 4]
            version, status = lines[0].split(" ", 2)[:2]
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                value = value.strip()
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            self.status = int(status)
            self.headers = headers
            connection = headers.get("connection", "").lower()
            if version == "HTTP/1.1":
                self.keep_alive = "close" not in connection
            else:
                self.keep_alive = "keep-alive" in connection
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self.chunked = True
            elif "content-length" in headers:
                self.length = int(headers["content-length"])
            elif self.status in (204, 304):
                self.length = 0
            else:
                self.length = -2  # until the server closes
                self.keep_alive = False
        if self.chunked:
            self._parse_chunks()
        elif self.length >= 0 and len(buf) >= self.length:
            body = bytes(buf[: self.length])
            del buf[: self.length]
            self._done(body)

    def _parse_chunks(self) -> None:
        buf = self.buffer
        while True:
            if self.chunk_left < 0:  # at a size line
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buf[:end]).split(b";", 1)[0], 16)
                if size == 0:  # the last chunk, then optional trailers, then a blank line
                    stop = buf.find(b"\r\n\r\n", end)
                    if stop >= 0:
                        del buf[: stop + 4]
                        self._done(bytes(self.body))
                    return
                del buf[: end + 2]
                self.chunk_left = size
            if len(buf) < self.chunk_left + 2:
                return
            self.body += buf[: self.chunk_left]
            del buf[: self.chunk_left + 2]
            self.chunk_left = -1

    def close(self) -> None:
        self.keep_alive = False
        if self.transport is not None:
            self.transport.close()


def _split(url: str) -> tuple[str, str, int, str, str]:
    """``(scheme, host, port, netloc, target)`` of an absolute http(s) URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(f"unsupported URL {url!r}")
    slash = rest.find("/")
    netloc, target = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
    host, port = netloc, 443 if scheme == "https" else 80
    if netloc.startswith("["):
        close = netloc.find("]")
        host = netloc[1:close]
        if netloc[close + 1 : close + 2] == ":":
            port = int(netloc[close + 2 :])
    elif ":" in netloc:
        host, _, p = netloc.rpartition(":")
        port = int(p)
    return scheme, host, port, netloc, target


class RawTransport(httpx.AsyncBaseTransport):
    """A keep-alive pool of ``_Connection`` per host; see the module's notes."""

    def __init__(
        self,
        *,
        max_connections: int = 100,
        keepalive_expiry: float = 30.0,
        connect_timeout: float | None = 10.0,
        read_timeout: float | None = 60.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._limit = max_connections
        self._sem: asyncio.Semaphore | None = None
        self._expiry = keepalive_expiry
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._splits: dict[str, tuple[str, str, int, str]] = {}
        self._closed = False

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:  # only for https, and only once
            import certifi

            self._ssl = ssl.create_default_context(cafile=certifi.where())
        return self._ssl

    async def _connect(self, scheme: str, host: str, port: int) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop), host, port,
                    ssl=self._ssl_context() if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connect to {host}:{port} timed out") from exc
        except OSError as exc:
            raise httpx.ConnectError(f"{host}:{port}: {exc}") from exc
        return conn

    async def send_raw(self, method: str, url: str, headers: dict[str, str],
                       body: bytes) -> Result:
        """Send one request; ``headers`` must already hold ``Host`` when it matters."""
        if self._closed:
            raise RuntimeError("the transport is closed")
        split = url.split("/", 3)  # ["http:", "", "netloc", "path..."]
        prefix = "/".join(split[:3])
        parts = self._splits.get(prefix)
        if parts is None:
            scheme, host, port, netloc, _ = _split(prefix)
            parts = self._splits[prefix] = (scheme, host, port, netloc)
        scheme, host, port, netloc = parts
        target = "/" + split[3] if len(split) > 3 else "/"
        lines = [f"{method} {target} HTTP/1.1\r\n"]
        if "Host" not in headers and "host" not in headers:
            lines.append(f"Host: {netloc}\r\n")
        lines.extend([f"{k}: {v}\r\n" for k, v in headers.items()])
        if body and "Content-Length" not in headers:
            lines.append(f"Content-Length: {len(body)}\r\n")
        lines.append("\r\n")
        data = "".join(lines).encode()
        if body:
            data += body
        sem = self._sem
        if sem is None:
            sem = self._sem = asyncio.Semaphore(self._limit)
        key = (scheme, host, port)
        async with sem:
            for _ in range(2):
                conn, reused = self._take(key)
                if conn is None:
                    conn = await self._connect(scheme, host, port)
                try:
                    result = await conn.send(data, self._read_timeout)
                except _StaleConnection:
                    conn.close()
                    if reused:
                        continue
                    raise httpx.RemoteProtocolError("server closed the connection") from None
                except BaseException:
                    conn.close()  # cancelled or failed mid-exchange: its state is unknown
                    raise
                if conn.keep_alive and not conn.lost:
                    conn.used = time.monotonic()
                    self._idle.setdefault(key, []).append(conn)
                else:
                    conn.close()
                return result
        raise httpx.RemoteProtocolError("server closed the connection")  # pragma: no cover

    def _take(self, key: tuple[str, str, int]) -> tuple[_Connection | None, bool]:
        idle = self._idle.get(key)
        if idle:
            now = time.monotonic()
            while idle:
                conn = idle.pop()
                if not conn.lost and now - conn.used < self._expiry:
                    return conn, True
                conn.close()
        return None, False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        headers = {k.decode(): v.decode() for k, v in request.headers.raw}
        status, got, content = await self.send_raw(request.method, str(request.url),
                                                   headers, body)
        return httpx.Response(status, headers=list(got.items()), content=content,
                              request=request)

    async def aclose(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
