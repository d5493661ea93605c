"""Shared fixtures: real databases (SQLite file, PostgreSQL schema per test), real HTTP
(uvicorn on loopback), and a clock tests set.

PostgreSQL tests need the server at 127.0.0.1:5432 (trust auth, database `test`). Under
CI (CI=true) an unreachable server fails the run; elsewhere those tests are skipped with
that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import make_url

from persistence import migrate
from persistence.db import Database
from resolvers.core.clock import TOKYO, FixedClock
from resolvers.core.context import Services
from resolvers.core.settings import PROJECT_DIR, Settings
from rules.runtime import RulesRuntime
from tradecert.app import create_app
from tradecert.composition import build_services
from tradecert.demo import seed_demo

PG_BASE = os.environ.get("TRADECERT_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
PG_DSN = PG_BASE.replace("postgresql+asyncpg://", "postgresql://")
RULES_DIR = PROJECT_DIR / "rules"


def tokyo(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TOKYO)


# --------------------------------------------------------------------------- rule files


def _parse_each_text_once() -> None:
    """Every test's server loads a copy of the same rule files, and pure-Python YAML parsing
    is most of that load (~0.1 s a test). ``read_yaml`` is a function of the text alone, so
    the suite parses each distinct text once and hands out deep copies; a text that does
    not parse is never cached and raises each time, exactly as before."""
    import copy
    import functools

    from rules import policy

    parse = functools.lru_cache(maxsize=256)(policy.read_yaml)

    def read_yaml(text: str) -> object:
        return copy.deepcopy(parse(text))

    policy.read_yaml = read_yaml


_parse_each_text_once()


# --------------------------------------------------------------------------- markers

_PROCESS_WORDS = ("subprocess", "Popen")  # a module that starts processes: servers, the CLI, tools
_BROWSER_WORDS = ("playwright",)


def pytest_collection_modifyitems(config, items):
    """Mark process-level tests by what their module runs, so new modules are marked too:
    ``process`` (starts processes) and ``browser`` (drives chromium). ``-m "not process"``
    is the quick in-process loop; ``make test`` runs everything."""
    seen: dict[str, tuple[bool, bool]] = {}
    for item in items:
        path = str(item.path)
        if path not in seen:
            try:
                source = Path(path).read_text(encoding="utf-8")
            except OSError:
                source = ""
            seen[path] = (any(w in source for w in _PROCESS_WORDS), any(w in source for w in _BROWSER_WORDS))
        process, browser = seen[path]
        if process:
            item.add_marker(pytest.mark.process)
        if browser:
            item.add_marker(pytest.mark.browser)


# --------------------------------------------------------------------------- PostgreSQL

_pg_state: dict[str, Any] = {}


def _pg_reachable() -> str | None:
    if "error" not in _pg_state:
        try:
            with socket.create_connection(("127.0.0.1", 5432), timeout=2):
                _pg_state["error"] = None
        except OSError as exc:
            _pg_state["error"] = f"PostgreSQL at 127.0.0.1:5432 unreachable: {exc}"
    return _pg_state["error"]


def require_postgres() -> None:
    error = _pg_reachable()
    if error:
        if os.environ.get("CI"):
            pytest.fail(error + " (CI must run the PostgreSQL tests)")
        pytest.skip(error)


async def create_pg_schema() -> str:
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await conn.close()
    return name


async def drop_pg_schema(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


@dataclass
class DbTarget:
    kind: str  # "sqlite" | "postgresql"
    url: str
    schema: str | None

    def database(self) -> Database:
        return Database(self.url, schema=self.schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_kind(request) -> str:
    """The database kind a test runs on: every database fixture below is parametrised by it."""
    return request.param


@pytest.fixture
async def db_target(db_kind, tmp_path):
    """An empty database of each kind; PostgreSQL gets its own schema so runs never collide."""
    if db_kind == "sqlite":
        yield DbTarget("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'tradecert.db'}", None)
        return
    require_postgres()
    schema = await create_pg_schema()
    try:
        yield DbTarget("postgresql", PG_BASE, schema)
    finally:
        await drop_pg_schema(schema)


class Templates:
    """One migrated, seeded database per kind, made once per session; each test gets a copy.

    SQLite: the template file, checkpointed and closed, is copied (``shutil.copy``).
    PostgreSQL: a template schema of database ``test``, restored per test into a schema of its
    own (``pg_copy``), so a test's target is ``(PG_BASE, schema t_<random>)`` as before.
    Names carry a random part: other sessions (other worktrees, xdist workers) share the server.
    """

    SEED_CLOCK = tokyo(2026, 3, 1, 9, 0)  # the demo seed's day, as when every test seeded its own

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.sqlite_file: Path | None = None
        self.pg_schema: str | None = None
        self._pg_ddl: tuple[str, str] = ("", "")
        self._pg_tables: list[str] = []
        self._pg_sequences: list[tuple[str, int]] = []
        self._lock = asyncio.Lock()

    async def sqlite_copy(self, target: Path) -> None:
        async with self._lock:
            if self.sqlite_file is None:
                path = self.directory / "template.db"
                db = Database(f"sqlite+aiosqlite:///{path}")
                try:
                    await migrate.upgrade(db.engine)
                    await seed_demo(db, FixedClock(self.SEED_CLOCK))
                finally:
                    await db.dispose()
                import sqlite3

                with contextlib.closing(sqlite3.connect(path)) as conn:  # fold the WAL into the file
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                for side in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                    side.unlink(missing_ok=True)
                self.sqlite_file = path
        shutil.copy(self.sqlite_file, target)

    async def pg_copy(self) -> str:
        """A new schema of database ``test`` restored from the template schema; returns its name.

        The template schema is migrated and seeded once; pg_dump's pre-data and post-data DDL of
        it, with the schema's name replaced, re-create it exactly as pg_restore would: tables and
        sequences, then the rows (``INSERT … SELECT``) and sequence positions, then indexes,
        constraints and foreign keys. (``CREATE DATABASE … TEMPLATE`` was tried first: on
        PostgreSQL 15 every DROP DATABASE forces a cluster-wide checkpoint, seconds on a busy
        server, for this run and everyone else's.)"""
        name = await create_pg_schema()
        if not shutil.which("pg_dump"):  # no postgresql-client: migrate and seed this one
            db = Database(PG_BASE, schema=name)
            try:
                await migrate.upgrade(db.engine)
                await seed_demo(db, FixedClock(self.SEED_CLOCK))
            finally:
                await db.dispose()
            return name
        async with self._lock:
            if self.pg_schema is None:
                self.pg_schema = await self._pg_template()
        import asyncpg

        conn = await asyncpg.connect(PG_DSN)
        try:
            async with conn.transaction():
                await conn.execute(f'DROP SCHEMA "{name}"')  # the pre-data DDL creates it
                await conn.execute(self._pg_ddl[0].replace(self.pg_schema, name))
                await conn.execute("\n".join(
                    [f'INSERT INTO "{name}"."{t}" OVERRIDING SYSTEM VALUE SELECT * FROM "{self.pg_schema}"."{t}";'
                     for t in self._pg_tables]
                    + [f"SELECT pg_catalog.setval('\"{name}\".\"{q}\"', {value}, true);"
                       for q, value in self._pg_sequences]))
                await conn.execute(self._pg_ddl[1].replace(self.pg_schema, name))
        finally:
            await conn.close()
        return name

    async def _pg_template(self) -> str:
        import asyncpg

        name = f"tctpl_{uuid.uuid4().hex[:12]}"  # unique text: the DDL is re-targeted by replacing it
        await pg_admin(f'CREATE SCHEMA "{name}"')
        db = Database(PG_BASE, schema=name)
        try:
            await migrate.upgrade(db.engine)
            await seed_demo(db, FixedClock(self.SEED_CLOCK))
        finally:
            await db.dispose()
        database = make_url(PG_BASE).database or "test"
        sections = []
        for section in ("pre-data", "post-data"):
            done = await asyncio.to_thread(
                subprocess.run, ["pg_dump", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "--no-owner",
                                 "--no-privileges", f"--section={section}", "-n", name, database],
                capture_output=True, text=True, check=True)
            # psql meta-commands (\\restrict …) are for psql; the SQL (search_path emptied, all names
            # qualified) runs on a connection of its own
            sections.append("\n".join(line for line in done.stdout.splitlines() if not line.startswith("\\")))
        self._pg_ddl = (sections[0], sections[1])
        conn = await asyncpg.connect(PG_DSN)
        try:
            tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", name)
            sequences = await conn.fetch("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = $1",
                                         name)
        finally:
            await conn.close()
        self._pg_tables = [str(t["tablename"]) for t in tables]
        self._pg_sequences = [(str(q["sequencename"]), int(q["last_value"])) for q in sequences
                              if q["last_value"] is not None]
        return name

    async def close(self) -> None:
        if self.pg_schema is not None:
            await drop_pg_schema(self.pg_schema)


async def pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def db_templates(tmp_path_factory):
    templates = Templates(tmp_path_factory.mktemp("db-templates"))
    try:
        yield templates
    finally:
        await templates.close()


@pytest.fixture
async def migrated(db_kind, db_templates, tmp_path):
    """A migrated database with the demo data, of each kind (a copy of the session's template)."""
    if db_kind == "sqlite":
        path = tmp_path / "tradecert.db"  # where db_target puts it
        await db_templates.sqlite_copy(path)
        target = DbTarget("sqlite", f"sqlite+aiosqlite:///{path}", None)
    else:
        require_postgres()
        schema = await db_templates.pg_copy()
        target = DbTarget("postgresql", PG_BASE, schema)
    db = target.database()
    try:
        yield target, db
    finally:
        await db.dispose()
        if target.schema is not None:
            await drop_pg_schema(target.schema)


# --------------------------------------------------------------------------- HTTP server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    clock: FixedClock
    services: Services
    rules_dir: Path
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def graphql(self, query: str, variables: dict | None = None, headers: dict | None = None) -> httpx.Response:
        with self.client() as client:
            return client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers or {})

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def start_server(settings: Settings, clock: FixedClock, schema: str | None = None) -> LiveServer:
    """uvicorn on a free loopback port in a thread; the app builds its own engine there."""
    port = _free_port()
    settings = settings.with_(public_url=f"http://127.0.0.1:{port}")
    services = build_services(
        settings=settings,
        db=Database(settings.database_url, schema=schema),
        rules=RulesRuntime(settings.rules_dir),
        clock=clock,
    )
    app = create_app(settings, services=services)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on", access_log=False,
                            proxy_headers=False)  # as `tradecert serve`: X-Forwarded-For per TRADECERT_TRUSTED_PROXIES
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    return LiveServer(f"http://127.0.0.1:{port}", clock, services, settings.rules_dir, server, thread)


