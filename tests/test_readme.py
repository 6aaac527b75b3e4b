"""The README's Python examples type-check under ``mypy --strict``.

How the blocks are checked (tests/_typecheck.py): every ```` ```python ```` block of README.md becomes the body of
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

from pathlib import Path

import pytest

from tests._typecheck import Block, mypy_errors, page_blocks

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

#: Blocks expected to fail for now, by id (none: every example type-checks).
XFAIL: dict[str, pytest.MarkDecorator] = {}

BLOCKS = page_blocks(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    found = mypy_errors(
        [("README.md", block) for block in BLOCKS],
        tmp_path_factory.mktemp("readme") / "readme_examples.py",
    )
    # By the block's own id: the README is the only page here.
    return {key.removeprefix("README.md::"): value for key, value in found.items()}


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
