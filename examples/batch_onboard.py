"""Onboard many Kubernetes service accounts to EKS Pod Identity, safely rerunnable.

A plan lists ``(cluster, namespace, service account, IAM role)`` rows. For each row the job
can first make the ServiceAccount exist in the cluster (``kubernetes=True``, or
``--kubernetes`` on the command line; see "The Kubernetes step" below), then makes EKS hold
exactly one association for that namespace/service account, with that role:

- it lists the associations of the namespace/service account first; one that exists with
  the same role is left alone ("already present"), one with another role gets the plan's
  role ("updated"); only when there is none does it create one ("created");
- EKS lets a namespace/service account have one association at most, and answers a second
  create with ``ResourceInUseException``. That happens when a create moments ago (this run's
  retry, another process, or an earlier run that was interrupted) is not listed yet, or an
  association is still being deleted. The job then lists again after a pause, and creates
  again, until it finds the association or may create one; it never makes a duplicate;
- "created" and "updated" are reported only once Describe and List show the change, so a
  finished run leaves nothing half-visible behind;
- a bounded number of rows are in flight at once (``asyncio.Semaphore``); one client serves
  them all, with its retries for throttling and dropped connections.

The Kubernetes step (needs kubernetes_asyncio): the job creates the row's ServiceAccount
through one ``eks_async.kubernetes.api_client`` per cluster, opened by the first row of the
cluster and kept for the whole run. Kubernetes names are unique, so creating is the check:
409 AlreadyExists means the ServiceAccount is there ("already present"); 404 for a missing
namespace makes the job create the namespace (409 there too means present) and try again.
kubernetes_asyncio neither retries nor times out by itself, so the job gives every request
a timeout and retries throttling (429), server errors and lost connections. A create whose
answer was lost may have been made all the same: its retry then gets 409, and the job tells
"made by this row of this run" from "there before" by an annotation on what it creates
(``RUN_ANNOTATION``). Existing ServiceAccounts and namespaces are never changed.

Usage: ``python examples/batch_onboard.py plan.json`` (or ``plan.csv``), with region and
credentials from the environment; ``--help`` lists the options. The exit status is 1 when
any row failed: run the job again to retry those rows.

Pacing: the client runs in adaptive retry mode by default (``--retry-mode standard`` to
choose the other), so a job with more rows in flight than EKS allows calls per second runs
at the rate EKS allows instead of spending its attempts on throttled answers; at the end it
prints the rate it achieved (``Pace``).

Why no fixed ``clientRequestToken`` per row: EKS would answer a rerun's create with the
first run's answer, even for an association deleted since; listing first is always right.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import enum
import importlib
import json
import logging
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from eks_async import (
    EKSAsyncError,
    EKSClient,
    PodIdentityAssociationSummary,
    RateLimiter,
    ResourceInUseException,
    ResourceNotFoundException,
    RetryConfig,
    ServiceError,
    WaiterConfig,
    WaiterTimeoutError,
)
from eks_async.kubernetes import api_client

__all__ = [
    "DEFAULT_WAIT",
    "RUN_ANNOTATION",
    "ApiClientFactory",
    "Assignment",
    "KubernetesError",
    "Outcome",
    "Pace",
    "Report",
    "Result",
    "load_plan",
    "main",
    "onboard",
]

logger = logging.getLogger("batch_onboard")

#: Pacing of every wait of the job (a change to show, a taken slot to clear): EKS shows
#: association changes within seconds.
DEFAULT_WAIT: Final = WaiterConfig(min_delay=1.0, max_delay=10.0, max_wait=120.0)

_FIELDS: Final = ("cluster", "namespace", "service_account", "role_arn")

#: Put on each ServiceAccount and namespace the job creates: ``<run id>/<service account>``,
#: the run and the row that made it.
RUN_ANNOTATION: Final = "eks-async.example/onboarded-by-run"

#: Makes the Kubernetes client of one cluster: an async context manager yielding a
#: kubernetes_asyncio ``ApiClient``, such as ``eks_async.kubernetes.api_client`` (the
#: default) or a ``functools.partial`` of it with ``role_arn=``.
ApiClientFactory = Callable[[EKSClient, str], contextlib.AbstractAsyncContextManager[Any]]

# Kubernetes requests: attempts per request (throttling, server errors, lost connections),
# and seconds before one is given up (kubernetes_asyncio has no timeout of its own).
_KUBE_ATTEMPTS: Final = 8
_KUBE_TIMEOUT: Final = 30.0
_KUBE_RETRY_STATUS: Final = frozenset({429, 500, 502, 503, 504})


@attrs.frozen(kw_only=True)
class Assignment:
    """One row of the plan: this service account of this cluster assumes this role."""

    cluster: str
    namespace: str
    service_account: str
    role_arn: str

    @property
    def key(self) -> tuple[str, str, str]:
        """What EKS allows one association for: cluster, namespace, service account."""
        return (self.cluster, self.namespace, self.service_account)

    def __str__(self) -> str:
        return f"{self.cluster}/{self.namespace}/{self.service_account}"


class Outcome(enum.StrEnum):
    """What the job did for one row."""

    CREATED = "created"
    ALREADY_PRESENT = "already present"
    UPDATED = "updated"
    FAILED = "failed"


@attrs.frozen(kw_only=True)
class Result:
    """The outcome of one row, the association concerned (if known) and any detail.

    ``outcome`` is the row's: FAILED when either step failed, else the association's.
    ``service_account_outcome`` is the Kubernetes step's (CREATED or ALREADY_PRESENT; None
    when the step was off or did not finish), ``namespace_created`` whether it made the
    namespace.
    """

    assignment: Assignment
    outcome: Outcome
    association_id: str | None = None
    detail: str = ""
    service_account_outcome: Outcome | None = None
    namespace_created: bool = False


@attrs.frozen(kw_only=True)
class Report:
    """Every row's result, in plan order."""

    results: tuple[Result, ...]

    def _with(self, outcome: Outcome) -> list[Result]:
        return [r for r in self.results if r.outcome is outcome]

    @property
    def created(self) -> list[Result]:
        return self._with(Outcome.CREATED)

    @property
    def already_present(self) -> list[Result]:
        return self._with(Outcome.ALREADY_PRESENT)

    @property
    def updated(self) -> list[Result]:
        return self._with(Outcome.UPDATED)

    @property
    def failed(self) -> list[Result]:
        return self._with(Outcome.FAILED)

    @property
    def service_accounts_created(self) -> list[Result]:
        """Rows whose ServiceAccount this run created in the cluster."""
        return [r for r in self.results if r.service_account_outcome is Outcome.CREATED]

    @property
    def service_accounts_already_present(self) -> list[Result]:
        """Rows whose ServiceAccount was in the cluster already."""
        return [r for r in self.results if r.service_account_outcome is Outcome.ALREADY_PRESENT]

    @property
    def namespaces_created(self) -> list[Result]:
        """The rows for which this run created the namespace (one per namespace)."""
        return [r for r in self.results if r.namespace_created]

    @property
    def ok(self) -> bool:
        """Whether every row now holds its association (and ServiceAccount, if asked)."""
        return not self.failed

    def summary(self) -> str:
        counts = ", ".join(f"{len(self._with(o))} {o.value}" for o in Outcome)
        lines = [f"{len(self.results)} service accounts: {counts}"]
        if any(r.service_account_outcome is not None for r in self.results):
            lines.append(
                f"  in Kubernetes: {len(self.service_accounts_created)} ServiceAccounts created, "
                f"{len(self.service_accounts_already_present)} already present, "
                f"{len(self.namespaces_created)} namespaces created"
            )
        lines += [f"  failed {r.assignment}: {r.detail}" for r in self.failed]
        return "\n".join(lines)


