"""The ``eks-async`` command line: the identity surface, any operation, the emulator, a demo.

Standard library only (argparse), so installing the CLI adds nothing to ``import httpx``'s
cost (httpx loads its own CLI when click is installed). With ``rich`` installed (the ``cli``
extra) tables are drawn with it; without, as plain aligned text.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import logging
import os
import platform
import re
import shlex
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TextIO

from ._cli_access import add_parsers as add_access_parsers
from ._cli_access import run_access_entry
from ._cli_common import Session, add_max_wait, tags
from ._cli_output import (
    OUTPUT_FORMATS,
    Progress,
    UsageError,
    check_output_format,
    emit,
    output_as_dict,
    print_table,
)
from ._client import EKSClient
from ._emulator_cli import add_arguments as add_emulator_arguments
from ._exceptions import EKSAsyncError, ParamValidationError, ServiceError
from ._generated.operations import OPERATIONS
from ._version import __version__
from ._waiters.engine import WaiterTimeoutError
from ._waiters.identity import ASSOCIATION_DEFAULTS, UPDATE_DEFAULTS
from ._waiters.pod_identity import POD_IDENTITY_DEFAULTS

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "Progress",
    "build_parser",
    "entry",
    "exec_api_version",
    "exec_credential",
    "main",
    "output_as_dict",
    "print_table",
]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a reader that went away
EXIT_TERMINATED = 143  # 128 + SIGTERM


# --- pod identity, identity providers, updates, any operation --------------------------------


async def _pod_identity(session: Session) -> None:
    args = session.args
    fmt = session.output
    async with session.client() as eks:
        cluster = args.cluster_name
        if args.action == "create":
            out = await eks.create_pod_identity_association(
                cluster_name=cluster,
                namespace=args.namespace,
                service_account=args.service_account,
                role_arn=args.role_arn,
                target_role_arn=args.target_role_arn,
                tags=tags(args.tag),
            )
            if args.wait or args.effective:
                assert out.association is not None and out.association.association_id
                await _association_wait(
                    session, eks, out.association.association_id,
                    "was created", lambda: emit(fmt, "CreatePodIdentityAssociation", out),
                )
            emit(fmt, "CreatePodIdentityAssociation", out)
        elif args.action == "describe":
            emit(fmt, "DescribePodIdentityAssociation", await eks.describe_pod_identity_association(
                cluster_name=cluster, association_id=args.association_id))
        elif args.action == "list":
            items = [
                item
                async for item in eks.paginate.list_pod_identity_associations(
                    cluster_name=cluster,
                    namespace=args.namespace,
                    service_account=args.service_account,
                )
            ]
            from ._generated import models

            emit(fmt, "ListPodIdentityAssociations",
                 models.ListPodIdentityAssociationsResponse(associations=items))
        elif args.action == "update":
            out_u = await eks.update_pod_identity_association(
                cluster_name=cluster,
                association_id=args.association_id,
                role_arn=args.role_arn,
                target_role_arn=args.target_role_arn,
            )
            if args.wait or args.effective:
                await _association_wait(
                    session, eks, args.association_id, "was updated",
                    lambda: emit(fmt, "UpdatePodIdentityAssociation", out_u),
                )
            emit(fmt, "UpdatePodIdentityAssociation", out_u)
        elif args.action == "delete":
            out_d = await eks.delete_pod_identity_association(
                cluster_name=cluster, association_id=args.association_id
            )
            if args.wait:
                await _association_wait(
                    session, eks, args.association_id, "was deleted",
                    lambda: emit(fmt, "DeletePodIdentityAssociation", out_d), deleted=True,
                )
            emit(fmt, "DeletePodIdentityAssociation", out_d)
        elif args.action == "wait":
            if args.deleted and (args.effective or args.role_arn or args.target_role_arn):
                raise UsageError(
                    "argument --deleted: not allowed with --effective, --role-arn or "
                    "--target-role-arn"
                )
            done = await _association_wait(
                session, eks, args.association_id, None, None, deleted=args.deleted
            )
            if done is None:
                session.print({"associationId": args.association_id, "deleted": True})
            elif args.effective:
                session.print({
                    "associationId": done.association_id, "namespace": done.namespace,
                    "serviceAccount": done.service_account, "roleArn": done.role_arn,
                    "effective": True,
                })
            else:
                emit(fmt, "DescribePodIdentityAssociation", done)


async def _association_wait(
    session: Session,
    eks: EKSClient,
    association_id: str,
    done: str | None,
    result: Callable[[], None] | None,
    *,
    deleted: bool = False,
) -> Any:
    """The waits of ``pod-identity create|update|delete|wait``: visible (or updated, or
    deleted), then with ``--effective`` until EKS Auth hands out the role. Returns the last
    waiter's answer (``None`` for deleted)."""
    args = session.args
    cluster = args.cluster_name
    waiters = eks.waiters
    role_arn = getattr(args, "role_arn", None) if args.action in ("update", "wait") else None
    target_role_arn = (
        getattr(args, "target_role_arn", None) if args.action in ("update", "wait") else None
    )
    effective = bool(getattr(args, "effective", False))
    resume = ["pod-identity", "wait", "--cluster-name", cluster, "--association-id",
              association_id]
    if deleted:
        resume.append("--deleted")
    if role_arn:
        resume += ["--role-arn", role_arn]
    if target_role_arn:
        resume += ["--target-role-arn", target_role_arn]
    if effective:
        resume.append("--effective")
    what = (
        f"association {association_id} in cluster {cluster} {done}" if done
        else f"waiting for association {association_id} in cluster {cluster}"
    )
    config = session.config(ASSOCIATION_DEFAULTS)
    if deleted:
        wait: Any = waiters.pod_identity_association_deleted(
            cluster_name=cluster, association_id=association_id, config=config,
            on_progress=session.progress,
        )
    elif role_arn or target_role_arn:
        wait = waiters.pod_identity_association_updated(
            cluster_name=cluster, association_id=association_id, role_arn=role_arn,
            target_role_arn=target_role_arn, config=config, on_progress=session.progress,
        )
    else:
        wait = waiters.pod_identity_association_visible(
            cluster_name=cluster, association_id=association_id, config=config,
            on_progress=session.progress,
        )
    answer = await session.waiting(what, resume, wait, result)
    if effective:
        answer = await session.waiting(
            what, resume,
            waiters.pod_identity_association_effective(
                cluster_name=cluster, association_id=association_id,
                config=session.config(POD_IDENTITY_DEFAULTS), on_progress=session.progress,
            ),
            result,
        )
    return answer


