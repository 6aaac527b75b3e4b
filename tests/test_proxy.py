"""With a proxy in the environment, calls go through it (the aiohttp-backed transport)."""

from __future__ import annotations

import asyncio
import json

import pytest

import eks_async


async def test_calls_go_through_the_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head)
        body = json.dumps({"clusters": ["via-proxy"]}).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"x-amzn-RequestId: r1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        async with eks_async.EKSClient(
            region="us-west-2", aws_access_key_id="AKID", aws_secret_access_key="secret",
            endpoint_url="http://eks.example.invalid",
        ) as eks:
            out = await eks.list_clusters()
    finally:
        server.close()
        await server.wait_closed()
    assert out.clusters == ["via-proxy"]
    assert seen and seen[0].startswith(b"GET http://eks.example.invalid/clusters HTTP/1.1")


async def test_the_stack_is_chosen_when_the_client_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        served.append(head)
        body = json.dumps({"clusters": ["direct"]}).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"x-amzn-RequestId: r1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    try:
        eks = eks_async.EKSClient(
            region="us-west-2", aws_access_key_id="AKID", aws_secret_access_key="secret",
            endpoint_url=f"http://127.0.0.1:{port}",
        )
        # A proxy named after the client was made changes nothing for it (nothing listens
        # on port 9 of 127.0.0.1: had the client gone through it, the call would fail).
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        async with eks:
            out = await eks.list_clusters()
    finally:
        server.close()
        await server.wait_closed()
    assert out.clusters == ["direct"]
    assert served and served[0].startswith(b"GET /clusters HTTP/1.1")
