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
import os
import shlex
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TextIO

from ._client import EKSClient
from ._emulator_cli import add_arguments as add_emulator_arguments
from ._exceptions import EKSAsyncError, ParamValidationError, ServiceError
from ._generated.operations import OPERATIONS
from ._waiters.engine import WaiterError, WaitProgress, to_model_form

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a reader that went away


# --- output ---------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def output_as_dict(operation: str, output: Any) -> dict[str, Any]:
    """An operation's typed output as boto3 shows it (model names), JSON-ready."""
    data = to_model_form(output, OPERATIONS[operation].output_shape) or {}
    return dict(_jsonable(data))


def _rows(data: Any) -> tuple[list[str], list[list[str]]]:
    """Columns and rows for a table: the first list of objects found, else key/value."""
    if isinstance(data, dict):
        for value in data.values():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                columns: list[str] = []
                for item in value:
                    columns += [k for k in item if k not in columns and not isinstance(item[k], dict | list)]
                return columns, [[str(item.get(c, "")) for c in columns] for item in value]
            if isinstance(value, list):
                return ["value"], [[str(v)] for v in value]
            if isinstance(value, dict):
                flat = {k: v for k, v in value.items() if not isinstance(v, dict | list)}
                return ["field", "value"], [[k, str(v)] for k, v in flat.items()]
        return ["field", "value"], [[k, json.dumps(v)] for k, v in data.items()]
    return ["value"], [[str(data)]]


def print_table(data: Any, out: TextIO) -> None:
    columns, rows = _rows(data)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
        out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
        for row in rows:
            out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*row)
    # Off a terminal nothing tells the width: never cut ids and ARNs short.
    Console(file=out, width=None if out.isatty() else 1000).print(table)


