"""eks_async's own HTTP/1.1 pool (``eks_async._http11``) against real servers on 127.0.0.1.

The servers are plain asyncio stream handlers (one test uses blocking sockets in a thread),
so the tests see the exact bytes the pool writes and answer with exactly the bytes, the
pacing or the misbehaviour they need.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from unittest import mock

import botocore.auth
import botocore.credentials
import pytest
from botocore.awsrequest import AWSRequest

from eks_async import EKSClient
from eks_async._http11 import Http11Pool, SendError, _Connection

# What the server does with a request: the bytes to answer with, or None to never answer
# (it then waits for the client to hang up).
Respond = Callable[[bytes], bytes | None]


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


class Peer:
    """One connection as the server saw it."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.requests: list[bytes] = []
        self.eof = False  # the client closed its end


class RawServer:
    """An HTTP/1.1 keep-alive server recording each raw request and each connection."""

    def __init__(
        self,
        respond: Respond | None = None,
        *,
        close_after_reply: bool = False,
        trickle: bool = False,
        delay: float = 0.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.respond: Respond = respond or (lambda raw: reply())
        self.close_after_reply = close_after_reply
        self.trickle = trickle  # write the answer one byte at a time
        self.delay = delay
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
        await asyncio.wait_for(asyncio.gather(*self._handlers), 2)
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
                if self.delay:
                    await asyncio.sleep(self.delay)
                answer = self.respond(raw)
                if answer is None:
                    while await self._read(reader, peer):  # until the client hangs up
                        pass
                    peer.eof = True
                    return
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
                if self.close_after_reply:
                    return
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            peer.eof = True
        finally:
            self.open_connections -= 1
            self._writers.discard(writer)
            self._handlers.discard(task)
            writer.close()


async def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


@pytest.fixture
async def pool() -> AsyncIterator[Http11Pool]:
    # Short timeouts so that a broken one fails a test instead of stalling it.
    p = Http11Pool(connect_timeout=3, read_timeout=3)
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
    pool: Http11Pool, method: str, body: bytes
) -> None:
    async with RawServer() as server:
        status, _, content = await pool.send(method, server.url + TARGET, dict(GIVEN), body)
    assert (status, content) == (200, b"ok")
    [raw] = server.requests
    expected = f"{method} {TARGET} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
    expected += "".join(f"{k}: {v}\r\n" for k, v in GIVEN.items())
    if body:
        expected += f"Content-Length: {len(body)}\r\n"
    assert raw == expected.encode() + b"\r\n" + body
    # nothing else: no User-Agent, Accept, Accept-Encoding or Connection of the pool's own
    assert server.peers[0].received == raw


async def test_a_given_host_is_sent_as_given_in_its_place(pool: Http11Pool) -> None:
    async with RawServer() as server:
        for name in ("Host", "host"):
            headers = {"X-First": "1", name: "eks.example.test", "X-Last": "2"}
            await pool.send("GET", server.url + "/", headers, b"")
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
    pool = Http11Pool(connect_timeout=3, read_timeout=3)
    calls: list[tuple[str, str, int]] = []
    connect = pool._connect

    async with RawServer() as server:

        async def redirected(scheme: str, h: str, port: int) -> _Connection:
            calls.append((scheme, h, port))  # dial our server whatever the URL says
            return await connect("http", "127.0.0.1", server.port)

        with mock.patch.object(pool, "_connect", redirected):
            await pool.send("GET", url, {}, b"")
        await pool.aclose()
    [raw] = server.requests
    assert raw == f"GET /x HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    assert calls == [dialled]