# --- the job ---------------------------------------------------------------------------------


async def onboard(
    eks: EKSClient,
    plan: Iterable[Assignment],
    *,
    concurrency: int = 16,
    wait: WaiterConfig | None = None,
    kubernetes: bool | ApiClientFactory = False,
    on_result: Callable[[Result], object] | None = None,
) -> Report:
    """Give every row of ``plan`` its association; at most ``concurrency`` rows at once.

    With ``kubernetes`` (True: ``eks_async.kubernetes.api_client``; or an
    ``ApiClientFactory``) each row first gets its ServiceAccount (and namespace) in the
    cluster, through one Kubernetes client per cluster for the whole run.

    Rerunning with the same plan changes nothing that is already right. Rows that appear
    twice are done once; two rows for one service account with different roles are a
    ``ValueError``. ``wait`` paces the waits and Kubernetes retries (default
    ``DEFAULT_WAIT``). ``on_result`` is called with each row's result as it finishes (it
    must not raise). Errors of single rows are reported as failed and do not stop the
    others; cancelling the call cancels the rows in flight and closes the Kubernetes
    clients, and a rerun picks up where it stopped.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    rows = _unique(plan)
    pacing = wait or DEFAULT_WAIT
    gate = asyncio.Semaphore(concurrency)
    factory = _api_client_factory(kubernetes)

    async with contextlib.AsyncExitStack() as clients:
        kube = None if factory is None else _Kube(eks, factory, clients)

        async def run(row: Assignment) -> Result:
            async with gate:
                result = await _onboard_row(eks, row, pacing, kube)
            logger.info("%s: %s %s", row, result.outcome.value, result.detail)
            if on_result is not None:
                on_result(result)
            return result

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(run(row)) for row in rows]
    return Report(results=tuple(task.result() for task in tasks))


def _api_client_factory(kubernetes: bool | ApiClientFactory) -> ApiClientFactory | None:
    if not isinstance(kubernetes, bool):
        return kubernetes
    return api_client if kubernetes else None


def _unique(plan: Iterable[Assignment]) -> list[Assignment]:
    rows: dict[tuple[str, str, str], Assignment] = {}
    for row in plan:
        seen = rows.setdefault(row.key, row)
        if seen.role_arn != row.role_arn:
            raise ValueError(
                f"{row}: the plan gives two roles ({seen.role_arn} and {row.role_arn})"
            )
    return list(rows.values())


async def _onboard_row(
    eks: EKSClient, row: Assignment, wait: WaiterConfig, kube: _Kube | None
) -> Result:
    account: Outcome | None = None
    namespace_created = False
    try:
        if kube is not None:
            account, namespace_created = await kube.ensure_service_account(row, wait)
        result = await _converge(eks, row, wait)
    except EKSAsyncError as exc:
        result = Result(assignment=row, outcome=Outcome.FAILED, detail=_describe_error(exc))
    except KubernetesError as exc:
        result = Result(assignment=row, outcome=Outcome.FAILED, detail=str(exc))
    return attrs.evolve(
        result, service_account_outcome=account, namespace_created=namespace_created
    )


async def _converge(eks: EKSClient, row: Assignment, wait: WaiterConfig) -> Result:
    start = wait.clock()
    pause = 0
    while True:
        found = await _listed(eks, row)
        if found is not None:
            try:
                return await _reconcile(eks, row, found, wait)
            except ResourceNotFoundException:
                # Listed but not described: deleted in between, or not propagated to
                # Describe yet. Look again.
                pass
        else:
            try:
                created = await eks.create_pod_identity_association(
                    cluster_name=row.cluster,
                    namespace=row.namespace,
                    service_account=row.service_account,
                    role_arn=row.role_arn,
                )
            except ResourceInUseException:
                # EKS holds the slot but List did not show it: a create not visible yet
                # (maybe an interrupted run's) or a delete not finished. Look again.
                pass
            else:
                assert created.association is not None
                association_id = created.association.association_id
                assert association_id is not None
                await eks.waiters.pod_identity_association_visible(
                    cluster_name=row.cluster, association_id=association_id, config=wait
                )
                return Result(assignment=row, outcome=Outcome.CREATED,
                              association_id=association_id)
        pause += 1
        elapsed = wait.clock() - start
        delay = _delay(wait, pause)
        if elapsed + delay > wait.max_wait:
            raise WaiterTimeoutError(
                f"{row}: EKS reports an association, but List did not show it within "
                f"{wait.max_wait} s",
                waiter="onboard",
                polls=pause,
                elapsed=elapsed,
            )
        await wait.sleep(delay)


async def _listed(eks: EKSClient, row: Assignment) -> PodIdentityAssociationSummary | None:
    """The association of the row's namespace/service account, if List shows one."""
    listing = eks.paginate.list_pod_identity_associations(
        cluster_name=row.cluster, namespace=row.namespace, service_account=row.service_account
    )
    async for summary in listing:
        return summary
    return None


