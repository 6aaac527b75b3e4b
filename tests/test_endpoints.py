"""eks_async._endpoints against botocore: same URL, or an error in both, for every region.

botocore is the reference here.  Two ways of asking it are used:

* ``client_outcome``: a real botocore EKS client is created and sends ``ListClusters``; a
  ``before-send`` hook records the URL and stops the request.  This is the ground truth
  (note that ``client.meta.endpoint_url`` is *not*: it holds botocore's legacy endpoint,
  which differs from where requests go for e.g. ``aws-iso-global``).
* ``shortcut_outcome``: the same botocore pieces called directly (region check, FIPS
  pseudo-region handling, legacy lookup, rule-set provider), fast enough for fuzzing.
  It is checked against ``client_outcome`` on every fixed region below.
"""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import botocore
import botocore.exceptions
import botocore.session
import pytest
from botocore.client import ClientCreator, ClientEndpointBridge
from botocore.config import Config
from botocore.endpoint_provider import EndpointProvider, RuleSetStandardLibrary
from botocore.regions import EndpointResolver
from botocore.utils import is_valid_endpoint_url, validate_region_name

from eks_async._auth.token import resolve_sts_endpoint, sts_endpoint
from eks_async._endpoints import (
    Partition,
    partition_of,
    region_from_fips_pseudo,
    resolve_endpoint,
)
from eks_async._exceptions import EndpointResolutionError

from ._botomodel import botocore_sent_url, isolated_session

ROOT = Path(__file__).resolve().parent.parent
BOTOCORE_DIR = Path(botocore.__file__).resolve().parent
GENERATED = ROOT / "eks_async" / "_generated" / "endpoints.py"
FLAGS = [(False, False), (False, True), (True, False), (True, True)]

# None stands for "no endpoint" (botocore raised).
Outcome = str | None


# --------------------------------------------------------------------------- botocore side


@pytest.fixture(scope="module")
def session() -> Iterator[botocore.session.Session]:
    with isolated_session() as session:
        yield session


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture(scope="module")
def client_outcome(
    session: botocore.session.Session,
) -> Callable[[str, bool, bool], Outcome]:
    def outcome(region: str, use_fips: bool, use_dualstack: bool) -> Outcome:
        url = botocore_sent_url(
            session, "eks", region, use_fips, use_dualstack, lambda c: c.list_clusters()
        )
        return None if url is None else _origin(url)

    return outcome


@pytest.fixture(scope="module")
def botocore_data(session: botocore.session.Session) -> dict[str, Any]:
    loader = session.get_component("data_loader")
    return {
        "partitions": session.get_data("partitions"),
        "endpoints": session.get_data("endpoints"),
        "ruleset": loader.load_service_model("eks", "endpoint-rule-set-1"),
    }


@pytest.fixture(scope="module")
def shortcut_outcome(
    botocore_data: dict[str, Any],
) -> Callable[[str, bool, bool], Outcome]:
    provider = EndpointProvider(botocore_data["ruleset"], botocore_data["partitions"])
    legacy = EndpointResolver(botocore_data["endpoints"], uses_builtin_data=True)

    def outcome(region: str, use_fips: bool, use_dualstack: bool) -> Outcome:
        try:
            validate_region_name(region)
        except botocore.exceptions.InvalidRegionError:
            return None
        config = Config(use_fips_endpoint=use_fips, use_dualstack_endpoint=use_dualstack)
        # The client creator's own code; it does not use ``self``.
        region, config = ClientCreator._normalize_fips_region(None, region, config)
        bridge = ClientEndpointBridge(legacy, client_config=config)
        try:
            legacy_url = bridge.resolve("eks", region)["endpoint_url"]
        except botocore.exceptions.EndpointVariantError:
            return None
        if not is_valid_endpoint_url(legacy_url):
            return None
        try:
            result = provider.resolve_endpoint(
                Region=region,
                UseFIPS=bool(config.use_fips_endpoint),
                UseDualStack=use_dualstack,
            )
        except botocore.exceptions.EndpointResolutionError:
            return None
        return _origin(result.url)

    return outcome


