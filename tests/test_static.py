"""mypy --strict and ruff stay clean: part of the test command, so CI fails when they don't."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_mypy_strict() -> None:
    result = _run("mypy", "--strict", "eks_async")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff() -> None:
    result = _run("ruff", "check", "eks_async", "tests", "codegen", "examples", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_the_examples() -> None:
    result = _run("mypy", "--strict", "--explicit-package-bases", "examples")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_the_public_api_typing_tests() -> None:
    # tests/typing/ is type-checked, never run: assert_type states what users' checkers see.
    result = _run("mypy", "--strict", "tests/typing/public_api.py")
    assert result.returncode == 0, result.stdout + result.stderr
