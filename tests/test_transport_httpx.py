"""The httpx adapter (``eks_async._transports.httpx``) and the factory that picks a transport.

The adapter is tested over ``httpx.MockTransport`` and respx (what callers plug in), and
over real servers on 127.0.0.1 through a caller's ``httpx.AsyncClient``, a bare httpx
transport and a proxy named in the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import respx

from eks_async._exceptions import (
    ConfigurationError,
    ProtocolError,
    TimeoutError_,
    TransportError,
)
from eks_async._transports import open_transport, proxy_in_env
from eks_async._transports.base import Limits, Timeouts
from eks_async._transports.httpx import HttpxTransport
from eks_async._transports.pool import PoolTransport
from tests.test_transport_pool import TARGET, RawServer, reply, unused_port

TIMEOUTS = Timeouts(connect=5, read=5)
HEADERS = {
    "Host": "eks.us-west-2.amazonaws.com",
    "X-Amz-Date": "20240101T000000Z",
    "x-amz-security-token": "tok/en+=",
    "authorization": "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-west-2/eks/aws4_request",
    "X-MiXeD-CaSe": "Value With  Spaces",
}


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    yield


def mock(handler: httpx.MockTransport | None = None, **kwargs: object) -> HttpxTransport:
    assert handler is not None
    return HttpxTransport(transport=handler, **kwargs)  # type: ignore[arg-type]


# --- what is sent ------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "body"), [("GET", b""), ("POST", b'{"name":"c1"}')])
async def test_url_and_headers_reach_a_transport_exactly(method: str, body: bytes) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"ok")

    t = mock(httpx.MockTransport(handler))
    status, _, content = await t.send(
        method, "https://eks.us-west-2.amazonaws.com" + TARGET, HEADERS, body,
        timeouts=TIMEOUTS, retry_safe=True,
    )
    assert (status, content) == (200, b"ok")
    [request] = seen
    assert request.method == method
    assert request.url.raw_path == TARGET.encode()  # not re-quoted: the signature covers it
    expected = [(k.encode(), v.encode()) for k, v in HEADERS.items()]
    if body:
        expected.append((b"Content-Length", str(len(body)).encode()))
    assert request.headers.raw == expected
    assert request.content == body
    assert request.extensions["timeout"] == {"connect": 5, "read": 5, "write": 5, "pool": 5}


async def test_bytes_on_the_wire_through_a_callers_client_and_a_bare_transport() -> None:
    async with RawServer() as server, httpx.AsyncClient() as client:
        headers = {**HEADERS, "Host": f"127.0.0.1:{server.port}"}
        via_client = HttpxTransport(client=client)
        await via_client.send("GET", server.url + TARGET, headers, b"", timeouts=TIMEOUTS,
                              retry_safe=True)
        bare = HttpxTransport(transport=httpx.AsyncHTTPTransport())
        await bare.send("PUT", server.url + TARGET, headers, b"{}", timeouts=TIMEOUTS,
                        retry_safe=True)
        await bare.aclose()
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    # AsyncClient.send adds none of the client's default headers (User-Agent, Accept, ...).
    assert server.requests == [
        f"GET {TARGET} HTTP/1.1\r\n{lines}\r\n".encode(),
        f"PUT {TARGET} HTTP/1.1\r\n{lines}Content-Length: 2\r\n\r\n{{}}".encode(),
    ]


async def test_header_injection_is_refused_before_anything_is_sent() -> None:
    async with RawServer() as server, httpx.AsyncClient() as client:
        t = HttpxTransport(client=client)
        for headers, target in (({"X-Evil": "a\r\nInjected: 1"}, "/"), ({}, "/x\nInjected: 1")):
            with pytest.raises(TransportError, match="CR or LF") as info:
                await t.send("GET", server.url + target, headers, b"", timeouts=TIMEOUTS,
                             retry_safe=True)
            assert type(info.value) is TransportError
    assert not server.requests


# --- what comes back ---------------------------------------------------------------------


@respx.mock
async def test_answer_through_respx_headers_lowercased_and_repeats_joined() -> None:
    url = "https://eks.us-west-2.amazonaws.com" + TARGET
    respx.get(url).mock(
        return_value=httpx.Response(
            404,
            headers=[("X-Amzn-RequestId", "req-1"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2"),
                     ("x-amzn-ErrorType", "ResourceNotFoundException:")],
            content=b'{"message":"no"}',
        )
    )
    async with httpx.AsyncClient() as client:
        status, headers, body = await HttpxTransport(client=client).send(
            "GET", url, HEADERS, b"", timeouts=TIMEOUTS, retry_safe=True
        )
    assert status == 404
    assert body == b'{"message":"no"}'
    assert headers == {
        "x-amzn-requestid": "req-1",
        "set-cookie": "a=1, b=2",
        "x-amzn-errortype": "ResourceNotFoundException:",
        "content-length": "16",
    }


async def test_a_coding_the_caller_asked_for_is_decoded_once() -> None:
    packed = gzip.compress(b'{"clusters":[]}')
    answer = reply(packed, headers=[("Content-Encoding", "gzip")])
    async with RawServer(lambda raw: answer) as server, httpx.AsyncClient() as client:
        _, headers, body = await HttpxTransport(client=client).send(
            "GET", server.url + "/", {"Accept-Encoding": "gzip"}, b"", timeouts=TIMEOUTS,
            retry_safe=True,
        )
    assert body == b'{"clusters":[]}'
    assert headers["content-encoding"] == "gzip"


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (httpx.ConnectTimeout("slow"), TimeoutError_),
        (httpx.ReadTimeout("slow"), TimeoutError_),
        (httpx.PoolTimeout("busy"), TimeoutError_),
        (httpx.RemoteProtocolError("bad framing"), ProtocolError),
        (httpx.LocalProtocolError("bad header"), ProtocolError),
        (httpx.ConnectError("refused"), TransportError),
        (httpx.ReadError("reset"), TransportError),
        (httpx.ProxyError("407"), TransportError),
        (httpx.UnsupportedProtocol("ftp"), TransportError),
    ],
)
async def test_httpx_errors_become_eks_async_errors(
    raised: Exception, expected: type[Exception]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    with pytest.raises(expected) as info:
        await mock(httpx.MockTransport(handler)).send(
            "GET", "https://eks.example.test/", {}, b"", timeouts=TIMEOUTS, retry_safe=True
        )
    assert type(info.value) is expected
    assert info.value.__cause__ is raised


async def test_undecodable_body_is_a_protocol_error() -> None:
    answer = reply(b"not gzip at all", headers=[("Content-Encoding", "gzip")])
    async with RawServer(lambda raw: answer) as server, httpx.AsyncClient() as client:
        with pytest.raises(ProtocolError, match="DecodingError"):
            await HttpxTransport(client=client).send(
                "GET", server.url + "/", {}, b"", timeouts=TIMEOUTS, retry_safe=True
            )


async def test_real_failures_refused_silent_and_dripping() -> None:
    async with httpx.AsyncClient() as client:
        t = HttpxTransport(client=client)
        with pytest.raises(TransportError) as refused:
            await t.send("GET", f"http://127.0.0.1:{unused_port()}/", {}, b"",
                         timeouts=TIMEOUTS, retry_safe=True)
        assert type(refused.value) is TransportError

        async with RawServer(lambda raw: None) as silent:
            with pytest.raises(TimeoutError_):
                await t.send("GET", silent.url + "/", {}, b"",
                             timeouts=Timeouts(connect=5, read=0.2), retry_safe=True)

        async def drip(raw: bytes, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n")
            with contextlib.suppress(ConnectionError):
                while not writer.transport.is_closing():
                    writer.write(b"x")
                    await writer.drain()
                    await asyncio.sleep(0.002)

        # httpx's read timeout is an idle timer that a drip never lets fire; the adapter's
        # deadline (connect + read) ends the exchange all the same.
        async with RawServer(stream=drip) as dripping:
            with pytest.raises(TimeoutError_):
                async with asyncio.timeout(60):
                    await t.send("GET", dripping.url + "/", {}, b"",
                                 timeouts=Timeouts(connect=0.1, read=0.2), retry_safe=True)


async def test_max_body_is_enforced_while_streaming() -> None:
    produced = [0]

    async def endless() -> AsyncIterator[bytes]:  # a megabyte: "endless" for a 10 KB limit
        for _ in range(1024):
            produced[0] += 1
            yield b"x" * 1024

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())

    t = mock(httpx.MockTransport(handler), limits=Limits(max_body=10 * 1024))
    with pytest.raises(ProtocolError, match="body larger than the limit"):
        await t.send("GET", "https://eks.example.test/", {}, b"", timeouts=TIMEOUTS,
                     retry_safe=True)
    assert produced[0] == 11  # read up to the first byte past the limit, and no further

    def advertised(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": "1073741824"}, content=endless())

    produced[0] = 0
    t = mock(httpx.MockTransport(advertised), limits=Limits(max_body=10 * 1024))
    with pytest.raises(ProtocolError, match="body larger than the limit"):
        await t.send("GET", "https://eks.example.test/", {}, b"", timeouts=TIMEOUTS,
                     retry_safe=True)
    assert produced[0] == 0  # refused on the header, before any of the body


# --- ownership ---------------------------------------------------------------------------


async def test_a_callers_client_is_left_open_and_an_owned_one_closed() -> None:
    async with RawServer() as server:
        client = httpx.AsyncClient()
        t = HttpxTransport(client=client)
        await t.send("GET", server.url + "/", {}, b"", timeouts=TIMEOUTS, retry_safe=True)
        await t.aclose()
        assert not client.is_closed
        with pytest.raises(TransportError, match="closed"):
            await t.send("GET", server.url + "/", {}, b"", timeouts=TIMEOUTS, retry_safe=True)
        assert (await client.get(server.url + "/")).content == b"ok"  # still the caller's
        await client.aclose()
        with pytest.raises(TransportError):  # the caller closed it: still a typed error
            await HttpxTransport(client=client).send(
                "GET", server.url + "/", {}, b"", timeouts=TIMEOUTS, retry_safe=True
            )

        owned = HttpxTransport.from_environment()
        assert owned._client is not None
        await owned.send("GET", server.url + "/", {}, b"", timeouts=TIMEOUTS, retry_safe=True)
        await owned.aclose()
        assert owned._client.is_closed


def test_exactly_one_of_client_and_transport() -> None:
    with pytest.raises(TypeError):
        HttpxTransport()
    with pytest.raises(TypeError):
        HttpxTransport(client=httpx.AsyncClient(), transport=httpx.AsyncHTTPTransport())


# --- the factory -------------------------------------------------------------------------


async def test_the_factory_picks_the_pool_without_a_proxy_or_a_callers_httpx() -> None:
    assert not proxy_in_env()
    limits = Limits(max_body=1234)
    t, owned = open_transport(max_connections=7, ssl_context=None, limits=limits)
    assert isinstance(t, PoolTransport) and owned
    assert t._limit == 7 and t._limits is limits
    await t.aclose()


async def test_the_factory_wraps_a_callers_client_or_transport_without_owning_it() -> None:
    client = httpx.AsyncClient()
    t, owned = open_transport(http_client=client, max_connections=1, ssl_context=None,
                              limits=Limits())
    assert isinstance(t, HttpxTransport) and not owned and t._client is client
    mocked = httpx.MockTransport(lambda request: httpx.Response(204))
    t, owned = open_transport(transport=mocked, max_connections=1, ssl_context=None,
                              limits=Limits())
    assert isinstance(t, HttpxTransport) and not owned
    assert (await t.send("DELETE", "https://e.test/x", {}, b"", timeouts=TIMEOUTS,
                         retry_safe=True))[0] == 204
    with pytest.raises(ConfigurationError):
        open_transport(http_client=client, transport=mocked)
    await client.aclose()


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
async def test_a_proxy_from_the_environment_carries_the_calls(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    async with RawServer(lambda raw: reply(b"via proxy")) as proxy, RawServer() as origin:
        monkeypatch.setenv(variable, proxy.url)
        t, owned = open_transport(max_connections=10, ssl_context=None, limits=Limits())
        assert isinstance(t, HttpxTransport) and owned
        status, _, body = await t.send(
            "GET", "http://eks.example.invalid" + TARGET, {"Host": "eks.example.invalid"}, b"",
            timeouts=TIMEOUTS, retry_safe=True,
        )
        assert (status, body) == (200, b"via proxy")
        [raw] = proxy.requests
        assert raw.startswith(f"GET http://eks.example.invalid{TARGET} HTTP/1.1\r\n".encode())
        await t.aclose()
        assert t._client is not None and t._client.is_closed

        # NO_PROXY, read by httpx: the origin is reached directly.
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        t, _ = open_transport(max_connections=10, ssl_context=None, limits=Limits())
        assert (await t.send("GET", origin.url + "/", {}, b"", timeouts=TIMEOUTS,
                             retry_safe=True))[2] == b"ok"
        await t.aclose()
    assert len(proxy.requests) == 1 and len(origin.requests) == 1


def test_an_unusable_proxy_in_the_environment_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "ftp://user:secret@127.0.0.1:21")
    with pytest.raises(ConfigurationError) as info:
        open_transport(max_connections=1, ssl_context=None, limits=Limits())
    assert "secret" not in str(info.value)


def test_importing_eks_async_imports_neither_httpx_nor_httptools() -> None:
    code = (
        "import json, sys, eks_async, eks_async._transports; "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('httpx', 'httptools', 'aiohttp') "
        "or m.startswith('eks_async._transports.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == ["eks_async._transports.base"]
