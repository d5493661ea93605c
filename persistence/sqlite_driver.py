"""SQLite for the async engine without a thread hop per statement (docs/decisions.md, "Driver path on SQLite").

SQLAlchemy's aiosqlite dialect runs ``sqlite3`` in a thread of its own and completes a
future for every call: each statement costs a hop to that thread and back to the loop.
This dialect keeps everything the use cases see — ``AsyncEngine``, ``AsyncSession``,
``await session.execute(...)`` — but its connection and cursor call ``sqlite3`` directly,
on the thread that runs the session's greenlet, which is the event loop's thread. A
statement is then a plain C call, with no future, no thread and no greenlet switch.

That is safe because SQLite in WAL mode never makes a reader wait for a writer, so a
statement only runs for as long as SQLite needs to compute it. The one place where a
statement could *wait* on another connection is taking the write lock; :func:`begin`
takes it with a busy timeout of 0 and, while another connection (of this or another
process) holds it, awaits ``asyncio.sleep`` between attempts — the loop keeps serving.

Rows are fetched when the statement runs and the ``sqlite3`` cursor is closed at once,
as the aiosqlite adapter does, so no statement is ever left half-stepped (an unread
``UPDATE … RETURNING`` would otherwise keep the write statement open at COMMIT).
Errors are ``sqlite3``'s own, so SQLAlchemy translates them as it does for pysqlite
(``sqlite3.IntegrityError`` → ``sqlalchemy.exc.IntegrityError``).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
import weakref
from collections.abc import Generator, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, cast

from greenlet import getcurrent  # type: ignore[import-untyped]  # greenlet ships no types
from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.base import SQLiteExecutionContext
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL, AdaptedConnection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor
from sqlalchemy.util.concurrency import await_only, in_greenlet

DRIVER = "tradecert"
BUSY_TIMEOUT_MS = 30_000  # the longest any unit of work waits for SQLite's write lock
_SQLITE_BUSY = 5  # primary result code; extended codes (BUSY_RECOVERY, …) share the low byte

# When the current write unit of work gives up waiting for the write lock (time.monotonic()).
write_deadline: ContextVar[float | None] = ContextVar("tradecert_sqlite_write_deadline", default=None)


class _Ready:
    """An awaitable that is done at once: awaiting it never gives the loop a turn."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        yield from ()


_READY = _Ready()
_bridged: weakref.ref[Any] | None = None  # the last SQLAlchemy greenlet that switched once


def _bridge() -> None:
    """Switch once to the awaiting side of the current SQLAlchemy greenlet, then go on synchronously.

    ``AsyncConnection.execute`` checks that its greenlet awaited at least once (it guards
    against sync drivers under an async engine). One switch per greenlet satisfies it for
    about a microsecond; awaiting the ready object never yields to the event loop."""
    global _bridged
    current = getcurrent()
    if _bridged is not None and _bridged() is current:
        return
    if in_greenlet():
        await_only(_READY)
        _bridged = weakref.ref(current)