def ours(region: str, use_fips: bool, use_dualstack: bool) -> Outcome:
    try:
        url = resolve_endpoint(region, use_fips=use_fips, use_dualstack=use_dualstack)
    except EndpointResolutionError:
        return None
    assert url == _origin(url)
    return url


def _all(fn: Callable[[str, bool, bool], Outcome], region: str) -> dict[tuple[bool, bool], Outcome]:
    return {flags: fn(region, *flags) for flags in FLAGS}


# --------------------------------------------------------------------------- regions


def _botocore_regions() -> list[str]:
    """Every region botocore names: partitions.json, endpoints.json, EKS's endpoint keys."""
    data = BOTOCORE_DIR / "data"
    names: set[str] = set()
    for partition in json.loads((data / "partitions.json").read_text())["partitions"]:
        names.update(partition["regions"])
    for partition in json.loads((data / "endpoints.json").read_text())["partitions"]:
        names.update(partition["regions"])
        names.update(partition["services"].get("eks", {}).get("endpoints", {}))
    return sorted(names)


KNOWN_REGIONS = _botocore_regions()

UNKNOWN_REGIONS = [
    # Matched by a partition's regex without being listed.
    "us-west-9",
    "ap-southeast-99",
    "mx-north-3",
    "cn-northwest-7",
    "us-gov-east-3",
    "us-iso-south-9",
    "us-isob-north-4",
    "eu-isoe-west-9",
    "us-isof-north-2",
    "eusc-de-west-2",
    # Matched by nothing: the rules fall back to aws.
    "eusc-fr-east-1",
    "xx-east-1",
    "moon-base-1",
    "local",
    "1a",
    "US-WEST-2",
    "CN-NORTH-1",
    "us-west",
    "a" * 63,
]

FIPS_PSEUDO_REGIONS = [
    "fips-us-east-1",
    "us-east-1-fips",
    "fips-us-gov-west-1",
    "us-gov-west-1-fips",
    "fips-cn-north-1",
    "fips-eu-isoe-west-1",
    "fips-us-isof-south-1",
    "us-fips-east-1",
    "fips-fips-us-west-2",
    "ffips-ips-us-east-1",  # stripping leaves "fips-us-east-1", an endpoints.json key
    "fips-1",  # leaves "1"
    "fips-aws-iso-e-global",
    "fips",
]

INVALID_REGIONS = [
    "",
    "us_west_2",
    "us-west-2.",
    "us west 2",
    "-us-west-2",
    "us-west-2-",
    "12345",
    "a" * 64,
    "us-west-2\n",
    "us-wést-2",
    "fips--fips",  # stripping leaves ""
    "fips--x",  # leaves "-x"
    "x-fips-",
    "https://eks.us-west-2.amazonaws.com",
]

FIXED_REGIONS = KNOWN_REGIONS + UNKNOWN_REGIONS + FIPS_PSEUDO_REGIONS + INVALID_REGIONS


# --------------------------------------------------------------------------- comparisons


def test_region_lists_are_not_empty() -> None:
    assert "us-east-1" in KNOWN_REGIONS
    assert "fips-us-gov-west-1" in KNOWN_REGIONS
    assert "eu-isoe-west-1" in KNOWN_REGIONS
    assert len(KNOWN_REGIONS) > 50


@pytest.mark.parametrize("region", FIXED_REGIONS)
def test_same_as_botocore_client(
    region: str,
    client_outcome: Callable[[str, bool, bool], Outcome],
    shortcut_outcome: Callable[[str, bool, bool], Outcome],
) -> None:
    expected = _all(client_outcome, region)
    assert _all(ours, region) == expected
    # The fast reference used for fuzzing agrees with the real client too.
    assert _all(shortcut_outcome, region) == expected