async def _reconcile(
    eks: EKSClient, row: Assignment, found: PodIdentityAssociationSummary, wait: WaiterConfig
) -> Result:
    """Leave an association with the plan's role alone; give one with another role it."""
    association_id = found.association_id
    assert association_id is not None
    described = await eks.describe_pod_identity_association(
        cluster_name=row.cluster, association_id=association_id
    )
    assert described.association is not None
    current_role = described.association.role_arn
    if current_role == row.role_arn:
        return Result(assignment=row, outcome=Outcome.ALREADY_PRESENT,
                      association_id=association_id)
    await eks.update_pod_identity_association(
        cluster_name=row.cluster, association_id=association_id, role_arn=row.role_arn
    )
    await eks.waiters.pod_identity_association_updated(
        cluster_name=row.cluster, association_id=association_id, role_arn=row.role_arn,
        config=wait,
    )
    return Result(assignment=row, outcome=Outcome.UPDATED, association_id=association_id,
                  detail=f"role was {current_role}")


# --- the Kubernetes step ---------------------------------------------------------------------


class KubernetesError(Exception):
    """A Kubernetes request of a row failed (after its retries); the message says how."""


class _Kube:
    """The Kubernetes step of one run: one ApiClient per cluster, opened by the first row
    of the cluster that needs it and closed with ``clients`` at the end of the run."""

    def __init__(
        self, eks: EKSClient, factory: ApiClientFactory, clients: contextlib.AsyncExitStack
    ) -> None:
        # kubernetes_asyncio through importlib: its hints are partial, so Any it is.
        try:
            self.k8s: Any = importlib.import_module("kubernetes_asyncio.client")
        except ImportError as exc:
            raise ImportError(
                "the Kubernetes step needs kubernetes_asyncio: "
                "pip install 'eks-async[kubernetes]' (or kubernetes_asyncio)"
            ) from exc
        self.run_id = uuid.uuid4().hex
        self._eks = eks
        self._factory = factory
        self._clients = clients
        self._locks: dict[str, asyncio.Lock] = {}
        self._opened: dict[str, Any] = {}
        self._failed: dict[str, str] = {}

    async def _client(self, cluster: str) -> Any:
        # The first row opens the client while the cluster's other rows wait for it; a
        # client that could not be opened fails the cluster's rows with the same reason.
        async with self._locks.setdefault(cluster, asyncio.Lock()):
            if cluster in self._failed:
                raise KubernetesError(self._failed[cluster])
            if cluster not in self._opened:
                try:
                    self._opened[cluster] = await self._clients.enter_async_context(
                        self._factory(self._eks, cluster)
                    )
                except EKSAsyncError as exc:
                    self._failed[cluster] = (
                        f"no Kubernetes client for cluster {cluster}: {_describe_error(exc)}"
                    )
                    raise KubernetesError(self._failed[cluster]) from exc
            return self._opened[cluster]

    async def ensure_service_account(
        self, row: Assignment, wait: WaiterConfig
    ) -> tuple[Outcome, bool]:
        """Make the row's ServiceAccount exist: its outcome, and whether the namespace was
        created too."""
        core = self.k8s.CoreV1Api(await self._client(row.cluster))
        k8s = self.k8s
        # Which row of which run made it: rows of one namespace may race to create it.
        mark = {RUN_ANNOTATION: f"{self.run_id}/{row.service_account}"}
        account = k8s.V1ServiceAccount(
            metadata=k8s.V1ObjectMeta(name=row.service_account, annotations=mark)
        )
        namespace = k8s.V1Namespace(
            metadata=k8s.V1ObjectMeta(name=row.namespace, annotations=mark)
        )

        def create_account() -> Awaitable[bool]:
            return self._create(
                lambda: core.create_namespaced_service_account(
                    row.namespace, account, _request_timeout=_KUBE_TIMEOUT
                ),
                lambda: core.read_namespaced_service_account(
                    row.service_account, row.namespace, _request_timeout=_KUBE_TIMEOUT
                ),
                mark,
                wait,
            )

        namespace_created = False
        try:
            try:
                made = await create_account()
            except k8s.ApiException as exc:
                details = _status(exc).get("details") or {}
                if exc.status != 404 or details.get("kind") != "namespaces":
                    raise
                namespace_created = await self._create(
                    lambda: core.create_namespace(namespace, _request_timeout=_KUBE_TIMEOUT),
                    lambda: core.read_namespace(row.namespace, _request_timeout=_KUBE_TIMEOUT),
                    mark,
                    wait,
                )
                made = await create_account()
        except Exception as exc:
            if not (isinstance(exc, k8s.ApiException) or _connection_error(exc)):
                raise
            raise KubernetesError(_describe_kube_error(exc)) from exc
        return (Outcome.CREATED if made else Outcome.ALREADY_PRESENT), namespace_created

    async def _create(
        self,
        create: Callable[[], Awaitable[Any]],
        read: Callable[[], Awaitable[Any]],
        mark: dict[str, str],
        wait: WaiterConfig,
    ) -> bool:
        """Create an object carrying ``mark``: True when this call made it, False when it
        was there before."""
        attempts = 0

        async def attempt() -> Any:
            nonlocal attempts
            attempts += 1
            return await create()

        try:
            await _retrying(attempt, wait, self.k8s)
        except self.k8s.ApiException as exc:
            if exc.status != 409 or _status(exc).get("reason") != "AlreadyExists":
                raise
            if attempts == 1:
                return False
            # An earlier attempt may have made it and lost the answer: then it has our mark.
            current = await _retrying(read, wait, self.k8s)
            annotations = current.metadata.annotations or {}
            return bool(annotations.get(RUN_ANNOTATION) == mark[RUN_ANNOTATION])
        return True


