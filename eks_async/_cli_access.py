"""``eks-async access-entry ...``: access entries and access policies, and waits until the
cluster itself lets the caller in (``eks.waiters.access_entry_effective``).

``--wait`` on create, update and associate-policy asks the cluster with a token made from
the credentials this command runs with, as ``wait=True`` on the client does: use it when the
principal is the caller (a CI role setting up its own entry), or run ``access-entry wait``
later with the principal's credentials (``--profile``). ``--wait`` on delete and
disassociate-policy polls EKS (Describe, ListAssociatedAccessPolicies) until the entry or
the association is gone; the cluster may honour it a few seconds longer.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ._cli_common import Session, add_max_wait, tags
from ._cli_output import UsageError, emit
from ._exceptions import EKSAsyncError, ServiceError
from ._waiters.access import ACCESS_DEFAULTS, CanI
from ._waiters.engine import Decision, Waiter, WaiterConfig
from ._waiters.identity import ASSOCIATION_DEFAULTS

__all__ = ["add_parsers", "run_access_entry"]

ACTIONS = (
    "create", "describe", "list", "update", "delete", "associate-policy",
    "disassociate-policy", "list-policies", "list-access-policies", "wait",
)


class _CanIAction(argparse.Action):
    """``--can-i VERB RESOURCE [NAMESPACE]``, as ``kubectl auth can-i`` takes them."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        items = [str(v) for v in values or ()]
        if len(items) not in (2, 3):
            parser.error(f"argument {option_string}: expected VERB RESOURCE [NAMESPACE]")
        setattr(namespace, self.dest, items)


def can_i(values: Sequence[str] | None) -> CanI | None:
    """``--can-i`` as a ``CanI``: ``deployments.apps`` names a group, ``pods/log`` a
    subresource, as kubectl reads them."""
    if not values:
        return None
    verb, resource = values[0], values[1]
    resource, _, subresource = resource.partition("/")
    resource, _, group = resource.partition(".")
    return CanI(
        verb=verb, resource=resource, group=group, subresource=subresource,
        namespace=values[2] if len(values) > 2 else "",
    )


def _can_i_flags(check: CanI | None) -> list[str]:
    if check is None:
        return []
    resource = check.resource + (f".{check.group}" if check.group else "")
    resource += f"/{check.subresource}" if check.subresource else ""
    return ["--can-i", check.verb, resource, *([check.namespace] if check.namespace else [])]


def add_parsers(
    sub: Any, parents: list[argparse.ArgumentParser]
) -> None:
    """The ``access-entry`` command and its actions (flags named after EKS's parameters)."""
    top = sub.add_parser(
        "access-entry", parents=parents, help="access entries and access policies",
        description="Access entries (who may reach the cluster's Kubernetes API) and the "
        "access policies associated with them.",
    )
    actions = top.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, parents=parents, help=help)
        if name != "list-access-policies":
            p.add_argument("--cluster-name", required=True)
        if name not in ("list", "list-access-policies"):
            p.add_argument("--principal-arn", required=True, help="IAM role or user ARN")
        return p

    def can_i_flag(p: argparse.ArgumentParser, default: str) -> None:
        p.add_argument(
            "--can-i", nargs="+", action=_CanIAction, metavar="ARG",
            help="with --wait: also wait until the caller may do this: VERB RESOURCE "
            f"[NAMESPACE], e.g. --can-i create serviceaccounts ci ({default})",
        )

    p = action("create", "CreateAccessEntry")
    p.add_argument("--kubernetes-group", action="append", metavar="GROUP",
                   help="a Kubernetes group (repeatable)")
    p.add_argument("--username", help="the Kubernetes user name (default: EKS's)")
    p.add_argument("--type", help="STANDARD (default), EC2_LINUX, EC2_WINDOWS, FARGATE_LINUX, ...")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE")
    p.add_argument("--wait", action="store_true",
                   help="return once the cluster authenticates the caller with the entry")
    can_i_flag(p, "default: authentication only")
    add_max_wait(p)

    action("describe", "DescribeAccessEntry")
    p = action("list", "ListAccessEntries")
    p.add_argument("--associated-policy-arn", help="only entries with this policy")

    p = action("update", "UpdateAccessEntry")
    p.add_argument("--kubernetes-group", action="append", metavar="GROUP",
                   help="the Kubernetes groups (repeatable; replaces the entry's)")
    p.add_argument("--username")
    p.add_argument("--wait", action="store_true",
                   help="return once the cluster gives the caller the new groups")
    add_max_wait(p)

    p = action("delete", "DeleteAccessEntry")
    p.add_argument("--wait", action="store_true", help="return once Describe no longer finds it")
    add_max_wait(p)

    p = action("associate-policy", "AssociateAccessPolicy")
    p.add_argument("--policy-arn", required=True,
                   help="e.g. arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy")
    p.add_argument("--access-scope-type", required=True, choices=("cluster", "namespace"))
    p.add_argument("--namespace", action="append", metavar="NAMESPACE",
                   help="with --access-scope-type namespace (repeatable)")
    p.add_argument("--wait", action="store_true",
                   help="return once the cluster allows the caller what the policy grants")
    can_i_flag(p, "default: list pods where the policy applies, for EKS's view/edit/admin "
               "policies; authentication only for others")
    add_max_wait(p)

    p = action("disassociate-policy", "DisassociateAccessPolicy")
    p.add_argument("--policy-arn", required=True)
    p.add_argument("--wait", action="store_true",
                   help="return once ListAssociatedAccessPolicies no longer lists it")
    add_max_wait(p)

    action("list-policies", "ListAssociatedAccessPolicies: the entry's policies")
    action("list-access-policies", "ListAccessPolicies: the policies EKS offers")

    p = action("wait", "wait (again) until an entry is in effect for the caller, or gone")
    can_i_flag(p, "default: authentication only")
    p.add_argument("--deleted", action="store_true",
                   help="wait until the entry (with --policy-arn: that policy's "
                   "association) is gone instead")
    p.add_argument("--policy-arn", help="with --deleted: the disassociated policy")
    add_max_wait(p)


