"""AiohttpTransport against real HTTP servers on 127.0.0.1.

The servers are plain asyncio stream handlers, so the tests see the exact bytes the
transport writes and can answer with exactly the bytes (or the misbehaviour) they need.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gzip
import ipaddress
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator

import aiohttp
import httpx
import pytest

from eks_async._transport import AiohttpTransport

# What the server does with a request: the bytes to answer with, or None to never answer
# (it then waits for the client to hang up).
Respond = Callable[[bytes], bytes | None]


def reply(
    body: bytes = b"ok",
    *,
    status: str = "200 OK",
    headers: list[tuple[str, str]] | None = None,
    length: bool = True,
) -> bytes:
    lines = [f"HTTP/1.1 {status}"]
    lines += [f"{k}: {v}" for k, v in headers or []]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class RawServer:
    """An HTTP/1.1 keep-alive server recording each raw request and each connection."""

    def __init__(self, respond: Respond | None = None, *, close_after_reply: bool = False):
        self.respond: Respond = respond or (lambda raw: reply())
        self.close_after_reply = close_after_reply
        self.requests: list[bytes] = []
        self.connections = 0
        self.open_connections = 0
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()
        for writer in self._writers:  # ends the handlers still waiting on a connection
            writer.close()
        await asyncio.wait_for(asyncio.gather(*self._handlers), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        self.connections += 1
        self.open_connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                raw = head + await reader.readexactly(length)
                self.requests.append(raw)
                answer = self.respond(raw)
                if answer is None:
                    await reader.read()  # until the client closes the connection
                    return
                writer.write(answer)
                await writer.drain()
                if self.close_after_reply:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
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


def wire_request(request: httpx.Request) -> bytes:
    """The bytes an HTTP/1.1 client should write for `request`, and nothing more."""
    head = b"%s %s HTTP/1.1\r\n" % (request.method.encode(), request.url.raw_path)
    head += b"".join(b"%s: %s\r\n" % (k, v) for k, v in request.headers.raw)
    return head + b"\r\n" + request.content


def timeout_ext(**kwargs: float) -> dict[str, dict[str, float | None]]:
    return {"timeout": httpx.Timeout(5.0, **kwargs).as_dict()}


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    # Short defaults so that a broken timeout fails a test instead of stalling it.
    t = AiohttpTransport(connect_timeout=5, read_timeout=5)
    yield t
    await t.aclose()


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    yield


def connector(t: AiohttpTransport) -> aiohttp.BaseConnector:
    session = t._session
    assert session is not None and session.connector is not None
    return session.connector


# --- what goes on the wire ---------------------------------------------------------


SIGNED_HEADERS = [
    ("X-Amz-Date", "20240101T000000Z"),
    ("x-amz-security-token", "tok/en+="),
    ("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/eks/aws4_request"),
    ("X-Repeat", "1"),
    ("X-Repeat", "2"),
]


@pytest.mark.parametrize(
    ("method", "body"),
    [("GET", None), ("DELETE", None), ("POST", b'{"name":"c1"}'), ("PUT", b""), ("PATCH", b"{}")],
)
async def test_request_bytes_on_the_wire_are_exactly_the_request(
    transport: AiohttpTransport, method: str, body: bytes | None
) -> None:
    async with RawServer() as server:
        request = httpx.Request(
            method,
            server.url + "/clusters/a%2Fb/x?k=a%20b&k=c",
            headers=SIGNED_HEADERS,
            content=body,
        )
        response = await transport.handle_async_request(request)

    assert response.status_code == 200
    [raw] = server.requests
    assert raw.startswith(f"{method} /clusters/a%2Fb/x?k=a%20b&k=c HTTP/1.1\r\n".encode())
    # Same header lines in the same order with the same case, and the same body: so no
    # User-Agent / Accept / Accept-Encoding / Content-Type / Content-Length of aiohttp's.
    assert raw == wire_request(request)
    lowered = raw.lower()
    for added in (b"user-agent", b"accept:", b"accept-encoding", b"content-type", b"connection"):
        assert added not in lowered


async def test_repeated_header_spelled_differently_keeps_every_value(
    transport: AiohttpTransport,
) -> None:
    async with RawServer() as server:
        headers = [("X-Repeat", "1"), ("x-other", "o"), ("x-repeat", "2"), ("X-REPEAT", "3")]
        await transport.handle_async_request(
            httpx.Request("GET", server.url + "/", headers=headers)
        )
    [raw] = server.requests
    assert raw.endswith(b"X-Repeat: 1\r\nx-other: o\r\nX-Repeat: 2\r\nX-Repeat: 3\r\n\r\n")


@pytest.mark.parametrize(
    "target",
    [
        "/a%2Fb%2fc/%7E~'!*()/:@+=%3D?x=%2F&y=a+b&z=%25&empty=&=v&flag",
        "/clusters/my%20cluster/node-groups?maxResults=10&nextToken=abc%3D%3D",
        "/path;param?q=caf%C3%A9#fragment",
    ],
)
async def test_percent_encoding_in_path_and_query_is_not_altered(
    transport: AiohttpTransport, target: str
) -> None:
    async with RawServer() as server:
        request = httpx.Request("GET", server.url + target)
        await transport.handle_async_request(request)
    [raw] = server.requests
    sent_target = raw.split(b" ", 2)[1]
    assert sent_target == request.url.raw_path
    assert sent_target == target.split("#")[0].encode()


async def test_streamed_request_body_is_sent_with_a_content_length(
    transport: AiohttpTransport,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"a":'
        yield b"1}"

    async with RawServer() as server:
        request = httpx.Request("POST", server.url + "/s", content=chunks())
        assert request.headers["transfer-encoding"] == "chunked"
        await transport.handle_async_request(request)
    [raw] = server.requests
    head, body = raw.split(b"\r\n\r\n")
    assert body == b'{"a":1}'
    assert head.endswith(b"\r\nContent-Length: 7")
    assert b"transfer-encoding" not in head.lower()


# --- what comes back -----------------------------------------------------------------


async def test_response_status_headers_and_body(transport: AiohttpTransport) -> None:
    body = b'{"cluster": {"name": "c1"}}'
    headers = [
        ("Content-Type", "application/json"),
        ("X-Multi", "a"),
        ("x-multi", "b"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("x-amzn-RequestId", "rid-1"),
    ]
    async with RawServer(lambda raw: reply(body, status="404 Not Found", headers=headers)) as srv:
        response = await transport.handle_async_request(httpx.Request("GET", srv.url + "/"))

    assert response.status_code == 404
    assert response.headers.raw == [
        (k.encode(), v.encode()) for k, v in [*headers, ("Content-Length", str(len(body)))]
    ]
    assert response.headers.get_list("x-multi") == ["a", "b"]
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.content == body
    assert response.json() == {"cluster": {"name": "c1"}}
    assert response.is_closed
    assert isinstance(response.elapsed, datetime.timedelta)


@pytest.mark.parametrize("chunked", [False, True])
async def test_gzip_response_is_decoded_once(transport: AiohttpTransport, chunked: bool) -> None:
    document = {"clusters": [f"cluster-{i}" for i in range(200)]}
    compressed = gzip.compress(json.dumps(document).encode())
    if chunked:
        wire = b"%x\r\n%s\r\n0\r\n\r\n" % (len(compressed), compressed)
        extra = [("Transfer-Encoding", "chunked")]
    else:
        wire, extra = compressed, []

    def respond(raw: bytes) -> bytes:
        return reply(
            wire,
            headers=[("Content-Type", "application/json"), ("Content-Encoding", "gzip"), *extra],
            length=not chunked,
        )

    async with RawServer(respond) as server:
        response = await transport.handle_async_request(httpx.Request("GET", server.url + "/"))

    assert response.content == json.dumps(document).encode()
    assert response.json() == document
    # The headers are the server's, as with httpx's own transport.
    assert response.headers["content-encoding"] == "gzip"
    assert "content-length" in response.headers or chunked
    assert response.num_bytes_downloaded == len(compressed)


async def test_head_response_with_content_length_has_no_body(
    transport: AiohttpTransport,
) -> None:
    async with RawServer(lambda raw: b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n") as srv:
        for _ in range(2):  # the connection stays usable
            response = await transport.handle_async_request(httpx.Request("HEAD", srv.url))
            assert response.status_code == 200
            assert response.content == b""
    assert srv.connections == 1


# --- connections ---------------------------------------------------------------------


async def test_sequential_requests_share_one_keepalive_connection(
    transport: AiohttpTransport,
) -> None:
    async with RawServer() as server:
        for i in range(50):
            request = httpx.Request("GET", f"{server.url}/{i}")
            response = await transport.handle_async_request(request)
            assert response.content == b"ok"
    assert len(server.requests) == 50
    assert server.connections == 1


async def test_max_connections_caps_concurrent_connections() -> None:
    async with RawServer() as server, AiohttpTransport(max_connections=2) as t:
        requests = [httpx.Request("GET", f"{server.url}/{i}") for i in range(6)]
        responses = await asyncio.gather(*map(t.handle_async_request, requests))
        assert [r.status_code for r in responses] == [200] * 6
    assert len(server.requests) == 6
    assert server.connections == 2  # 6 without the cap: all six start at once


# --- failures ------------------------------------------------------------------------


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_refused_connection_is_connect_error(transport: AiohttpTransport) -> None:
    request = httpx.Request("GET", f"http://127.0.0.1:{unused_port()}/")
    with pytest.raises(httpx.ConnectError) as info:
        await transport.handle_async_request(request)
    assert info.value.request is request
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)


@contextlib.contextmanager
def unanswered_port() -> Iterator[int]:
    """A port whose listener's accept queue is full: new SYNs are dropped, connect hangs."""
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
            yield port
        finally:
            for s in fillers:
                s.close()