async def _retrying(call: Callable[[], Awaitable[Any]], wait: WaiterConfig, k8s: Any) -> Any:
    """``call()``, made again after a pause when it was throttled, met a server error or
    lost its connection, up to ``_KUBE_ATTEMPTS`` times (then ``KubernetesError``). Other
    errors are raised as they come."""
    attempt = 1
    while True:
        try:
            return await call()
        except Exception as exc:
            if not _transient(exc, k8s):
                raise
            if attempt >= _KUBE_ATTEMPTS:
                raise KubernetesError(
                    f"{_describe_kube_error(exc)} (after {attempt} attempts)"
                ) from exc
            logger.debug("Kubernetes request failed (attempt %d): %r", attempt, exc)
        await wait.sleep(_delay(wait, attempt))
        attempt += 1


def _connection_error(exc: Exception) -> bool:
    import aiohttp  # kubernetes_asyncio's HTTP client

    return isinstance(exc, aiohttp.ClientError | TimeoutError)


def _transient(exc: Exception, k8s: Any) -> bool:
    """Whether a Kubernetes request that failed so is worth making again."""
    import aiohttp

    if isinstance(exc, k8s.ApiException):
        return exc.status in _KUBE_RETRY_STATUS
    if isinstance(exc, aiohttp.ClientSSLError):  # a certificate that fails stays failing
        return False
    return _connection_error(exc)