class Cursor:
    """A DB-API cursor over ``sqlite3`` that runs on the calling thread and buffers its rows."""

    __slots__ = ("_connection", "_pos", "_rows", "arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self._rows: list[Any] = []
        self._pos = 0
        self.arraysize = 1
        self.description: Any = None
        self.lastrowid: int | None = None
        self.rowcount = -1

    def execute(self, operation: str, parameters: Any = None) -> Cursor:
        _bridge()
        cursor = self._connection.cursor()
        try:
            if parameters is None:
                cursor.execute(operation)
            else:
                cursor.execute(operation, parameters)
            self.description = cursor.description
            if cursor.description is not None:
                self._rows = cursor.fetchall()
            else:
                self._rows = []
            self._pos = 0
            self.lastrowid = cursor.lastrowid
            self.rowcount = cursor.rowcount
        finally:
            cursor.close()
        return self

    def executemany(self, operation: str, seq_of_parameters: Any) -> Cursor:
        _bridge()
        cursor = self._connection.cursor()
        try:
            cursor.executemany(operation, seq_of_parameters)
            self.description = None
            self._rows = []
            self._pos = 0
            self.lastrowid = cursor.lastrowid
            self.rowcount = cursor.rowcount
        finally:
            cursor.close()
        return self

    def fetchone(self) -> Any:
        if self._pos < len(self._rows):
            row = self._rows[self._pos]
            self._pos += 1
            return row
        return None

    def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        end = self._pos + (self.arraysize if size is None else size)
        rows = self._rows[self._pos:end]
        self._pos += len(rows)
        return rows

    def fetchall(self) -> Sequence[Any]:
        rows = self._rows[self._pos:] if self._pos else self._rows
        self._rows, self._pos = [], 0
        return rows

    def __iter__(self) -> Iterator[Any]:
        while (row := self.fetchone()) is not None:
            yield row

    def setinputsizes(self, *sizes: Any) -> None:
        pass

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        pass

    def close(self) -> None:
        self._rows, self._pos = [], 0

    async def _async_soft_close(self) -> None:
        """Awaited by SQLAlchemy's async results after each execute; the rows are already buffered."""


class ServerSideCursor(Cursor):
    """For ``AsyncConnection.stream``: keeps the ``sqlite3`` cursor and steps it as rows are fetched.

    Each fetch runs on the loop for as long as SQLite needs for that many rows; the statement
    stays open until the result is closed (the caller asked to stream)."""

    __slots__ = ("_cursor",)

    def __init__(self, connection: sqlite3.Connection) -> None:
        super().__init__(connection)
        self._cursor: sqlite3.Cursor | None = None

    def execute(self, operation: str, parameters: Any = None) -> Cursor:
        _bridge()
        self.close()
        cursor = self._connection.cursor()
        try:
            if parameters is None:
                cursor.execute(operation)
            else:
                cursor.execute(operation, parameters)
        except BaseException:
            cursor.close()
            raise
        self._cursor = cursor
        self.description = cursor.description
        self.lastrowid = cursor.lastrowid
        self.rowcount = cursor.rowcount
        return self

    def fetchone(self) -> Any:
        return self._cursor.fetchone() if self._cursor is not None else None

    def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        if self._cursor is None:
            return []
        return self._cursor.fetchmany(self.arraysize if size is None else size)

    def fetchall(self) -> Sequence[Any]:
        return self._cursor.fetchall() if self._cursor is not None else []

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None


class Connection(AdaptedConnection):
    """A DB-API connection over ``sqlite3``; everything else is delegated to it.

    ``begin_mode`` is the mode of the next BEGIN (DEFERRED unless the unit of work's
    ``begin`` event asked for IMMEDIATE); the dialect's ``do_begin`` emits it."""

    __slots__ = ("begin_mode",)

    _connection: sqlite3.Connection  # type: ignore[assignment]  # sync here, async in the base's drivers

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self.begin_mode = "DEFERRED"

    @property
    def isolation_level(self) -> str | None:
        return self._connection.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._connection.isolation_level = value  # type: ignore[assignment]  # typeshed's Literal

    def cursor(self, server_side: bool = False) -> Cursor:
        return ServerSideCursor(self._connection) if server_side else Cursor(self._connection)

    def execute(self, operation: str, parameters: Any = ()) -> sqlite3.Cursor:
        return self._connection.execute(operation, parameters)

    def commit(self) -> None:
        self._connection.commit()

    def rollback(self) -> None:
        self._connection.rollback()

    def close(self) -> None:
        self._connection.close()

    def terminate(self) -> None:
        self._connection.close()

    def __getattr__(self, name: str) -> Any:  # create_function, in_transaction, …
        return getattr(self._connection, name)


class ExecutionContext(SQLiteExecutionContext):
    def create_server_side_cursor(self) -> DBAPICursor:
        return self._dbapi_connection.cursor(server_side=True)


class SQLiteDialect_tradecert(SQLiteDialect_pysqlite):
    """pysqlite's dialect, usable by ``create_async_engine``: statements never leave the loop's thread."""

    driver = DRIVER
    is_async = True  # the async engine may use it; the greenlet bridge simply never has to wait
    has_terminate = True
    supports_statement_cache = True
    supports_server_side_cursors = True  # AsyncConnection.stream(), as with aiosqlite
    execution_ctx_cls = ExecutionContext

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        # As aiosqlite's dialect: a file keeps its connections, :memory: is one shared connection.
        return pool.AsyncAdaptedQueuePool if cls._is_url_file_db(url) else pool.StaticPool

    def connect(self, *cargs: Any, **cparams: Any) -> DBAPIConnection:
        return cast("DBAPIConnection", Connection(sqlite3.connect(*cargs, **cparams)))

    def get_driver_connection(self, connection: Any) -> sqlite3.Connection:
        return connection._connection  # type: ignore[no-any-return]

    def do_terminate(self, dbapi_connection: Any) -> None:
        dbapi_connection.terminate()

    def do_begin(self, dbapi_connection: Any) -> None:
        # Here rather than in a ``begin`` event so a "database is locked" is translated
        # (sqlalchemy.exc.OperationalError) like any other error of the driver.
        mode, dbapi_connection.begin_mode = dbapi_connection.begin_mode, "DEFERRED"
        begin(dbapi_connection._connection, mode, write_deadline.get())


def register() -> None:
    """Make ``sqlite+tradecert://`` known to SQLAlchemy (idempotent; called by ``make_engine``)."""
    registry.register(f"sqlite.{DRIVER}", __name__, "SQLiteDialect_tradecert")


def driver_url(url: str | URL) -> URL:
    """Any SQLite URL (``sqlite://``, ``sqlite+aiosqlite://``, ``sqlite+pysqlite://``) on this driver."""
    return make_url(url).set(drivername=f"sqlite+{DRIVER}")


def is_busy(error: BaseException) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(error, sqlite3.OperationalError) and code is not None and code & 0xFF == _SQLITE_BUSY


def begin(connection: sqlite3.Connection, mode: str, deadline: float | None = None) -> None:
    """``BEGIN <mode>`` on ``connection``; for IMMEDIATE, wait for the write lock without blocking the loop.

    Runs inside SQLAlchemy's greenlet (the session's ``begin`` event), so it can await: each
    attempt is made with a busy timeout of 0, and while another connection holds the write
    lock it sleeps on the event loop (1 ms growing to 25 ms, jittered so two processes do not
    poll in step) until ``deadline`` (``time.monotonic()``; default 30 s from now), then raises
    SQLite's own "database is locked". Outside a greenlet (a sync engine in a thread) SQLite's
    busy timeout does the waiting, as before.
    """
    if mode not in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
        raise ValueError(f"BEGIN {mode!r}")
    if mode != "IMMEDIATE" or not in_greenlet():
        connection.execute(f"BEGIN {mode}")
        return
    if deadline is None:
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    connection.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if not is_busy(error) or time.monotonic() + delay > deadline:
                    raise
            await_only(asyncio.sleep(delay * random.uniform(0.5, 1.5)))
            delay = min(delay * 2, 0.025)
    finally:
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
