"""The EKS endpoint for a region, with or without FIPS and dual-stack, as botocore picks it.

This reproduces what botocore 1.43 does for an EKS client created with a region and the
``use_fips_endpoint`` / ``use_dualstack_endpoint`` options, without importing botocore:

1. The region name must look like a host label (letters, digits and hyphens, at most 63,
   not all digits, no hyphen at either end).
2. ``fips-`` and ``-fips`` are removed from the name wherever they occur; if that changed
   the name, FIPS is switched on (botocore's "FIPS pseudo-region" handling).
3. Creating the client also runs botocore's legacy lookup in ``endpoints.json``; it fails
   when the partition it matches has no variant for the requested flags (today: dual-stack
   in aws-iso-e and aws-iso-f), and when the resulting host name is not valid DNS (an empty
   region left by step 2, say).
4. Requests go where EKS's endpoint rule set says: the region's partition (listed regions
   first, then the partition's regex, else the first partition, ``aws``) gives a URL
   template, or an error, for each flag combination.

The data comes from ``eks_async._generated.endpoints``, which ``codegen/endpoints.py``
writes from botocore's files; ``tests/test_endpoints.py`` checks the result against botocore
for every region it knows and for unknown ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import ModuleType
from typing import Final

from ._exceptions import EndpointResolutionError
from ._generated import endpoints as _data

__all__ = [
    "Partition",
    "partition_of",
    "region_from_fips_pseudo",
    "resolve_endpoint",
]


@dataclass(frozen=True, slots=True)
class Partition:
    """A group of regions sharing DNS suffixes and ARN partition (``aws``, ``aws-cn``, ...)."""

    #: The partition's name, as used in ARNs: ``aws``, ``aws-cn``, ``aws-us-gov``, ...
    name: str
    #: Suffix of the partition's IPv4 host names: ``amazonaws.com``.
    dns_suffix: str
    #: Suffix of its dual-stack host names: ``api.aws``.
    dual_stack_dns_suffix: str
    supports_fips: bool
    supports_dual_stack: bool
    #: The region global services of the partition sign for: ``us-east-1`` in ``aws``.
    implicit_global_region: str


@dataclass(frozen=True, slots=True)
class _RulePartition:
    info: Partition
    regex: re.Pattern[str]
    regions: frozenset[str]


@dataclass(frozen=True, slots=True)
class _LegacyPartition:
    name: str
    regex: re.Pattern[str]
    regions: frozenset[str]
    skipped_for_dualstack: bool
    variants: frozenset[tuple[bool, bool]]


# botocore.utils.validate_region_name, applied (like botocore) with re.match and ``$``.
_REGION_NAME: Final = re.compile(r"^(?![0-9]+$)(?!-)[a-zA-Z0-9-]{,63}(?<!-)$")
# One label of a host name as botocore.utils.is_valid_endpoint_url accepts it (fullmatch).
_HOST_LABEL: Final = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")

_RULE_PARTITIONS: Final[tuple[_RulePartition, ...]] = tuple(
    _RulePartition(
        info=Partition(
            name=name,
            dns_suffix=dns_suffix,
            dual_stack_dns_suffix=dual_stack_dns_suffix,
            supports_fips=supports_fips,
            supports_dual_stack=supports_dual_stack,
            implicit_global_region=implicit_global_region,
        ),
        regex=re.compile(regex),
        regions=_data.PARTITION_REGIONS[name],
    )
    for (
        name,
        regex,
        dns_suffix,
        dual_stack_dns_suffix,
        supports_fips,
        supports_dual_stack,
        implicit_global_region,
    ) in _data.PARTITIONS
)

Combo = tuple[bool, bool]


class LegacyTable:
    """botocore's older endpoint data for one service, which still vets every client."""

    __slots__ = ("_fallback", "_partitions", "_region_variants")

    def __init__(self, data: ModuleType) -> None:
        self._partitions = tuple(
            _LegacyPartition(
                name=name,
                regex=re.compile(regex),
                regions=data.LEGACY_REGIONS[name],
                skipped_for_dualstack=skipped,
                variants=data.LEGACY_VARIANTS[name],
            )
            # endpoints.json's partitions, the same for every service: the EKS module's.
            for name, regex, skipped in _data.LEGACY_PARTITIONS
        )
        # The legacy lookup's fallback; botocore takes the last partition of that name.
        self._fallback = next(p for p in reversed(self._partitions) if p.name == "aws")
        self._region_variants: dict[tuple[str, str], frozenset[Combo]] = (
            data.LEGACY_REGION_VARIANTS
        )

    def partition(self, region: str, use_dualstack: bool) -> _LegacyPartition:
        for partition in self._partitions:
            if use_dualstack and partition.skipped_for_dualstack:
                continue
            if region in partition.regions or partition.regex.match(region):
                return partition
        return self._fallback

    def variants(self, partition: _LegacyPartition, region: str) -> frozenset[Combo]:
        return self._region_variants.get((partition.name, region), partition.variants)


@dataclass(frozen=True, slots=True)
class Located:
    """Where a region lands once botocore's checks pass: what both rule sets need."""

    #: The region without its FIPS markers.
    region: str
    #: (FIPS, dual-stack), FIPS on also when the name carried a marker.
    combo: Combo
    #: "standard", "FIPS", "dual-stack" or "FIPS dual-stack", for messages.
    kind: str
    #: The partition of botocore's older endpoint data.
    legacy: str
    #: The partition of the endpoint rules.
    partition: Partition


