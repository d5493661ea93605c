"""What every resolver receives: the services of this process and this request's facts.

The request's read unit: the first read of a request opens one read-only unit of work (a
pooled connection in one transaction), every later read of the request reuses it, and the
request's end closes it (``Context.close``: tradecert/app.py does it before the response is
sent). An ``asyncio.Lock`` serialises its use, because graphql-core resolves sibling fields
as concurrent tasks and a connection (asyncpg, SQLite) may run one statement at a time.

Reads use it in one of two ways, both in the same transaction:

* ``ctx.rows(statement, params)``: a SQLAlchemy Core SELECT answered as plain tuples. On
  SQLite the statement is compiled once and runs on the ``sqlite3`` connection itself — no
  ORM session, no result objects, no greenlet: the whole unit (checkout, BEGIN, statements,
  ROLLBACK, checkin) costs about what one statement costs through an ``AsyncSession``
  (measured: bench/identity.py). On PostgreSQL it runs on the unit's ``AsyncConnection``.
  The readers of pages and of the viewer use it (resolvers/*/queries.py).
* ``ctx.read()``: an ``AsyncSession`` bound to the same connection, made on first use, for
  readers that map ORM entities.

A mutation's use case runs inside ``writing()`` (schema/errors.py ``run_mutation``): the read
unit ends before it, and every read made while it runs — the viewer, the payload read again
after the write — takes a short unit of its own, closed at once. So a request never holds a
read unit (a pooled connection, on SQLite a snapshot) while it waits for the write lock or
a connection to write with, and what is read after a write sees it. The first read after
the mutation opens a new request read unit.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from persistence.db import Database
from resolvers.core.clock import Clock
from resolvers.core.settings import Settings
from rules.runtime import RulesRuntime

Rows = list[tuple[Any, ...]]


@dataclass
class Services:
    """Long-lived collaborators, created once per process (or per test)."""

    settings: Settings
    db: Database
    rules: RulesRuntime
    clock: Clock
    # Wired by the composition root (tradecert/composition.py), never by imports:
    purposes: Mapping[str, Any] = field(default_factory=dict)  # card payment purpose → payments.card.Purpose
    jobs: Mapping[str, Any] = field(default_factory=dict)  # job name → tradecert.jobs.Job
    # (services, body, signature) → outcome: where the sandbox gateway delivers its events
    receive_notification: Callable[[Services, bytes, str], Awaitable[str]] | None = None
    gateway: Any = None  # a PaymentGateway plugged in (tests, a provider); else TRADECERT_PAYMENT_GATEWAY
    bank: Any = None  # a Bank plugged in; else the sandbox bank
    # "sha256:<hex>" → document, from TRADECERT_TRUSTED_DOCUMENTS, checked at start (tradecert/trusted_documents.py);
    # None: every document may run
    trusted_documents: Mapping[str, str] | None = None


class _Compiled:
    """A SELECT compiled once for SQLite's ``sqlite3`` (qmark parameters): its SQL, the order
    of its parameters with their bind processors, the result processors of its columns."""

    __slots__ = ("_expanded", "defaults", "expanding", "names", "processors", "results", "sql")

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        binds = compiled.binds
        # the dialect's own implementation of each type (a TypeDecorator's included), as
        # SQLAlchemy itself processes values
        self.processors = tuple(binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in self.names)
        self.expanding = frozenset(n for n in self.names if binds[n].expanding)
        self.defaults = {n: binds[n].effective_value for n in self.names if binds[n].effective_value is not None}
        self.results = tuple(
            (i, processor) for i, column in enumerate(statement.selected_columns)
            if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None)
        self._expanded: dict[tuple[int, ...], str] = {}

    def arguments(self, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The SQL (expanding parameters spelled out, one ``?`` per value) and its arguments."""
        values = {**self.defaults, **params} if self.defaults else params
        found: list[Any] = []
        if not self.expanding:
            for name, process in zip(self.names, self.processors, strict=True):
                value = values[name]
                found.append(process(value) if process is not None and value is not None else value)
            return self.sql, found
        lengths = []
        for name, process in zip(self.names, self.processors, strict=True):
            value = values[name]
            items = list(value) if name in self.expanding else [value]
            if name in self.expanding:
                lengths.append(len(items))
            found.extend(process(v) if process is not None and v is not None else v for v in items)
        key = tuple(lengths)
        sql = self._expanded.get(key)
        if sql is None:
            sql = self.sql
            for name, length in zip((n for n in self.names if n in self.expanding), lengths, strict=True):
                # an empty list matches nothing, as SQLAlchemy renders it
                sql = sql.replace(f"__[POSTCOMPILE_{name}]", ", ".join("?" * length) if length else "SELECT 1 WHERE 1 = 0")
            self._expanded[key] = sql
        return sql, found

    def rows(self, connection: sqlite3.Connection, params: Mapping[str, Any], told: Connection | None) -> Rows:
        """Run it; ``told``: the SQLAlchemy connection whose cursor-execute listeners hear of
        it, as of any statement (tests count statements, tracing), when it has any."""
        sql, arguments = self.arguments(params)
        cursor = connection.cursor()
        try:
            if told is not None:
                told.dispatch.before_cursor_execute(told, cursor, sql, arguments, None, False)
            rows: Rows = cursor.execute(sql, arguments).fetchall()
            if told is not None:
                told.dispatch.after_cursor_execute(told, cursor, sql, arguments, None, False)
        finally:
            cursor.close()
        if not self.results or not rows:
            return rows
        results = self.results
        processed = []
        for row in rows:
            values = list(row)
            for i, process in results:
                values[i] = process(values[i])
            processed.append(tuple(values))
        return processed


