"""Batch jobs at a service's rate limit: ``python -m benchmarks.throttle [--quick]``.

For each cell (limit in requests/s, its burst, calls, concurrency) and each client
(eks_async standard and adaptive, aiobotocore standard and adaptive), in turn:

1. a fresh emulator is served in its own process with ``--rate-limit RATE/BURST`` (a token
   bucket per account and region that starts full; a refused call is answered 429
   ``ThrottlingException`` and takes no token);
2. the client, in its own process, makes that many CreatePodIdentityAssociation calls
   (distinct service accounts), that many at a time, with its library's default retries
   in that mode (3 attempts, a retry quota of 500);
3. the emulator's own counters say how many answers were throttled.

Printed per run: fraction of the limit achieved (successful calls / seconds / limit; the
initial burst lets a perfect client reach slightly above 1), throttled answers per call,
calls failed, seconds. The emulator's counters are sampled every 0.25 s during the first
cell, for a chart of send rate and throttles over time (``results/throttle.png``, needs
matplotlib: ``pip install 'eks-async[bench]'``). Results go to ``results/throttle.json``.

The goal, for eks_async adaptive: at least 0.95 of the limit, at most 0.05
throttled answers per call, nothing failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .run import CHILD_CWD, RESULTS, child_env, run_json

__all__ = ["main"]

CLIENTS = (
    ("eks_async", "standard"),
    ("eks_async", "adaptive"),
    ("aiobotocore", "standard"),
    ("aiobotocore", "adaptive"),
)
ACCESS_KEY = "AKIDBENCH"
SECRET_KEY = "benchsecretbenchsecretbenchsecretbench00"
REGION = "us-west-2"
ROLE = "arn:aws:iam::123456789012:role/bench"
OPERATION = "CreatePodIdentityAssociation"


def burst_of(rate: float) -> int:
    """The bucket's burst for a limit: half a second's worth (20/s: 10), at least 1."""
    return max(1, round(rate / 2))


#: (rate, calls, concurrency). The first is the headline case: 600 creates at 64
#: concurrent into 20/s with a burst of 10; the others are the corners of 2..200 requests/s and 8..512
#: concurrent (and 20/s at 512), about 30 s of calls each.
CELLS: tuple[tuple[float, int, int], ...] = (
    (20, 600, 64),
    (2, 60, 8),
    (2, 60, 512),
    (20, 600, 512),
    (200, 6000, 8),
    (200, 6000, 512),
)
QUICK_CELLS: tuple[tuple[float, int, int], ...] = ((20, 600, 64), (200, 3000, 512))


# --- the client process ----------------------------------------------------------------------


async def _client_run(kind: str, mode: str, url: str, calls: int, concurrency: int) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    failed = 0
    errors: dict[str, int] = {}
    samples: list[tuple[float, float | None, float]] = []
    start = time.perf_counter()

    async def guarded(make: Any, i: int) -> None:
        nonlocal failed
        async with gate:
            try:
                await make(i)
            except Exception as exc:  # counted, by kind
                failed += 1
                name = type(exc).__name__
                errors[name] = errors.get(name, 0) + 1

    if kind == "eks_async":
        import eks_async

        limiter = eks_async.RateLimiter() if mode == "adaptive" else None
        retry = eks_async.RetryConfig(mode=mode, limiter=limiter)  # type: ignore[arg-type]
        async with eks_async.EKSClient(
            region=REGION, endpoint_url=url, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, retry=retry,
        ) as eks:

            async def create(i: int) -> None:
                await eks.create_pod_identity_association(
                    cluster_name="prod", namespace="bench", service_account=f"sa-{i:05d}",
                    role_arn=ROLE,
                )

            async def sample() -> None:
                while limiter is not None:
                    samples.append((time.perf_counter() - start, limiter.target_rate,
                                    limiter.measured_rate))
                    await asyncio.sleep(0.25)

            sampler = asyncio.ensure_future(sample())
            start = time.perf_counter()
            await asyncio.gather(*(guarded(create, i) for i in range(calls)))
            took = time.perf_counter() - start
            sampler.cancel()
    else:
        from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
        from aiobotocore.session import get_session  # type: ignore[import-untyped]

        async with get_session().create_client(
            "eks", region_name=REGION, endpoint_url=url, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=AioConfig(retries={"mode": mode}, max_pool_connections=concurrency),
        ) as client:

            async def create_boto(i: int) -> None:
                await client.create_pod_identity_association(
                    clusterName="prod", namespace="bench", serviceAccount=f"sa-{i:05d}",
                    roleArn=ROLE,
                )

            start = time.perf_counter()
            await asyncio.gather(*(guarded(create_boto, i) for i in range(calls)))
            took = time.perf_counter() - start
    return {"ok": calls - failed, "failed": failed, "errors": errors, "took": took,
            "samples": samples}


# --- the emulator process --------------------------------------------------------------------


@contextlib.contextmanager
def emulator(rate: float, burst: int, env: dict[str, str]) -> Iterator[str]:
    """A fresh emulator with a rate limit, in its own process: its URL."""
    RESULTS.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "eks_async.testing", "--instant", "--cluster", "prod",
         "--no-verify-signatures", "--rate-limit", f"{rate:g}/{burst}"],
        env=env, cwd=CHILD_CWD, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"the emulator did not start: {url!r}")
        # Whatever else it prints is read and dropped, so its pipe never fills up.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def counters(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/_emulator/counters", timeout=10) as resp:
        data: dict[str, Any] = json.loads(resp.read())
    ops = data.get("operations", data)
    counts: dict[str, int] = ops.get(OPERATION, {})
    return counts


class Sampler(threading.Thread):
    """Reads the emulator's counters every 0.25 s: (seconds, ok, throttled) since start."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.points: list[tuple[float, int, int]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        start = time.perf_counter()
        while not self.stopping.is_set():
            with contextlib.suppress(OSError, ValueError):
                c = counters(self.url)
                self.points.append(
                    (time.perf_counter() - start, c.get("ok", 0), c.get("rate_limited", 0))
                )
            self.stopping.wait(0.25)


