"""The emulator checks signatures on its own, sharing nothing with the client's signer.

A check that reused ``eks_async._auth`` would agree with any bug there. So: the verifier's
modules import nothing of ``eks_async._auth`` (their import graph, read from the source),
verifying runs no code of it (a profiler watches), its arithmetic loads with eks_async
unimportable, botocore's signer is the reference it is held to, and a client signer broken
on purpose is refused where, sharing the code, it was accepted.
"""

from __future__ import annotations

import ast
import base64
import calendar
import datetime
import hmac
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import botocore.auth
import botocore.credentials
import pytest
from botocore.awsrequest import AWSRequest

import eks_async
from eks_async import RetryConfig, ServiceError
from eks_async._auth import sigv4 as client_sigv4
from eks_async._auth import token as client_token
from eks_async._exceptions import EndpointResolutionError
from eks_async._generated import endpoints as _partition_data
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    Delays,
    EKSEmulator,
    EmulatorRequest,
    ManualClock,
    _sigv4_check,
)
from eks_async.testing._kube_auth import (
    CLUSTER_ID_HEADER,
    TOKEN_PREFIX,
    KeyRecord,
    review_token,
    sts_hosts,
)
from eks_async.testing._signing import SignatureVerifier
from eks_async.testing._wire import WireError

PACKAGE = Path(eks_async.__file__).resolve().parent
CLIENT_SIGNER = "eks_async._auth"
#: The modules that make up the emulator's signature and token checks.
VERIFIER_MODULES = (
    "eks_async.testing._signing",
    "eks_async.testing._kube_auth",
    "eks_async.testing._sigv4_check",
)
NO_RETRY = RetryConfig(max_attempts=1)
REGION = "us-west-2"
HOST = f"eks.{REGION}.amazonaws.com"
ARN = "arn:aws:eks:us-west-2:123456789012:cluster/prod"


# --------------------------------------------------------------------------- import graph


