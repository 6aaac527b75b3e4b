"""Where eks_async's per-call time goes: ``python -m benchmarks.profile``.

Sections (markdown on stdout, everything in ``benchmarks/results/profile.json``):

1. Stage costs: each piece of the per-call path timed on its own (µs per call, warm).
2. cProfile of the sequential loop, grouped by module, and the top functions.
3. py-spy (``--gil``: Python CPU only) of the same loop, when py-spy is on PATH or given
   with ``--py-spy``.
4. ``python -X importtime -c "import eks_async"``: the biggest imports, who imports them,
   and whether botocore is among them.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .run import (
    CHILD_CWD,
    RESULTS,
    Server,
    child_env,
    log,
    run_json,
    set_eks_path,
)
from .server import BENCH_ASSOCIATION_ID, BENCH_CLUSTER, bench_body

__all__ = ["main"]


# --- 1. stage costs -----------------------------------------------------------------------


def _per_call_us(fn: Callable[[], object], number: int = 20000) -> float:
    timer = timeit.Timer(fn)
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def stage_costs(url: str) -> list[tuple[str, float | None]]:
    """µs per call of each stage, as ``_pipeline._Call.attempt`` runs them (private APIs)."""
    import datetime

    import httpx

    from eks_async import _pipeline
    from eks_async._auth.credentials import Credentials
    from eks_async._auth.sigv4 import SigV4Signer
    from eks_async._generated import operations as ops
    from eks_async._response import ResponseMetadata
    from eks_async._restjson.parse import parse_output
    from eks_async._restjson.serialize import serialize

    op = ops.DESCRIBE_POD_IDENTITY_ASSOCIATION
    values = (BENCH_CLUSTER, BENCH_ASSOCIATION_ID)
    path, _ = serialize(op, values)
    full = f"{url}{path}"
    aws_url = f"https://eks.us-west-2.amazonaws.com{path}"
    signer = SigV4Signer(service="eks", region="us-west-2")
    creds = Credentials(access_key_id="AKIDBENCH", secret_access_key="secret")
    now = datetime.datetime.now(datetime.UTC)
    timeout = {"connect": 10.0, "read": 60.0, "write": 60.0, "pool": 10.0}
    answer = bench_body()

    def signed() -> dict[str, str]:
        headers = {"User-Agent": _pipeline._USER_AGENT}
        signer.sign_headers(method="GET", url=full, headers=headers, body=b"",
                            credentials=creds, now=now)
        return headers

    headers = signed()
    request = httpx.Request("GET", full, headers=headers, content=b"",
                            extensions={"timeout": timeout})
    raw_answer_headers = [
        (b"Date", b"Sun, 22 Nov 2026 20:40:27 GMT"), (b"Content-Type", b"application/json"),
        (b"Content-Length", str(len(answer)).encode()),
        (b"x-amzn-RequestId", b"00000000-0000-4000-8000-000000000001"),
        (b"Connection", b"keep-alive"),
    ]

    def response() -> httpx.Response:
        r = httpx.Response(200, headers=raw_answer_headers, stream=httpx.ByteStream(answer),
                           request=request)
        r.read()
        return r

    resp = response()

    stages: list[tuple[str, Callable[[], object]]] = [
        ("serialize(): path + body", lambda: serialize(op, values)),
        ("datetime.now(UTC)", lambda: datetime.datetime.now(datetime.UTC)),
        ("SigV4 sign_headers()", signed),
        ("httpx.Request(...), URL 127.0.0.1:port",
         lambda: httpx.Request("GET", full, headers=headers, content=b"",
                               extensions={"timeout": timeout})),
        ("httpx.Request(...), URL eks.us-west-2.amazonaws.com",
         lambda: httpx.Request("GET", aws_url, headers=headers, content=b"",
                               extensions={"timeout": timeout})),
        ("httpx.Response(...) + read()", response),
        ("response.headers.get(request id)", lambda: resp.headers.get("x-amzn-requestid")),
        ("parse_output(): JSON + typed output", lambda: parse_output(op, 200, answer, "rid")),
        ("  of which json.loads", lambda: json.loads(answer)),
        ("  of which ResponseMetadata(...)",
         lambda: ResponseMetadata(request_id="r", http_status=200, attempts=1, retry_wait=0.0)),
    ]
    out: list[tuple[str, float | None]] = []
    for label, fn in stages:
        try:
            out.append((label, _per_call_us(fn)))
        except Exception as exc:  # a private API changed under us
            log(f"stage {label!r} failed: {exc!r}")
            out.append((label, None))
    return out


# --- 2. cProfile --------------------------------------------------------------------------


def _group(filename: str) -> str:
    f = filename.replace("\\", "/")
    m = re.search(r"/eks_async/(.+?)\.py$", f)
    if m:
        return "eks_async." + m.group(1).replace("/", ".")
    m = re.search(r"/site-packages/([^/]+)", f)
    if m:
        return m.group(1).removesuffix(".py")
    m = re.search(r"/lib/python3\.\d+/([^/]+)", f)
    if m:
        name = m.group(1).removesuffix(".py")
        return name if name in ("asyncio", "json") else f"stdlib {name}"
    if "benchmarks/" in f:
        return "benchmarks (the loop)"
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins / C"
    return "other"


def _group_short(path: str) -> str:
    """The group of a py-spy frame's short path (``aiohttp/client.py``, ``json/decoder.py``)."""
    if path.startswith("eks_async/"):
        return "eks_async." + path.removeprefix("eks_async/").removesuffix(".py").replace("/", ".")
    if path.startswith("benchmarks/"):
        return "benchmarks (the loop)"
    if path.startswith("<attrs generated"):
        return "attrs-generated __init__ (output classes)"
    head = path.split("/", 1)[0].removesuffix(".py")
    return head if "/" in path or head in ("asyncio", "json") else f"stdlib {head}"


