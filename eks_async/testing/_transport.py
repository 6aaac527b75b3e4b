"""The emulator as an ``httpx`` transport: requests answered in-process, no sockets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from ._wire import EmulatorRequest

if TYPE_CHECKING:
    from ._emulator import EKSEmulator

__all__ = ["EmulatorTransport"]


class EmulatorTransport(httpx.AsyncBaseTransport):
    """Hands each request to an ``EKSEmulator`` and returns its answer.

    A dropped connection (``Fault.DROP_BEFORE`` / ``DROP_AFTER``) raises
    ``httpx.RemoteProtocolError``, as httpx does when a server hangs up without
    answering; the caller cannot tell whether the request was acted on.
    """

    def __init__(self, emulator: EKSEmulator) -> None:
        self.emulator = emulator

    def __repr__(self) -> str:
        return f"EmulatorTransport({self.emulator!r})"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer an httpx request from the emulator, in process (httpx's transport interface)."""
        target = request.url.raw_path.decode("ascii", "replace")
        path, _, query = target.partition("?")
        body = await request.aread()
        headers = tuple(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw
        )
        answer = await self.emulator.handle(
            EmulatorRequest(
                method=request.method, path=path, query=query, headers=headers, body=body
            )
        )
        if answer.drop:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return httpx.Response(
            answer.status, headers=list(answer.headers), content=answer.body, request=request
        )
