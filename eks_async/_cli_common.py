"""What every ``eks-async`` command shares: the client, flags, waiter pacing, and the wait
in progress (so an interrupted or timed-out wait can say how to resume it)."""

from __future__ import annotations

import argparse
import contextlib
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import attrs

from ._cli_output import Progress, UsageError, print_data
from ._client import EKSClient
from ._waiters.engine import WaiterConfig


class _Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> Awaitable[None]: ...


#: Tests set this to the emulator's clock (a ``ManualClock``), so waits pass in EKS time
#: rather than wall time. ``None``: the waiters' own clock.
waiter_clock: _Clock | None = None


def waiter_config(args: argparse.Namespace, base: WaiterConfig) -> WaiterConfig | None:
    """The pacing for one wait: ``base`` (the waiter's default) with ``--max-wait`` and the
    test clock applied; ``None`` when neither is set (the waiter keeps its own default)."""
    max_wait = getattr(args, "max_wait", None)
    if max_wait is None and waiter_clock is None:
        return None
    config = base
    if max_wait is not None:
        config = attrs.evolve(config, max_wait=max_wait)
    if waiter_clock is not None:
        config = attrs.evolve(config, clock=waiter_clock.monotonic, sleep=waiter_clock.sleep)
    return config


def positive_seconds(text: str) -> float:
    """``--max-wait``'s type: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def add_max_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-wait", type=positive_seconds, metavar="SECONDS",
        help="give up waiting after this long (default: the waiter's own)",
    )


def make_client(args: argparse.Namespace) -> EKSClient:
    return EKSClient(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url)


def tags(pairs: Sequence[str] | None) -> dict[str, str] | None:
    """``--tag KEY=VALUE`` (repeatable) as a mapping."""
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"argument --tag: expected KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


@attrs.define
class Pending:
    """A wait under way for something that already exists (or is already gone)."""

    #: What was done, naming the id: ``association a-123 in cluster prod was created``.
    what: str
    #: The command after the global flags that waits again: ``pod-identity wait ...``.
    resume: list[str]
    #: Prints the result of the call that came before the wait (its output on stdout).
    result: Callable[[], None] | None = None


class Session:
    """One run of a command: its arguments, its progress display, the wait under way."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.progress = Progress()
        self.pending: Pending | None = None
        #: Clients opened and not yet closed (SIGTERM reports the client closed).
        self.open_clients = 0

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[EKSClient]:
        """The command's client, closed on the way out, however the command ends."""
        eks = make_client(self.args)
        self.open_clients += 1
        try:
            yield eks
        finally:
            await eks.aclose()
            self.open_clients -= 1

    @property
    def output(self) -> str:
        return str(self.args.output)

    def print(self, data: dict[str, Any]) -> None:
        print_data(self.output, data)

    def config(self, base: WaiterConfig) -> WaiterConfig | None:
        return waiter_config(self.args, base)

    async def waiting(
        self,
        what: str,
        resume: list[str],
        wait: Awaitable[Any],
        result: Callable[[], None] | None = None,
    ) -> Any:
        """Await ``wait``; meanwhile an interruption or a timeout can say ``what`` was done
        and print the command that ``resume``s the wait (with this run's global flags)."""
        self.pending = Pending(what=what, resume=resume, result=result)
        value = await wait
        self.pending = None
        return value

    def resume_command(self, tail: Sequence[str]) -> str:
        """The whole command line that runs ``tail`` as this run was run (same program,
        same region, profile, endpoint and output)."""
        from ._kubeconfig import exec_command

        args = self.args
        flags: list[str] = []
        for flag, dest in (
            ("--region", "region"), ("--profile", "profile"), ("--endpoint-url", "endpoint_url"),
        ):
            value = getattr(args, dest, None)
            if value:
                flags += [flag, str(value)]
        if args.output != "json":
            flags += ["--output", args.output]
        max_wait = getattr(args, "max_wait", None)
        extra = ["--max-wait", f"{max_wait:g}"] if max_wait is not None else []
        return shlex.join([*exec_command(), *flags, *tail, *extra])
