"""The SQLite driver path (persistence/sqlite_driver.py): one unit of work, no thread hop per statement."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from persistence.db import Database
from tests.conftest import DbTarget

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")  # the old URL maps to the new driver
    async with database.write() as session:
        await session.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, n INTEGER)"))
        await session.execute(text("INSERT INTO items (code, n) VALUES ('a', 0)"))
    try:
        yield database
    finally:
        await database.dispose()


def _path(database: Database) -> str:
    path = database.engine.url.database
    assert path
    return path


async def test_statements_of_a_unit_run_on_the_event_loop_thread(db: Database) -> None:
    threads: list[int] = []

    def record(*_args: object) -> None:
        threads.append(threading.get_ident())

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with db.read() as session:
            for _ in range(3):
                await session.execute(text("SELECT n FROM items"))
        async with db.write() as session:
            await session.execute(text("UPDATE items SET n = n + 1"))
            await session.execute(text("SELECT n FROM items"))
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    assert len(threads) == 5
    assert set(threads) == {threading.get_ident()}  # the thread running this test's event loop


async def test_a_write_unit_holds_the_write_lock_and_a_read_unit_does_not(db: Database) -> None:
    other = sqlite3.connect(_path(db), timeout=0, isolation_level=None)
    try:
        async with db.read() as session:
            await session.execute(text("SELECT n FROM items"))
            other.execute("BEGIN IMMEDIATE")  # a reader leaves the write lock free
            other.execute("ROLLBACK")
        async with db.write() as session:
            await session.execute(text("SELECT n FROM items"))  # a read only — yet the write lock is held
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()


async def test_a_write_waiting_for_the_write_lock_leaves_the_loop_free(db: Database) -> None:
    holder = sqlite3.connect(_path(db), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another connection (here: of this process) holds the write lock

    async def bump() -> None:
        async with db.write() as session:
            await session.execute(text("UPDATE items SET n = n + 1"))

    writer = asyncio.create_task(bump())
    try:
        await asyncio.sleep(0.2)  # returns only if the loop is not stuck inside SQLite's busy wait
        assert not writer.done()
        async with db.read() as session:  # and other units keep being served meanwhile
            assert await session.scalar(text("SELECT n FROM items")) == 0
        holder.execute("UPDATE items SET n = 10")
        holder.execute("COMMIT")
        await writer
    finally:
        holder.close()
    async with db.read() as session:
        assert await session.scalar(text("SELECT n FROM items")) == 11


async def test_a_write_that_never_gets_the_lock_fails_as_database_is_locked(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'locked.db'}", lock_timeout=0.2)
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="database is locked"):
            async with db.write() as session:
                await session.execute(text("SELECT 1"))
        holder.execute("ROLLBACK")
        async with db.write() as session:  # the connection and the in-process queue are usable again
            assert await session.scalar(text("SELECT 1")) == 1
    finally:
        holder.close()
        await db.dispose()


async def test_write_units_of_one_process_take_turns_in_arrival_order(db: Database) -> None:
    order: list[int] = []
    first_in = asyncio.Event()
    release = asyncio.Event()

    async def unit(i: int) -> None:
        async with db.write() as session:
            n = await session.scalar(text("SELECT n FROM items"))
            order.append(i)
            if i == 0:
                first_in.set()
                await release.wait()  # the write lock is held across awaits of the unit
            await session.execute(text("UPDATE items SET n = :n"), {"n": n + 1})

    first = asyncio.create_task(unit(0))
    await first_in.wait()
    others = [asyncio.create_task(unit(i)) for i in (1, 2, 3)]
    await asyncio.sleep(0.05)
    assert order == [0]
    release.set()
    await asyncio.gather(first, *others)
    assert order == [0, 1, 2, 3]
    async with db.read() as session:
        assert await session.scalar(text("SELECT n FROM items")) == 4  # no update lost


async def test_a_unique_violation_is_an_integrity_error_and_writes_nothing(db: Database) -> None:
    with pytest.raises(IntegrityError) as raised:
        async with db.write() as session:
            await session.execute(text("UPDATE items SET n = 5"))
            await session.execute(text("INSERT INTO items (code, n) VALUES ('a', 1)"))
    assert isinstance(raised.value.orig, sqlite3.IntegrityError)
    async with db.read() as session:
        assert [tuple(row) for row in await session.execute(text("SELECT code, n FROM items"))] == [("a", 0)]


async def test_a_foreign_key_violation_is_an_integrity_error(db: Database) -> None:
    async with db.write() as session:
        await session.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, item_id INTEGER REFERENCES items (id))"))
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            await session.execute(text("INSERT INTO notes (item_id) VALUES (999)"))


async def test_an_unread_returning_does_not_keep_the_unit_from_committing(db: Database) -> None:
    async with db.write() as session:
        await session.execute(text("UPDATE items SET n = n + 7 RETURNING id, n"))  # result never read
        inserted = await session.execute(text("INSERT INTO items (code, n) VALUES ('b', 1) RETURNING id"))
        assert inserted.scalar_one() == 2
    async with db.read() as session:
        rows = await session.execute(text("SELECT code, n FROM items ORDER BY id"))
        assert [tuple(row) for row in rows] == [("a", 7), ("b", 1)]


async def test_a_read_unit_never_commits(db: Database) -> None:
    async with db.read() as session:
        await session.execute(text("SELECT n FROM items"))
        await session.execute(text("UPDATE items SET n = 99"))  # not how read units are used; proves rollback
    async with db.read() as session:
        assert await session.scalar(text("SELECT n FROM items")) == 0


_WORKER = textwrap.dedent("""
    import asyncio, sys, time
    from pathlib import Path
    from sqlalchemy import text
    from persistence.db import Database

    async def main(url: str, rounds: int, gate: Path) -> None:
        db = Database(url)
        try:
            async with db.read() as session:
                await session.execute(text("SELECT 1"))
            (gate / f"ready-{id(db)}-{time.monotonic_ns()}").touch()
            while not (gate / "go").exists():  # start together, so the two really contend
                await asyncio.sleep(0.005)
            for _ in range(rounds):
                async with db.write() as session:  # read, then write what was read: lost updates would show
                    n = await session.scalar(text("SELECT n FROM items"))
                    await asyncio.sleep(0)
                    await session.execute(text("UPDATE items SET n = :n"), {"n": n + 1})
        finally:
            await db.dispose()

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])))
""")


async def test_two_processes_writing_one_file_lose_no_update(db: Database, tmp_path: Path) -> None:
    rounds = 300
    url = f"sqlite+aiosqlite:///{_path(db)}"
    gate = tmp_path / "gate"
    gate.mkdir()
    workers = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", _WORKER, url, str(rounds), str(gate), cwd=ROOT,
                                             stderr=asyncio.subprocess.PIPE)
        for _ in range(2)
    ]
    while len(list(gate.glob("ready-*"))) < 2 and all(w.returncode is None for w in workers):  # noqa: ASYNC110 - other processes
        await asyncio.sleep(0.01)
    (gate / "go").touch()
    for worker in workers:
        _out, err = await worker.communicate()
        assert worker.returncode == 0, err.decode()
    async with db.read() as session:
        assert await session.scalar(text("SELECT n FROM items")) == 2 * rounds


async def test_the_engine_serves_core_connections_as_well_as_sessions(db: Database) -> None:
    assert await db.ping()  # AsyncConnection.execute insists that its driver awaited
    async with db.engine.begin() as conn:
        await conn.execute(text("UPDATE items SET n = 3"))
        assert (await conn.exec_driver_sql("SELECT n FROM items")).scalar_one() == 3
    async with db.engine.connect() as conn:
        streamed = await conn.stream(text("SELECT code FROM items"))
        assert [row.code async for row in streamed] == ["a"]
        assert await conn.scalar(text("SELECT n FROM items")) == 3


async def test_a_unit_run_in_a_thread_leaves_the_loop_serving_and_commits(db: Database) -> None:
    loop_ran = threading.Event()
    threads: list[int] = []

    def long_unit(session: Session) -> int:
        threads.append(threading.get_ident())
        session.execute(text("UPDATE items SET n = n + 1"))
        # Waits for a task on the event loop: it could never run if this unit blocked the loop.
        assert loop_ran.wait(timeout=20)
        return int(session.execute(text("SELECT n FROM items")).scalar_one())

    async def on_the_loop() -> None:
        async with db.read() as session:  # a read unit meanwhile sees the last committed state
            assert await session.scalar(text("SELECT n FROM items")) == 0
        loop_ran.set()

    unit = asyncio.create_task(db.write_in_thread(long_unit))
    await asyncio.sleep(0)
    await on_the_loop()
    assert await unit == 1
    assert threads and threads[0] != threading.get_ident()
    async with db.read() as session:
        assert await session.scalar(text("SELECT n FROM items")) == 1


async def test_a_unit_run_in_a_thread_that_fails_writes_nothing(db: Database) -> None:
    def failing(session: Session) -> None:
        session.execute(text("UPDATE items SET n = 5"))
        session.execute(text("INSERT INTO items (code, n) VALUES ('a', 1)"))

    with pytest.raises(IntegrityError):
        await db.write_in_thread(failing)
    async with db.read() as session:
        assert await session.scalar(text("SELECT n FROM items")) == 0


async def test_a_unit_run_in_a_thread_takes_its_turn_among_write_units(db: Database) -> None:
    order: list[str] = []
    inside = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with db.write() as session:
            await session.execute(text("UPDATE items SET n = n + 1"))
            inside.set()
            await release.wait()
            order.append("write unit")

    def threaded(session: Session) -> None:
        order.append("thread unit")
        session.execute(text("UPDATE items SET n = n * 10"))

    holder = asyncio.create_task(first())
    await inside.wait()
    waiting = asyncio.create_task(db.write_in_thread(threaded))
    await asyncio.sleep(0.05)
    assert order == []
    release.set()
    await asyncio.gather(holder, waiting)
    assert order == ["write unit", "thread unit"]
    async with db.read() as session:
        assert await session.scalar(text("SELECT n FROM items")) == 10


async def test_the_same_unit_runs_in_a_thread_on_either_database(db_target: DbTarget) -> None:
    database = db_target.database()
    try:
        async with database.write() as session:
            await session.execute(text("CREATE TABLE tallies (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
            await session.execute(text("INSERT INTO tallies (id, n) VALUES (1, 0)"))

        def bump(session: Session) -> int:
            return int(session.execute(text("UPDATE tallies SET n = n + 2 WHERE id = 1 RETURNING n")).scalar_one())

        assert await database.write_in_thread(bump) == 2
        async with database.read() as session:
            assert await session.scalar(text("SELECT n FROM tallies")) == 2
    finally:
        await database.dispose()