async def test_connect_timeout_from_request_extensions(transport: AiohttpTransport) -> None:
    with unanswered_port() as port:
        request = httpx.Request(
            "GET", f"http://127.0.0.1:{port}/", extensions=timeout_ext(connect=0.2)
        )
        start = time.monotonic()
        with pytest.raises(httpx.ConnectTimeout) as info:
            await transport.handle_async_request(request)
        assert time.monotonic() - start < 2
        assert info.value.request is request


async def test_silent_server_is_read_timeout(transport: AiohttpTransport) -> None:
    async with RawServer(lambda raw: None) as server:
        request = httpx.Request("GET", server.url + "/", extensions=timeout_ext(read=0.2))
        start = time.monotonic()
        with pytest.raises(httpx.ReadTimeout) as info:
            await transport.handle_async_request(request)
        assert 0.15 < time.monotonic() - start < 2
        assert info.value.request is request


async def test_transport_default_read_timeout_applies_without_extension() -> None:
    async with RawServer(lambda raw: None) as server:
        t = AiohttpTransport(read_timeout=0.2)
        try:
            with pytest.raises(httpx.ReadTimeout):
                await t.handle_async_request(httpx.Request("GET", server.url + "/"))
        finally:
            await t.aclose()


async def test_server_closing_mid_body_is_remote_protocol_error(
    transport: AiohttpTransport,
) -> None:
    partial = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10
    async with RawServer(lambda raw: partial, close_after_reply=True) as server:
        request = httpx.Request("GET", server.url + "/")
        with pytest.raises(httpx.RemoteProtocolError) as info:
            await transport.handle_async_request(request)
        assert info.value.request is request
        # The broken connection is not reused.
        server.respond, server.close_after_reply = (lambda raw: reply()), False
        response = await transport.handle_async_request(httpx.Request("GET", server.url))
        assert response.content == b"ok"


