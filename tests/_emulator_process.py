"""``eks-async emulator`` in a process of its own, for tests that drive it from outside."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parent.parent

#: Hang guard for reads from, and the end of, the process (never a measure of speed).
HANG_GUARD = 60.0


def eks_async_command() -> list[str]:
    """The ``eks-async`` console script of this environment, else ``python -m eks_async``."""
    script = Path(sys.executable).parent / "eks-async"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "eks_async"]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without AWS settings, importing eks_async from this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env.update(extra or {})
    return env


@attrs.define
class Served:
    """A running emulator process: its URL, and the stderr it has written so far."""

    process: subprocess.Popen[str]
    url: str
    _lines: queue.Queue[str | None]
    stderr: list[str] = attrs.field(factory=list)

    def stderr_until(self, text: str) -> list[str]:
        """stderr's lines up to the first that contains ``text`` (hang-guarded)."""
        while not any(text in line for line in self.stderr):
            line = self._lines.get(timeout=HANG_GUARD)
            if line is None:
                raise AssertionError(f"stderr ended before {text!r}: {self.stderr}")
            self.stderr.append(line.rstrip("\n"))
        return self.stderr

    def stop(self, sig: int = signal.SIGINT) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=HANG_GUARD)


def _pump(stream: Iterable[str], into: queue.Queue[str | None]) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


@contextlib.contextmanager
def emulator_process(*flags: str, command: list[str] | None = None) -> Iterator[Served]:
    """Start ``eks-async emulator FLAGS``, read its URL; kill it on the way out."""
    process = subprocess.Popen(
        [*(command or [*eks_async_command(), "emulator"]), *flags],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        first: queue.Queue[str | None] = queue.Queue()
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(process.stdout, first), daemon=True).start()
        threading.Thread(target=_pump, args=(process.stderr, lines), daemon=True).start()
        url = first.get(timeout=HANG_GUARD)
        if url is None:
            rest = []
            while (line := lines.get(timeout=HANG_GUARD)) is not None:
                rest.append(line)
            raise AssertionError(f"the emulator printed no URL: {''.join(rest)}")
        yield Served(process, url.strip(), lines)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=HANG_GUARD)