def locate(
    given: str, use_fips: bool, use_dualstack: bool, *, service: str, legacy: LegacyTable
) -> Located:
    """botocore's checks and partition choice for a name-checked region, for ``service``.

    Raises ``EndpointResolutionError`` where botocore refuses to make the client.
    """
    region, pseudo = region_from_fips_pseudo(given)
    use_fips = use_fips or pseudo
    combo = (use_fips, use_dualstack)
    kind = _describe(use_fips, use_dualstack)
    old = legacy.partition(region, use_dualstack)
    if (use_fips or use_dualstack) and combo not in legacy.variants(old, region):
        raise EndpointResolutionError(
            f"no {kind} {service} endpoint for region {given!r}: botocore's endpoint data has "
            f"no {kind} variant for partition {old.name!r}, so it refuses this client"
        )
    if not _HOST_LABEL.fullmatch(region):
        raise EndpointResolutionError(
            f"no {service} endpoint for region {given!r}: {_not_a_label(given, region)}"
        )
    return Located(region, combo, kind, old.name, _rule_partition(region).info)


_EKS_LEGACY: Final = LegacyTable(_data)

# resolve_endpoint results by (region, use_fips, use_dualstack): (True, url) or
# (False, error message).  Cleared when full, so odd inputs cannot grow it without bound.
_CACHE: Final[dict[tuple[str, bool, bool], tuple[bool, str]]] = {}
_CACHE_LIMIT: Final = 1024


def region_from_fips_pseudo(region: str) -> tuple[str, bool]:
    """Strip FIPS markers from a region name as botocore does.

    Returns the region to use and whether a marker was found (which turns FIPS on):
    ``"fips-us-gov-west-1"`` gives ``("us-gov-west-1", True)``, ``"us-east-1-fips"`` gives
    ``("us-east-1", True)`` and ``"eu-west-1"`` gives ``("eu-west-1", False)``.  botocore
    removes ``fips-`` and then ``-fips`` wherever they appear, not only at the ends, and
    so does this.  The region is not validated here.
    """
    stripped = region.replace("fips-", "").replace("-fips", "")
    return stripped, stripped != region


def check_region_name(region: str) -> None:
    """Refuse a region name botocore would refuse (``EndpointResolutionError``)."""
    if not isinstance(region, str) or not _REGION_NAME.match(region):
        raise EndpointResolutionError(
            f"invalid region name {region!r}: expected letters, digits and hyphens "
            "(at most 63, not only digits, not starting or ending with a hyphen)"
        )


def _rule_partition(region: str) -> _RulePartition:
    for partition in _RULE_PARTITIONS:
        if region in partition.regions or partition.regex.match(region):
            return partition
    return _RULE_PARTITIONS[0]


def _not_a_label(given: str, region: str) -> str:
    if region == given:
        return "it cannot be a DNS label of the endpoint's host name"
    return f"without its FIPS markers it is {region!r}, which cannot be a DNS label"


def _describe(use_fips: bool, use_dualstack: bool) -> str:
    if use_fips and use_dualstack:
        return "FIPS dual-stack"
    if use_fips:
        return "FIPS"
    if use_dualstack:
        return "dual-stack"
    return "standard"


def _resolve(given: str, use_fips: bool, use_dualstack: bool) -> tuple[bool, str]:
    """(True, url) or (False, why there is none) for an already name-checked region."""
    try:
        where = locate(given, use_fips, use_dualstack, service="EKS", legacy=_EKS_LEGACY)
    except EndpointResolutionError as exc:
        return False, str(exc)
    name = where.partition.name
    template = _data.URL_TEMPLATES[name][where.combo]
    if template is None:
        reason = _data.RULE_ERRORS.get(name, {}).get(where.combo, "no endpoint")
        return False, (
            f"no {where.kind} EKS endpoint for region {given!r} (partition {name!r}): {reason}"
        )
    return True, template.format(region=where.region)


def resolve_endpoint(region: str, *, use_fips: bool = False, use_dualstack: bool = False) -> str:
    """The URL EKS requests for ``region`` go to, e.g. ``https://eks.us-west-2.amazonaws.com``.

    ``use_fips`` / ``use_dualstack`` select the FIPS and dual-stack (IPv4 + IPv6) endpoints.
    A region named with a FIPS marker (``fips-us-east-1``, ``us-east-1-fips``) selects FIPS
    by itself.  Regions botocore does not list work too: they belong to the partition whose
    pattern they match (``us-west-9`` to ``aws``, ``cn-north-7`` to ``aws-cn``), or to
    ``aws`` when none matches.

    Raises ``EndpointResolutionError`` where botocore would give no endpoint: an invalid
    region name, or a flag combination the region's partition does not offer.
    """
    key = (region, bool(use_fips), bool(use_dualstack))
    found = _CACHE.get(key)
    if found is None:
        check_region_name(region)
        found = _resolve(*key)
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[key] = found
    ok, text = found
    if not ok:
        raise EndpointResolutionError(text)
    return text


def partition_of(region: str) -> Partition:
    """The partition EKS's endpoint rules put ``region`` in (after removing FIPS markers).

    Unknown regions fall back to ``aws`` as in botocore.  Raises ``EndpointResolutionError``
    for a region name botocore would refuse.
    """
    check_region_name(region)
    stripped, _pseudo = region_from_fips_pseudo(region)
    if not _HOST_LABEL.fullmatch(stripped):
        raise EndpointResolutionError(
            f"invalid region name {region!r}: {_not_a_label(region, stripped)}"
        )
    return _rule_partition(stripped).info
