"""storage/ reaches SQLAlchemy and the database drivers through their public APIs only, so a
rename inside them (a private class, a `_connection` attribute) cannot break the import."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

STORAGE = Path(__file__).resolve().parents[2] / "storage"
LIBRARIES = {"sqlalchemy", "aiosqlite", "asyncpg", "alembic"}
# Private driver internals that storage used to reach for (a one-hop aiosqlite adapter).
FORBIDDEN = re.compile(r"AsyncAdapt_|\._conn|__class__\s*=(?!=)")


def private_library_names(source: str) -> list[str]:
    """Names imported from LIBRARIES that are private (a leading underscore anywhere in the
    dotted path or the imported name), and any FORBIDDEN text."""
    found = [match.group(0) for match in FORBIDDEN.finditer(source)]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            paths = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            paths = [alias.name for alias in node.names]
        else:
            continue
        for path in paths:
            parts = path.split(".")
            if parts[0] in LIBRARIES and any(p.startswith("_") for p in parts):
                found.append(path)
    return found


@pytest.mark.parametrize(
    "path", sorted(STORAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(STORAGE))
)
def test_storage_uses_no_private_library_names(path: Path):
    assert private_library_names(path.read_text()) == []


def test_the_check_sees_private_names():
    source = (
        "from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_cursor\n"
        "from sqlalchemy.util._concurrency_py3k import await_only\n"
        "import aiosqlite._internal\n"
        "raw = connection._conn\n"
        "adapted.__class__ = Other\n"
        "from sqlalchemy import select\n"
        "from storage.repositories._common import upsert\n"
    )
    assert private_library_names(source) == [
        "AsyncAdapt_",
        "._conn",
        "__class__ =",
        "sqlalchemy.util._concurrency_py3k.await_only",
        "aiosqlite._internal",
    ]