async def test_header_injection_is_refused_before_anything_is_sent(pool: Http11Pool) -> None:
    async with RawServer() as server:
        for headers, target in (
            ({"X-Evil": "a\r\nInjected: 1"}, "/"),
            ({"X-Evil\r\nInjected": "1"}, "/"),
            ({"X-Evil": "a\nInjected: 1"}, "/"),
            ({"X-Evil": "a\rInjected: 1"}, "/"),
            ({}, "/x\r\nInjected: 1"),
        ):
            with pytest.raises(SendError, match="LocalProtocolError") as info:
                await pool.send("GET", server.url + target, headers, b"")
            assert not info.value.timeout
        assert (await pool.send("GET", server.url + "/", {}, b""))[0] == 200
    [raw] = server.requests
    assert b"Injected" not in raw


# --- answers -----------------------------------------------------------------------------


async def test_content_length_answer_headers_lowercased_and_repeats_joined(
    pool: Http11Pool,
) -> None:
    answer = reply(
        b'{"cluster":{}}',
        headers=[
            ("X-Amzn-RequestId", "req-1"),
            ("Set-Cookie", "a=1"),
            ("set-cookie", "b=2"),
            ("SET-COOKIE", "c=3"),
            ("Content-Type", "application/json"),
            ("X-Padded", "  spaced  value  "),
        ],
    )
    async with RawServer(lambda raw: answer) as server:
        status, headers, body = await pool.send("GET", server.url + "/", {}, b"")
    assert status == 200
    assert body == b'{"cluster":{}}'
    assert headers == {
        "x-amzn-requestid": "req-1",
        "set-cookie": "a=1, b=2, c=3",
        "content-type": "application/json",
        "x-padded": "spaced  value",
        "content-length": "14",
    }


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Amzn-RequestId: r\r\n\r\n"
    b"5;name=value\r\nhello\r\n"
    b"1\r\n \r\n"
    b"A\r\n0123456789\r\n"
    b"0;last=1\r\nX-Checksum: abc\r\nX-Other: d\r\n\r\n"
)
CLOSE_DELIMITED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close"
INTERIM = (
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    + reply(b"final", headers=[("X-Final", "yes")])
)


@pytest.mark.parametrize("trickle", [False, True], ids=["whole", "byte-by-byte"])
@pytest.mark.parametrize(
    ("answer", "close", "expected_headers", "expected_body"),
    [
        (reply(b"plain body"), False, {"content-length": "10"}, b"plain body"),
        (
            CHUNKED,
            False,
            {"transfer-encoding": "chunked", "x-amzn-requestid": "r"},
            b"hello 0123456789",
        ),
        (CLOSE_DELIMITED, True, {"content-type": "text/plain"}, b"until the close"),
        (INTERIM, False, {"x-final": "yes", "content-length": "5"}, b"final"),
        (reply(b"", length=True), False, {"content-length": "0"}, b""),
    ],
    ids=["content-length", "chunked", "close-delimited", "interim-1xx", "empty"],
)
async def test_answer_bodies(
    pool: Http11Pool,
    monkeypatch: pytest.MonkeyPatch,
    trickle: bool,
    answer: bytes,
    close: bool,
    expected_headers: dict[str, str],
    expected_body: bytes,
) -> None:
    pieces: list[int] = []
    received = _Connection.data_received

    def spy(self: _Connection, data: bytes) -> None:
        pieces.append(len(data))
        received(self, data)

    monkeypatch.setattr(_Connection, "data_received", spy)
    async with RawServer(lambda raw: answer, close_after_reply=close, trickle=trickle) as server:
        status, headers, body = await pool.send("GET", server.url + "/", {}, b"")
        assert (status, headers, body) == (200, expected_headers, expected_body)
        if trickle:  # the answer really came in tiny pieces
            assert len(pieces) > len(answer) // 2
            assert max(pieces) <= 4
        # The next answer on the connection (or on a new one, after a close) is read whole:
        # nothing of the first is left over to be taken for the second.
        server.respond = lambda raw: reply(b"second")
        server.close_after_reply, server.trickle = False, False
        status, _, body = await pool.send("GET", server.url + "/2", {}, b"")
        assert (status, body) == (200, b"second")
    assert len(server.peers) == (2 if close else 1)


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
@pytest.mark.parametrize("length", [False, True], ids=["no-length", "with-length"])
async def test_204_and_304_have_no_body(pool: Http11Pool, status: str, length: bool) -> None:
    # A 304 may carry the Content-Length of the representation it stands for: still no body.
    head = f"HTTP/1.1 {status}\r\nETag: x\r\n" + ("Content-Length: 7\r\n" if length else "")
    answers = iter([head.encode() + b"\r\n", reply(b"next")])
    async with RawServer(lambda raw: next(answers)) as server:
        code, headers, body = await pool.send("GET", server.url + "/", {}, b"")
        assert (code, body) == (int(status[:3]), b"")
        assert headers["etag"] == "x"
        code, _, body = await pool.send("GET", server.url + "/", {}, b"")
        assert (code, body) == (200, b"next")
    assert len(server.peers) == 1  # the connection stayed usable


