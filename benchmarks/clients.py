"""One benchmark client per process: ``python -m benchmarks.clients KIND TASK --url URL``.

KIND is ``eks_async``, ``aiobotocore`` or ``aiohttp`` (the floor: a GET, the body read and
``json.loads``; no signing, no typing). TASK is

* ``calls``: CPU per call and calls/s, sequential then at ``--concurrency`` tasks;
* ``first``: time to create a client (explicit credentials) and make its first call,
  measured after the imports;
* ``memory``: RSS for ``--clients`` live clients, then after one call each.

The process prints one JSON object on its last line of stdout. Every client makes the same
call, DescribePodIdentityAssociation, against the benchmark server; aiobotocore runs with its
defaults (standard retries, 10 pooled connections) apart from the endpoint; eks_async with
its defaults. Credentials are explicit for both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from .server import BENCH_ASSOCIATION_ID, BENCH_CLUSTER

__all__ = ["KINDS", "main"]

KINDS = ("eks_async", "aiobotocore", "aiohttp")
ACCESS_KEY = "AKIDBENCH"
SECRET_KEY = "benchsecretbenchsecretbenchsecretbench00"
REGION = "us-west-2"

Call = Callable[[], Awaitable[Any]]


def rss_bytes() -> int:
    """The resident set size of this process, now (not the peak)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# --- clients ------------------------------------------------------------------------------


def make_eks(url: str) -> Any:
    """An ``EKSClient`` with explicit credentials, on its default path."""
    import eks_async

    return eks_async.EKSClient(
        region=REGION,
        endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def _import(kind: str) -> None:
    if kind == "eks_async":
        import eks_async  # noqa: F401
    elif kind == "aiobotocore":
        import aiobotocore.session  # type: ignore[import-untyped]  # noqa: F401
    else:
        import aiohttp  # noqa: F401


@contextlib.asynccontextmanager
async def open_client(kind: str, url: str, session: Any = None) -> AsyncIterator[Call]:
    """A client of ``kind`` as its users make one, and the benchmark's call on it.

    ``session``: for aiobotocore, the ``AioSession`` to create the client from (one
    session for many clients, as services do); a new one when ``None``.
    """
    if kind == "eks_async":
        eks = make_eks(url)
        async with eks:

            def call() -> Awaitable[Any]:
                pending: Awaitable[Any] = eks.describe_pod_identity_association(
                    cluster_name=BENCH_CLUSTER, association_id=BENCH_ASSOCIATION_ID
                )
                return pending

            yield call
    elif kind == "aiobotocore":
        from aiobotocore.session import get_session

        if session is None:
            session = get_session()
        async with session.create_client(
            "eks",
            region_name=REGION,
            endpoint_url=url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        ) as client:

            def call() -> Awaitable[Any]:
                return client.describe_pod_identity_association(  # type: ignore[no-any-return]
                    clusterName=BENCH_CLUSTER, associationId=BENCH_ASSOCIATION_ID
                )

            yield call
    elif kind == "aiohttp":
        import aiohttp

        target = f"{url}/clusters/{BENCH_CLUSTER}/pod-identity-associations/{BENCH_ASSOCIATION_ID}"
        async with aiohttp.ClientSession() as http:

            async def get() -> Any:
                async with http.get(target) as resp:
                    body = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}")
                return json.loads(body)

            yield get
    else:
        raise ValueError(f"unknown client {kind!r}")


def check(kind: str, result: Any) -> None:
    """Fail loudly if a client did not get (and parse) the association."""
    if kind == "eks_async":
        got = result.association.association_id
        created = result.association.created_at
        ok = got == BENCH_ASSOCIATION_ID and created.tzinfo is not None
    elif kind == "aiobotocore":
        got = result["association"]["associationId"]
        ok = got == BENCH_ASSOCIATION_ID and result["association"]["createdAt"].tzinfo is not None
    else:
        ok = result["association"]["associationId"] == BENCH_ASSOCIATION_ID
    if not ok:
        raise RuntimeError(f"{kind}: unexpected answer {result!r}")


# --- tasks --------------------------------------------------------------------------------


async def _sequential(call: Call, n: int) -> dict[str, float]:
    gc.collect()
    wall0 = time.perf_counter()
    cpu0 = time.process_time()
    for _ in range(n):
        await call()
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    return {"calls": n, "cpu_per_call_ms": cpu / n * 1e3, "calls_per_s": n / wall,
            "wall_s": wall}


