"""Benchmark: the SQLite driver path (persistence/sqlite_driver.py) against aiosqlite and raw sqlite3.

    .venv/bin/python bench/driver.py [--rounds 15] [--seconds 0.4] [--long-rows 100000]

Two units of work, each timed three ways on one SQLite file (WAL, synchronous NORMAL):
  read  — a read unit (BEGIN DEFERRED) of 10 small SELECTs by primary key, then its rollback;
  write — a write unit (BEGIN IMMEDIATE) of 5 statements (SELECT, UPDATE, INSERT,
          UPDATE … RETURNING, SELECT count), then COMMIT.
  (a) aiosqlite  — today's engine: SQLAlchemy's aiosqlite dialect, a thread hop per statement;
  (b) driver     — persistence.db.Database: the same SQLAlchemy Core statements on the loop;
  (c) sqlite3    — the same SQL through a plain sqlite3 connection on the loop: the floor.
Rounds are interleaved (the order rotates each round); each prints the median units/s and
the median of per-round ratios against (c), so a loaded machine shifts all three alike.

Then "what blocks the loop": a ticker task measures the longest gap between its ticks while
one write unit inserts --long-rows rows (one executemany), on (a), on (b), and on (b) with
Database.write_in_thread (the whole unit in a worker thread).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, event, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from persistence.db import Database

metadata = MetaData()
items = Table("items", metadata, Column("id", Integer, primary_key=True), Column("code", String, nullable=False),
              Column("n", Integer, nullable=False))
log = Table("log", metadata, Column("id", Integer, primary_key=True), Column("item_id", Integer, nullable=False),
            Column("note", String, nullable=False))
ROWS = 1000


def prepare(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, code TEXT NOT NULL, n INTEGER NOT NULL)")
    conn.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL, note TEXT NOT NULL)")
    conn.executemany("INSERT INTO items (code, n) VALUES (?, 0)", [(f"c{i:05d}",) for i in range(ROWS)])
    conn.close()


class Aiosqlite:
    """Today's engine, as persistence/db.py made it before the driver: aiosqlite, explicit BEGIN."""

    def __init__(self, path: Path) -> None:
        self.engine = create_async_engine(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 30})

        @event.listens_for(self.engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            for pragma in ("foreign_keys = ON", "journal_mode = WAL", "synchronous = NORMAL", "busy_timeout = 30000"):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        @event.listens_for(self.engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql(f"BEGIN {connection.get_execution_options().get('sqlite_begin', 'DEFERRED')}")

        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer = async_sessionmaker(self.engine.execution_options(sqlite_begin="IMMEDIATE"), expire_on_commit=False)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session:
            yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        async with self._writer() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


READ = select(items.c.code, items.c.n).where(items.c.id == bindparam("id"))
SELECT_N = select(items.c.n).where(items.c.id == bindparam("id"))
BUMP = update(items).where(items.c.id == bindparam("item")).values(n=items.c.n + 1)
NOTE = insert(log).values(item_id=bindparam("item"), note=bindparam("note"))
BUMP_RETURNING = update(items).where(items.c.id == bindparam("item")).values(n=items.c.n + 1).returning(items.c.n)
COUNT = select(func.count()).select_from(log).where(log.c.item_id == bindparam("item"))


async def read_unit(db: Any, i: int) -> None:
    async with db.read() as session:
        for k in range(10):
            (await session.execute(READ, {"id": (i * 10 + k) % ROWS + 1})).one()


async def write_unit(db: Any, i: int) -> None:
    item = i % ROWS + 1
    async with db.write() as session:
        await session.scalar(SELECT_N, {"id": item})
        await session.execute(BUMP, {"item": item})
        await session.execute(NOTE, {"item": item, "note": "bench"})
        (await session.execute(BUMP_RETURNING, {"item": item})).scalar_one()
        await session.scalar(COUNT, {"item": item})


class Raw:
    """The same SQL through one sqlite3 connection on the loop (no SQLAlchemy): the floor."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("foreign_keys = ON", "journal_mode = WAL", "synchronous = NORMAL", "busy_timeout = 30000"):
            self.conn.execute(f"PRAGMA {pragma}")

    async def read_unit(self, i: int) -> None:
        c = self.conn
        c.execute("BEGIN DEFERRED")
        try:
            for k in range(10):
                c.execute("SELECT code, n FROM items WHERE id = ?", ((i * 10 + k) % ROWS + 1,)).fetchall()
        finally:
            c.execute("ROLLBACK")

    async def write_unit(self, i: int) -> None:
        c, item = self.conn, i % ROWS + 1
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute("SELECT n FROM items WHERE id = ?", (item,)).fetchall()
            c.execute("UPDATE items SET n = n + 1 WHERE id = ?", (item,))
            c.execute("INSERT INTO log (item_id, note) VALUES (?, ?)", (item, "bench"))
            c.execute("UPDATE items SET n = n + 1 WHERE id = ? RETURNING n", (item,)).fetchall()
            c.execute("SELECT count(*) FROM log WHERE item_id = ?", (item,)).fetchall()
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")


async def rate(unit: Callable[[int], Awaitable[None]], seconds: float) -> float:
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(20):
            await unit(done)
            done += 1
    return done / elapsed


async def interleaved(variants: dict[str, Callable[[int], Awaitable[None]]], floor: str, rounds: int,
                      seconds: float) -> tuple[dict[str, tuple[float, float]], list[float]]:
    names = list(variants)
    rates: dict[str, list[float]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names}
    pairs: list[float] = []  # the second variant over the first, per round
    for unit in variants.values():  # warm up: connections, statement caches
        await rate(unit, seconds / 4)
    for r in range(rounds):
        got = {}
        for name in names[r % len(names):] + names[:r % len(names)]:
            got[name] = await rate(variants[name], seconds)
        for name in names:
            rates[name].append(got[name])
            ratios[name].append(got[name] / got[floor])
        pairs.append(got[names[1]] / got[names[0]])
    return {name: (statistics.median(rates[name]), statistics.median(ratios[name])) for name in names}, pairs


def long_rows(rows: int) -> list[dict[str, Any]]:
    return [{"item_id": i % ROWS + 1, "note": "long"} for i in range(rows)]


async def longest_loop_gap(db: Any, rows: int, in_thread: bool = False) -> tuple[float, float]:
    """(seconds the write unit took, longest gap between ticks of another task meanwhile)."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    start = time.perf_counter()
    if in_thread:
        await db.write_in_thread(lambda session: session.execute(insert(log), long_rows(rows)))
    else:
        async with db.write() as session:
            await session.execute(insert(log), long_rows(rows))
    took = time.perf_counter() - start
    stop.set()
    await task
    async with db.write() as session:
        await session.execute(text("DELETE FROM log WHERE note = 'long'"))
    return took, max(gaps)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=0.4, help="per variant per round")
    parser.add_argument("--long-rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        prepare(path)
        old, new, raw = Aiosqlite(path), Database(f"sqlite:///{path}"), Raw(path)
        try:
            for kind, unit in (("read unit, 10 SELECTs", read_unit), ("write unit, 5 statements", write_unit)):
                floor = raw.read_unit if unit is read_unit else raw.write_unit
                results, pairs = await interleaved({
                    "(a) aiosqlite": lambda i, u=unit: u(old, i),  # type: ignore[misc]
                    "(b) driver": lambda i, u=unit: u(new, i),  # type: ignore[misc]
                    "(c) sqlite3 on the loop": floor,
                }, "(c) sqlite3 on the loop", args.rounds, args.seconds)
                print(f"\n{kind}: {args.rounds} interleaved rounds, medians")
                for name, (units, ratio) in results.items():
                    print(f"  {name:<26} {units:>9.0f} units/s   {ratio:5.2f} of sqlite3")
                print(f"  (b) driver / (a) aiosqlite, median of per-round ratios: {statistics.median(pairs):.2f}x")
            print(f"\nwhat blocks the loop: one write unit inserting {args.long_rows:,} rows (executemany)")
            for name, db, in_thread in (("(a) aiosqlite", old, False), ("(b) driver", new, False),
                                        ("(b) driver, write_in_thread", new, True)):
                took, gap = await longest_loop_gap(db, args.long_rows, in_thread)
                print(f"  {name:<26} unit {took * 1000:7.0f} ms   longest loop gap {gap * 1000:7.1f} ms")
        finally:
            await old.dispose()
            await new.dispose()
            raw.conn.close()


if __name__ == "__main__":
    asyncio.run(main())
