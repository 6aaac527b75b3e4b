"""Access entries and access policies: the records, and what a cluster's authenticator and
authorizer make of them.

An access entry maps an IAM principal to a Kubernetes user name and groups; its access
policies (AWS-managed, associated once each, cluster- or namespace-scoped) decide what that
user may do. Writes are seen by the EKS API at once; the cluster's authenticator sees each
change only after its own propagation delay (``Delays.access_entry_*`` and
``Delays.access_policy_*``), so a Kubernetes request answers 401 (no entry yet) or 403
(no policy yet) for a while, as EKS does.

What the emulator decides where EKS publishes no detail:

- Types other than STANDARD take no ``username`` or ``kubernetesGroups`` (EKS sets them):
  the user name is ``system:node:{{EC2PrivateDNSName}}`` (``system:node:{{SessionName}}``
  for FARGATE_LINUX and HYBRID_LINUX) and the group ``system:nodes``; their principal must
  be an IAM role of the cluster's account; they take no access policy.
- Template values: ``{{AccountID}}``, ``{{AccessKeyID}}``, ``{{SessionName}}`` (``@``
  becomes ``-``), ``{{SessionNameRaw}}``; ``{{EC2PrivateDNSName}}`` and ``{{EC2InstanceID}}``
  are the session name too (an instance role's session is named after the instance).
- Kubernetes groups grant nothing (the emulator has no RBAC objects); only access policies
  do. Every authenticated user may use discovery, ``/version``, SelfSubjectReview and
  SelfSubjectAccessReview (as Kubernetes' ``system:basic-user`` and ``system:discovery``).
- The policies' verbs for the kinds served (namespaces, serviceaccounts,
  serviceaccounts/token), after Kubernetes' user-facing roles: ClusterAdmin: everything;
  Admin and Edit: every verb on namespaced resources (Edit: not on ``rbac.authorization.k8s.io``
  ones), ``create`` on ``serviceaccounts/token``, get/list/watch on namespaces; View and
  AdminView: get/list/watch only (View: not secrets). A namespace scope limits a policy to
  the named namespaces (``*`` wildcards allowed; a namespace object counts as in itself);
  a request over all namespaces needs a cluster scope.
- An entry is bound to its principal's IAM unique id when it is created, as EKS binds it:
  a role (or user) deleted and created again with the same name gets a new id
  (``EKSEmulator.recreate_principal``), and the old entry no longer maps its callers, although
  the API still shows it, until the entry itself is deleted and created again. The ids are
  made up (``AROA``/``AIDA`` and 17 characters, the same for the same name and generation).
- Authentication modes: ``API`` maps callers by access entry only (no entry: 401);
  ``API_AND_CONFIG_MAP`` uses the caller's entry when there is one, and otherwise the
  aws-auth ConfigMap; ``CONFIG_MAP`` uses the ConfigMap only. The emulator has no aws-auth
  ConfigMap of its own: it maps every other caller as an administrator, by its ARN (the
  emulator's behaviour before access entries).
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from typing import Any, Final

import attrs

__all__ = [
    "ACCESS_POLICIES",
    "AccessEntryRecord",
    "Grant",
    "Versions",
    "allowed",
    "expand_username",
]

_POLICY_PREFIX: Final = "cluster-access-policy/"
#: The AWS-managed access policies ListAccessPolicies returns (the name after the prefix).
ACCESS_POLICIES: Final = (
    "AmazonEKSAdminPolicy",
    "AmazonEKSAdminViewPolicy",
    "AmazonEKSClusterAdminPolicy",
    "AmazonEKSEditPolicy",
    "AmazonEKSViewPolicy",
)
ENTRY_TYPES: Final = (
    "STANDARD",
    "EC2_LINUX",
    "EC2_WINDOWS",
    "FARGATE_LINUX",
    "EC2",
    "HYBRID_LINUX",
    "HYPERPOD_LINUX",
)
#: Prefixes EKS keeps for itself in user names and group names.
RESERVED_PREFIXES: Final = ("system:", "eks:", "aws:", "amazon:", "iam:")
_READ: Final = frozenset({"get", "list", "watch"})
_CLUSTER_SCOPED: Final = frozenset(
    {
        "namespaces",
        "nodes",
        "persistentvolumes",
        "clusterroles",
        "clusterrolebindings",
        "customresourcedefinitions",
        "storageclasses",
        "priorityclasses",
        "validatingwebhookconfigurations",
        "mutatingwebhookconfigurations",
        "certificatesigningrequests",
    }
)
_PRINCIPAL: Final = re.compile(
    r"arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):iam::([0-9]{12}):(user|role)/([\w+=,.@/-]{1,512})"
)
SESSION_ARN: Final = re.compile(
    r"arn:(aws[a-z-]*):sts::([0-9]{12}):assumed-role/([\w+=,.@-]{1,64})/([\w+=,.@-]{1,64})"
)


def policy_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:eks::aws:{_POLICY_PREFIX}{name}"


def policy_name(arn: str) -> str | None:
    """The managed policy an ARN names, or ``None``."""
    match = re.fullmatch(r"arn:(aws|aws-cn|aws-us-gov):eks::aws:cluster-access-policy/(.+)", arn)
    if match is None or match.group(2) not in ACCESS_POLICIES:
        return None
    return match.group(2)


def principal_key(arn: str) -> tuple[str, str, str, str] | None:
    """``(partition, account, user|role, name)``: the one IAM principal an ARN names (a name
    is unique in its account whatever its path; an assumed-role session names its role)."""
    session = SESSION_ARN.fullmatch(arn)
    if session is not None:
        return session.group(1), session.group(2), "role", session.group(3)
    parsed = parse_principal(arn)
    if parsed is None:
        return None
    partition, account, kind, path_name = parsed
    return partition, account, kind, path_name.rpartition("/")[2]


def unique_id(key: tuple[str, str, str, str], generation: int) -> str:
    """The IAM unique id of a principal's ``generation`` (one more each time it is made
    again): ``AROA...`` for a role, ``AIDA...`` for a user."""
    prefix = "AROA" if key[2] == "role" else "AIDA"
    digest = hashlib.sha256(f"{'/'.join(key)}#{generation}".encode()).hexdigest()
    return prefix + digest[:17].upper()


def parse_principal(arn: str) -> tuple[str, str, str, str] | None:
    """``(partition, account, user|role, path and name)`` of an IAM user or role ARN."""
    match = _PRINCIPAL.fullmatch(arn)
    if match is None:
        return None
    return match.group(1), match.group(2), match.group(3), match.group(4)


# --- records ----------------------------------------------------------------------------------


@attrs.define(kw_only=True)
class Versions:
    """What the cluster sees, by time: ``(visible from, snapshot)``; later never before earlier."""

    items: list[tuple[float, Any]] = attrs.Factory(list)

    def view(self, now: float) -> Any:
        seen: Any = None
        for visible_from, snapshot in self.items:
            if visible_from > now:
                break
            seen = snapshot
        return seen

    def publish(self, visible_from: float, snapshot: Any) -> None:
        if self.items:
            visible_from = max(visible_from, self.items[-1][0])
        self.items.append((visible_from, snapshot))

    def last(self) -> float:
        return self.items[-1][0] if self.items else 0.0


@attrs.define(kw_only=True)
class AccessEntryRecord:
    principal_arn: str
    #: The entry as the API shows it now (``None`` once deleted).
    current: dict[str, Any] | None
    #: policy ARN -> AssociatedAccessPolicy (wire form), as the API shows them now.
    policies: dict[str, dict[str, Any]]
    tags: dict[str, str]
    #: The IAM unique id of the principal the entry was made for (``None``: not an IAM one).
    principal_id: str | None = None
    #: What the cluster's authenticator sees: the entry's view, or ``None``.
    entry_versions: Versions = attrs.Factory(Versions)
    #: What the cluster's authorizer sees: policy ARN -> access scope.
    policy_versions: Versions = attrs.Factory(Versions)

    def gone(self, now: float) -> bool:
        return (
            self.current is None
            and now >= self.entry_versions.last()
            and now >= self.policy_versions.last()
        )


@attrs.frozen(kw_only=True)
class Grant:
    """What a caller mapped by an access entry may do: its policies' names and scopes."""

    #: ``(policy name, None for the cluster or the namespace patterns)``
    policies: tuple[tuple[str, tuple[str, ...] | None], ...]