def emit(args: argparse.Namespace, operation: str, output: Any) -> None:
    data = output_as_dict(operation, output)
    if args.output == "table":
        print_table(data, sys.stdout)
    else:
        json.dump(data, sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")


# --- progress -------------------------------------------------------------------------------


class Progress:
    """Draws waiter polls: one live line on a terminal, one log line per poll otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.polls = 0

    def __call__(self, event: WaitProgress) -> None:
        self.polls += 1
        nxt = f"next poll in {event.next_delay:.1f}s" if event.next_delay is not None else "done"
        text = (
            f"{event.waiter}: {event.state} (poll {event.attempt}, "
            f"{event.elapsed:.1f}s elapsed, {nxt})"
        )
        if self.live:
            end = "\n" if event.next_delay is None else ""
            self.stream.write("\r\x1b[2K" + text + end)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


# --- commands -------------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> EKSClient:
    return EKSClient(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url)


def _tags(pairs: Sequence[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ParamValidationError("tags", "--tag", f"expected KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


async def _pod_identity(args: argparse.Namespace) -> None:
    progress = Progress()
    async with _client(args) as eks:
        waiters = eks.waiters
        if args.action == "create":
            out = await eks.create_pod_identity_association(
                cluster_name=args.cluster_name,
                namespace=args.namespace,
                service_account=args.service_account,
                role_arn=args.role_arn,
                target_role_arn=args.target_role_arn,
                tags=_tags(args.tag),
            )
            if args.wait:
                assert out.association is not None and out.association.association_id
                await waiters.pod_identity_association_visible(
                    cluster_name=args.cluster_name,
                    association_id=out.association.association_id,
                    on_progress=progress,
                )
            emit(args, "CreatePodIdentityAssociation", out)
        elif args.action == "describe":
            emit(args, "DescribePodIdentityAssociation", await eks.describe_pod_identity_association(
                cluster_name=args.cluster_name, association_id=args.association_id))
        elif args.action == "list":
            items = [
                item
                async for item in eks.paginate.list_pod_identity_associations(
                    cluster_name=args.cluster_name,
                    namespace=args.namespace,
                    service_account=args.service_account,
                )
            ]
            from ._generated import models

            emit(args, "ListPodIdentityAssociations",
                 models.ListPodIdentityAssociationsResponse(associations=items))
        elif args.action == "update":
            out_u = await eks.update_pod_identity_association(
                cluster_name=args.cluster_name,
                association_id=args.association_id,
                role_arn=args.role_arn,
                target_role_arn=args.target_role_arn,
            )
            if args.wait:
                await waiters.pod_identity_association_updated(
                    cluster_name=args.cluster_name,
                    association_id=args.association_id,
                    role_arn=args.role_arn,
                    target_role_arn=args.target_role_arn,
                    on_progress=progress,
                )
            emit(args, "UpdatePodIdentityAssociation", out_u)
        elif args.action == "delete":
            out_d = await eks.delete_pod_identity_association(
                cluster_name=args.cluster_name, association_id=args.association_id
            )
            if args.wait:
                await waiters.pod_identity_association_deleted(
                    cluster_name=args.cluster_name,
                    association_id=args.association_id,
                    on_progress=progress,
                )
            emit(args, "DeletePodIdentityAssociation", out_d)


async def _idp(args: argparse.Namespace) -> None:
    from ._generated import models

    progress = Progress()
    async with _client(args) as eks:
        waiters = eks.waiters
        if args.action == "associate":
            out = await eks.associate_identity_provider_config(
                cluster_name=args.cluster_name,
                oidc=models.OidcIdentityProviderConfigRequest(
                    identity_provider_config_name=args.name,
                    issuer_url=args.issuer_url,
                    client_id=args.client_id,
                    username_claim=args.username_claim,
                    username_prefix=args.username_prefix,
                    groups_claim=args.groups_claim,
                    groups_prefix=args.groups_prefix,
                ),
                tags=_tags(args.tag),
            )
            if args.wait:
                assert out.update is not None and out.update.id
                await waiters.update_successful(
                    cluster_name=args.cluster_name, update_id=out.update.id, on_progress=progress
                )
                await waiters.identity_provider_config_active(
                    cluster_name=args.cluster_name, name=args.name, on_progress=progress
                )
            emit(args, "AssociateIdentityProviderConfig", out)
        elif args.action == "describe":
            emit(args, "DescribeIdentityProviderConfig",
                 await eks.describe_identity_provider_config(
                     cluster_name=args.cluster_name,
                     identity_provider_config=models.IdentityProviderConfig(
                         type="oidc", name=args.name)))
        elif args.action == "list":
            configs = [
                c async for c in eks.paginate.list_identity_provider_configs(
                    cluster_name=args.cluster_name)
            ]
            emit(args, "ListIdentityProviderConfigs",
                 models.ListIdentityProviderConfigsResponse(identity_provider_configs=configs))
        elif args.action == "disassociate":
            out_d = await eks.disassociate_identity_provider_config(
                cluster_name=args.cluster_name,
                identity_provider_config=models.IdentityProviderConfig(type="oidc", name=args.name),
            )
            if args.wait:
                assert out_d.update is not None and out_d.update.id
                await waiters.update_successful(
                    cluster_name=args.cluster_name, update_id=out_d.update.id, on_progress=progress
                )
                await waiters.identity_provider_config_deleted(
                    cluster_name=args.cluster_name, name=args.name, on_progress=progress
                )
            emit(args, "DisassociateIdentityProviderConfig", out_d)


async def _update(args: argparse.Namespace) -> None:
    async with _client(args) as eks:
        if args.action == "describe":
            emit(args, "DescribeUpdate", await eks.describe_update(
                name=args.cluster_name, update_id=args.update_id,
                nodegroup_name=args.nodegroup_name, addon_name=args.addon_name,
                capability_name=args.capability_name))
        else:
            out = await eks.waiters.update_successful(
                cluster_name=args.cluster_name, update_id=args.update_id,
                nodegroup_name=args.nodegroup_name, addon_name=args.addon_name,
                capability_name=args.capability_name, on_progress=Progress(),
            )
            emit(args, "DescribeUpdate", out)


async def _call(args: argparse.Namespace) -> None:
    if args.operation not in OPERATIONS:
        raise ParamValidationError(args.operation, "OPERATION", "no such EKS operation")
    try:
        params = json.loads(args.params) if args.params else {}
    except json.JSONDecodeError as exc:
        raise ParamValidationError(args.operation, "PARAMS", f"not JSON: {exc.msg}") from None
    if not isinstance(params, dict):
        raise ParamValidationError(args.operation, "PARAMS", "must be a JSON object")
    async with _client(args) as eks:
        emit(args, args.operation, await eks.call(args.operation, params))


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


async def _token(args: argparse.Namespace) -> None:
    api_version = exec_api_version(sys.stderr)
    async with _client(args) as eks:
        token = await eks.get_token(
            cluster_name=args.cluster_name,
            cluster_id=args.cluster_id,
            role_arn=args.role_arn,
            session_name=args.session_name,
        )
    json.dump(exec_credential(token, api_version), sys.stdout)
    sys.stdout.write("\n")


async def _kubeconfig(args: argparse.Namespace) -> None:
    from ._kubeconfig import default_path, exec_command, merge_cluster

    async with _client(args) as eks:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eks-async", description="Drive Amazon EKS's identity surface, and any EKS operation."
    )
    parser.add_argument("--region", default=None, help="AWS region (default: environment/profile)")
    parser.add_argument("--profile", default=None, help="shared config profile")
    parser.add_argument("--endpoint-url", default=None, help="send requests here instead")
    parser.add_argument("--output", choices=("json", "table"), default="json")
    sub = parser.add_subparsers(dest="command", required=True)

    pod = sub.add_parser("pod-identity", help="EKS Pod Identity associations")
    pod_sub = pod.add_subparsers(dest="action", required=True)
    p = pod_sub.add_parser("create")
    _cluster(p)
    p.add_argument("--namespace", required=True)
    p.add_argument("--service-account", required=True)
    p.add_argument("--role-arn", required=True)
    p.add_argument("--target-role-arn")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE")
    p.add_argument("--wait", action="store_true", help="return once Describe and List see it")
    p = pod_sub.add_parser("describe")
    _cluster(p)
    p.add_argument("--association-id", required=True)
    p = pod_sub.add_parser("list")
    _cluster(p)
    p.add_argument("--namespace")
    p.add_argument("--service-account")
    p = pod_sub.add_parser("update")
    _cluster(p)
    p.add_argument("--association-id", required=True)
    p.add_argument("--role-arn")
    p.add_argument("--target-role-arn")
    p.add_argument("--wait", action="store_true", help="return once Describe shows the change")
    p = pod_sub.add_parser("delete")
    _cluster(p)
    p.add_argument("--association-id", required=True)
    p.add_argument("--wait", action="store_true", help="return once Describe no longer finds it")

    idp = sub.add_parser("idp", help="OIDC identity provider configs")
    idp_sub = idp.add_subparsers(dest="action", required=True)
    p = idp_sub.add_parser("associate")
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
    for action in ("describe", "disassociate"):
        p = idp_sub.add_parser(action)
        _cluster(p)
        p.add_argument("--name", required=True)
        if action == "disassociate":
            p.add_argument("--wait", action="store_true", help="follow the update until gone")
    _cluster(idp_sub.add_parser("list"))

    upd = sub.add_parser("update", help="asynchronous cluster updates")
    upd_sub = upd.add_subparsers(dest="action", required=True)
    for action in ("describe", "wait"):
        p = upd_sub.add_parser(action)
        _cluster(p)
        p.add_argument("--update-id", required=True)
        p.add_argument("--nodegroup-name")
        p.add_argument("--addon-name")
        p.add_argument("--capability-name")

    call = sub.add_parser("call", help="call any EKS operation with boto3-style JSON parameters")
    call.add_argument("operation", metavar="OPERATION", help="e.g. DescribeCluster")
    call.add_argument("params", metavar="PARAMS", nargs="?", help='e.g. \'{"name": "prod"}\'')

    emu = sub.add_parser(
        "emulator",
        help="serve the local EKS emulator over HTTP (also: python -m eks_async.testing)",
        description="Serve a local EKS emulator over HTTP until interrupted; the first line "
        "on stdout is its URL, how to reach it follows on stderr.",
    )
    add_emulator_arguments(emu)

    tok = sub.add_parser("token", help="print an ExecCredential with a cluster token (kubectl)")
    which = tok.add_mutually_exclusive_group(required=True)
    which.add_argument("--cluster-name")
    which.add_argument("--cluster-id", help="for a local cluster on Outposts")
    tok.add_argument("--role-arn", help="assume this role first")
    tok.add_argument("--session-name", default="EKSGetTokenAuth")

    kube = sub.add_parser("kubeconfig", help="write or merge a kubeconfig entry for a cluster")
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
    return parser


def _cluster(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster-name", required=True)


COMMANDS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, None]]] = {
    "pod-identity": _pod_identity,
    "idp": _idp,
    "update": _update,
    "call": _call,
    "token": _token,
    "kubeconfig": _kubeconfig,
}


def _report(error: BaseException) -> None:
    if isinstance(error, ServiceError):
        sys.stderr.write(
            f"error: {error.code}: {error.message or ''} (request id {error.request_id})\n"
        )
    elif isinstance(error, WaiterError):
        sys.stderr.write(f"error: {error}\n")
    else:
        sys.stderr.write(f"error: {error}\n")


def _quiet_stdout() -> None:
    """Point a closed pipe's stdout at /dev/null, so exiting flushes nothing into it."""
    real = sys.__stdout__
    if real is None or sys.stdout is not real:
        return  # someone else's stream (a test capturing it): leave it alone
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, real.fileno())
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "emulator":
        from ._emulator_cli import run

        return run(args, parser)
    if args.command == "demo":
        from ._demo import run_demo

        command: Callable[[argparse.Namespace], Coroutine[Any, Any, None]] = run_demo
    else:
        command = COMMANDS[args.command]
    try:
        asyncio.run(command(args))
        sys.stdout.flush()  # here, not at exit: a closed pipe is reported below
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whoever read stdout has stopped (`eks-async token ... | head -c 10`): end quietly,
        # with the status a process killed by SIGPIPE has, as shell pipelines expect.
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except ParamValidationError as error:
        sys.stderr.write(f"eks-async: error: {error}\n")
        return EXIT_USAGE
    except EKSAsyncError as error:
        _report(error)
        return EXIT_ERROR
    return 0


def entry() -> None:  # pragma: no cover - the console script
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    sys.exit(main())
