"""The package rules of docs/architecture.md, checked on the source: no import circles anywhere in
the product code, and each layer imports only what it may.

Every import counts, also those inside functions (a lazy import is still a dependency). Imports
under `if TYPE_CHECKING:` count for the layer rules but not for circles: they never run, and
type hints may point both ways (classifier.training ↔ classifier.modules do).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "classifier", "storage")
# What each part may not import (by top-level package, or a module of ours and what is under it).
FORBIDDEN = {
    "classifier": ("storage", "bot", "telegram", "sqlalchemy", "alembic"),
    "storage": ("torch", "transformers", "classifier", "bot", "telegram"),
    # The service layer, the learning loop and what the console chat and CLI share: no Telegram.
    "bot.learning": ("telegram",),
    "bot.service": ("telegram",),
    "bot.runtime": ("telegram",),
    "bot.console": ("telegram",),
    "bot.texts": ("telegram",),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def product_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    }


def imported_names(path: Path, name: str, *, type_hints: bool = True) -> set[str]:
    """Every module `path` imports: `import a.b` → a.b; `from a import b` → a.b and a.

    `type_hints=False` leaves out the imports under `if TYPE_CHECKING:`.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set()
    if not type_hints:
        for block in ast.walk(tree):
            test = getattr(block, "test", None)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(test):
                skip.update(id(node) for stmt in block.body for node in ast.walk(stmt))
    names = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def internal_graph() -> dict[str, set[str]]:
    """Module → the product modules it imports when it runs (a package's `__init__` is left
    out as a target when a submodule of it is meant)."""
    modules = product_modules()
    graph = {}
    for name, path in modules.items():
        imported = imported_names(path, name, type_hints=False)
        targets = {n for n in imported if n in modules and n != name}
        # `from bot.learning import data` names both; the module is the dependency.
        graph[name] = {t for t in targets if not any(o.startswith(t + ".") for o in targets)}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checks_find_what_they_look_for():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    graph = internal_graph()
    assert "bot.learning.retrainer" in graph["bot.learning.service"]
    assert "storage.repositories" in graph["bot.service"]


def test_no_import_circles_in_the_product_code():
    assert cycles(internal_graph()) == []


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_layers_import_only_what_they_may(part):
    offending = []
    for name, path in product_modules().items():
        if name != part and not name.startswith(part + "."):
            continue
        for imported in imported_names(path, name):
            if any(imported == f or imported.startswith(f + ".") for f in FORBIDDEN[part]):
                offending.append(f"{name} imports {imported}")
    assert offending == []
