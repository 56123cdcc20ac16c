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

Two opt-in calls for code that knows its statements (the group-commit recorder):
- `defer_next(conn, keep_rows=False)`: the next statement is not sent on its own but at the
  start of the following trip (like BEGIN above); its SQLAlchemy result is empty. With
  `keep_rows`, its raw rows are kept and `take_kept_rows(conn)` hands them over after that
  trip. An error in it surfaces from the statement it travels with, in the same transaction.
- `commit_after_next(conn)`: the next statement's trip ends with COMMIT (its rows are fetched
  first); the commit that SQLAlchemy sends afterwards finds no transaction and costs no trip.
Both return False (and change nothing) on a connection that is not one-hop, e.g. PostgreSQL.
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

# Attributes set on the aiosqlite Connection (the adapter classes have __slots__): the BEGIN and
# the deferred statements waiting to be sent with the next statement, and the one-shot flags.
_PENDING_BEGIN = "_sentibot_pending_begin"
_PENDING = "_sentibot_pending"
_DEFER_NEXT = "_sentibot_defer_next"
_COMMIT_NEXT = "_sentibot_commit_next"
_KEPT = "_sentibot_kept_rows"

Pending = list[tuple[Any, Any, bool, bool]]  # (operation, parameters, many, keep its rows)


def _send(cursor: Any, operation: Any, parameters: Any, many: bool) -> None:
    if many:
        cursor.executemany(operation, parameters)
    elif parameters is None:
        cursor.execute(operation)
    else:
        cursor.execute(operation, parameters)


def _run(
    conn: Any, before: Pending | None, operation: Any, parameters: Any, many: bool, commit: bool
) -> tuple:
    """In the connection's thread: [pending statements,] execute, fetch everything, close the
    cursor[, COMMIT]. `operation` None: only the pending statements (and the commit)."""
    cursor = conn.cursor()
    kept: list[list[Any]] = []
    try:
        for pending_operation, pending_parameters, pending_many, keep in before or ():
            _send(cursor, pending_operation, pending_parameters, pending_many)
            if keep:
                kept.append(cursor.fetchall() if cursor.description else [])
        description, rows, rowcount, lastrowid = None, [], -1, None
        if operation is not None:
            _send(cursor, operation, parameters, many)
            description = cursor.description
            rows = cursor.fetchall() if description else []
            rowcount, lastrowid = cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()
    if commit and conn.in_transaction:
        conn.commit()
    return description, rows, rowcount, lastrowid, kept


def _take_pending(state: dict) -> Pending | None:
    """The statements waiting for the next trip (BEGIN first), removed from `state`."""
    begin, deferred = state.pop(_PENDING_BEGIN, None), state.pop(_PENDING, None)
    if begin is None:
        return deferred
    return [(begin, None, False, False), *(deferred or ())]


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
        state = aio.__dict__
        keep = state.pop(_DEFER_NEXT, None)
        if keep is not None:
            state.setdefault(_PENDING, []).append((operation, parameters, many, keep))
            self._description, self._rowcount, self._lastrowid = None, -1, None
            self._rows = collections.deque()
            return
        before, commit = _take_pending(state), state.pop(_COMMIT_NEXT, False)
        try:
            result = await_(
                aio._execute(_run, aio._conn, before, operation, parameters, many, commit)
            )
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._description, rows, self._rowcount, self._lastrowid, kept = result
        self._rows = collections.deque(rows)
        if kept:
            state[_KEPT] = kept

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
        self._connection.__dict__[_PENDING_BEGIN] = statement

    def commit(self) -> None:
        state = self._connection.__dict__
        state.pop(_DEFER_NEXT, None)
        state.pop(_COMMIT_NEXT, None)
        state.pop(_KEPT, None)
        if _PENDING in state:  # deferred statements: send them (after BEGIN, if pending) first
            aio = self._connection
            try:
                await_(aio._execute(_run, aio._conn, _take_pending(state), None, None, False, True))
            except Exception as error:
                self._handle_exception(error)
        elif state.pop(_PENDING_BEGIN, None) is None and self._open():
            super().commit()  # (a BEGIN alone was never sent: nothing to commit)

    def rollback(self) -> None:
        state = self._connection.__dict__
        state.pop(_DEFER_NEXT, None)
        state.pop(_COMMIT_NEXT, None)
        state.pop(_KEPT, None)
        state.pop(_PENDING, None)  # never sent: dropping them is their rollback
        if state.pop(_PENDING_BEGIN, None) is None and self._open():
            super().rollback()


def defer_begin(dbapi_connection: Any, statement: str) -> bool:
    """Send `statement` with the connection's next statement; False if not a one-hop connection."""
    if isinstance(dbapi_connection, OneHopConnection):
        dbapi_connection.defer_begin(statement)
        return True
    return False


def defer_next(dbapi_connection: Any, *, keep_rows: bool = False) -> bool:
    """Send the next statement on this connection with the one after it (or with COMMIT);
    `keep_rows`: keep its rows for `take_kept_rows`."""
    if isinstance(dbapi_connection, OneHopConnection):
        dbapi_connection._connection.__dict__[_DEFER_NEXT] = keep_rows
        return True
    return False


def take_kept_rows(dbapi_connection: Any) -> list[list[Any]]:
    """The raw rows of the `keep_rows` statements sent in the last trip, in order."""
    return dbapi_connection._connection.__dict__.pop(_KEPT, [])


def commit_after_next(dbapi_connection: Any) -> bool:
    """End the next statement's trip with COMMIT (see the module docstring)."""
    if isinstance(dbapi_connection, OneHopConnection):
        dbapi_connection._connection.__dict__[_COMMIT_NEXT] = True
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