# --- the authenticator ------------------------------------------------------------------------


def principal_of(caller_arn: str) -> str:
    """The IAM principal of a caller: an assumed-role session's role (no path), else itself."""
    session = SESSION_ARN.fullmatch(caller_arn)
    if session is None:
        return caller_arn
    partition, account, role, _ = session.groups()
    return f"arn:{partition}:iam::{account}:role/{role}"


def matches(principal_arn: str, caller_arn: str) -> bool:
    if principal_arn == caller_arn:
        return True
    session = SESSION_ARN.fullmatch(caller_arn)
    parsed = parse_principal(principal_arn)
    if session is None or parsed is None:
        return False
    partition, account, kind, path_name = parsed
    return (
        kind == "role"
        and (partition, account) == (session.group(1), session.group(2))
        and path_name.rpartition("/")[2] == session.group(3)
    )


def expand_username(template: str, caller_arn: str, account_id: str, access_key_id: str) -> str:
    session = SESSION_ARN.fullmatch(caller_arn)
    raw = session.group(4) if session is not None else ""
    values = {
        "AccountID": account_id,
        "AccessKeyID": access_key_id,
        "SessionName": raw.replace("@", "-"),
        "SessionNameRaw": raw,
        "EC2PrivateDNSName": raw,
        "EC2InstanceID": raw,
    }
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values.get(m.group(1), m.group(0)), template)