async def _idp(session: Session) -> None:
    from ._generated import models

    args = session.args
    fmt = session.output
    async with session.client() as eks:
        waiters = eks.waiters
        cluster = args.cluster_name
        progress = session.progress
        idp_resume = ["idp", "wait", "--cluster-name", cluster, "--name", getattr(args, "name", "")]
        if args.action == "associate":
            out = await eks.associate_identity_provider_config(
                cluster_name=cluster,
                oidc=models.OidcIdentityProviderConfigRequest(
                    identity_provider_config_name=args.name,
                    issuer_url=args.issuer_url,
                    client_id=args.client_id,
                    username_claim=args.username_claim,
                    username_prefix=args.username_prefix,
                    groups_claim=args.groups_claim,
                    groups_prefix=args.groups_prefix,
                ),
                tags=tags(args.tag),
            )
            if args.wait:
                assert out.update is not None and out.update.id
                await _follow_idp_update(
                    session, eks, out.update.id, idp_resume, deleted=False,
                    show=lambda: emit(fmt, "AssociateIdentityProviderConfig", out),
                )
            emit(fmt, "AssociateIdentityProviderConfig", out)
        elif args.action == "describe":
            emit(fmt, "DescribeIdentityProviderConfig",
                 await eks.describe_identity_provider_config(
                     cluster_name=cluster,
                     identity_provider_config=models.IdentityProviderConfig(
                         type="oidc", name=args.name)))
        elif args.action == "list":
            configs = [
                c async for c in eks.paginate.list_identity_provider_configs(
                    cluster_name=cluster)
            ]
            emit(fmt, "ListIdentityProviderConfigs",
                 models.ListIdentityProviderConfigsResponse(identity_provider_configs=configs))
        elif args.action == "disassociate":
            out_d = await eks.disassociate_identity_provider_config(
                cluster_name=cluster,
                identity_provider_config=models.IdentityProviderConfig(type="oidc", name=args.name),
            )
            if args.wait:
                assert out_d.update is not None and out_d.update.id
                await _follow_idp_update(
                    session, eks, out_d.update.id, idp_resume, deleted=True,
                    show=lambda: emit(fmt, "DisassociateIdentityProviderConfig", out_d),
                )
            emit(fmt, "DisassociateIdentityProviderConfig", out_d)
        elif args.action == "wait":
            what = f"waiting for identity provider config {args.name} of cluster {cluster}"
            if args.deleted:
                await session.waiting(
                    what, [*idp_resume, "--deleted"],
                    waiters.identity_provider_config_deleted(
                        cluster_name=cluster, name=args.name,
                        config=session.config(UPDATE_DEFAULTS), on_progress=progress),
                )
                session.print({"name": args.name, "deleted": True})
            else:
                emit(fmt, "DescribeIdentityProviderConfig", await session.waiting(
                    what, idp_resume,
                    waiters.identity_provider_config_active(
                        cluster_name=cluster, name=args.name,
                        config=session.config(UPDATE_DEFAULTS), on_progress=progress),
                ))


