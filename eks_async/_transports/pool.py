"""The default transport: a keep-alive pool on asyncio's protocols, parsed by llhttp.

The default path needs little from HTTP: one host, small JSON bodies, keep-alive, TLS and
timeouts; no proxies (with one in the environment, ``open_transport`` picks the httpx
adapter), no redirects, no cookies, no compression (nothing asks for it). Connections come
from ``loop.create_connection``; every byte of an answer goes through httptools'
``HttpResponseParser`` (llhttp in its strict mode), and this module only checks the values
llhttp hands over: the framing it must refuse (RFC 9112), the answers EKS never sends, and
``Limits``.

What a connection does after an exchange:

- an answer read in full, that allows keep-alive, returns its connection to the pool;
- bytes beyond an answer, or on an idle connection, close it (the server is out of step);
- a cancelled, failed or timed-out exchange closes its connection: its state is unknown;
- a *reused* connection that the server closed before any byte of an answer is the one case
  where the request is sent again, on a new connection, and only when it is ``retry_safe``.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Mapping

import httptools

from .._exceptions import ProtocolError, TimeoutError_, TransportError
from .base import Answer, Limits, Timeouts, Transport

__all__ = ["PoolTransport"]

_monotonic = time.monotonic  # the clock of keep-alive expiry (tests replace it)

# Bytes a chunk's framing may take besides its data (size line, CRLFs) before the rest counts
# against ``Limits.max_trailer_bytes``.
_CHUNK_FRAMING = 64


class _Stale(Exception):
    """A reused connection closed before any byte of an answer."""


class _OutOfStep(Exception):
    """Bytes after the answer: the connection cannot be trusted with another request."""


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    import certifi  # the CA bundle httpx uses for verify=True

    return ssl.create_default_context(cafile=certifi.where())


class _Connection(asyncio.Protocol):
    """One connection; its exchanges run one at a time, driven by llhttp's callbacks."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limits: Limits) -> None:
        self.loop = loop
        self.limits = limits
        self.max_headers = limits.max_headers
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.lost = False
        self.used = 0.0
        self.keep_alive = True
        self.got_bytes = False
        self.head_room = limits.max_header_bytes
        self._start()

    def _start(self) -> None:
        """The state of one exchange (also after an interim 100, for the answer that follows)."""
        self.status = 0
        self.headers: dict[str, str] = {}
        self.fields = 0
        self.head_done = False
        self.chunked = False
        self.interim = False
        self.body: list[bytes] = []
        self.body_len = 0
        self.framing = 0
        self.trailer_bytes = 0

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            self.close()  # bytes no request asked for: the connection is out of step
            return
        if not self.got_bytes:
            self.got_bytes = True
            if data[0] in b"\r\n":  # llhttp would skip empty lines: not in an answer
                self._fail(ProtocolError("an empty line before the status line"))
                return
        try:
            if not self.head_done:
                room = self.head_room
                if len(data) <= room:  # the common case: a whole small answer at once
                    self.head_room = room - len(data)
                    self.parser.feed_data(data)
                else:
                    self._feed(memoryview(data))
            elif not self.chunked:
                self.parser.feed_data(data)  # more of a Content-Length body
            else:
                self._feed(memoryview(data))
        except _OutOfStep:
            self.close()  # the answer is complete; what follows it is not ours
        except ProtocolError as exc:
            self._fail(exc)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the server switched protocols"))
        except httptools.HttpParserError as exc:
            error = exc.__context__
            if isinstance(error, _OutOfStep):
                self.close()
            elif isinstance(error, ProtocolError):
                self._fail(error)
            else:
                self._fail(ProtocolError(f"malformed answer: {exc}"))

    def _feed(self, data: memoryview) -> None:
        """Feed llhttp no more than the limits allow, so nothing past them is ever held."""
        parser = self.parser
        limits = self.limits
        while data:
            if not self.head_done:
                # ``head_room`` counts every head of the exchange (interim ones included).
                room = self.head_room
                if len(data) <= room:
                    self.head_room = room - len(data)
                    parser.feed_data(data)
                    return
                if room <= 0:
                    raise ProtocolError("header section too long")
                piece, data = data[:room], data[room:]
                self.head_room = 0
                parser.feed_data(piece)
            elif self.chunked:
                # Non-data bytes of one chunk (size line, extensions, CRLFs, and after the
                # last chunk the trailer section) are bounded; llhttp's callbacks reset the
                # count at each chunk's end.
                room = limits.max_trailer_bytes + _CHUNK_FRAMING - self.framing
                if room <= 0:
                    raise ProtocolError("chunk framing or trailer section too long")
                piece, data = (data[:room], data[room:]) if len(data) > room else (data, data[:0])
                before = self.body_len
                parser.feed_data(piece)
                self.framing += len(piece) - (self.body_len - before)
            else:
                parser.feed_data(data)
                return

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost says what it means

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.keep_alive = False
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if not self.got_bytes:
            self._fail(_Stale())
        elif exc is not None:
            self._fail(TransportError(f"connection reset mid-answer: {type(exc).__name__}"))
        else:
            self._fail(ProtocolError("the server closed the connection mid-answer"))

    # --- llhttp's callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.waiter is None or self.waiter.done():
            raise _OutOfStep

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields += 1
        if self.head_done or self.fields > self.max_headers:
            self._odd_field(name, value)
            return
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1").rstrip(" \t")  # llhttp drops the leading OWS
        headers = self.headers
        if key in headers:
            headers[key] = f"{headers[key]}, {text}"
        else:
            headers[key] = text

    def _odd_field(self, name: bytes, value: bytes) -> None:
        if not self.head_done:
            raise ProtocolError("too many header fields")
        # a trailer field: bounded, then ignored
        self.trailer_bytes += len(name) + len(value) + 4
        if self.trailer_bytes > self.limits.max_trailer_bytes:
            raise ProtocolError("trailer section too long")

    def on_headers_complete(self) -> None:
        parser = self.parser
        status = parser.get_status_code()
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise ProtocolError(f"not an HTTP/1.x answer (HTTP/{version})")
        if status < 200:
            if status == 100:  # the real answer follows
                self.interim = True
                return
            raise ProtocolError(f"unrequested interim answer {status}")
        if status > 599:
            raise ProtocolError(f"status {status} out of range")
        self.status = status
        self.head_done = True
        headers = self.headers
        te = headers.get("transfer-encoding")
        if te is not None:
            # RFC 9112 6.1: chunked must be the final coding; anything else would need the
            # close to delimit the body, and a coding this client never asked for.
            if te.lower() != "chunked":
                raise ProtocolError("Transfer-Encoding other than chunked")
            self.chunked = True
        elif status != 204 and status != 304:
            length = headers.get("content-length")
            if length is None:
                raise ProtocolError("answer without Content-Length or chunked framing")
            if not (length.isascii() and length.isdigit()):  # llhttp checked it; so do we
                raise ProtocolError("malformed Content-Length")
            if int(length) > self.limits.max_body:
                raise ProtocolError("body larger than the limit")
        coding = headers.get("content-encoding")
        if coding is not None and coding.lower() not in ("identity", ""):
            raise ProtocolError("a Content-Encoding nobody asked for")
        self.keep_alive = parser.should_keep_alive()

    def on_body(self, data: bytes) -> None:
        size = self.body_len + len(data)
        if size > self.limits.max_body:
            raise ProtocolError("body larger than the limit")
        self.body_len = size
        self.body.append(data)

    def on_chunk_complete(self) -> None:
        self.framing = 0

    def on_message_complete(self) -> None:
        if self.interim:
            self._start()  # an interim 100 ended; its head still counts against head_room
            return
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        body = self.body
        content = body[0] if len(body) == 1 else b"".join(body)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result((self.status, self.headers, content))

    # --- the pool's side -------------------------------------------------------------------

    def send(self, data: bytes, timeout: float | None) -> asyncio.Future[Answer]:
        transport = self.transport
        assert transport is not None
        self._start()
        self.head_room = self.limits.max_header_bytes
        self.got_bytes = False
        self.waiter = waiter = self.loop.create_future()
        if self.lost or transport.is_closing():
            waiter.set_exception(_Stale())
            return waiter
        if timeout is not None:
            self.timer = self.loop.call_later(timeout, self._timed_out)
        transport.write(data)
        return waiter

    def _timed_out(self) -> None:
        self.timer = None
        self._fail(TimeoutError_("no complete answer within the read timeout"))

    def _fail(self, exc: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self.close()

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
        raise TransportError("unsupported URL scheme (only http and https)")
    default = 443 if scheme == "https" else 80
    host, port, p = netloc, default, ""
    if "@" in host:
        raise TransportError("credentials in the URL are not supported")
    if host.startswith("["):
        close = host.find("]")
        if close < 0:
            raise TransportError("malformed IPv6 host in the URL")
        if host[close + 1 : close + 2] == ":":
            p = host[close + 2 :]
        host = host[1:close]
    elif ":" in host:
        host, _, p = host.rpartition(":")
    if not host:
        raise TransportError("no host in the URL")
    if p:
        if not (p.isascii() and p.isdigit() and 0 < int(p) < 65536):
            raise TransportError("bad port in the URL")
        port = int(p)
    host_header = netloc[: len(netloc) - len(p) - 1] if p and port == default else netloc
    return scheme, host, port, host_header


class PoolTransport(Transport):
    """Keep-alive connections per host, at most ``max_connections`` busy at once.

    ``ssl_context`` verifies servers over https (certifi's CA bundle when ``None``);
    an idle connection is dropped after ``keepalive_expiry`` seconds.
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        keepalive_expiry: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        limits: Limits | None = None,
    ) -> None:
        self._limit = max_connections
        self._sem: asyncio.Semaphore | None = None
        self._expiry = keepalive_expiry
        self._ssl = ssl_context
        self._limits = limits or Limits()
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._busy: set[_Connection] = set()
        self._splits: dict[str, tuple[str, str, int, str]] = {}
        self._closed = False

    async def _connect(
        self, scheme: str, host: str, port: int, timeout: float | None
    ) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = scheme == "https"
        limits = self._limits
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop, limits),
                    host,
                    port,
                    ssl=(self._ssl or _default_ssl_context()) if tls else None,
                    server_hostname=host if tls else None,
                )
        except TimeoutError as exc:
            raise TimeoutError_(f"connect timeout to {host}:{port}") from exc
        except OSError as exc:  # refused, DNS, TLS (ssl.SSLError is an OSError)
            raise TransportError(f"cannot connect to {host}:{port}: {exc}") from exc
        return conn

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
        if self._closed:
            raise TransportError("the transport is closed")
        if method == "HEAD":  # its answer's framing differs; EKS has no HEAD operation
            raise TransportError("HEAD is not supported")
        pieces = url.split("/", 3)  # ["https:", "", "netloc", "path?query"]
        prefix = "/".join(pieces[:3])
        parts = self._splits.get(prefix)
        if parts is None:
            parts = _split(prefix)
            if len(self._splits) < 64:
                self._splits[prefix] = parts
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
            raise TransportError("CR or LF in a header or in the URL: refused")
        lines.append("\r\n")
        data = "\r\n".join(lines).encode()
        if body:
            data += body
        sem = self._sem
        if sem is None:
            sem = self._sem = asyncio.Semaphore(self._limit)
        if sem.locked():  # waiting for a free connection counts against the connect timeout
            try:
                async with asyncio.timeout(timeouts.connect):
                    await sem.acquire()
            except TimeoutError as exc:
                raise TimeoutError_("no free connection within the connect timeout") from exc
        else:
            await sem.acquire()
        try:
            return await self._exchange((scheme, host, port), data, timeouts, retry_safe)
        finally:
            sem.release()

    async def _exchange(
        self, key: tuple[str, str, int], data: bytes, timeouts: Timeouts, retry_safe: bool
    ) -> Answer:
        fresh_only = False
        while True:
            if self._closed:  # closed while this request waited or was in flight
                raise TransportError("the transport is closed")
            conn, reused = (None, False) if fresh_only else self._take(key)
            if conn is None:
                conn = await self._connect(*key, timeouts.connect)
            self._busy.add(conn)
            try:
                answer = await conn.send(data, timeouts.read)
            except _Stale:
                conn.close()
                if reused and retry_safe and not self._closed:
                    fresh_only = True  # once, on a new connection
                    continue
                raise TransportError("the server closed the connection without answering") from None
            except BaseException:
                conn.close()  # cancelled or failed mid-exchange: its state is unknown
                raise
            finally:
                self._busy.discard(conn)
            if conn.keep_alive and not conn.lost and not self._closed:
                conn.waiter = None
                conn.used = _monotonic()
                self._idle.setdefault(key, []).append(conn)
            else:
                conn.close()
            return answer

    def _take(self, key: tuple[str, str, int]) -> tuple[_Connection | None, bool]:
        idle = self._idle.get(key)
        if idle:
            now = _monotonic()
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