async def _loop(url: str, n: int, prof: cProfile.Profile) -> float:
    import eks_async

    async with eks_async.EKSClient(region="us-west-2", endpoint_url=url,
                                   aws_access_key_id="AKIDBENCH",
                                   aws_secret_access_key="secret") as eks:
        for _ in range(300):
            await eks.describe_pod_identity_association(
                cluster_name=BENCH_CLUSTER, association_id=BENCH_ASSOCIATION_ID)
        cpu0 = time.process_time()
        prof.enable()
        for _ in range(n):
            await eks.describe_pod_identity_association(
                cluster_name=BENCH_CLUSTER, association_id=BENCH_ASSOCIATION_ID)
        prof.disable()
        return (time.process_time() - cpu0) / n * 1e3


def cprofile(url: str, n: int) -> dict[str, Any]:
    prof = cProfile.Profile()
    cpu_ms = asyncio.run(_loop(url, n, prof))
    stats = pstats.Stats(prof)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    groups: collections.Counter[str] = collections.Counter()
    funcs: list[tuple[float, int, str]] = []
    for (filename, line, name), (_cc, ncalls, tottime, _cum, _callers) in raw.items():
        groups[_group(filename)] += tottime
        short = re.sub(r"^.*/(site-packages|lib/python3\.\d+|main)/", "", filename)
        funcs.append((tottime, ncalls, f"{short}:{line}({name})"))
    funcs.sort(reverse=True)
    return {
        "calls": n,
        "cpu_per_call_ms_under_profiler": cpu_ms,
        "total_tottime_s": total,
        "by_group": [(g, t / total * 100) for g, t in groups.most_common()],
        "top": [(f, t / total * 100, c // n if c >= n else c) for t, c, f in funcs[:25]],
    }


# --- 3. py-spy ----------------------------------------------------------------------------


def pyspy(url: str, exe: str, env: dict[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        raw_path = os.path.join(tmp, "eks.raw")
        proc = subprocess.run(
            [exe, "record", "--gil", "-r", "1000", "-f", "raw", "-o", raw_path, "--",
             sys.executable, "-m", "benchmarks.clients", "eks_async", "calls", "--url", url,
             "--n-seq", "6000", "--n-conc", "64"],
            env=env, cwd=CHILD_CWD, capture_output=True, text=True, check=False, timeout=300,
        )
        if proc.returncode != 0 or not os.path.exists(raw_path):
            return {"error": proc.stderr[-500:]}
        with open(raw_path) as fh:
            lines = fh.read().splitlines()
    total = 0
    own: collections.Counter[str] = collections.Counter()
    groups: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if "_sequential" not in stack:
            continue
        n = int(count)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        total += n
        leaf = frames[-1]
        own[leaf] += n
        m = re.search(r"\(([^()]*)\)$", leaf)
        groups[_group_short(m.group(1) if m else leaf)] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return {"error": "no samples"}
    keys = ("_Call.attempt", "PoolTransport.send", "HttpxTransport.send",
            "Request.__init__ (httpx", "SigV4Signer.sign_headers",
            "parse_output", "Response.read (httpx", "Response.__init__ (httpx",
            "RequestPlan.serialize", "StaticCredentialsProvider.get_credentials")
    picked = []
    for key in keys:
        hits = [(count_, frame) for frame, count_ in inclusive.items() if key in frame]
        if hits:
            best, frame = max(hits)
            picked.append((frame, best / total * 100))
    return {
        "samples": total,
        "by_group_self": [(g, n / total * 100) for g, n in groups.most_common(15)],
        "top_self": [(f, n / total * 100) for f, n in own.most_common(20)],
        "inclusive": picked,
    }


# --- 4. import time -------------------------------------------------------------------------


def import_profile(env: dict[str, str], module: str = "eks_async",
                   runs: int = 5) -> dict[str, Any]:
    parsed_runs: list[list[tuple[int, int, int, str]]] = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                              env=env, cwd=CHILD_CWD, capture_output=True, text=True,
                              check=True)
        rows = []
        for line in proc.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
            if m:
                rows.append((int(m.group(1)), int(m.group(2)), len(m.group(3)), m.group(4)))
        parsed_runs.append(rows)
    # The run whose total is the median one.
    parsed_runs.sort(key=lambda rows: rows[-1][1] if rows else 0)
    rows = parsed_runs[len(parsed_runs) // 2]
    # importtime prints a child before its parent; a parent is the next line indented less.
    parent: dict[int, str] = {}
    edges: list[tuple[str, str, int]] = []
    for i, (_self, cum, depth, name) in enumerate(rows):
        for j in range(i + 1, len(rows)):
            if rows[j][2] < depth:
                parent[i] = rows[j][3]
                break
        edges.append((parent.get(i, "<top>"), name, cum))
    names = {name for *_, name in rows}
    first_party_edges = sorted(
        ((p, c, cum) for p, c, cum in edges
         if p.startswith("eks_async") and not c.startswith("eks_async")),
        key=lambda e: -e[2],
    )
    probe = run_json(["-c", (
        "import sys, json, time; t = time.perf_counter(); import " + module + "; "
        "print(json.dumps({'ms': (time.perf_counter() - t) * 1e3, "
        "'botocore': sorted(m for m in sys.modules if m.split('.')[0] in "
        "('botocore', 'aiobotocore', 'aiohttp', 'boto3'))}))")], env)
    return {
        "total_ms": rows[-1][1] / 1e3 if rows else None,
        "top_self": sorted(((n, s / 1e3) for s, _c, _d, n in rows), key=lambda x: -x[1])[:15],
        "top_cumulative": sorted(((n, c / 1e3) for _s, c, d, n in rows if d <= 6),
                                 key=lambda x: -x[1])[:20],
        "third_party_from_eks_async": [(p, c, cum / 1e3) for p, c, cum in first_party_edges][:15],
        "botocore_imported": any(n.split(".")[0] in ("botocore", "aiobotocore") for n in names),
        "heavy_modules_loaded": probe["botocore"],
    }


# --- report -------------------------------------------------------------------------------


def _f(s: dict[str, Any], digits: int) -> str:
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def report(result: dict[str, Any]) -> str:
    out: list[str] = ["## eks_async per-call profile", ""]
    stages = result.get("stages")
    if stages:
        out += ["### 1. Stage costs (µs per call, warm, min of 5 timeit runs)", "",
                "| Stage | µs |", "|---|---|"]
        out += [f"| {label} | {'n/a' if us is None else f'{us:.1f}'} |" for label, us in stages]
        out.append("")
    cp = result.get("cprofile")
    if cp:
        out += [f"### 2. cProfile, {cp['calls']} sequential calls "
                f"({cp['cpu_per_call_ms_under_profiler']:.3f} ms CPU per call under the "
                "profiler), share of tottime", "", "| Module group | % |", "|---|---|"]
        out += [f"| {g} | {p:.1f} |" for g, p in cp["by_group"][:14]]
        out += ["", "| Function (self time) | % | calls per call |", "|---|---|---|"]
        out += [f"| `{f}` | {p:.1f} | {c} |" for f, p, c in cp["top"][:20]]
        out.append("")
    ps = result.get("pyspy")
    if ps and "error" not in ps:
        out += [f"### 3. py-spy --gil, sequential loop ({ps['samples']} samples)", "",
                "| Inclusive | % |", "|---|---|"]
        out += [f"| `{f}` | {p:.1f} |" for f, p in ps["inclusive"]]
        out += ["", "| Self, by module group | % |", "|---|---|"]
        out += [f"| {g} | {p:.1f} |" for g, p in ps["by_group_self"]]
        out.append("")
    elif ps:
        out += ["### 3. py-spy: " + ps["error"].strip().splitlines()[-1], ""]
    imp = result.get("imports")
    if imp:
        out += [f"### 4. `import eks_async`: {imp['total_ms']:.1f} ms under -X importtime; "
                f"botocore imported: {'YES' if imp['botocore_imported'] else 'no'} "
                f"(aiohttp/botocore modules loaded: {len(imp['heavy_modules_loaded'])})", "",
                "| eks_async module | imports | cumulative ms |", "|---|---|---|"]
        out += [f"| {p} | {c} | {ms:.1f} |" for p, c, ms in imp["third_party_from_eks_async"]]
        out += ["", "| Module (self time) | ms |", "|---|---|"]
        out += [f"| {n} | {ms:.1f} |" for n, ms in imp["top_self"][:12]]
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls under cProfile")
    parser.add_argument("--py-spy", default=shutil.which("py-spy"),
                        help="path of py-spy (default: from PATH; skipped when absent)")
    parser.add_argument("--eks-path", type=Path, default=None,
                        help="profile the eks_async package found in this folder instead")
    args = parser.parse_args(argv)
    if args.eks_path:
        set_eks_path(args.eks_path)
        sys.path.insert(0, str(args.eks_path.resolve()))  # for the in-process sections
    env = child_env()
    # This process runs eks_async too: same byte-code cache and AWS isolation.
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    for key in [k for k in os.environ if k.startswith("AWS_") and k not in env]:
        del os.environ[key]
    RESULTS.mkdir(parents=True, exist_ok=True)
    server = Server(env, 5.0, None)
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    try:
        log("stage costs")
        result["stages"] = stage_costs(server.url)
        log("cProfile")
        result["cprofile"] = cprofile(server.url, args.calls)
        if args.py_spy:
            log("py-spy")
            result["pyspy"] = pyspy(server.url, args.py_spy, env)
        log("import time")
        result["imports"] = import_profile(env)
    finally:
        server.close()
    text = report(result)
    print(text)
    result["markdown"] = text
    (RESULTS / "profile.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    log(f"wrote {RESULTS / 'profile.json'}")


if __name__ == "__main__":
    main()