async def _follow_idp_update(
    session: Session,
    eks: EKSClient,
    update_id: str,
    idp_resume: list[str],
    *,
    deleted: bool,
    show: Callable[[], None],
) -> None:
    """Follow an identity provider config's update to Successful, then wait until the
    config is active (``deleted``: gone); a wait cut short shows ``show()``'s output and
    the command that resumes it."""
    cluster = session.args.cluster_name
    what = f"update {update_id} of cluster {cluster} was started"
    config = session.config(UPDATE_DEFAULTS)
    waiters = eks.waiters
    await session.waiting(
        what, ["update", "wait", "--cluster-name", cluster, "--update-id", update_id],
        waiters.update_successful(
            cluster_name=cluster, update_id=update_id, config=config,
            on_progress=session.progress),
        show,
    )
    name = session.args.name
    if deleted:
        await session.waiting(
            what, [*idp_resume, "--deleted"],
            waiters.identity_provider_config_deleted(
                cluster_name=cluster, name=name, config=config, on_progress=session.progress),
            show,
        )
    else:
        await session.waiting(
            what, idp_resume,
            waiters.identity_provider_config_active(
                cluster_name=cluster, name=name, config=config, on_progress=session.progress),
            show,
        )


async def _update(session: Session) -> None:
    args = session.args
    async with session.client() as eks:
        kinds = [
            (flag, value) for flag, value in (
                ("--nodegroup-name", args.nodegroup_name), ("--addon-name", args.addon_name),
                ("--capability-name", args.capability_name),
            ) if value
        ]
        if args.action == "describe":
            emit(session.output, "DescribeUpdate", await eks.describe_update(
                name=args.cluster_name, update_id=args.update_id,
                nodegroup_name=args.nodegroup_name, addon_name=args.addon_name,
                capability_name=args.capability_name))
        else:
            resume = ["update", "wait", "--cluster-name", args.cluster_name, "--update-id",
                      args.update_id, *[x for pair in kinds for x in pair]]
            out = await session.waiting(
                f"waiting for update {args.update_id} of cluster {args.cluster_name}", resume,
                eks.waiters.update_successful(
                    cluster_name=args.cluster_name, update_id=args.update_id,
                    nodegroup_name=args.nodegroup_name, addon_name=args.addon_name,
                    capability_name=args.capability_name,
                    config=session.config(UPDATE_DEFAULTS), on_progress=session.progress,
                ),
            )
            emit(session.output, "DescribeUpdate", out)


async def _call(session: Session) -> None:
    args = session.args
    if args.operation not in OPERATIONS:
        raise ParamValidationError(args.operation, "OPERATION", "no such EKS operation")
    try:
        params = json.loads(args.params) if args.params else {}
    except json.JSONDecodeError as exc:
        raise ParamValidationError(args.operation, "PARAMS", f"not JSON: {exc.msg}") from None
    if not isinstance(params, dict):
        raise ParamValidationError(args.operation, "PARAMS", "must be a JSON object")
    async with session.client() as eks:
        emit(session.output, args.operation, await eks.call(args.operation, params))


EXEC_API_V1 = "client.authentication.k8s.io/v1"
EXEC_API_V1BETA1 = "client.authentication.k8s.io/v1beta1"
EXEC_API_V1ALPHA1 = "client.authentication.k8s.io/v1alpha1"


