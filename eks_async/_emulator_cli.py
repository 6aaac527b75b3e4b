"""The emulator's command line: one definition for ``eks-async emulator`` and ``python -m
eks_async.testing``.

``add_arguments`` puts the flags on a parser, ``config_from_args`` turns them into an
``EmulatorConfig``, and ``run`` serves until SIGINT or SIGTERM. The first line on stdout is
the emulator's URL (scripts read it); stderr says how to reach it: the credentials to sign
with, the region, the admin API and each ``--cluster``'s Kubernetes endpoint.

It lives outside ``eks_async.testing`` and imports that package only once an emulator
starts, so building the ``eks-async`` parser stays cheap: kubectl runs ``eks-async token``
before every command it sends to a cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .testing import EKSEmulator, EmulatorConfig

__all__ = ["FAULT_FLAGS", "add_arguments", "build_parser", "config_from_args", "main", "run"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

#: Each ``FaultRates`` field that is a chance per call, and its flag.
FAULT_FLAGS: dict[str, str] = {
    "throttle": "--throttle-rate",
    "server_error": "--server-error-rate",
    "unavailable": "--unavailable-rate",
    "drop_before": "--drop-before-rate",
    "drop_after": "--drop-after-rate",
    "fail_update": "--fail-update-rate",
}

_FAULT_HELP = {
    "throttle": "chance a call is throttled (HTTP 429)",
    "server_error": "chance a call fails with 500 ServerException",
    "unavailable": "chance a call fails with 503 ServiceUnavailableException",
    "drop_before": "chance the connection closes before the call is acted on",
    "drop_after": "chance the call is acted on, then the connection closes unanswered",
    "fail_update": "chance an identity provider call's Update ends Failed",
}


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan  # refused just below
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def parse_rate_limit(text: str) -> tuple[float, int | None]:
    """``RATE`` or ``RATE/BURST``: calls per second, and how many may come at once."""
    rate_text, sep, burst_text = text.partition("/")
    rate = _positive(rate_text)
    if not sep:
        return rate, None
    try:
        burst = int(burst_text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected RATE or RATE/BURST with a whole BURST, got {text!r}"
        ) from None
    if burst < 1:
        raise argparse.ArgumentTypeError(f"BURST must be at least 1, got {text!r}")
    return rate, burst


def parse_latency(text: str) -> tuple[float, float]:
    """``SECONDS`` or ``LOW:HIGH`` (EKS seconds)."""
    low_text, sep, high_text = text.partition(":")
    try:
        low = float(low_text)
        high = float(high_text) if sep else low
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SECONDS or LOW:HIGH, got {text!r}") from None
    if not 0.0 <= low <= high or high == float("inf"):
        raise argparse.ArgumentTypeError(f"expected 0 <= LOW <= HIGH, got {text!r}")
    return low, high


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The emulator's flags, the same for both commands that serve it."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for ids, delays and faults (default 0)"
    )
    parser.add_argument(
        "--time-scale",
        type=_positive,
        default=1.0,
        metavar="SCALE",
        help="EKS seconds per real second (60: a 25-minute update takes 25 s; default 1)",
    )
    parser.add_argument(
        "--instant", action="store_true", help="no delays: every change is seen at once"
    )
    parser.add_argument(
        "--cluster",
        action="append",
        default=[],
        metavar="NAME",
        help="start with this cluster, ACTIVE, its Kubernetes endpoint served (repeatable)",
    )
    faults = parser.add_argument_group(
        "faults",
        "chances per call, each 0 to 1; throttle, error, unavailable and drop together at "
        "most 1",
    )
    for field, flag in FAULT_FLAGS.items():
        names = [flag, "--error-rate"] if field == "server_error" else [flag]
        faults.add_argument(
            *names, dest=f"fault_{field}", type=_rate, default=0.0, metavar="P",
            help=_FAULT_HELP[field],
        )
    faults.add_argument(
        "--latency",
        type=parse_latency,
        default=None,
        metavar="SECONDS[:MAX]",
        help="extra time before each answer, in EKS seconds (a range: drawn between)",
    )
    faults.add_argument(
        "--throttle-code",
        choices=("ThrottlingException", "TooManyRequestsException"),
        default="ThrottlingException",
        help="the error a throttled call gets (default ThrottlingException)",
    )
    parser.add_argument(
        "--rate-limit",
        type=parse_rate_limit,
        default=None,
        metavar="RATE[/BURST]",
        help="throttle beyond RATE calls per second, BURST at once (per account and region)",
    )
    parser.add_argument(
        "--no-verify-signatures",
        "--no-verify",
        dest="verify_signatures",
        action="store_false",
        help="accept requests whatever their signature",
    )


def build_parser(prog: str = "python -m eks_async.testing") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve a local EKS emulator over HTTP until interrupted; the first line "
        "on stdout is its URL.",
    )
    add_arguments(parser)
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """The ``EmulatorConfig`` the flags ask for (``ValueError`` if they contradict)."""
    from .testing import Delays, EmulatorConfig, FaultRates
    from .testing._config import RateLimit

    rates: dict[str, Any] = {field: getattr(args, f"fault_{field}") for field in FAULT_FLAGS}
    if args.latency is not None:
        rates["latency"] = list(args.latency)
    rate_limit = None
    if args.rate_limit is not None:
        rate, burst = args.rate_limit
        rate_limit = RateLimit(rate=rate) if burst is None else RateLimit(rate=rate, burst=burst)
    return EmulatorConfig(
        seed=args.seed,
        time_scale=args.time_scale,
        verify_signatures=args.verify_signatures,
        delays=Delays.none() if args.instant else Delays(),
        faults=FaultRates(**rates),
        throttle_code=args.throttle_code,
        rate_limit=rate_limit,
    )


def _settings(config: EmulatorConfig, instant: bool) -> str:
    from .testing import FaultRates

    parts = ["no delays" if instant else f"time scale {config.time_scale:g}"]
    if config.rate_limit is not None:
        parts.append(f"rate limit {config.rate_limit.rate:g}/s (burst {config.rate_limit.burst})")
    if config.faults != FaultRates():
        chances = ", ".join(
            f"{field.replace('_', ' ')} {getattr(config.faults, field):g}"
            for field in FAULT_FLAGS
            if getattr(config.faults, field)
        )
        parts.append(f"faults: {chances}" if chances else "faults: latency only")
    parts.append("signatures checked" if config.verify_signatures else "signatures not checked")
    return "; ".join(parts)


def _kubernetes_served(emulator: EKSEmulator) -> bool:
    """Whether the emulator can serve Kubernetes endpoints (its CA needs ``cryptography``).

    When it cannot, the server says why as it starts (one warning naming the extra to
    install); the cluster lines only point at that.
    """
    try:
        emulator.kubernetes_ca_pem  # noqa: B018 - made here, reused by the server
    except ImportError:
        return False
    return True


def _endpoints(emulator: EKSEmulator, names: Sequence[str]) -> dict[str, str]:
    """Each named cluster's Kubernetes endpoint, as DescribeCluster gives it."""
    served = emulator.kubernetes_endpoints()
    return {name: served.get(name, "(none)") for name in names}


