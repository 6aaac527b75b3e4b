"""The emulator over real HTTP on 127.0.0.1, for clients that need a socket.

``serve`` runs an aiohttp low-level server on the current event loop (no router: every
path, however odd, reaches the emulator as sent). ``EmulatorServer`` runs the same in a
background thread with its own loop, for synchronous code such as boto3. A dropped call
closes the connection without writing a byte. aiohttp's server module is imported only
when a server starts. The same URL serves EKS Auth (``EKSAuthClient(endpoint_url=url)``)
and the Pod Identity Agent's ``{url}/v1/credentials`` (``pod_identity_agent_url``), an
address botocore's container credential provider accepts (a loopback host).

Next to it, each cluster's Kubernetes API is served over HTTPS on a port of its own
(``https://127.0.0.1:<port>``, no path, as EKS's endpoints: kubectl drops a path for
discovery), opened when DescribeCluster or ``kubernetes_endpoints()`` first gives it, with
a certificate from the emulator's own CA; while the server runs, DescribeCluster's
``endpoint`` and ``certificateAuthority`` point there. Without the ``cryptography`` package the HTTPS
listener is left out and the EKS API is served alone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
import ssl
import threading
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


def _kube_handler(emulator: EKSEmulator, endpoints: dict[int, str]) -> Any:
    from aiohttp import web
    from multidict import CIMultiDict

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        path, _, query = request.raw_path.partition("?")
        body = await request.read()
        headers = tuple(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.raw_headers
        )
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        endpoint_id = endpoints.get(sockname[1], "-") if sockname else "-"
        answer = emulator.handle_kubernetes(
            EmulatorRequest(
                method=request.method, path=path, query=query, headers=headers, body=body
            ),
            endpoint_id=endpoint_id,
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
        self.kube: _KubeListeners | None = None

    async def close(self) -> None:
        if self.kube is not None:
            self.emulator._kube_serving(self.kube.bind, serving=False)
            await self.kube.close()
        for runner in reversed(self.runners):
            await runner.cleanup()


class _KubeListeners:
    """One HTTPS listener (port) per cluster, so that each endpoint URL has no path.

    ``bind`` may be called from any thread (DescribeCluster runs under the emulator's lock
    wherever its caller is): the socket is bound and listening at once, so the URL works
    straight away, and the loop starts serving it as soon as it runs.
    """

    def __init__(
        self,
        runner: web.ServerRunner,
        context: ssl.SSLContext,
        host: str,
        endpoints: dict[int, str],
    ) -> None:
        self._runner = runner
        self._context = context
        self._host = host
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._urls: dict[str, str] = {}
        self._endpoints = endpoints  # port -> endpoint id, read by the handler
        self._starting: list[concurrent.futures.Future[None]] = []
        self._closed = False

    def bind(self, endpoint_id: str) -> str:
        """The base URL of the cluster's listener, opened on first use."""
        with self._lock:
            url = self._urls.get(endpoint_id)
            if url is not None:
                return url
            family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self._host, 0))
                sock.listen(128)
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
            port = sock.getsockname()[1]
            # A wildcard address is served on every interface; clients use the loopback.
            shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(
                self._host, self._host
            )
            url = f"https://{_shown(shown)}:{port}"
            self._urls[endpoint_id] = url
            self._endpoints[port] = endpoint_id
            if self._closed:
                sock.close()
            else:
                self._starting.append(
                    asyncio.run_coroutine_threadsafe(self._serve(sock), self._loop)
                )
            return url

    async def _serve(self, sock: socket.socket) -> None:
        from aiohttp import web

        site = web.SockSite(self._runner, sock, ssl_context=self._context)
        await site.start()

    async def close(self) -> None:
        with self._lock:
            self._closed = True
            starting = list(self._starting)
        for future in starting:
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(future)


async def _start_kube(emulator: EKSEmulator, host: str, running: _Running) -> None:
    try:
        context = emulator._certificate_authority().server_context([host])
    except ImportError as exc:
        logger.warning("eks_async emulator: no Kubernetes endpoints: %s", exc)
        return
    from ._kube_wire import protobuf_available

    if not protobuf_available():
        logger.warning(
            "eks_async emulator: Kubernetes endpoints speak JSON only: kubectl's create, "
            "auth whoami and auth can-i send protobuf, which needs the 'protobuf' package: "
            'pip install "eks-async[emulator]"'
        )
    endpoints: dict[int, str] = {}
    runner = await _runner(_kube_handler(emulator, endpoints), _MAX_KUBE_BODY)
    running.runners.append(runner)
    running.kube = _KubeListeners(runner, context, host, endpoints)
    emulator._kube_serving(running.kube.bind, serving=True)


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

    Each cluster's Kubernetes API is served over HTTPS on a free port of its own meanwhile.
    """
    running = await _start(emulator, host, port)
    try:
        yield running.url
    finally:
        await running.close()