async def test_server_closing_before_answering_is_a_transport_error(
    transport: AiohttpTransport,
) -> None:
    async with RawServer(lambda raw: b"", close_after_reply=True) as server:
        request = httpx.Request("POST", server.url + "/", content=b"{}")
        with pytest.raises(httpx.TransportError) as info:
            await transport.handle_async_request(request)
        assert isinstance(info.value, httpx.RemoteProtocolError)


async def test_garbage_response_is_remote_protocol_error(transport: AiohttpTransport) -> None:
    async with RawServer(lambda raw: b"NOT HTTP AT ALL\r\n\r\n", close_after_reply=True) as srv:
        with pytest.raises(httpx.RemoteProtocolError):
            await transport.handle_async_request(httpx.Request("POST", srv.url, content=b"x"))


async def test_header_injection_is_refused_before_anything_is_sent(
    transport: AiohttpTransport,
) -> None:
    async with RawServer() as server:
        request = httpx.Request("GET", server.url, headers={"X-Evil": "a\r\nInjected: 1"})
        with pytest.raises(httpx.LocalProtocolError) as info:
            await transport.handle_async_request(request)
        assert info.value.request is request
        response = await transport.handle_async_request(httpx.Request("GET", server.url))
        assert response.status_code == 200
    assert len(server.requests) == 1
    assert b"Injected" not in server.requests[0]


