"""What the emulated EKS knows and does: clusters, pod identity associations, identity
provider configs, their updates and tags, kept per account and region.

Each operation is a method taking the decoded input (model member names, JSON values) and
returning the output in wire form. Time is EKS time from the emulator's clock; every
write records *when* it becomes visible, and reads look at what is visible at their
moment, which is how eventual consistency shows:

- an association has a list of versions, each visible from some time: a new one is
  unseen for a while, an updated one shows its old role for a while, a deleted one stays
  listed for a while (and still blocks its namespace and service account);
- an identity provider config is CREATING until its Update finishes, then ACTIVE (or gone,
  if the Update failed); DELETING after a disassociation, then gone;
- a cluster is CREATING, then ACTIVE; DELETING, then gone.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import string
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

import attrs

from .._generated.operations import OPERATIONS
from .._generated.shapes import SHAPES
from . import _access
from ._access import AccessEntryRecord, Grant
from ._config import EmulatorConfig
from ._wire import WireError

__all__ = [
    "PRINCIPAL_NOT_PROPAGATED",
    "ROLE_NOT_PROPAGATED",
    "CallContext",
    "EKSService",
    "FailUpdate",
]

T = TypeVar("T")
Handler = Callable[["EKSService", "CallContext", dict[str, Any]], dict[str, Any]]

DEFAULT_KUBERNETES_VERSION: Final = "1.33"
_PLATFORM_VERSION: Final = "eks.9"
_ID_ALPHABET: Final = string.ascii_lowercase + string.digits
_ROLE_ARN = re.compile(r"arn:aws(-cn|-us-gov|-iso|-iso-b)?:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}")
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_K8S_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_EKS_ARN = re.compile(r"arn:(aws|aws-cn|aws-us-gov):eks:([a-z0-9-]+):([0-9]{12}):([a-z-]+)/(.+)")
_VERSION = re.compile(r"1\.[0-9]{1,2}")
_DEFAULT_LOG_TYPES: Final = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
_DEFAULT_PAGE: Final = 100
#: EKS's answer to a Pod Identity request naming a role it does not know (yet)
#: (hashicorp/terraform-provider-aws#34711, #34717).
ROLE_NOT_PROPAGATED: Final = "Role provided in the request does not exist."
#: EKS's answer to CreateAccessEntry for a principal it does not know (yet)
#: (hashicorp/terraform-provider-aws#35535).
PRINCIPAL_NOT_PROPAGATED: Final = "The specified principalArn is invalid: invalid principal."


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _ms(epoch: float) -> float:
    return round(epoch, 3)


@attrs.frozen(kw_only=True)
class FailUpdate:
    """An Update that will end ``Failed``, with the ErrorDetail it reports."""

    error_code: str = "Unknown"
    message: str = "The identity provider configuration could not be applied."


@attrs.frozen(kw_only=True)
class CallContext:
    """Who calls, where, and when (EKS time), for one operation."""

    account_id: str
    region: str
    #: EKS seconds on the emulator's monotonic clock.
    now: float
    #: The same moment as epoch seconds.
    epoch: float
    #: Set when the Update this call starts must fail.
    fail_update: FailUpdate | None = None
    #: The caller's IAM ARN, when known (the cluster creator's access entry).
    caller_arn: str | None = None

    @property
    def partition(self) -> str:
        return partition_of(self.region)


# --- records ----------------------------------------------------------------------------------


@attrs.define(kw_only=True)
class _Update:
    id: str
    type: str
    params: list[dict[str, str]]
    created_at: float
    done_at: float
    failure: FailUpdate | None
    resource: str

    def status(self, now: float) -> str:
        if now < self.done_at:
            return "InProgress"
        return "Failed" if self.failure is not None else "Successful"

    def wire(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        errors: list[dict[str, Any]] = []
        if status == "Failed" and self.failure is not None:
            errors.append(
                {
                    "errorCode": self.failure.error_code,
                    "errorMessage": self.failure.message,
                    "resourceIds": [self.resource],
                }
            )
        return {
            "id": self.id,
            "status": status,
            "type": self.type,
            "params": [dict(p) for p in self.params],
            "createdAt": _ms(self.created_at),
            "errors": errors,
        }


@attrs.define(kw_only=True)
class _Association:
    id: str
    arn: str
    namespace: str
    service_account: str
    #: The association as it is now (``None`` once deleted): what writes see.
    current: dict[str, Any] | None
    #: ``(visible from, view)``: what reads see, by time; a ``None`` view is the deletion.
    versions: list[tuple[float, dict[str, Any] | None]]
    tags: dict[str, str]

    def view(self, now: float) -> dict[str, Any] | None:
        seen: dict[str, Any] | None = None
        for visible_from, snapshot in self.versions:
            if visible_from > now:
                break
            seen = snapshot
        return seen

    def publish(self, visible_from: float, snapshot: dict[str, Any] | None) -> None:
        # A later change is never seen before an earlier one.
        visible_from = max(visible_from, self.versions[-1][0]) if self.versions else visible_from
        self.versions.append((visible_from, snapshot))

    def gone(self, now: float) -> bool:
        """Deleted, and the deletion seen: until then it holds its namespace/service account."""
        return self.current is None and now >= self.versions[-1][0]


@attrs.define(kw_only=True)
class _IdentityProviderConfig:
    name: str
    arn: str
    oidc: dict[str, Any]
    tags: dict[str, str]
    active_at: float
    associate_failed: bool
    delete_at: float | None = None
    gone_at: float | None = None
    disassociate_failed: bool = False

    def status(self, now: float) -> str | None:
        """CREATING, ACTIVE, DELETING, or ``None`` once gone."""
        if now < self.active_at:
            return "CREATING"
        if self.associate_failed:
            return None
        if self.delete_at is not None and self.gone_at is not None and now >= self.delete_at:
            if now < self.gone_at:
                return "DELETING"
            return "ACTIVE" if self.disassociate_failed else None
        return "ACTIVE"


@attrs.define(kw_only=True)
class _Cluster:
    name: str
    arn: str
    created_at: float
    active_at: float
    static: dict[str, Any]
    tags: dict[str, str]
    endpoint: str
    issuer: str
    certificate: str
    #: The hex id in the endpoint's host name; names the cluster's Kubernetes endpoint.
    endpoint_id: str = ""
    delete_at: float | None = None
    gone_at: float | None = None
    associations: dict[str, _Association] = attrs.Factory(dict)
    identity_providers: dict[str, _IdentityProviderConfig] = attrs.Factory(dict)
    updates: dict[str, _Update] = attrs.Factory(dict)
    #: Access entries by principal ARN.
    access_entries: dict[str, AccessEntryRecord] = attrs.Factory(dict)
    #: The cluster's Kubernetes objects, made on the first Kubernetes API request.
    kube: Any = None
    #: An authentication mode an AccessConfigUpdate sets: ``(EKS time it does, mode)``.
    pending_mode: tuple[float, str] | None = None

    def status(self, now: float) -> str | None:
        if self.gone_at is not None and now >= self.gone_at:
            return None
        if self.delete_at is not None:
            return "DELETING"
        return "CREATING" if now < self.active_at else "ACTIVE"

    def wire(self, now: float) -> dict[str, Any]:
        status = self.status(now) or "DELETING"
        self.mode(now)
        out = dict(self.static)
        out["status"] = status
        reached_active = now >= self.active_at
        if reached_active:
            out["endpoint"] = self.endpoint
            out["certificateAuthority"] = {"data": self.certificate}
            out["identity"] = {"oidc": {"issuer": self.issuer}}
        else:
            out["certificateAuthority"] = {}
        out["health"] = {"issues": []}
        if self.tags:
            out["tags"] = dict(self.tags)
        return out

    def live_associations(self, now: float) -> Iterable[_Association]:
        """Associations not yet gone (forgetting those that are)."""
        for assoc in list(self.associations.values()):
            if assoc.gone(now):
                del self.associations[assoc.id]
            else:
                yield assoc

    def access_entry(self, principal_arn: str, now: float) -> AccessEntryRecord | None:
        """The entry as the API sees it (``None`` when absent or deleted)."""
        record = self.access_entries.get(principal_arn)
        if record is not None and record.gone(now):
            del self.access_entries[principal_arn]
            return None
        return record if record is not None and record.current is not None else None

    @property
    def authentication_mode(self) -> str:
        """The mode as last applied (``mode(now)`` applies a finished update first)."""
        return str(self.static["accessConfig"]["authenticationMode"])

    def mode(self, now: float) -> str:
        """The authentication mode at ``now``: an AccessConfigUpdate's once it succeeded."""
        if self.pending_mode is not None and now >= self.pending_mode[0]:
            self.static["accessConfig"]["authenticationMode"] = self.pending_mode[1]
            self.pending_mode = None
        return self.authentication_mode

    def identity_provider(self, name: str, now: float) -> _IdentityProviderConfig | None:
        config = self.identity_providers.get(name)
        if config is not None and config.status(now) is None:
            del self.identity_providers[name]
            return None
        return config

    def running_update(self, now: float) -> _Update | None:
        for update in self.updates.values():
            if update.status(now) == "InProgress":
                return update
        return None


