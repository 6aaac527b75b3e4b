"""The emulator's own SigV4 arithmetic, written apart from the client's signer.

The emulator checks what eks_async signs, so it must not reuse eks_async's signer
(``eks_async._auth``): a bug there would agree with itself and pass. These are the pieces
of AWS's documented algorithm a verifier needs, done from the specification: the canonical
URI, the string to sign, the signing key and the signature. Tests hold them to botocore's
``SigV4Auth`` / ``SigV4QueryAuth`` as the reference, not to eks_async's signer.

Nothing here imports ``eks_async._auth`` (a test checks the import graph and what runs).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Final
from urllib.parse import quote

__all__ = [
    "ALGORITHM",
    "EMPTY_PAYLOAD_SHA256",
    "canonical_uri",
    "format_amz_date",
    "sha256_hex",
    "signature",
    "signing_key",
    "string_to_sign",
]

ALGORITHM: Final = "AWS4-HMAC-SHA256"
#: The SHA-256 of an empty payload (a GET, a presigned URL).
EMPTY_PAYLOAD_SHA256: Final = hashlib.sha256(b"").hexdigest()
#: The unreserved characters of RFC 3986 that SigV4 leaves as they are, plus ``/`` in a
#: path (``quote`` keeps ASCII letters and digits, and ``_.-`` always).
_PATH_SAFE: Final = "/~"


def sha256_hex(data: bytes | str) -> str:
    """The lowercase hex SHA-256 of ``data`` (text as UTF-8)."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def format_amz_date(epoch: float) -> str:
    """Epoch seconds as a SigV4 timestamp in ISO-8601 basic format: ``20240131T235959Z``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


def _normalized_path(path: str) -> str:
    """RFC 3986 section 5.2.4 (dot segments), with empty segments dropped as AWS does.

    ``/a//b/./c/../d/`` becomes ``/a/b/d/``; a path that ends up empty is ``/``.
    """
    kept: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if kept:
                del kept[-1]
            continue
        kept.append(segment)
    if not kept:
        return "/" if path.startswith("/") else ""
    text = "/".join(kept)
    if path.startswith("/"):
        text = "/" + text
    if path.endswith("/"):
        text += "/"
    return text


def canonical_uri(path: str) -> str:
    """The canonical URI of a path as sent (already percent-encoded once).

    Every service but S3 normalizes the path and then percent-encodes it once more, so a
    ``%2F`` in the path is ``%252F`` in the canonical request.
    """
    return quote(_normalized_path(path) if path else "/", safe=_PATH_SAFE)


def string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    """What is signed: algorithm, timestamp, credential scope, hash of the canonical request."""
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{sha256_hex(canonical_request)}"


def signing_key(secret_access_key: str, date_stamp: str, region: str, service: str) -> bytes:
    """``kSigning``: HMAC-SHA256 chained from ``"AWS4" + secret`` over date, region, service
    and the terminator ``aws4_request``."""
    key = ("AWS4" + secret_access_key).encode("utf-8")
    for part in (date_stamp, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def signature(key: bytes, to_sign: str) -> str:
    """The hex HMAC-SHA256 of the string to sign under the signing key."""
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
