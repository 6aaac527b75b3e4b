"""SigV4 checks, done the way AWS's front end does them, against known test keys.

The signature is recomputed from the request as received: the method, the path as sent
(normalized and encoded once more, as for every service but S3), the query parameters
decoded, re-encoded and sorted, the headers the ``Authorization`` header says were signed,
and the payload's SHA-256. Refusals carry AWS's codes and wording: a wrong signature or a
timestamp too far from the emulator's clock get ``InvalidSignatureException``, an unknown
access key ``UnrecognizedClientException``. Like EKS, a signature mismatch echoes the
canonical request computed, which holds the ``x-amz-security-token`` line of a caller with
temporary credentials: the client redacts it (``eks_async._redact``). The emulator itself
never puts a secret key in an error or a repr.

The arithmetic is the emulator's own (``_sigv4_check``), held to botocore's signer by the
tests: nothing of the client's signer (``eks_async._auth``) is used, so a bug there is
refused here instead of agreeing with itself.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import threading
import time
from typing import Final
from urllib.parse import quote, unquote

import attrs

from ._config import DEFAULT_ACCOUNT_ID
from ._sigv4_check import ALGORITHM, canonical_uri, format_amz_date, signature, signing_key
from ._sigv4_check import string_to_sign as make_string_to_sign
from ._wire import EmulatorRequest, WireError

__all__ = [
    "TEST_ACCESS_KEY_ID",
    "TEST_SECRET_ACCESS_KEY",
    "SignatureVerifier",
]

#: The access key the emulator knows from the start (account ``123456789012``).
TEST_ACCESS_KEY_ID: Final = "AKIDEMULATOR"
#: Its secret. Not a secret at all: it only opens the emulator.
TEST_SECRET_ACCESS_KEY: Final = "emulator-secret"

_SERVICE: Final = "eks"
_QUERY_SAFE: Final = "-_.~"
#: What a region name looks like (us-west-2, cn-north-1, us-gov-east-1, eusc-de-east-1).
REGION = re.compile(r"[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_INVALID_TOKEN: Final = "The security token included in the request is invalid."
#: The prose of a signature mismatch (the emulator's words); the canonical request and the
#: string to sign it computed follow, verbatim, as EKS echoes them.
_MISMATCH: Final = (
    "Signature mismatch: the signature sent is not the one this request computes to with "
    "the secret key of its access key id. Compare what was signed with the canonical "
    "request and string to sign below."
)


@attrs.frozen(kw_only=True)
class _Key:
    secret_access_key: str = attrs.field(repr=False)
    session_token: str | None = attrs.field(repr=False)
    account_id: str


def _parse_amz(value: str) -> float | None:
    try:
        parsed = time.strptime(value, "%Y%m%dT%H%M%SZ")
    except ValueError:
        return None
    return float(calendar.timegm(parsed))


def canonical_query(query: str) -> str:
    """The query's parameters decoded, re-encoded as SigV4 wants, sorted by name then value."""
    if not query:
        return ""
    pairs = []
    for part in query.split("&"):
        key, _, value = part.partition("=")
        pairs.append(
            (
                quote(unquote(key, errors="replace"), safe=_QUERY_SAFE),
                quote(unquote(value, errors="replace"), safe=_QUERY_SAFE),
            )
        )
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