def _module_file(module: str) -> Path | None:
    """The source file of an ``eks_async`` module or package, if there is one."""
    base = PACKAGE.joinpath(*module.split(".")[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports_of_source(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """The eks_async modules a module's source imports, anywhere in it (also in functions).

    ``from X import name`` counts X, and X.name when that is a module of its own.
    ``importlib.import_module("...")`` and ``__import__("...")`` with a constant count too.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            found.add(base)
            found.update(
                f"{base}.{alias.name}"
                for alias in node.names
                if _module_file(f"{base}.{alias.name}") is not None
            )
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id == "__import__")
            )
        ):
            found.add(node.args[0].value)
    return {name for name in found if name == "eks_async" or name.startswith("eks_async.")}


def _imports_of(module: str) -> set[str]:
    path = _module_file(module)
    if path is None:
        return set()
    return _imports_of_source(
        path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py"
    )


def _import_chains(roots: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Every eks_async module reachable from ``roots`` by explicit imports, with the chain
    of imports that reaches it. A package's ``__init__`` counts only where the package
    itself is imported (``import eks_async``, ``from .. import name``), not for being a
    parent: that is Python's doing for any submodule, not the verifier's."""
    chains: dict[str, tuple[str, ...]] = {root: (root,) for root in roots}
    todo = list(roots)
    while todo:
        current = todo.pop()
        for imported in sorted(_imports_of(current)):
            if imported not in chains:
                chains[imported] = (*chains[current], imported)
                todo.append(imported)
    return chains


def _client_signer_chains(roots: tuple[str, ...]) -> list[str]:
    return [
        " -> ".join(chain)
        for module, chain in sorted(_import_chains(roots).items())
        if module == CLIENT_SIGNER or module.startswith(CLIENT_SIGNER + ".")
    ]


def test_the_verifier_imports_nothing_of_the_client_signer() -> None:
    chains = _import_chains(VERIFIER_MODULES)
    assert set(VERIFIER_MODULES) <= set(chains)
    assert "eks_async.testing._sigv4_check" in chains  # the arithmetic is followed too
    assert _client_signer_chains(VERIFIER_MODULES) == []


def test_the_import_graph_check_sees_a_client_signer_import() -> None:
    # The control: the check finds the imports the verifier used to have, in any form.
    for source in (
        "from .._auth.sigv4 import _canonical_uri, derive_signing_key",
        "from .._auth import sigv4",
        "def later():\n    from eks_async._auth.token import TOKEN_PREFIX",
        "import importlib\nimportlib.import_module('eks_async._auth.sigv4')",
    ):
        found = _imports_of_source(source, "eks_async.testing._signing")
        assert any(name.startswith(CLIENT_SIGNER) for name in found), source
    # ... and follows imports from module to module.
    assert _client_signer_chains(("eks_async._client",)) != []


# --------------------------------------------------------------------------- botocore as reference


def _now_of(stamp: str) -> float:
    return float(calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ")))


class _RecordingSigV4(botocore.auth.SigV4Auth):
    """botocore's header signer, keeping the canonical request and string to sign it made."""

    canonical: str = ""
    to_sign: str = ""

    def canonical_request(self, request: Any) -> str:
        self.canonical = str(super().canonical_request(request))
        return self.canonical

    def string_to_sign(self, request: Any, canonical_request: str) -> str:
        self.to_sign = str(super().string_to_sign(request, canonical_request))
        return self.to_sign


def _botocore_signed(
    method: str,
    target: str,
    body: bytes = b"",
    *,
    secret: str = TEST_SECRET_ACCESS_KEY,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[EmulatorRequest, _RecordingSigV4, float]:
    """A request signed by botocore, as the emulator receives it, and the signing time."""
    request = AWSRequest(method=method, url=f"https://{HOST}{target}", data=body, headers=headers)
    signer = _RecordingSigV4(
        botocore.credentials.Credentials(TEST_ACCESS_KEY_ID, secret, token), "eks", REGION
    )
    signer.add_auth(request)
    parts = urlsplit(request.url)
    sent = [("Host", HOST), *((str(k), str(v)) for k, v in request.headers.items())]
    raw_target = parts.path + (f"?{parts.query}" if parts.query else "")
    emulated = EmulatorRequest.from_target(method, raw_target, tuple(sent), body)
    return emulated, signer, _now_of(str(request.context["timestamp"]))


# Paths and queries as sent: already percent-encoded once, as botocore and eks_async send them.
BOTOCORE_CASES = [
    ("GET", "/clusters/prod", b"", None),
    ("GET", "/", b"", None),
    ("GET", "/tags/" + quote(ARN, safe=""), b"", None),  # ':' and '/' sent as %3A, %2F
    ("DELETE", "/tags/" + quote(ARN, safe="") + "?tagKeys=a&tagKeys=b%20c", b"", None),
    ("GET", "/clusters/a%20b%E2%9C%93~x/node-groups", b"", None),  # space, non-ASCII, '~'
    ("GET", "/clusters/./prod/../prod//addons/", b"", None),  # dot segments, '//', trailing '/'
    ("GET", "/clusters?maxResults=10&include=all&nextToken=a%2Bb%3D", b"", None),
    ("POST", "/clusters/prod/updates", b'{"version": "1.31"}', None),
    (
        "POST",
        "/clusters",
        b"{}",
        {"X-Custom": "  spaced   out  ", "Content-Type": "application/json"},
    ),
]


@pytest.mark.parametrize(("method", "target", "body", "headers"), BOTOCORE_CASES)
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEXAMPLE+/="], ids=["keys", "session"])
def test_botocore_signatures_are_accepted_and_a_mismatch_echoes_botocores_canonical_request(
    method: str, target: str, body: bytes, headers: dict[str, str] | None, token: str | None
) -> None:
    verifier = SignatureVerifier()
    if token is not None:
        verifier.register(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, session_token=token)
    request, _, now = _botocore_signed(method, target, body, token=token, headers=headers)
    assert verifier.verify(request, now=now, max_skew=300) == ("123456789012", REGION)

    wrong, reference, now = _botocore_signed(
        method, target, body, secret="not-the-secret", token=token, headers=headers
    )
    with pytest.raises(WireError) as caught:
        verifier.verify(wrong, now=now, max_skew=300)
    assert caught.value.code == "InvalidSignatureException"
    # What the emulator computed is, byte for byte, what botocore signed.
    assert f"Canonical request computed:\n'{reference.canonical}'" in caught.value.message
    assert f"String to sign computed:\n'{reference.to_sign}'" in caught.value.message


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/",
        "//",
        "/a/./b/../c",
        "/a/../../b",
        "/a//b///c/",
        "/../",
        "/.",
        "a/b",
        "/%2F/%3A/%25",
        "/a b/ü/~/!$&'()*+,;=:@",
        "/tags/" + quote(ARN, safe=""),
    ],
)
def test_the_canonical_uri_is_botocores(path: str) -> None:
    request = AWSRequest(method="GET", url=f"https://{HOST}{path}")
    signer = botocore.auth.SigV4Auth(
        botocore.credentials.Credentials("AKID", "secret"), "eks", REGION
    )
    assert _sigv4_check.canonical_uri(urlsplit(request.url).path) == signer._normalize_url_path(
        urlsplit(request.url).path
    )


def test_the_signing_key_and_signature_are_botocores() -> None:
    signer = botocore.auth.SigV4Auth(
        botocore.credentials.Credentials("AKID", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        "sts",
        "cn-north-1",
    )
    request = AWSRequest(method="GET", url="https://example.com/")
    request.context["timestamp"] = "20150830T123600Z"
    to_sign = "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/cn-north-1/sts/aws4_request\n" + (
        "0" * 64
    )
    key = _sigv4_check.signing_key(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "cn-north-1", "sts"
    )
    assert _sigv4_check.signature(key, to_sign) == signer.signature(to_sign, request)
    assert _sigv4_check.format_amz_date(1440938160.9) == "20150830T123600Z"


def _botocore_token(
    *, secret: str = TEST_SECRET_ACCESS_KEY, token: str | None = None, cluster: str = "prod"
) -> tuple[str, float]:
    """A cluster token presigned by botocore's ``SigV4QueryAuth``, and its signing time."""
    request = AWSRequest(
        method="GET",
        url=f"https://sts.{REGION}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
        headers={"x-k8s-aws-id": cluster},
    )
    botocore.auth.SigV4QueryAuth(
        botocore.credentials.Credentials(TEST_ACCESS_KEY_ID, secret, token),
        "sts",
        REGION,
        expires=60,
    ).add_auth(request)
    url = str(request.url)
    encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    return "k8s-aws-v1." + encoded, _now_of(str(request.context["timestamp"]))


def _lookup(token: str | None) -> Callable[[str], KeyRecord | None]:
    def lookup(key_id: str) -> KeyRecord | None:
        if key_id != TEST_ACCESS_KEY_ID:
            return None
        return KeyRecord(
            secret_access_key=TEST_SECRET_ACCESS_KEY,
            session_token=token,
            account_id="123456789012",
            arn="arn:aws:iam::123456789012:user/test",
        )

    return lookup


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEXAMPLE+/="], ids=["keys", "session"])
def test_botocore_presigned_tokens_are_accepted_for_their_cluster_only(token: str | None) -> None:
    cluster_token, now = _botocore_token(token=token)
    review = review_token(
        cluster_token, cluster="prod", region=REGION, lookup=_lookup(token), now=now
    )
    assert review.authenticated, review.reason
    elsewhere = review_token(
        cluster_token, cluster="staging", region=REGION, lookup=_lookup(token), now=now
    )
    assert not elsewhere.authenticated and "does not match" in elsewhere.reason
    forged, now = _botocore_token(secret="not-the-secret", token=token)
    refused = review_token(forged, cluster="prod", region=REGION, lookup=_lookup(token), now=now)
    assert not refused.authenticated and "does not match" in refused.reason


# --------------------------------------------------------------------------- what runs


def _files_run(action: Callable[[], object]) -> set[Path]:
    """The source files of every Python function called while ``action`` runs."""
    seen: set[str] = set()

    def profile(frame: types.FrameType, event: str, _arg: object) -> None:
        if event == "call":
            seen.add(frame.f_code.co_filename)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(previous)
    return {Path(name).resolve() for name in seen if not name.startswith("<")}


def _client_signer_files(files: set[Path]) -> list[str]:
    signer = PACKAGE / "_auth"
    return sorted(str(f) for f in files if f.is_relative_to(signer))


def test_verifying_runs_no_code_of_the_client_signer() -> None:
    verifier = SignatureVerifier()
    good, _, now = _botocore_signed("DELETE", "/tags/" + quote(ARN, safe="") + "?tagKeys=a")
    bad, _, bad_now = _botocore_signed("GET", "/clusters/prod", secret="wrong")
    cluster_token, token_now = _botocore_token()

    def verify_all() -> None:
        assert verifier.verify(good, now=now, max_skew=300)
        with pytest.raises(WireError):
            verifier.verify(bad, now=bad_now, max_skew=300)
        review = review_token(
            cluster_token, cluster="prod", region=REGION, lookup=_lookup(None), now=token_now
        )
        assert review.authenticated, review.reason

    files = _files_run(verify_all)
    # The profiler sees the verifier run ...
    assert {PACKAGE / "testing" / "_signing.py", PACKAGE / "testing" / "_kube_auth.py"} <= files
    assert _client_signer_files(files) == []


def test_the_profiler_sees_the_client_signer_when_it_runs() -> None:
    # The control: signing with eks_async's signer shows up.
    def sign() -> None:
        client_sigv4.SigV4Signer("eks", REGION).sign_headers(
            method="GET",
            url=f"https://{HOST}/clusters/a%2Fb-{time.monotonic_ns()}",
            headers={},
            body=b"",
            credentials=eks_async.Credentials(
                access_key_id=TEST_ACCESS_KEY_ID, secret_access_key=TEST_SECRET_ACCESS_KEY
            ),
            now=datetime.datetime.now(datetime.UTC),
        )

    assert _client_signer_files(_files_run(sign)) != []


def test_the_arithmetic_stands_alone_with_eks_async_unimportable() -> None:
    script = """
import importlib.abc, importlib.util, sys

class NoEksAsync(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "eks_async" or name.startswith("eks_async."):
            raise ImportError("eks_async is not importable here: " + name)
        return None

sys.meta_path.insert(0, NoEksAsync())
spec = importlib.util.spec_from_file_location("standalone_sigv4_check", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
key = module.signing_key("secret", "20240101", "us-west-2", "eks")
print(module.canonical_uri("/tags/arn%3Aaws/./x"), module.signature(key, "to sign"))
assert not [name for name in sys.modules if name.startswith("eks_async")]
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(PACKAGE / "testing" / "_sigv4_check.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    uri, signature = done.stdout.split()
    assert uri == "/tags/arn%253Aaws/x"
    expected_key = _sigv4_check.signing_key("secret", "20240101", "us-west-2", "eks")
    assert signature == hmac.digest(expected_key, b"to sign", "sha256").hex()


# --------------------------------------------------------------------------- a broken client


@pytest.fixture
def emulator() -> EKSEmulator:
    emu = EKSEmulator(clock=ManualClock(), delays=Delays.none())
    emu.add_cluster("prod")
    return emu


@pytest.fixture
def single_encoding_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The client's canonical URI forgets the second percent-encoding (a classic bug).

    The function's code is replaced, so whatever holds a reference to it runs the bug:
    also a verifier that imported it, as the emulator once did.
    """

    def single_encoded(path: str) -> str:
        return quote(path or "/", safe="/~%")

    canonical_uri = client_sigv4._canonical_uri
    monkeypatch.setattr(canonical_uri.__wrapped__, "__code__", single_encoded.__code__)
    canonical_uri.cache_clear()
    yield
    monkeypatch.undo()
    canonical_uri.cache_clear()


@pytest.fixture
def keyless_prefix_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client derives its signing key without the ``AWS4`` prefix on the secret."""

    def no_prefix(secret_key: str, date_stamp: str, region: str, service: str) -> bytes:
        key = hmac.digest(secret_key.encode(), date_stamp.encode(), "sha256")
        key = hmac.digest(key, region.encode(), "sha256")
        key = hmac.digest(key, service.encode(), "sha256")
        return hmac.digest(key, b"aws4_request", "sha256")

    monkeypatch.setattr(client_sigv4.derive_signing_key, "__code__", no_prefix.__code__)


@pytest.mark.usefixtures("single_encoding_client")
async def test_a_client_that_encodes_the_path_once_is_refused(emulator: EKSEmulator) -> None:
    async with emulator.client(retry=NO_RETRY) as eks:
        # Nothing to escape in this path: the bug does not show, the request passes.
        assert (await eks.describe_cluster(name="prod")).cluster.name == "prod"
        with pytest.raises(ServiceError) as caught:
            await eks.list_tags_for_resource(resource_arn=ARN)
    assert caught.value.code == "InvalidSignatureException"
    assert caught.value.message is not None
    # The emulator encoded the path twice, as EKS does; the client had signed it once.
    assert "\n/tags/arn%253Aaws%253Aeks%253Aus-west-2" in caught.value.message
    assert emulator.calls("ListTagsForResource").ok == 0


@pytest.mark.usefixtures("keyless_prefix_client")
async def test_a_client_with_a_wrong_signing_key_is_refused(emulator: EKSEmulator) -> None:
    async with emulator.client(retry=NO_RETRY) as eks:
        with pytest.raises(ServiceError) as caught:
            await eks.list_clusters()
        token = await eks.get_token(cluster_name="prod")
    assert caught.value.code == "InvalidSignatureException"
    review = emulator.review_token(token.token, "prod")
    assert not review.authenticated
    assert "signature we calculated does not match" in review.reason


async def test_the_same_calls_pass_with_the_client_signer_intact(emulator: EKSEmulator) -> None:
    # The control for the two tests above.
    async with emulator.client(retry=NO_RETRY) as eks:
        await eks.list_tags_for_resource(resource_arn=ARN)
        assert (await eks.list_clusters()).clusters == ["prod"]
        token = await eks.get_token(cluster_name="prod")
    assert emulator.calls("ListTagsForResource").ok == 1
    assert emulator.review_token(token.token, "prod").authenticated


# --------------------------------------------------------------------------- STS hosts


@pytest.mark.parametrize("partition", sorted(_partition_data.PARTITION_REGIONS))
def test_the_sts_hosts_read_from_the_data_are_those_the_client_resolves(partition: str) -> None:
    # The emulator reads its STS hosts from the endpoint data itself; the client's resolver
    # (held to botocore in test_token.py) must name the same hosts and scope regions.
    expected: dict[str, str] = {}
    for region in sorted(_partition_data.PARTITION_REGIONS[partition]):
        if region.endswith("-global") and region != "aws-global":
            continue
        for fips in (False, True):
            try:
                endpoint = client_token.resolve_sts_endpoint(region, use_fips=fips)
            except EndpointResolutionError:
                continue
            expected.setdefault(urlsplit(endpoint.url).netloc, endpoint.signing_region)
    assert sts_hosts(partition) == expected
    assert len(expected) >= 2


def test_the_authenticators_constants_are_the_clients() -> None:
    assert (TOKEN_PREFIX, CLUSTER_ID_HEADER) == (
        client_token.TOKEN_PREFIX,
        client_token.CLUSTER_ID_HEADER,
    )