@attrs.define(kw_only=True)
class _Region:
    clusters: dict[str, _Cluster] = attrs.Factory(dict)
    #: ``(operation, token)`` -> (parameters fingerprint, first answer)
    tokens: dict[tuple[str, str], tuple[str, dict[str, Any]]] = attrs.Factory(dict)


# --- the service ------------------------------------------------------------------------------


#: Authentication modes in the only order a cluster may move through them, one step at a time.
_MODE_STEPS: Final = ("CONFIG_MAP", "API_AND_CONFIG_MAP", "API")


def _not_found(cluster: str) -> WireError:
    return WireError(
        "ResourceNotFoundException", f"No cluster found for name: {cluster}.", clusterName=cluster
    )


def _invalid(message: str, cluster: str | None = None) -> WireError:
    return WireError("InvalidParameterException", message, clusterName=cluster)


def _idempotency_member(op_name: str) -> str | None:
    for member in SHAPES[OPERATIONS[op_name].input_shape][2]:
        if member[6]:
            return str(member[1])
    return None


#: In what the authenticator sees of an entry: the unique id of the IAM principal it is for.
_PRINCIPAL_ID: Final = "eks_async.principalId"
_TOKEN_MEMBERS: Final = {name: _idempotency_member(name) for name in OPERATIONS}


