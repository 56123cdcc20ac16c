"""Engine and session factory, and running the Alembic migrations.

SQLite notes (the default backend):
- Every connection gets WAL journal, `foreign_keys=ON`, `busy_timeout` and `synchronous=NORMAL`.
- Every transaction starts with `BEGIN IMMEDIATE`: it takes the write lock up front, so two
  writers never both hold a read snapshot and then deadlock on upgrading it (which SQLite
  reports at once as "database is locked", without waiting for busy_timeout). Other processes
  (the CLI, a second bot) wait up to `busy_timeout` for the lock.
- Inside one process a file database gets a pool of ONE connection: units of work queue on an
  asyncio queue instead of several connections sleeping in SQLite's busy handler. Keep sessions
  short, and never open a second session while holding one in the same task.
- The pragmas and the BEGIN come from SQLAlchemy's `connect` / `begin` events (its documented
  aiosqlite recipe); the driver is used as it comes. A connection the pool drops is rolled back
  first (see `_on_invalidate`). Scored messages reach the database in groups
  (`storage.recorder`), which keeps the per-statement cost of the async driver off each message.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from storage.errors import DatabaseTooNewError, DatabaseUnreachableError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 30_000
SQLITE_POOL_SIZE = 1  # one writer at a time anyway; see the module docstring


def _parse_url(url: str | URL) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise DatabaseUnreachableError(f"DATABASE_URL is not a database URL: {url!r}") from None


def describe_url(url: str | URL) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return _parse_url(url).render_as_string(hide_password=True)
    except DatabaseUnreachableError:
        return "<invalid DATABASE_URL>"


def _sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None (memory database / other backend)."""
    if not url.get_backend_name() == "sqlite":
        return None
    db = url.database
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db)


