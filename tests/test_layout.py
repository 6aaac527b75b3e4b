"""The layout keeps its layers: no import cycle, and generated modules are leaves.

Imports are read from the source (module level and inside functions alike; imports only
for type checkers, under ``if TYPE_CHECKING:``, do not count), so a cycle made by a deferred
import fails here too, although Python would tolerate it at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "eks_async"

#: Hand-written modules the generated code may import: they import nothing of eks_async
#: outside this set, so a generated module never reaches the runtime through them.
FOUNDATION = frozenset(
    {
        "eks_async._errorcodes",
        "eks_async._exceptions",
        "eks_async._operation",
        "eks_async._redact",
        "eks_async._response",
    }
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                hidden.update(id(n) for n in ast.walk(child))
    return hidden


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    if node.level:
        parts = package.split(".")
        base = ".".join(parts[: len(parts) - node.level + 1])
        target = f"{base}.{node.module}" if node.module else base
    else:
        target = node.module or ""
    return [f"{target}.{alias.name}" for alias in node.names] + [target]


def import_graph() -> dict[str, set[str]]:
    """Each eks_async module and the eks_async modules it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        hidden = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in hidden:
                continue
            for target in _targets(name, path, node):
                while target and target not in modules and "." in target:
                    target = target.rpartition(".")[0]
                if target in modules and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize("source", ["from .. import _core", "import eks_async._core"])
def test_a_deferred_import_counts(tmp_path: Path, source: str) -> None:
    tree = ast.parse(f"def f():\n    {source}\n")
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom))
    path = tmp_path / "x.py"
    assert "eks_async._core" in _targets("eks_async._generated.x", path, node)


def test_generated_modules_import_only_each_other_and_the_foundation() -> None:
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("eks_async._generated"):
            outside = {
                t for t in targets if not t.startswith("eks_async._generated") and t != "eks_async"
            }
            assert outside <= FOUNDATION, (name, outside - FOUNDATION)


def test_the_foundation_imports_nothing_else_of_eks_async() -> None:
    graph = import_graph()
    for name in FOUNDATION:
        assert graph[name] <= FOUNDATION, (name, graph[name] - FOUNDATION)
