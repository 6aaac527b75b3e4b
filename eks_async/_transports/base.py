"""The transport interface: one HTTP exchange, request in, complete answer out.

Everything above this line (signing, retries, parsing) sees transports only through
``Transport``; everything below it (sockets, TLS, HTTP/1.1 framing, httpx) is an
implementation's business. The client picks its implementation once, when it is built.

A transport raises only eks_async's own ``TransportError`` family:

- ``TimeoutError_`` when the connect timeout, the wait for a free connection or the read
  deadline (one total deadline for the whole answer) passes;
- ``ProtocolError`` when the answer breaks HTTP/1.1's framing rules or one of ``Limits``;
- ``TransportError`` for anything else that left the request without an answer
  (refused, reset, DNS, TLS, closed client).

The retry layer counts every one of them as an attempt. A transport may send a request a
second time on its own only where RFC 9110 allows it and nothing can have happened: the
server closed a *reused* connection before any byte of an answer, and the request is safe to
repeat (``retry_safe``).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping

import attrs

__all__ = ["Answer", "Limits", "Timeouts", "Transport"]

#: ``(status, headers with lower-case names, body)``; repeated headers joined with ", ".
Answer = tuple[int, Mapping[str, str], bytes]


@attrs.frozen(kw_only=True, slots=True)
class Timeouts:
    """Seconds each stage may take; ``None`` waits for ever."""

    #: Opening a connection (TCP and TLS), and waiting for a free one in the pool.
    connect: float | None = 10.0
    #: The whole answer, from the request's last byte to the answer's last: a deadline,
    #: not an idle timer, so a server that trickles a byte at a time cannot stretch it.
    read: float | None = 60.0


@attrs.frozen(kw_only=True, slots=True)
class Limits:
    """What an answer may hold before the exchange fails with ``ProtocolError``.

    EKS answers are kilobytes; the defaults leave room for the largest lists by orders of
    magnitude while bounding what a hostile server can make the client hold.
    """

    #: Bytes of body, after de-chunking.
    max_body: int = 16 * 1024 * 1024
    #: Header fields in the answer's head.
    max_headers: int = 100
    #: Bytes of the status line and header section together.
    max_header_bytes: int = 64 * 1024
    #: Bytes of trailer fields after a chunked body.
    max_trailer_bytes: int = 8 * 1024


class Transport(abc.ABC):
    """Sends one request and returns its whole answer."""

    @abc.abstractmethod
    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        timeouts: Timeouts,
        retry_safe: bool,
    ) -> Answer:
        """The answer to ``method url`` with ``headers`` and ``body``, sent as given.

        ``url`` is written exactly as given (it is signed); Host comes from ``headers`` when
        present, and Content-Length is added when there is a body. ``retry_safe`` says the
        request may be sent again after a reused connection closed before answering.
        """

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close every connection this transport opened; later sends fail."""