def test_fixed_regions_cover_both_outcomes(
    client_outcome: Callable[[str, bool, bool], Outcome],
) -> None:
    """Spot checks, so a comparison of two broken sides cannot pass unnoticed."""
    assert client_outcome("us-west-2", False, False) == "https://eks.us-west-2.amazonaws.com"
    assert client_outcome("us-west-2", True, False) == "https://fips.eks.us-west-2.amazonaws.com"
    assert client_outcome("us-gov-west-1", True, False) == "https://eks.us-gov-west-1.amazonaws.com"
    assert client_outcome("cn-north-1", False, True) == (
        "https://eks.cn-north-1.api.amazonwebservices.com.cn"
    )
    assert client_outcome("eu-isoe-west-1", False, True) is None
    assert client_outcome("us_west_2", False, False) is None


def _fuzz_regions(count: int, seed: int) -> list[str]:
    pieces = [
        "us", "eu", "ap", "cn", "gov", "iso", "isob", "isoe", "isof", "eusc", "de", "east",
        "west", "north", "south", "central", "global", "aws", "fips", "fips", "-", "-", "-",
        "-", "1", "2", "9", "10", "0", "x", "US", "Fips", "_", ".", "\n", "",
    ]  # fmt: skip
    rng = random.Random(seed)
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 9))) for _ in range(count)]


def test_fuzz_against_botocore(shortcut_outcome: Callable[[str, bool, bool], Outcome]) -> None:
    regions = _fuzz_regions(3000, seed=20171101)
    mismatches = [
        (region, flags, ours(region, *flags), shortcut_outcome(region, *flags))
        for region in regions
        for flags in FLAGS
        if ours(region, *flags) != shortcut_outcome(region, *flags)
    ]
    assert mismatches == []
    # The generated names hit all kinds of answers.
    answers = {ours(region, False, False) is None for region in regions}
    assert answers == {True, False}


@pytest.mark.parametrize("region", FIXED_REGIONS + _fuzz_regions(300, seed=7))
def test_partition_of_matches_the_rules(region: str, botocore_data: dict[str, Any]) -> None:
    try:
        ours_partition: Partition | None = partition_of(region)
    except EndpointResolutionError:
        ours_partition = None
    if ours(region, False, False) is None:
        # botocore gives no endpoint for this name at all, so no partition either.
        assert ours_partition is None
        return
    assert ours_partition is not None
    stripped, _ = region_from_fips_pseudo(region)
    library = RuleSetStandardLibrary(botocore_data["partitions"])
    theirs = library.aws_partition(stripped)
    assert ours_partition == Partition(
        name=theirs["name"],
        dns_suffix=theirs["dnsSuffix"],
        dual_stack_dns_suffix=theirs["dualStackDnsSuffix"],
        supports_fips=theirs["supportsFIPS"],
        supports_dual_stack=theirs["supportsDualStack"],
        implicit_global_region=theirs["implicitGlobalRegion"],
    )


# --------------------------------------------------------------------------- unit checks


def test_examples() -> None:
    assert resolve_endpoint("us-west-2") == "https://eks.us-west-2.amazonaws.com"
    assert (
        resolve_endpoint("us-west-2", use_fips=True) == "https://fips.eks.us-west-2.amazonaws.com"
    )
    assert resolve_endpoint("us-west-2", use_dualstack=True) == "https://eks.us-west-2.api.aws"
    assert resolve_endpoint("fips-us-gov-east-1") == "https://eks.us-gov-east-1.amazonaws.com"
    assert resolve_endpoint("cn-northwest-7") == "https://eks.cn-northwest-7.amazonaws.com.cn"
    assert resolve_endpoint("moon-base-1") == "https://eks.moon-base-1.amazonaws.com"


