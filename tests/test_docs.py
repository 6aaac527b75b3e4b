"""The reference site builds strictly, every public name has a docstring, the guides type-check.

1. ``mkdocs build --strict`` (mkdocs.yml: mkdocs-material, mkdocstrings) into a temporary
   directory: a broken reference, link or anchor fails the build. The built site's object
   inventory must hold every public name, every public method of ``EKSClient`` (the 70
   operations come from a generated base class) and a link from each operation to its page
   in the EKS API Reference. Skipped only where mkdocs is not installed, and never in CI
   (``CI`` set): the ``test`` extra installs it, so CI builds the site.
2. Every name in ``__all__`` of ``eks_async``, ``eks_async.testing``, ``eks_async.kubernetes``
   and ``eks_async.eks_auth``, and every public method and property of those classes
   (inherited ones included, from eks_async's own base classes), has a docstring as
   griffe reads it: what the reference shows. ``#:`` comments document constants and
   fields, as the site reads them (the griffe_sphinx extension).
3. The guides' ```` ```python ```` blocks type-check under ``mypy --strict``, each as the
   body of an ``async def`` (the mechanism of tests/_typecheck.py): a block may use
   ``eks: eks_async.EKSClient`` and ``role: str`` without defining them. Other libraries
   without type hints (aiobotocore, boto3) are ``Any`` to the check (``import-untyped`` is
   off); everything of eks_async is checked.
4. The emulator guide's blocks also run (each as a module, against the emulator they set
   up; a test function a block defines is called with the plugin's fixtures), so its
   examples stay true as well as well-typed.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests._typecheck import Block, mypy_errors, page_blocks

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GUIDES = sorted((DOCS / "guides").glob("*.md"))
PUBLIC_MODULES = ("eks_async", "eks_async.testing", "eks_async.kubernetes", "eks_async.eks_auth")
API_REFERENCE = "https://docs.aws.amazon.com/eks/latest/APIReference/API_{}.html"


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# Skipped where the docs tools are missing, except in CI (``CI`` set, as .ci/run runs),
# which installs them with the test extra: there a missing tool fails instead.
_IN_CI = bool(os.environ.get("CI"))
needs_mkdocs = pytest.mark.skipif(
    not _IN_CI
    and not (_have("mkdocs") and _have("mkdocstrings_handlers.python") and _have("material")),
    reason='mkdocs, mkdocs-material or mkdocstrings[python] is not installed: pip install -e ".[docs]"',
)
needs_griffe = pytest.mark.skipif(
    not _IN_CI and not (_have("griffe") and _have("griffe_sphinx")),
    reason='griffe or griffe-sphinx is not installed: pip install -e ".[docs]"',
)


# --- 1. the site -------------------------------------------------------------------------


@functools.cache
def _build(site: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--clean", "-f", "mkdocs.yml",
         "-d", site],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("site")
    result = _build(str(directory))
    assert result.returncode == 0, result.stdout + result.stderr
    return directory


def _inventory(site: Path) -> set[str]:
    """The object names of the site's objects.inv (Sphinx's inventory format, version 2)."""
    data = (site / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):  # four header lines, then the zlib-compressed body
        header_end = data.index(b"\n", header_end) + 1
    body = zlib.decompress(data[header_end:]).decode()
    return {line.split(" ", 1)[0] for line in body.splitlines() if line}


def _public_names(module: str) -> list[str]:
    return list(importlib.import_module(module).__all__)


def _operations() -> list[str]:
    from eks_async._generated.client import EKSOperations

    return sorted(name for name in vars(EKSOperations) if not name.startswith("_"))


@needs_mkdocs
def test_the_site_builds_strictly(site: Path) -> None:
    assert (site / "index.html").is_file()
    for guide in GUIDES:
        assert (site / "guides" / guide.stem / "index.html").is_file(), guide.name


@needs_mkdocs
def test_the_reference_documents_every_public_name(site: Path) -> None:
    documented = _inventory(site)
    missing = [
        f"{module}.{name}"
        for module in PUBLIC_MODULES
        for name in _public_names(module)
        if f"{module}.{name}" not in documented
    ]
    assert missing == []


@needs_mkdocs
def test_every_operation_is_on_the_client_page_with_its_api_reference_link(site: Path) -> None:
    operations = _operations()
    assert len(operations) == 70
    documented = _inventory(site)
    assert [op for op in operations if f"eks_async.EKSClient.{op}" not in documented] == []
    page = (site / "reference" / "client" / "index.html").read_text(encoding="utf-8")
    from eks_async._generated import operations as specs

    unlinked = []
    for name in operations:
        wire_name = getattr(specs, name.upper()).name
        if f'href="{API_REFERENCE.format(wire_name)}"' not in page:
            unlinked.append(wire_name)
    assert unlinked == []


# --- 2. docstrings -------------------------------------------------------------------------


@functools.cache
def _undocumented() -> tuple[list[str], int]:
    import griffe

    package = griffe.load(
        "eks_async",
        search_paths=[str(ROOT)],
        extensions=griffe.load_extensions("griffe_sphinx"),
        resolve_aliases=True,
        resolve_external=False,
    )
    seen: set[str] = set()
    missing: list[str] = []

    def check(obj: griffe.Object | griffe.Alias, label: str) -> None:
        target = obj.final_target if isinstance(obj, griffe.Alias) else obj
        if target.path in seen:
            return
        seen.add(target.path)
        if target.docstring is None or not target.docstring.value.strip():
            missing.append(f"{label} ({target.path})")

    for module_name in PUBLIC_MODULES:
        module = package if module_name == "eks_async" else package[module_name[10:]]
        for name in _public_names(module_name):
            obj = module[name]
            check(obj, f"{module_name}.{name}")
            target = obj.final_target if isinstance(obj, griffe.Alias) else obj
            if not isinstance(target, griffe.Class):
                continue
            for member_name, member in target.all_members.items():
                if member_name.startswith("_"):
                    continue
                final = member.final_target if isinstance(member, griffe.Alias) else member
                if isinstance(final, griffe.Function) or "property" in final.labels:
                    check(final, f"{module_name}.{name}.{member_name}")
    return missing, len(seen)


@needs_griffe
def test_every_public_name_method_and_property_has_a_docstring() -> None:
    missing, checked = _undocumented()
    assert checked > 500  # names, and the methods and properties of the classes among them
    assert missing == [], "public names without a docstring:\n" + "\n".join(missing)


# --- 3. the guides' examples ---------------------------------------------------------------


def _blocks() -> list[tuple[str, Block]]:
    """(page, block) for every ```python block of docs/*.md and docs/guides/*.md."""
    found: list[tuple[str, Block]] = []
    for page in [*sorted(DOCS.glob("*.md")), *GUIDES]:
        for block in page_blocks(page.read_text(encoding="utf-8")):
            found.append((str(page.relative_to(ROOT)), block))
    return found


BLOCKS = _blocks()


@pytest.fixture(scope="module")
def errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    # aiobotocore and boto3 have no type hints: Any to the check, not an error.
    path = tmp_path_factory.mktemp("docs") / "docs_examples.py"
    return mypy_errors(BLOCKS, path, ["--disable-error-code", "import-untyped"])


def test_every_guide_has_python_examples() -> None:
    assert len(GUIDES) >= 5
    pages = {page for page, _ in BLOCKS}
    assert [g.name for g in GUIDES if str(g.relative_to(ROOT)) not in pages] == []
    ids = [f"{page}::{block.id}" for page, block in BLOCKS]
    assert len(set(ids)) == len(ids)


def test_mypy_ran_and_nothing_outside_the_blocks_failed(errors: dict[str, list[str]]) -> None:
    assert "<mypy>" not in errors and "<module>" not in errors, errors


@pytest.mark.parametrize(
    "block_id", [f"{page}::{block.id}" for page, block in BLOCKS]
)
def test_the_guide_example_type_checks(block_id: str, errors: dict[str, list[str]]) -> None:
    assert errors.get(block_id, []) == []


# --- 4. the emulator guide's examples run -------------------------------------------------

EMULATOR_GUIDE = DOCS / "guides" / "emulator.md"
ROLE = "arn:aws:iam::123456789012:role/docs"


@pytest.mark.parametrize(
    "block",
    [pytest.param(b, id=b.id) for b in page_blocks(EMULATOR_GUIDE.read_text(encoding="utf-8"))],
)
async def test_the_emulator_guide_example_runs(block: Block) -> None:
    # Each block runs as a module of its own (top-level await allowed), with ``role`` given;
    # a test function it defines is then called as pytest would, with the plugin's fixtures.
    import ast
    import inspect

    import eks_async
    from eks_async.testing import EKSEmulator, ManualClock

    code = compile(
        "\n" * (block.line - 1) + block.source,
        str(EMULATOR_GUIDE),
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
    )
    namespace: dict[str, object] = {"eks_async": eks_async, "role": ROLE}
    result = eval(code, namespace)  # a coroutine when the block awaits
    if inspect.iscoroutine(result):
        await asyncio.wait_for(result, 120)  # a hang guard, not a timing assertion
    for name, value in list(namespace.items()):
        if name.startswith("test_") and inspect.iscoroutinefunction(value):
            emulator = EKSEmulator(clock=ManualClock())
            async with emulator.client() as client:
                fixtures = {"eks_emulator": emulator, "eks_client": client}
                wanted = inspect.signature(value).parameters
                await asyncio.wait_for(value(**{k: fixtures[k] for k in wanted}), 120)


# --- the README points at the site ---------------------------------------------------------


def test_the_readme_links_to_the_site_and_says_how_to_serve_it() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "mkdocs serve" in readme
    assert re.search(r"\]\(docs/(index|guides/\w+)\.md\)", readme)
