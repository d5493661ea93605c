"""`tradecert db backup|restore`: a consistent copy of the database, and putting one back
(docs/operations.md, "Backup and restore")."""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
from pathlib import Path

import click

from resolvers.core.settings import Settings
from tradecert.cli.common import DEFAULT_DATA_DIR, check_database, fail, settings_from_env


def _libpq_env(settings: Settings) -> tuple[dict[str, str], str]:
    """Environment for pg_dump/pg_restore (host, port, user, password) and the database name."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    env = dict(os.environ)
    for name, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username), ("PGPASSWORD", url.password)):
        if value:
            env[name] = str(value)
    return env, url.database or ""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise fail(f"{name} not found — install the PostgreSQL client of the server's major version "
                   "(Debian: apt-get install postgresql-client)")
    return found


def _sqlite_source(settings: Settings) -> Path:
    from persistence.problems import sqlite_file

    path = sqlite_file(settings.database_url)
    if path is None:
        raise fail("an in-memory SQLite database has nothing to back up")
    if not path.is_file():
        raise fail(f"no SQLite database at {path} — check TRADECERT_DATABASE_URL")
    return path


def backup_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while the server keeps serving (a read
    transaction on the source, which in WAL mode waits for no writer and stops none), written
    beside ``target`` and renamed into place once checked."""
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # all pages in one step: one snapshot
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
            verdict = dst.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            dst.close()
    finally:
        src.close()
    if verdict != "ok":
        partial.unlink(missing_ok=True)
        raise fail(f"the copy of {source} fails SQLite's quick_check ({verdict}); {target} was not written")
    os.replace(partial, target)


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option("--force", is_flag=True, help="Replace PATH if it exists.")
def db_backup(path: Path, force: bool) -> None:
    """Back the database up into PATH, safe while the server runs.

    SQLite: the online backup API (one consistent file). PostgreSQL: pg_dump's custom format
    (restore with pg_restore), only TRADECERT_DATABASE_SCHEMA if it is set."""
    import asyncio

    settings = settings_from_env()
    if path.exists() and not force:
        raise fail(f"{path} exists — choose a new file or pass --force")
    if not path.parent.is_dir():
        raise fail(f"directory {path.parent} does not exist — create it first")
    asyncio.run(check_database(settings))
    if settings.is_sqlite:
        backup_sqlite(_sqlite_source(settings), path)
    else:
        env, database = _libpq_env(settings)
        command = [_tool("pg_dump"), "--format=custom", "--no-password", f"--file={path}", database]
        if settings.database_schema:
            command[-1:-1] = [f"--schema={settings.database_schema}"]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            path.unlink(missing_ok=True)
            raise fail(f"pg_dump failed: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    click.echo(f"backed up to {path} ({path.stat().st_size:,} bytes)")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already has tables.")
def db_restore(path: Path, force: bool) -> None:
    """Restore an SQLite backup (from `tradecert db backup`) into the configured database.

    Stop the server first. On PostgreSQL restore a pg_dump file with pg_restore
    (docs/operations.md); this command prints the line to run."""
    from persistence.problems import check_sqlite_directory, sqlite_file

    settings = settings_from_env()
    if not settings.is_sqlite:
        env, database = _libpq_env(settings)
        raise fail(f"on PostgreSQL restore with pg_restore: pg_restore --no-owner --exit-on-error "
                   f"-h {env.get('PGHOST', 'localhost')} -p {env.get('PGPORT', '5432')} -d {database} {path}")
    target = sqlite_file(settings.database_url)
    if target is None:
        raise fail("cannot restore into an in-memory SQLite database")
    check_sqlite_directory(settings.database_url, may_create=DEFAULT_DATA_DIR)
    try:
        source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        tables = {row[0] for row in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise fail(f"{path} is not an SQLite database ({exc})") from None
    if "alembic_version" not in tables:
        source.close()
        raise fail(f"{path} is not a tradecert backup (no alembic_version table)")
    if target.exists() and not force:
        with sqlite3.connect(target) as existing:
            if existing.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]:
                source.close()
                raise fail(f"{target} already has tables — stop the server and pass --force to replace it")
    try:
        destination = sqlite3.connect(target)
        try:
            source.backup(destination)  # through SQLite, so a -wal file beside the target is replaced too
        finally:
            destination.close()
    finally:
        source.close()
    click.echo(f"restored {path} into {target}")
