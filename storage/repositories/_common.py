"""Helpers shared by the repository modules (portable upserts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_name(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else ""


def dialect_insert(name: str, table: Table):
    """The dialect's INSERT with ON CONFLICT support, or None where SQLAlchemy has none."""
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as make_insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as make_insert
    else:
        return None
    return make_insert(table)


@lru_cache(maxsize=256)
def upsert_statement(name: str, table: Table, keys: tuple[str, ...], updates: tuple[str, ...]):
    """INSERT ... ON CONFLICT (keys) DO UPDATE/NOTHING, built once and reused (building
    `excluded` costs more than running the statement); values come as execute() parameters."""
    stmt = dialect_insert(name, table)
    if stmt is None:
        return None
    if updates:
        return stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in updates}
        )
    return stmt.on_conflict_do_nothing(index_elements=list(keys))


async def upsert(
    session: AsyncSession,
    table: Table,
    values: Mapping[str, Any],
    *,
    keys: Sequence[str],
    update_columns: Sequence[str] = (),
) -> None:
    """INSERT a row, or UPDATE `update_columns` of the row with the same `keys`.

    Uses `INSERT ... ON CONFLICT` on SQLite and PostgreSQL (one statement, race-free) and a
    select-then-write fallback on other backends. Columns whose new value is None are not
    overwritten (an update without a username keeps the one we know).
    """
    updates = tuple(c for c in update_columns if values.get(c) is not None)
    stmt = upsert_statement(dialect_name(session), table, tuple(keys), updates)
    conn = await session.connection()
    if stmt is not None:
        await conn.execute(stmt, dict(values))
        return
    where = [table.c[k] == values[k] for k in keys]
    found = (await conn.execute(select(*[table.c[k] for k in keys]).where(*where))).first()
    if found is None:
        await conn.execute(insert(table), dict(values))
    elif updates:
        await conn.execute(update(table).where(*where).values({c: values[c] for c in updates}))
