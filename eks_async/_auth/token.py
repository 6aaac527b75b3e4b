"""Bearer tokens for an EKS cluster's Kubernetes API, made like ``aws eks get-token``.

A token is ``k8s-aws-v1.`` followed by the unpadded base64url text of a presigned STS
``GetCallerIdentity`` URL.  The URL is signed (SigV4 in the query, service ``sts``) for the
regional STS host of the client's region, lives 60 seconds by its ``X-Amz-Expires`` (STS
accepts it for 15 minutes after ``X-Amz-Date`` anyway), and signs the header
``x-k8s-aws-id: <cluster>`` so that the token only works for that cluster.  EKS's
authenticator calls STS with the URL and maps the caller to a Kubernetes user.

The STS host and signing region are those a botocore STS client picks for the region
(``sts_regional_endpoints`` at its default, "regional"), taken from data that
``codegen/endpoints.py`` writes into ``eks_async._generated.sts_endpoints``; botocore is not
imported.  aiobotocore is imported only when a role has to be assumed.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import importlib
import re
from collections.abc import Callable
from typing import Any, Final, NamedTuple

import attrs

from .._endpoints import LegacyTable, check_region_name, locate
from .._exceptions import (
    ConfigurationError,
    CredentialsError,
    EndpointResolutionError,
    ParamValidationError,
)
from .._generated import sts_endpoints as _data
from .._redact import redact_error
from .credentials import Credentials, CredentialsProvider
from .sigv4 import SigV4Signer

__all__ = [
    "TOKEN_PREFIX",
    "ClusterToken",
    "StsEndpoint",
    "TokenSource",
    "resolve_sts_endpoint",
    "sts_endpoint",
]

TOKEN_PREFIX: Final = "k8s-aws-v1."
#: The signed header that ties a token to one cluster (name, or id for local clusters).
CLUSTER_ID_HEADER: Final = "x-k8s-aws-id"
#: ``X-Amz-Expires`` of the presigned URL, as the CLI sets it.
URL_EXPIRES: Final = 60
#: The CLI reports tokens as expiring this long after they were signed.
TOKEN_LIFETIME: Final = datetime.timedelta(minutes=14)
#: A cached token is handed out until this long before its ``expires_at``.
TOKEN_REFRESH_MARGIN: Final = datetime.timedelta(minutes=1)
#: Assumed-role credentials are replaced this long before they expire, so that a token
#: signed with them stays good for its whole reported lifetime.
ROLE_REFRESH_MARGIN: Final = datetime.timedelta(minutes=15)
DEFAULT_SESSION_NAME: Final = "EKSGetTokenAuth"

_OPERATION: Final = "GetToken"
_QUERY: Final = "/?Action=GetCallerIdentity&Version=2011-06-15"
_CACHE_PRUNE_AT: Final = 1024


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# --------------------------------------------------------------------------- STS endpoint


class StsEndpoint(NamedTuple):
    """Where the presigned GetCallerIdentity URL points, and the region it is signed for."""

    #: ``https://sts.us-west-2.amazonaws.com`` (no trailing slash).
    url: str
    #: The SigV4 scope region: the region itself, except for names endpoints.json maps
    #: elsewhere (``aws-global`` signs for ``us-east-1``).
    signing_region: str


_STS_LEGACY: Final = LegacyTable(_data)


def resolve_sts_endpoint(
    region: str, *, use_fips: bool = False, use_dualstack: bool = False
) -> StsEndpoint:
    """The STS endpoint and signing region a botocore STS client uses for ``region``.

    This is where ``aws eks get-token`` points its presigned URL: the regional host
    (``sts.us-east-1.amazonaws.com`` for ``us-east-1`` too, since botocore's default for
    ``sts_regional_endpoints`` is "regional"), ``sts-fips.<region>...`` with FIPS (in
    aws-us-gov the plain host, which is FIPS already), and the global
    ``sts.amazonaws.com`` only for the region name ``aws-global``.  FIPS markers in the
    region name (``fips-us-east-1``) switch FIPS on, as for EKS endpoints.

    Raises ``EndpointResolutionError`` wherever botocore has no STS endpoint either.
    """
    check_region_name(region)
    where = locate(region, bool(use_fips), bool(use_dualstack), service="STS", legacy=_STS_LEGACY)
    stripped, combo = where.region, where.combo
    special = _data.SPECIAL_REGIONS.get(stripped, {})
    if combo in special:
        url = special[combo]
        reason = _data.SPECIAL_REGION_ERRORS.get(stripped, {}).get(combo)
    else:
        template = _data.URL_TEMPLATES[where.partition.name][combo]
        url = None if template is None else template.format(region=stripped)
        reason = _data.RULE_ERRORS.get(where.partition.name, {}).get(combo)
    if url is None:
        raise EndpointResolutionError(
            f"no {where.kind} STS endpoint for region {region!r}: {reason or 'no endpoint'}"
        )
    signing_region = _data.LEGACY_SIGNING_REGIONS.get((where.legacy, stripped), {}).get(
        combo, stripped
    )
    return StsEndpoint(url, signing_region)


def sts_endpoint(region: str, *, use_fips: bool, use_dualstack: bool = False) -> str:
    """The STS URL (``https://sts.<region>.amazonaws.com``) botocore uses for ``region``."""
    return resolve_sts_endpoint(region, use_fips=use_fips, use_dualstack=use_dualstack).url


# --------------------------------------------------------------------------- tokens


def _mask_token(value: str) -> str:
    shown = TOKEN_PREFIX if value.startswith(TOKEN_PREFIX) else ""
    return repr(f"{shown}…")


def _check_expires_at(_instance: Any, _attribute: Any, value: datetime.datetime) -> None:
    if not isinstance(value, datetime.datetime) or value.utcoffset() != datetime.timedelta(0):
        raise ValueError("expires_at must be an aware UTC datetime")


@attrs.frozen(kw_only=True, slots=True)
class ClusterToken:
    """A bearer token for a cluster's Kubernetes API and when to stop using it.

    Its repr (and str) shows only the token's prefix, never the signed URL in it.
    """

    #: ``k8s-aws-v1.<base64url of the presigned URL>``: the ``Authorization: Bearer`` value.
    token: str = attrs.field(repr=_mask_token)
    #: Signing time plus 14 minutes, as ``aws eks get-token`` reports it (aware UTC).
    expires_at: datetime.datetime = attrs.field(validator=_check_expires_at)


_Key = tuple[str, str | None, str | None]
_RoleKey = tuple[str, str]
# botocore's pattern and length limits for RoleSessionName (STS model, roleSessionNameType).
_SESSION_NAME: Final = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)


