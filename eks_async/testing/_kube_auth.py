"""Cluster tokens checked the way EKS's authenticator (aws-iam-authenticator) checks them.

A token is ``k8s-aws-v1.`` plus the unpadded base64url text of a presigned STS
``GetCallerIdentity`` URL. The authenticator first checks the token's form, in this order:
at most 4 KiB, the prefix, the base64, an ``https`` URL on an STS host of the cluster's
partition with the path ``/``, only the query parameters a presigned GetCallerIdentity
needs (case-insensitive, each once), the action, ``x-k8s-aws-id`` among the signed headers,
``X-Amz-Expires`` within 0..900 and an ``X-Amz-Date`` at most 15 minutes old. Then it calls
STS with the URL and the header ``x-k8s-aws-id: <cluster>``, and STS checks the signature.

The emulator does STS's part itself: it recomputes the query-string SigV4 signature with
the registered secret, for the host in the URL and the cluster being accessed, so a token
made for another cluster, by an unknown key, or altered in any way, is refused (with the
emulator's own SigV4 arithmetic, ``_sigv4_check``, never the client's signer). The caller
is the key's account and ARN, which becomes the Kubernetes user name (as an EKS access
entry for an IAM user does). Every refusal is an HTTP 401 to the client; the reason is
kept for tests (``TokenReview.reason``) and never includes a secret.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Final
from urllib.parse import quote, unquote_to_bytes, urlsplit

import attrs

from .._generated import endpoints as _partition_data
from .._generated import sts_endpoints as _sts_data
from ._sigv4_check import (
    ALGORITHM,
    EMPTY_PAYLOAD_SHA256,
    signature,
    signing_key,
    string_to_sign,
)

__all__ = [
    "DEFAULT_MAX_TOKEN_AGE",
    "MAX_TOKEN_BYTES",
    "KeyRecord",
    "KubernetesIdentity",
    "TokenReview",
    "partition_of_region",
    "review_token",
    "sts_hosts",
]

#: What every token starts with (aws-iam-authenticator's ``v1Prefix``).
TOKEN_PREFIX: Final = "k8s-aws-v1."
#: The signed header naming the cluster a token is for (the authenticator's ``clusterIDHeader``).
CLUSTER_ID_HEADER: Final = "x-k8s-aws-id"
#: Longer tokens are refused before anything else is looked at.
MAX_TOKEN_BYTES: Final = 4 * 1024
#: STS accepts a presigned GetCallerIdentity URL this long after its ``X-Amz-Date``.
DEFAULT_MAX_TOKEN_AGE: Final = 15 * 60.0
_ALLOWED_PARAMETERS: Final = frozenset(
    {
        "action",
        "version",
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-expires",
        "x-amz-security-token",
        "x-amz-signature",
        "x-amz-signedheaders",
    }
)
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
_AMZ_DATE: Final = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
_SIGNATURE: Final = re.compile(r"[0-9a-f]{64}")
_BAD_ESCAPE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_QUERY_SAFE: Final = "-_.~"
AUTHENTICATED_GROUP: Final = "system:authenticated"


@attrs.frozen(kw_only=True)
class KeyRecord:
    """What the emulator knows of one access key: its secret and who it belongs to."""

    secret_access_key: str = attrs.field(repr=False)
    session_token: str | None = attrs.field(repr=False)
    account_id: str
    arn: str


@attrs.frozen(kw_only=True)
class KubernetesIdentity:
    """The Kubernetes user an accepted token maps to, as EKS's authenticator reports it."""

    #: The caller's ARN (EKS's default user name for an IAM user's access entry).
    username: str
    #: ``aws-iam-authenticator:<account>:<user id>``.
    uid: str
    groups: tuple[str, ...]
    arn: str
    account_id: str
    access_key_id: str

    def user_info(self) -> dict[str, object]:
        """The ``userInfo`` of a TokenReview or SelfSubjectReview."""
        return {
            "username": self.username,
            "uid": self.uid,
            "groups": list(self.groups),
            "extra": {
                "accessKeyId": [self.access_key_id],
                "arn": [self.arn],
                "canonicalArn": [self.arn],
                "principalId": [self.access_key_id],
                "sessionName": [""],
            },
        }


@attrs.frozen(kw_only=True)
class TokenReview:
    """How the emulator's authenticator judged one token for one cluster."""

    #: The cluster the token was presented to.
    cluster: str
    authenticated: bool
    #: Set when authenticated.
    identity: KubernetesIdentity | None = None
    #: Why the token was refused (empty when accepted). Never includes a secret.
    reason: str = ""
    #: A short digest of the token, to tell tokens apart without showing them.
    token_id: str = ""
    #: The token's ``X-Amz-Date`` (epoch seconds), once it was read.
    signed_at: float | None = None