async def test_http10_answer_without_keep_alive_is_not_reused(pool: Http11Pool) -> None:
    answers = iter(
        [
            reply(b"old", version="HTTP/1.0"),
            reply(b"ka", version="HTTP/1.0", headers=[("Connection", "keep-alive")]),
            reply(b"again"),
        ]
    )
    async with RawServer(lambda raw: next(answers)) as server:
        assert (await pool.send("GET", server.url + "/", {}, b""))[2] == b"old"
        assert (await pool.send("GET", server.url + "/", {}, b""))[2] == b"ka"
        assert (await pool.send("GET", server.url + "/", {}, b""))[2] == b"again"
        await eventually(lambda: server.peers[0].eof)
    assert [len(p.requests) for p in server.peers] == [1, 2]


# --- keep-alive --------------------------------------------------------------------------


async def test_fifty_sequential_requests_use_one_connection(pool: Http11Pool) -> None:
    async with RawServer(lambda raw: reply(raw.split(b" ")[1])) as server:
        for i in range(50):
            status, _, body = await pool.send("GET", f"{server.url}/{i}", {}, b"")
            assert (status, body) == (200, f"/{i}".encode())
    assert len(server.peers) == 1
    assert len(server.peers[0].requests) == 50


async def test_connection_close_answer_is_not_reused(pool: Http11Pool) -> None:
    # The server keeps its end open: only the client's reading of the header can tell.
    close = reply(b"bye", headers=[("Connection", "Close")])
    answers = iter([close, reply(b"fresh")])
    async with RawServer(lambda raw: next(answers)) as server:
        assert (await pool.send("GET", server.url + "/", {}, b""))[2] == b"bye"
        assert (await pool.send("GET", server.url + "/", {}, b""))[2] == b"fresh"
        await eventually(lambda: server.peers[0].eof)  # and the client closed its end
    assert [len(p.requests) for p in server.peers] == [1, 1]


async def test_idle_connection_past_keepalive_expiry_is_not_reused() -> None:
    pool = Http11Pool(keepalive_expiry=0.1, read_timeout=3)
    async with RawServer() as server:
        await pool.send("GET", server.url + "/", {}, b"")
        await pool.send("GET", server.url + "/", {}, b"")  # within the expiry: reused
        assert len(server.peers) == 1
        await asyncio.sleep(0.15)
        await pool.send("GET", server.url + "/", {}, b"")
        assert len(server.peers) == 2
        await eventually(lambda: server.peers[0].eof)  # the expired one was closed
        assert [len(p.requests) for p in server.peers] == [2, 1]
        await pool.aclose()