def _scope(args: argparse.Namespace) -> Any:
    from ._generated import models

    if args.access_scope_type == "cluster" and args.namespace:
        raise UsageError("argument --namespace: not allowed with --access-scope-type cluster")
    return models.AccessScope(type=args.access_scope_type, namespaces=args.namespace)


async def _effective(
    session: Session, eks: Any, *, principal_arn: str | None, groups: Sequence[str] | None,
    check: CanI | None,
) -> Any:
    return await eks.waiters.access_entry_effective(
        cluster_name=session.args.cluster_name,
        principal_arn=principal_arn,
        expect_groups=groups,
        can_i=check,
        config=session.config(ACCESS_DEFAULTS),
        on_progress=session.progress,
    )


def _code(error: EKSAsyncError | None) -> str:
    if isinstance(error, ServiceError):
        return error.code
    return type(error).__name__


async def _entry_deleted(
    eks: Any, cluster: str, principal: str, config: WaiterConfig | None, progress: Any
) -> None:
    async def poll() -> Any:
        return await eks.describe_access_entry(cluster_name=cluster, principal_arn=principal)

    def decide(output: Any, error: EKSAsyncError | None) -> Decision:
        if error is not None:
            code = _code(error)
            return ("success", "deleted") if code == "ResourceNotFoundException" else (None, code)
        return "retry", "still described"

    await Waiter("access_entry_deleted", poll, decide, config or ASSOCIATION_DEFAULTS,
                 progress).run()


async def _policy_disassociated(
    eks: Any, cluster: str, principal: str, policy: str, config: WaiterConfig | None,
    progress: Any,
) -> None:
    async def poll() -> bool:
        listing = eks.paginate.list_associated_access_policies(
            cluster_name=cluster, principal_arn=principal
        )
        return any([item.policy_arn == policy async for item in listing])

    def decide(output: Any, error: EKSAsyncError | None) -> Decision:
        if error is not None:
            code = _code(error)
            # The entry itself gone: so are its associations.
            return ("success", "entry deleted") if code == "ResourceNotFoundException" else (
                None, code)
        return ("retry", "still listed") if output else ("success", "disassociated")

    await Waiter("access_policy_disassociated", poll, decide, config or ASSOCIATION_DEFAULTS,
                 progress).run()