def _prepare_sqlite_folder(url: URL) -> None:
    path = _sqlite_file(url)
    if path is None:
        return
    if path.is_dir():
        raise DatabaseUnreachableError(
            f"DATABASE_URL {describe_url(url)} names a folder; name a file such as sentibot.db"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnreachableError(
            f"cannot create the folder for DATABASE_URL {describe_url(url)}: {exc.strerror}"
        ) from None


def _install_sqlite_hooks(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (the driver's implicit BEGIN is DEFERRED).
        dbapi_connection.isolation_level = None
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
                cursor.execute("PRAGMA foreign_keys = ON")
            finally:
                cursor.close()
        except Exception:
            # Not a database (or unreadable): close it, or aiosqlite's thread outlives the loop.
            dbapi_connection.close()
            raise

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine.sync_engine, "invalidate")
    def _on_invalidate(dbapi_connection: Any, _record: Any, _exception: Any) -> None:
        # A task cancelled between a statement and reading its rows (shutdown, a timeout) leaves
        # an unfinished SQLite statement, and the pool then drops the connection. Closed like
        # that, SQLite keeps it half open, holding the write lock, until the garbage collector
        # finds the cursor: everyone else gets "database is locked". A rollback first ends the
        # transaction and releases the lock at once.
        try:
            dbapi_connection.rollback()
        except Exception as exc:  # outside the event loop (garbage collection), or it is gone
            log.debug("no rollback before dropping a SQLite connection: %s", exc)


def create_engine(
    url: str | URL,
    *,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    pool_size: int | None = None,
    echo: bool = False,
) -> AsyncEngine:
    """Build the async engine for DATABASE_URL (the SQLite folder is created).

    Raises `DatabaseUnreachableError` for a malformed URL or a missing driver.
    """
    parsed = _parse_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite:
        _prepare_sqlite_folder(parsed)
        if _sqlite_file(parsed) is not None:
            kwargs.update(pool_size=pool_size or SQLITE_POOL_SIZE, max_overflow=0)
            kwargs.update(pool_timeout=max(60.0, busy_timeout_ms / 1000 * 2))
    elif pool_size is not None:
        kwargs["pool_size"] = pool_size
    try:
        engine = _create_async_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise DatabaseUnreachableError(
            f"cannot use DATABASE_URL {describe_url(parsed)}: {exc}"
        ) from None
    if is_sqlite:
        _install_sqlite_hooks(engine, busy_timeout_ms)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for units of work: `async with sessionmaker.begin() as session:`."""
    return async_sessionmaker(engine, expire_on_commit=False)


# --- migrations ------------------------------------------------------------------------------


def alembic_config(connection: Any = None, attributes: dict[str, Any] | None = None):
    """An Alembic `Config` built in code (no alembic.ini), so it works from an installed package.

    `attributes` reach the migrations as `context.config.attributes` (`model_dir`: MODEL_DIR,
    which migration 0005 stores folders relative to).
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes.update(attributes or {})
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@dataclass(frozen=True, slots=True)
class DatabaseState:
    """Where a database stands: its Alembic revision and the code's head revision."""

    url: str
    current: str | None  # None = empty database (never migrated)
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _head_and_known() -> tuple[str, set[str]]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    assert head is not None, "storage/migrations/versions has no revision"
    return head, {rev.revision for rev in script.walk_revisions()}


def _current_revision(sync_connection: Any) -> str | None:
    from alembic.migration import MigrationContext

    return MigrationContext.configure(sync_connection).get_current_revision()


def _refuse_if_too_new(url: str, current: str | None) -> None:
    head, known = _head_and_known()
    if current is not None and current not in known:
        raise DatabaseTooNewError(
            f"database {url} is at migration {current}, which this sentibot does not know "
            f"(its newest is {head}): it was upgraded by a newer sentibot; upgrade sentibot"
        )


async def _unreachable(url: str, exc: BaseException) -> DatabaseUnreachableError:
    # aiosqlite stops the worker thread of a connection that failed to open without awaiting
    # it; give that thread a moment while the event loop still runs (else it may report
    # "Event loop is closed" when the CLI's asyncio.run() ends).
    await asyncio.sleep(0.05)
    reason = getattr(exc, "orig", None) or exc
    return DatabaseUnreachableError(f"cannot open DATABASE_URL {url}: {reason}")


async def check_database(url: str | URL) -> DatabaseState:
    """Connect, read the migration revision, and refuse a database newer than this code."""
    shown = describe_url(url)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            current = await conn.run_sync(_current_revision)
    except (DBAPIError, OSError) as exc:
        raise await _unreachable(shown, exc) from None
    finally:
        await engine.dispose()
    _refuse_if_too_new(shown, current)
    head, _ = _head_and_known()
    return DatabaseState(shown, current, head)


def _run_alembic(
    sync_connection: Any, command_name: str, revision: str, attributes: dict[str, Any]
) -> None:
    from alembic import command

    alembic_log = logging.getLogger("alembic")
    if alembic_log.level == logging.NOTSET:
        alembic_log.setLevel(logging.WARNING)  # its INFO lines say nothing an operator needs

    getattr(command, command_name)(alembic_config(sync_connection, attributes), revision)


async def _migrate(
    url: str | URL, command_name: str, revision: str, attributes: dict[str, Any] | None = None
) -> DatabaseState:
    shown = describe_url(url)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            current = await conn.run_sync(_current_revision)
            _refuse_if_too_new(shown, current)
            if command_name == "upgrade" and current != _head_and_known()[0]:
                log.info("migrating %s from %s to %s", shown, current or "empty", revision)
            await conn.run_sync(_run_alembic, command_name, revision, attributes or {})
            current = await conn.run_sync(_current_revision)
    except (DBAPIError, OSError) as exc:
        raise await _unreachable(shown, exc) from None
    finally:
        await engine.dispose()
    head, _ = _head_and_known()
    return DatabaseState(shown, current, head)


async def upgrade_database(
    url: str | URL, revision: str = "head", *, model_dir: str | Path | None = None
) -> DatabaseState:
    """Run the migrations up to `revision` (default: head), in one transaction.

    `model_dir`: MODEL_DIR, for migration 0005 (model folders stored relative to it); without
    it the stored folders stay as they are. Raises `DatabaseTooNewError` when the database was
    migrated by a newer sentibot and `DatabaseUnreachableError` when it cannot be opened.
    """
    return await _migrate(url, "upgrade", revision, _attributes(model_dir))


async def downgrade_database(
    url: str | URL, revision: str, *, model_dir: str | Path | None = None
) -> DatabaseState:
    """Run the migrations down to `revision` (`base` = empty). For tests and admins."""
    return await _migrate(url, "downgrade", revision, _attributes(model_dir))


def _attributes(model_dir: str | Path | None) -> dict[str, Any]:
    return {} if model_dir is None else {"model_dir": str(model_dir)}
