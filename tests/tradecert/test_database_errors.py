"""A database that cannot be used ends every command with one line saying what is missing and
what to do, exit status 1, and no traceback — the real `tradecert` command as a subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_BASE, _free_port, create_pg_schema, drop_pg_schema, require_postgres

TRADECERT = str(Path(sys.executable).parent / "tradecert")
COMMANDS = [["db", "upgrade"], ["demo", "seed"], ["jobs", "run"], ["serve", "--port", "0"], ["serve", "--port", "0", "--workers", "2"]]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "TRADECERT_DATABASE_SCHEMA": "", "TRADECERT_RUN_JOBS": "0", "COLUMNS": "400", **env}
    return subprocess.run([TRADECERT, *args], capture_output=True, text=True, env=full_env, timeout=120)


def one_line(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_schema_that_does_not_exist(command):
    require_postgres()
    line = one_line(run(command, {"TRADECERT_DATABASE_URL": PG_BASE, "TRADECERT_DATABASE_SCHEMA": "no_such_schema_x"}))
    assert 'schema "no_such_schema_x" does not exist in PostgreSQL database "test"' in line
    assert "CREATE SCHEMA" in line and "TRADECERT_DATABASE_SCHEMA" in line


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_postgresql_database_that_does_not_exist(command):
    require_postgres()
    url = PG_BASE.rsplit("/", 1)[0] + "/no_such_database_x"
    line = one_line(run(command, {"TRADECERT_DATABASE_URL": url}))
    assert 'PostgreSQL database "no_such_database_x" does not exist on 127.0.0.1:5432' in line
    assert "CREATE DATABASE" in line and "TRADECERT_DATABASE_URL" in line


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_an_unreachable_server(command):
    port = _free_port()  # nothing listens there
    line = one_line(run(command, {"TRADECERT_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test"}))
    assert f"cannot reach PostgreSQL at 127.0.0.1:{port} (connection refused)" in line
    assert "start the server" in line


@pytest.mark.parametrize("command", [*COMMANDS, ["db", "backup", "backup.db"]], ids=" ".join)
def test_an_sqlite_file_in_a_missing_directory(command, tmp_path):
    missing = tmp_path / "no-such-dir"
    line = one_line(run(command, {"TRADECERT_DATABASE_URL": f"sqlite:///{missing / 'tradecert.db'}"}))
    assert f"directory {missing} does not exist" in line and "mkdir -p" in line
    assert not missing.exists()  # a mistyped path no longer starts an empty database


@pytest.mark.parametrize("command", [["jobs", "run"], ["serve", "--port", "0"]], ids=" ".join)
def test_a_schema_without_tables_asks_for_db_upgrade(command):
    require_postgres()
    schema = asyncio.run(create_pg_schema())
    try:
        line = one_line(run(command, {"TRADECERT_DATABASE_URL": PG_BASE, "TRADECERT_DATABASE_SCHEMA": schema}))
    finally:
        asyncio.run(drop_pg_schema(schema))
    assert line == "Error: the database has no tradecert tables yet — run `tradecert db upgrade` first"


def test_serve_refuses_a_database_behind_this_release():
    from alembic.script import ScriptDirectory

    from persistence import migrate
    from persistence.db import Database

    require_postgres()
    head = migrate.head_revision()
    previous = ScriptDirectory.from_config(migrate.alembic_config()).get_revision(head).down_revision
    schema = asyncio.run(create_pg_schema())

    async def migrate_to_previous() -> None:
        db = Database(PG_BASE, schema=schema)
        try:
            await migrate.upgrade(db.engine, str(previous))
        finally:
            await db.dispose()

    try:
        asyncio.run(migrate_to_previous())
        line = one_line(run(["serve", "--port", "0"], {"TRADECERT_DATABASE_URL": PG_BASE, "TRADECERT_DATABASE_SCHEMA": schema}))
    finally:
        asyncio.run(drop_pg_schema(schema))
    assert line == (f"Error: the database is at revision {previous}, this release needs {head} — "
                    "back it up, then run `tradecert db upgrade`")


def test_db_upgrade_then_works_in_the_schema_it_named(tmp_path):
    require_postgres()
    schema = asyncio.run(create_pg_schema())
    try:
        done = run(["db", "upgrade"], {"TRADECERT_DATABASE_URL": PG_BASE, "TRADECERT_DATABASE_SCHEMA": schema})
    finally:
        asyncio.run(drop_pg_schema(schema))
    assert done.returncode == 0 and "database at revision" in done.stdout, done.stderr