def _status(exc: Any) -> dict[str, Any]:
    """The ``Status`` object of a Kubernetes error answer (empty if it has none)."""
    try:
        status = json.loads(exc.body or "null")
    except (TypeError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


def _describe_kube_error(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    if not isinstance(status, int) or not status:  # no answer: a connection error
        return f"Kubernetes: {type(exc).__name__}: {exc}"
    body = _status(exc)
    reason = body.get("reason") or getattr(exc, "reason", "")
    message = body.get("message")
    return f"Kubernetes {status} {reason}" + (f": {message}" if message else "")


def _delay(wait: WaiterConfig, pause: int) -> float:
    """The ``pause``-th pause: doubling from ``min_delay`` up to ``max_delay``, jittered."""
    ceiling = min(wait.max_delay, wait.min_delay * 2.0 ** (pause - 1))
    if not wait.jitter:
        return ceiling
    return wait.min_delay + wait.rng() * (ceiling - wait.min_delay)


def _describe_error(exc: EKSAsyncError) -> str:
    if isinstance(exc, ServiceError):
        text = f"{exc.code}: {exc.message}"
        return f"{text} (after {exc.attempts} attempts)" if exc.attempts > 1 else text
    return f"{type(exc).__name__}: {exc}"


# --- pacing ----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Pace:
    """How fast a run went: rows and EKS answers per second, and the throttled answers
    (those only in adaptive mode, from its rate limiter)."""

    rows: int
    seconds: float
    limiter: RateLimiter | None = None

    def summary(self) -> str:
        seconds = max(self.seconds, 1e-9)
        line = f"{self.rows} rows in {self.seconds:.1f} s ({self.rows / seconds:.1f} rows/s)"
        limiter = self.limiter
        if limiter is None:
            return line
        target = limiter.target_rate
        return (
            f"{line}; EKS answered {limiter.admitted} calls ({limiter.admitted / seconds:.1f}"
            f"/s), throttled {limiter.throttles}; rate limit target "
            + ("none (never throttled)" if target is None else f"{target:.1f}/s")
        )


def retry_config(mode: str) -> RetryConfig:
    """The job's retries: ``"adaptive"`` (paced by a rate limiter) or ``"standard"``."""
    if mode == "adaptive":
        return RetryConfig(mode="adaptive", max_attempts=8, limiter=RateLimiter())
    return RetryConfig(mode="standard", max_attempts=8)


# --- plans -----------------------------------------------------------------------------------


def load_plan(path: Path) -> list[Assignment]:
    """Read a plan: a ``.json`` list of objects, or a ``.csv`` with a header row, each
    with the fields ``cluster``, ``namespace``, ``service_account`` and ``role_arn``.

    Raises ``ValueError`` naming the first bad entry.
    """
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            entries: list[Any] = list(csv.DictReader(handle))
        first = 2  # line 1 is the header
    else:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of assignments")
        entries = data
        first = 1
    return [_assignment(entry, f"{path}:{n}") for n, entry in enumerate(entries, first)]


def _assignment(entry: Any, where: str) -> Assignment:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected an object with {', '.join(_FIELDS)}")
    values: dict[str, str] = {}
    for name in _FIELDS:
        value = entry.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{where}: {name} is missing or empty")
        values[name] = value.strip()
    unknown = sorted(set(entry) - set(_FIELDS))
    if unknown:
        raise ValueError(f"{where}: unknown fields {', '.join(map(str, unknown))}")
    return Assignment(**values)


# --- command line ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job on the plan file named on the command line; 0 when every row is done."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("plan", type=Path, help="a .json or .csv plan")
    parser.add_argument("--concurrency", type=int, default=16, help="rows in flight at once")
    parser.add_argument("--region", help="AWS region (default: from the environment)")
    parser.add_argument(
        "--kubernetes",
        action="store_true",
        help="create each row's ServiceAccount (and namespace) in the cluster first",
    )
    parser.add_argument(
        "--retry-mode",
        choices=("adaptive", "standard"),
        default="adaptive",
        help="adaptive (default): pace calls to the rate EKS allows; standard: back off only",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        plan = load_plan(args.plan)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))

    retry = retry_config(args.retry_mode)

    async def run() -> tuple[Report, float]:
        async with EKSClient(region=args.region, retry=retry) as eks:
            start = time.monotonic()
            report = await onboard(
                eks, plan, concurrency=args.concurrency, kubernetes=args.kubernetes
            )
            return report, time.monotonic() - start

    try:
        report, seconds = asyncio.run(run())
    except EKSAsyncError as exc:  # the client could not be set up (region, credentials)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    print(Pace(rows=len(report.results), seconds=seconds, limiter=retry.limiter).summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