def test_errors_are_endpoint_resolution_errors() -> None:
    with pytest.raises(EndpointResolutionError, match="invalid region name"):
        resolve_endpoint("us_west_2")
    with pytest.raises(EndpointResolutionError, match="aws-iso-e"):
        resolve_endpoint("eu-isoe-west-1", use_dualstack=True)
    with pytest.raises(EndpointResolutionError, match="DNS label"):
        resolve_endpoint("fips--fips")
    with pytest.raises(EndpointResolutionError):
        partition_of("not a region")
    # Asking twice (the second answer comes from the cache) raises again.
    with pytest.raises(EndpointResolutionError):
        resolve_endpoint("eu-isoe-west-1", use_dualstack=True)


def test_region_from_fips_pseudo() -> None:
    assert region_from_fips_pseudo("fips-us-gov-west-1") == ("us-gov-west-1", True)
    assert region_from_fips_pseudo("us-east-1-fips") == ("us-east-1", True)
    assert region_from_fips_pseudo("us-fips-east-1") == ("us-east-1", True)
    assert region_from_fips_pseudo("eu-west-1") == ("eu-west-1", False)


def test_partition_of() -> None:
    aws = partition_of("us-west-9")
    assert (aws.name, aws.dns_suffix, aws.implicit_global_region) == (
        "aws",
        "amazonaws.com",
        "us-east-1",
    )
    assert partition_of("fips-us-gov-west-1").name == "aws-us-gov"
    assert partition_of("cn-north-1").dns_suffix == "amazonaws.com.cn"
    assert partition_of("aws-iso-b-global").name == "aws-iso-b"
    assert partition_of("nowhere").name == "aws"


# --------------------------------------------------------------------------- generated code


