"""The default transport (``eks_async._transports.pool``) against real servers on 127.0.0.1.

The servers are plain asyncio stream handlers (some tests use blocking sockets in a thread),
so the tests see the exact bytes the transport writes and answer with exactly the bytes, the
pacing or the misbehaviour they need. Every hostile answer either parses as RFC 9112 says or
fails with one of eks_async's own errors; no test races a real timer against real work, and
the ones about timeouts only check that the timeout is what ends them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import inspect
import ipaddress
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any
from unittest import mock

import botocore.auth
import botocore.credentials
import pytest
from botocore.awsrequest import AWSRequest

from eks_async import EKSClient
from eks_async._exceptions import ProtocolError, TimeoutError_, TransportError
from eks_async._transports.base import Answer, Limits, Timeouts
from eks_async._transports.pool import PoolTransport, _Connection

# What the server does with a request: the bytes to answer with, or None to never answer
# (it then waits for the client to hang up). It may be a coroutine function.
Respond = Callable[[bytes], "bytes | Awaitable[bytes | None] | None"]
# A server that writes the answer itself, as it likes (drips, streams, resets).
Stream = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

TIMEOUTS = Timeouts(connect=5, read=5)  # a broken timeout fails a test instead of stalling it


def reply(
    body: bytes = b"ok",
    *,
    status: str = "200 OK",
    headers: list[tuple[str, str]] | None = None,
    length: bool = True,
    version: str = "HTTP/1.1",
) -> bytes:
    lines = [f"{version} {status}"]
    lines += [f"{k}: {v}" for k, v in headers or []]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def send(
    pool: PoolTransport,
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    timeouts: Timeouts = TIMEOUTS,
    retry_safe: bool = True,
) -> Answer:
    return await pool.send(
        method, url, headers or {}, body, timeouts=timeouts, retry_safe=retry_safe
    )


class Peer:
    """One connection as the server saw it."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.requests: list[bytes] = []
        self.eof = False  # the client closed its end
        self.written = 0
        self.closed = asyncio.Event()


