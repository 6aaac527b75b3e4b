"""The emulator served from a background thread, for tests that are not async themselves."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any, Self

from ._emulator import EKSEmulator
from ._server import _start

__all__ = ["EmulatorServer", "run_emulator_server"]


class EmulatorServer:
    """An emulator served from a background thread: ``with EmulatorServer() as server:``.

    ``server.url`` is the endpoint to give a client (``endpoint_url=server.url``);
    ``server.emulator`` the emulator behind it, usable from the test's thread.
    """

    def __init__(
        self,
        emulator: EKSEmulator | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.emulator = emulator if emulator is not None else EKSEmulator()
        self._host = host
        self._port = port
        self._url: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        return f"EmulatorServer(url={self._url!r})"

    @property
    def url(self) -> str:
        """The server's base URL (``http://127.0.0.1:PORT``); raises ``RuntimeError`` before ``start``."""
        if self._url is None:
            raise RuntimeError("the server is not running")
        return self._url

    def start(self) -> Self:
        """Serve from a background thread; returns once the server listens."""
        if self._thread is not None:
            raise RuntimeError("the server was already started")
        self._thread = threading.Thread(target=self._run, name="eks-async-emulator", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise RuntimeError(f"the emulator server did not start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        """Stop serving and join the thread (does nothing when not started)."""
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        self._thread = None
        self._url = None

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        running = await _start(self.emulator, self._host, self._port)
        self._url = running.url
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await running.close()

    def __enter__(self) -> Self:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_emulator_server(
    emulator: EKSEmulator | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    **settings: Any,
) -> EmulatorServer:
    """A started ``EmulatorServer``; use it as ``with run_emulator_server() as server:``.

    ``settings`` (``EmulatorConfig`` fields) configure a new emulator when none is given.
    """
    if emulator is None:
        emulator = EKSEmulator(**settings)
    elif settings:
        raise TypeError("give an emulator or settings for a new one, not both")
    return EmulatorServer(emulator, host=host, port=port).start()
