"""Prototype: the default per-call path without ``httpx.Request``/``httpx.Response``.

``install()`` replaces ``ClientCore._attempt`` (in this process only) with a version that,
when the client owns its transport (no caller ``http_client``/``transport``), hands the
signed headers, the URL string and the body straight to aiohttp (``AiohttpTransport``'s
session) or to ``RawTransport.send_raw`` and reads status, headers and body back, instead of
building an ``httpx.Request`` (URL parsing, header normalisation) and an ``httpx.Response``
(header list, byte stream, content decoder) per call. Everything else (signing, retries,
parsing, errors) is the original code. ``proposals/lean_attempt.diff`` is the same change
as a patch to ``_core.py`` and ``_transport.py``.
"""

from __future__ import annotations

import datetime
from typing import Any

import httpx

from eks_async import _core
from eks_async._exceptions import EKSAsyncError, TimeoutError_, TransportError
from eks_async._operation import OperationSpec
from eks_async._parse import parse_error, parse_output
from eks_async._retry import classify, is_clock_skew, retry_after
from eks_async._sigv4 import _host_header, _split_url

from .rawhttp import RawTransport

__all__ = ["install"]

_original = _core.ClientCore._attempt
_HOSTS: dict[str, str] = {}


def _host(endpoint: str) -> str:
    host = _HOSTS.get(endpoint)
    if host is None:
        prefix, _, _, bracket = _split_url(endpoint)
        host = _HOSTS[endpoint] = _host_header(prefix, bracket)
    return host


async def _send_aiohttp(transport: Any, method: str, url: str,
                        headers: dict[str, str], body: bytes,
                        timeout: dict[str, Any]) -> tuple[int, Any, bytes]:
    # Imported here so that the rawhttp variant never imports aiohttp.
    import aiohttp
    from yarl import URL

    from eks_async._transport import _client_timeout, _translate

    session = transport._session or transport._open()
    try:
        resp = await session.request(
            method, URL(url, encoded=True), headers=headers, data=body or None,
            timeout=_client_timeout(timeout["connect"], timeout["read"], timeout["pool"]),
            allow_redirects=False,
        )
        content = await resp.read()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise _translate(exc, httpx.Request(method, url)) from exc
    return resp.status, resp.headers, content


async def _attempt(self: _core.ClientCore, op: OperationSpec[Any], url: str, body: bytes,
                   attempt: int, waited: float) -> Any:
    if not self._own_transport and not isinstance(self._transport, RawTransport):
        return await _original(self, op, url, body, attempt, waited)
    assert self._signer is not None and self._endpoint is not None
    if self._limiter is not None:
        await self._limiter.acquire()
    headers = {"User-Agent": _core._USER_AGENT}
    if body:
        headers["Content-Type"] = "application/json"
    credentials = await self._credentials.get_credentials()
    now = datetime.datetime.now(datetime.UTC)
    if self._clock_offset:
        now += datetime.timedelta(seconds=self._clock_offset)
    self._signer.sign_headers(
        method=op.method, url=url, headers=headers, body=body, credentials=credentials, now=now
    )
    headers["Host"] = _host(self._endpoint)
    transport = self._get_transport()
    try:
        if isinstance(transport, RawTransport):
            status, resp_headers, content = await transport.send_raw(op.method, url, headers,
                                                                     body)
        else:
            status, resp_headers, content = await _send_aiohttp(
                transport, op.method, url, headers, body, self._timeout
            )
    except httpx.TimeoutException as exc:
        error: EKSAsyncError = TimeoutError_(f"{op.name}: {type(exc).__name__}",
                                             operation=op.name)
        self._account(error, attempt, waited)
        raise error from exc
    except httpx.TransportError as exc:
        error = TransportError(f"{op.name}: {type(exc).__name__}: {exc}", operation=op.name)
        self._account(error, attempt, waited)
        raise error from exc
    request_id = resp_headers.get("x-amzn-requestid")
    if status < 300:
        if self._limiter is not None:
            self._limiter.update(throttled=False)
        return parse_output(op, status, content, request_id, attempts=attempt, retry_wait=waited)
    service_error = parse_error(op.name, status, resp_headers, content, request_id)
    if self._limiter is not None:
        self._limiter.update(throttled=classify(service_error) == "throttling")
    if is_clock_skew(service_error):
        self._correct_clock(resp_headers.get("date"))
    service_error.retry_after = retry_after(resp_headers)
    self._account(service_error, attempt, waited)
    raise service_error


def install() -> None:
    """Use the lean path in this process (benchmarks only)."""
    _core.ClientCore._attempt = _attempt  # type: ignore[method-assign]