def _bad(path: str, problem: str) -> ParamValidationError:
    return ParamValidationError(_OPERATION, path, problem)


def _cluster(cluster_name: str | None, cluster_id: str | None) -> str:
    if (cluster_name is None) == (cluster_id is None):
        raise _bad(
            "cluster_name",
            "give exactly one of cluster_name and cluster_id "
            "(cluster_id is for local clusters on AWS Outposts)",
        )
    path, value = (
        ("cluster_name", cluster_name) if cluster_id is None else ("cluster_id", cluster_id)
    )
    if not isinstance(value, str):
        raise _bad(path, f"expected a string, got {type(value).__name__}")
    if not value:
        raise _bad(path, "must not be empty")
    return value


def _check_role(role_arn: object, session_name: object) -> None:
    if not isinstance(role_arn, str):
        raise _bad("role_arn", f"expected a string, got {type(role_arn).__name__}")
    if not 20 <= len(role_arn) <= 2048:
        raise _bad("role_arn", "expected an IAM role ARN (20 to 2048 characters)")
    if not isinstance(session_name, str) or not _SESSION_NAME.fullmatch(session_name):
        raise _bad(
            "session_name",
            "expected 2 to 64 letters, digits or any of _+=,.@- (an STS role session name)",
        )


class TokenSource:
    """Makes and caches cluster tokens for one region, as ``aws eks get-token`` would.

    Tokens are cached per cluster, role and session name, and handed out again until one
    minute before their ``expires_at`` (sooner if the signing credentials expire first).
    However many tasks ask at once, one of them signs and the others get its token.

    ``sts_endpoint_url`` only redirects the ``AssumeRole`` call made for ``role_arn``
    (an emulator, a VPC endpoint); the tokens always name the regional STS host, which is
    what EKS's authenticator accepts.
    """

    __slots__ = (
        "_clock",
        "_credentials",
        "_endpoint",
        "_locks",
        "_region",
        "_role_credentials",
        "_role_locks",
        "_session",
        "_signer",
        "_sts_endpoint_url",
        "_tokens",
        "_url",
    )

    def __init__(
        self,
        *,
        region: str,
        use_fips: bool,
        credentials: CredentialsProvider,
        clock: Callable[[], datetime.datetime] | None = None,
        sts_endpoint_url: str | None = None,
    ) -> None:
        if not isinstance(credentials, CredentialsProvider):
            raise ConfigurationError("credentials must be a CredentialsProvider")
        self._region = region
        self._endpoint = resolve_sts_endpoint(region, use_fips=use_fips)
        self._url = self._endpoint.url + _QUERY
        self._signer = SigV4Signer("sts", self._endpoint.signing_region)
        self._credentials = credentials
        self._clock: Callable[[], datetime.datetime] = clock or _utcnow
        self._sts_endpoint_url = sts_endpoint_url.rstrip("/") if sts_endpoint_url else None
        # key -> (token, hand it out until)
        self._tokens: dict[_Key, tuple[ClusterToken, datetime.datetime]] = {}
        self._locks: dict[_Key, asyncio.Lock] = {}
        # (role ARN, session name) -> (credentials, use them until)
        self._role_credentials: dict[_RoleKey, tuple[Credentials, datetime.datetime]] = {}
        self._role_locks: dict[_RoleKey, asyncio.Lock] = {}
        self._session: Any = None

    def __repr__(self) -> str:
        return (
            f"TokenSource(region={self._region!r}, sts={self._endpoint.url!r}, "
            f"signing_region={self._endpoint.signing_region!r})"
        )

    @property
    def endpoint(self) -> StsEndpoint:
        """The STS endpoint the tokens' URLs point at."""
        return self._endpoint

    async def get_token(
        self,
        *,
        cluster_name: str | None = None,
        cluster_id: str | None = None,
        role_arn: str | None = None,
        session_name: str = DEFAULT_SESSION_NAME,
    ) -> ClusterToken:
        """A token for the cluster named ``cluster_name`` (or with id ``cluster_id``).

        With ``role_arn`` the token is signed with that role's credentials, assumed with
        the source's credentials under ``session_name``.  Raises ``ParamValidationError``
        unless exactly one of ``cluster_name`` and ``cluster_id`` is given, and
        ``CredentialsError`` when no credentials can be had (or AssumeRole fails).
        """
        cluster = _cluster(cluster_name, cluster_id)
        key: _Key = (cluster, role_arn, None if role_arn is None else session_name)
        cached = self._tokens.get(key)
        if cached is not None and self._clock() < cached[1]:
            return cached[0]
        if role_arn is not None:
            _check_role(role_arn, session_name)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            # Another task may have made the token while this one waited.
            cached = self._tokens.get(key)
            if cached is not None and self._clock() < cached[1]:
                return cached[0]
            if role_arn is None:
                credentials = await self._credentials.get_credentials()
            else:
                credentials = await self._assumed(role_arn, session_name)
            token, reuse_until = self._sign(cluster, credentials)
            if len(self._tokens) >= _CACHE_PRUNE_AT:
                self._prune()
            self._tokens[key] = (token, reuse_until)
            return token

    def _sign(
        self, cluster: str, credentials: Credentials
    ) -> tuple[ClusterToken, datetime.datetime]:
        now = self._clock()
        if now.tzinfo is None:
            raise ConfigurationError("the clock must return an aware datetime")
        now = now.astimezone(datetime.UTC).replace(microsecond=0)
        url = self._signer.presign_url(
            method="GET",
            url=self._url,
            headers={CLUSTER_ID_HEADER: cluster},
            credentials=credentials,
            now=now,
            expires=URL_EXPIRES,
        )
        encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
        token = ClusterToken(token=TOKEN_PREFIX + encoded, expires_at=now + TOKEN_LIFETIME)
        reuse_until = token.expires_at - TOKEN_REFRESH_MARGIN
        if credentials.expiry is not None:
            reuse_until = min(reuse_until, credentials.expiry - TOKEN_REFRESH_MARGIN)
        return token, reuse_until

    def _prune(self) -> None:
        now = self._clock()
        for key in [k for k, (_, until) in self._tokens.items() if until <= now]:
            del self._tokens[key]
            lock = self._locks.get(key)
            if lock is not None and not lock.locked():
                del self._locks[key]

    # --- assumed roles -----------------------------------------------------------------

    async def _assumed(self, role_arn: str, session_name: str) -> Credentials:
        key = (role_arn, session_name)
        cached = self._role_credentials.get(key)
        if cached is not None and self._clock() < cached[1]:
            return cached[0]
        lock = self._role_locks.get(key)
        if lock is None:
            lock = self._role_locks[key] = asyncio.Lock()
        async with lock:
            cached = self._role_credentials.get(key)
            if cached is not None and self._clock() < cached[1]:
                return cached[0]
            credentials = await self._assume_role(role_arn, session_name)
            assert credentials.expiry is not None
            self._role_credentials[key] = (credentials, credentials.expiry - ROLE_REFRESH_MARGIN)
            return credentials

    async def _assume_role(self, role_arn: str, session_name: str) -> Credentials:
        source = await self._credentials.get_credentials()
        try:
            if self._session is None:
                self._session = importlib.import_module("aiobotocore.session").AioSession()
            client = self._session.create_client(
                "sts",
                # An explicit endpoint makes botocore sign for region_name: give it the
                # region the STS endpoint signs for.
                region_name=self._endpoint.signing_region,
                endpoint_url=self._sts_endpoint_url or self._endpoint.url,
                aws_access_key_id=source.access_key_id,
                aws_secret_access_key=source.secret_access_key,
                aws_session_token=source.session_token,
            )
            async with client as sts:
                response = await sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)
            raw = response["Credentials"]
            expiry = raw["Expiration"]
            if not isinstance(expiry, datetime.datetime):
                raise TypeError("AssumeRole returned no expiry time")
            if expiry.tzinfo is None:
                expiry = expiry.replace(tzinfo=datetime.UTC)
            return Credentials(
                access_key_id=raw["AccessKeyId"],
                secret_access_key=raw["SecretAccessKey"],
                session_token=raw.get("SessionToken") or None,
                expiry=expiry.astimezone(datetime.UTC),
            )
        except Exception as exc:
            # botocore's text may echo a secret: the cause is redacted too
            error = CredentialsError(
                f"assuming role {role_arn} for a cluster token failed: "
                f"{type(exc).__name__}: {_scrub(str(exc))}"
            )
            raise redact_error(error, cause=exc) from exc


_SECRETISH: Final = re.compile(r"[A-Za-z0-9/+=]{32,}")


def _scrub(message: str) -> str:
    return _SECRETISH.sub("****", message)