_COMPILED: dict[Select[Any], _Compiled] = {}  # statements are built once (module level, lru caches)


class ReadUnit:
    """One read-only transaction on one pooled connection (see the module's docstring)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._connection: AsyncConnection | None = None
        self._sync: Connection | None = None
        self._sqlite: sqlite3.Connection | None = None
        self._session: AsyncSession | None = None

    async def open(self) -> None:
        engine = self._db.engine
        if self._db.is_sqlite:
            # checkout (awaits only when the pool is empty), then BEGIN DEFERRED on the loop
            pooled = await engine.raw_connection()
            try:
                self._sync = Connection(engine.sync_engine, connection=pooled)
                self._sync.begin()
            except BaseException:
                pooled.close()
                raise
            self._sqlite = pooled.driver_connection
            return
        self._connection = await engine.connect()
        await self._connection.begin()

    async def rows(self, statement: Select[Any], params: Mapping[str, Any]) -> Rows:
        if self._sqlite is not None:
            compiled = _COMPILED.get(statement)
            if compiled is None:
                compiled = _COMPILED[statement] = _Compiled(statement, self._db.engine.dialect)
            sync = self._sync
            told = sync if sync is not None and (sync._has_events or sync.engine._has_events) else None
            return compiled.rows(self._sqlite, params, told)
        assert self._connection is not None
        return [tuple(row) for row in await self._connection.execute(statement, dict(params))]

    def session(self) -> AsyncSession:
        """An ORM session in this unit's transaction (it never ends the transaction itself)."""
        if self._session is None:
            connection = self._connection
            if connection is None:
                assert self._sync is not None
                connection = self._connection = AsyncConnection(self._db.engine, self._sync)
            self._session = AsyncSession(bind=connection, expire_on_commit=False)
        return self._session

    async def close(self) -> None:
        """Roll back and give the connection back to the pool."""
        try:
            if self._session is not None:
                await self._session.close()
        finally:
            if self._sync is not None:
                self._sync.close()  # ROLLBACK and checkin: synchronous on SQLite
            elif self._connection is not None:
                await self._connection.close()
            self._session = self._connection = self._sync = self._sqlite = None


@dataclass
class Context:
    services: Services
    request: Any = None
    response: Any = None
    request_id: str | None = None
    language: str = "ja"  # "en" when Accept-Language prefers English
    loaders: dict[str, Any] = field(default_factory=dict)
    _unit: ReadUnit | None = field(default=None, init=False, repr=False)
    _unit_lock: asyncio.Lock | None = field(default=None, init=False, repr=False)
    _writing: bool = field(default=False, init=False, repr=False)

    @property
    def clock(self) -> Clock:
        return self.services.clock

    @contextlib.asynccontextmanager
    async def _use(self) -> AsyncIterator[ReadUnit]:
        """The request's read unit, opened by the first read; one user at a time. While a
        mutation's use case runs (``writing``): a short unit of its own, closed at once."""
        if self._writing:
            unit = ReadUnit(self.services.db)
            await unit.open()
            try:
                yield unit
            finally:
                await unit.close()
            return
        if self._unit_lock is None:
            self._unit_lock = asyncio.Lock()
        async with self._unit_lock:
            if self._unit is None:
                unit = ReadUnit(self.services.db)
                await unit.open()
                self._unit = unit
            yield self._unit

    async def rows(self, statement: Select[Any], params: Mapping[str, Any]) -> Rows:
        """The rows of a Core SELECT, as plain tuples in the order of its columns, read in the
        request's read unit."""
        async with self._use() as unit:
            return await unit.rows(statement, params)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """An ORM session in the request's read unit (see ``rows`` for Core reads)."""
        async with self._use() as unit:
            yield unit.session()

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Around a mutation's use case: the read unit ends first, reads inside take short
        units of their own (see the module's docstring), the next read after opens a new one."""
        await self.end_read()
        self._writing = True
        try:
            yield
        finally:
            self._writing = False

    async def end_read(self) -> None:
        """End the read unit (if one is open): the next read opens a new one."""
        if self._unit is None:
            return
        if self._unit_lock is None:
            self._unit_lock = asyncio.Lock()
        async with self._unit_lock:
            unit, self._unit = self._unit, None
            if unit is not None:
                await unit.close()

    async def close(self) -> None:
        """The request is over."""
        await self.end_read()
