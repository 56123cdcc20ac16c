"""One thread hop per statement for SQLAlchemy's aiosqlite adapter.

aiosqlite runs each SQLite connection in its own thread, and SQLAlchemy's adapter makes four trips
to that thread per statement (create cursor, execute, fetch, close). Each trip costs a thread
wake-up, which on a busy machine is most of the time a unit of work takes. Here:
- a statement is one trip (cursor, execute, fetch and close together);
- `BEGIN IMMEDIATE` is deferred and sent in the same trip as the transaction's first statement;
- commit / rollback skip the trip when SQLite has no transaction open (the pool's rollback after
  a commit, an empty unit of work).
A unit of work that records a scored message drops from 18 trips to 5. It is installed per
connection by `storage.db` (SQLite URLs only) and is skipped when aiosqlite's internals are not
what it expects (then the stock adapter is used).
"""

from __future__ import annotations

import collections
from collections.abc import Iterator, Sequence
from typing import Any

try:  # SQLAlchemy 2.1
    from sqlalchemy.util.concurrency import await_
except ImportError:  # SQLAlchemy 2.0
    from sqlalchemy.util import await_only as await_  # type: ignore[no-redef]

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
)

# Attribute set on the aiosqlite Connection (the adapter classes have __slots__) while a BEGIN
# waits to be sent with the next statement.
_PENDING = "_sentibot_pending_begin"


def _run(conn: Any, begin: str | None, operation: str, parameters: Any, many: bool) -> tuple:
    """In the connection's thread: [BEGIN,] execute, fetch everything, close the cursor."""
    if begin is not None:
        conn.execute(begin)
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered DBAPI cursor whose execute() is a single trip to the aiosqlite thread."""

    __slots__ = ("_description", "_rowcount", "_lastrowid", "_arraysize")

    def __init__(self, adapt_connection: Any) -> None:  # no aiosqlite cursor: nothing to await
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None
        self._soft_closed_memoized = {}
        self._rows = collections.deque()
        self._description = None
        self._rowcount = -1
        self._lastrowid = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    def _call(self, operation: Any, parameters: Any, many: bool) -> None:
        aio = self._connection
        begin = aio.__dict__.pop(_PENDING, None)
        try:
            result = await_(aio._execute(_run, aio._conn, begin, operation, parameters, many))
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._description, rows, self._rowcount, self._lastrowid = result
        self._rows = collections.deque(rows)

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        self._call(operation, parameters, False)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        self._call(operation, seq_of_parameters, True)

    async def _async_soft_close(self) -> None:
        return None  # rows are already buffered and the SQLite cursor closed

    def close(self) -> None:
        self._rows.clear()

    def setinputsizes(self, *inputsizes: Any) -> None:
        return None

    def nextset(self) -> None:
        return None

    def __iter__(self) -> Iterator[Any]:
        while self._rows:
            yield self._rows.popleft()

    def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        size = self._arraysize if size is None else size
        return [self._rows.popleft() for _ in range(min(size, len(self._rows)))]

    def fetchall(self) -> Sequence[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor

    def _open(self) -> bool:
        """True when SQLite has a transaction open (read in this thread: no trip needed)."""
        aio = self._connection
        return aio._connection is not None and aio._conn.in_transaction

    def defer_begin(self, statement: str) -> None:
        self._connection.__dict__[_PENDING] = statement

    def commit(self) -> None:
        if self._connection.__dict__.pop(_PENDING, None) is None and self._open():
            super().commit()

    def rollback(self) -> None:
        if self._connection.__dict__.pop(_PENDING, None) is None and self._open():
            super().rollback()


def defer_begin(dbapi_connection: Any, statement: str) -> bool:
    """Send `statement` with the connection's next statement; False if not a one-hop connection."""
    if isinstance(dbapi_connection, OneHopConnection):
        dbapi_connection.defer_begin(statement)
        return True
    return False


def install(dbapi_connection: Any) -> bool:
    """Switch one adapted aiosqlite connection to one-hop cursors; False if not applicable."""
    aio = getattr(dbapi_connection, "_connection", None)
    if type(dbapi_connection) is not AsyncAdapt_aiosqlite_connection:
        return False
    if not (hasattr(aio, "_execute") and hasattr(type(aio), "_conn")):
        return False
    dbapi_connection.__class__ = OneHopConnection
    return True