async def _concurrent(call: Call, n: int, concurrency: int) -> dict[str, float]:
    per_task = max(1, n // concurrency)
    total = per_task * concurrency

    async def worker() -> None:
        for _ in range(per_task):
            await call()

    gc.collect()
    wall0 = time.perf_counter()
    cpu0 = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    return {"calls": total, "concurrency": concurrency, "cpu_per_call_ms": cpu / total * 1e3,
            "calls_per_s": total / wall, "wall_s": wall}


async def task_calls(kind: str, url: str, n_seq: int, n_conc: int, concurrency: int,
                     warmup: int) -> dict[str, Any]:
    _import(kind)
    async with open_client(kind, url) as call:
        check(kind, await call())
        for _ in range(warmup):
            await call()
        # Open the connections the concurrent phase will use before timing it.
        await asyncio.gather(*(call() for _ in range(concurrency)))
        seq = await _sequential(call, n_seq)
        conc = await _concurrent(call, n_conc, concurrency)
    return {"sequential": seq, "concurrent": conc}


async def task_first(kind: str, url: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    _import(kind)
    imported = time.perf_counter() - t0
    gc.collect()
    if kind == "eks_async":
        import eks_async

        t0 = time.perf_counter()
        eks = make_eks(url)
        t1 = time.perf_counter()
        async with eks:
            result = await eks.describe_pod_identity_association(
                cluster_name=BENCH_CLUSTER, association_id=BENCH_ASSOCIATION_ID
            )
            t2 = time.perf_counter()
        # Warm figure: the cost of another client once everything is loaded.
        w0 = time.perf_counter()
        for _ in range(1000):
            eks_async.EKSClient(region=REGION, endpoint_url=url, aws_access_key_id=ACCESS_KEY,
                                aws_secret_access_key=SECRET_KEY)
        warm = (time.perf_counter() - w0) / 1000
    elif kind == "aiobotocore":
        from aiobotocore.session import get_session

        t0 = time.perf_counter()
        session = get_session()
        cm = session.create_client(
            "eks",
            region_name=REGION,
            endpoint_url=url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        client = await cm.__aenter__()
        t1 = time.perf_counter()
        try:
            result = await client.describe_pod_identity_association(
                clusterName=BENCH_CLUSTER, associationId=BENCH_ASSOCIATION_ID
            )
            t2 = time.perf_counter()
        finally:
            await cm.__aexit__(None, None, None)
        w0 = time.perf_counter()
        for _ in range(20):
            async with session.create_client(
                "eks", region_name=REGION, endpoint_url=url,
                aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            ):
                pass
        warm = (time.perf_counter() - w0) / 20
    else:
        import aiohttp

        target = f"{url}/clusters/{BENCH_CLUSTER}/pod-identity-associations/{BENCH_ASSOCIATION_ID}"
        t0 = time.perf_counter()
        session = aiohttp.ClientSession()
        t1 = time.perf_counter()
        async with session, session.get(target) as resp:
            result = json.loads(await resp.read())
        t2 = time.perf_counter()
        warm = float("nan")
    check(kind, result)
    return {
        "import_ms": imported * 1e3,
        "create_ms": (t1 - t0) * 1e3,
        "first_call_ms": (t2 - t1) * 1e3,
        "create_and_first_call_ms": (t2 - t0) * 1e3,
        "create_warm_ms": warm * 1e3,
    }


async def task_memory(kind: str, url: str, clients: int) -> dict[str, Any]:
    _import(kind)
    session: Any = None
    if kind == "aiobotocore":
        from aiobotocore.session import get_session

        session = get_session()  # one session, many clients
    gc.collect()
    base = rss_bytes()
    calls: list[Call] = []
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(clients):
            calls.append(await stack.enter_async_context(open_client(kind, url, session)))
        gc.collect()
        live = rss_bytes()
        for call in calls:
            check(kind, await call())
        gc.collect()
        after = rss_bytes()
    mib = 1024 * 1024
    return {
        "clients": clients,
        "baseline_mib": base / mib,
        "live_mib": (live - base) / mib,
        "after_call_mib": (after - base) / mib,
        "live_total_mib": live / mib,
        "after_call_total_mib": after / mib,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("task", choices=("calls", "first", "memory"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--n-seq", type=int, default=2000)
    parser.add_argument("--n-conc", type=int, default=4096)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to this CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    coro: Awaitable[dict[str, Any]]
    if args.task == "calls":
        coro = task_calls(args.kind, args.url, args.n_seq, args.n_conc, args.concurrency,
                          args.warmup)
    elif args.task == "first":
        coro = task_first(args.kind, args.url)
    else:
        coro = task_memory(args.kind, args.url, args.clients)

    async def run() -> dict[str, Any]:
        return await coro

    result = asyncio.run(run())
    result["kind"] = args.kind
    result["task"] = args.task
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