@pytest.fixture
def rules_copy(tmp_path) -> Path:
    """A private copy of the rule files a test may edit (TRADECERT_RULES_DIR)."""
    target = tmp_path / "rules"
    target.mkdir()
    for path in RULES_DIR.glob("*.yaml"):
        shutil.copy(path, target / path.name)
    shutil.copytree(RULES_DIR / "tests", target / "tests")
    return target


def settings_for(url: str, rules_dir: Path, **changes) -> Settings:
    base = Settings.from_env({"TRADECERT_DATABASE_URL": url, "TRADECERT_RULES_DIR": str(rules_dir)})
    return base.with_(rules_poll_seconds=0, run_jobs=False, **changes)


class MailCatcher:
    """A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        import email
        import email.policy

        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    catcher = MailCatcher()
    controller = Controller(catcher, hostname="127.0.0.1", port=_free_port())
    controller.start()
    catcher.url = f"smtp://127.0.0.1:{controller.port}"
    catcher.controller = controller
    try:
        yield catcher
    finally:
        catcher.controller.stop()  # a test may have replaced it


@pytest.fixture
async def live(migrated, rules_copy, smtp):
    """A running server on each database kind, with the demo data, a fixed clock and
    real SMTP (``live.smtp``); ``await live.run_job(name)`` runs a job now."""
    target, db = migrated
    clock = FixedClock(tokyo(2026, 4, 1, 10, 0))
    settings = settings_for(target.url, rules_copy, smtp_url=smtp.url)
    server = await asyncio.to_thread(start_server, settings, clock, target.schema)
    server.smtp = smtp

    async def run_job(name: str):
        from tradecert import jobs

        services = build_services(settings=server.services.settings, db=db, rules=server.services.rules, clock=clock)
        [outcome] = await jobs.run_jobs(services, [name])
        return outcome

    server.run_job = run_job
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


def pdf_text(tmp_path: Path, content: bytes, name: str) -> str:
    """The text of a PDF by poppler's pdftotext (CI installs it; a developer without it skips)."""
    import shutil
    import subprocess

    if not shutil.which("pdftotext"):
        if os.environ.get("CI"):
            pytest.fail("pdftotext (poppler-utils) is not installed; .ci/run installs it")
        pytest.skip("pdftotext (poppler-utils) is not installed: apt-get install poppler-utils")
    path = tmp_path / name
    path.write_bytes(content)
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
