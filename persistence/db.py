"""Engines and units of work.

SQLite (the embedded default): WAL, foreign keys on, a busy timeout, and transactions
that really begin when the unit of work begins — pysqlite would otherwise defer BEGIN
to the first write, so a read-then-write could act on stale data. Writes take
``BEGIN IMMEDIATE`` (the write lock) up front. SQLAlchemy's ``with_for_update()`` is
silently dropped on SQLite: code here guards races with conditional
``UPDATE … WHERE … RETURNING`` and constraints instead, which both databases honour.

PostgreSQL: asyncpg; an optional schema (search_path) lets test runs never collide.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def make_engine(url: str, schema: str | None = None, echo: bool = False) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    connect_args = {}
    if schema:
        connect_args["server_settings"] = {"search_path": schema}
    return create_async_engine(url, echo=echo, pool_pre_ping=True, connect_args=connect_args)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised by every test
        # We emit BEGIN ourselves (below); pysqlite's implicit transactions are turned off.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection):
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def dialect_insert(session):
    """The INSERT construct of the session's database (both have ON CONFLICT)."""
    return sqlite.insert if session.bind.dialect.name == "sqlite" else postgresql.insert


class Database:
    """Holds the engine; hands out units of work (one transaction each)."""

    def __init__(self, url: str, schema: str | None = None, echo: bool = False):
        self.url = url
        self.schema = schema
        self.engine = make_engine(url, schema=schema, echo=echo)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        writer = self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else self.engine
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer = async_sessionmaker(writer, expire_on_commit=False)

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
        """A unit of work that commits when the block ends without an exception."""
        async with self._writer() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()
