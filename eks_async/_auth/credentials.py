"""AWS credentials: a frozen snapshot type and the providers that hand them out.

``ChainCredentialsProvider`` delegates the actual lookup (environment, profiles, SSO,
web identity, the container endpoint used by EKS Pod Identity, IMDS) to aiobotocore's
credential chain; it only caches the snapshot and refreshes it before it expires. botocore
and aiobotocore are imported lazily, on first use, so importing eks_async stays cheap.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import re
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import attrs

from .._exceptions import ConfigurationError, CredentialsError
from .._redact import redact_error

__all__ = [
    "ChainCredentialsProvider",
    "Clock",
    "Credentials",
    "CredentialsProvider",
    "StaticCredentialsProvider",
    "resolve_region",
]

#: Returns the current time as an aware UTC datetime.
Clock = Callable[[], datetime.datetime]


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _mask_key_id(value: str) -> str:
    return repr("****" + value[-4:])


def _mask_token(value: str | None) -> str:
    return "None" if value is None else "'****'"


@attrs.frozen(kw_only=True)
class Credentials:
    """One set of AWS credentials, as used to sign a request.

    The repr shows neither the secret key nor the session token, and only the last four
    characters of the access key id.
    """

    access_key_id: str = attrs.field(repr=_mask_key_id)
    secret_access_key: str = attrs.field(repr=False)
    session_token: str | None = attrs.field(default=None, repr=_mask_token)
    #: When the credentials stop working (aware UTC); ``None`` for long-term keys.
    expiry: datetime.datetime | None = None


@runtime_checkable
class CredentialsProvider(Protocol):
    """Anything that can hand out current credentials."""

    async def get_credentials(self) -> Credentials:
        """Credentials valid now (a refreshing provider renews them before they expire)."""
        ...


class StaticCredentialsProvider:
    """Always returns the same credentials."""

    __slots__ = ("_credentials",)

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    async def get_credentials(self) -> Credentials:
        return self._credentials

    def __repr__(self) -> str:
        return f"StaticCredentialsProvider({self._credentials!r})"


# Anything that looks like a secret access key or a session token (long runs of base64
# characters) is blanked out of error messages taken from the chain.
_SECRETISH = re.compile(r"[A-Za-z0-9/+=]{32,}")
# After a load that could not get credentials fresher than the margin, ask again at most
# this often (the chain itself refreshes once its own, fixed refresh window is reached).
_RECHECK = datetime.timedelta(seconds=10)


def _scrub(message: str) -> str:
    return _SECRETISH.sub("****", message)


def _new_session(profile: str | None) -> Any:
    """A new ``aiobotocore.session.AioSession`` (aiobotocore is untyped, hence ``Any``)."""
    session_module = importlib.import_module("aiobotocore.session")
    return session_module.AioSession(profile=profile)


class ChainCredentialsProvider:
    """Credentials from aiobotocore's default chain, optionally for a named profile.

    The snapshot is reused until it is within ``refresh_margin`` seconds of its expiry;
    then exactly one task asks the chain again while concurrent callers wait for it.
    """

    __slots__ = (
        "_clock",
        "_current",
        "_lock",
        "_margin",
        "_method",
        "_profile",
        "_refresh_at",
        "_session",
        "_source",
    )

    def __init__(
        self,
        profile: str | None = None,
        *,
        refresh_margin: float = 300,
        clock: Clock | None = None,
    ) -> None:
        if refresh_margin < 0:
            raise ValueError("refresh_margin must be >= 0")
        self._profile = profile
        self._margin = datetime.timedelta(seconds=refresh_margin)
        self._clock: Clock = clock or _utcnow
        self._lock = asyncio.Lock()
        self._session: Any = None
        # aiobotocore's credentials object (static or refreshable); it owns the refresh.
        self._source: Any = None
        self._method: str | None = None
        self._current: Credentials | None = None
        self._refresh_at: datetime.datetime | None = None

    def __repr__(self) -> str:
        return f"ChainCredentialsProvider(profile={self._profile!r}, method={self._method!r})"

    @property
    def profile(self) -> str | None:
        return self._profile

    @property
    def method(self) -> str | None:
        """Which provider of the chain supplied the credentials (``env``, ``container-role``...)."""
        return self._method

    def _fresh(self) -> Credentials | None:
        current = self._current
        if current is None:
            return None
        refresh_at = self._refresh_at
        if refresh_at is not None and self._clock() >= refresh_at:
            return None
        return current

    async def get_credentials(self) -> Credentials:
        current = self._fresh()
        if current is not None:
            return current
        async with self._lock:
            # Another task may have refreshed while this one waited for the lock.
            current = self._fresh()
            if current is not None:
                return current
            return await self._load()

    def _get_session(self) -> Any:
        if self._session is None:
            self._session = _new_session(self._profile)
        return self._session

    async def _load(self) -> Credentials:
        try:
            if self._source is None:
                source = await self._get_session().get_credentials()
                if source is None:
                    where = f"profile {self._profile!r}" if self._profile else "the default chain"
                    raise CredentialsError(
                        f"no AWS credentials found in {where} (environment, shared "
                        "credentials/config files, SSO, web identity, container endpoint, "
                        "instance metadata)"
                    )
                self._source = source
                self._method = getattr(source, "method", None)
            frozen = await self._source.get_frozen_credentials()
            expiry = getattr(self._source, "_expiry_time", None)
        except CredentialsError:
            raise
        except Exception as exc:
            # botocore's text may echo a secret: the cause is redacted too
            error = CredentialsError(
                f"loading AWS credentials failed: {type(exc).__name__}: {_scrub(str(exc))}"
            )
            raise redact_error(error, cause=exc) from exc
        if frozen is None or not frozen.access_key or not frozen.secret_key:
            raise CredentialsError("the AWS credential chain returned incomplete credentials")
        if expiry is not None:
            if not isinstance(expiry, datetime.datetime):
                raise CredentialsError("the AWS credential chain returned an invalid expiry")
            if expiry.tzinfo is None:
                expiry = expiry.replace(tzinfo=datetime.UTC)
        creds = Credentials(
            access_key_id=frozen.access_key,
            secret_access_key=frozen.secret_key,
            session_token=frozen.token or None,
            expiry=expiry,
        )
        now = self._clock()
        if expiry is None:
            self._refresh_at = None
        else:
            if expiry <= now:
                raise CredentialsError(
                    f"the AWS credentials from {self._method or 'the chain'} expired at "
                    f"{expiry.isoformat()}"
                )
            # Normally refresh ``margin`` before expiry; if even the fresh credentials are
            # inside the margin, use them but ask again soon (never past their expiry).
            self._refresh_at = max(
                expiry - self._margin, min(now + _RECHECK, now + (expiry - now) / 2)
            )
        self._current = creds
        return creds

    async def get_region(self) -> str | None:
        """The region configured for this provider's profile, or ``None``."""
        return _region_of(self._get_session())


def _region_of(session: Any) -> str | None:
    try:
        region = session.get_config_variable("region")
    except Exception as exc:
        # botocore's text may echo a secret: the cause is redacted too
        error = ConfigurationError(
            f"cannot read the AWS region from the configuration: {type(exc).__name__}: "
            f"{_scrub(str(exc))}"
        )
        raise redact_error(error, cause=exc) from exc
    return str(region) if region else None


async def resolve_region(profile: str | None = None) -> str | None:
    """The region the AWS configuration gives for ``profile`` (or the default profile).

    Looks at ``AWS_DEFAULT_REGION`` and the profile's ``region`` in the config file the
    way botocore does; ``None`` when neither sets one.
    """
    return _region_of(_new_session(profile))