async def test_bad_gzip_is_httpx_decoding_error(transport: AiohttpTransport) -> None:
    bad = reply(b"not gzip", headers=[("Content-Encoding", "gzip")])
    async with RawServer(lambda raw: bad) as server:
        with pytest.raises(httpx.DecodingError):
            await transport.handle_async_request(httpx.Request("GET", server.url))


# --- cancellation --------------------------------------------------------------------


async def test_cancelled_requests_leave_nothing_behind() -> None:
    t = AiohttpTransport(max_connections=50)  # 50 in flight on the wire, 50 waiting for one
    async with RawServer(lambda raw: None) as server:
        tasks = [
            asyncio.create_task(t.handle_async_request(httpx.Request("GET", f"{server.url}/{i}")))
            for i in range(100)
        ]
        await eventually(lambda: len(server.requests) == 50)
        conn = connector(t)
        assert len(conn._acquired) == 50
        assert sum(len(w) for w in conn._waiters.values()) == 50

        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)

        assert not conn._acquired
        assert not any(conn._waiters.values())
        # The server sees every connection closed, so its handlers end too.
        await eventually(lambda: server.open_connections == 0)
        await eventually(lambda: asyncio.all_tasks() == {asyncio.current_task()})

        server.respond = lambda raw: reply(b"after")
        response = await t.handle_async_request(httpx.Request("GET", server.url + "/again"))
        assert response.content == b"after"
        assert not conn._acquired
    await t.aclose()


async def test_cancel_while_connecting_releases_the_slot() -> None:
    t = AiohttpTransport(max_connections=1)
    with unanswered_port() as port:
        task = asyncio.create_task(
            t.handle_async_request(httpx.Request("GET", f"http://127.0.0.1:{port}/"))
        )
        await asyncio.sleep(0.1)
        assert len(connector(t)._acquired) == 1  # the slot held while connecting
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not connector(t)._acquired
    async with RawServer() as server:
        response = await t.handle_async_request(httpx.Request("GET", server.url))
        assert response.status_code == 200
    await t.aclose()


# --- lifecycle -----------------------------------------------------------------------


async def test_aclose_is_idempotent_and_later_requests_raise() -> None:
    async with RawServer() as server:
        t = AiohttpTransport()
        await t.handle_async_request(httpx.Request("GET", server.url))
        session = t._session
        assert session is not None
        await t.aclose()
        assert session.closed
        await t.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await t.handle_async_request(httpx.Request("GET", server.url))


async def test_aclose_before_first_request_and_async_with() -> None:
    t = AiohttpTransport()
    await t.aclose()
    with pytest.raises(RuntimeError):
        await t.handle_async_request(httpx.Request("GET", "http://127.0.0.1:9/"))

    async with RawServer() as server:
        async with AiohttpTransport() as t2:
            response = await t2.handle_async_request(httpx.Request("GET", server.url))
            assert response.status_code == 200
        assert t2._session is None
        with pytest.raises(RuntimeError):
            await t2.handle_async_request(httpx.Request("GET", server.url))


