"""``python -m eks_async.testing``: serve an emulator over HTTP until interrupted.

The first line on stdout is the URL to use as ``endpoint_url``; the test credentials and
the admin API's address follow on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

from ._config import Delays, EmulatorConfig
from ._emulator import EKSEmulator
from ._signing import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m eks_async.testing",
        description="Serve a local EKS emulator (identity operations) over HTTP.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument("--seed", type=int, default=0, help="seed for ids, delays and faults")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="EKS seconds per real second (60: a 25-minute update takes 25 s)",
    )
    parser.add_argument(
        "--instant", action="store_true", help="no delays: every change is seen at once"
    )
    parser.add_argument(
        "--no-verify-signatures",
        dest="verify_signatures",
        action="store_false",
        help="accept requests whatever their signature",
    )
    return parser


async def _serve(emulator: EKSEmulator, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on every OS
            loop.add_signal_handler(sig, stop.set)
    async with emulator.serve(host=host, port=port) as url:
        print(url, flush=True)
        print(
            f"eks_async emulator at {url} (access key {TEST_ACCESS_KEY_ID}, "
            f"secret {TEST_SECRET_ACCESS_KEY}, admin API {url}/_emulator/); "
            "stop with Ctrl-C",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = EmulatorConfig(
            seed=args.seed,
            time_scale=args.time_scale,
            verify_signatures=args.verify_signatures,
            delays=Delays.none() if args.instant else Delays(),
        )
    except (TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(EKSEmulator(config), args.host, args.port))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
