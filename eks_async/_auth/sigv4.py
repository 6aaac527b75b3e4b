"""AWS Signature Version 4, written for the per-request hot path.

The output matches botocore's ``SigV4Auth`` (signed headers) and ``SigV4QueryAuth``
(presigned URLs) byte for byte: same canonical URI (normalised, then percent-encoded a
second time), same canonical query and headers, same payload hash. The derived signing key
is cached per secret and day, and the common URL shapes are split without urllib.
"""

from __future__ import annotations

import calendar
import datetime
import functools
import hashlib
import hmac
import re
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from .credentials import Credentials

__all__ = ["EMPTY_SHA256", "SigV4Signer", "amz_date", "derive_signing_key"]

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# botocore.auth.SIGNED_HEADERS_BLACKLIST
_UNSIGNED_HEADERS = frozenset(
    {
        "baggage",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "traceparent",
        "tracestate",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
    }
)
# Headers sign_headers() replaces or looks at (lower-cased).
_SPECIAL_HEADERS = frozenset(
    {"authorization", "date", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"}
)
# SigV4QueryAuth drops this Content-Type (botocore sets it by default for query services).
_PRESIGN_DROPPED_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
_QUERY_SAFE = "-._~"  # botocore.utils.SAFE_CHARS
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNSAFE_URL_CHARS = frozenset("\t\r\n")
_KEY_CACHE_SIZE = 8

# The IPv6 literal pattern botocore vendors from urllib3 (botocore.compat.IPV6_ADDRZ_RE).
_HEX = "[0-9A-Fa-f]{1,4}"
_LS32 = rf"(?:{_HEX}:{_HEX}|(?:[0-9]{{1,3}}\.){{3}}[0-9]{{1,3}})"
_IPV6 = (
    "(?:"
    + "|".join(
        v.format(h=_HEX, ls32=_LS32)
        for v in (
            "(?:{h}:){{6}}{ls32}",
            "::(?:{h}:){{5}}{ls32}",
            "(?:{h})?::(?:{h}:){{4}}{ls32}",
            "(?:(?:{h}:)?{h})?::(?:{h}:){{3}}{ls32}",
            "(?:(?:{h}:){{0,2}}{h})?::(?:{h}:){{2}}{ls32}",
            "(?:(?:{h}:){{0,3}}{h})?::{h}:{ls32}",
            "(?:(?:{h}:){{0,4}}{h})?::{ls32}",
            "(?:(?:{h}:){{0,5}}{h})?::{h}",
            "(?:(?:{h}:){{0,6}}{h})?::",
        )
    )
    + ")"
)
_ZONE_ID = r"(?:%25|%)(?:[ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._!\-~]|%[a-fA-F0-9]{2})+"
_IPV6_ADDRZ_RE = re.compile(rf"^\[{_IPV6}(?:{_ZONE_ID})?\]$")


def amz_date(now: datetime.datetime) -> str:
    """``now`` (an aware datetime) as a SigV4 timestamp: ``20240131T235959Z``."""
    if now.tzinfo is None:
        raise ValueError("SigV4 needs an aware datetime (UTC)")
    if now.utcoffset():
        now = now.astimezone(datetime.UTC)
    if now.year < 1000:  # strftime does not zero-pad such years; keep botocore's output
        return now.strftime("%Y%m%dT%H%M%SZ")
    return "%04d%02d%02dT%02d%02d%02dZ" % (  # noqa: UP031 - faster than strftime/f-string
        now.year,
        now.month,
        now.day,
        now.hour,
        now.minute,
        now.second,
    )


def derive_signing_key(secret_key: str, date_stamp: str, region: str, service: str) -> bytes:
    """The SigV4 signing key: four chained HMACs over date, region, service."""
    key = hmac.digest(f"AWS4{secret_key}".encode(), date_stamp.encode(), "sha256")
    key = hmac.digest(key, region.encode(), "sha256")
    key = hmac.digest(key, service.encode(), "sha256")
    return hmac.digest(key, b"aws4_request", "sha256")


# -- URL pieces -------------------------------------------------------------------------


def _split_url(url: str) -> tuple[str, str, str, bool]:
    """``(scheme://netloc, path, query, bracket_ipv6)`` as urlsplit would give them."""
    if url.startswith("https://"):
        start = 8
    elif url.startswith("http://"):
        start = 7
    else:
        return _split_url_slow(url)
    if "\t" in url or "\r" in url or "\n" in url:
        return _split_url_slow(url)
    end = url.find("/", start)
    if end < 0:
        end = len(url)
    q = url.find("?", start, end)
    if q >= 0:
        end = q
    f = url.find("#", start, end)
    if f >= 0:
        end = f
    prefix = url[:end]
    rest = url[end:]
    f = rest.find("#")
    if f >= 0:
        rest = rest[:f]
    path, _, query = rest.partition("?")
    return prefix, path, query, True


def _split_url_slow(url: str) -> tuple[str, str, str, bool]:
    parts = urlsplit(url)
    # botocore only brackets an IPv6 host when the URL has no tab/CR/LF in it.
    bracket = _UNSAFE_URL_CHARS.isdisjoint(url)
    return f"{parts.scheme}://{parts.netloc}", parts.path, parts.query, bracket


@functools.lru_cache(maxsize=64)
def _host_header(prefix: str, bracket: bool) -> str:
    """The Host value botocore derives from ``scheme://netloc`` (botocore.auth._host_from_url)."""
    parts = urlsplit(prefix)
    host = parts.hostname
    if not host:
        raise ValueError("the URL to sign has no host")
    if bracket and _IPV6_ADDRZ_RE.match(f"[{host}]") is not None:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{port}"
    return host


def _remove_dot_segments(path: str) -> str:
    # botocore.utils.remove_dot_segments: also drops empty segments ("//").
    out: list[str] = []
    for segment in path.split("/"):
        if segment and segment != ".":
            if segment == "..":
                if out:
                    out.pop()
            else:
                out.append(segment)
    first = "/" if path[0] == "/" else ""
    last = "/" if path[-1] == "/" and out else ""
    return first + "/".join(out) + last


@functools.lru_cache(maxsize=1024)
def _canonical_uri(path: str) -> str:
    # Non-S3 services: normalise, then percent-encode again ("%2F" becomes "%252F").
    return quote(_remove_dot_segments(path) if path else "/", safe="/~")


def _canonical_query(query: str) -> str:
    # The query is taken as it appears in the URL (already encoded): only sorted.
    if not query:
        return ""
    if "&" not in query:
        return query if "=" in query else query + "="
    pairs = []
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        pairs.append((key, value))
    pairs.sort()
    return "&".join([f"{k}={v}" for k, v in pairs])


def _percent_encode_pairs(pairs: list[tuple[str, str]]) -> str:
    # botocore.utils.percent_encode_sequence
    return "&".join(
        f"{quote(k.encode(), safe=_QUERY_SAFE)}={quote(v.encode(), safe=_QUERY_SAFE)}"
        for k, v in pairs
    )


def _signed_header_list(names: list[str]) -> str:
    # botocore strips the names here (not in the canonical headers); a no-op for real names.
    stripped = [n.strip() for n in names]
    if stripped != names:
        stripped.sort()
    return ";".join(stripped)


def _trim(value: str) -> str:
    return " ".join(value.split())


class SigV4Signer:
    """Signs requests for one service and region with SigV4.

    Build it once per client. It keeps the derived signing keys (one per secret and UTC
    day), which is why it never shows them: its repr names only service and region.
    """

    __slots__ = ("_keys", "_region", "_service")

    def __init__(self, service: str, region: str) -> None:
        if not service or not region:
            raise ValueError("SigV4Signer needs a service and a region")
        self._service = service
        self._region = region
        # (secret, date, region, service) -> an HMAC primed with the derived signing key;
        # copying it skips the key setup on every request.
        self._keys: dict[tuple[str, str, str, str], hmac.HMAC] = {}

    @property
    def service(self) -> str:
        return self._service

    @property
    def region(self) -> str:
        return self._region

    def __repr__(self) -> str:
        return f"SigV4Signer(service={self._service!r}, region={self._region!r})"

    def __reduce__(self) -> tuple[type[SigV4Signer], tuple[str, str]]:
        # Never carry the key cache along when copied or pickled.
        return (SigV4Signer, (self._service, self._region))

    def _signing_hmac(self, secret: str, date_stamp: str, region: str, service: str) -> hmac.HMAC:
        cache_key = (secret, date_stamp, region, service)
        mac = self._keys.get(cache_key)
        if mac is None:
            # Keep only today's keys (a new day drops the old ones), and only a few.
            keys = {k: v for k, v in self._keys.items() if k[1] == date_stamp}
            if len(keys) >= _KEY_CACHE_SIZE:
                keys.clear()
            key = derive_signing_key(secret, date_stamp, region, service)
            mac = keys[cache_key] = hmac.new(key, digestmod=hashlib.sha256)
            self._keys = keys
        return mac

    def _finish(
        self,
        *,
        method: str,
        path: str,
        query: str,
        canon: dict[str, str],
        payload_hash: str,
        credentials: Credentials,
        stamp: str,
        region: str,
        service: str,
    ) -> tuple[str, str, str]:
        """``(credential scope, signed header list, signature)``."""
        names = sorted(canon)
        canonical_headers = "".join([f"{n}:{canon[n]}\n" for n in names])
        signed = _signed_header_list(names)
        canonical_request = (
            f"{method.upper()}\n{_canonical_uri(path)}\n{_canonical_query(query)}\n"
            f"{canonical_headers}\n{signed}\n{payload_hash}"
        )
        date_stamp = stamp[:8]
        scope = f"{date_stamp}/{region}/{service}/aws4_request"
        string_to_sign = (
            f"{ALGORITHM}\n{stamp}\n{scope}\n"
            f"{hashlib.sha256(canonical_request.encode()).hexdigest()}"
        )
        mac = self._signing_hmac(credentials.secret_access_key, date_stamp, region, service).copy()
        mac.update(string_to_sign.encode())
        signature = mac.hexdigest()
        return scope, signed, signature

    def sign_headers(
        self,
        *,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        credentials: Credentials,
        now: datetime.datetime,
        service: str | None = None,
        region: str | None = None,
    ) -> None:
        """Sign a request in its headers, as botocore's ``SigV4Auth.add_auth`` does.

        ``url`` is the URL exactly as it will be sent; ``headers`` the headers that will be
        sent. Any earlier ``Authorization``/``X-Amz-Date`` (and ``X-Amz-Security-Token``
        when the credentials have a token) is replaced; ``X-Amz-Date`` (or ``Date``, if the
        request already carries one), ``X-Amz-Security-Token`` and ``Authorization`` are
        added to ``headers`` in place. ``service``/``region`` override the signer's own.
        """
        prefix, path, query, bracket = _split_url(url)
        host = _host_header(prefix, bracket)
        stamp = amz_date(now)
        token = credentials.session_token

        canon: dict[str, str] = {}
        drop: list[str] = []
        has_date = False
        content_sha: str | None = None
        for name, value in headers.items():
            lname = name.lower()
            if lname in _SPECIAL_HEADERS:
                if lname == "authorization" or lname == "x-amz-date":
                    drop.append(name)
                    continue
                if lname == "date":
                    has_date = True
                    drop.append(name)
                    continue
                if lname == "x-amz-security-token":
                    if token:
                        drop.append(name)
                        continue
                elif content_sha is None:  # x-amz-content-sha256: botocore uses the first
                    content_sha = value
            elif lname in _UNSIGNED_HEADERS:
                continue
            trimmed = " ".join(value.split())
            prev = canon.get(lname)
            canon[lname] = trimmed if prev is None else f"{prev},{trimmed}"
        for name in drop:
            del headers[name]

        if has_date:
            from email.utils import formatdate

            date_value = formatdate(calendar.timegm(now.utctimetuple()))
            headers["Date"] = date_value
            canon["date"] = _trim(date_value)
        else:
            headers["X-Amz-Date"] = stamp
            canon["x-amz-date"] = stamp
        if token:
            headers["X-Amz-Security-Token"] = token
            canon["x-amz-security-token"] = _trim(token)
        if "host" not in canon:
            canon["host"] = host

        if content_sha is not None:
            payload_hash = content_sha
        elif body:
            payload_hash = hashlib.sha256(body).hexdigest()
        else:
            payload_hash = EMPTY_SHA256

        scope, signed, signature = self._finish(
            method=method,
            path=path,
            query=query,
            canon=canon,
            payload_hash=payload_hash,
            credentials=credentials,
            stamp=stamp,
            region=region or self._region,
            service=service or self._service,
        )
        headers["Authorization"] = (
            f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )

    def presign_url(
        self,
        *,
        method: str,
        url: str,
        headers: dict[str, str],
        credentials: Credentials,
        now: datetime.datetime,
        expires: int,
        service: str | None = None,
        region: str | None = None,
    ) -> str:
        """A presigned URL, as botocore's ``SigV4QueryAuth`` makes it.

        The URL's own query parameters come first (decoded and re-encoded the way botocore
        does, keeping the first value of a repeated key), then the ``X-Amz-*`` parameters,
        then ``X-Amz-Signature``. ``headers`` (e.g. ``x-k8s-aws-id``) are signed but not
        put in the URL, and are left unchanged. The payload is taken to be empty.
        ``service``/``region`` override the signer's own (e.g. ``sts`` for EKS tokens).
        """
        if isinstance(expires, bool) or not isinstance(expires, int):
            raise TypeError("expires must be an int (seconds)")
        region = region or self._region
        service = service or self._service
        stamp = amz_date(now)
        token = credentials.session_token

        drop_content_type = False
        for name, value in headers.items():
            if name.lower() == "content-type":
                drop_content_type = value == _PRESIGN_DROPPED_CONTENT_TYPE
                break
        canon: dict[str, str] = {}
        content_sha: str | None = None
        for name, value in headers.items():
            lname = name.lower()
            if lname in _UNSIGNED_HEADERS or (drop_content_type and lname == "content-type"):
                continue
            if lname == "x-amz-content-sha256" and content_sha is None:
                content_sha = value
            trimmed = " ".join(value.split())
            prev = canon.get(lname)
            canon[lname] = trimmed if prev is None else f"{prev},{trimmed}"
        parts = urlsplit(url)
        if "host" not in canon:
            # botocore derives it from the rebuilt URL, which never holds a tab/CR/LF.
            canon["host"] = _host_header(f"{parts.scheme}://{parts.netloc}", True)
        signed_list = _signed_header_list(sorted(canon))

        # The URL's parameters, first value per key (botocore goes through parse_qs).
        operation_params: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            operation_params.setdefault(key, value)
        auth_params = [
            ("X-Amz-Algorithm", ALGORITHM),
            (
                "X-Amz-Credential",
                f"{credentials.access_key_id}/{stamp[:8]}/{region}/{service}/aws4_request",
            ),
            ("X-Amz-Date", stamp),
            ("X-Amz-Expires", str(expires)),
            ("X-Amz-SignedHeaders", signed_list),
        ]
        if token is not None:
            auth_params.append(("X-Amz-Security-Token", token))
        new_query = _percent_encode_pairs(auth_params)
        if operation_params:
            new_query = f"{_percent_encode_pairs(list(operation_params.items()))}&{new_query}"
        new_url = urlunsplit((parts.scheme, parts.netloc, parts.path, new_query, parts.fragment))
        new_parts = urlsplit(new_url)

        _, _, signature = self._finish(
            method=method,
            path=new_parts.path,
            query=new_parts.query,
            canon=canon,
            payload_hash=EMPTY_SHA256 if content_sha is None else content_sha,
            credentials=credentials,
            stamp=stamp,
            region=region,
            service=service,
        )
        return f"{new_url}&X-Amz-Signature={signature}"