def default_username(entry_type: str, principal_arn: str) -> str:
    if entry_type in ("FARGATE_LINUX", "HYBRID_LINUX"):
        return "system:node:{{SessionName}}"
    if entry_type != "STANDARD":
        return "system:node:{{EC2PrivateDNSName}}"
    parsed = parse_principal(principal_arn)
    if parsed is not None and parsed[2] == "role":
        partition, account, _, path_name = parsed
        return (
            f"arn:{partition}:sts::{account}:assumed-role/{path_name.rpartition('/')[2]}"
            "/{{SessionName}}"
        )
    return principal_arn


# --- the authorizer ---------------------------------------------------------------------------


def _policy_allows(name: str, verb: str, group: str, resource: str, subresource: str) -> bool:
    if name == "AmazonEKSClusterAdminPolicy":
        return True
    cluster_scoped = resource in _CLUSTER_SCOPED and group == ""
    if subresource == "token" and resource == "serviceaccounts":
        return verb == "create" and name in ("AmazonEKSAdminPolicy", "AmazonEKSEditPolicy")
    if name in ("AmazonEKSAdminPolicy", "AmazonEKSEditPolicy"):
        if cluster_scoped:
            return resource == "namespaces" and verb in _READ
        return not (name == "AmazonEKSEditPolicy" and group == "rbac.authorization.k8s.io")
    if name in ("AmazonEKSViewPolicy", "AmazonEKSAdminViewPolicy"):
        if verb not in _READ or subresource:
            return False
        if name == "AmazonEKSViewPolicy" and resource == "secrets":
            return False
        return not cluster_scoped or resource == "namespaces"
    return False


def allowed(
    grant: Grant,
    *,
    verb: str,
    resource: str,
    namespace: str = "",
    group: str = "",
    subresource: str = "",
    name: str = "",
) -> bool:
    """Whether the grant allows one request (Kubernetes' request attributes)."""
    if resource == "namespaces" and group == "" and name and not namespace:
        namespace = name  # a namespace object is in itself
    for policy, scope in grant.policies:
        if not _policy_allows(policy, verb, group, resource, subresource):
            continue
        if scope is None:
            return True
        if namespace and any(fnmatch.fnmatchcase(namespace, p) for p in scope):
            return True
    return False