def exec_api_version(stderr: TextIO) -> str:
    """The ExecCredential apiVersion kubectl asked for in ``KUBERNETES_EXEC_INFO``."""
    raw = os.environ.get("KUBERNETES_EXEC_INFO", "")
    if not raw:
        return EXEC_API_V1BETA1  # kubectl before 1.21 does not set it
    try:
        info = json.loads(raw)
    except json.JSONDecodeError:
        stderr.write(
            "eks-async: KUBERNETES_EXEC_INFO is not valid JSON; "
            f"answering with {EXEC_API_V1BETA1}\n"
        )
        return EXEC_API_V1BETA1
    version = info.get("apiVersion") if isinstance(info, dict) else None
    if version in (EXEC_API_V1, EXEC_API_V1BETA1):
        return str(version)
    if version == EXEC_API_V1ALPHA1:
        stderr.write(f"eks-async: {EXEC_API_V1ALPHA1} is deprecated; use {EXEC_API_V1}\n")
        return EXEC_API_V1ALPHA1
    stderr.write(
        f"eks-async: KUBERNETES_EXEC_INFO names an unknown apiVersion {version!r}; "
        f"answering with {EXEC_API_V1BETA1}\n"
    )
    return EXEC_API_V1BETA1


def exec_credential(token: Any, api_version: str) -> dict[str, Any]:
    """The ExecCredential document kubectl and client-go read from an exec plugin."""
    expires = token.expires_at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "kind": "ExecCredential",
        "apiVersion": api_version,
        "spec": {},
        "status": {"expirationTimestamp": expires, "token": token.token},
    }


async def _token(session: Session) -> None:
    args = session.args
    api_version = exec_api_version(sys.stderr)
    async with session.client() as eks:
        token = await eks.get_token(
            cluster_name=args.cluster_name,
            cluster_id=args.cluster_id,
            role_arn=args.role_arn,
            session_name=args.session_name,
        )
    json.dump(exec_credential(token, api_version), sys.stdout)
    sys.stdout.write("\n")


async def _kubeconfig(session: Session) -> None:
    args = session.args
    from ._kubeconfig import default_path, exec_command, merge_cluster

    async with session.client() as eks:
        described = await eks.describe_cluster(name=args.cluster_name)
        region = eks.region
    cluster = described.cluster
    if cluster is None or not cluster.endpoint or not cluster.arn:
        raise ParamValidationError("kubeconfig", "--cluster-name", "the cluster has no endpoint yet")
    token_args = ["token", "--cluster-name", args.cluster_name]
    if args.role_arn:
        token_args += ["--role-arn", args.role_arn]
    global_args = ["--region", str(region)]
    if args.profile:
        global_args += ["--profile", args.profile]
    if args.endpoint_url:
        global_args += ["--endpoint-url", args.endpoint_url]
    path = args.kubeconfig or default_path()
    command, *prefix = (
        shlex.split(args.exec_command) if args.exec_command else exec_command()
    )
    name = merge_cluster(
        path,
        arn=cluster.arn,
        server=cluster.endpoint,
        ca_data=cluster.certificate_authority.data if cluster.certificate_authority else None,
        alias=args.alias,
        command=command,
        args=[*prefix, *global_args, *token_args],
    )
    sys.stdout.write(f"Updated context {name} in {path}\n")


# --- the parser -----------------------------------------------------------------------------


