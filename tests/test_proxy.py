"""With a proxy in the environment, calls go through it (httpx, with its proxy support);
the choice is made when the client is made."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest

import eks_async

_PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                    "all_proxy", "NO_PROXY", "no_proxy")


@contextlib.asynccontextmanager
async def _one_shot_server(clusters: list[str], seen: list[bytes]) -> AsyncIterator[int]:
    """A server that answers each connection's first request with a ListClusters answer."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        body = json.dumps({"clusters": clusters}).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"x-amzn-RequestId: r1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def _client(endpoint_url: str) -> eks_async.EKSClient:
    return eks_async.EKSClient(
        region="us-west-2", aws_access_key_id="AKID", aws_secret_access_key="secret",
        endpoint_url=endpoint_url,
    )


@pytest.fixture(autouse=True)
def _no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


async def test_calls_go_through_the_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[bytes] = []
    async with _one_shot_server(["via-proxy"], seen) as port:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        async with _client("http://eks.example.invalid") as eks:
            out = await eks.list_clusters()
    assert out.clusters == ["via-proxy"]
    assert seen and seen[0].startswith(b"GET http://eks.example.invalid/clusters HTTP/1.1")


async def test_the_stack_is_chosen_when_the_client_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[bytes] = []
    async with _one_shot_server(["direct"], seen) as port:
        eks = _client(f"http://127.0.0.1:{port}")
        # A proxy named after the client was made changes nothing for it (nothing listens
        # on port 9 of 127.0.0.1: had the client gone through it, the call would fail).
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        async with eks:
            out = await eks.list_clusters()
    assert out.clusters == ["direct"]
    assert seen and seen[0].startswith(b"GET /clusters HTTP/1.1")