class _Refused(Exception):
    def __init__(self, reason: str, signed_at: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.signed_at = signed_at


# --------------------------------------------------------------------------- STS hosts


def partition_of_region(region: str) -> str:
    """The partition (``aws``, ``aws-cn``, ``aws-us-gov``, ...) a region belongs to."""
    for row in _partition_data.PARTITIONS:
        name = row[0]
        if region in _partition_data.PARTITION_REGIONS[name] or re.match(row[1], region):
            return str(name)
    return "aws"


@lru_cache(maxsize=16)
def sts_hosts(partition: str) -> dict[str, str]:
    """STS host names of a partition that the authenticator accepts, each with its region.

    The regional host and the FIPS host of every region of the partition, plus the global
    ``sts.amazonaws.com`` in ``aws``; the region is the one STS expects in the signature's
    credential scope there. Read from the STS endpoint data (botocore's endpoints.json and
    STS's rule set, as generated), not from the client's endpoint resolver.
    """
    hosts: dict[str, str] = {}
    templates = _sts_data.URL_TEMPLATES.get(partition, {})
    for region in sorted(_partition_data.PARTITION_REGIONS.get(partition, ())):
        if region.endswith("-global") and region != "aws-global":
            continue
        for fips in (False, True):
            combo = (fips, False)
            special = _sts_data.SPECIAL_REGIONS.get(region, {})
            if combo in special:
                url = special[combo]
            else:
                template = templates.get(combo)
                url = None if template is None else template.format(region=region)
            if url is None:
                continue
            scope_region = _sts_data.LEGACY_SIGNING_REGIONS.get((partition, region), {}).get(
                combo, region
            )
            hosts.setdefault(urlsplit(url).netloc, scope_region)
    return hosts


# --------------------------------------------------------------------------- parsing


def _query_unescape(text: str) -> str:
    # Go's url.QueryUnescape: "+" is a space and every "%" must start a valid escape.
    if _BAD_ESCAPE.search(text):
        raise _Refused("malformed query parameter")
    try:
        return unquote_to_bytes(text.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused("malformed query parameter") from None


def _parse_query(raw: str) -> list[tuple[str, str, str]]:
    """``(key, value, raw piece)`` for each parameter, as Go's ``url.ParseQuery`` reads them."""
    out = []
    for piece in raw.split("&"):
        if not piece:
            continue
        if ";" in piece:
            raise _Refused("malformed query parameter")
        key, _, value = piece.partition("=")
        out.append((_query_unescape(key), _query_unescape(value), piece))
    return out


def _parse_amz_date(value: str) -> float | None:
    if not _AMZ_DATE.fullmatch(value):
        return None
    try:
        return float(calendar.timegm(time.strptime(value, "%Y%m%dT%H%M%SZ")))
    except ValueError:
        return None


def _decode(token: str) -> str:
    if len(token.encode("utf-8", "surrogatepass")) > MAX_TOKEN_BYTES:
        raise _Refused("token is too large")
    if not token.startswith(TOKEN_PREFIX):
        raise _Refused(f"token is missing expected {TOKEN_PREFIX!r} prefix")
    body = token[len(TOKEN_PREFIX) :]
    # base64.RawURLEncoding: the URL-safe alphabet, no padding.
    if not _BASE64URL.fullmatch(body) or len(body) % 4 == 1:
        raise _Refused("illegal base64 data in token")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        url = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _Refused("illegal base64 data in token") from None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise _Refused("invalid control character in pre-signed URL")
    return url


# --------------------------------------------------------------------------- the review


def review_token(
    token: str,
    *,
    cluster: str,
    region: str,
    lookup: Callable[[str], KeyRecord | None],
    now: float,
    max_age: float = DEFAULT_MAX_TOKEN_AGE,
    max_skew: float = 300.0,
) -> TokenReview:
    """Judge ``token`` for the cluster named ``cluster`` in ``region`` at epoch ``now``.

    ``lookup`` finds an access key's record; ``max_age`` is how long after its
    ``X-Amz-Date`` a token is accepted, ``max_skew`` how far in the future it may be dated.
    """
    token_id = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    try:
        identity, signed_at = _check(token, cluster, region, lookup, now, max_age, max_skew)
    except _Refused as refused:
        return TokenReview(
            cluster=cluster,
            authenticated=False,
            reason=refused.reason,
            token_id=token_id,
            signed_at=refused.signed_at,
        )
    return TokenReview(
        cluster=cluster,
        authenticated=True,
        identity=identity,
        token_id=token_id,
        signed_at=signed_at,
    )


def _check(
    token: str,
    cluster: str,
    region: str,
    lookup: Callable[[str], KeyRecord | None],
    now: float,
    max_age: float,
    max_skew: float,
) -> tuple[KubernetesIdentity, float]:
    # --- the authenticator's checks, in its order --------------------------------------
    url = _decode(token)
    try:
        parts = urlsplit(url)
    except ValueError:
        raise _Refused("malformed pre-signed URL") from None
    if parts.scheme != "https":
        raise _Refused(f"unexpected scheme {parts.scheme[:20]!r} in pre-signed URL")
    host = parts.netloc
    hosts = sts_hosts(partition_of_region(region))
    if host not in hosts:
        raise _Refused(f"unexpected hostname {host[:100]!r} in pre-signed URL")
    if parts.path != "/":
        raise _Refused("unexpected path in pre-signed URL")

    params: dict[str, str] = {}
    pieces: list[tuple[str, str]] = []  # (lowercased key, raw piece) for the signature
    for key, value, piece in _parse_query(parts.query):
        lowered = key.lower()
        if lowered not in _ALLOWED_PARAMETERS:
            raise _Refused(f"non-whitelisted query parameter {key[:40]!r}")
        if lowered in params:
            raise _Refused("query parameter with multiple values not supported")
        params[lowered] = value
        pieces.append((lowered, piece))

    if params.get("action") != "GetCallerIdentity":
        raise _Refused("unexpected action parameter in pre-signed URL")
    signed_headers = params.get("x-amz-signedheaders", "").split(";")
    if CLUSTER_ID_HEADER not in (name.lower() for name in signed_headers):
        raise _Refused(f"client did not sign the {CLUSTER_ID_HEADER} header in the pre-signed URL")
    expires_text = params.get("x-amz-expires", "")
    if not _INTEGER.fullmatch(expires_text) or not 0 <= int(expires_text) <= 900:
        raise _Refused(f"invalid X-Amz-Expires parameter in pre-signed URL: {expires_text[:20]!r}")
    date = params.get("x-amz-date", "")
    if not date:
        raise _Refused("X-Amz-Date parameter must be present in pre-signed URL")
    signed_at = _parse_amz_date(date)
    if signed_at is None:
        raise _Refused(f"error parsing X-Amz-Date parameter {date[:40]!r}")
    if now > signed_at + max_age:
        raise _Refused(
            f"X-Amz-Date parameter is expired ({max_age / 60:g} minute expiration) {date}",
            signed_at,
        )

    # --- what STS checks when the authenticator calls it --------------------------------
    def sts(reason: str) -> _Refused:
        return _Refused(f"STS refused the pre-signed URL: {reason}", signed_at)

    if params.get("x-amz-algorithm") != ALGORITHM:
        raise sts(f"X-Amz-Algorithm must be {ALGORITHM}")
    scope = params.get("x-amz-credential", "").split("/")
    if len(scope) != 5:
        raise sts("X-Amz-Credential must have 5 slash-separated parts")
    key_id, date_stamp, scope_region, service, terminator = scope
    record = lookup(key_id)
    if record is None:
        raise sts("the security token included in the request is invalid (unknown access key)")
    if params.get("x-amz-security-token") != record.session_token:
        raise sts("the security token included in the request is invalid")
    if signed_at > now + max_skew:
        raise sts(f"signature not yet current: {date} is more than {max_skew:g} s ahead")
    if date_stamp != date[:8] or terminator != "aws4_request" or service != "sts":
        raise sts("credential scope does not match the request (date, service or terminator)")
    if scope_region != hosts[host]:
        raise sts(
            f"credential should be scoped to region {hosts[host]!r}, not {scope_region[:40]!r}"
        )
    given = params.get("x-amz-signature", "")
    if not _SIGNATURE.fullmatch(given):
        raise sts("X-Amz-Signature is missing or malformed")

    # The request the authenticator sends: GET https://<host>/?<query>, no body, with
    # x-k8s-aws-id set to the cluster it serves and an Accept header.
    sent = {"host": host, CLUSTER_ID_HEADER: cluster, "accept": "application/json"}
    canonical_headers = []
    for name in signed_headers:
        header_value = sent.get(name)
        if header_value is None:
            raise sts(f"signed header {name[:40]!r} is not in the request")
        canonical_headers.append(f"{name}:{' '.join(header_value.split())}\n")
    encoded = []
    for lowered, piece in pieces:
        if lowered == "x-amz-signature":
            continue
        raw_key, _, raw_value = piece.partition("=")
        encoded.append(
            (
                quote(_query_unescape(raw_key), safe=_QUERY_SAFE),
                quote(_query_unescape(raw_value), safe=_QUERY_SAFE),
            )
        )
    encoded.sort()
    canonical_query = "&".join(f"{k}={v}" for k, v in encoded)
    canonical = "\n".join(
        (
            "GET",
            "/",
            canonical_query,
            "".join(canonical_headers),
            ";".join(signed_headers),
            EMPTY_PAYLOAD_SHA256,
        )
    )
    expected = signature(
        signing_key(record.secret_access_key, date_stamp, scope_region, service),
        string_to_sign(date, f"{date_stamp}/{scope_region}/{service}/{terminator}", canonical),
    )
    if not hmac.compare_digest(expected, given):
        raise sts(
            "the request signature we calculated does not match the signature you provided "
            f"(signed for another cluster than {cluster[:100]!r}, another key, or altered)"
        )
    user_id = key_id
    identity = KubernetesIdentity(
        username=record.arn,
        uid=f"aws-iam-authenticator:{record.account_id}:{user_id}",
        groups=(AUTHENTICATED_GROUP,),
        arn=record.arn,
        account_id=record.account_id,
        access_key_id=key_id,
    )
    return identity, signed_at
