"""The README's Python examples type-check under ``mypy --strict``.

How the blocks are checked: every ```` ```python ```` block of README.md becomes the body of
its own ``async def`` in one generated module, so top-level ``await`` and ``async with``
are legal and each block is checked on its own. The blocks are snippets that continue one
another, so each function declares, as typed parameters, the names the README takes from
an earlier block or leaves to the reader:

- ``eks: eks_async.EKSClient`` (the client of the first example),
- ``role: str`` (an IAM role ARN),

and the module imports ``eks_async``. A block may rebind these names (the first one opens
its own client). mypy runs once over the module; each block is one test (its id is the
README section's heading), failing with the errors mypy reports inside it, with their
README line numbers.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

#: What a block may use without defining it (see the module docstring).
PRELUDE = "import eks_async\n"
PARAMETERS = "eks: eks_async.EKSClient, role: str"

_FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_HEADING = re.compile(r"^#+ (.+)$", re.M)
_ERROR = re.compile(r"^([^:\n]+):(\d+): (error|note): (.*)$", re.M)

#: Blocks expected to fail for now, by id (none: every example type-checks).
XFAIL: dict[str, pytest.MarkDecorator] = {}


@attrs.frozen
class Block:
    """One ```` ```python ```` block: its id, where it starts in README.md, its source."""

    id: str
    line: int
    source: str


def readme_blocks(text: str) -> list[Block]:
    """The Python blocks of ``text``, each named after the heading above it."""
    blocks: list[Block] = []
    used: dict[str, int] = {}
    for match in _FENCE.finditer(text):
        headings = _HEADING.findall(text, 0, match.start())
        slug = re.sub(r"[^a-z0-9]+", "-", (headings[-1] if headings else "top").lower()).strip("-")
        used[slug] = used.get(slug, 0) + 1
        name = slug if used[slug] == 1 else f"{slug}-{used[slug]}"
        first_line = text.count("\n", 0, match.start(1)) + 1
        blocks.append(Block(name, first_line, match.group(1)))
    return blocks


def module_of(blocks: list[Block]) -> tuple[str, dict[int, tuple[Block, int]]]:
    """The module to type-check, and its line numbers mapped to (block, README line)."""
    lines = PRELUDE.splitlines()
    where: dict[int, tuple[Block, int]] = {}
    for index, block in enumerate(blocks):
        lines += ["", "", f"async def _block_{index}({PARAMETERS}) -> None:"]
        for offset, line in enumerate(block.source.splitlines()):
            lines.append(f"    {line}" if line.strip() else "")
            where[len(lines)] = (block, block.line + offset)
    return "\n".join(lines) + "\n", where


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


@functools.cache
def mypy_errors(directory: str) -> dict[str, list[str]]:
    """mypy --strict's errors for the README's blocks, by block id, as README lines."""
    source, where = module_of(BLOCKS)
    path = Path(directory) / "readme_examples.py"
    path.write_text(source, encoding="utf-8")
    env = {**os.environ, "MYPYPATH": str(ROOT)}  # this checkout's eks_async, not another
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    errors: dict[str, list[str]] = {}
    for match in _ERROR.finditer(result.stdout):
        file, line, kind, text = match.group(1), int(match.group(2)), match.group(3), match.group(4)
        if kind != "error":
            continue
        if Path(file).name != path.name:  # an error inside eks_async itself
            errors.setdefault("<module>", []).append(match.group(0))
            continue
        block, readme_line = where.get(line, (None, 0))
        if block is None:  # an error in the generated scaffolding
            errors.setdefault("<module>", []).append(f"line {line}: {text}")
        else:
            errors.setdefault(block.id, []).append(f"README.md:{readme_line}: {text}")
    if result.returncode not in (0, 1) or (result.returncode == 1 and not errors):
        errors.setdefault("<mypy>", []).append(result.stdout + result.stderr)
    return errors


@pytest.fixture(scope="module")
def errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    return mypy_errors(str(tmp_path_factory.mktemp("readme")))


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 5
    assert len({block.id for block in BLOCKS}) == len(BLOCKS)
    assert set(XFAIL) <= {block.id for block in BLOCKS}


def test_mypy_ran_and_nothing_outside_the_blocks_failed(errors: dict[str, list[str]]) -> None:
    assert "<mypy>" not in errors and "<module>" not in errors, errors


@pytest.mark.parametrize(
    "block", [pytest.param(b, id=b.id, marks=XFAIL.get(b.id, ())) for b in BLOCKS]
)
def test_the_readme_example_type_checks(block: Block, errors: dict[str, list[str]]) -> None:
    assert errors.get(block.id, []) == []