def _global_flags(*, top: bool) -> argparse.ArgumentParser:
    """The flags every command takes, before or after its name. Under a command they
    default to "not given" (SUPPRESS), so a flag given before the command stands."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    flags = argparse.ArgumentParser(add_help=False)
    group = flags.add_argument_group("global options (before or after the command)")
    group.add_argument("--region", default=default(None),
                       help="AWS region (default: environment/profile)")
    group.add_argument("--profile", default=default(None), help="shared config profile")
    group.add_argument("--endpoint-url", default=default(None), help="send requests here instead")
    group.add_argument("--output", choices=OUTPUT_FORMATS, default=default("json"),
                       help="how results are printed on stdout (default json)")
    group.add_argument("--debug", action="store_true", default=default(False),
                       help="log what eks_async does (DEBUG) on stderr")
    return flags


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eks-async", description="Drive Amazon EKS's identity surface, and any EKS operation.",
        parents=[_global_flags(top=True)],
    )
    parser.add_argument("--version", action="version",
                        version=f"eks-async {__version__} (Python {platform.python_version()})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parents = [_global_flags(top=False)]

    pod = sub.add_parser("pod-identity", parents=parents, help="EKS Pod Identity associations")
    pod_sub = pod.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = pod_sub.add_parser("create", parents=parents, help="CreatePodIdentityAssociation")
    _cluster(p)
    p.add_argument("--namespace", required=True)
    p.add_argument("--service-account", required=True)
    p.add_argument("--role-arn", required=True)
    p.add_argument("--target-role-arn")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE")
    p.add_argument("--wait", action="store_true", help="return once Describe and List see it")
    p.add_argument("--effective", action="store_true",
                   help="return once EKS Auth hands the role to the service account's pods "
                   "(implies --wait)")
    add_max_wait(p)
    p = pod_sub.add_parser("describe", parents=parents, help="DescribePodIdentityAssociation")
    _cluster(p)
    p.add_argument("--association-id", required=True)
    p = pod_sub.add_parser("list", parents=parents, help="ListPodIdentityAssociations")
    _cluster(p)
    p.add_argument("--namespace")
    p.add_argument("--service-account")
    p = pod_sub.add_parser("update", parents=parents, help="UpdatePodIdentityAssociation")
    _cluster(p)
    p.add_argument("--association-id", required=True)
    p.add_argument("--role-arn")
    p.add_argument("--target-role-arn")
    p.add_argument("--wait", action="store_true", help="return once Describe shows the change")
    p.add_argument("--effective", action="store_true",
                   help="return once EKS Auth hands out the new role (implies --wait)")
    add_max_wait(p)
    p = pod_sub.add_parser("delete", parents=parents, help="DeletePodIdentityAssociation")
    _cluster(p)
    p.add_argument("--association-id", required=True)
    p.add_argument("--wait", action="store_true", help="return once Describe no longer finds it")
    add_max_wait(p)
    p = pod_sub.add_parser(
        "wait", parents=parents,
        help="wait (again) for an association: visible, updated, effective or deleted",
        description="Wait for an association created, updated or deleted earlier (the id "
        "its command printed): by default until Describe and List see it.",
    )
    _cluster(p)
    p.add_argument("--association-id", required=True)
    p.add_argument("--effective", action="store_true",
                   help="then until EKS Auth hands the role to the service account's pods")
    p.add_argument("--role-arn", help="until Describe shows this role (after an update)")
    p.add_argument("--target-role-arn", help="until Describe shows this target role")
    p.add_argument("--deleted", action="store_true", help="until Describe no longer finds it")
    add_max_wait(p)

    add_access_parsers(sub, parents)

    idp = sub.add_parser("idp", parents=parents, help="OIDC identity provider configs")
    idp_sub = idp.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = idp_sub.add_parser("associate", parents=parents, help="AssociateIdentityProviderConfig")
    _cluster(p)
    p.add_argument("--name", required=True)
    p.add_argument("--issuer-url", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--username-claim")
    p.add_argument("--username-prefix")
    p.add_argument("--groups-claim")
    p.add_argument("--groups-prefix")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE")
    p.add_argument("--wait", action="store_true", help="follow the update to Successful")
    add_max_wait(p)
    for action, what in (
        ("describe", "DescribeIdentityProviderConfig"),
        ("disassociate", "DisassociateIdentityProviderConfig"),
        ("wait", "wait (again) until the config is ACTIVE, or deleted"),
    ):
        p = idp_sub.add_parser(action, parents=parents, help=what)
        _cluster(p)
        p.add_argument("--name", required=True)
        if action == "disassociate":
            p.add_argument("--wait", action="store_true", help="follow the update until gone")
        if action == "wait":
            p.add_argument("--deleted", action="store_true", help="until it is gone")
        if action != "describe":
            add_max_wait(p)
    _cluster(idp_sub.add_parser("list", parents=parents, help="ListIdentityProviderConfigs"))

    upd = sub.add_parser("update", parents=parents, help="asynchronous cluster updates")
    upd_sub = upd.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, what in (("describe", "DescribeUpdate"), ("wait", "wait until Successful")):
        p = upd_sub.add_parser(action, parents=parents, help=what)
        _cluster(p)
        p.add_argument("--update-id", required=True)
        p.add_argument("--nodegroup-name")
        p.add_argument("--addon-name")
        p.add_argument("--capability-name")
        if action == "wait":
            add_max_wait(p)
        # DescribeUpdate calls the cluster's name ``name``.
        p.set_defaults(cli_params={"name": "--cluster-name"})

    call = sub.add_parser("call", parents=parents,
                          help="call any EKS operation with boto3-style JSON parameters")
    call.add_argument("operation", metavar="OPERATION", help="e.g. DescribeCluster")
    call.add_argument("params", metavar="PARAMS", nargs="?", help='e.g. \'{"name": "prod"}\'')

    emu = sub.add_parser(
        "emulator",
        help="serve the local EKS emulator over HTTP (also: python -m eks_async.testing)",
        description="Serve a local EKS emulator over HTTP until interrupted; the first line "
        "on stdout is its URL, how to reach it follows on stderr.",
    )
    add_emulator_arguments(emu)

    tok = sub.add_parser("token", parents=parents,
                         help="print an ExecCredential with a cluster token (kubectl)")
    which = tok.add_mutually_exclusive_group(required=True)
    which.add_argument("--cluster-name")
    which.add_argument("--cluster-id", help="for a local cluster on Outposts")
    tok.add_argument("--role-arn", help="assume this role first")
    tok.add_argument("--session-name", default="EKSGetTokenAuth")

    kube = sub.add_parser("kubeconfig", parents=parents,
                          help="write or merge a kubeconfig entry for a cluster")
    _cluster(kube)
    kube.add_argument("--kubeconfig", help="file to update (default: $KUBECONFIG or ~/.kube/config)")
    kube.add_argument("--alias", help="context name (default: the cluster ARN)")
    kube.add_argument("--role-arn", help="the token command assumes this role")
    kube.add_argument(
        "--exec-command",
        default=None,
        help="command kubectl runs, may include arguments, e.g. 'python -m eks_async' "
        "(default: eks-async if PATH finds this program, else its absolute path)",
    )

    demo = sub.add_parser("demo", help="run the identity workflow against an embedded emulator")
    demo.add_argument("--fast", action="store_true", help="scale EKS's delays down further")
    _mark_leaves(parser)
    return parser


def _cluster(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster-name", required=True)


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += list(dict.fromkeys(action.choices.values()))
    return found


def _mark_leaves(parser: argparse.ArgumentParser) -> None:
    """Each command's own parser rides along in its namespace (``cli_parser``), so errors
    can name its flags."""
    children = _subparsers(parser)
    if not children:
        parser.set_defaults(cli_parser=parser)
    for child in children:
        _mark_leaves(child)


# --- errors name flags ----------------------------------------------------------------------


def flag_for(path: str, args: argparse.Namespace) -> str | None:
    """The flag that sets the parameter at ``path`` (``cluster_name``, ``tags[k]``,
    ``access_scope.namespaces[0]``) for the command ``args`` ran, if any does."""
    parser: argparse.ArgumentParser | None = getattr(args, "cli_parser", None)
    if parser is None or args.command == "call":
        return None  # ``call`` takes EKS's own parameter names: those are its words
    flags: dict[str, str] = {}
    for action in parser._actions:
        for option in action.option_strings:
            if option.startswith("--"):
                name = option[2:].replace("-", "_")
                flags.setdefault(name, option)
                flags.setdefault(name + "s", option)  # --tag sets tags, --namespace namespaces
                flags.setdefault(action.dest, option)
    explicit: dict[str, str] = getattr(args, "cli_params", None) or {}
    segments = [s for s in re.sub(r"\[[^\]]*\]", "", path).split(".") if s]
    if not segments:
        return None
    for candidate in (".".join(segments), "_".join(segments), segments[-1], segments[0]):
        found = explicit.get(candidate) or flags.get(candidate)
        if found is not None:
            return found
    return None


def param_message(error: ParamValidationError, args: argparse.Namespace) -> str:
    """A refused parameter, named by the flag that sets it, as argparse names them."""
    flag = flag_for(error.path, args)
    if flag is None:
        return str(error)
    return f"argument {flag}: {error.problem}"


#: Client keywords some messages suggest, as the flags that set them.
_KEYWORDS = {"region": "--region", "profile": "--profile", "endpoint_url": "--endpoint-url"}


def _flag_words(text: str) -> str:
    return re.sub(
        r"\b(region|profile|endpoint_url)=(\.\.\.)?",
        lambda m: _KEYWORDS[m.group(1)] + " ...", text,
    )


def _report(error: BaseException) -> None:
    if isinstance(error, ServiceError):
        sys.stderr.write(
            f"error: {error.code}: {error.message or ''} (request id {error.request_id})\n"
        )
    else:
        sys.stderr.write(f"error: {_flag_words(str(error))}\n")


def _quiet_stdout() -> None:
    """Point a closed pipe's stdout at /dev/null, so exiting flushes nothing into it."""
    real = sys.__stdout__
    if real is None or sys.stdout is not real:
        return  # someone else's stream (a test capturing it): leave it alone
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, real.fileno())
        os.close(devnull)