# --- the driver ------------------------------------------------------------------------------


def run_cell(rate: float, calls: int, concurrency: int, kind: str, mode: str,
             env: dict[str, str], chart: bool) -> dict[str, Any]:
    burst = burst_of(rate)
    with emulator(rate, burst, env) as url:
        sampler = Sampler(url) if chart else None
        if sampler is not None:
            sampler.start()
        out = run_json(
            ["-m", "benchmarks.throttle", "--client", kind, "--mode", mode, "--url", url,
             "--calls", str(calls), "--concurrency", str(concurrency)],
            env, timeout=900,
        )
        if sampler is not None:
            sampler.stopping.set()
            sampler.join()
        final = counters(url)
    throttled = final.get("rate_limited", 0)
    return {
        "rate": rate, "burst": burst, "calls": calls, "concurrency": concurrency,
        "client": kind, "mode": mode, "ok": out["ok"], "failed": out["failed"],
        "errors": out["errors"], "seconds": round(out["took"], 2),
        "fraction": round(out["ok"] / out["took"] / rate, 3),
        "throttled_per_call": round(throttled / calls, 3), "throttled": throttled,
        "timeline": sampler.points if sampler is not None else [],
        "limiter": out["samples"],
    }


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| limit (burst) | calls x concurrency | client | mode | of the limit | "
        "throttled per call | failed | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        # With calls failed, the fraction counts only those that succeeded, until the last
        # call ended: not a figure to compare.
        fraction = f"({r['fraction']:.2f})" if r["failed"] else f"{r['fraction']:.2f}"
        lines.append(
            f"| {r['rate']:g}/s ({r['burst']}) | {r['calls']} x {r['concurrency']} | "
            f"{r['client']} | {r['mode']} | {fraction} | "
            f"{r['throttled_per_call']:.3f} | {r['failed']} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def verdict(rows: Sequence[dict[str, Any]]) -> list[str]:
    out = []
    for r in rows:
        if r["client"] == "eks_async" and r["mode"] == "adaptive":
            ok = r["fraction"] >= 0.95 and r["throttled_per_call"] <= 0.05 and r["failed"] == 0
            out.append(
                f"{'PASS' if ok else 'MISS'} eks_async adaptive {r['rate']:g}/s x "
                f"{r['concurrency']}: {r['fraction']:.2f} of the limit, "
                f"{r['throttled_per_call']:.3f} throttled per call, {r['failed']} failed"
            )
    return out


COLORS = {
    ("eks_async", "standard"): "tab:blue",
    ("eks_async", "adaptive"): "tab:green",
    ("aiobotocore", "standard"): "tab:red",
    ("aiobotocore", "adaptive"): "tab:orange",
}


def chart(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Send rate and throttles over time, one line per client, for the first cell.

    Each run's time starts at the emulator's first answer (the client's process starts
    a moment after the sampling does).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = [r for r in rows if r["timeline"]]
    if not first:
        return
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    for r in first:
        points = r["timeline"]
        color = COLORS[r["client"], r["mode"]]
        label = f"{r['client']} {r['mode']}"
        busy = [i for i, (_, ok, th) in enumerate(points) if ok + th > 0]
        if not busy:
            continue
        points = points[max(0, busy[0] - 1):]
        origin = points[0][0]
        times, sent, refused = [], [], []
        for (t0, ok0, th0), (t1, ok1, th1) in itertools.pairwise(points):
            span = t1 - t0
            if span <= 0:
                continue
            times.append(t1 - origin)
            sent.append((ok1 - ok0 + th1 - th0) / span)
            refused.append((th1 - th0) / span)
        top.plot(times, _smooth(sent, 4), color=color, label=label)
        bottom.plot(times, _smooth(refused, 4), color=color, label=label)
        if r["limiter"]:
            top.plot([s[0] for s in r["limiter"]],
                     [float("nan") if s[1] is None else s[1] for s in r["limiter"]],
                     color=color, linestyle="--", linewidth=1,
                     label=f"{label}: limiter target")
    rate = first[0]["rate"]
    top.axhline(rate, color="grey", linewidth=0.8)
    top.set_ylabel("requests sent per s (1 s mean)")
    top.set_ylim(0, rate * 3)
    bottom.set_yscale("symlog", linthresh=1.0)
    bottom.set_ylim(bottom=0)
    bottom.set_ylabel("throttled answers per s (1 s mean)")
    bottom.set_xlabel("seconds")
    top.set_title(
        f"{first[0]['calls']} creates, {first[0]['concurrency']} concurrent, into "
        f"{rate:g} requests/s (burst {first[0]['burst']})"
    )
    top.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _smooth(values: list[float], n: int) -> list[float]:
    out = []
    for i in range(len(values)):
        window = values[max(0, i - n + 1): i + 1]
        out.append(sum(window) / len(window))
    return out


def _cell(text: str) -> tuple[float, int, int]:
    """``RATE/CALLSxCONCURRENCY``, e.g. ``2/60x8``."""
    rate, _, rest = text.partition("/")
    calls, _, concurrency = rest.partition("x")
    return float(rate), int(calls), int(concurrency)


def _client(text: str) -> tuple[str, str]:
    """``KIND/MODE``, e.g. ``eks_async/adaptive``."""
    kind, _, mode = text.partition("/")
    if (kind, mode) not in CLIENTS:
        raise SystemExit(f"unknown client {text!r}")
    return kind, mode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="two cells: about 4 minutes")
    # Hidden: a subset, e.g. --cells 2/60x8,2/60x512 --clients eks_async/adaptive
    parser.add_argument("--cells", help=argparse.SUPPRESS)
    parser.add_argument("--clients", help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:  # one client run, in its own process
        result = asyncio.run(
            _client_run(args.client, args.mode, args.url, args.calls, args.concurrency)
        )
        print(json.dumps(result))
        return 0

    env = child_env()
    rows: list[dict[str, Any]] = []
    cells = QUICK_CELLS if args.quick else CELLS
    if args.cells:
        cells = tuple(_cell(c) for c in args.cells.split(","))
    clients = CLIENTS
    if args.clients:
        clients = tuple(_client(c) for c in args.clients.split(","))
    started = time.perf_counter()
    for n, (rate, calls, concurrency) in enumerate(cells):
        for kind, mode in clients:
            row = run_cell(rate, calls, concurrency, kind, mode, env, chart=n == 0)
            rows.append(row)
            print(
                f"{rate:>5g}/s  {calls:>5} x {concurrency:<3}  {kind:<11} {mode:<8}  "
                f"{row['fraction']:.2f} of the limit  {row['throttled_per_call']:.3f} "
                f"throttled/call  {row['failed']:>4} failed  {row['seconds']:6.1f} s",
                flush=True,
            )
    # A subset (--cells, --clients) leaves the full run's results and chart alone.
    name = "throttle-subset" if args.cells or args.clients else "throttle"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(rows, indent=1))
    print()
    print(table(rows))
    print()
    print("\n".join(verdict(rows)))
    try:
        chart(rows, RESULTS / f"{name}.png")
        print(f"\nchart: {RESULTS / f'{name}.png'}")
    except ImportError:
        print("\nno chart: matplotlib is not installed (pip install 'eks-async[bench]')")
    print(f"took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