class ThreadedServer:
    """Blocking sockets in a thread, so that a test can close a connection on the server side
    while the event loop (and so the pool) has not yet noticed.

    ``plan[i]`` says what to do with the i-th connection: ``"answer-close"`` answers its
    first request and closes it; ``"drop"`` reads one request and closes without answering.
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
                    if action == "answer-close":
                        conn.sendall(reply(b"first"))
                # the socket is closed here: whatever comes later is refused by the kernel
                self.done[i].set()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive()


async def test_reused_connection_closed_while_idle_is_retried_once_on_a_new_one(
    pool: Http11Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    sends: list[_Connection] = []
    send = _Connection.send

    def spy(self: _Connection, data: bytes, timeout: float | None) -> Any:
        sends.append(self)
        return send(self, data, timeout)

    monkeypatch.setattr(_Connection, "send", spy)
    server = ThreadedServer(["answer-close", "answer-close"])
    try:
        assert (await pool.send("GET", server.url + "/1", {}, b""))[2] == b"first"
        # Block the loop until the server has closed the connection: the pool cannot have
        # seen the close, so it takes that connection again for the next request.
        assert server.done[0].wait(5)
        time.sleep(0.05)
        status, _, body = await pool.send("POST", server.url + "/2", {}, b"{}")
        assert (status, body) == (200, b"first")
    finally:
        server.close()
    first, retry = sends[0], sends[2]
    assert sends == [first, first, retry] and retry is not first  # stale one, then a new one
    # The application got the second request exactly once, on the new connection.
    assert bytes(server.received[0]).startswith(b"GET /1 ")
    assert b"POST" not in server.received[0]
    assert bytes(server.received[1]).startswith(b"POST /2 ")
    assert not pool._busy


async def test_a_new_connection_closed_before_answering_is_not_retried(
    pool: Http11Pool,
) -> None:
    # After a stale reused connection the request goes to a new one; if that one too closes
    # without an answer, the request may have reached the application: not sent again.
    server = ThreadedServer(["answer-close", "drop", "drop"])
    try:
        await pool.send("GET", server.url + "/1", {}, b"")
        assert server.done[0].wait(5)
        time.sleep(0.05)
        with pytest.raises(SendError, match="RemoteProtocolError") as info:
            await pool.send("POST", server.url + "/2", {}, b"{}")
        assert not info.value.timeout
        assert server.done[1].wait(5)
    finally:
        server.close()
    assert bytes(server.received[1]).startswith(b"POST /2 ")
    assert not server.received[2]  # no third connection was made
    assert not pool._busy and not any(pool._idle.values())


PARTIALS = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10,
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    b"HTTP/1.1 200 OK\r\nContent-Le",
    b"H",
]


@pytest.mark.parametrize("partial", PARTIALS)
@pytest.mark.parametrize("reused", [False, True], ids=["fresh", "reused"])
async def test_server_closing_mid_answer_is_an_error_and_not_reused(
    pool: Http11Pool, partial: bytes, reused: bool
) -> None:
    # Even on a reused connection: an answer had begun, so the request reached the server
    # and is not sent again.
    answers = iter([reply(b"warm-up")] if reused else [])
    async with RawServer(lambda raw: next(answers, partial)) as server:
        if reused:
            await pool.send("GET", server.url + "/", {}, b"")
        server.close_after_reply = True
        with pytest.raises(SendError, match="RemoteProtocolError: server disconnected") as info:
            await pool.send("POST", server.url + "/", {}, b"{}")
        assert not info.value.timeout
        assert not pool._busy and not any(pool._idle.values())
        assert len(server.peers) == 1
        assert [r.split(b" ")[0] for r in server.requests] == [b"GET"] * reused + [b"POST"]
        server.respond, server.close_after_reply = (lambda raw: reply()), False
        assert (await pool.send("GET", server.url + "/", {}, b""))[2] == b"ok"
    assert len(server.peers) == 2


async def test_fresh_connection_closed_without_an_answer_is_an_error(pool: Http11Pool) -> None:
    async with RawServer(lambda raw: b"", close_after_reply=True) as server:
        with pytest.raises(SendError, match="RemoteProtocolError") as info:
            await pool.send("POST", server.url + "/", {}, b"{}")
        assert not info.value.timeout
    assert len(server.requests) == 1  # not sent again


async def test_bytes_after_the_answer_make_the_connection_unusable(pool: Http11Pool) -> None:
    # A server that answers more than it should is out of step: its extra bytes must not be
    # taken for the answer to the next request.
    answers = iter([reply(b"one") + reply(b"bogus"), reply(b"two")])
    async with RawServer(lambda raw: next(answers)) as server:
        assert (await pool.send("GET", server.url + "/", {}, b""))[2] == b"one"
        await asyncio.sleep(0.02)
        assert (await pool.send("GET", server.url + "/", {}, b""))[2] == b"two"
    assert len(server.peers) == 2


@pytest.mark.parametrize("unsolicited", [reply(b"unsolicited"), b"H"], ids=["answer", "byte"])
async def test_unsolicited_bytes_on_an_idle_connection_make_it_unusable(
    pool: Http11Pool, unsolicited: bytes
) -> None:
    async with RawServer() as server:
        await pool.send("GET", server.url + "/", {}, b"")
        for writer in server._writers:
            writer.write(unsolicited)
        await asyncio.sleep(0.02)
        server.respond = lambda raw: reply(b"real")
        assert (await pool.send("GET", server.url + "/", {}, b""))[2] == b"real"
    assert len(server.peers) == 2


# --- errors ------------------------------------------------------------------------------


async def test_refused_connection_is_a_send_error_not_a_timeout(pool: Http11Pool) -> None:
    with pytest.raises(SendError, match="ConnectError") as info:
        await pool.send("GET", f"http://127.0.0.1:{unused_port()}/", {}, b"")
    assert not info.value.timeout
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    assert not pool._busy


async def test_connect_timeout() -> None:
    pool = Http11Pool(connect_timeout=0.2)
    with unanswered_port() as port:
        start = time.monotonic()
        with pytest.raises(SendError, match="ConnectTimeout") as info:
            await pool.send("GET", f"http://127.0.0.1:{port}/", {}, b"")
        assert 0.15 < time.monotonic() - start < 2
    assert info.value.timeout
    assert not pool._busy
    await pool.aclose()


async def test_read_timeout_on_a_server_that_never_answers() -> None:
    pool = Http11Pool(read_timeout=0.2)
    async with RawServer(lambda raw: None) as server:
        start = time.monotonic()
        with pytest.raises(SendError, match="ReadTimeout") as info:
            await pool.send("GET", server.url + "/", {}, b"")
        assert 0.15 < time.monotonic() - start < 2
        assert info.value.timeout
        await eventually(lambda: server.peers[0].eof)  # the connection was closed
        assert not pool._busy and not any(pool._idle.values())
    await pool.aclose()


async def test_read_timeout_covers_a_trickling_answer() -> None:
    pool = Http11Pool(read_timeout=0.2)

    async with RawServer(lambda raw: reply(b"x" * 20000), trickle=True) as server:
        with pytest.raises(SendError, match="ReadTimeout") as info:
            await pool.send("GET", server.url + "/", {}, b"")
        assert info.value.timeout
    await pool.aclose()


@pytest.mark.parametrize(
    "answer",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1\r\n\r\n",
        b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
    ],
)
async def test_malformed_answer_is_a_send_error(pool: Http11Pool, answer: bytes) -> None:
    # The server keeps the connection open: the error comes from parsing, not from a close.
    async with RawServer(lambda raw: answer) as server:
        start = time.monotonic()
        with pytest.raises(SendError, match="RemoteProtocolError: malformed") as info:
            await pool.send("GET", server.url + "/", {}, b"")
        assert time.monotonic() - start < 1
        assert not info.value.timeout
        await eventually(lambda: server.peers[0].eof)  # the connection was closed
        assert not pool._busy and not any(pool._idle.values())


@pytest.mark.parametrize("ended", [True, False], ids=["ended", "endless"])
async def test_over_long_header_section_is_a_send_error(pool: Http11Pool, ended: bool) -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * 100_000 + b"\r\n"
    answer = head + (b"Content-Length: 0\r\n\r\n" if ended else b"")
    async with RawServer(lambda raw: answer) as server:
        with pytest.raises(SendError, match="header section too long") as info:
            await pool.send("GET", server.url + "/", {}, b"")
        assert not info.value.timeout
        await eventually(lambda: server.peers[0].eof)


async def test_unsupported_url_is_a_send_error(pool: Http11Pool) -> None:
    for url in ("ftp://h/x", "http://user:pw@127.0.0.1/x", "http://127.0.0.1:notaport/x"):
        with pytest.raises(SendError) as info:
            await pool.send("GET", url, {}, b"")
        assert not info.value.timeout


# --- concurrency and cancellation --------------------------------------------------------


async def test_max_connections_caps_the_connections_opened() -> None:
    pool = Http11Pool(max_connections=2, read_timeout=3)
    busy: list[int] = []

    def respond(raw: bytes) -> bytes:
        busy.append(len(pool._busy))
        return reply(raw.split(b" ")[1])

    async with RawServer(respond, delay=0.05) as server:
        answers = await asyncio.gather(
            *(pool.send("GET", f"{server.url}/{i}", {}, b"") for i in range(6))
        )
    assert [body for _, _, body in answers] == [f"/{i}".encode() for i in range(6)]
    assert len(server.peers) == 2
    assert sorted(len(p.requests) for p in server.peers) == [3, 3]
    assert max(busy) == 2
    await pool.aclose()


async def test_waiting_for_a_free_connection_is_bounded_by_the_connect_timeout() -> None:
    pool = Http11Pool(max_connections=1, connect_timeout=0.2, read_timeout=3)
    async with RawServer(lambda raw: None) as server:
        first = asyncio.create_task(pool.send("GET", server.url + "/", {}, b""))
        await eventually(lambda: len(server.requests) == 1)
        with pytest.raises(SendError, match="PoolTimeout") as info:
            await pool.send("GET", server.url + "/", {}, b"")
        assert info.value.timeout
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
    await pool.aclose()


async def test_cancelled_requests_leave_nothing_behind() -> None:
    pool = Http11Pool(max_connections=100, read_timeout=30)
    async with RawServer(lambda raw: None) as server:
        tasks = [
            asyncio.create_task(pool.send("GET", f"{server.url}/{i}", {}, b"")) for i in range(100)
        ]
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
        assert (await pool.send("GET", server.url + "/again", {}, b""))[2] == b"after"
        assert not pool._busy
    await pool.aclose()


async def test_cancelling_requests_waiting_for_a_connection_releases_nothing_twice() -> None:
    pool = Http11Pool(max_connections=3, read_timeout=30)
    async with RawServer(lambda raw: None) as server:
        tasks = [
            asyncio.create_task(pool.send("GET", f"{server.url}/{i}", {}, b"")) for i in range(10)
        ]
        await eventually(lambda: len(server.requests) == 3)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert pool._sem is not None and pool._sem._value == 3
        assert not pool._busy
        server.respond = lambda raw: reply(b"after")
        answers = await asyncio.gather(
            *(pool.send("GET", server.url + "/", {}, b"") for _ in range(3))
        )
        assert [a[2] for a in answers] == [b"after"] * 3
    await pool.aclose()


async def test_cancel_while_connecting_releases_the_slot() -> None:
    pool = Http11Pool(max_connections=1, connect_timeout=5)
    with unanswered_port() as port:
        task = asyncio.create_task(pool.send("GET", f"http://127.0.0.1:{port}/", {}, b""))
        await asyncio.sleep(0.1)
        assert pool._sem is not None and pool._sem.locked()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    async with RawServer() as server:
        assert (await pool.send("GET", server.url + "/", {}, b""))[0] == 200
    await pool.aclose()


# --- aclose ------------------------------------------------------------------------------


async def test_aclose_closes_idle_connections_is_idempotent_and_later_sends_fail() -> None:
    pool = Http11Pool()
    async with RawServer() as server:
        await asyncio.gather(*(pool.send("GET", server.url + "/", {}, b"") for _ in range(3)))
        assert len(server.peers) == 3
        assert not any(p.eof for p in server.peers)
        await pool.aclose()
        await eventually(lambda: all(p.eof for p in server.peers))
        await pool.aclose()
        with pytest.raises(SendError, match="closed") as info:
            await pool.send("GET", server.url + "/", {}, b"")
        assert not info.value.timeout
    assert len(server.requests) == 3


async def test_aclose_fails_in_flight_requests_without_sending_them_again() -> None:
    pool = Http11Pool(read_timeout=3)
    answers = iter([reply(b"first")])
    async with RawServer(lambda raw: next(answers, None)) as server:
        await pool.send("GET", server.url + "/", {}, b"")
        task = asyncio.create_task(pool.send("POST", server.url + "/", {}, b"{}"))
        await eventually(lambda: len(server.requests) == 2)  # on the reused connection
        await pool.aclose()
        with pytest.raises(SendError) as info:
            await asyncio.wait_for(task, 1)
        assert not info.value.timeout
        await asyncio.sleep(0.05)
        assert len(server.peers) == 1  # no new connection after the close
        assert len(server.requests) == 2


async def test_aclose_before_any_request() -> None:
    pool = Http11Pool()
    await pool.aclose()
    with pytest.raises(SendError):
        await pool.send("GET", "http://127.0.0.1:1/", {}, b"")


# --- TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A throwaway CA and a server certificate it signed for 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(
        subject: str, key: Any, issuer: x509.Name | None, issuer_key: Any, ca: bool
    ) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
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
            ).add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = build("eks_async test CA", ca_key, None, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = build("127.0.0.1", server_key, ca.subject, ca_key, ca=False)

    directory = tmp_path_factory.mktemp("tls")
    files = {k: str(directory / f"{k}.pem") for k in ("ca", "cert", "key")}
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "cert.pem").write_bytes(server.public_bytes(pem))
    (directory / "key.pem").write_bytes(
        server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


async def test_tls(tls_files: dict[str, str]) -> None:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tls_files["cert"], tls_files["key"])
    async with RawServer(lambda raw: reply(b"over tls"), ssl_context=server_ctx) as server:
        assert server.url.startswith("https://")

        trusting = Http11Pool(ssl_context=ssl.create_default_context(cafile=tls_files["ca"]))
        for _ in range(3):
            status, _, body = await trusting.send("GET", server.url + TARGET, {}, b"")
            assert (status, body) == (200, b"over tls")
        assert len(server.peers) == 1  # keep-alive over TLS too
        assert server.requests[0].startswith(f"GET {TARGET} HTTP/1.1\r\n".encode())

        # The right CA but another name than the certificate's: refused too.
        localhost = f"https://localhost:{server.port}/"
        with pytest.raises(SendError, match="ConnectError") as mismatch:
            await trusting.send("GET", localhost, {}, b"")
        assert not mismatch.value.timeout
        assert isinstance(mismatch.value.__cause__, ssl.SSLCertVerificationError)
        await trusting.aclose()

        default = Http11Pool()  # certifi's CAs do not know this one
        with pytest.raises(SendError, match="ConnectError") as info:
            await default.send("GET", server.url + "/", {}, b"")
        assert not info.value.timeout
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        assert not default._busy
        await default.aclose()
    assert len(server.requests) == 3


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


async def test_eks_client_default_path_uses_the_pool_and_signs_correctly() -> None:
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
        assert isinstance(eks._shared.transport()._pool, Http11Pool)  # type: ignore[attr-defined]
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
