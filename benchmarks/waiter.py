"""Waiter efficiency: ``pod_identity_association_visible`` against a fixed 1 s poll loop.

``python -m benchmarks.waiter --url URL`` (the benchmark server started with ``--delay``):
each run creates one association per strategy, at the same moment, and both wait for it
concurrently, in real time. The server answers Describe 404 ``ResourceNotFoundException``
and leaves the association out of List until ``delay`` seconds after the create.

Per run and strategy: polls, HTTP requests (a poll that finds the association also lists),
seconds from the create to the return, and seconds from the moment it became visible to
the return. Prints one JSON object on its last line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from .clients import ACCESS_KEY, REGION, SECRET_KEY
from .server import BENCH_CLUSTER

__all__ = ["main"]

ROLE = "arn:aws:iam::111122223333:role/bench"


async def _create(eks: Any, namespace: str) -> tuple[str, float]:
    """The new association's id and the (upper bound of the) moment it was created."""
    out = await eks.create_pod_identity_association(
        cluster_name=BENCH_CLUSTER, namespace=namespace, service_account="sa", role_arn=ROLE
    )
    return out.association.association_id, time.monotonic()


async def with_waiter(eks: Any, namespace: str, delay: float,
                      config: Any = None) -> dict[str, Any]:
    """eks_async's waiter, with its defaults unless ``config`` is given."""
    import eks_async

    assoc_id, created = await _create(eks, namespace)
    states: list[str] = []

    def progress(p: eks_async.WaitProgress) -> None:
        states.append(p.state)

    await eks.waiters.pod_identity_association_visible(
        cluster_name=BENCH_CLUSTER, association_id=assoc_id, on_progress=progress,
        config=config,
    )
    done = time.monotonic()
    # A poll that described the association also listed; one that got 404 did not.
    requests = sum(1 if s == "not found" else 2 for s in states)
    return _result(len(states), requests, created, done, delay, states)


async def with_fixed_loop(eks: Any, namespace: str, delay: float,
                          interval: float = 1.0) -> dict[str, Any]:
    """What callers write without a waiter: Describe (then List) every ``interval`` s."""
    import eks_async

    assoc_id, created = await _create(eks, namespace)
    polls = requests = 0
    states: list[str] = []
    while True:
        polls += 1
        requests += 1
        try:
            described = await eks.describe_pod_identity_association(
                cluster_name=BENCH_CLUSTER, association_id=assoc_id
            )
        except eks_async.ResourceNotFoundException:
            states.append("not found")
        else:
            requests += 1
            listing = await eks.list_pod_identity_associations(
                cluster_name=BENCH_CLUSTER,
                namespace=described.association.namespace,
                service_account=described.association.service_account,
            )
            if any(s.association_id == assoc_id for s in listing.associations or ()):
                states.append("visible")
                break
            states.append("described, not listed")
        await asyncio.sleep(interval)
    done = time.monotonic()
    return _result(polls, requests, created, done, delay, states)


def _result(polls: int, requests: int, created: float, done: float, delay: float,
            states: list[str]) -> dict[str, Any]:
    return {
        "polls": polls,
        "requests": requests,
        "create_to_return_s": done - created,
        # ``created`` is when the create's answer arrived, so visibility came at most
        # ``delay`` s later: this is an upper bound (off by one round trip, < 1 ms).
        "visible_to_return_s": max(0.0, done - (created + delay)),
        "states": states,
    }


async def run(url: str, runs: int, delay: float) -> dict[str, Any]:
    import eks_async

    async with eks_async.EKSClient(
        region=REGION, endpoint_url=url,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
    ) as eks:
        jobs = []
        for i in range(runs):
            jobs.append(with_waiter(eks, f"waiter-{i}", delay))
            jobs.append(with_fixed_loop(eks, f"fixed-{i}", delay))
        results = await asyncio.gather(*jobs)
    return {
        "delay_s": delay,
        "runs": runs,
        "waiter": results[0::2],
        "fixed_1s": results[1::2],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--delay", type=float, default=5.0,
                        help="the server's propagation delay (it must match)")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.url, args.runs, args.delay))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
