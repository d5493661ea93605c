"""Engines and units of work.

SQLite (the embedded default): WAL, foreign keys on, a busy timeout, and transactions
that really begin when the unit of work begins — pysqlite would otherwise defer BEGIN
to the first write, so a read-then-write could act on stale data. Writes take
``BEGIN IMMEDIATE`` (the write lock) up front. SQLAlchemy's ``with_for_update()`` is
silently dropped on SQLite: code here guards races with conditional
``UPDATE … WHERE … RETURNING`` and constraints instead, which both databases honour.

Every SQLite URL (``sqlite+aiosqlite://`` included, as in older settings) runs on
:mod:`persistence.sqlite_driver`: statements run on the event loop's thread, with no thread
hop per statement, and a write unit waits for the write lock by awaiting, never by
blocking the loop. Write units of one process queue on an asyncio lock, so they take
SQLite's write lock in turn instead of polling for it.

PostgreSQL: asyncpg; an optional schema (search_path) lets test runs never collide.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from persistence import sqlite_driver

T = TypeVar("T")


def make_engine(url: str, schema: str | None = None, echo: bool = False) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        sqlite_driver.register()
        engine = create_async_engine(sqlite_driver.driver_url(parsed), echo=echo)
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if schema:
        connect_args["server_settings"] = {"search_path": schema}
    return create_async_engine(url, echo=echo, pool_pre_ping=True, connect_args=connect_args)


def _configure_sqlite(engine: AsyncEngine | Engine) -> None:
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:  # pragma: no cover - exercised by every test
        # We emit BEGIN ourselves (the dialect's do_begin); pysqlite's implicit transactions are off.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute(f"PRAGMA busy_timeout = {sqlite_driver.BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # DEFERRED for read units, IMMEDIATE (the write lock, taken without blocking the loop) for writes.
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        dbapi_connection = connection.connection.dbapi_connection
        if isinstance(dbapi_connection, sqlite_driver.Connection):
            dbapi_connection.begin_mode = mode  # the driver's do_begin emits it
        else:  # plain pysqlite (write_in_thread): in a worker thread, SQLite's busy timeout may wait
            connection.exec_driver_sql(f"BEGIN {mode}")


def dialect_insert(session: AsyncSession | Session) -> Callable[..., Any]:
    """The INSERT construct of the session's database (both have ON CONFLICT)."""
    return sqlite.insert if session.get_bind().dialect.name == "sqlite" else postgresql.insert


class Database:
    """Holds the engine; hands out units of work (one transaction each)."""

    def __init__(self, url: str, schema: str | None = None, echo: bool = False,
                 lock_timeout: float = sqlite_driver.BUSY_TIMEOUT_MS / 1000):
        self.url = url
        self.schema = schema
        self.lock_timeout = lock_timeout  # SQLite: the longest a write unit waits for the write lock (s)
        self.engine = make_engine(url, schema=schema, echo=echo)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        writer = self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else self.engine
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer = async_sessionmaker(writer, expire_on_commit=False)
        self._thread_engine: Engine | None = None  # write_in_thread on SQLite, made on first use
        # One per event loop: tests run a server's loop in a thread beside their own.
        self._write_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary())

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work: one transaction (a consistent snapshot), never committed.

        The first statement begins it (BEGIN is explicit); closing the session ends it with
        a rollback while keeping loaded objects readable (a rollback() would expire them).
        """
        async with self._reader() as session:
            yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A unit of work that commits when the block ends without an exception.

        On SQLite it holds the database's only write lock from its BEGIN IMMEDIATE to its
        end; write units of this process first queue on an asyncio lock (in arrival order),
        so only units of other processes make the BEGIN retry. Waiting for either is bounded
        by ``lock_timeout`` as a whole, then "database is locked" (OperationalError).
        """
        if not self.is_sqlite:
            async with self._writer() as session, session.begin():
                yield session
            return
        async with self._write_turn() as deadline:
            token = sqlite_driver.write_deadline.set(deadline)
            try:
                async with self._writer() as session, session.begin():
                    yield session
            finally:
                sqlite_driver.write_deadline.reset(token)

    async def write_in_thread(self, unit: Callable[[Session], T]) -> T:
        """Run ``unit`` as one write unit of work with a *sync* session, committed if it returns.

        For the few long units (bulk, set-based work such as bank reconciliation): on SQLite
        the whole unit runs in a worker thread on a plain ``sqlite3`` connection, so the loop
        keeps serving while SQLite works (it releases the GIL while it steps). It still takes
        its turn among this process's write units and holds BEGIN IMMEDIATE. On PostgreSQL it
        is ``session.run_sync(unit)`` in an ordinary write unit: the same code on both.
        """
        if not self.is_sqlite:
            async with self.write() as session:
                return await session.run_sync(unit)
        async with self._write_turn():
            return await asyncio.to_thread(self._run_in_thread, unit)

    def _run_in_thread(self, unit: Callable[[Session], T]) -> T:
        with self._thread_writer() as session, session.begin():
            return unit(session)

    @contextlib.asynccontextmanager
    async def _write_turn(self) -> AsyncIterator[float]:
        """This process's turn to write (SQLite): yields the deadline for taking the write lock."""
        deadline = time.monotonic() + self.lock_timeout
        lock = self._write_lock()
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                await lock.acquire()
        except TimeoutError:
            raise OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")) from None
        try:
            yield deadline
        finally:
            lock.release()

    def _write_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._write_locks.get(loop)
        if lock is None:
            lock = self._write_locks[loop] = asyncio.Lock()
        return lock

    async def ping(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    def _thread_writer(self) -> Session:
        if self._thread_engine is None:
            engine = create_engine(sqlite_driver.driver_url(self.url).set(drivername="sqlite+pysqlite"))
            _configure_sqlite(engine)
            self._thread_engine = engine.execution_options(sqlite_begin="IMMEDIATE")
        return Session(self._thread_engine, expire_on_commit=False)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._thread_engine is not None:
            self._thread_engine.dispose()
