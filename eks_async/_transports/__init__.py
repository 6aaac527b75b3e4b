"""Transports: how a signed request reaches EKS and its answer comes back (see ``base``).

``open_transport`` is the one place where the client's stack is chosen:

- a caller's ``httpx.AsyncClient`` or ``httpx.AsyncBaseTransport`` → ``HttpxTransport``
  over it (the caller keeps it and closes it);
- else a proxy named in the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, any case) →
  ``HttpxTransport`` owning an ``httpx.AsyncClient(trust_env=True)``, which also honours
  NO_PROXY;
- else ``PoolTransport``, eks_async's own keep-alive pool (httptools, no httpx).

Importing this package imports neither httptools nor httpx: the factory imports the
implementation it picks.
"""

from __future__ import annotations

import os
import ssl
from typing import TYPE_CHECKING

from .base import Answer, Limits, Timeouts, Transport

if TYPE_CHECKING:
    import httpx

__all__ = ["Answer", "Limits", "Timeouts", "Transport", "open_transport", "proxy_in_env"]

_PROXY_VARIABLES = (
    "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"
)


def proxy_in_env() -> bool:
    """Whether the environment names a proxy (then httpx, which reads it, carries calls)."""
    return any(os.environ.get(name) for name in _PROXY_VARIABLES)


def open_transport(
    *,
    http_client: httpx.AsyncClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 100,
    ssl_context: ssl.SSLContext | None = None,
    limits: Limits | None = None,
    proxy: bool | None = None,
) -> tuple[Transport, bool]:
    """The transport for a client, and whether the client owns it (must ``aclose`` it).

    ``ssl_context`` and ``max_connections`` apply to the transports eks_async makes; a
    caller's client or transport keeps its own settings. ``limits`` applies to all.
    ``proxy`` is whether the environment named a proxy when the client was made (read from
    the environment now when not given).
    """
    from .._exceptions import ConfigurationError

    if http_client is not None and transport is not None:
        raise ConfigurationError("give http_client or transport, not both")
    if http_client is not None or transport is not None:
        from .httpx import HttpxTransport

        return HttpxTransport(client=http_client, transport=transport, limits=limits), False
    if proxy if proxy is not None else proxy_in_env():
        from .httpx import HttpxTransport

        try:
            proxied = HttpxTransport.from_environment(
                max_connections=max_connections, ssl_context=ssl_context, limits=limits
            )
        except (ValueError, ImportError) as exc:  # a proxy URL httpx cannot use
            raise ConfigurationError(
                f"the proxy named in the environment cannot be used: {type(exc).__name__}"
            ) from exc
        return proxied, True
    from .pool import PoolTransport

    return PoolTransport(
        max_connections=max_connections, ssl_context=ssl_context, limits=limits
    ), True
