"""Credentials snapshots and the providers: static, and aiobotocore's chain."""

from __future__ import annotations

import asyncio
import datetime
import os
import subprocess
import sys
import traceback
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from eks_async._auth.credentials import (
    ChainCredentialsProvider,
    Credentials,
    CredentialsProvider,
    StaticCredentialsProvider,
    resolve_region,
)
from eks_async._exceptions import ConfigurationError, CredentialsError

ROOT = Path(__file__).resolve().parent.parent
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLETOKENdGhpcyBpcyBub3QgYSByZWFsIHRva2Vu"
T0 = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)


class FakeClock:
    def __init__(self, now: datetime.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)


@pytest.fixture
def aws_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An environment where only what the test writes can provide credentials."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name)
    (tmp_path / "config").write_text("")
    (tmp_path / "credentials").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


# -- Credentials and the static provider ------------------------------------------------


def test_credentials_repr_hides_secrets() -> None:
    creds = Credentials(
        access_key_id="AKIAABCDEFGHWXYZ",
        secret_access_key=SECRET,
        session_token=TOKEN,
        expiry=T0,
    )
    for text in (repr(creds), str(creds), f"{creds}"):
        assert SECRET not in text
        assert TOKEN not in text
        assert "AKIAABCDEFGH" not in text
        assert "'****WXYZ'" in text
    assert repr(creds).startswith("Credentials(access_key_id='****WXYZ', session_token='****'")
    assert "session_token=None" in repr(Credentials(access_key_id="AKID", secret_access_key="s"))


def test_credentials_are_frozen_and_keyword_only() -> None:
    creds = Credentials(access_key_id="AKID", secret_access_key="s")
    assert creds.session_token is None and creds.expiry is None
    with pytest.raises(AttributeError):
        creds.secret_access_key = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Credentials("AKID", "s")  # type: ignore[call-arg]


async def test_static_provider() -> None:
    creds = Credentials(access_key_id="AKID", secret_access_key=SECRET)
    provider = StaticCredentialsProvider(creds)
    assert isinstance(provider, CredentialsProvider)
    assert await provider.get_credentials() is creds
    assert await provider.get_credentials() is creds
    assert SECRET not in repr(provider)


# -- the chain: real aiobotocore providers ----------------------------------------------