async def run_access_entry(session: Session) -> None:
    from ._client import _policy_probe
    from ._generated import models

    args = session.args
    action = args.action
    base = ["access-entry", "wait"]
    async with session.client() as eks:
        if action == "list-access-policies":
            items = [p async for p in eks.paginate.list_access_policies()]
            emit(session.output, "ListAccessPolicies",
                 models.ListAccessPoliciesResponse(access_policies=items))
            return
        cluster = args.cluster_name
        if action == "list":
            entries = [e async for e in eks.paginate.list_access_entries(
                cluster_name=cluster, associated_policy_arn=args.associated_policy_arn)]
            emit(session.output, "ListAccessEntries",
                 models.ListAccessEntriesResponse(access_entries=entries))
            return
        principal = args.principal_arn
        ids = ["--cluster-name", cluster, "--principal-arn", principal]
        where = f"the access entry for {principal} in cluster {cluster}"
        if action == "describe":
            emit(session.output, "DescribeAccessEntry",
                 await eks.describe_access_entry(cluster_name=cluster, principal_arn=principal))
        elif action == "list-policies":
            policies = [p async for p in eks.paginate.list_associated_access_policies(
                cluster_name=cluster, principal_arn=principal)]
            emit(session.output, "ListAssociatedAccessPolicies",
                 models.ListAssociatedAccessPoliciesResponse(
                     cluster_name=cluster, principal_arn=principal,
                     associated_access_policies=policies))
        elif action == "create":
            check = can_i(args.can_i)
            if check is not None and not args.wait:
                raise UsageError("argument --can-i: only with --wait")
            out = await eks.create_access_entry(
                cluster_name=cluster, principal_arn=principal,
                kubernetes_groups=args.kubernetes_group, tags=tags(args.tag),
                username=args.username, type=args.type,
            )
            if args.wait:
                groups = out.access_entry.kubernetes_groups if out.access_entry else None
                await session.waiting(
                    f"{where} was created", [*base, *ids, *_can_i_flags(check)],
                    _effective(session, eks, principal_arn=None, groups=groups, check=check),
                    lambda: emit(session.output, "CreateAccessEntry", out),
                )
            emit(session.output, "CreateAccessEntry", out)
        elif action == "update":
            out_u = await eks.update_access_entry(
                cluster_name=cluster, principal_arn=principal,
                kubernetes_groups=args.kubernetes_group, username=args.username,
            )
            if args.wait:
                groups = out_u.access_entry.kubernetes_groups if out_u.access_entry else None
                await session.waiting(
                    f"{where} was updated", [*base, *ids],
                    _effective(session, eks, principal_arn=None, groups=groups, check=None),
                    lambda: emit(session.output, "UpdateAccessEntry", out_u),
                )
            emit(session.output, "UpdateAccessEntry", out_u)
        elif action == "delete":
            out_d = await eks.delete_access_entry(cluster_name=cluster, principal_arn=principal)
            if args.wait:
                await session.waiting(
                    f"{where} was deleted", [*base, *ids, "--deleted"],
                    _entry_deleted(eks, cluster, principal, session.config(ASSOCIATION_DEFAULTS),
                                   session.progress),
                    lambda: emit(session.output, "DeleteAccessEntry", out_d),
                )
            emit(session.output, "DeleteAccessEntry", out_d)
        elif action == "associate-policy":
            scope = _scope(args)
            check = can_i(args.can_i)
            if check is not None and not args.wait:
                raise UsageError("argument --can-i: only with --wait")
            out_a = await eks.associate_access_policy(
                cluster_name=cluster, principal_arn=principal, policy_arn=args.policy_arn,
                access_scope=scope,
            )
            if args.wait:
                if check is None:
                    probe = _policy_probe(args.policy_arn, scope)
                    check = CanI.of(probe) if probe is not None else None
                await session.waiting(
                    f"policy {args.policy_arn} was associated with {where}",
                    [*base, *ids, *_can_i_flags(check)],
                    _effective(session, eks, principal_arn=None, groups=None, check=check),
                    lambda: emit(session.output, "AssociateAccessPolicy", out_a),
                )
            emit(session.output, "AssociateAccessPolicy", out_a)
        elif action == "disassociate-policy":
            await eks.disassociate_access_policy(
                cluster_name=cluster, principal_arn=principal, policy_arn=args.policy_arn
            )
            if args.wait:
                await session.waiting(
                    f"policy {args.policy_arn} was disassociated from {where}",
                    [*base, *ids, "--deleted", "--policy-arn", args.policy_arn],
                    _policy_disassociated(eks, cluster, principal, args.policy_arn,
                                          session.config(ASSOCIATION_DEFAULTS), session.progress),
                )
            session.print({})  # DisassociateAccessPolicy answers with an empty object
        elif action == "wait":
            await _wait(session, eks, cluster, principal)


async def _wait(session: Session, eks: Any, cluster: str, principal: str) -> None:
    args = session.args
    check = can_i(args.can_i)
    resume = ["access-entry", "wait", "--cluster-name", cluster, "--principal-arn", principal,
              *_can_i_flags(check)]
    if args.deleted:
        resume += ["--deleted", *(["--policy-arn", args.policy_arn] if args.policy_arn else [])]
    what = f"waiting for the access entry for {principal} in cluster {cluster}"
    if args.deleted:
        if check is not None:
            raise UsageError("argument --can-i: not allowed with --deleted")
        config = session.config(ASSOCIATION_DEFAULTS)
        if args.policy_arn:
            await session.waiting(what, resume, _policy_disassociated(
                eks, cluster, principal, args.policy_arn, config, session.progress))
        else:
            await session.waiting(what, resume, _entry_deleted(
                eks, cluster, principal, config, session.progress))
        session.print({"clusterName": cluster, "principalArn": principal, "deleted": True})
        return
    if args.policy_arn:
        raise UsageError("argument --policy-arn: only with --deleted")
    seen = await session.waiting(
        what, resume,
        _effective(session, eks, principal_arn=principal, groups=None, check=check),
    )
    result: dict[str, Any] = {
        "clusterName": cluster, "principalArn": principal,
        "username": seen.username, "groups": list(seen.groups),
    }
    if check is not None:
        result["allowed"] = bool(seen.allowed)
    session.print(result)
