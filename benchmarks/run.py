"""Run every benchmark in one go: ``python -m benchmarks`` (``--quick`` for a short run).

eks_async against aiobotocore (and raw aiohttp as the floor) on the same local server, in
the same run, each client in its own fresh process, repetitions alternating (A B C A B C
...). Prints a markdown table (medians over repetitions, min-max in brackets, and the
eks_async ÷ aiobotocore ratio taken within each repetition) with PASS/MISS against the
targets of issue 7, and writes everything to ``benchmarks/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
# Child processes run here, not in the checkout: ``python -m``/``-c`` put their working
# directory first on sys.path, which would shadow ``--eks-path``.
CHILD_CWD = RESULTS
KINDS = ("eks_async", "aiobotocore", "aiohttp")
IMPORTS = {"eks_async": "eks_async", "aiobotocore": "aiobotocore.session"}
# Where the benchmark processes import eks_async from (default: this checkout).
_EKS_PATH: list[Path] = []


def set_eks_path(path: Path) -> None:
    """Benchmark the eks_async package in ``path`` (e.g. a worktree of another revision)."""
    path = path.resolve()
    if not (path / "eks_async" / "__init__.py").is_file():
        raise SystemExit(f"{path} has no eks_async package")
    _EKS_PATH[:] = [path]


@dataclass(frozen=True)
class Settings:
    reps: int
    n_seq: int
    n_conc: int
    concurrency: int
    warmup: int
    import_reps: int
    first_reps: int
    memory_reps: int
    clients: int
    waiter_runs: int
    delay: float
    pin: bool


DEFAULT = Settings(reps=5, n_seq=2000, n_conc=4096, concurrency=64, warmup=300,
                   import_reps=7, first_reps=5, memory_reps=3, clients=100,
                   waiter_runs=2, delay=5.0, pin=False)
QUICK = Settings(reps=2, n_seq=1000, n_conc=2048, concurrency=64, warmup=200,
                 import_reps=3, first_reps=2, memory_reps=1, clients=100,
                 waiter_runs=1, delay=5.0, pin=False)


# --- processes ----------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    """The environment of every benchmark process.

    No AWS settings from this machine reach either client (no profile, no CA bundle, no
    IMDS); byte-code caches go to a private, git-ignored folder so that every import after
    the warm-up is warm for both libraries (this repository's checkout has no ``.pyc``
    files, and PYTHONDONTWRITEBYTECODE may be set).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(RESULTS / ".pycache")
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [*map(str, _EKS_PATH), str(ROOT), env.get("PYTHONPATH")])
    )
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def run_json(args: Sequence[str], env: dict[str, str], timeout: float = 300) -> dict[str, Any]:
    """Run ``python args...`` and return the JSON object on its last line of stdout."""
    proc = subprocess.run([sys.executable, *args], env=env, cwd=CHILD_CWD, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"{' '.join(args)} printed nothing:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


class Server:
    """The benchmark server in its own process."""

    def __init__(self, env: dict[str, str], delay: float, cpu: int | None) -> None:
        args = [sys.executable, "-m", "benchmarks.server", "--watch-stdin",
                "--delay", str(delay)]
        if cpu is not None:
            args += ["--cpu", str(cpu)]
        self.proc = subprocess.Popen(args, env=env, cwd=CHILD_CWD, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.close()
            raise RuntimeError(f"the benchmark server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line)}"

    def stats(self) -> dict[str, float]:
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/__stats", timeout=5) as resp:
            stats: dict[str, float] = json.loads(resp.read())
        return stats

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=5)


# --- statistics ---------------------------------------------------------------------------


def spread(values: Sequence[float]) -> dict[str, Any]:
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return {"median": math.nan, "min": math.nan, "max": math.nan, "values": list(values)}
    return {"median": statistics.median(clean), "min": min(clean), "max": max(clean),
            "values": list(values)}


def fmt(s: dict[str, Any] | None, digits: int = 2) -> str:
    if s is None or math.isnan(s["median"]):
        return "-"
    med, lo, hi = s["median"], s["min"], s["max"]
    if len(s["values"]) == 1:
        return f"{med:,.{digits}f}"
    return f"{med:,.{digits}f} ({lo:,.{digits}f}-{hi:,.{digits}f})"


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    digits: int
    # ratio target: ("<=", 0.5) / (">=", 2.0); absolute: ("abs<", 1.0) on eks_async's value
    target: tuple[str, float] | None = None


FIGURES = (
    Figure("cpu_seq", "CPU per call, sequential (ms)", 3, ("<=", 0.5)),
    Figure("cpu_conc", "CPU per call, 64 concurrent (ms)", 3, ("<=", 0.5)),
    Figure("rps_seq", "calls/s, sequential", 0),
    Figure("rps_conc", "calls/s, 64 concurrent", 0, (">=", 2.0)),
    Figure("import", "import time (ms)", 1, ("<=", 0.4)),
    Figure("import_no_click", "import time, click not importable (ms)", 1),
    Figure("create", "create a client, cold (ms)", 3, ("abs<", 1.0)),
    Figure("create_warm", "create a client, warm (ms)", 4),
    Figure("first", "create + first call (ms)", 1, ("<=", 0.2)),
    Figure("cold_start", "import + create + first call (ms)", 1),
    Figure("mem_live", "RSS for 100 live clients (MiB over baseline)", 1),
    Figure("mem_after", "RSS after one call each (MiB over baseline)", 1),
)


def _ratio_digits(ratio: dict[str, Any] | None) -> int:
    if ratio is None or math.isnan(ratio["median"]) or ratio["median"] >= 0.1:
        return 2
    return 4 if ratio["median"] < 0.01 else 3


def target_text(target: tuple[str, float] | None) -> str:
    if target is None:
        return ""
    op, value = target
    if op == "abs<":
        return f"eks_async < {value:g} ms"
    return f"{'≤' if op == '<=' else '≥'} {value:g}x"


def verdict(target: tuple[str, float] | None, ratio: dict[str, Any] | None,
            eks: dict[str, Any] | None) -> str:
    if target is None:
        return ""
    op, value = target
    if op == "abs<":
        ok = eks is not None and eks["median"] < value
    elif ratio is None or math.isnan(ratio["median"]):
        return "n/a"
    elif op == "<=":
        ok = ratio["median"] <= value
    else:
        ok = ratio["median"] >= value
    return "PASS" if ok else "MISS"


# --- phases -------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def client_args(kind: str, task: str, url: str, s: Settings, cpu: int | None) -> list[str]:
    args = ["-m", "benchmarks.clients", kind, task, "--url", url,
            "--n-seq", str(s.n_seq), "--n-conc", str(s.n_conc),
            "--concurrency", str(s.concurrency), "--warmup", str(s.warmup),
            "--clients", str(s.clients)]
    if cpu is not None:
        args += ["--cpu", str(cpu)]
    return args


def alternate(label: str, reps: int, kinds: Sequence[str],
              one: Callable[[str, int], dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for rep in range(reps):
        for kind in kinds:
            t0 = time.perf_counter()
            out[kind].append(one(kind, rep))
            log(f"  {label} rep {rep + 1}/{reps} {kind}: {time.perf_counter() - t0:.1f} s")
    return out


def import_once(module: str, env: dict[str, str], hide_click: bool = False) -> float:
    """ms to import ``module`` in a fresh process.

    ``hide_click``: as if click were not installed. httpx imports its own command line
    (click, rich, pygments: ~40 ms) whenever click is importable, and both eks_async and
    aiobotocore import httpx; click is in this venv through the test extras (moto[server]
    needs flask, which needs click), not through eks_async.
    """
    hide = "import sys; sys.modules['click'] = None; " if hide_click else ""
    code = (hide + "import time, json; t = time.perf_counter(); import " + module +
            "; d = time.perf_counter() - t; import sys; "
            "print(json.dumps({'ms': d * 1e3, 'botocore': 'botocore' in sys.modules, "
            "'aiohttp': 'aiohttp' in sys.modules}))")
    return float(run_json(["-c", code], env)["ms"])


def botocore_check(env: dict[str, str]) -> dict[str, Any]:
    code = ("import sys, json; import eks_async; "
            "print(json.dumps({'file': eks_async.__file__, "
            "'botocore': 'botocore' in sys.modules, "
            "'aiobotocore': 'aiobotocore' in sys.modules, 'aiohttp': 'aiohttp' in sys.modules, "
            "'modules': len(sys.modules)}))")
    return run_json(["-c", code], env)


def ratio_series(a: Sequence[float], b: Sequence[float]) -> list[float]:
    return [x / y if y else math.nan for x, y in zip(a, b, strict=False)]


def run_all(s: Settings) -> dict[str, Any]:
    env = child_env()
    RESULTS.mkdir(parents=True, exist_ok=True)
    CHILD_CWD.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    server_cpu = 1 if s.pin else None
    client_cpu = 0 if s.pin else None
    server = Server(env, s.delay, server_cpu)
    log(f"server at {server.url}")
    raw: dict[str, Any] = {}
    try:
        # Warm-up: compile byte code for both libraries, open nothing that stays.
        t0 = time.perf_counter()
        for kind in KINDS:
            run_json(client_args(kind, "first", server.url, s, client_cpu), env)
        log(f"warm-up: {time.perf_counter() - t0:.1f} s")

        log("imports")
        raw["import"] = alternate("import", s.import_reps, list(IMPORTS), lambda kind, _rep: {
            "ms": import_once(IMPORTS[kind], env),
            "ms_no_click": import_once(IMPORTS[kind], env, hide_click=True),
        })
        raw["import_eks_async_modules"] = probe = botocore_check(env)
        if _EKS_PATH and not probe["file"].startswith(str(_EKS_PATH[0])):
            raise SystemExit(f"eks_async came from {probe['file']}, not {_EKS_PATH[0]}")
        log(f"eks_async: {probe['file']}")

        log("create + first call")
        raw["first"] = alternate("first", s.first_reps, KINDS, lambda kind, _rep: run_json(
            client_args(kind, "first", server.url, s, client_cpu), env))

        log("calls")
        before = server.stats()
        raw["calls"] = alternate("calls", s.reps, KINDS, lambda kind, _rep: run_json(
            client_args(kind, "calls", server.url, s, client_cpu), env))
        after = server.stats()
        served = after["requests"] - before["requests"] - 1
        raw["server"] = {"requests": served,
                         "cpu_per_request_ms": (after["cpu"] - before["cpu"]) / served * 1e3}

        log("memory")
        raw["memory"] = alternate("memory", s.memory_reps, KINDS, lambda kind, _rep: run_json(
            client_args(kind, "memory", server.url, s, client_cpu), env))

        log("waiter (real time)")
        t0 = time.perf_counter()
        raw["waiter"] = run_json(["-m", "benchmarks.waiter", "--url", server.url,
                                  "--runs", str(s.waiter_runs), "--delay", str(s.delay)], env)
        log(f"  waiter: {time.perf_counter() - t0:.1f} s")
    finally:
        server.close()
    return {"raw": raw, "elapsed_s": time.perf_counter() - started}


def summarize(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """figure -> {kind: spread, "ratio": spread of per-repetition eks_async/aiobotocore}."""
    series: dict[str, dict[str, list[float]]] = {}

    def put(fig: str, kind: str, values: list[float]) -> None:
        series.setdefault(fig, {})[kind] = values

    for kind, reps in raw["calls"].items():
        put("cpu_seq", kind, [r["sequential"]["cpu_per_call_ms"] for r in reps])
        put("cpu_conc", kind, [r["concurrent"]["cpu_per_call_ms"] for r in reps])
        put("rps_seq", kind, [r["sequential"]["calls_per_s"] for r in reps])
        put("rps_conc", kind, [r["concurrent"]["calls_per_s"] for r in reps])
    for kind, reps in raw["import"].items():
        put("import", kind, [r["ms"] for r in reps])
        put("import_no_click", kind, [r["ms_no_click"] for r in reps])
    for kind, reps in raw["first"].items():
        put("create", kind, [r["create_ms"] for r in reps])
        put("create_warm", kind, [r["create_warm_ms"] for r in reps])
        put("first", kind, [r["create_and_first_call_ms"] for r in reps])
        # Same process: its own import, then the client and the first call.
        put("cold_start", kind, [r["import_ms"] + r["create_and_first_call_ms"] for r in reps])
    for kind, reps in raw["memory"].items():
        put("mem_live", kind, [r["live_mib"] for r in reps])
        put("mem_after", kind, [r["after_call_mib"] for r in reps])

    summary: dict[str, dict[str, Any]] = {}
    for fig, by_kind in series.items():
        summary[fig] = {kind: spread(values) for kind, values in by_kind.items()}
        if "eks_async" in by_kind and "aiobotocore" in by_kind:
            summary[fig]["ratio"] = spread(ratio_series(by_kind["eks_async"],
                                                        by_kind["aiobotocore"]))
    return summary


def waiter_summary(w: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in ("waiter", "fixed_1s"):
        runs = w.get(name)
        if not runs:
            continue
        out[name] = {
            "polls": spread([float(r["polls"]) for r in runs]),
            "requests": spread([float(r["requests"]) for r in runs]),
            "visible_to_return_s": spread([r["visible_to_return_s"] for r in runs]),
            "create_to_return_s": spread([r["create_to_return_s"] for r in runs]),
        }
    return out


def markdown(summary: dict[str, dict[str, Any]], waiters: dict[str, dict[str, Any]],
             meta: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    lines = [
        f"### eks_async vs aiobotocore — {meta['date']} ({meta['cpus']} CPUs, "
        f"Python {meta['python']}, {meta['mode']} run, {meta['elapsed_s']:.0f} s)",
        "",
        f"eks_async from `{meta['eks_async_source']}`; aiobotocore "
        f"{meta['versions'].get('aiobotocore')}, botocore {meta['versions'].get('botocore')}, "
        f"aiohttp {meta['versions'].get('aiohttp')}.",
        "",
        f"Medians over repetitions (min-max). Calls: {meta['settings']['reps']} alternating "
        f"repetitions of {meta['settings']['n_seq']} sequential and "
        f"{meta['settings']['n_conc']} calls at {meta['settings']['concurrency']} concurrent "
        "(DescribePodIdentityAssociation), each client in a fresh process. The ratio is "
        "eks_async ÷ aiobotocore within each repetition.",
        "",
        "| Figure | eks_async | aiobotocore | aiohttp (floor) | eks_async ÷ aiobotocore "
        "| Target | Result |",
        "|---|---|---|---|---|---|---|",
    ]
    targets: list[dict[str, Any]] = []
    for fig in FIGURES:
        row = summary.get(fig.key)
        if row is None:
            continue
        ratio = row.get("ratio")
        result = verdict(fig.target, ratio, row.get("eks_async"))
        lines.append(
            f"| {fig.label} | {fmt(row.get('eks_async'), fig.digits)} "
            f"| {fmt(row.get('aiobotocore'), fig.digits)} | {fmt(row.get('aiohttp'), fig.digits)} "
            f"| {fmt(ratio, _ratio_digits(ratio))}{'x' if ratio else ''} "
            f"| {target_text(fig.target)} "
            f"| {result} |"
        )
        if fig.target is not None:
            targets.append({"figure": fig.key, "label": fig.label,
                            "target": target_text(fig.target), "result": result,
                            "ratio": None if ratio is None else ratio["median"],
                            "eks_async": row["eks_async"]["median"]})
    w = waiters
    lines += [
        "",
        f"Waiter efficiency (association visible {meta['settings']['delay']:g} s after create; "
        f"{meta['settings']['waiter_runs']} run(s), real time):",
        "",
        "| Strategy | polls | HTTP requests | visible → return (s) | create → return (s) |",
        "|---|---|---|---|---|",
    ]
    for name, label in (("waiter", "eks.waiters.pod_identity_association_visible"),
                        ("fixed_1s", "fixed 1 s poll loop (Describe, then List)")):
        if name not in w:
            continue
        lines.append(f"| {label} | {fmt(w[name]['polls'], 0)} | {fmt(w[name]['requests'], 0)} "
                     f"| {fmt(w[name]['visible_to_return_s'], 2)} "
                     f"| {fmt(w[name]['create_to_return_s'], 2)} |")
    imp = meta["import_eks_async"]
    lines += [
        "",
        "The fixed loop polls at 0, 1, 2, ... s (plus a few ms per call), so with a 5 s delay it "
        "polls just after the association appears: its lag is at most 1 s, about 0.5 s on "
        "average when the delay is not a whole number of seconds.",
        f"Server: {meta['server']['cpu_per_request_ms'] * 1e3:.0f} µs CPU per request "
        "(its own process). `import eks_async` imports botocore: "
        f"{'YES' if imp['botocore'] else 'no'}; aiohttp: {'yes' if imp['aiohttp'] else 'no'} "
        "(eks_async's default path is its own HTTP/1.1 client; aiohttp is imported only for a "
        "proxy from the environment).",
        "Import: `import eks_async` vs `import aiobotocore.session`, fresh process each, warm "
        "byte code. httpx imports its own CLI (click, rich, pygments) when click is importable, "
        "as in this dev venv; the second import row hides click.",
        "Memory is RSS over the process's RSS after the imports (one aiobotocore session "
        "for its 100 clients).",
    ]
    return "\n".join(lines), targets


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a ~30 s run with fewer repetitions")
    parser.add_argument("--reps", type=int, help="repetitions of the calls benchmark")
    parser.add_argument("--pin", action="store_true",
                        help="pin the server to CPU 1 and the clients to CPU 0")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--eks-path", type=Path, default=None,
                        help="benchmark the eks_async package found in this folder instead")
    args = parser.parse_args(argv)
    if args.eks_path:
        set_eks_path(args.eks_path)
    settings = QUICK if args.quick else DEFAULT
    if args.reps is not None or args.pin:
        from dataclasses import replace

        settings = replace(settings, reps=args.reps or settings.reps, pin=args.pin)

    run = run_all(settings)
    raw = run["raw"]
    summary = summarize(raw)
    waiters = waiter_summary(raw["waiter"])
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mode": "quick" if args.quick else "default",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "elapsed_s": run["elapsed_s"],
        "settings": settings.__dict__,
        "versions": _versions(),
        "server": raw["server"],
        "import_eks_async": raw["import_eks_async_modules"],
        "eks_async_source": _eks_source(),
    }
    table, targets = markdown(summary, waiters, meta)
    print(table, flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(
        {"meta": meta, "summary": summary, "targets": targets, "waiter": waiters,
         "markdown": table, "raw": raw},
        indent=2, default=str,
    ) + "\n")
    log(f"wrote {args.output}")


def _eks_source() -> str:
    """The folder eks_async was imported from, with its git revision when it has one."""
    where = _EKS_PATH[0] if _EKS_PATH else ROOT
    try:
        rev = subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "eks_async"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(where)
    return f"{where} @ {rev}{' + uncommitted changes' if dirty else ''}"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("eks-async", "aiobotocore", "botocore", "aiohttp", "httpx"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "?"
    return out


if __name__ == "__main__":
    main()