class EKSService:
    """The emulated service's state and operations (not thread-safe: the caller locks)."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        #: While the Kubernetes endpoints are served: a cluster's endpoint id to
        #: ``(base URL, base64 PEM of the CA)``, which DescribeCluster then hands out.
        self.kube_endpoint: Callable[[str], tuple[str, str]] | None = None
        self.reset(config.seed)

    def reset(self, seed: int) -> None:
        """Forget everything; ids and delays start again from ``seed``."""
        self._regions: dict[tuple[str, str], _Region] = {}
        #: IAM principal ARN -> when (EKS time) a request first named it.
        self._principals_seen: dict[str, float] = {}
        #: IAM principal (``_access.principal_key``) -> times it was made again.
        self._principal_generations: dict[tuple[str, str, str, str], int] = {}
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Restart the id and delay sequences from ``seed``; the state stays."""
        self._ids = random.Random(f"{seed}/ids")
        self._delays = random.Random(f"{seed}/delays")

    # --- helpers ---------------------------------------------------------------------------

    def _region(self, ctx: CallContext) -> _Region:
        key = (ctx.account_id, ctx.region)
        region = self._regions.get(key)
        if region is None:
            region = self._regions[key] = _Region()
        return region

    def _cluster(self, ctx: CallContext, name: str) -> _Cluster:
        region = self._region(ctx)
        cluster = region.clusters.get(name)
        if cluster is None:
            raise _not_found(name)
        if cluster.status(ctx.now) is None:
            del region.clusters[name]
            raise _not_found(name)
        return cluster

    def _active_cluster(self, ctx: CallContext, name: str) -> _Cluster:
        cluster = self._cluster(ctx, name)
        status = cluster.status(ctx.now)
        if status != "ACTIVE":
            raise WireError(
                "InvalidRequestException",
                f"Cluster {name} is {status}: the request needs an ACTIVE cluster.",
                clusterName=name,
            )
        return cluster

    def _hex(self, length: int, upper: bool = False) -> str:
        text = f"{self._ids.getrandbits(4 * length):0{length}x}"
        return text.upper() if upper else text

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _association_id(self) -> str:
        return "a-" + "".join(self._ids.choice(_ID_ALPHABET) for _ in range(17))

    @staticmethod
    def _page(
        op_name: str,
        items: list[T],
        key: Callable[[T], str],
        params: dict[str, Any],
    ) -> tuple[list[T], str | None]:
        """One page of ``items`` (sorted by ``key``) after ``nextToken``, and the next token."""
        items = sorted(items, key=key)
        limit = params.get("maxResults", _DEFAULT_PAGE)
        token = params.get("nextToken")
        if token is not None:
            after = _decode_token(op_name, token)
            items = [item for item in items if key(item) > after]
        page = items[:limit]
        more = len(items) > limit
        return page, _encode_token(op_name, key(page[-1])) if more and page else None

    def hold_new_principal(
        self,
        ctx: CallContext,
        cluster: str | None,
        *arns: str,
        message: str = ROLE_NOT_PROPAGATED,
    ) -> None:
        """Refuse the request while IAM has not propagated one of ``arns`` to EKS yet.

        A principal is unknown for ``config.role_propagation`` EKS seconds from the first
        time a request names it (kept per ARN: IAM is global and the ARN names the
        account); every ARN given is seen, then, if any is still unknown, this raises
        ``InvalidParameterException`` with ``message``. CreateAccessEntry passes its
        ``principalArn`` and ``message=PRINCIPAL_NOT_PROPAGATED``.
        """
        seen = self._principals_seen
        held = False
        for arn in arns:
            first = seen.setdefault(arn, ctx.now)
            held = held or ctx.now < first + self.config.role_propagation
        if held:
            raise _invalid(message, cluster)

    def principal_id(self, arn: str) -> str | None:
        """The IAM unique id of the principal ``arn`` names now (``None``: no IAM principal)."""
        key = _access.principal_key(arn)
        if key is None:
            return None
        return _access.unique_id(key, self._principal_generations.get(key, 0))

    def recreate_principal(self, arn: str) -> str:
        """Delete and create again the IAM role or user ``arn`` names: a new unique id (so
        entries made before no longer map it), unknown to EKS again for
        ``config.role_propagation``. Returns the new id."""
        key = _access.principal_key(arn)
        if key is None:
            raise ValueError(f"not an IAM role or user ARN: {arn[:200]!r}")
        self._principal_generations[key] = self._principal_generations.get(key, 0) + 1
        for seen in list(self._principals_seen):
            if _access.principal_key(seen) == key:
                del self._principals_seen[seen]
        return _access.unique_id(key, self._principal_generations[key])

    # --- dispatch --------------------------------------------------------------------------

    def call(self, op_name: str, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        """Run one emulated operation; raises ``WireError`` for EKS's error answers."""
        handler = _HANDLERS.get(op_name)
        if handler is None:
            raise WireError(
                "InvalidRequestException",
                f"eks_async emulator: operation {op_name} is not emulated",
            )
        token_member = _TOKEN_MEMBERS.get(op_name)
        token = params.get(token_member) if token_member else None
        if not isinstance(token, str):
            return handler(self, ctx, params)
        fingerprint = json.dumps(
            {k: v for k, v in params.items() if k != token_member}, sort_keys=True
        )
        tokens = self._region(ctx).tokens
        first = tokens.get((op_name, token))
        if first is not None:
            if first[0] != fingerprint:
                raise WireError(
                    "InvalidRequestException",
                    "The client request token was already used with different parameters "
                    "(idempotency token reused with different parameters).",
                    clusterName=params.get("clusterName") or params.get("name"),
                )
            return json.loads(json.dumps(first[1]))  # type: ignore[no-any-return]
        result = handler(self, ctx, params)
        tokens[(op_name, token)] = (fingerprint, json.loads(json.dumps(result)))
        return result

    # --- clusters --------------------------------------------------------------------------

    def create_cluster(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        name = p["name"]
        _check_role(p["roleArn"], "roleArn", None)
        version = p.get("version", DEFAULT_KUBERNETES_VERSION)
        if not _VERSION.fullmatch(version):
            raise _invalid(f"unsupported Kubernetes version {version}", name)
        region = self._region(ctx)
        existing = region.clusters.get(name)
        if existing is not None and existing.status(ctx.now) is not None:
            raise WireError(
                "ResourceInUseException",
                f"Cluster already exists with name: {name}",
                clusterName=name,
            )
        access = p.get("accessConfig", {})
        bootstrap = access.get("bootstrapClusterCreatorAdminPermissions", True)
        mode = access.get("authenticationMode", "API_AND_CONFIG_MAP")
        if mode not in ("API", "API_AND_CONFIG_MAP", "CONFIG_MAP"):
            raise _invalid(
                f"accessConfig.authenticationMode: {str(mode)[:40]!r} is not one of API, "
                "API_AND_CONFIG_MAP, CONFIG_MAP",
                name,
            )
        creator = _access.principal_of(ctx.caller_arn) if ctx.caller_arn else None
        cluster = self.add_cluster(ctx, name, p, creator=creator if bootstrap else None)
        return {"cluster": self._wire(cluster, ctx.now)}

    def _wire(self, cluster: _Cluster, now: float) -> dict[str, Any]:
        out = cluster.wire(now)
        if self.kube_endpoint is not None and "endpoint" in out:
            out["endpoint"], ca_data = self.kube_endpoint(cluster.endpoint_id)
            out["certificateAuthority"] = {"data": ca_data}
        return out

    def live_clusters(self, now: float) -> list[_Cluster]:
        """Every cluster not yet deleted, in every account and region."""
        return [
            cluster
            for region in self._regions.values()
            for cluster in region.clusters.values()
            if cluster.status(now) is not None
        ]

    def cluster_by_endpoint_id(
        self, endpoint_id: str, now: float
    ) -> tuple[str, str, _Cluster] | None:
        """``(account, region, cluster)`` of the live cluster with this endpoint id."""
        for (account_id, region_name), region in self._regions.items():
            for cluster in region.clusters.values():
                if cluster.endpoint_id == endpoint_id and cluster.status(now) is not None:
                    return account_id, region_name, cluster
        return None

    def add_cluster(
        self,
        ctx: CallContext,
        name: str,
        p: dict[str, Any],
        delay: float | None = None,
        *,
        creator: str | None = None,
    ) -> _Cluster:
        """Put a cluster in the state (CreateCluster, or a test's set-up).

        It turns ACTIVE after ``delay`` EKS seconds (by default, a draw of the configured
        creation delay). ``creator``: an IAM user or role ARN that gets an access entry with
        AmazonEKSClusterAdminPolicy, seen by the cluster from the start (as EKS bootstraps
        the cluster creator's).
        """
        if delay is None:
            delay = self.config.delays.cluster_create.draw(self._delays)
        arn = f"arn:{ctx.partition}:eks:{ctx.region}:{ctx.account_id}:cluster/{name}"
        vpc_in = p.get("resourcesVpcConfig", {})
        vpc = {
            "subnetIds": list(vpc_in.get("subnetIds", [])),
            "securityGroupIds": list(vpc_in.get("securityGroupIds", [])),
            "clusterSecurityGroupId": f"sg-{self._hex(17)}",
            "vpcId": f"vpc-{self._hex(17)}",
            "endpointPublicAccess": vpc_in.get("endpointPublicAccess", True),
            "endpointPrivateAccess": vpc_in.get("endpointPrivateAccess", False),
            "publicAccessCidrs": list(vpc_in.get("publicAccessCidrs", ["0.0.0.0/0"])),
        }
        network_in = p.get("kubernetesNetworkConfig", {})
        network = {
            "serviceIpv4Cidr": network_in.get("serviceIpv4Cidr", "10.100.0.0/16"),
            "ipFamily": network_in.get("ipFamily", "ipv4"),
            "elasticLoadBalancing": {"enabled": False},
        }
        access_in = p.get("accessConfig", {})
        static: dict[str, Any] = {
            "name": name,
            "arn": arn,
            "createdAt": _ms(ctx.epoch),
            "version": p.get("version", DEFAULT_KUBERNETES_VERSION),
            "roleArn": p.get("roleArn", f"arn:aws:iam::{ctx.account_id}:role/eks-cluster"),
            "resourcesVpcConfig": vpc,
            "kubernetesNetworkConfig": network,
            "logging": p.get(
                "logging", {"clusterLogging": [{"types": _DEFAULT_LOG_TYPES, "enabled": False}]}
            ),
            "platformVersion": _PLATFORM_VERSION,
            "accessConfig": {
                "bootstrapClusterCreatorAdminPermissions": access_in.get(
                    "bootstrapClusterCreatorAdminPermissions", True
                ),
                "authenticationMode": access_in.get("authenticationMode", "API_AND_CONFIG_MAP"),
            },
            "upgradePolicy": {
                "supportType": p.get("upgradePolicy", {}).get("supportType", "EXTENDED")
            },
        }
        if "clientRequestToken" in p:
            static["clientRequestToken"] = p["clientRequestToken"]
        if "encryptionConfig" in p:
            static["encryptionConfig"] = p["encryptionConfig"]
        host = self._hex(32, upper=True)
        cluster = _Cluster(
            name=name,
            arn=arn,
            created_at=ctx.epoch,
            active_at=ctx.now + delay,
            static=static,
            tags=dict(p.get("tags", {})),
            endpoint=f"https://{host}.gr7.{ctx.region}.eks.amazonaws.com",
            issuer=f"https://oidc.eks.{ctx.region}.amazonaws.com/id/{host}",
            certificate=base64.b64encode(
                b"-----BEGIN CERTIFICATE-----\neks_async emulator\n-----END CERTIFICATE-----\n"
            ).decode(),
            endpoint_id=host,
        )
        self._region(ctx).clusters[name] = cluster
        if (
            creator is not None
            and _access.parse_principal(creator) is not None
            and cluster.authentication_mode != "CONFIG_MAP"  # no entries: the creator is admin
        ):
            record = self._new_access_entry(ctx, cluster, creator, "STANDARD", {}, None)
            record.entry_versions.publish(0.0, self._seen(record))
            admin = _access.policy_arn(ctx.partition, "AmazonEKSClusterAdminPolicy")
            self._set_policy(ctx, record, admin, {"type": "cluster"}, 0.0)
        return cluster

    def describe_cluster(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        return {"cluster": self._wire(self._cluster(ctx, p["name"]), ctx.now)}

    def list_clusters(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        region = self._region(ctx)
        names = [name for name, c in list(region.clusters.items()) if c.status(ctx.now) is not None]
        page, token = self._page("ListClusters", names, lambda n: n, p)
        out: dict[str, Any] = {"clusters": page}
        if token:
            out["nextToken"] = token
        return out

    def delete_cluster(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(ctx, p["name"])
        if cluster.delete_at is None:
            cluster.delete_at = ctx.now
            cluster.gone_at = ctx.now + self.config.delays.cluster_delete.draw(self._delays)
        return {"cluster": self._wire(cluster, ctx.now)}

    # --- pod identity associations ---------------------------------------------------------

    def _association(self, cluster: _Cluster, assoc_id: str) -> _Association:
        assoc = cluster.associations.get(assoc_id)
        if assoc is None or assoc.current is None:
            raise self._association_not_found(cluster.name, assoc_id)
        return assoc

    @staticmethod
    def _association_not_found(cluster: str, assoc_id: str) -> WireError:
        return WireError(
            "ResourceNotFoundException",
            f"No pod identity association found for id: {assoc_id} in cluster {cluster}.",
            clusterName=cluster,
        )

    def _association_view(self, assoc: _Association, view: dict[str, Any]) -> dict[str, Any]:
        out = dict(view)
        if assoc.tags:
            out["tags"] = dict(assoc.tags)
        return out

    def create_pod_identity_association(
        self, ctx: CallContext, p: dict[str, Any]
    ) -> dict[str, Any]:
        name = p["clusterName"]
        cluster = self._active_cluster(ctx, name)
        namespace, service_account = p["namespace"], p["serviceAccount"]
        if len(namespace) > 63 or not _K8S_NAME.fullmatch(namespace):
            raise _invalid(f"namespace: {namespace[:80]!r} is not a valid Kubernetes name", name)
        if len(service_account) > 253 or not _K8S_SUBDOMAIN.fullmatch(service_account):
            raise _invalid(
                f"serviceAccount: {service_account[:80]!r} is not a valid Kubernetes name", name
            )
        _check_role(p["roleArn"], "roleArn", name)
        if "targetRoleArn" in p:
            _check_role(p["targetRoleArn"], "targetRoleArn", name)
        self.hold_new_principal(ctx, name, p["roleArn"], *_target_role(p))
        for assoc in cluster.live_associations(ctx.now):
            if (assoc.namespace, assoc.service_account) == (namespace, service_account):
                raise WireError(
                    "ResourceInUseException",
                    f"Association already exists: {assoc.id}",
                    clusterName=name,
                )
        assoc_id = self._association_id()
        arn = (
            f"arn:{ctx.partition}:eks:{ctx.region}:{ctx.account_id}:"
            f"podidentityassociation/{name}/{assoc_id}"
        )
        current: dict[str, Any] = {
            "clusterName": name,
            "namespace": namespace,
            "serviceAccount": service_account,
            "roleArn": p["roleArn"],
            "associationArn": arn,
            "associationId": assoc_id,
            "createdAt": _ms(ctx.epoch),
            "modifiedAt": _ms(ctx.epoch),
            "disableSessionTags": p.get("disableSessionTags", False),
        }
        if "targetRoleArn" in p:
            current["targetRoleArn"] = p["targetRoleArn"]
            current["externalId"] = self._uuid()
        if "policy" in p:
            current["policy"] = p["policy"]
        assoc = _Association(
            id=assoc_id,
            arn=arn,
            namespace=namespace,
            service_account=service_account,
            current=current,
            versions=[],
            tags=dict(p.get("tags", {})),
        )
        assoc.publish(
            ctx.now + self.config.delays.association_create.draw(self._delays), dict(current)
        )
        cluster.associations[assoc_id] = assoc
        return {"association": self._association_view(assoc, current)}

    def describe_pod_identity_association(
        self, ctx: CallContext, p: dict[str, Any]
    ) -> dict[str, Any]:
        cluster = self._cluster(ctx, p["clusterName"])
        assoc = cluster.associations.get(p["associationId"])
        view = assoc.view(ctx.now) if assoc is not None else None
        if assoc is None or view is None:
            raise self._association_not_found(cluster.name, p["associationId"])
        return {"association": self._association_view(assoc, view)}

    def list_pod_identity_associations(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(ctx, p["clusterName"])
        seen: list[dict[str, Any]] = []
        for assoc in cluster.live_associations(ctx.now):
            view = assoc.view(ctx.now)
            if view is None:
                continue
            if "namespace" in p and view["namespace"] != p["namespace"]:
                continue
            if "serviceAccount" in p and view["serviceAccount"] != p["serviceAccount"]:
                continue
            seen.append(view)
        page, token = self._page(
            "ListPodIdentityAssociations",
            seen,
            lambda v: f"{v['namespace']}/{v['serviceAccount']}/{v['associationId']}",
            p,
        )
        summaries = [
            {
                k: v[k]
                for k in (
                    "clusterName",
                    "namespace",
                    "serviceAccount",
                    "associationArn",
                    "associationId",
                )
            }
            for v in page
        ]
        out: dict[str, Any] = {"associations": summaries}
        if token:
            out["nextToken"] = token
        return out

    def update_pod_identity_association(
        self, ctx: CallContext, p: dict[str, Any]
    ) -> dict[str, Any]:
        name = p["clusterName"]
        cluster = self._active_cluster(ctx, name)
        assoc = self._association(cluster, p["associationId"])
        assert assoc.current is not None
        current = dict(assoc.current)
        if "roleArn" in p:
            _check_role(p["roleArn"], "roleArn", name)
        if p.get("targetRoleArn"):
            _check_role(p["targetRoleArn"], "targetRoleArn", name)
        roles = ([p["roleArn"]] if "roleArn" in p else []) + _target_role(p)
        self.hold_new_principal(ctx, name, *roles)
        if "roleArn" in p:
            current["roleArn"] = p["roleArn"]
        if "targetRoleArn" in p:
            if p["targetRoleArn"] == "":
                current.pop("targetRoleArn", None)
                current.pop("externalId", None)
            else:
                if current.get("targetRoleArn") != p["targetRoleArn"]:
                    current["externalId"] = self._uuid()
                current["targetRoleArn"] = p["targetRoleArn"]
        if "disableSessionTags" in p:
            current["disableSessionTags"] = p["disableSessionTags"]
        if "policy" in p:
            current["policy"] = p["policy"]
        current["modifiedAt"] = _ms(ctx.epoch)
        assoc.current = current
        assoc.publish(
            ctx.now + self.config.delays.association_update.draw(self._delays), dict(current)
        )
        return {"association": self._association_view(assoc, current)}

    def delete_pod_identity_association(
        self, ctx: CallContext, p: dict[str, Any]
    ) -> dict[str, Any]:
        cluster = self._cluster(ctx, p["clusterName"])
        assoc = self._association(cluster, p["associationId"])
        assert assoc.current is not None
        last = assoc.current
        assoc.current = None
        assoc.publish(ctx.now + self.config.delays.association_delete.draw(self._delays), None)
        return {"association": self._association_view(assoc, last)}

    # --- access entries and access policies -----------------------------------------------

    def _entry(self, ctx: CallContext, cluster: _Cluster, principal_arn: str) -> AccessEntryRecord:
        record = cluster.access_entry(principal_arn, ctx.now)
        if record is None:
            raise WireError(
                "ResourceNotFoundException",
                f"The specified principalArn could not be found. You can view your available "
                f"access entries with 'list-access-entries'. ({principal_arn[:200]})",
                clusterName=cluster.name,
            )
        return record

    def _new_access_entry(
        self,
        ctx: CallContext,
        cluster: _Cluster,
        principal_arn: str,
        entry_type: str,
        tags: dict[str, str],
        username: str | None,
        groups: list[str] | None = None,
    ) -> AccessEntryRecord:
        parsed = _access.parse_principal(principal_arn)
        assert parsed is not None
        _partition, account, kind, path_name = parsed
        arn = (
            f"arn:{ctx.partition}:eks:{ctx.region}:{ctx.account_id}:access-entry/"
            f"{cluster.name}/{kind}/{account}/{path_name.rpartition('/')[2]}/{self._uuid()}"
        )
        kube_groups = list(groups or []) if entry_type == "STANDARD" else ["system:nodes"]
        current: dict[str, Any] = {
            "clusterName": cluster.name,
            "principalArn": principal_arn,
            "kubernetesGroups": kube_groups,
            "accessEntryArn": arn,
            "createdAt": _ms(ctx.epoch),
            "modifiedAt": _ms(ctx.epoch),
            "username": username or _access.default_username(entry_type, principal_arn),
            "type": entry_type,
        }
        record = cluster.access_entries.get(principal_arn)
        if record is None:
            record = AccessEntryRecord(
                principal_arn=principal_arn, current=current, policies={}, tags=dict(tags)
            )
            cluster.access_entries[principal_arn] = record
        else:  # re-created while its deletion still propagates: same history
            record.current, record.policies, record.tags = current, {}, dict(tags)
        # Bound to the principal as IAM knows it now (its unique id), not to the ARN.
        record.principal_id = self.principal_id(principal_arn)
        return record

    @staticmethod
    def _seen(record: AccessEntryRecord) -> dict[str, Any]:
        """What the cluster's authenticator is handed of an entry: the entry, and the unique
        id of the principal it was made for."""
        return {**(record.current or {}), _PRINCIPAL_ID: record.principal_id}

    def _entry_view(self, record: AccessEntryRecord) -> dict[str, Any]:
        assert record.current is not None
        out = json.loads(json.dumps(record.current))
        if record.tags:
            out["tags"] = dict(record.tags)
        return out  # type: ignore[no-any-return]

    @staticmethod
    def _check_names(cluster: str, username: str | None, groups: list[str] | None) -> None:
        if username is not None:
            if not username or len(username) > 256:
                raise _invalid("username must be 1 to 256 characters", cluster)
            if username.lower().startswith(_access.RESERVED_PREFIXES):
                raise _invalid(
                    f"username {username[:80]!r} is not valid: a username can't start with "
                    + ", ".join(_access.RESERVED_PREFIXES),
                    cluster,
                )
        for group in groups or []:
            if not group or len(group) > 256:
                raise _invalid("a Kubernetes group name must be 1 to 256 characters", cluster)
            if group.lower().startswith(_access.RESERVED_PREFIXES):
                raise _invalid(
                    f"kubernetesGroups: {group[:80]!r} is not valid: a group name can't start "
                    "with " + ", ".join(_access.RESERVED_PREFIXES),
                    cluster,
                )

    def create_access_entry(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        name = p["clusterName"]
        cluster = self._active_cluster(ctx, name)
        if cluster.mode(ctx.now) == "CONFIG_MAP":
            raise WireError(
                "InvalidRequestException",
                f"The cluster {name} authentication mode is CONFIG_MAP: set it to API or "
                "API_AND_CONFIG_MAP to use access entries.",
                clusterName=name,
            )
        principal_arn = p["principalArn"]
        entry_type = p.get("type", "STANDARD")
        if entry_type not in _access.ENTRY_TYPES:
            raise _invalid(
                f"type: {entry_type[:40]!r} is not one of " + ", ".join(_access.ENTRY_TYPES), name
            )
        if _access.SESSION_ARN.fullmatch(principal_arn):
            raise _invalid(
                "principalArn: an STS session can't have an access entry; use its IAM role's ARN",
                name,
            )
        parsed = _access.parse_principal(principal_arn)
        if parsed is None:
            raise _invalid(
                f"principalArn: {principal_arn[:100]!r} is not a valid IAM user or role ARN", name
            )
        username, groups = p.get("username"), p.get("kubernetesGroups")
        if entry_type != "STANDARD":
            if username is not None or groups:
                raise _invalid(
                    f"username and kubernetesGroups can only be set for STANDARD access entries, "
                    f"not {entry_type}",
                    name,
                )
            if parsed[2] != "role" or parsed[1] != ctx.account_id:
                raise _invalid(
                    f"principalArn: a {entry_type} access entry needs an IAM role of the "
                    f"cluster's account {ctx.account_id}",
                    name,
                )
        self._check_names(name, username, groups)
        self.hold_new_principal(ctx, name, principal_arn, message=PRINCIPAL_NOT_PROPAGATED)
        if cluster.access_entry(principal_arn, ctx.now) is not None:
            raise WireError(
                "ResourceInUseException",
                f"The specified access entry resource is already in use on this cluster. "
                f"({principal_arn[:200]})",
                clusterName=name,
            )
        record = self._new_access_entry(
            ctx, cluster, principal_arn, entry_type, dict(p.get("tags", {})), username, groups
        )
        assert record.current is not None
        record.entry_versions.publish(
            ctx.now + self.config.delays.access_entry_create.draw(self._delays),
            self._seen(record),
        )
        return {"accessEntry": self._entry_view(record)}

    def describe_access_entry(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(ctx, p["clusterName"])
        return {"accessEntry": self._entry_view(self._entry(ctx, cluster, p["principalArn"]))}

    def list_access_entries(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(ctx, p["clusterName"])
        wanted = p.get("associatedPolicyArn")
        if wanted is not None and _access.policy_name(wanted) is None:
            raise _invalid(f"associatedPolicyArn: {wanted[:100]!r} is not an access policy", None)
        principals = [
            arn
            for arn in list(cluster.access_entries)
            if (record := cluster.access_entry(arn, ctx.now)) is not None
            and (wanted is None or wanted in record.policies)
        ]
        page, token = self._page("ListAccessEntries", principals, lambda a: a, p)
        out: dict[str, Any] = {"accessEntries": page}
        if token:
            out["nextToken"] = token
        return out

    def update_access_entry(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        name = p["clusterName"]
        cluster = self._active_cluster(ctx, name)
        record = self._entry(ctx, cluster, p["principalArn"])
        assert record.current is not None
        current = dict(record.current)
        username, groups = p.get("username"), p.get("kubernetesGroups")
        if current["type"] != "STANDARD" and (username is not None or groups is not None):
            raise _invalid(
                "username and kubernetesGroups can only be set for STANDARD access entries, "
                f"not {current['type']}",
                name,
            )
        self._check_names(name, username, groups)
        if username is not None:
            current["username"] = username
        if groups is not None:
            current["kubernetesGroups"] = list(groups)
        current["modifiedAt"] = _ms(ctx.epoch)
        record.current = current
        record.entry_versions.publish(
            ctx.now + self.config.delays.access_entry_update.draw(self._delays),
            self._seen(record),
        )
        return {"accessEntry": self._entry_view(record)}

    def delete_access_entry(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(ctx, p["clusterName"])
        record = self._entry(ctx, cluster, p["principalArn"])
        at = ctx.now + self.config.delays.access_entry_delete.draw(self._delays)
        record.current, record.policies = None, {}
        record.entry_versions.publish(at, None)
        record.policy_versions.publish(at, {})
        return {}

    def _set_policy(
        self,
        ctx: CallContext,
        record: AccessEntryRecord,
        policy: str,
        scope: dict[str, Any],
        visible_from: float,
    ) -> dict[str, Any]:
        existing = record.policies.get(policy)
        associated = existing["associatedAt"] if existing else _ms(ctx.epoch)
        wire: dict[str, Any] = {
            "policyArn": policy,
            "accessScope": {"type": scope["type"], "namespaces": list(scope.get("namespaces", []))},
            "associatedAt": associated,
            "modifiedAt": _ms(ctx.epoch),
        }
        record.policies[policy] = wire
        self._publish_policies(record, visible_from)
        return wire

    @staticmethod
    def _publish_policies(record: AccessEntryRecord, visible_from: float) -> None:
        snapshot = {
            arn: (
                None
                if wire["accessScope"]["type"] == "cluster"
                else tuple(wire["accessScope"]["namespaces"])
            )
            for arn, wire in record.policies.items()
        }
        record.policy_versions.publish(visible_from, snapshot)

    def associate_access_policy(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        name = p["clusterName"]
        cluster = self._active_cluster(ctx, name)
        record = self._entry(ctx, cluster, p["principalArn"])
        assert record.current is not None
        policy = p["policyArn"]
        if _access.policy_name(policy) is None:
            raise _invalid(f"policyArn: {policy[:100]!r} is not an access policy", name)
        scope = p["accessScope"]
        scope_type, namespaces = scope.get("type"), scope.get("namespaces", [])
        if scope_type not in ("cluster", "namespace"):
            raise _invalid("accessScope.type must be cluster or namespace", name)
        if scope_type == "cluster" and namespaces:
            raise _invalid("accessScope.namespaces must be empty for a cluster scope", name)
        if scope_type == "namespace":
            if not namespaces:
                raise _invalid("accessScope.namespaces is required for a namespace scope", name)
            for pattern in namespaces:
                if len(pattern) > 63 or not re.fullmatch(
                    r"[a-z0-9*]([-a-z0-9*]*[a-z0-9*])?", pattern
                ):
                    raise _invalid(
                        f"accessScope.namespaces: {pattern[:80]!r} is not a valid namespace "
                        "name or pattern",
                        name,
                    )
        if record.current["type"] != "STANDARD":
            raise WireError(
                "InvalidRequestException",
                f"Access policies can only be associated with STANDARD access entries, not "
                f"{record.current['type']}.",
                clusterName=name,
            )
        delay = self.config.delays.access_policy_associate.draw(self._delays)
        wire = self._set_policy(
            ctx, record, policy, {"type": scope_type, "namespaces": namespaces}, ctx.now + delay
        )
        return {
            "clusterName": name,
            "principalArn": record.principal_arn,
            "associatedAccessPolicy": dict(wire),
        }

    def disassociate_access_policy(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        name = p["clusterName"]
        cluster = self._cluster(ctx, name)
        record = self._entry(ctx, cluster, p["principalArn"])
        if p["policyArn"] not in record.policies:
            raise WireError(
                "ResourceNotFoundException",
                f"The access policy {p['policyArn'][:200]} is not associated with the access "
                f"entry {record.principal_arn[:200]}.",
                clusterName=name,
            )
        del record.policies[p["policyArn"]]
        delay = self.config.delays.access_policy_disassociate.draw(self._delays)
        self._publish_policies(record, ctx.now + delay)
        return {}

    def list_associated_access_policies(
        self, ctx: CallContext, p: dict[str, Any]
    ) -> dict[str, Any]:
        name = p["clusterName"]
        cluster = self._cluster(ctx, name)
        record = self._entry(ctx, cluster, p["principalArn"])
        page, token = self._page(
            "ListAssociatedAccessPolicies", list(record.policies), lambda a: a, p
        )
        out: dict[str, Any] = {
            "clusterName": name,
            "principalArn": record.principal_arn,
            "associatedAccessPolicies": [json.loads(json.dumps(record.policies[a])) for a in page],
        }
        if token:
            out["nextToken"] = token
        return out

    def list_access_policies(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        names = sorted(_access.ACCESS_POLICIES)
        page, token = self._page("ListAccessPolicies", names, lambda n: n, p)
        out: dict[str, Any] = {
            "accessPolicies": [
                {"name": n, "arn": _access.policy_arn(ctx.partition, n)} for n in page
            ]
        }
        if token:
            out["nextToken"] = token
        return out

    def kube_access(
        self, cluster: _Cluster, caller_arn: str, now: float
    ) -> tuple[dict[str, Any], Grant] | None:
        """The access entry the cluster's authenticator maps a caller to, as it sees it now,
        with the policies its authorizer sees; ``None`` when it sees no entry."""
        for record in cluster.access_entries.values():
            if not _access.matches(record.principal_arn, caller_arn):
                continue
            view = record.entry_versions.view(now)
            if view is None:
                continue
            bound = view.get(_PRINCIPAL_ID)
            if bound is not None and bound != self.principal_id(caller_arn):
                continue  # made for a principal of that name deleted since
            policies = record.policy_versions.view(now) or {}
            grant = Grant(
                policies=tuple(
                    (name, scope)
                    for arn, scope in sorted(policies.items())
                    if (name := _access.policy_name(arn)) is not None
                )
            )
            return dict(view), grant
        return None

    # --- identity provider configs and updates ---------------------------------------------

    def _start_update(
        self,
        ctx: CallContext,
        cluster: _Cluster,
        kind: str,
        config_name: str,
        duration: float,
        params: list[dict[str, str]] | None = None,
    ) -> _Update:
        update = _Update(
            id=self._uuid(),
            type=kind,
            params=params
            or [
                {
                    "type": "IdentityProviderConfig",
                    "value": json.dumps([{"type": "oidc", "name": config_name}]),
                }
            ],
            created_at=ctx.epoch,
            done_at=ctx.now + duration,
            failure=ctx.fail_update,
            resource=config_name,
        )
        cluster.updates[update.id] = update
        return update

    def _no_update_running(self, ctx: CallContext, cluster: _Cluster) -> None:
        running = cluster.running_update(ctx.now)
        if running is not None:
            raise WireError(
                "ResourceInUseException",
                f"Cluster {cluster.name} has an update in progress: {running.id}",
                clusterName=cluster.name,
            )

    def update_cluster_config(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        """UpdateClusterConfig, for ``accessConfig.authenticationMode`` only: an Update of type
        AccessConfigUpdate that moves the mode one step, CONFIG_MAP -> API_AND_CONFIG_MAP ->
        API, never back, never two steps, never to the mode the cluster has (EKS's
        InvalidParameterException "Unsupported authentication mode update from X to Y").
        The new mode applies when the Update ends Successful (``Delays.access_config_update``).
        """
        name = p["name"]
        others = sorted(k for k in p if k not in ("name", "accessConfig", "clientRequestToken"))
        if others:
            raise WireError(
                "InvalidRequestException",
                "eks_async emulator: UpdateClusterConfig emulates accessConfig only, not "
                + ", ".join(others),
                clusterName=name,
            )
        wanted = (p.get("accessConfig") or {}).get("authenticationMode")
        if wanted is None:
            raise _invalid("accessConfig.authenticationMode is required", name)
        cluster = self._active_cluster(ctx, name)
        if wanted not in _MODE_STEPS:
            raise _invalid(
                f"accessConfig.authenticationMode: {str(wanted)[:40]!r} is not one of API, "
                "API_AND_CONFIG_MAP, CONFIG_MAP",
                name,
            )
        self._no_update_running(ctx, cluster)
        current = cluster.mode(ctx.now)
        if _MODE_STEPS.index(wanted) != _MODE_STEPS.index(current) + 1:
            raise _invalid(f"Unsupported authentication mode update from {current} to {wanted}", name)
        duration = self.config.delays.access_config_update.draw(self._delays)
        if ctx.fail_update == FailUpdate():  # the default words are an identity provider's
            ctx = attrs.evolve(
                ctx,
                fail_update=FailUpdate(message="The authentication mode could not be changed."),
            )
        update = self._start_update(
            ctx, cluster, "AccessConfigUpdate", name, duration,
            params=[{"type": "AuthenticationMode", "value": wanted}],
        )
        if update.failure is None:
            cluster.pending_mode = (update.done_at, wanted)
        return {"update": update.wire(ctx.now)}

    def associate_identity_provider_config(
        self, ctx: CallContext, p: dict[str, Any]
    ) -> dict[str, Any]:
        name = p["clusterName"]
        oidc = p["oidc"]
        config_name = oidc["identityProviderConfigName"]
        if len(config_name) > 100 or not re.fullmatch(r"[0-9A-Za-z][A-Za-z0-9\-_]*", config_name):
            raise _invalid(
                f"identityProviderConfigName: {config_name[:80]!r} is not a valid name", name
            )
        issuer = oidc["issuerUrl"]
        if not re.fullmatch(r"https://[^/?#\s]+(/[^?#\s]*)?", issuer):
            raise _invalid(
                "issuerUrl must be an https:// URL without query parameters or fragment", name
            )
        if not oidc["clientId"]:
            raise _invalid("clientId must not be empty", name)
        cluster = self._active_cluster(ctx, name)
        for other in list(cluster.identity_providers):
            if cluster.identity_provider(other, ctx.now) is not None:
                raise WireError(
                    "ResourceInUseException",
                    f"Cluster {name} already has an OIDC identity provider config: {other}. "
                    "A cluster can have one.",
                    clusterName=name,
                )
        self._no_update_running(ctx, cluster)
        duration = self.config.delays.identity_provider_associate.draw(self._delays)
        arn = (
            f"arn:{ctx.partition}:eks:{ctx.region}:{ctx.account_id}:identityproviderconfig/"
            f"{name}/oidc/{config_name}/{self._uuid()}"
        )
        update = self._start_update(
            ctx, cluster, "AssociateIdentityProviderConfig", config_name, duration
        )
        tags = dict(p.get("tags", {}))
        cluster.identity_providers[config_name] = _IdentityProviderConfig(
            name=config_name,
            arn=arn,
            oidc=dict(oidc),
            tags=tags,
            active_at=update.done_at,
            associate_failed=update.failure is not None,
        )
        out: dict[str, Any] = {"update": update.wire(ctx.now)}
        if tags:
            out["tags"] = tags
        return out

    def _config_named(
        self, ctx: CallContext, cluster: _Cluster, ref: dict[str, Any]
    ) -> _IdentityProviderConfig:
        if ref["type"] != "oidc":
            raise _invalid(
                f"identityProviderConfig.type: {ref['type'][:40]!r} is not supported; use oidc",
                cluster.name,
            )
        config = cluster.identity_provider(ref["name"], ctx.now)
        if config is None:
            raise WireError(
                "ResourceNotFoundException",
                f"No identity provider configuration found for name: {ref['name']}.",
                clusterName=cluster.name,
            )
        return config

    def describe_identity_provider_config(
        self, ctx: CallContext, p: dict[str, Any]
    ) -> dict[str, Any]:
        cluster = self._cluster(ctx, p["clusterName"])
        config = self._config_named(ctx, cluster, p["identityProviderConfig"])
        oidc: dict[str, Any] = {
            "identityProviderConfigName": config.name,
            "identityProviderConfigArn": config.arn,
            "clusterName": cluster.name,
        }
        oidc.update({k: v for k, v in config.oidc.items() if k != "identityProviderConfigName"})
        if config.tags:
            oidc["tags"] = dict(config.tags)
        oidc["status"] = config.status(ctx.now)
        return {"identityProviderConfig": {"oidc": oidc}}

    def list_identity_provider_configs(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(ctx, p["clusterName"])
        names = [
            n for n in list(cluster.identity_providers) if cluster.identity_provider(n, ctx.now)
        ]
        page, token = self._page("ListIdentityProviderConfigs", names, lambda n: n, p)
        out: dict[str, Any] = {
            "identityProviderConfigs": [{"type": "oidc", "name": n} for n in page]
        }
        if token:
            out["nextToken"] = token
        return out

    def disassociate_identity_provider_config(
        self, ctx: CallContext, p: dict[str, Any]
    ) -> dict[str, Any]:
        name = p["clusterName"]
        cluster = self._active_cluster(ctx, name)
        ref = p["identityProviderConfig"]
        config = cluster.identity_provider(ref["name"], ctx.now) if ref["type"] == "oidc" else None
        if config is None:
            raise WireError(
                "InvalidRequestException",
                f"Identity provider config {ref['name']} is not associated with cluster {name}.",
                clusterName=name,
            )
        self._no_update_running(ctx, cluster)
        if config.status(ctx.now) != "ACTIVE":
            raise WireError(
                "ResourceInUseException",
                f"Identity provider config {config.name} is {config.status(ctx.now)}.",
                clusterName=name,
            )
        duration = self.config.delays.identity_provider_disassociate.draw(self._delays)
        update = self._start_update(
            ctx, cluster, "DisassociateIdentityProviderConfig", config.name, duration
        )
        config.delete_at = ctx.now
        config.gone_at = update.done_at
        config.disassociate_failed = update.failure is not None
        return {"update": update.wire(ctx.now)}

    def _no_subresource(self, cluster: str, p: dict[str, Any]) -> None:
        if "nodegroupName" in p:
            raise WireError(
                "ResourceNotFoundException",
                f"No node group found for name: {p['nodegroupName']}.",
                clusterName=cluster,
                nodegroupName=p["nodegroupName"],
            )
        if "addonName" in p:
            raise WireError(
                "ResourceNotFoundException",
                f"No addon: {p['addonName']} found in cluster: {cluster}",
                clusterName=cluster,
                addonName=p["addonName"],
            )
        if "capabilityName" in p:
            raise WireError(
                "ResourceNotFoundException",
                f"No capability found for name: {p['capabilityName']}.",
                clusterName=cluster,
            )

    def describe_update(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(ctx, p["name"])
        self._no_subresource(cluster.name, p)
        update = cluster.updates.get(p["updateId"])
        if update is None:
            raise WireError(
                "ResourceNotFoundException",
                f"No update found for ID: {p['updateId']}.",
                clusterName=cluster.name,
            )
        return {"update": update.wire(ctx.now)}

    def list_updates(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(ctx, p["name"])
        self._no_subresource(cluster.name, p)
        ordered = sorted(cluster.updates.values(), key=lambda u: (u.created_at, u.id))
        index = {u.id: f"{i:012d}" for i, u in enumerate(ordered)}
        page, token = self._page("ListUpdates", [u.id for u in ordered], index.__getitem__, p)
        out: dict[str, Any] = {"updateIds": page}
        if token:
            out["nextToken"] = token
        return out

    # --- tags ------------------------------------------------------------------------------

    def _tagged(self, ctx: CallContext, arn: str) -> dict[str, str]:
        match = _EKS_ARN.fullmatch(arn)
        if match is None:
            raise WireError("BadRequestException", f"{arn[:200]} is not a valid EKS ARN.")
        not_found = WireError("NotFoundException", f"Resource not found: {arn[:200]}")
        _partition, region, account, kind, rest = match.groups()
        if (account, region) != (ctx.account_id, ctx.region):
            raise not_found
        parts = rest.split("/")
        clusters = self._region(ctx).clusters
        cluster = clusters.get(parts[0])
        if cluster is None or cluster.status(ctx.now) is None:
            raise not_found
        if kind == "cluster" and len(parts) == 1:
            return cluster.tags
        if kind == "podidentityassociation" and len(parts) == 2:
            assoc = cluster.associations.get(parts[1])
            if assoc is not None and assoc.current is not None and assoc.arn == arn:
                return assoc.tags
        if kind == "access-entry" and len(parts) == 5:
            for record in list(cluster.access_entries.values()):
                entry = cluster.access_entry(record.principal_arn, ctx.now)
                if entry is not None and entry.current and entry.current["accessEntryArn"] == arn:
                    return entry.tags
        if kind == "identityproviderconfig" and len(parts) == 4:
            config = cluster.identity_provider(parts[2], ctx.now)
            if config is not None and config.arn == arn:
                return config.tags
        raise not_found

    def tag_resource(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        tags = self._tagged(ctx, p["resourceArn"])
        new = p["tags"]
        for key in new:
            if key.lower().startswith("aws:"):
                raise WireError("BadRequestException", "Tag keys starting with aws: are reserved.")
        if len(set(tags) | set(new)) > 50:
            raise WireError("BadRequestException", "A resource can have at most 50 tags.")
        tags.update(new)
        return {}

    def untag_resource(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        tags = self._tagged(ctx, p["resourceArn"])
        for key in p["tagKeys"]:
            tags.pop(key, None)
        return {}

    def list_tags_for_resource(self, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        tags = self._tagged(ctx, p["resourceArn"])
        return {"tags": dict(tags)} if tags else {}

    # --- for tests -------------------------------------------------------------------------

    def pending_until(self) -> float:
        """The EKS time by which every change made so far is seen and finished."""
        latest = 0.0
        for region in self._regions.values():
            for cluster in region.clusters.values():
                latest = max(latest, cluster.active_at, cluster.gone_at or 0.0)
                for assoc in cluster.associations.values():
                    latest = max(latest, assoc.versions[-1][0])
                for config in cluster.identity_providers.values():
                    latest = max(latest, config.active_at, config.gone_at or 0.0)
                for entry in cluster.access_entries.values():
                    latest = max(latest, entry.entry_versions.last(), entry.policy_versions.last())
                for update in cluster.updates.values():
                    latest = max(latest, update.done_at)
        return latest


def _target_role(p: dict[str, Any]) -> list[str]:
    """The request's ``targetRoleArn`` as a list (none, or an empty one: no target role)."""
    target = p.get("targetRoleArn")
    return [target] if target else []


def _check_role(arn: str, member: str, cluster: str | None) -> None:
    if len(arn) > 2048 or not _ROLE_ARN.fullmatch(arn):
        raise _invalid(f"{member}: {arn[:100]!r} is not a valid IAM role ARN", cluster)


def _encode_token(op_name: str, after: str) -> str:
    raw = json.dumps({"op": op_name, "after": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(op_name: str, token: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        data = None
    if (
        not isinstance(data, dict)
        or data.get("op") != op_name
        or not isinstance(data.get("after"), str)
    ):
        raise WireError("InvalidParameterException", "The nextToken is not valid.")
    after: str = data["after"]
    return after


_HANDLERS: Final[dict[str, Handler]] = {
    "CreateCluster": EKSService.create_cluster,
    "DescribeCluster": EKSService.describe_cluster,
    "ListClusters": EKSService.list_clusters,
    "DeleteCluster": EKSService.delete_cluster,
    "CreatePodIdentityAssociation": EKSService.create_pod_identity_association,
    "DescribePodIdentityAssociation": EKSService.describe_pod_identity_association,
    "ListPodIdentityAssociations": EKSService.list_pod_identity_associations,
    "UpdatePodIdentityAssociation": EKSService.update_pod_identity_association,
    "DeletePodIdentityAssociation": EKSService.delete_pod_identity_association,
    "AssociateIdentityProviderConfig": EKSService.associate_identity_provider_config,
    "DescribeIdentityProviderConfig": EKSService.describe_identity_provider_config,
    "ListIdentityProviderConfigs": EKSService.list_identity_provider_configs,
    "DisassociateIdentityProviderConfig": EKSService.disassociate_identity_provider_config,
    "CreateAccessEntry": EKSService.create_access_entry,
    "DescribeAccessEntry": EKSService.describe_access_entry,
    "ListAccessEntries": EKSService.list_access_entries,
    "UpdateAccessEntry": EKSService.update_access_entry,
    "DeleteAccessEntry": EKSService.delete_access_entry,
    "AssociateAccessPolicy": EKSService.associate_access_policy,
    "DisassociateAccessPolicy": EKSService.disassociate_access_policy,
    "ListAssociatedAccessPolicies": EKSService.list_associated_access_policies,
    "ListAccessPolicies": EKSService.list_access_policies,
    "UpdateClusterConfig": EKSService.update_cluster_config,
    "DescribeUpdate": EKSService.describe_update,
    "ListUpdates": EKSService.list_updates,
    "TagResource": EKSService.tag_resource,
    "UntagResource": EKSService.untag_resource,
    "ListTagsForResource": EKSService.list_tags_for_resource,
}

#: The operations the emulator implements; every other one answers "not emulated".
EMULATED_OPERATIONS: Final = frozenset(_HANDLERS)
