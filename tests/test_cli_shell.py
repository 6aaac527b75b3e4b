"""eks-async as shells run it: a kubeconfig exec entry that works outside the virtual
environment, and a reader that stops early (``eks-async token ... | head -c 10``)."""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from eks_async._cli import EXIT_BROKEN_PIPE, main
from eks_async._kubeconfig import exec_command
from eks_async.testing import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    EKSEmulator,
    run_emulator_server,
)

from ._emulator_process import HANG_GUARD, child_env

SCRIPT = Path(sys.executable).parent / "eks-async"
needs_script = pytest.mark.skipif(
    not SCRIPT.is_file(), reason="the eks-async console script is not installed next to Python"
)
#: A PATH without the virtual environment's bin folder (nor any other eks-async).
BARE_PATH = os.pathsep.join(
    p for p in ("/usr/local/bin", "/usr/bin", "/bin")
    if os.path.isdir(p) and not os.path.exists(os.path.join(p, "eks-async"))
)
SIGN = {"AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY}


def _script(folder: Path, name: str = "eks-async") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n", encoding="utf-8")
    path.chmod(0o755)
    return path


# --- which command the kubeconfig names -----------------------------------------------------


def test_exec_command_is_bare_only_when_path_finds_this_very_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = _script(tmp_path / "venv" / "bin")
    monkeypatch.setattr(sys, "argv", [str(running), "kubeconfig"])
    assert exec_command(path=str(tmp_path / "venv" / "bin")) == ["eks-async"]
    assert exec_command(path=BARE_PATH) == [str(running)]
    # Another eks-async first on PATH (another environment's): this one, by its path.
    other = _script(tmp_path / "other" / "bin")
    assert exec_command(path=os.pathsep.join([str(other.parent), str(running.parent)])) == [
        str(running)
    ]
    # Started by a relative path: written absolute all the same.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["venv/bin/eks-async", "kubeconfig"])
    assert exec_command(path=BARE_PATH) == [str(running)]


def test_exec_command_when_run_as_a_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["/somewhere/eks_async/__main__.py", "kubeconfig"])
    python = tmp_path / "env" / "bin" / "python"
    monkeypatch.setattr(sys, "executable", str(python))
    # No script installed next to this Python: the interpreter runs the module.
    assert exec_command(path=BARE_PATH) == [str(python), "-m", "eks_async"]
    # The script installed next to it: that one, by its path unless PATH finds it.
    script = _script(python.parent)
    assert exec_command(path=BARE_PATH) == [str(script)]
    assert exec_command(path=str(python.parent)) == ["eks-async"]


@pytest.fixture
def emulator() -> Iterator[tuple[EKSEmulator, str]]:
    emulator = EKSEmulator()
    emulator.add_cluster("prod")
    with run_emulator_server(emulator) as server:
        yield emulator, server.url


@needs_script
def test_the_kubeconfig_entry_runs_from_a_shell_without_the_virtual_environment(
    emulator: tuple[EKSEmulator, str], tmp_path: Path
) -> None:
    server, url = emulator
    kubeconfig = tmp_path / "config"
    # Without the virtual environment on PATH, as in a shell where it is not activated.
    env = child_env({"PATH": BARE_PATH, "KUBECONFIG": str(kubeconfig), **SIGN})
    env.pop("VIRTUAL_ENV", None)
    written = subprocess.run(
        [str(SCRIPT), "--region", "us-west-2", "--endpoint-url", url, "kubeconfig",
         "--cluster-name", "prod"],
        env=env, capture_output=True, text=True, timeout=HANG_GUARD,
    )
    assert written.returncode == 0, written.stderr
    exec_entry = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))["users"][0]["user"]["exec"]
    assert exec_entry["command"] == str(SCRIPT)
    assert shutil.which("eks-async", path=BARE_PATH) is None
    # What kubectl does: run the entry's command (here through a shell with that PATH).
    line = shlex.join([exec_entry["command"], *exec_entry["args"]])
    ran = subprocess.run(["/bin/sh", "-c", line], env=env, capture_output=True, text=True,
                         timeout=HANG_GUARD)
    assert ran.returncode == 0, ran.stderr
    token = json.loads(ran.stdout)["status"]["token"]
    assert server.review_token(token, "prod").authenticated

    # With the environment's bin on PATH, the entry names the program bare.
    on_path = {**env, "PATH": os.pathsep.join([str(SCRIPT.parent), BARE_PATH])}
    again = subprocess.run(
        [str(SCRIPT), "--region", "us-west-2", "--endpoint-url", url, "kubeconfig",
         "--cluster-name", "prod"],
        env=on_path, capture_output=True, text=True, timeout=HANG_GUARD,
    )
    assert again.returncode == 0, again.stderr
    users = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))["users"]
    assert [u["user"]["exec"]["command"] for u in users] == ["eks-async"]


# --- a reader that goes away ----------------------------------------------------------------


def _token_argv() -> list[str]:
    program = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "eks_async"]
    return [*program, "--region", "us-west-2", "token", "--cluster-name", "prod"]


def test_a_closed_pipe_ends_quietly_with_141() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before a byte is written
    try:
        process = subprocess.Popen(
            _token_argv(), env=child_env(SIGN), stdout=write_end, stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write_end)
    try:
        _, err = process.communicate(timeout=HANG_GUARD)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == EXIT_BROKEN_PIPE == 141
    assert err == ""  # no traceback, no "Exception ignored" at exit


@pytest.mark.skipif(shutil.which("head") is None, reason="no head command")
def test_token_piped_into_head_ends_without_a_traceback() -> None:
    line = shlex.join(_token_argv()) + " | head -c 10"
    result = subprocess.run(["/bin/sh", "-c", line], env=child_env(SIGN), capture_output=True,
                            text=True, timeout=HANG_GUARD)
    assert result.stdout == '{"kind": "'
    assert "Traceback" not in result.stderr and "Exception" not in result.stderr
    assert result.returncode == 0  # the pipeline's status is head's


class _Gone(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_main_reports_a_closed_stdout_as_141(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SIGN.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "stdout", _Gone())
    assert main(["--region", "us-west-2", "token", "--cluster-name", "prod"]) == 141