def _load_codegen() -> Any:
    spec = importlib.util.spec_from_file_location(
        "_codegen_endpoints", ROOT / "codegen" / "endpoints.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_module_is_up_to_date() -> None:
    text = _load_codegen().render_endpoints(BOTOCORE_DIR)
    assert text.splitlines()[0] == (
        "# Generated by codegen/generate.py from botocore's EKS model; do not edit."
    )
    assert text == GENERATED.read_text(encoding="utf-8"), (
        "eks_async/_generated/endpoints.py is stale: run codegen/generate.py"
    )


def test_rule_set_that_reads_the_region_is_refused(tmp_path: Path) -> None:
    """A rule set branching on the region cannot become templates; the generator says so."""
    codegen = _load_codegen()
    fake = tmp_path / "botocore"
    rules_dir = fake / "data" / "eks" / "2017-11-01"
    rules_dir.mkdir(parents=True)
    for name in ("partitions.json", "endpoints.json"):
        (fake / "data" / name).write_bytes((BOTOCORE_DIR / "data" / name).read_bytes())
    rule_set = {
        "version": "1.0",
        "parameters": {"Region": {"builtIn": "AWS::Region", "required": False, "type": "string"}},
        "rules": [
            {
                "conditions": [{"fn": "stringEquals", "argv": [{"ref": "Region"}, "us-east-1"]}],
                "endpoint": {"url": "https://special.example.com"},
                "type": "endpoint",
            },
            {"conditions": [], "error": "nothing", "type": "error"},
        ],
    }
    (rules_dir / "endpoint-rule-set-1.json").write_text(json.dumps(rule_set))
    with pytest.raises(codegen.RuleSetNotTemplatable):
        codegen.render_endpoints(fake)


def test_partition_without_fips_gives_rule_errors(
    tmp_path: Path, botocore_data: dict[str, Any]
) -> None:
    """Today every partition offers everything; check the None / error path on a variant."""
    codegen = _load_codegen()
    fake = tmp_path / "botocore"
    (fake / "data" / "eks" / "2017-11-01").mkdir(parents=True)
    (fake / "data" / "eks" / "2017-11-01" / "endpoint-rule-set-1.json").write_text(
        json.dumps(botocore_data["ruleset"])
    )
    (fake / "data" / "endpoints.json").write_text(json.dumps(botocore_data["endpoints"]))
    partitions = json.loads((BOTOCORE_DIR / "data" / "partitions.json").read_text())
    for partition in partitions["partitions"]:
        if partition["id"] == "aws-iso-e":
            partition["outputs"]["supportsFIPS"] = False
    (fake / "data" / "partitions.json").write_text(json.dumps(partitions))

    namespace: dict[str, Any] = {}
    exec(codegen.render_endpoints(fake), namespace)
    provider = EndpointProvider(botocore_data["ruleset"], partitions)
    for flags in FLAGS:
        template = namespace["URL_TEMPLATES"]["aws-iso-e"][flags]
        try:
            url = provider.resolve_endpoint(
                Region="eu-isoe-west-1", UseFIPS=flags[0], UseDualStack=flags[1]
            ).url
        except botocore.exceptions.EndpointResolutionError as error:
            assert template is None
            assert str(error).endswith(namespace["RULE_ERRORS"]["aws-iso-e"][flags])
        else:
            assert template is not None
            assert template.format(region="eu-isoe-west-1") == url
    assert namespace["URL_TEMPLATES"]["aws-iso-e"][(True, False)] is None


def test_import_does_not_load_botocore() -> None:
    code = (
        "import sys, eks_async._endpoints\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('botocore', 'boto3'))\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- STS
#
# The STS endpoint of cluster tokens (eks_async._auth.token.resolve_sts_endpoint) against botocore:
# the URL a real STS client sends GetCallerIdentity to and presigns it for, and the region it
# signs with, or an error in both.

StsOutcome = tuple[str, str] | None
GENERATED_STS = ROOT / "eks_async" / "_generated" / "sts_endpoints.py"


class _StsSent(Exception):
    def __init__(self, url: str, authorization: str) -> None:
        self.url = url
        self.authorization = authorization


def _scope_region_of_header(authorization: str) -> str:
    # "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sts/aws4_request, ..."
    return authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")[2]


def _scope_region_of_url(url: str) -> str:
    query = dict(parse_qsl(urlsplit(url).query))
    return query["X-Amz-Credential"].split("/")[2]


@pytest.fixture(scope="module")
def sts_client_outcome(
    session: botocore.session.Session,
) -> Callable[[str, bool, bool], StsOutcome]:
    """What a real botocore STS client does: (URL origin, signing region) or None."""

    def outcome(region: str, use_fips: bool, use_dualstack: bool) -> StsOutcome:
        config = Config(
            use_fips_endpoint=use_fips,
            use_dualstack_endpoint=use_dualstack,
            retries={"total_max_attempts": 1},
        )
        try:
            client = session.create_client(
                "sts",
                region_name=region,
                aws_access_key_id="AKIDEXAMPLE",
                aws_secret_access_key="secret",
                config=config,
            )
        except (botocore.exceptions.BotoCoreError, ValueError):
            return None

        def stop(request: Any, **_: Any) -> None:
            raise _StsSent(request.url, request.headers["Authorization"].decode())

        client.meta.events.register("before-send", stop)
        try:
            try:
                client.get_caller_identity()
            except _StsSent as sent:
                sent_outcome = (_origin(sent.url), _scope_region_of_header(sent.authorization))
            except botocore.exceptions.EndpointResolutionError:
                sent_outcome = None
            else:
                raise AssertionError("the request was not stopped before sending")
            try:
                url = client.generate_presigned_url(
                    "get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET"
                )
                presigned: StsOutcome = (_origin(url), _scope_region_of_url(url))
            except botocore.exceptions.EndpointResolutionError:
                presigned = None
        finally:
            client.close()
        # The token is a presigned URL; the AssumeRole call is a sent request. Both agree.
        assert presigned == sent_outcome, (region, use_fips, use_dualstack)
        return presigned

    return outcome


@pytest.fixture(scope="module")
def sts_shortcut_outcome(
    session: botocore.session.Session, botocore_data: dict[str, Any]
) -> Callable[[str, bool, bool], StsOutcome]:
    """The same botocore pieces called directly, fast enough for fuzzing."""
    loader = session.get_component("data_loader")
    provider = EndpointProvider(
        loader.load_service_model("sts", "endpoint-rule-set-1"), botocore_data["partitions"]
    )
    legacy = EndpointResolver(botocore_data["endpoints"], uses_builtin_data=True)

    def outcome(region: str, use_fips: bool, use_dualstack: bool) -> StsOutcome:
        try:
            validate_region_name(region)
        except botocore.exceptions.InvalidRegionError:
            return None
        config = Config(use_fips_endpoint=use_fips, use_dualstack_endpoint=use_dualstack)
        region, config = ClientCreator._normalize_fips_region(None, region, config)
        bridge = ClientEndpointBridge(legacy, client_config=config)
        try:
            resolved = bridge.resolve("sts", region)
        except botocore.exceptions.EndpointVariantError:
            return None
        if not is_valid_endpoint_url(resolved["endpoint_url"]):
            return None
        try:
            result = provider.resolve_endpoint(
                Region=resolved["region_name"],
                UseFIPS=bool(config.use_fips_endpoint),
                UseDualStack=use_dualstack,
                UseGlobalEndpoint=False,
            )
        except botocore.exceptions.EndpointResolutionError:
            return None
        return _origin(result.url), resolved["signing_region"]

    return outcome


def sts_ours(region: str, use_fips: bool, use_dualstack: bool) -> StsOutcome:
    try:
        found = resolve_sts_endpoint(region, use_fips=use_fips, use_dualstack=use_dualstack)
    except EndpointResolutionError:
        return None
    assert found.url == _origin(found.url)
    if not use_dualstack:
        assert sts_endpoint(region, use_fips=use_fips) == found.url
    return found.url, found.signing_region


def _all_sts(
    fn: Callable[[str, bool, bool], StsOutcome], region: str
) -> dict[tuple[bool, bool], StsOutcome]:
    return {flags: fn(region, *flags) for flags in FLAGS}


def _sts_botocore_regions() -> list[str]:
    """Every region botocore names, plus STS's own endpoints.json keys."""
    data = BOTOCORE_DIR / "data"
    names: set[str] = set(KNOWN_REGIONS)
    for partition in json.loads((data / "endpoints.json").read_text())["partitions"]:
        names.update(partition["services"].get("sts", {}).get("endpoints", {}))
    return sorted(names)


STS_KNOWN_REGIONS = _sts_botocore_regions()
STS_ODD_REGIONS = [
    "fips-aws-global",
    "aws-global-fips",
    "aws-global-1",
    "AWS-GLOBAL",
    "us-east-1-f-fipsips",  # stripping leaves "us-east-1-fips": its credentialScope signs
    "us-gov-west-1-f-fipsips",
    "aws-cn-global",
    "aws-us-gov-global",
]
STS_FIXED_REGIONS = (
    STS_KNOWN_REGIONS + STS_ODD_REGIONS + UNKNOWN_REGIONS + FIPS_PSEUDO_REGIONS + INVALID_REGIONS
)


@pytest.mark.parametrize("region", STS_FIXED_REGIONS)
def test_sts_same_as_botocore_client(
    region: str,
    sts_client_outcome: Callable[[str, bool, bool], StsOutcome],
    sts_shortcut_outcome: Callable[[str, bool, bool], StsOutcome],
) -> None:
    expected = _all_sts(sts_client_outcome, region)
    assert _all_sts(sts_ours, region) == expected
    assert _all_sts(sts_shortcut_outcome, region) == expected


def test_sts_spot_checks(sts_client_outcome: Callable[[str, bool, bool], StsOutcome]) -> None:
    """Known answers, so that two broken sides cannot agree unnoticed."""
    assert "aws-global" in STS_KNOWN_REGIONS and "us-gov-west-1-fips" in STS_KNOWN_REGIONS
    cases: list[tuple[str, bool, bool, StsOutcome]] = [
        # Regional, not global, for us-east-1 (sts_regional_endpoints defaults to "regional").
        ("us-east-1", False, False, ("https://sts.us-east-1.amazonaws.com", "us-east-1")),
        ("eu-west-1", False, False, ("https://sts.eu-west-1.amazonaws.com", "eu-west-1")),
        ("aws-global", False, False, ("https://sts.amazonaws.com", "us-east-1")),
        ("aws-global", True, False, ("https://sts-fips.aws-global.amazonaws.com", "us-east-1")),
        ("us-west-2", True, False, ("https://sts-fips.us-west-2.amazonaws.com", "us-west-2")),
        ("fips-us-east-1", False, False, ("https://sts-fips.us-east-1.amazonaws.com", "us-east-1")),
        (
            "us-gov-west-1",
            True,
            False,
            ("https://sts.us-gov-west-1.amazonaws.com", "us-gov-west-1"),
        ),
        ("cn-north-1", False, False, ("https://sts.cn-north-1.amazonaws.com.cn", "cn-north-1")),
        (
            "us-iso-east-1",
            True,
            False,
            ("https://sts-fips.us-iso-east-1.c2s.ic.gov", "us-iso-east-1"),
        ),
        (
            "us-east-1-f-fipsips",
            False,
            False,
            ("https://sts-fips.us-east-1-fips.amazonaws.com", "us-east-1"),
        ),
        ("eu-isoe-west-1", False, True, None),
        ("us_west_2", False, False, None),
    ]
    for region, use_fips, use_dualstack, expected in cases:
        assert sts_client_outcome(region, use_fips, use_dualstack) == expected, region
        assert sts_ours(region, use_fips, use_dualstack) == expected, region


def test_sts_fuzz_against_botocore(
    sts_shortcut_outcome: Callable[[str, bool, bool], StsOutcome],
) -> None:
    regions = _fuzz_regions(3000, seed=20110615) + [
        f"{a}{b}{c}"
        for a in ("", "fips-", "aws-")
        for b in ("aws-global", "global", "us-east-1", "us-gov-west-1")
        for c in ("", "-fips", "-1", "-f-fipsips")
    ]
    mismatches = [
        (region, flags, sts_ours(region, *flags), sts_shortcut_outcome(region, *flags))
        for region in regions
        for flags in FLAGS
        if sts_ours(region, *flags) != sts_shortcut_outcome(region, *flags)
    ]
    assert mismatches == []
    answers = {sts_ours(region, False, False) is None for region in regions}
    assert answers == {True, False}


def test_sts_errors_are_endpoint_resolution_errors() -> None:
    with pytest.raises(EndpointResolutionError, match="invalid region name"):
        sts_endpoint("us_west_2", use_fips=False)
    with pytest.raises(EndpointResolutionError, match="dual-stack"):
        resolve_sts_endpoint("eu-isoe-west-1", use_dualstack=True)
    with pytest.raises(EndpointResolutionError, match="DNS label"):
        sts_endpoint("fips--fips", use_fips=False)


def test_sts_generated_module_is_up_to_date() -> None:
    text = _load_codegen().render_sts_endpoints(BOTOCORE_DIR)
    assert text.splitlines()[0] == (
        "# Generated by codegen/generate.py from botocore's EKS model; do not edit."
    )
    assert text == GENERATED_STS.read_text(encoding="utf-8"), (
        "eks_async/_generated/sts_endpoints.py is stale: run codegen/generate.py"
    )


def _fake_botocore(tmp_path: Path, sts_rule_set: dict[str, Any]) -> Path:
    fake = tmp_path / "botocore"
    rules_dir = fake / "data" / "sts" / "2011-06-15"
    rules_dir.mkdir(parents=True)
    for name in ("partitions.json", "endpoints.json"):
        (fake / "data" / name).write_bytes((BOTOCORE_DIR / "data" / name).read_bytes())
    (rules_dir / "endpoint-rule-set-1.json").write_text(json.dumps(sts_rule_set))
    return fake


def _region_is(region: str, *, reverse: bool = False) -> dict[str, Any]:
    argv: list[Any] = [{"ref": "Region"}, region]
    return {"fn": "stringEquals", "argv": argv[::-1] if reverse else argv}


def test_sts_special_regions_follow_the_rules(
    tmp_path: Path, session: botocore.session.Session, botocore_data: dict[str, Any]
) -> None:
    """Named regions with errors and overrides (none today besides aws-global's URL)."""
    codegen = _load_codegen()
    loader = session.get_component("data_loader")
    rule_set = loader.load_service_model("sts", "endpoint-rule-set-1")
    regional = rule_set["rules"][2]["rules"][0]["rules"]  # under isSet(Region), aws.partition
    fips = {"fn": "booleanEquals", "argv": [{"ref": "UseFIPS"}, True]}
    regional[:0] = [
        {
            "conditions": [_region_is("special-1"), fips],
            "error": "special-1 has no FIPS endpoint",
            "type": "error",
        },
        {
            "conditions": [_region_is("us-west-2", reverse=True)],
            "endpoint": {"url": "https://override.{Region}.example", "properties": {}},
            "type": "endpoint",
        },
    ]
    namespace: dict[str, Any] = {}
    exec(codegen.render_sts_endpoints(_fake_botocore(tmp_path, rule_set)), namespace)
    assert set(namespace["SPECIAL_REGIONS"]) == {"special-1", "us-west-2", "aws-global"}
    assert namespace["SPECIAL_REGION_ERRORS"] == {
        "special-1": {(True, False): "special-1 has no FIPS endpoint",
                      (True, True): "special-1 has no FIPS endpoint"},
    }  # fmt: skip

    provider = EndpointProvider(rule_set, botocore_data["partitions"])
    library = RuleSetStandardLibrary(botocore_data["partitions"])
    for region in ("special-1", "us-west-2", "aws-global", "us-east-1", "cn-north-1"):
        for flags in FLAGS:
            special = namespace["SPECIAL_REGIONS"].get(region, {})
            if flags in special:
                ours_url = special[flags]
            else:
                partition = library.aws_partition(region)["name"]
                template = namespace["URL_TEMPLATES"][partition][flags]
                ours_url = template.format(region=region)
            try:
                url = provider.resolve_endpoint(
                    Region=region, UseFIPS=flags[0], UseDualStack=flags[1], UseGlobalEndpoint=False
                ).url
            except botocore.exceptions.EndpointResolutionError as error:
                assert ours_url is None
                assert str(error).endswith(namespace["SPECIAL_REGION_ERRORS"][region][flags])
            else:
                assert ours_url == url, (region, flags)


def test_sts_rule_set_with_other_signing_is_refused(
    tmp_path: Path, session: botocore.session.Session
) -> None:
    codegen = _load_codegen()
    rule_set = session.get_component("data_loader").load_service_model("sts", "endpoint-rule-set-1")
    regional = rule_set["rules"][2]["rules"][0]["rules"]
    regional[:0] = [
        {
            "conditions": [],
            "endpoint": {
                "url": "https://sts.{Region}.example",
                "properties": {
                    "authSchemes": [
                        {"name": "sigv4a", "signingName": "sts", "signingRegionSet": ["*"]}
                    ]
                },
            },
            "type": "endpoint",
        }
    ]
    with pytest.raises(codegen.RuleSetNotTemplatable):
        codegen.render_sts_endpoints(_fake_botocore(tmp_path, rule_set))
