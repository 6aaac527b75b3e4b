"""Onboard many Kubernetes service accounts to EKS Pod Identity, safely rerunnable.

A plan lists ``(cluster, namespace, service account, IAM role)`` rows. For each row the job
makes EKS hold exactly one association for that namespace/service account, with that role:

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

Usage: ``python examples/batch_onboard.py plan.json`` (or ``plan.csv``), with region and
credentials from the environment; ``--help`` lists the options. The exit status is 1 when
any row failed: run the job again to retry those rows.

Why no fixed ``clientRequestToken`` per row: EKS would answer a rerun's create with the
first run's answer, even for an association deleted since; listing first is always right.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import enum
import json
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from eks_async import (
    EKSAsyncError,
    EKSClient,
    PodIdentityAssociationSummary,
    ResourceInUseException,
    ResourceNotFoundException,
    RetryConfig,
    ServiceError,
    WaiterConfig,
    WaiterTimeoutError,
)

__all__ = [
    "DEFAULT_WAIT",
    "Assignment",
    "Outcome",
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
    """The outcome of one row, the association concerned (if known) and any detail."""

    assignment: Assignment
    outcome: Outcome
    association_id: str | None = None
    detail: str = ""


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
    def ok(self) -> bool:
        """Whether every row now holds its association."""
        return not self.failed

    def summary(self) -> str:
        counts = ", ".join(f"{len(self._with(o))} {o.value}" for o in Outcome)
        lines = [f"{len(self.results)} service accounts: {counts}"]
        lines += [f"  failed {r.assignment}: {r.detail}" for r in self.failed]
        return "\n".join(lines)


# --- the job ---------------------------------------------------------------------------------


async def onboard(
    eks: EKSClient,
    plan: Iterable[Assignment],
    *,
    concurrency: int = 16,
    wait: WaiterConfig | None = None,
) -> Report:
    """Give every row of ``plan`` its association; at most ``concurrency`` rows at once.

    Rerunning with the same plan changes nothing that is already right. Rows that appear
    twice are done once; two rows for one service account with different roles are a
    ``ValueError``. ``wait`` paces the waits (default ``DEFAULT_WAIT``). Errors of single
    rows are reported as failed and do not stop the others; cancelling the call cancels
    the rows in flight, and a rerun picks up where it stopped.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    rows = _unique(plan)
    pacing = wait or DEFAULT_WAIT
    gate = asyncio.Semaphore(concurrency)

    async def run(row: Assignment) -> Result:
        async with gate:
            result = await _onboard_row(eks, row, pacing)
        logger.info("%s: %s %s", row, result.outcome.value, result.detail)
        return result

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(run(row)) for row in rows]
    return Report(results=tuple(task.result() for task in tasks))


def _unique(plan: Iterable[Assignment]) -> list[Assignment]:
    rows: dict[tuple[str, str, str], Assignment] = {}
    for row in plan:
        seen = rows.setdefault(row.key, row)
        if seen.role_arn != row.role_arn:
            raise ValueError(
                f"{row}: the plan gives two roles ({seen.role_arn} and {row.role_arn})"
            )
    return list(rows.values())


async def _onboard_row(eks: EKSClient, row: Assignment, wait: WaiterConfig) -> Result:
    try:
        return await _converge(eks, row, wait)
    except EKSAsyncError as exc:
        return Result(assignment=row, outcome=Outcome.FAILED, detail=_describe_error(exc))


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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        plan = load_plan(args.plan)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))

    async def run() -> Report:
        async with EKSClient(region=args.region, retry=RetryConfig(max_attempts=8)) as eks:
            return await onboard(eks, plan, concurrency=args.concurrency)

    try:
        report = asyncio.run(run())
    except EKSAsyncError as exc:  # the client could not be set up (region, credentials)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
