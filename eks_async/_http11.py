"""eks_async's own HTTP/1.1 client: a keep-alive pool on asyncio's protocols.

The default path needs little from HTTP: one host, small JSON bodies, keep-alive, TLS and
timeouts; no proxies (the default path never used them: a caller who needs one passes an
``http_client``), no redirects, no cookies. This module does that much on
``loop.create_connection`` with a protocol that parses the status line, the headers and a
``Content-Length``, chunked or close-delimited body. It imports neither aiohttp nor httpx,
so neither costs the first call anything.

A reused keep-alive connection that the server closed before sending any byte of an answer
is retried once on a new connection (the request never reached the application, as httpcore
assumes too). A cancelled or failed exchange closes its connection, and so do bytes beyond
an answer or on an idle connection (the server is out of step).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time

__all__ = ["Http11Pool", "SendError"]

Answer = tuple[int, dict[str, str], bytes]
_MAX_HEAD = 64 * 1024


class SendError(Exception):
    """No HTTP answer; ``timeout`` tells a timeout from other failures."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class _Stale(Exception):
    """A reused connection closed before answering: safe to send again."""


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    import certifi  # the CA bundle httpx uses for verify=True

    return ssl.create_default_context(cafile=certifi.where())


class _Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[Answer] | None = None
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

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            self.close()  # bytes no request asked for: the connection is out of step
            return
        self.got_bytes = True
        self.buffer += data
        try:
            self._parse()
        except (ValueError, IndexError) as exc:
            self._fail(SendError(f"RemoteProtocolError: malformed answer: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.headers is not None and self.length == -2:  # delimited by the close
            self._done(bytes(self.buffer))
        elif not self.got_bytes:
            self._fail(_Stale())
        else:
            self._fail(SendError("RemoteProtocolError: server disconnected mid-answer"))

    def send(self, data: bytes, timeout: float | None) -> asyncio.Future[Answer]:
        assert self.transport is not None
        self._reset()
        self.waiter = waiter = self.loop.create_future()
        if timeout is not None:
            self.timer = self.loop.call_later(timeout, self._timed_out)
        self.transport.write(data)
        return waiter

    def _timed_out(self) -> None:
        self._fail(SendError("ReadTimeout: no answer within the read timeout", timeout=True))
        self.close()

    def _fail(self, exc: BaseException) -> None:
        self.keep_alive = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def _done(self, body: bytes) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        assert self.headers is not None
        if self.buffer:  # more than the answer: whatever it is, the connection is out of step
            self.keep_alive = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.status, self.headers, body))

    def _parse(self) -> None:
        buf = self.buffer
        while self.headers is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0 or end > _MAX_HEAD:
                if len(buf) > _MAX_HEAD:
                    raise ValueError("header section too long")
                return
            lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
            del buf[: end + 4]
            version, status = lines[0].split(" ", 2)[:2]
            if not version.startswith("HTTP/1."):
                raise ValueError(f"not HTTP/1.x: {lines[0][:40]!r}")
            self.status = int(status)
            if not 100 <= self.status < 600:
                raise ValueError(f"status {self.status}")
            if self.status < 200:  # an interim answer: the real one follows
                continue
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                value = value.strip()
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            self.headers = headers
            connection = headers.get("connection", "").lower()
            if version == "HTTP/1.1":
                self.keep_alive = "close" not in connection
            else:
                self.keep_alive = "keep-alive" in connection
            if self.status in (204, 304):  # never a body, whatever the headers say
                self.length = 0
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                self.chunked = True
            elif "content-length" in headers:
                self.length = int(headers["content-length"])
                if self.length < 0:
                    raise ValueError("negative Content-Length")
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
            if self.chunk_left < 0:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buf[:end]).split(b";", 1)[0], 16)
                if size < 0:
                    raise ValueError("negative chunk size")
                if size == 0:  # the last chunk, optional trailers, a blank line
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
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.transport.close()


def _split(prefix: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, Host header)`` of ``scheme://netloc``; the header has the port
    only when it is not the scheme's default, as httpx and botocore write it."""
    scheme, sep, netloc = prefix.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise SendError(f"UnsupportedProtocol: {prefix!r}")
    default = 443 if scheme == "https" else 80
    host, port, p = netloc, default, ""
    if "@" in host:
        raise SendError("LocalProtocolError: credentials in the URL are not supported")
    if host.startswith("["):
        close = host.find("]")
        if host[close + 1 : close + 2] == ":":
            p = host[close + 2 :]
        host = host[1:close]
    elif ":" in host:
        host, _, p = host.rpartition(":")
    if p:
        if not (p.isascii() and p.isdigit() and 0 < int(p) < 65536):
            raise SendError(f"UnsupportedProtocol: bad port in {prefix!r}")
        port = int(p)
    host_header = netloc[: len(netloc) - len(p) - 1] if p and port == default else netloc
    return scheme, host, port, host_header