class SignatureVerifier:
    """The keys the emulator accepts and the check of one request's signature."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, _Key] = {}
        self.register(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY)

    def __repr__(self) -> str:
        return f"SignatureVerifier(keys={len(self._keys)})"

    def register(
        self,
        access_key_id: str,
        secret_access_key: str,
        *,
        session_token: str | None = None,
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> None:
        """Accept requests signed with this key (and, if given, only with this token)."""
        if not access_key_id or not secret_access_key:
            raise ValueError("an access key needs an id and a secret")
        if not re.fullmatch(r"[0-9]{12}", account_id):
            raise ValueError("account_id must be 12 digits")
        with self._lock:
            self._keys[access_key_id] = _Key(
                secret_access_key=secret_access_key,
                session_token=session_token,
                account_id=account_id,
            )

    def account_of(self, access_key_id: str) -> str | None:
        key = self._keys.get(access_key_id)
        return key.account_id if key is not None else None

    def scope(self, request: EmulatorRequest) -> tuple[str, str] | None:
        """``(access key id, region)`` from the Authorization header, unchecked."""
        auth = request.header("authorization") or ""
        match = re.search(r"Credential=([^/,\s]+)/[^/,\s]*/([^/,\s]+)/", auth)
        return (match.group(1), match.group(2)) if match else None

    def verify(
        self, request: EmulatorRequest, *, now: float, max_skew: float, service: str = _SERVICE
    ) -> tuple[str, str]:
        """``(account id, region)`` of a request correctly signed for ``service`` (``eks``
        by default); else raises ``WireError``."""
        auth = request.header("authorization")
        if auth is None:
            raise WireError("MissingAuthenticationTokenException", "Missing Authentication Token")
        algorithm, _, rest = auth.strip().partition(" ")
        if algorithm != ALGORITHM:
            raise WireError(
                "IncompleteSignatureException",
                f"Unsupported AWS 'algorithm': '{algorithm[:40]}'.",
            )
        parts: dict[str, str] = {}
        for piece in rest.split(","):
            name, eq, value = piece.strip().partition("=")
            if eq:
                parts.setdefault(name, value)
        amz_date = request.header("x-amz-date")
        problems = [
            f"Authorization header requires '{name}' parameter."
            for name in ("Credential", "Signature", "SignedHeaders")
            if not parts.get(name)
        ]
        if amz_date is None:
            problems.append(
                "Authorization header requires existence of either a 'X-Amz-Date' or a "
                "'Date' header."
            )
        if problems:
            raise WireError("IncompleteSignatureException", " ".join(problems))
        assert amz_date is not None
        scope = parts["Credential"].split("/")
        if len(scope) != 5:
            raise WireError(
                "IncompleteSignatureException",
                "Credential must have exactly 5 slash-delimited elements, e.g. "
                "keyid/date/region/service/term, got "
                f"'{parts['Credential'][:120]}'",
            )
        key_id, date_stamp, region, scoped_service, terminator = scope
        key = self._keys.get(key_id)
        if key is None:
            raise WireError("UnrecognizedClientException", _INVALID_TOKEN)
        token = request.header("x-amz-security-token")
        if token != key.session_token:
            raise WireError("UnrecognizedClientException", _INVALID_TOKEN)

        signed_at = _parse_amz(amz_date)
        if signed_at is None:
            raise WireError(
                "IncompleteSignatureException",
                f"Date must be in ISO-8601 'basic format'. Got '{amz_date[:40]}'.",
            )
        minutes = f"{max_skew / 60:g} min."
        if signed_at < now - max_skew:
            raise WireError(
                "InvalidSignatureException",
                f"Signature expired: {amz_date} is now earlier than "
                f"{format_amz_date(now - max_skew)} ({format_amz_date(now)} - {minutes})",
            )
        if signed_at > now + max_skew:
            raise WireError(
                "InvalidSignatureException",
                f"Signature not yet current: {amz_date} is still later than "
                f"{format_amz_date(now + max_skew)} ({format_amz_date(now)} + {minutes})",
            )
        if terminator != "aws4_request":
            raise WireError(
                "InvalidSignatureException",
                f"Credential should be scoped with a valid terminator: 'aws4_request', "
                f"not '{terminator[:40]}'.",
            )
        if date_stamp != amz_date[:8]:
            raise WireError(
                "InvalidSignatureException",
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                f"date from HTTP: '{date_stamp[:20]}' != '{amz_date[:8]}', from '{amz_date}'.",
            )
        if scoped_service != service:
            raise WireError(
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{service}'. ",
            )
        if not REGION.fullmatch(region):
            raise WireError(
                "InvalidSignatureException",
                f"Credential should be scoped to a valid region, not '{region[:40]}'. ",
            )
        signed_list = parts["SignedHeaders"]
        signed = signed_list.split(";")
        if "host" not in signed:
            raise WireError(
                "InvalidSignatureException",
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            )
        canonical_headers = "".join(
            f"{name}:{','.join(' '.join(v.split()) for v in request.header_values(name))}\n"
            for name in signed
        )
        payload_hash = request.header("x-amz-content-sha256")
        actual_hash = hashlib.sha256(request.body).hexdigest()
        if payload_hash is None:
            payload_hash = actual_hash
        elif payload_hash != actual_hash and payload_hash != "UNSIGNED-PAYLOAD":
            raise WireError(
                "InvalidSignatureException",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
        canonical_request = "\n".join(
            (
                request.method,
                canonical_uri(request.path),
                canonical_query(request.query),
                canonical_headers,
                signed_list,
                payload_hash,
            )
        )
        credential_scope = f"{date_stamp}/{region}/{service}/{terminator}"
        string_to_sign = make_string_to_sign(amz_date, credential_scope, canonical_request)
        expected = signature(
            signing_key(key.secret_access_key, date_stamp, region, service), string_to_sign
        )
        given = parts["Signature"]
        if not _SIGNATURE.fullmatch(given) or not hmac.compare_digest(expected, given):
            raise WireError(
                "InvalidSignatureException",
                f"{_MISMATCH}\n\nCanonical request computed:\n"
                f"'{canonical_request}'\n\nString to sign computed:\n"
                f"'{string_to_sign}'\n",
            )
        return key.account_id, region


def utc_now() -> float:
    return time.time()