def _cluster_lines(endpoints: dict[str, str], served: bool) -> list[str]:
    if not served:
        return [f"cluster {name}: ACTIVE, no Kubernetes endpoint (see above)" for name in endpoints]
    return [f"cluster {name}: Kubernetes endpoint {url}" for name, url in endpoints.items()]


async def serve(
    config: EmulatorConfig,
    *,
    host: str,
    port: int,
    clusters: Sequence[str] = (),
    instant: bool = False,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (by default: SIGINT or SIGTERM)."""
    import attrs

    from .testing import EKSEmulator, FaultRates
    from .testing._signing import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY

    out = stdout or sys.stdout
    err = stderr or sys.stderr
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not on every OS
                loop.add_signal_handler(sig, stop.set)
    # Set up with faults and rate limit off, so the set-up's own calls always succeed; the
    # configuration asked for applies before the URL is shown.
    emulator = EKSEmulator(
        attrs.evolve(config, faults=FaultRates(), operation_faults={}, rate_limit=None)
    )
    names = list(dict.fromkeys(clusters))
    for name in names:
        emulator.add_cluster(name)
    served = _kubernetes_served(emulator)
    async with emulator.serve(host=host, port=port) as url:
        endpoints = _endpoints(emulator, names)
        emulator.configure(config)
        print(url, file=out, flush=True)
        lines = [
            f"eks_async emulator at {url} ({_settings(config, instant)})",
            "sign requests with the emulator's test credentials:",
            f"  export AWS_ACCESS_KEY_ID={TEST_ACCESS_KEY_ID}",
            f"  export AWS_SECRET_ACCESS_KEY={TEST_SECRET_ACCESS_KEY}",
            f"  export AWS_DEFAULT_REGION={config.default_region}",
            f"admin API: {url}/_emulator/",
            *_cluster_lines(endpoints, served),
            "stop with Ctrl-C",
        ]
        print("\n".join(lines), file=err, flush=True)
        await stop.wait()


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Serve as ``args`` says until interrupted; the exit status."""
    try:
        config = config_from_args(args)
    except (TypeError, ValueError) as exc:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        asyncio.run(
            serve(
                config,
                host=args.host,
                port=args.port,
                clusters=args.cluster,
                instant=args.instant,
            )
        )
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # whoever read the URL has gone: nothing left to tell
        return EXIT_OK
    except OSError as exc:
        print(f"{parser.prog}: error: cannot listen on {args.host}:{args.port}: {exc}",
              file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def main(argv: Sequence[str] | None = None, prog: str = "python -m eks_async.testing") -> int:
    parser = build_parser(prog)
    return run(parser.parse_args(argv), parser)
