"""The emulator over real HTTP on 127.0.0.1, for clients that need a socket.

``serve`` runs an aiohttp low-level server on the current event loop (no router: every
path, however odd, reaches the emulator as sent). ``EmulatorServer`` runs the same in a
background thread with its own loop, for synchronous code such as boto3. A dropped call
closes the connection without writing a byte. aiohttp's server module is imported only
when a server starts.

Next to it, on another port of the same host, an HTTPS listener serves the clusters'
Kubernetes APIs (``https://127.0.0.1:<port>/k8s/<cluster endpoint id>``) with a
certificate from the emulator's own CA; while it runs, DescribeCluster's ``endpoint`` and
``certificateAuthority`` point there. Without the ``cryptography`` package the HTTPS
listener is left out and the EKS API is served alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ._wire import EmulatorRequest

if TYPE_CHECKING:
    from aiohttp import web

    from ._emulator import EKSEmulator

__all__ = ["serve"]

_MAX_BODY = 16 * 1024 * 1024
_MAX_KUBE_BODY = 3 * 1024 * 1024
logger = logging.getLogger("eks_async.testing")


def _handler(emulator: EKSEmulator) -> Any:
    from aiohttp import web
    from multidict import CIMultiDict

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        path, _, query = request.raw_path.partition("?")
        body = await request.read()
        headers = tuple(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.raw_headers
        )
        answer = await emulator.handle(
            EmulatorRequest(
                method=request.method, path=path, query=query, headers=headers, body=body
            )
        )
        if answer.drop:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never written: the socket is closed
        return web.Response(
            status=answer.status, body=answer.body, headers=CIMultiDict(answer.headers)
        )

    return handle


def _kube_handler(emulator: EKSEmulator) -> Any:
    from aiohttp import web
    from multidict import CIMultiDict

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        path, _, query = request.raw_path.partition("?")
        body = await request.read()
        headers = tuple(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.raw_headers
        )
        answer = emulator.handle_kubernetes(
            EmulatorRequest(
                method=request.method, path=path, query=query, headers=headers, body=body
            )
        )
        return web.Response(
            status=answer.status, body=answer.body, headers=CIMultiDict(answer.headers)
        )

    return handle


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _runner(handler: Any, max_body: int) -> web.ServerRunner:
    from aiohttp import web  # imported when a server starts: in-process use never needs it

    def make_request(
        message: Any, payload: Any, protocol: Any, writer: Any, task: Any
    ) -> web.BaseRequest:
        # The low-level server's own factory, with another body limit than aiohttp's 1 MiB.
        loop = asyncio.get_running_loop()
        return web.BaseRequest(
            message, payload, protocol, writer, task, loop, client_max_size=max_body
        )

    server = web.Server(handler, request_factory=make_request)
    runner = web.ServerRunner(server, access_log=None, handle_signals=False)
    await runner.setup()
    return runner


class _Running:
    """The listeners of one served emulator, stopped together."""

    def __init__(self, emulator: EKSEmulator, url: str, runners: list[web.BaseRunner]) -> None:
        self.emulator = emulator
        self.url = url
        self.runners = runners
        self.kube_url: str | None = None

    async def close(self) -> None:
        if self.kube_url is not None:
            self.emulator._kube_serving(self.kube_url, serving=False)
        for runner in reversed(self.runners):
            await runner.cleanup()


async def _start_kube(emulator: EKSEmulator, host: str, running: _Running) -> None:
    from aiohttp import web

    try:
        context = emulator._certificate_authority().server_context([host])
    except ImportError as exc:
        logger.warning("eks_async emulator: no Kubernetes endpoints: %s", exc)
        return
    runner = await _runner(_kube_handler(emulator), _MAX_KUBE_BODY)
    running.runners.append(runner)
    site = web.TCPSite(runner, host, 0, ssl_context=context)
    await site.start()
    bound_port = runner.addresses[0][1]
    # A wildcard address is served on every interface; clients reach it on the loopback.
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    running.kube_url = f"https://{_shown(shown)}:{bound_port}"
    emulator._kube_serving(running.kube_url, serving=True)


async def _start(emulator: EKSEmulator, host: str, port: int) -> _Running:
    from aiohttp import web

    runner = await _runner(_handler(emulator), _MAX_BODY)
    running = _Running(emulator, "", [runner])
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        running.url = f"http://{_shown(host)}:{bound_port}"
        await _start_kube(emulator, host, running)
    except BaseException:
        await running.close()
        raise
    return running


@contextlib.asynccontextmanager
async def serve(
    emulator: EKSEmulator, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``emulator`` on ``host:port`` (0: any free port) while the block runs.

    The clusters' Kubernetes APIs are served over HTTPS on another free port meanwhile.
    """
    running = await _start(emulator, host, port)
    try:
        yield running.url
    finally:
        await running.close()
