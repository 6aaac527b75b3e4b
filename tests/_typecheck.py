"""Type-checking the ```` ```python ```` blocks of Markdown pages (README.md, docs/).

Every block becomes the body of its own ``async def`` in one generated module, so top-level
``await`` and ``async with`` are legal and each block is checked on its own. The blocks are
snippets that continue one another, so each function declares, as typed parameters, the
names a page takes from an earlier block or leaves to the reader (``PARAMETERS``), and the
module imports ``eks_async``. mypy runs once over the module; its errors are handed back by
block id (``page::heading-slug``), with the page's own line numbers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parent.parent

#: What a block may use without defining it.
PRELUDE = "import eks_async\n"
PARAMETERS = "eks: eks_async.EKSClient, role: str"

FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_ANY_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_HEADING = re.compile(r"^#+ (.+)$", re.M)
_ERROR = re.compile(r"^([^:\n]+):(\d+): (error|note): (.*)$", re.M)


@attrs.frozen
class Block:
    """One ```` ```python ```` block: its id, the page line it starts on, its source."""

    id: str
    line: int
    source: str


def page_blocks(text: str) -> list[Block]:
    """The Python blocks of ``text``, each named after the heading above it (a ``#`` line
    inside a code block is not a heading)."""
    masked = _ANY_FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    blocks: list[Block] = []
    used: dict[str, int] = {}
    for match in FENCE.finditer(text):
        headings = _HEADING.findall(masked, 0, match.start())
        slug = re.sub(r"[^a-z0-9]+", "-", (headings[-1] if headings else "top").lower()).strip("-")
        used[slug] = used.get(slug, 0) + 1
        name = slug if used[slug] == 1 else f"{slug}-{used[slug]}"
        blocks.append(Block(name, text.count("\n", 0, match.start(1)) + 1, match.group(1)))
    return blocks


def _module_of(blocks: Sequence[tuple[str, Block]]) -> tuple[str, dict[int, tuple[str, int]]]:
    """The module to type-check, and its line numbers mapped to (block id, page line)."""
    lines = PRELUDE.splitlines()
    where: dict[int, tuple[str, int]] = {}
    for index, (page, block) in enumerate(blocks):
        lines += ["", "", f"async def _block_{index}({PARAMETERS}) -> None:"]
        for offset, line in enumerate(block.source.splitlines()):
            lines.append(f"    {line}" if line.strip() else "")
            where[len(lines)] = (f"{page}::{block.id}", block.line + offset)
    return "\n".join(lines) + "\n", where


def mypy_errors(
    blocks: Sequence[tuple[str, Block]], path: Path, flags: Sequence[str] = ()
) -> dict[str, list[str]]:
    """mypy --strict's errors for ``(page, block)`` pairs, by ``page::block`` id.

    ``<module>`` collects errors outside any block (in eks_async itself, or in the
    scaffolding), ``<mypy>`` a run that failed without saying where.
    """
    source, where = _module_of(blocks)
    path.write_text(source, encoding="utf-8")
    env = {**os.environ, "MYPYPATH": str(ROOT)}  # this checkout's eks_async, not another
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *flags, str(path)],
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
        block_id, page_line = where.get(line, ("", 0))
        if not block_id:  # an error in the generated scaffolding
            errors.setdefault("<module>", []).append(f"line {line}: {text}")
        else:
            page = block_id.split("::")[0]
            errors.setdefault(block_id, []).append(f"{page}:{page_line}: {text}")
    if result.returncode not in (0, 1) or (result.returncode == 1 and not errors):
        errors.setdefault("<mypy>", []).append(result.stdout + result.stderr)
    return errors