class Http11Pool:
    """Keep-alive connections per host, at most ``max_connections`` busy at once."""

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
        self._busy: set[_Connection] = set()
        self._splits: dict[str, tuple[str, str, int, str]] = {}
        self._closed = False

    async def _connect(self, scheme: str, host: str, port: int) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = scheme == "https"
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop),
                    host,
                    port,
                    ssl=(self._ssl or _default_ssl_context()) if tls else None,
                    server_hostname=host if tls else None,
                )
        except TimeoutError as exc:
            raise SendError(f"ConnectTimeout: {host}:{port}", timeout=True) from exc
        except OSError as exc:  # refused, DNS, TLS (ssl.SSLError is an OSError)
            raise SendError(f"ConnectError: {host}:{port}: {exc}") from exc
        return conn

    async def send(self, method: str, url: str, headers: dict[str, str], body: bytes) -> Answer:
        """``(status, headers with lower-case names, body)``; ``SendError`` without one.

        ``url`` is sent as given; ``headers`` as given, plus Host when missing and
        Content-Length when there is a body. A CR or LF in them raises before any sending.
        """
        if self._closed:
            raise SendError("LocalProtocolError: the client is closed")
        pieces = url.split("/", 3)  # ["https:", "", "netloc", "path?query"]
        prefix = "/".join(pieces[:3])
        parts = self._splits.get(prefix)
        if parts is None:
            parts = self._splits[prefix] = _split(prefix)
        scheme, host, port, host_header = parts
        target = "/" + pieces[3] if len(pieces) > 3 else "/"
        lines = [f"{method} {target} HTTP/1.1"]
        if "Host" not in headers and not any(k.lower() == "host" for k in headers):
            lines.append(f"Host: {host_header}")
        lines.extend([f"{k}: {v}" for k, v in headers.items()])
        if body:
            lines.append(f"Content-Length: {len(body)}")
        flat = "".join(lines)  # no CR or LF of its own (memchr-fast to check)
        if "\r" in flat or "\n" in flat:
            raise SendError("LocalProtocolError: CR or LF in a header or in the URL")
        lines.append("\r\n")
        head = "\r\n".join(lines)
        data = head.encode()
        if body:
            data += body
        sem = self._sem
        if sem is None:
            sem = self._sem = asyncio.Semaphore(self._limit)
        if sem.locked():  # waiting for a free connection counts against the connect timeout
            try:
                async with asyncio.timeout(self._connect_timeout):
                    await sem.acquire()
            except TimeoutError as exc:
                raise SendError("PoolTimeout: no free connection", timeout=True) from exc
        else:
            await sem.acquire()
        try:
            return await self._exchange((scheme, host, port), data)
        finally:
            sem.release()

    async def _exchange(self, key: tuple[str, str, int], data: bytes) -> Answer:
        for _ in range(2):
            if self._closed:  # closed while this request waited or was in flight
                raise SendError("LocalProtocolError: the client is closed")
            conn, reused = self._take(key)
            if conn is None:
                conn = await self._connect(*key)
            self._busy.add(conn)
            try:
                answer = await conn.send(data, self._read_timeout)
            except _Stale:
                conn.close()
                if reused or self._closed:
                    continue
                raise SendError("RemoteProtocolError: server closed the connection") from None
            except BaseException:
                conn.close()  # cancelled or failed mid-exchange: its state is unknown
                raise
            finally:
                self._busy.discard(conn)
            if conn.keep_alive and not conn.lost and not self._closed:
                conn.used = time.monotonic()
                self._idle.setdefault(key, []).append(conn)
            else:
                conn.close()
            return answer
        raise SendError("RemoteProtocolError: server closed the connection")

    def _take(self, key: tuple[str, str, int]) -> tuple[_Connection | None, bool]:
        idle = self._idle.get(key)
        if idle:
            now = time.monotonic()
            while idle:
                conn = idle.pop()
                if conn.keep_alive and not conn.lost and now - conn.used < self._expiry:
                    return conn, True
                conn.close()
        return None, False

    async def aclose(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
        for conn in list(self._busy):
            conn.close()
        await asyncio.sleep(0)  # let the transports finish closing