# --- running a command: --debug, signals, interrupted waits ---------------------------------


COMMANDS: dict[str, Callable[[Session], Coroutine[Any, Any, None]]] = {
    "pod-identity": _pod_identity,
    "access-entry": run_access_entry,
    "idp": _idp,
    "update": _update,
    "call": _call,
    "token": _token,
    "kubeconfig": _kubeconfig,
}


class _Stop:
    """Whether SIGTERM ended the run."""

    terminated = False


async def _run(
    command: Callable[[Session], Coroutine[Any, Any, None]], session: Session, stop: _Stop
) -> None:
    """Run ``command``; SIGTERM cancels it, so its ``async with`` closes the client first."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def terminate() -> None:
        stop.terminated = True
        task.cancel()

    handled = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGTERM, terminate)  # Unix, main thread only
        handled = True
    try:
        await command(session)
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGTERM)


def _debug_logging(enabled: bool) -> logging.Handler | None:
    """``--debug``: eks_async's DEBUG lines on stderr (they never hold a secret)."""
    if not enabled:
        return None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("eks_async")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return handler


def _stop_debug_logging(handler: logging.Handler | None) -> None:
    if handler is not None:
        logger = logging.getLogger("eks_async")
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


def _cut_short(session: Session, why: str) -> bool:
    """A wait ended early (Ctrl-C, SIGTERM, time out): what was done, and how to resume.
    ``False`` when no wait was under way."""
    session.progress.end_line()
    pending = session.pending
    if pending is None:
        return False
    if pending.result is not None:
        with contextlib.suppress(OSError, ValueError):
            pending.result()  # the call before the wait did happen: its output, with the id
            sys.stdout.flush()
    sys.stderr.write(
        f"{why}: {pending.what}; resume the wait with:\n"
        f"  {session.resume_command(pending.resume)}\n"
    )
    sys.stderr.flush()
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "emulator":
        from ._emulator_cli import run

        return run(args, parser)
    if args.command == "demo":
        from ._demo import run_demo

        try:
            asyncio.run(run_demo(args))
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            return EXIT_INTERRUPTED
        return 0
    session = Session(args)
    stop = _Stop()
    handler = _debug_logging(args.debug)
    previous_term = signal.getsignal(signal.SIGTERM)
    try:
        check_output_format(args.output)
        asyncio.run(_run(COMMANDS[args.command], session, stop))
        sys.stdout.flush()  # here, not at exit: a closed pipe is reported below
    except KeyboardInterrupt:
        if not _cut_short(session, "interrupted"):
            sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    except asyncio.CancelledError:
        if not stop.terminated:
            raise
        closed = "; the client is closed" if session.open_clients == 0 else ""
        sys.stderr.write(f"terminated (SIGTERM){closed}\n")
        _cut_short(session, "terminated")
        return EXIT_TERMINATED
    except BrokenPipeError:
        # Whoever read stdout has stopped (`eks-async token ... | head -c 10`): end quietly,
        # with the status a process killed by SIGPIPE has, as shell pipelines expect.
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except ParamValidationError as error:
        sys.stderr.write(f"eks-async: error: {param_message(error, args)}\n")
        return EXIT_USAGE
    except UsageError as error:
        sys.stderr.write(f"eks-async: error: {error}\n")
        return EXIT_USAGE
    except WaiterTimeoutError as error:
        _report(error)
        _cut_short(session, "gave up waiting")
        return EXIT_ERROR
    except EKSAsyncError as error:
        _report(error)
        return EXIT_ERROR
    finally:
        _stop_debug_logging(handler)
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            if signal.getsignal(signal.SIGTERM) != previous_term and previous_term is not None:
                signal.signal(signal.SIGTERM, previous_term)
    return 0


def entry() -> None:  # pragma: no cover - the console script
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    sys.exit(main())
