"""A minimal keep-alive HTTP/1.1 server that answers like EKS, for the benchmarks.

Run it in its own process (``python -m benchmarks.server``): it prints its port on the
first line of stdout and serves until terminated (or, with ``--watch-stdin``, until
its stdin closes). It is a plain
``asyncio.Protocol`` (no streams, no uvloop, no framework) with the hot answer prebuilt,
so it costs a few tens of microseconds of CPU per request.

Routes (EKS's rest-json wire format, as aiobotocore and eks_async expect it):

* ``GET /clusters/{name}/pod-identity-associations/{id}``: DescribePodIdentityAssociation.
  ``a-bench...`` ids are always visible; ids made by Create are answered 404
  ``ResourceNotFoundException`` until ``--delay`` seconds after their creation.
* ``GET /clusters/{name}/pod-identity-associations?namespace=&serviceAccount=``:
  ListPodIdentityAssociations, with the same propagation delay.
* ``POST /clusters/{name}/pod-identity-associations``: CreatePodIdentityAssociation.
* ``GET /__stats``: requests served and the server's own CPU seconds (not an EKS route).
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import itertools
import json
import os
import signal
import sys
import time
from typing import Any
from urllib.parse import parse_qsl, unquote

__all__ = ["BENCH_ASSOCIATION_ID", "BENCH_CLUSTER", "bench_body", "main"]

BENCH_CLUSTER = "bench"
BENCH_ASSOCIATION_ID = "a-bench0000000000000"
ACCOUNT = "111122223333"
CREATED_AT = 1_700_000_000.123

_PREFIX = "/clusters/"
_ASSOC = "/pod-identity-associations"


def association(cluster: str, assoc_id: str, namespace: str, service_account: str,
                role_arn: str, created_at: float) -> dict[str, Any]:
    """A PodIdentityAssociation as EKS returns it (epoch-float timestamps)."""
    return {
        "clusterName": cluster,
        "namespace": namespace,
        "serviceAccount": service_account,
        "roleArn": role_arn,
        "associationArn": (
            f"arn:aws:eks:us-west-2:{ACCOUNT}:podidentityassociation/{cluster}/{assoc_id}"
        ),
        "associationId": assoc_id,
        "tags": {"team": "payments"},
        "createdAt": created_at,
        "modifiedAt": created_at,
        "disableSessionTags": False,
    }


def bench_body() -> bytes:
    """The DescribePodIdentityAssociation answer the benchmark calls get."""
    return _State(0.0).bench_body


def _summary(a: dict[str, Any]) -> dict[str, Any]:
    return {k: a[k] for k in ("clusterName", "namespace", "serviceAccount", "associationArn",
                              "associationId")}


class _State:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.requests = 0
        self.ids = itertools.count(1)
        # id -> (association, visible_at monotonic)
        self.created: dict[str, tuple[dict[str, Any], float]] = {}
        self.date = ""
        self.date_at = 0.0
        bench = association(BENCH_CLUSTER, BENCH_ASSOCIATION_ID, "payments", "api",
                            f"arn:aws:iam::{ACCOUNT}:role/payments-api", CREATED_AT)
        self.bench_body = json.dumps({"association": bench}).encode()
        self.bench_summary = _summary(bench)
        self.request_ids = itertools.count(1)

    def http_date(self) -> str:
        now = time.time()
        if now - self.date_at >= 1.0:
            self.date_at = float(int(now))
            self.date = email.utils.formatdate(self.date_at, usegmt=True)
        return self.date


def _response(state: _State, status: int, body: bytes, extra: str = "") -> bytes:
    reason = {200: "OK", 404: "Not Found", 400: "Bad Request"}.get(status, "Error")
    rid = f"00000000-0000-4000-8000-{next(state.request_ids):012x}"
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        f"Date: {state.http_date()}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"x-amzn-RequestId: {rid}\r\n"
        f"{extra}"
        "Connection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


def _not_found(state: _State, what: str) -> bytes:
    body = json.dumps({"message": f"No {what} found."}).encode()
    return _response(state, 404, body, "x-amzn-ErrorType: ResourceNotFoundException:\r\n")


def _visible(state: _State, assoc_id: str, now: float) -> dict[str, Any] | None:
    entry = state.created.get(assoc_id)
    if entry is None or now < entry[1]:
        return None
    return entry[0]


def handle(state: _State, method: str, target: str, body: bytes) -> bytes:
    """The full HTTP response for one request."""
    state.requests += 1
    path, _, query = target.partition("?")
    if path == "/__stats":
        stats = {"requests": state.requests, "cpu": time.process_time()}
        return _response(state, 200, json.dumps(stats).encode())
    if not path.startswith(_PREFIX):
        return _response(state, 404, b'{"message": "no such route"}')
    rest = path[len(_PREFIX):]
    cluster, _, tail = rest.partition("/")
    cluster = unquote(cluster)
    now = time.monotonic()
    if tail.startswith(_ASSOC[1:] + "/") and method == "GET":
        assoc_id = unquote(tail[len(_ASSOC):])
        if assoc_id == BENCH_ASSOCIATION_ID:
            return _response(state, 200, state.bench_body)
        found = _visible(state, assoc_id, now)
        if found is None:
            return _not_found(state, f"association {assoc_id}")
        return _response(state, 200, json.dumps({"association": found}).encode())
    if tail == _ASSOC[1:] and method == "GET":
        params = dict(parse_qsl(query))
        out = [state.bench_summary] if cluster == BENCH_CLUSTER else []
        for assoc_id in list(state.created):
            found = _visible(state, assoc_id, now)
            if (
                found is not None
                and found["clusterName"] == cluster
                and params.get("namespace", found["namespace"]) == found["namespace"]
                and params.get("serviceAccount", found["serviceAccount"])
                == found["serviceAccount"]
            ):
                out.append(_summary(found))
        return _response(state, 200, json.dumps({"associations": out}).encode())
    if tail == _ASSOC[1:] and method == "POST":
        data = json.loads(body or b"{}")
        assoc_id = f"a-{next(state.ids):017d}"
        created = association(cluster, assoc_id, data.get("namespace", "default"),
                              data.get("serviceAccount", "default"), data.get("roleArn", ""),
                              round(time.time(), 3))
        state.created[assoc_id] = (created, now + state.delay)
        return _response(state, 200, json.dumps({"association": created}).encode())
    return _response(state, 404, b'{"message": "no such route"}')


class _Protocol(asyncio.Protocol):
    __slots__ = ("buffer", "state", "transport")

    def __init__(self, state: _State) -> None:
        self.state = state
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buffer + data if self.buffer else data
        out: list[bytes] = []
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].decode("latin-1")
            request_line, _, headers = head.partition("\r\n")
            length = 0
            lowered = headers.lower()
            at = lowered.find("content-length:")
            if at >= 0:
                stop = lowered.find("\r\n", at)
                length = int(lowered[at + 15 : stop if stop >= 0 else None])
            if len(buf) < end + 4 + length:
                break
            body = buf[end + 4 : end + 4 + length]
            buf = buf[end + 4 + length :]
            method, target, _ = request_line.split(" ", 2)
            out.append(handle(self.state, method, target, body))
        self.buffer = buf
        if out and self.transport is not None:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])


async def serve(host: str, port: int, delay: float, watch_stdin: bool = False) -> None:
    loop = asyncio.get_running_loop()
    state = _State(delay)
    server = await loop.create_server(lambda: _Protocol(state), host, port, backlog=1024)
    sock_port = server.sockets[0].getsockname()[1]
    print(sock_port, flush=True)
    stop: asyncio.Future[None] = loop.create_future()

    def request_stop() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop)
    if watch_stdin:  # stop when the parent goes away (its end of our stdin closes)
        loop.add_reader(sys.stdin.fileno(), request_stop)
    async with server:
        await stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=5.0,
                        help="seconds before a created association is visible")
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    parser.add_argument("--watch-stdin", action="store_true",
                        help="exit when stdin reaches EOF (the benchmark runner's pipe)")
    args = parser.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    asyncio.run(serve(args.host, args.port, args.delay, args.watch_stdin))


if __name__ == "__main__":
    main()