class RawServer:
    """An HTTP/1.1 keep-alive server recording each raw request and each connection."""

    def __init__(
        self,
        respond: Respond | None = None,
        *,
        stream: Stream | None = None,
        greeting: bytes = b"",
        close_after_reply: bool = False,
        trickle: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.respond: Respond = respond or (lambda raw: reply())
        self.stream = stream
        self.greeting = greeting  # written as soon as a connection opens
        self.close_after_reply = close_after_reply
        self.trickle = trickle  # write the answer one byte at a time
        self.ssl_context = ssl_context
        self.peers: list[Peer] = []
        self.open_connections = 0
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def requests(self) -> list[bytes]:
        return [r for p in self.peers for r in p.requests]

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", 0, ssl=self.ssl_context
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        scheme = "https" if self.ssl_context else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for writer in self._writers:  # ends the handlers still waiting on a connection
            writer.close()
        await asyncio.wait_for(asyncio.gather(*self._handlers, return_exceptions=True), 5)
        await self._server.wait_closed()

    async def _read(self, reader: asyncio.StreamReader, peer: Peer, n: int = -1) -> bytes:
        data = await (reader.read(65536) if n < 0 else reader.readexactly(n))
        peer.received += data
        return data

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        peer = Peer()
        self.peers.append(peer)
        self.open_connections += 1
        try:
            if self.greeting:
                writer.write(self.greeting)
            buffered = b""
            while True:
                while b"\r\n\r\n" not in buffered:
                    data = await self._read(reader, peer)
                    if not data:
                        peer.eof = True
                        return
                    buffered += data
                head, _, buffered = buffered.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(buffered) < length:
                    buffered += await self._read(reader, peer, length - len(buffered))
                raw, buffered = head + b"\r\n\r\n" + buffered[:length], buffered[length:]
                peer.requests.append(raw)
                if self.stream is not None:
                    await self.stream(raw, reader, writer)
                    return
                answer = self.respond(raw)
                if inspect.isawaitable(answer):
                    answer = await answer
                if answer is None:
                    while await self._read(reader, peer):  # until the client hangs up
                        pass
                    peer.eof = True
                    return
                assert isinstance(answer, bytes)
                if self.trickle:
                    writer.transport.set_write_buffer_limits(0)
                    for i in range(len(answer)):
                        writer.write(answer[i : i + 1])
                        await writer.drain()
                        await asyncio.sleep(0)
                        await asyncio.sleep(0)
                else:
                    writer.write(answer)
                    await writer.drain()
                peer.written += len(answer)
                if self.close_after_reply:
                    return
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            peer.eof = True
        finally:
            self.open_connections -= 1
            self._writers.discard(writer)
            self._handlers.discard(task)
            writer.close()
            peer.closed.set()


async def eventually(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def until_client_hangs_up(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass


@pytest.fixture
async def pool() -> AsyncIterator[PoolTransport]:
    p = PoolTransport()
    yield p
    await p.aclose()


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def unanswered_port() -> Iterator[int]:
    """A port whose listener never accepts and whose queue is full: new SYNs are dropped."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        fillers = [socket.socket() for _ in range(2)]
        try:
            for s in fillers:
                s.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    s.connect(("127.0.0.1", port))
            time.sleep(0.02)  # let the fillers complete their handshakes
            yield port
        finally:
            for s in fillers:
                s.close()


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST instead of a FIN (SO_LINGER with a zero timeout)."""
    sock = writer.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# --- what goes on the wire ---------------------------------------------------------------


TARGET = "/clusters/a%2Fb/x?k=a%20b&k=c"
GIVEN = {
    "X-Amz-Date": "20240101T000000Z",
    "x-amz-security-token": "tok/en+=",
    "Content-Type": "application/json",
    "authorization": "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/eks/aws4_request",
    "X-MiXeD-CaSe": "Value With  Spaces",
}


@pytest.mark.parametrize(
    ("method", "body"),
    [("GET", b""), ("DELETE", b""), ("POST", b'{"name":"c1"}'), ("PUT", b""), ("PATCH", b"{}")],
)
async def test_request_on_the_wire_is_exactly_what_was_given(
    pool: PoolTransport, method: str, body: bytes
) -> None:
    async with RawServer() as server:
        status, _, content = await send(
            pool, server.url + TARGET, method=method, headers=GIVEN, body=body
        )
    assert (status, content) == (200, b"ok")
    [raw] = server.requests
    expected = f"{method} {TARGET} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
    expected += "".join(f"{k}: {v}\r\n" for k, v in GIVEN.items())
    if body:
        expected += f"Content-Length: {len(body)}\r\n"
    assert raw == expected.encode() + b"\r\n" + body
    # nothing else: no User-Agent, Accept, Accept-Encoding or Connection of the pool's own
    assert server.peers[0].received == raw


async def test_a_given_host_is_sent_as_given_in_its_place(pool: PoolTransport) -> None:
    async with RawServer() as server:
        for name in ("Host", "host"):
            headers = {"X-First": "1", name: "eks.example.test", "X-Last": "2"}
            await send(pool, server.url + "/", headers=headers)
    for raw, name in zip(server.requests, ("Host", "host"), strict=True):
        lines = ["GET / HTTP/1.1", "X-First: 1", f"{name}: eks.example.test", "X-Last: 2"]
        assert raw == "\r\n".join([*lines, "", ""]).encode()


@pytest.mark.parametrize(
    ("url", "host", "dialled"),
    [
        ("http://localhost/x", "localhost", ("http", "localhost", 80)),
        ("http://localhost:80/x", "localhost", ("http", "localhost", 80)),
        ("http://localhost:8080/x", "localhost:8080", ("http", "localhost", 8080)),
        ("http://[::1]:80/x", "[::1]", ("http", "::1", 80)),
        ("http://[::1]:81/x", "[::1]:81", ("http", "::1", 81)),
        ("https://eks.example.test/x", "eks.example.test", ("https", "eks.example.test", 443)),
        ("https://eks.example.test:443/x", "eks.example.test", ("https", "eks.example.test", 443)),
        ("https://eks.example.test:80/x", "eks.example.test:80", ("https", "eks.example.test", 80)),
    ],
)
async def test_host_derived_from_the_url_has_the_port_only_when_not_the_default(
    url: str, host: str, dialled: tuple[str, str, int]
) -> None:
    pool = PoolTransport()
    calls: list[tuple[str, str, int]] = []
    connect = pool._connect

    async with RawServer() as server:

        async def redirected(scheme: str, h: str, port: int, timeout: float | None) -> Any:
            calls.append((scheme, h, port))  # dial our server whatever the URL says
            return await connect("http", "127.0.0.1", server.port, timeout)

        with mock.patch.object(pool, "_connect", redirected):
            await send(pool, url)
        await pool.aclose()
    [raw] = server.requests
    assert raw == f"GET /x HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    assert calls == [dialled]


async def test_header_injection_is_refused_before_anything_is_sent(pool: PoolTransport) -> None:
    async with RawServer() as server:
        for headers, target in (
            ({"X-Evil": "a\r\nInjected: 1"}, "/"),
            ({"X-Evil\r\nInjected": "1"}, "/"),
            ({"X-Evil": "a\nInjected: 1"}, "/"),
            ({"X-Evil": "a\rInjected: 1"}, "/"),
            ({}, "/x\r\nInjected: 1"),
        ):
            with pytest.raises(TransportError, match="CR or LF") as info:
                await send(pool, server.url + target, headers=headers)
            assert type(info.value) is TransportError
        assert (await send(pool, server.url + "/"))[0] == 200
    [raw] = server.requests
    assert b"Injected" not in raw


async def test_unsupported_url_or_method_is_a_transport_error(pool: PoolTransport) -> None:
    for url in ("ftp://h/x", "http://user:pw@127.0.0.1/x", "http://127.0.0.1:notaport/x",
                "http://127.0.0.1:0/x", "http:///x"):
        with pytest.raises(TransportError) as info:
            await send(pool, url)
        assert type(info.value) is TransportError
        assert "pw" not in str(info.value)  # no secret from the URL in the message
    with pytest.raises(TransportError, match="HEAD"):
        await send(pool, "http://127.0.0.1:1/", method="HEAD")


# --- answers -----------------------------------------------------------------------------


async def test_content_length_answer_headers_lowercased_and_repeats_joined(
    pool: PoolTransport,
) -> None:
    answer = reply(
        b'{"cluster":{}}',
        headers=[
            ("X-Amzn-RequestId", "req-1"),
            ("Set-Cookie", "a=1"),
            ("set-cookie", "b=2"),
            ("SET-COOKIE", "c=3"),
            ("Content-Type", "application/json"),
            ("X-Padded", "  spaced  value \t "),
            ("X-Obs-Text", "caf\xe9"),
        ],
    )
    answer = answer.replace("café".encode(), b"caf\xe9")  # one obs-text byte, not UTF-8
    async with RawServer(lambda raw: answer) as server:
        status, headers, body = await send(pool, server.url + "/")
    assert status == 200
    assert body == b'{"cluster":{}}'
    assert headers == {
        "x-amzn-requestid": "req-1",
        "set-cookie": "a=1, b=2, c=3",
        "content-type": "application/json",
        "x-padded": "spaced  value",
        "x-obs-text": "café",  # obs-text is allowed, and read as Latin-1
        "content-length": "14",
    }


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Amzn-RequestId: r\r\n\r\n"
    b"5;name=value\r\nhello\r\n"
    b"1\r\n \r\n"
    b"A\r\n0123456789\r\n"
    b"0;last=1\r\nX-Checksum: abc\r\nX-Other: d\r\n\r\n"
)
INTERIM = (
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 100 Continue\r\nX-Ignored: yes\r\n\r\n"
    + reply(b"final", headers=[("X-Final", "yes")])
)
LENIENT_BUT_VALID = (  # OWS around values is part of the grammar (RFC 9110 5.5)
    b"HTTP/1.1 200 \r\nContent-Length: \t 5 \r\nContent-Encoding: identity\r\n\r\nhello"
)


@pytest.mark.parametrize("trickle", [False, True], ids=["whole", "byte-by-byte"])
@pytest.mark.parametrize(
    ("answer", "expected_headers", "expected_body"),
    [
        (reply(b"plain body"), {"content-length": "10"}, b"plain body"),
        (CHUNKED, {"transfer-encoding": "chunked", "x-amzn-requestid": "r"}, b"hello 0123456789"),
        (INTERIM, {"x-final": "yes", "content-length": "5"}, b"final"),
        (reply(b"", length=True), {"content-length": "0"}, b""),
        (LENIENT_BUT_VALID, {"content-length": "5", "content-encoding": "identity"}, b"hello"),
    ],
    ids=["content-length", "chunked", "100-continue", "empty", "ows"],
)
async def test_answer_bodies(
    pool: PoolTransport,
    monkeypatch: pytest.MonkeyPatch,
    trickle: bool,
    answer: bytes,
    expected_headers: dict[str, str],
    expected_body: bytes,
) -> None:
    pieces: list[int] = []
    received = _Connection.data_received

    def spy(self: _Connection, data: bytes) -> None:
        pieces.append(len(data))
        received(self, data)

    monkeypatch.setattr(_Connection, "data_received", spy)
    async with RawServer(lambda raw: answer, trickle=trickle) as server:
        status, headers, body = await send(pool, server.url + "/")
        assert (status, headers, body) == (200, expected_headers, expected_body)
        if trickle:  # the answer really came in tiny pieces
            assert len(pieces) > len(answer) // 2
            assert max(pieces) <= 4
        # The next answer on the connection is read whole: nothing of the first is left
        # over to be taken for the second.
        server.respond = lambda raw: reply(b"second")
        server.trickle = False
        status, _, body = await send(pool, server.url + "/2")
        assert (status, body) == (200, b"second")
    assert len(server.peers) == 1


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
@pytest.mark.parametrize("length", [False, True], ids=["no-length", "with-length"])
async def test_204_and_304_have_no_body(pool: PoolTransport, status: str, length: bool) -> None:
    # A 304 may carry the Content-Length of the representation it stands for: still no body.
    head = f"HTTP/1.1 {status}\r\nETag: x\r\n" + ("Content-Length: 7\r\n" if length else "")
    answers = iter([head.encode() + b"\r\n", reply(b"next")])
    async with RawServer(lambda raw: next(answers)) as server:
        code, headers, body = await send(pool, server.url + "/")
        assert (code, body) == (int(status[:3]), b"")
        assert headers["etag"] == "x"
        code, _, body = await send(pool, server.url + "/")
        assert (code, body) == (200, b"next")
    assert len(server.peers) == 1  # the connection stayed usable


async def test_http10_answer_without_keep_alive_is_not_reused(pool: PoolTransport) -> None:
    answers = iter(
        [
            reply(b"old", version="HTTP/1.0"),
            reply(b"ka", version="HTTP/1.0", headers=[("Connection", "keep-alive")]),
            reply(b"again"),
        ]
    )
    async with RawServer(lambda raw: next(answers)) as server:
        assert (await send(pool, server.url + "/"))[2] == b"old"
        assert (await send(pool, server.url + "/"))[2] == b"ka"
        assert (await send(pool, server.url + "/"))[2] == b"again"
        await eventually(lambda: server.peers[0].eof)
    assert [len(p.requests) for p in server.peers] == [1, 2]


# --- keep-alive --------------------------------------------------------------------------


async def test_fifty_sequential_requests_use_one_connection(pool: PoolTransport) -> None:
    async with RawServer(lambda raw: reply(raw.split(b" ")[1])) as server:
        for i in range(50):
            status, _, body = await send(pool, f"{server.url}/{i}")
            assert (status, body) == (200, f"/{i}".encode())
    assert len(server.peers) == 1
    assert len(server.peers[0].requests) == 50


async def test_connection_close_answer_is_not_reused(pool: PoolTransport) -> None:
    # The server keeps its end open: only the client's reading of the header can tell.
    close = reply(b"bye", headers=[("Connection", "Close")])
    answers = iter([close, reply(b"fresh")])
    async with RawServer(lambda raw: next(answers)) as server:
        assert (await send(pool, server.url + "/"))[2] == b"bye"
        assert (await send(pool, server.url + "/"))[2] == b"fresh"
        await eventually(lambda: server.peers[0].eof)  # and the client closed its end
    assert [len(p.requests) for p in server.peers] == [1, 1]


async def test_idle_connection_past_keepalive_expiry_is_not_reused() -> None:
    now = [1000.0]
    pool = PoolTransport(keepalive_expiry=30)
    with mock.patch("eks_async._transports.pool._monotonic", lambda: now[0]):
        async with RawServer() as server:
            await send(pool, server.url + "/")
            now[0] += 29
            await send(pool, server.url + "/")  # within the expiry: reused
            assert len(server.peers) == 1
            now[0] += 30
            await send(pool, server.url + "/")
            assert len(server.peers) == 2
            await eventually(lambda: server.peers[0].eof)  # the expired one was closed
            assert [len(p.requests) for p in server.peers] == [2, 1]
            await pool.aclose()


class ThreadedServer:
    """Blocking sockets in a thread, so that a test can close a connection on the server side
    while the event loop (and so the pool) has not yet noticed.

    ``plan[i]`` says what to do with the i-th connection: ``"answer-close"`` answers its
    first request and closes it; ``"answer-reset"`` answers and resets it; ``"drop"`` reads
    one request and closes without answering.
    """

    def __init__(self, plan: list[str]) -> None:
        self.plan = plan
        self.received: list[bytearray] = [bytearray() for _ in plan]
        self.done = [threading.Event() for _ in plan]
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.settimeout(0.02)
        self.stop = threading.Event()
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with self.listener:
            for i, action in enumerate(self.plan):
                while True:
                    try:
                        conn, _ = self.listener.accept()
                        break
                    except TimeoutError:
                        if self.stop.is_set():
                            return
                with conn:
                    conn.settimeout(5)
                    while b"\r\n\r\n" not in self.received[i]:
                        data = conn.recv(65536)
                        if not data:
                            break
                        self.received[i] += data
                    if action.startswith("answer"):
                        conn.sendall(reply(b"first"))
                    if action.endswith("reset"):
                        conn.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                # the socket is closed here: whatever comes later is refused by the kernel
                self.done[i].set()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive()


async def stale_connection(pool: PoolTransport, server: ThreadedServer) -> None:
    """One exchange, then block the loop until the server has closed that connection: the
    pool cannot have seen the close, so it takes that connection for the next request."""
    assert (await send(pool, server.url + "/1"))[2] == b"first"
    assert server.done[0].wait(5)
    time.sleep(0.05)


@pytest.mark.parametrize("close", ["answer-close", "answer-reset"])
async def test_reused_connection_closed_while_idle_is_retried_once_on_a_new_one(
    pool: PoolTransport, monkeypatch: pytest.MonkeyPatch, close: str
) -> None:
    sends: list[_Connection] = []
    original = _Connection.send

    def spy(self: _Connection, data: bytes, timeout: float | None) -> Any:
        sends.append(self)
        return original(self, data, timeout)

    monkeypatch.setattr(_Connection, "send", spy)
    server = ThreadedServer([close, "answer-close"])
    try:
        await stale_connection(pool, server)
        status, _, body = await send(pool, server.url + "/2", method="PUT", body=b"{}")
        assert (status, body) == (200, b"first")
    finally:
        server.close()
    first, retry = sends[0], sends[2]
    assert sends == [first, first, retry] and retry is not first  # stale one, then a new one
    # The application got the second request exactly once, on the new connection.
    assert bytes(server.received[0]).startswith(b"GET /1 ")
    assert b"PUT" not in server.received[0]
    assert bytes(server.received[1]).startswith(b"PUT /2 ")
    assert not pool._busy


async def test_a_request_not_safe_to_repeat_is_not_sent_again(pool: PoolTransport) -> None:
    # A POST without an idempotency token: the retry layer decides, and counts the attempt.
    server = ThreadedServer(["answer-close", "answer-close"])
    try:
        await stale_connection(pool, server)
        with pytest.raises(TransportError, match="without answering") as info:
            await send(pool, server.url + "/2", method="POST", body=b"{}", retry_safe=False)
        assert type(info.value) is TransportError
    finally:
        server.close()
    assert not server.received[1]  # no second connection was made
    assert not pool._busy and not any(pool._idle.values())


async def test_a_new_connection_closed_before_answering_is_not_retried(
    pool: PoolTransport,
) -> None:
    # After a stale reused connection the request goes to a new one; if that one too closes
    # without an answer, the request may have reached the application: not sent again.
    server = ThreadedServer(["answer-close", "drop", "drop"])
    try:
        await stale_connection(pool, server)
        with pytest.raises(TransportError, match="without answering") as info:
            await send(pool, server.url + "/2", method="POST", body=b"{}")
        assert type(info.value) is TransportError
        assert server.done[1].wait(5)
    finally:
        server.close()
    assert bytes(server.received[1]).startswith(b"POST /2 ")
    assert not server.received[2]  # no third connection was made
    assert not pool._busy and not any(pool._idle.values())


async def test_fresh_connection_closed_without_an_answer_is_not_retried(
    pool: PoolTransport,
) -> None:
    async with RawServer(lambda raw: b"", close_after_reply=True) as server:
        with pytest.raises(TransportError, match="without answering") as info:
            await send(pool, server.url + "/", method="PUT", body=b"{}")
        assert type(info.value) is TransportError
    assert len(server.requests) == 1  # not sent again


PARTIALS = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10,
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Le",
    b"H",
]


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize("partial", PARTIALS)
@pytest.mark.parametrize("reused", [False, True], ids=["fresh", "reused"])
async def test_connection_lost_mid_answer_is_an_error_never_a_short_answer(
    pool: PoolTransport,
    monkeypatch: pytest.MonkeyPatch,
    partial: bytes,
    reused: bool,
    how: str,
) -> None:
    # Even on a reused connection, and a request safe to repeat: an answer had begun, so
    # the request reached the server and is not sent again.
    arrived = asyncio.Event()
    received = _Connection.data_received

    def spy(self: _Connection, data: bytes) -> None:
        arrived.set()
        received(self, data)

    monkeypatch.setattr(_Connection, "data_received", spy)

    async def cut(raw: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        arrived.clear()
        writer.write(partial)
        await writer.drain()
        if how == "reset":
            await arrived.wait()  # the client has the partial answer: now the RST
            reset(writer)

    async with RawServer(stream=cut) as server:
        if reused:
            server.stream = None
            server.respond = lambda raw: reply(b"warm-up")
            await send(pool, server.url + "/")
            server.stream = cut
        with pytest.raises(TransportError) as info:
            await send(pool, server.url + "/", method="PUT", body=b"{}", retry_safe=True)
        assert not isinstance(info.value, TimeoutError_)
        if how == "close":
            assert isinstance(info.value, ProtocolError)
        assert not pool._busy and not any(pool._idle.values())
        assert len(server.peers) == 1
        assert [r.split(b" ")[0] for r in server.requests] == [b"GET"] * reused + [b"PUT"]
        server.stream, server.respond = None, (lambda raw: reply())
        assert (await send(pool, server.url + "/"))[2] == b"ok"
    assert len(server.peers) == 2


async def test_bytes_after_the_answer_make_the_connection_unusable(pool: PoolTransport) -> None:
    # A server that answers more than it should is out of step: its extra bytes must not be
    # taken for the answer to the next request.
    for extra in (reply(b"bogus"), b"X", b"HTTP/1.1 200 OK\r\n"):
        answers = iter([reply(b"one") + extra, reply(b"two")])
        async with RawServer(lambda raw, answers=answers: next(answers)) as server:
            assert (await send(pool, server.url + "/"))[2] == b"one"
            await server.peers[0].closed.wait()  # the client hung up on it
            assert (await send(pool, server.url + "/"))[2] == b"two"
        assert len(server.peers) == 2


@pytest.mark.parametrize(
    "unsolicited", [reply(b"unsolicited"), b"H", b"\r\n"], ids=["answer", "byte", "crlf"]
)
async def test_unsolicited_bytes_on_an_idle_connection_make_it_unusable(
    pool: PoolTransport, unsolicited: bytes
) -> None:
    async with RawServer() as server:
        await send(pool, server.url + "/")
        for writer in server._writers:
            writer.write(unsolicited)
        await server.peers[0].closed.wait()  # the client hung up on it
        server.respond = lambda raw: reply(b"real")
        assert (await send(pool, server.url + "/"))[2] == b"real"
    assert len(server.peers) == 2


async def test_bytes_before_the_request_on_a_fresh_connection_fail_the_exchange(
    pool: PoolTransport,
) -> None:
    async with RawServer(lambda raw: reply(b"real"), greeting=b"garbage\r\n\r\n") as server:
        with pytest.raises(TransportError) as info:
            await send(pool, server.url + "/")
        assert not isinstance(info.value, TimeoutError_)
        await server.peers[0].closed.wait()
        server.greeting = b""
        assert (await send(pool, server.url + "/"))[2] == b"real"


async def test_a_cancelled_exchange_on_a_reused_connection_never_answers_the_next(
    pool: PoolTransport,
) -> None:
    # The answer to a cancelled request may still come: it must not become the answer to
    # the next request, which would otherwise take the same keep-alive connection.
    release = asyncio.Event()
    arrived = asyncio.Event()

    async def respond(raw: bytes) -> bytes:
        path = raw.split(b" ")[1]
        if path == b"/slow":
            arrived.set()
            await release.wait()
            return reply(b"answer to /slow")
        return reply(b"answer to " + path)

    async with RawServer(respond) as server:
        assert (await send(pool, server.url + "/warm"))[2] == b"answer to /warm"
        task = asyncio.create_task(send(pool, server.url + "/slow"))
        await arrived.wait()
        assert len(server.peers) == 1  # /slow went over the reused connection
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()  # the server answers /slow after all
        for i in range(3):
            _, _, body = await send(pool, f"{server.url}/next{i}")
            assert body == f"answer to /next{i}".encode()
        await server.peers[0].closed.wait()
    assert len(server.peers) == 2


# --- errors ------------------------------------------------------------------------------


async def test_refused_connection_is_a_transport_error_not_a_timeout(pool: PoolTransport) -> None:
    with pytest.raises(TransportError, match="cannot connect") as info:
        await send(pool, f"http://127.0.0.1:{unused_port()}/")
    assert type(info.value) is TransportError
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    assert not pool._busy


async def test_connect_timeout() -> None:
    pool = PoolTransport()
    with unanswered_port() as port, pytest.raises(TimeoutError_, match="connect timeout"):
        await send(pool, f"http://127.0.0.1:{port}/", timeouts=Timeouts(connect=0.2))
    assert not pool._busy
    await pool.aclose()


async def test_read_timeout_on_a_server_that_never_answers(pool: PoolTransport) -> None:
    async with RawServer(lambda raw: None) as server:
        with pytest.raises(TimeoutError_, match="read timeout"):
            await send(pool, server.url + "/", timeouts=Timeouts(read=0.2))
        await server.peers[0].closed.wait()  # the connection was closed
        assert not pool._busy and not any(pool._idle.values())


@pytest.mark.parametrize("where", ["head", "body", "chunks"])
async def test_read_timeout_is_a_deadline_a_dripping_server_cannot_stretch(
    pool: PoolTransport, where: str
) -> None:
    # The server drips a byte every few milliseconds for ever: an idle timer would never
    # fire, only a deadline for the whole answer ends the exchange. However slow the machine,
    # the answer never completes, so nothing but the timeout can end the test.
    head = {
        "head": b"HTTP/1.1 200 OK\r\nX-Drip: ",
        "body": b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n",
        "chunks": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    }[where]
    drop = b"1\r\nx\r\n" if where == "chunks" else b"x"

    async def drip(raw: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head)
        with contextlib.suppress(ConnectionError):
            while not writer.transport.is_closing():
                writer.write(drop)
                await writer.drain()
                await asyncio.sleep(0.002)

    async with RawServer(stream=drip) as server:
        # The outer bound only turns a stretched deadline into a failure instead of a hang.
        with pytest.raises(TimeoutError_, match="read timeout"):
            async with asyncio.timeout(60):
                await send(pool, server.url + "/", timeouts=Timeouts(read=0.3))
        await server.peers[0].closed.wait()


# --- hostile answers ---------------------------------------------------------------------

H = b"HTTP/1.1 200 OK\r\n"
HOSTILE = {
    # framing conflicts (RFC 9112 6.1-6.3): smuggling material
    "cl-and-te": H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "te-and-cl": H + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "two-cls": H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "same-cl-twice": H + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    "cl-list": H + b"Content-Length: 5, 5\r\n\r\nhello",
    "te-xchunked": H + b"Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "te-chunked-gzip": H + b"Transfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "te-gzip-chunked": H + b"Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "te-twice": H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n",
    "te-identity": H + b"Transfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello",
    "close-delimited": H + b"Content-Type: text/plain\r\n\r\nuntil the close",
    "http10-close-delimited": b"HTTP/1.0 200 OK\r\n\r\nuntil the close",
    # header syntax
    "obs-fold-space": H + b"X-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",
    "obs-fold-tab": H + b"X-A: a\r\n\tTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
    "space-in-name": H + b"Bad Name: a\r\nContent-Length: 0\r\n\r\n",
    "space-before-colon": H + b"Content-Length : 0\r\n\r\n",
    "leading-space-line": H + b" X: a\r\nContent-Length: 0\r\n\r\n",
    "bare-cr": H + b"X: a\rb\r\nContent-Length: 0\r\n\r\n",
    "bare-lf": H + b"X: a\nContent-Length: 0\r\n\r\n",
    "nul-in-value": H + b"X: a\x00b\r\nContent-Length: 0\r\n\r\n",
    "no-colon": H + b"Oops\r\nContent-Length: 0\r\n\r\n",
    # lenient numbers
    "cl-plus": H + b"Content-Length: +5\r\n\r\nhello",
    "cl-hex": H + b"Content-Length: 0x5\r\n\r\nhello",
    "cl-decimal": H + b"Content-Length: 5.0\r\n\r\nhello",
    "cl-negative": H + b"Content-Length: -1\r\n\r\n",
    "cl-empty": H + b"Content-Length:\r\n\r\n",
    "cl-word": H + b"Content-Length: ten\r\n\r\n",
    "cl-overflow": H + b"Content-Length: 99999999999999999999999\r\n\r\n",
    "chunk-junk": H + b"Transfer-Encoding: chunked\r\n\r\n5 junk\r\nhello\r\n0\r\n\r\n",
    "chunk-hex-prefix": H + b"Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
    "chunk-plus": H + b"Transfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n",
    "chunk-negative": H + b"Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
    "chunk-word": H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
    "chunk-overflow": H + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello",
    "chunk-too-long": H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n",
    "chunk-bare-lf": H + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n",
    # status lines
    "not-http": b"NOT HTTP AT ALL\r\n\r\n",
    "http2": b"HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n",
    "http2.0": b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    "http0.9": b"HTTP/0.9 200 OK\r\nContent-Length: 0\r\n\r\n",
    "http1.2": b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n",
    "status-word": b"HTTP/1.1 abc OK\r\n\r\n",
    "status-099": b"HTTP/1.1 099 X\r\nContent-Length: 0\r\n\r\n",
    "status-600": b"HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n",
    "status-4-digits": b"HTTP/1.1 2000 X\r\nContent-Length: 0\r\n\r\n",
    "no-status": b"HTTP/1.1\r\n\r\n",
    "blank": b"\r\n\r\n",
    "bare-lf-status": b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    # interim answers nobody asked for (we never send Expect or Upgrade)
    "101": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    "101-bare": b"HTTP/1.1 101 Switching Protocols\r\n\r\n" + reply(),
    "102": b"HTTP/1.1 102 Processing\r\n\r\n" + reply(),
    "103": b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n" + reply(),
    "100-then-103": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n" + reply(),
    # codings nobody asked for (no Accept-Encoding is ever sent)
    "gzip": H + b"Content-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello",
    "br": H + b"Content-Encoding: br\r\nContent-Length: 5\r\n\r\nhello",
    "gzip-identity": H + b"Content-Encoding: identity\r\nContent-Encoding: gzip\r\n"
    b"Content-Length: 5\r\n\r\nhello",
}


@pytest.mark.parametrize("trickle", [False, True], ids=["whole", "byte-by-byte"])
@pytest.mark.parametrize("answer", list(HOSTILE.values()), ids=list(HOSTILE))
async def test_hostile_answer_is_a_protocol_error(
    pool: PoolTransport, answer: bytes, trickle: bool
) -> None:
    # The server keeps the connection open: the error comes from reading, not from a close
    # or the timeout.
    async with RawServer(lambda raw: answer, trickle=trickle) as server:
        with pytest.raises(ProtocolError):
            await send(pool, server.url + "/", timeouts=Timeouts(read=30))
        await server.peers[0].closed.wait()  # the connection was closed
        assert not pool._busy and not any(pool._idle.values())


def limited(**limits: int) -> PoolTransport:
    return PoolTransport(limits=Limits(**limits))


@pytest.mark.parametrize("ended", [True, False], ids=["ended", "endless"])
@pytest.mark.parametrize("where", ["status", "header", "many-lines", "after-100"])
async def test_over_long_header_section_is_a_protocol_error(ended: bool, where: str) -> None:
    big = b"a" * 100_000
    head = {
        "status": b"HTTP/1.1 200 " + big + b"\r\n",
        "header": H + b"X-Big: " + big + b"\r\n",
        "many-lines": H + b"".join(b"X-%d: 1234567890\r\n" % (i % 50) for i in range(5000)),
        "after-100": b"HTTP/1.1 100 Continue\r\n" + b"X: y\r\n" * 11_000 + b"\r\n" + H,
    }[where]
    answer = head + (b"Content-Length: 0\r\n\r\n" if ended else b"")
    pool = limited(max_header_bytes=64 * 1024, max_headers=100_000)
    async with RawServer(lambda raw: answer) as server:
        with pytest.raises(ProtocolError, match="header section too long"):
            await send(pool, server.url + "/", timeouts=Timeouts(read=30))
        await server.peers[0].closed.wait()
    await pool.aclose()


async def test_header_count_limit() -> None:
    pool = limited(max_headers=10)
    fields = [(f"X-{i}", "v") for i in range(9)]  # and Content-Length: 10 in all
    async with RawServer(lambda raw: reply(headers=fields)) as server:
        assert (await send(pool, server.url + "/"))[0] == 200
        server.respond = lambda raw: reply(headers=[*fields, ("X-One-Too-Many", "v")])
        with pytest.raises(ProtocolError, match="too many header fields"):
            await send(pool, server.url + "/")
    await pool.aclose()


async def test_a_body_advertised_beyond_the_limit_fails_before_it_is_read() -> None:
    # 1 GB promised; the server sends only the head, then waits for the client to hang up.
    # The client must refuse on the head alone, not read (or wait for) the body.
    async def promise(
        raw: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.write(H + b"Content-Length: 1073741824\r\n\r\n" + b"x" * 1000)
        await until_client_hangs_up(reader)

    pool = limited(max_body=1024 * 1024)
    async with RawServer(stream=promise) as server:
        with pytest.raises(ProtocolError, match="body larger than the limit"):
            await send(pool, server.url + "/", timeouts=Timeouts(read=30))
        await server.peers[0].closed.wait()
    await pool.aclose()


async def test_a_chunked_body_beyond_the_limit_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    # A 1 GB body streamed as fast as the client reads it: the exchange fails once the limit
    # is passed, the client never holds more than the limit, and the server cannot write
    # more than the limit plus what the sockets buffer.
    limit = 256 * 1024
    held: list[int] = []
    on_body = _Connection.on_body

    def spy(self: _Connection, data: bytes) -> None:
        try:
            on_body(self, data)
        finally:
            held.append(self.body_len)

    monkeypatch.setattr(_Connection, "on_body", spy)
    written = [0]

    async def flood(raw: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(H + b"Transfer-Encoding: chunked\r\n\r\n")
        piece = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
        with contextlib.suppress(ConnectionError):
            while written[0] < 1 << 30 and not writer.transport.is_closing():
                writer.write(piece)
                await writer.drain()
                written[0] += len(piece)

    pool = limited(max_body=limit)
    async with RawServer(stream=flood) as server:
        with pytest.raises(ProtocolError, match="body larger than the limit"):
            await send(pool, server.url + "/", timeouts=Timeouts(read=60))
        await server.peers[0].closed.wait()
    await pool.aclose()
    assert limit - 0x4000 <= max(held) <= limit
    assert written[0] < 64 * 1024 * 1024  # bounded by socket buffers, not by the 1 GB


@pytest.mark.parametrize("shape", ["one-huge-field", "many-fields", "small-in-one-read"])
async def test_trailer_section_beyond_the_limit_is_a_protocol_error(shape: str) -> None:
    trailer = {
        "one-huge-field": b"X-Huge: " + b"t" * 1_000_000 + b"\r\n",
        "many-fields": b"X-T: 1234567890\r\n" * 50_000,
        "small-in-one-read": b"X-Mid: " + b"t" * 20_000 + b"\r\n",
    }[shape]
    answer = H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n" + trailer + b"\r\n"
    pool = limited(max_trailer_bytes=8 * 1024)
    async with RawServer(lambda raw: answer) as server:
        with pytest.raises(ProtocolError, match="too long"):
            await send(pool, server.url + "/", timeouts=Timeouts(read=30))
        await server.peers[0].closed.wait()
        # Under the limit, trailers are read and left out of the headers.
        server.respond = lambda raw: H + (
            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"
        )
        _, headers, body = await send(pool, server.url + "/")
        assert body == b"hello" and "x-t" not in headers
    await pool.aclose()


async def test_an_endless_chunk_extension_is_a_protocol_error(pool: PoolTransport) -> None:
    answer = H + b"Transfer-Encoding: chunked\r\n\r\n5;ext=" + b"e" * 1_000_000
    async with RawServer(lambda raw: answer) as server:
        with pytest.raises(ProtocolError, match="too long"):
            await send(pool, server.url + "/", timeouts=Timeouts(read=30))


# --- concurrency and cancellation --------------------------------------------------------


async def test_max_connections_caps_the_connections_opened() -> None:
    pool = PoolTransport(max_connections=2)
    busy: list[int] = []
    both = asyncio.Event()

    async def respond(raw: bytes) -> bytes:
        busy.append(len(pool._busy))
        if len(pool._busy) == 2:
            both.set()
        await both.wait()  # the first answers wait until two requests are in flight
        return reply(raw.split(b" ")[1])

    async with RawServer(respond) as server:
        answers = await asyncio.gather(*(send(pool, f"{server.url}/{i}") for i in range(6)))
    assert [body for _, _, body in answers] == [f"/{i}".encode() for i in range(6)]
    assert len(server.peers) == 2
    assert sum(len(p.requests) for p in server.peers) == 6
    assert max(busy) == 2
    await pool.aclose()


async def test_waiting_for_a_free_connection_is_bounded_by_the_connect_timeout() -> None:
    pool = PoolTransport(max_connections=1)
    async with RawServer(lambda raw: None) as server:
        first = asyncio.create_task(send(pool, server.url + "/"))
        await eventually(lambda: len(server.requests) == 1)
        with pytest.raises(TimeoutError_, match="no free connection"):
            await send(pool, server.url + "/", timeouts=Timeouts(connect=0.2))
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
    await pool.aclose()


async def test_cancelled_requests_leave_nothing_behind() -> None:
    pool = PoolTransport(max_connections=100)
    async with RawServer(lambda raw: None) as server:
        tasks = [asyncio.create_task(send(pool, f"{server.url}/{i}")) for i in range(100)]
        await eventually(lambda: len(server.requests) == 100)
        involved = set(pool._busy)
        assert len(involved) == 100

        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)

        assert not pool._busy
        assert not any(pool._idle.values())
        for conn in involved:
            assert conn.transport is not None and conn.transport.is_closing()
            assert conn.timer is None or conn.timer.cancelled()  # no read timer left armed
        await eventually(lambda: server.open_connections == 0)  # the server saw each close
        assert all(p.eof for p in server.peers)
        await eventually(lambda: asyncio.all_tasks() == {asyncio.current_task()})
        assert pool._sem is not None and pool._sem._value == 100

        server.respond = lambda raw: reply(b"after")
        assert (await send(pool, server.url + "/again"))[2] == b"after"
        assert not pool._busy
    await pool.aclose()


async def test_cancelling_requests_waiting_for_a_connection_releases_nothing_twice() -> None:
    pool = PoolTransport(max_connections=3)
    async with RawServer(lambda raw: None) as server:
        tasks = [asyncio.create_task(send(pool, f"{server.url}/{i}")) for i in range(10)]
        await eventually(lambda: len(server.requests) == 3)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert pool._sem is not None and pool._sem._value == 3
        assert not pool._busy
        server.respond = lambda raw: reply(b"after")
        answers = await asyncio.gather(*(send(pool, server.url + "/") for _ in range(3)))
        assert [a[2] for a in answers] == [b"after"] * 3
    await pool.aclose()


async def test_cancel_while_connecting_releases_the_slot() -> None:
    pool = PoolTransport(max_connections=1)
    with unanswered_port() as port:
        task = asyncio.create_task(send(pool, f"http://127.0.0.1:{port}/"))
        await eventually(lambda: pool._sem is not None and pool._sem.locked())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    async with RawServer() as server:
        assert (await send(pool, server.url + "/"))[0] == 200
    await pool.aclose()


# --- aclose ------------------------------------------------------------------------------


async def test_aclose_closes_idle_connections_is_idempotent_and_later_sends_fail() -> None:
    pool = PoolTransport()
    async with RawServer() as server:
        await asyncio.gather(*(send(pool, server.url + "/") for _ in range(3)))
        assert len(server.peers) == 3
        assert not any(p.eof for p in server.peers)
        await pool.aclose()
        await eventually(lambda: all(p.eof for p in server.peers))
        await pool.aclose()
        with pytest.raises(TransportError, match="closed") as info:
            await send(pool, server.url + "/")
        assert type(info.value) is TransportError
    assert len(server.requests) == 3


async def test_aclose_fails_in_flight_requests_without_sending_them_again() -> None:
    pool = PoolTransport()
    answers = iter([reply(b"first")])
    async with RawServer(lambda raw: next(answers, None)) as server:
        await send(pool, server.url + "/")
        task = asyncio.create_task(send(pool, server.url + "/", method="PUT", body=b"{}"))
        await eventually(lambda: len(server.requests) == 2)  # on the reused connection
        await pool.aclose()
        with pytest.raises(TransportError) as info:
            await asyncio.wait_for(task, 5)
        assert type(info.value) is TransportError
        await server.peers[0].closed.wait()
        assert len(server.peers) == 1  # no new connection after the close
        assert len(server.requests) == 2


async def test_aclose_before_any_request() -> None:
    pool = PoolTransport()
    await pool.aclose()
    with pytest.raises(TransportError):
        await send(pool, "http://127.0.0.1:1/")


# --- TLS ---------------------------------------------------------------------------------


def _certificate(
    subject: str,
    key: Any,
    issuer: Any,
    issuer_key: Any,
    *,
    ca: bool,
    expired: bool = False,
) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    if expired:
        start, end = now - datetime.timedelta(days=10), now - datetime.timedelta(days=1)
    else:
        start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=1)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A throwaway CA; server certificates for 127.0.0.1 it signed (valid, and expired); a
    self-signed one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("eks_async test CA", ca_key, None, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    certs = {
        "cert": _certificate("127.0.0.1", server_key, ca.subject, ca_key, ca=False),
        "expired": _certificate(
            "127.0.0.1", server_key, ca.subject, ca_key, ca=False, expired=True
        ),
        "self-signed": _certificate("127.0.0.1", server_key, None, server_key, ca=False),
    }
    directory = tmp_path_factory.mktemp("tls")
    pem = serialization.Encoding.PEM
    files = {"ca": str(directory / "ca.pem"), "key": str(directory / "key.pem")}
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    for name, cert in certs.items():
        files[name] = str(directory / f"{name}.pem")
        (directory / f"{name}.pem").write_bytes(cert.public_bytes(pem))
    (directory / "key.pem").write_bytes(
        server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


def server_context(files: dict[str, str], cert: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(files[cert], files["key"])
    return ctx


async def test_tls_with_a_trusted_ca(tls_files: dict[str, str]) -> None:
    ctx = server_context(tls_files, "cert")
    async with RawServer(lambda raw: reply(b"over tls"), ssl_context=ctx) as server:
        assert server.url.startswith("https://")
        trusting = PoolTransport(ssl_context=ssl.create_default_context(cafile=tls_files["ca"]))
        for _ in range(3):
            status, _, body = await send(trusting, server.url + TARGET)
            assert (status, body) == (200, b"over tls")
        assert len(server.peers) == 1  # keep-alive over TLS too
        assert server.requests[0].startswith(f"GET {TARGET} HTTP/1.1\r\n".encode())

        # The right CA but another name than the certificate's: refused.
        with pytest.raises(TransportError, match="cannot connect") as mismatch:
            await send(trusting, f"https://localhost:{server.port}/")
        assert type(mismatch.value) is TransportError
        assert isinstance(mismatch.value.__cause__, ssl.SSLCertVerificationError)
        await trusting.aclose()
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    ("cert", "trust_ca"),
    [("cert", False), ("self-signed", False), ("self-signed", True), ("expired", True)],
    ids=["unknown-ca", "self-signed", "self-signed-ca-trusted", "expired"],
)
async def test_tls_refusals(tls_files: dict[str, str], cert: str, trust_ca: bool) -> None:
    ctx = server_context(tls_files, cert)
    async with RawServer(lambda raw: reply(b"secret"), ssl_context=ctx) as server:
        client = PoolTransport(
            ssl_context=ssl.create_default_context(cafile=tls_files["ca"]) if trust_ca else None
        )  # None: certifi's CAs, which know none of these
        with pytest.raises(TransportError, match="cannot connect") as info:
            await send(client, server.url + "/")
        assert type(info.value) is TransportError
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        assert not client._busy
        await client.aclose()
    assert not server.requests  # nothing was sent over an unverified connection


# --- through EKSClient -------------------------------------------------------------------


ACCESS_KEY, SECRET_KEY = "AKIDHTTP11TEST", "c2VjcmV0/c2VjcmV0+c2VjcmV0"
REGION = "us-west-2"
CLUSTER = {
    "cluster": {
        "name": "prod/blue",
        "arn": "arn:aws:eks:us-west-2:111122223333:cluster/prod",
        "createdAt": 1700000000.5,
        "version": "1.31",
        "status": "ACTIVE",
        "endpoint": "https://ABC.gr7.us-west-2.eks.amazonaws.com",
        "tags": {"team": "a b"},
    }
}


def botocore_authorization(raw: bytes, url: str) -> tuple[str, str]:
    """(the Authorization header received, the one botocore computes for that request)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ")
    headers = dict(line.split(": ", 1) for line in lines)
    when = datetime.datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    to_sign = {
        k: v
        for k, v in headers.items()
        if k.lower() not in ("authorization", "x-amz-date", "host", "content-length")
    }
    request = AWSRequest(method=method, url=url + target, headers=to_sign, data=body)
    credentials = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
        botocore.auth.SigV4Auth(credentials, "eks", REGION).add_auth(request)
    return headers["Authorization"], str(request.headers["Authorization"])


async def test_eks_client_default_path_signs_and_reuses_one_connection() -> None:
    body = json.dumps(CLUSTER).encode()
    answer = reply(
        body, headers=[("Content-Type", "application/json"), ("x-amzn-RequestId", "req-42")]
    )
    async with (
        RawServer(lambda raw: answer) as server,
        EKSClient(
            region=REGION,
            endpoint_url=server.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        ) as eks,
    ):
        first = await eks.describe_cluster(name="prod/blue")
        second = await eks.describe_cluster(name="prod/blue")
    assert first == second
    cluster = first.cluster
    assert cluster is not None
    assert cluster.name == "prod/blue"
    assert cluster.status == "ACTIVE"
    assert cluster.tags == {"team": "a b"}
    assert cluster.created_at == datetime.datetime(
        2023, 11, 14, 22, 13, 20, 500000, tzinfo=datetime.UTC
    )
    assert first.response_metadata is not None
    assert first.response_metadata.request_id == "req-42"

    assert len(server.peers) == 1  # one keep-alive connection for both calls
    for raw in server.requests:
        assert raw.startswith(b"GET /clusters/prod%2Fblue HTTP/1.1\r\n")
        assert f"\r\nHost: 127.0.0.1:{server.port}\r\n".encode() in raw
        assert raw.count(b"\r\nHost:") == 1
        assert b"Content-Length" not in raw  # a GET without a body
        received, expected = botocore_authorization(raw, server.url)
        assert received == expected


async def test_aws_ca_bundle_is_read_when_the_client_is_made(
    tls_files: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = json.dumps(CLUSTER).encode()
    answer = reply(body, headers=[("Content-Type", "application/json")])
    ctx = server_context(tls_files, "cert")
    async with RawServer(lambda raw: answer, ssl_context=ctx) as server:
        creds = {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}
        monkeypatch.setenv("AWS_CA_BUNDLE", tls_files["ca"])
        trusting = EKSClient(region=REGION, endpoint_url=server.url, **creds)
        monkeypatch.delenv("AWS_CA_BUNDLE")
        untrusting = EKSClient(region=REGION, endpoint_url=server.url, **creds)
        monkeypatch.setenv("AWS_CA_BUNDLE", tls_files["ca"])  # too late for that one
        async with trusting, untrusting:
            out = await trusting.describe_cluster(name="prod/blue")
            assert out.cluster is not None and out.cluster.name == "prod/blue"
            with pytest.raises(TransportError, match="cannot connect"):
                await untrusting.describe_cluster(name="prod/blue")
    assert len(server.requests) == 1
