"""Onboard a CI role to an EKS cluster, and prove it can work there before the pipeline runs.

A CI system (GitHub Actions, GitLab, Jenkins...) reaches a cluster with an IAM role. This
job gives that role access to one namespace through EKS access entries, then checks, as
the role itself, that the access is in effect:

1. ``CreateAccessEntry`` for the role's ARN (an entry that exists already is kept);
2. ``AssociateAccessPolicy``: an AWS-managed access policy (``AmazonEKSEditPolicy`` by
   default) scoped to the namespace (associating again only sets the scope);
3. ``access_entry_effective`` with the CI role's own credentials: EKS answers the two calls
   at once, but the cluster sees the entry and the policy seconds later (401, then 403,
   meanwhile), so the job waits until the cluster authenticates the role and its
   ``SelfSubjectAccessReview`` allows creating ServiceAccounts in the namespace;
4. only then, as the CI role through ``eks_async.kubernetes`` (kubernetes_asyncio): creates
   a ServiceAccount in the namespace (409: already there) and lists the namespace's;
5. and shows the scope holds: listing ServiceAccounts in another namespace is refused (403).

With ``create_namespace`` (``--create-namespace``) the caller first creates the namespace
through its own Kubernetes access (409: already there); it needs that access, as a
cluster's creator has.

The CI role's credentials are passed in: on AWS, ``main`` assumes the role with STS
(``assume_role``; the caller must be allowed to assume it), as a CI runner would get them.
The role also needs ``eks:DescribeCluster`` (``eks_async.kubernetes`` reads the cluster's
endpoint and CA with it). No secret is printed: the report holds names and outcomes only.

Usage, against AWS (region and credentials from the environment)::

    python examples/onboard_ci_role.py --cluster prod \\
        --role-arn arn:aws:iam::111122223333:role/ci-deployer --namespace ci

and against an embedded emulator (no AWS account, no network; needs the ``emulator`` and
``kubernetes`` extras): ``python examples/onboard_ci_role.py --emulator``. The exit status
is 0 when every step succeeded, 1 when one failed, 2 when the job could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs

from eks_async import (
    AccessScope,
    AccessScopeType,
    CanI,
    Credentials,
    CredentialsError,
    EKSAsyncError,
    EKSClient,
    ResourceInUseException,
    RetryConfig,
    WaiterConfig,
    WaitProgress,
)
from eks_async.kubernetes import api_client

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_SERVICE_ACCOUNT",
    "DEFAULT_WAIT",
    "CIClientFactory",
    "Report",
    "Step",
    "assume_role",
    "main",
    "onboard_ci_role",
    "policy_arn",
]

logger = logging.getLogger("onboard_ci_role")

DEFAULT_POLICY: Final = "AmazonEKSEditPolicy"
DEFAULT_SERVICE_ACCOUNT: Final = "ci-deployer"
#: Access entries and policies take effect within seconds, rarely over a minute.
DEFAULT_WAIT: Final = WaiterConfig(min_delay=2.0, max_delay=10.0, max_wait=300.0)
#: Seconds before a Kubernetes request is given up (kubernetes_asyncio has no timeout).
_KUBE_TIMEOUT: Final = 30.0

#: Makes the EKS client the CI role's Kubernetes calls go through (it signs the role's
#: cluster tokens and reads the cluster's endpoint): an ``EKSClient`` with those credentials.
CIClientFactory = Callable[[Credentials], EKSClient]


def policy_arn(name: str, partition: str = "aws") -> str:
    """The ARN of an AWS-managed access policy: ``AmazonEKSEditPolicy`` ->
    ``arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy``."""
    return f"arn:{partition}:eks::aws:cluster-access-policy/{name}"


@attrs.frozen(kw_only=True)
class Step:
    """One step of the job, as reported."""

    #: ``namespace``, ``access entry``, ``access policy``, ``in effect``,
    #: ``service account``, ``listed``, ``outside namespace``.
    name: str
    ok: bool
    detail: str


@attrs.frozen(kw_only=True)
class Report:
    """What the job did, step by step (it stops at the first step that fails)."""

    cluster: str
    role_arn: str
    namespace: str
    steps: tuple[Step, ...]

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    def summary(self) -> str:
        lines = [f"CI role {self.role_arn} on cluster {self.cluster}, namespace {self.namespace}:"]
        lines += [f"  {'ok ' if s.ok else 'FAILED'} {s.name}: {s.detail}" for s in self.steps]
        lines.append("done" if self.ok else "not done: fix the failed step and run again")
        return "\n".join(lines)


def _kubernetes() -> Any:
    # kubernetes_asyncio through importlib: its hints are partial, so Any it is.
    try:
        return importlib.import_module("kubernetes_asyncio.client")
    except ImportError as exc:
        raise ImportError(
            "onboard_ci_role needs kubernetes_asyncio: "
            "pip install 'eks-async[kubernetes]' (or kubernetes_asyncio)"
        ) from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, EKSAsyncError):
        return f"{type(exc).__name__}: {exc}"
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    if status is not None:
        return f"Kubernetes API: HTTP {status} {reason or ''}".rstrip()
    return f"{type(exc).__name__}: {exc}"


async def onboard_ci_role(
    eks: EKSClient,
    *,
    cluster: str,
    role_arn: str,
    namespace: str,
    ci_credentials: Credentials,
    ci_client: CIClientFactory | None = None,
    policy: str = DEFAULT_POLICY,
    service_account: str = DEFAULT_SERVICE_ACCOUNT,
    outside_namespace: str | None = None,
    kubernetes_groups: Sequence[str] = (),
    create_namespace: bool = False,
    wait: WaiterConfig | None = None,
    on_progress: Callable[[WaitProgress], None] | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> Report:
    """Give ``role_arn`` ``policy`` in ``namespace`` of ``cluster`` and check it as the role.

    ``eks`` makes the EKS calls (it must be allowed to manage access entries);
    ``ci_credentials`` are the CI role's, used for the wait and the Kubernetes calls, through
    an EKS client made by ``ci_client`` (default: ``EKSClient`` in ``eks``'s region).
    ``outside_namespace`` is where a call must be refused (default ``default``, or
    ``kube-system`` when ``namespace`` is ``default``). ``on_step`` sees each step as it ends.
    """
    k8s = _kubernetes()
    partition = role_arn.split(":")[1] if role_arn.count(":") >= 5 else "aws"
    outside = outside_namespace or ("kube-system" if namespace == "default" else "default")
    steps: list[Step] = []

    def report() -> Report:
        return Report(cluster=cluster, role_arn=role_arn, namespace=namespace, steps=tuple(steps))

    def done(name: str, ok: bool, detail: str) -> bool:
        step = Step(name=name, ok=ok, detail=detail)
        steps.append(step)
        logger.info("%s: %s", name, detail)
        if on_step is not None:
            on_step(step)
        return ok

    if create_namespace:
        try:
            async with api_client(eks, cluster) as api:
                body = k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace))
                try:
                    await k8s.CoreV1Api(api).create_namespace(body, _request_timeout=_KUBE_TIMEOUT)
                    done("namespace", True, f"created {namespace}")
                except k8s.ApiException as exc:
                    if exc.status != 409:
                        raise
                    done("namespace", True, f"{namespace} already present")
        except (EKSAsyncError, k8s.ApiException) as exc:
            done("namespace", False, _describe(exc))
            return report()

    # 1. The access entry (kept when it exists: this job may run again).
    try:
        await eks.create_access_entry(
            cluster_name=cluster,
            principal_arn=role_arn,
            kubernetes_groups=list(kubernetes_groups) or None,
        )
        done("access entry", True, "created")
    except ResourceInUseException:
        done("access entry", True, "already present")
    except EKSAsyncError as exc:
        done("access entry", False, _describe(exc))
        return report()

    # 2. The policy, scoped to the namespace.
    try:
        await eks.associate_access_policy(
            cluster_name=cluster,
            principal_arn=role_arn,
            policy_arn=policy_arn(policy, partition),
            access_scope=AccessScope(type=AccessScopeType.NAMESPACE, namespaces=[namespace]),
        )
        done("access policy", True, f"{policy} in namespace {namespace}")
    except EKSAsyncError as exc:
        done("access policy", False, _describe(exc))
        return report()

    # 3. Wait, as the CI role, until the cluster lets it create ServiceAccounts there.
    action = CanI(verb="create", resource="serviceaccounts", namespace=namespace)
    try:
        check = await eks.waiters.access_entry_effective(
            cluster_name=cluster,
            principal_arn=role_arn,
            credentials=ci_credentials,
            can_i=action,
            config=wait or DEFAULT_WAIT,
            on_progress=on_progress,
        )
        done("in effect", True, f"{check.username} may {action}")
    except EKSAsyncError as exc:
        done("in effect", False, _describe(exc))
        return report()

    # 4-5. Kubernetes calls as the CI role: inside the namespace, then outside it.
    make = ci_client or (lambda creds: EKSClient(region=eks.region, credentials=creds))
    try:
        async with make(ci_credentials) as ci, api_client(ci, cluster) as api:
            core = k8s.CoreV1Api(api)
            body = k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name=service_account))
            try:
                await core.create_namespaced_service_account(
                    namespace, body, _request_timeout=_KUBE_TIMEOUT
                )
                done("service account", True, f"created {namespace}/{service_account}")
            except k8s.ApiException as exc:
                if exc.status != 409:
                    raise
                done("service account", True, f"{namespace}/{service_account} already present")
            listed = await core.list_namespaced_service_account(
                namespace, _request_timeout=_KUBE_TIMEOUT
            )
            names = sorted(item.metadata.name for item in listed.items)
            done("listed", True, f"{len(names)} in {namespace}: {', '.join(names)}")
            try:
                await core.list_namespaced_service_account(
                    outside, _request_timeout=_KUBE_TIMEOUT
                )
            except k8s.ApiException as exc:
                if exc.status != 403:
                    raise
                done("outside namespace", True, f"listing in {outside} refused (403)")
            else:
                done("outside namespace", False, f"listing in {outside} was allowed")
    except (EKSAsyncError, k8s.ApiException) as exc:
        done("kubernetes", False, _describe(exc))
    return report()


async def assume_role(
    role_arn: str, *, region: str | None, session_name: str = "onboard-ci-role"
) -> Credentials:
    """The CI role's credentials from STS ``AssumeRole`` (15 minutes), with the caller's own
    credentials from the environment (aiobotocore, which eks_async depends on).

    Raises ``CredentialsError`` when STS refuses (or no credentials are found).
    """
    session_module: Any = importlib.import_module("aiobotocore.session")
    botocore_errors: Any = importlib.import_module("botocore.exceptions")
    try:
        async with session_module.get_session().create_client("sts", region_name=region) as sts:
            answer = await sts.assume_role(
                RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=900
            )
    except (botocore_errors.BotoCoreError, botocore_errors.ClientError) as exc:
        raise CredentialsError(f"AssumeRole {role_arn}: {exc}") from None
    given = answer["Credentials"]
    return Credentials(
        access_key_id=given["AccessKeyId"],
        secret_access_key=given["SecretAccessKey"],
        session_token=given["SessionToken"],
        expiry=given["Expiration"],
    )


# --- against the embedded emulator -------------------------------------------------------------

#: EKS seconds per real second in ``--emulator`` mode: a 15 s propagation takes 0.5 s.
EMULATOR_TIME_SCALE: Final = 30.0
_EMULATOR_ROLE: Final = "arn:aws:iam::123456789012:role/ci-deployer"
_EMULATOR_KEY: Final = "AKIAEXAMPLECIROLE001"


async def _run_on_emulator(args: argparse.Namespace) -> Report:
    """The job against an embedded emulator: a cluster in ``API`` mode whose creator (the
    emulator's test user) is its administrator, the CI role's credentials registered, the
    access entry's and the policy's propagation sped up but still waited for."""
    import secrets

    from eks_async.testing import TEST_ACCESS_KEY_ID, Delays, EKSEmulator

    emulator = EKSEmulator(
        seed=14,
        time_scale=EMULATOR_TIME_SCALE,
        delays=Delays(cluster_create=0, access_entry_create=(5, 15), access_policy_associate=(5, 15)),
    )
    account = emulator.config.default_account_id
    emulator.add_cluster(
        args.cluster,
        authentication_mode="API",
        admin_principal=f"arn:aws:iam::{account}:user/{TEST_ACCESS_KEY_ID}",
    )
    role = args.role_arn
    ci = Credentials(
        access_key_id=_EMULATOR_KEY,
        secret_access_key=secrets.token_urlsafe(30),
        session_token=secrets.token_urlsafe(60),
    )
    emulator.register_credentials(
        ci.access_key_id,
        ci.secret_access_key,
        session_token=ci.session_token,
        arn=f"arn:aws:sts::{account}:assumed-role/{role.rpartition('/')[2]}/onboard-ci-role",
    )
    clock = emulator.clock
    # On the emulator's clock; an hour of EKS time (2 real minutes) leaves a loaded machine
    # room: each poll's real round trips count as EKS time too.
    wait = attrs.evolve(DEFAULT_WAIT, max_wait=3600.0, clock=clock.monotonic, sleep=clock.sleep)
    async with emulator.serve(), emulator.client() as eks:
        return await onboard_ci_role(
            eks,
            cluster=args.cluster,
            role_arn=role,
            namespace=args.namespace,
            ci_credentials=ci,
            ci_client=lambda creds: emulator.client(
                aws_access_key_id=creds.access_key_id,
                aws_secret_access_key=creds.secret_access_key,
                aws_session_token=creds.session_token,
            ),
            policy=args.policy,
            service_account=args.service_account,
            create_namespace=True,
            wait=wait,
            on_progress=_print_progress,
        )


def _print_progress(event: WaitProgress) -> None:
    if event.next_delay is not None:
        print(f"  ... {event.state} (poll {event.attempt}, next in {event.next_delay:.0f}s)")


# --- command line ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job as the command line says; 0 when every step succeeded."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cluster", help="the cluster's name")
    parser.add_argument("--role-arn", help="the CI role's IAM ARN")
    parser.add_argument("--namespace", default="ci", help="the namespace it may work in")
    parser.add_argument("--policy", default=DEFAULT_POLICY, help="the access policy's name")
    parser.add_argument(
        "--service-account", default=DEFAULT_SERVICE_ACCOUNT,
        help="the ServiceAccount the role creates in the namespace",
    )
    parser.add_argument("--region", help="AWS region (default: from the environment)")
    parser.add_argument(
        "--create-namespace", action="store_true",
        help="create the namespace first, with the caller's own Kubernetes access",
    )
    parser.add_argument(
        "--emulator", action="store_true",
        help="run against an embedded emulator instead of AWS (a cluster is made for it)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.emulator:
        args.cluster = args.cluster or "prod"
        args.role_arn = args.role_arn or _EMULATOR_ROLE
    elif not args.cluster or not args.role_arn:
        parser.error("--cluster and --role-arn are needed (or --emulator)")

    async def run() -> Report:
        if args.emulator:
            return await _run_on_emulator(args)
        retry = RetryConfig(max_attempts=8)
        ci = await assume_role(args.role_arn, region=args.region)
        async with EKSClient(region=args.region, retry=retry) as eks:
            return await onboard_ci_role(
                eks,
                cluster=args.cluster,
                role_arn=args.role_arn,
                namespace=args.namespace,
                ci_credentials=ci,
                ci_client=lambda creds: EKSClient(region=eks.region, credentials=creds,
                                                  retry=retry),
                policy=args.policy,
                service_account=args.service_account,
                create_namespace=args.create_namespace,
                on_progress=_print_progress,
            )

    try:
        report = asyncio.run(run())
    except (EKSAsyncError, ImportError) as exc:  # no client, region, credentials or extra
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
