"""``EKSAuthClient``: the EKS Auth API (``AssumeRoleForPodIdentity``) over the one pipeline.

EKS Auth is what the EKS Pod Identity Agent calls: it trades a service account's projected
token for the credentials of the role associated with it. The client is an ``EKSClient``'s
shell (construction, lifecycle, ``with_options``, retries, signing) with another service:
SigV4 service ``eks-auth``, endpoints from EKS Auth's rule set, EKS Auth's shapes and error
classes. ``import eks_async`` does not load this module; ``eks_async.EKSAuthClient`` does.

The credentials it returns are secrets: their repr is masked, and nothing logs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ._core import ClientCore
from ._endpoints import LegacyTable, check_region_name, locate
from ._exceptions import ConfigurationError, EndpointResolutionError
from ._generated.eks_auth import endpoints as _data
from ._generated.eks_auth.client import EKSAuthOperations
from ._generated.eks_auth.errors import ERRORS_BY_CODE
from ._pipeline import Service
from ._restjson.serialize import values_from_params

__all__ = ["EKS_AUTH_SERVICE", "EKSAuthClient", "resolve_eks_auth_endpoint"]

_LEGACY: Final = LegacyTable(_data)
_CACHE: Final[dict[tuple[str, bool, bool], tuple[bool, str]]] = {}
_CACHE_LIMIT: Final = 1024


def _resolve(given: str, use_fips: bool, use_dualstack: bool) -> tuple[bool, str]:
    try:
        where = locate(given, use_fips, use_dualstack, service="EKS Auth", legacy=_LEGACY)
    except EndpointResolutionError as exc:
        return False, str(exc)
    name = where.partition.name
    template = _data.URL_TEMPLATES.get(name, {}).get(where.combo)
    if template is None:
        reason = _data.RULE_ERRORS.get(name, {}).get(where.combo, "no endpoint")
        return False, (
            f"no {where.kind} EKS Auth endpoint for region {given!r} (partition {name!r}): "
            f"{reason}"
        )
    return True, template.format(region=where.region)


def resolve_eks_auth_endpoint(
    region: str, *, use_fips: bool = False, use_dualstack: bool = False
) -> str:
    """The URL EKS Auth requests for ``region`` go to: ``https://eks-auth.us-west-2.api.aws``.

    Resolved as botocore resolves it for an ``eks-auth`` client (the same checks and
    partitions as ``eks_async._endpoints.resolve_endpoint``, with EKS Auth's rule set and
    endpoint data). Raises ``EndpointResolutionError`` where botocore gives no endpoint.
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


EKS_AUTH_SERVICE: Final = Service(
    name="EKS Auth",
    signing_name="eks-auth",
    resolve_endpoint=resolve_eks_auth_endpoint,
    errors=ERRORS_BY_CODE,
)


class EKSAuthClient(ClientCore, EKSAuthOperations):
    """An asyncio client for the EKS Auth API (what the EKS Pod Identity Agent calls).

    ``async with EKSAuthClient(region="us-west-2") as auth:`` then
    ``await auth.assume_role_for_pod_identity(cluster_name=..., token=...)``. It takes the
    same arguments as ``EKSClient`` (credentials, endpoint_url, FIPS, retry, transport...).
    """

    _service = EKS_AUTH_SERVICE

    async def call(self, operation: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call an EKS Auth operation by its model name with boto3-style parameters."""
        from ._generated.eks_auth.operations import OPERATIONS

        try:
            op = OPERATIONS[operation]
        except KeyError:
            raise ConfigurationError(f"EKS Auth has no operation named {operation!r}") from None
        values = values_from_params(op, params or {})
        return await self._invoke(op, values)