async def test_session_is_created_lazily() -> None:
    t = AiohttpTransport()
    assert t._session is None
    async with RawServer() as server:
        await t.handle_async_request(httpx.Request("GET", server.url))
        first = t._session
        await t.handle_async_request(httpx.Request("GET", server.url))
        assert first is not None and t._session is first
    await t.aclose()


# --- under httpx.AsyncClient -------------------------------------------------------


async def test_works_as_the_transport_of_an_httpx_async_client() -> None:
    async with RawServer(lambda raw: reply(b'{"ok": true}')) as server:
        client = httpx.AsyncClient(transport=AiohttpTransport(), base_url=server.url)
        async with client:
            response = await client.post("/clusters/a%2Fb", json={"x": 1})
            assert response.json() == {"ok": True}
            assert response.elapsed.total_seconds() >= 0
            response = await client.get("/x", params={"k": "a b"})
            assert response.status_code == 200

    post, get = server.requests
    assert post.startswith(b"POST /clusters/a%2Fb HTTP/1.1\r\n")
    assert post.lower().count(b"user-agent: python-httpx/") == 1
    assert post.endswith(b'\r\n\r\n{"x":1}')
    assert get.startswith(b"GET /x?k=a+b HTTP/1.1\r\n")


async def test_httpx_client_timeout_reaches_the_transport() -> None:
    async with RawServer(lambda raw: None) as server:
        t = AiohttpTransport(read_timeout=30)
        async with httpx.AsyncClient(transport=t, timeout=httpx.Timeout(5, read=0.2)) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(server.url)


# --- TLS and environment -------------------------------------------------------------


def test_default_ca_bundle_is_the_one_httpx_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    from eks_async import _transport

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    ours = _transport._ssl_context(*_transport._ca_location(False))
    assert ours is _transport._ssl_context(*_transport._ca_location(True))  # built once
    theirs = httpx.create_ssl_context(trust_env=False)
    assert ours.cert_store_stats() == theirs.cert_store_stats()
    assert ours.verify_mode == ssl.CERT_REQUIRED and ours.check_hostname


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


async def test_tls_verification(self_signed: tuple[str, str]) -> None:
    cert_file, key_file = self_signed
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_file, key_file)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(reply(b"tls"))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        async with AiohttpTransport() as t:  # certifi's CAs do not know this certificate
            with pytest.raises(httpx.ConnectError, match="certificate"):
                await t.handle_async_request(httpx.Request("GET", url))

        async with AiohttpTransport(verify=ssl.create_default_context(cafile=cert_file)) as t:
            response = await t.handle_async_request(httpx.Request("GET", url))
            assert response.content == b"tls"

        async with AiohttpTransport(verify=False) as t:
            response = await t.handle_async_request(httpx.Request("GET", url))
            assert response.content == b"tls"
    finally:
        server.close()
        await server.wait_closed()


async def test_trust_env_uses_http_proxy_and_no_proxy(
    monkeypatch: pytest.MonkeyPatch, no_proxy_env: None
) -> None:
    async with RawServer(lambda raw: reply(b"via proxy")) as proxy, RawServer() as origin:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost")
        async with AiohttpTransport(trust_env=True) as t:
            response = await t.handle_async_request(
                httpx.Request("GET", "http://eks.example.invalid/clusters/a%2Fb?k=a%20b")
            )
            assert response.content == b"via proxy"

        [raw] = proxy.requests
        assert raw.startswith(b"GET http://eks.example.invalid/clusters/a%2Fb?k=a%20b HTTP/1.1\r\n")

        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with AiohttpTransport(trust_env=True) as t:
            response = await t.handle_async_request(httpx.Request("GET", origin.url))
            assert response.content == b"ok"
        assert len(origin.requests) == 1 and len(proxy.requests) == 1

        async with AiohttpTransport() as t:  # trust_env=False: environment ignored
            await t.handle_async_request(httpx.Request("GET", origin.url))
        assert len(origin.requests) == 2


def test_unsupported_proxy_scheme_in_environment(
    monkeypatch: pytest.MonkeyPatch, no_proxy_env: None
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(ValueError, match="socks5"):
        AiohttpTransport(trust_env=True)
    AiohttpTransport()  # not read unless trusted