async def test_chain_from_environment(aws_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    provider = ChainCredentialsProvider()
    assert isinstance(provider, CredentialsProvider)
    creds = await provider.get_credentials()
    assert creds == Credentials(
        access_key_id="AKIDENV", secret_access_key=SECRET, session_token=TOKEN
    )
    assert provider.method == "env"
    assert await provider.get_credentials() is creds  # no expiry: cached for good
    assert SECRET not in repr(provider)


async def test_chain_from_profile_in_shared_credentials_file(aws_home: Path) -> None:
    (aws_home / "credentials").write_text(
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = defsecret\n\n"
        f"[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = {SECRET}\n"
    )
    dev = await ChainCredentialsProvider("dev").get_credentials()
    assert (dev.access_key_id, dev.secret_access_key, dev.session_token) == (
        "AKIDDEV",
        SECRET,
        None,
    )
    default = await ChainCredentialsProvider().get_credentials()
    assert default.access_key_id == "AKIDDEFAULT"


async def test_no_credentials(aws_home: Path) -> None:
    with pytest.raises(CredentialsError, match="no AWS credentials found"):
        await ChainCredentialsProvider().get_credentials()


async def test_unknown_profile_is_wrapped(aws_home: Path) -> None:
    with pytest.raises(CredentialsError, match="ProfileNotFound") as info:
        await ChainCredentialsProvider("nope").get_credentials()
    assert info.value.__cause__ is not None
    assert type(info.value.__cause__).__name__ == "ProfileNotFound"


async def test_partial_env_credentials_are_wrapped(
    aws_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    with pytest.raises(CredentialsError, match="AWS_SECRET_ACCESS_KEY") as info:
        await ChainCredentialsProvider().get_credentials()
    assert info.value.__cause__ is not None


async def test_chain_errors_never_leak_secrets(
    aws_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiobotocore.session import AioSession

    async def explode(self: AioSession) -> None:
        raise RuntimeError(f"bad response: {{'SecretAccessKey': '{SECRET}', 'Token': '{TOKEN}'}}")

    monkeypatch.setattr(AioSession, "get_credentials", explode)
    with pytest.raises(CredentialsError) as info:
        await ChainCredentialsProvider().get_credentials()
    message = str(info.value)
    assert SECRET not in message and TOKEN not in message
    assert "RuntimeError" in message
    assert isinstance(info.value.__cause__, RuntimeError)
    # The cause is shown with the error (a traceback prints it): redacted as well.
    shown = "".join(traceback.format_exception(info.value))
    assert SECRET not in shown and TOKEN not in shown
    assert "RuntimeError" in shown


async def test_region_discovery(aws_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert await resolve_region() is None
    (aws_home / "config").write_text(
        "[default]\nregion = us-east-2\n\n[profile dev]\nregion = eu-west-3\n"
    )
    assert await resolve_region() == "us-east-2"
    assert await resolve_region("dev") == "eu-west-3"
    assert await ChainCredentialsProvider("dev").get_region() == "eu-west-3"
    with pytest.raises(ConfigurationError, match="ProfileNotFound"):
        await resolve_region("missing-profile")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")  # botocore: env beats the file
    assert await resolve_region("dev") == "ap-south-1"


@pytest.fixture
async def pod_identity_agent(
    aws_home: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[list[dict[str, str]]]:
    """A stand-in for the EKS Pod Identity agent on 127.0.0.1; yields the requests seen."""
    seen: list[dict[str, str]] = []
    expiration = T0.replace(year=2099).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def handler(request: web.Request) -> web.Response:
        seen.append({"path": request.path, **request.headers})
        if request.headers.get("Authorization") != "pod-identity-token":
            return web.Response(status=401)
        return web.json_response(
            {
                "AccessKeyId": "ASIAPODIDENTITY",
                "SecretAccessKey": SECRET,
                "Token": TOKEN,
                "AccountId": "123456789012",
                "Expiration": expiration,
            }
        )

    app = web.Application()
    app.router.add_get("/v1/credentials", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    token_file = aws_home / "eks-pod-identity-token"
    token_file.write_text("pod-identity-token")
    monkeypatch.setenv(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", f"http://127.0.0.1:{port}/v1/credentials"
    )
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token_file))
    try:
        yield seen
    finally:
        await runner.cleanup()


async def test_container_provider_as_used_by_pod_identity(
    pod_identity_agent: list[dict[str, str]],
) -> None:
    provider = ChainCredentialsProvider()
    creds = await provider.get_credentials()
    assert creds.access_key_id == "ASIAPODIDENTITY"
    assert creds.secret_access_key == SECRET
    assert creds.session_token == TOKEN
    assert creds.expiry == datetime.datetime(2099, 5, 1, 12, 0, tzinfo=datetime.UTC)
    assert provider.method == "container-role"
    assert len(pod_identity_agent) == 1
    assert pod_identity_agent[0]["path"] == "/v1/credentials"
    assert pod_identity_agent[0]["Authorization"] == "pod-identity-token"
    # Far from expiry: served from the snapshot without asking the agent again.
    assert await provider.get_credentials() is creds
    assert len(pod_identity_agent) == 1


# -- refresh ----------------------------------------------------------------------------


class FakeChainCredentials:
    """Quacks like aiobotocore's refreshable credentials; counts the loads."""

    method = "fake-refreshable"

    def __init__(self, clock: FakeClock, lifetimes: list[float]) -> None:
        self._clock = clock
        self._lifetimes = lifetimes
        self.loads = 0
        self._expiry_time: datetime.datetime | None = None

    async def get_frozen_credentials(self) -> Any:
        from botocore.credentials import ReadOnlyCredentials

        self.loads += 1
        await asyncio.sleep(0.01)  # let the other callers pile up
        lifetime = self._lifetimes[min(self.loads, len(self._lifetimes)) - 1]
        self._expiry_time = self._clock() + datetime.timedelta(seconds=lifetime)
        return ReadOnlyCredentials(f"ASIA{self.loads:04d}", SECRET, TOKEN, None)


@pytest.fixture
def fake_chain(
    aws_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[list[float]], tuple[FakeClock, FakeChainCredentials]]:
    from aiobotocore.session import AioSession

    def install(lifetimes: list[float]) -> tuple[FakeClock, FakeChainCredentials]:
        clock = FakeClock()
        fake = FakeChainCredentials(clock, lifetimes)

        async def get_credentials(self: AioSession) -> FakeChainCredentials:
            return fake

        monkeypatch.setattr(AioSession, "get_credentials", get_credentials)
        return clock, fake

    return install


async def test_single_flight_refresh(
    fake_chain: Callable[[list[float]], tuple[FakeClock, FakeChainCredentials]],
) -> None:
    clock, fake = fake_chain([3600])
    provider = ChainCredentialsProvider(refresh_margin=300, clock=clock)

    first = await asyncio.gather(*(provider.get_credentials() for _ in range(50)))
    assert fake.loads == 1
    assert {c.access_key_id for c in first} == {"ASIA0001"}
    assert first[0].expiry == T0 + datetime.timedelta(seconds=3600)

    clock.advance(3600 - 301)  # just outside the margin: still good
    assert await provider.get_credentials() is first[0]
    assert fake.loads == 1

    clock.advance(2)  # inside the margin: 50 callers, one refresh
    refreshed = await asyncio.gather(*(provider.get_credentials() for _ in range(50)))
    assert fake.loads == 2
    assert all(c is refreshed[0] for c in refreshed)
    assert refreshed[0].access_key_id == "ASIA0002"
    assert refreshed[0].expiry == clock.now + datetime.timedelta(seconds=3600)


async def test_refresh_inside_margin_does_not_hammer_the_chain(
    fake_chain: Callable[[list[float]], tuple[FakeClock, FakeChainCredentials]],
) -> None:
    # The chain keeps handing out credentials that expire in 100 s (< margin).
    clock, fake = fake_chain([100])
    provider = ChainCredentialsProvider(refresh_margin=300, clock=clock)
    creds = await provider.get_credentials()
    for _ in range(20):
        assert await provider.get_credentials() is creds
    assert fake.loads == 1
    clock.advance(10)
    await provider.get_credentials()
    assert fake.loads == 2


async def test_expired_credentials_from_the_chain(
    fake_chain: Callable[[list[float]], tuple[FakeClock, FakeChainCredentials]],
) -> None:
    clock, _ = fake_chain([-1])
    with pytest.raises(CredentialsError, match="expired"):
        await ChainCredentialsProvider(clock=clock).get_credentials()


async def test_single_flight_with_real_aiobotocore_refreshable_credentials(
    aws_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiobotocore.credentials import AioRefreshableCredentials
    from aiobotocore.session import AioSession

    refreshes = 0

    async def refresh() -> dict[str, str]:
        nonlocal refreshes
        refreshes += 1
        await asyncio.sleep(0.01)
        expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
        return {
            "access_key": f"ASIAREFRESHED{refreshes}",
            "secret_key": SECRET,
            "token": TOKEN,
            "expiry_time": expiry.isoformat(),
        }

    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=60)
    source = AioRefreshableCredentials(
        access_key="ASIAOLD",
        secret_key=SECRET,
        token=TOKEN,
        expiry_time=soon,
        refresh_using=refresh,
        method="test",
    )

    async def get_credentials(self: AioSession) -> AioRefreshableCredentials:
        return source

    monkeypatch.setattr(AioSession, "get_credentials", get_credentials)
    provider = ChainCredentialsProvider()
    results = await asyncio.gather(*(provider.get_credentials() for _ in range(50)))
    assert refreshes == 1
    assert {c.access_key_id for c in results} == {"ASIAREFRESHED1"}
    assert results[0].expiry is not None
    assert results[0].expiry > soon


# -- import hygiene ---------------------------------------------------------------------


@pytest.mark.parametrize("module", ["eks_async._auth.credentials", "eks_async._auth.sigv4"])
def test_import_does_not_load_botocore(module: str) -> None:
    code = (
        f"import {module}, sys; "
        "loaded = [m for m in ('botocore', 'aiobotocore') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
