"""Why the configured database cannot be used, in one line an operator can act on.

The CLI (`tradecert db upgrade`, `serve`, `demo seed`, `jobs run`, …) checks the database
before it starts work (:func:`check`) and, should a connection still fail later, turns the
driver's exception into the same kind of line (:func:`explain`): what is missing, and what
to do — never a traceback. Each line names the setting to fix (``TRADECERT_DATABASE_URL``,
``TRADECERT_DATABASE_SCHEMA``); a password in the URL is never shown.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

_UNREACHABLE = {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT}


class DatabaseUnavailable(Exception):
    """The configured database cannot be used; the message is one line saying why and what to do."""


def _server(url: URL) -> str:
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def _psql(url: URL) -> str:
    """How to reach the server with psql, for a hint (no password)."""
    user = f" -U {url.username}" if url.username else ""
    return f"psql -h {url.host or 'localhost'} -p {url.port or 5432}{user}"


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL (None for PostgreSQL or an in-memory database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def check_sqlite_directory(url: str, may_create: Path | None = None) -> None:
    """Refuse an SQLite file whose directory does not exist (a mistyped path would otherwise
    start an empty database). ``may_create``: the one directory made on demand (the default
    ``var/`` of a checkout)."""
    path = sqlite_file(url)
    if path is None or path.parent.is_dir():
        return
    if may_create is not None and path.parent.resolve() == may_create.resolve():
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    raise DatabaseUnavailable(
        f"SQLite database {path}: directory {path.parent} does not exist — create it "
        f"(mkdir -p {path.parent}) or fix TRADECERT_DATABASE_URL")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what SQLAlchemy wraps (``.orig``) and its causes, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]


def explain(exc: BaseException, url: str, schema: str | None) -> str | None:
    """One line for a failure to reach or use the database, or None if ``exc`` is something else."""
    parsed = make_url(url)
    for found in _chain(exc):
        if isinstance(found, DatabaseUnavailable):
            return str(found)
        sqlstate = getattr(found, "sqlstate", None) or getattr(found, "pgcode", None)
        name = type(found).__name__
        if sqlstate == "3D000" or name == "InvalidCatalogNameError":
            return (f'PostgreSQL database "{parsed.database}" does not exist on {_server(parsed)} — create it '
                    f'({_psql(parsed)} -c \'CREATE DATABASE "{parsed.database}"\') or fix TRADECERT_DATABASE_URL')
        if sqlstate == "3F000" or name == "InvalidSchemaNameError":
            return _missing_schema(parsed, schema)
        if sqlstate in ("28P01", "28000"):
            return (f'PostgreSQL on {_server(parsed)} refused user "{parsed.username}" for database '
                    f'"{parsed.database}" — check the user and password in TRADECERT_DATABASE_URL (and pg_hba.conf)')
        if sqlstate == "57P03":
            return f"PostgreSQL on {_server(parsed)} is starting up or shutting down — try again in a moment"
        if isinstance(found, sqlite3.OperationalError) and "unable to open database file" in str(found):
            return (f"SQLite database {parsed.database}: cannot open the file — check that its directory exists "
                    "and is writable by this user, or fix TRADECERT_DATABASE_URL")
        if sqlstate == "42P01" or (isinstance(found, sqlite3.OperationalError) and str(found).startswith("no such table")):
            return "the database has no tradecert tables yet — run `tradecert db upgrade` first"
        if parsed.get_backend_name() != "postgresql":
            continue
        if isinstance(found, socket.gaierror):
            return f"PostgreSQL host {parsed.host!r} is unknown — fix the host in TRADECERT_DATABASE_URL"
        if isinstance(found, (ConnectionError, TimeoutError)) or (
                isinstance(found, OSError) and (found.errno in _UNREACHABLE or "Connect call failed" in str(found))):
            reason = ("connection refused" if isinstance(found, ConnectionRefusedError)
                      else "timed out" if isinstance(found, TimeoutError) else str(found) or type(found).__name__)
            return (f"cannot reach PostgreSQL at {_server(parsed)} ({reason}) — start the server "
                    "or fix the host and port in TRADECERT_DATABASE_URL")
    return None


def _missing_schema(url: URL, schema: str | None) -> str:
    if not schema:
        return (f'PostgreSQL database "{url.database}" has no schema to create tables in (search_path) — '
                "set TRADECERT_DATABASE_SCHEMA to an existing schema")
    return (f'schema "{schema}" does not exist in PostgreSQL database "{url.database}" on {_server(url)} — '
            f'create it ({_psql(url)} -d {url.database} -c \'CREATE SCHEMA "{schema}"\') '
            "or fix TRADECERT_DATABASE_SCHEMA")


async def check(engine: AsyncEngine, url: str, schema: str | None) -> None:
    """Connect once and, on PostgreSQL, make sure the schema exists; raise
    :class:`DatabaseUnavailable` with the line to print otherwise."""
    try:
        async with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                found = (await conn.execute(text("SELECT current_schema()"))).scalar()
                if found is None:  # the search_path names no existing schema
                    raise DatabaseUnavailable(_missing_schema(make_url(url), schema))
            else:
                await conn.execute(text("SELECT 1"))
    except DatabaseUnavailable:
        raise
    except Exception as exc:
        line = explain(exc, url, schema)
        if line is None:
            raise
        raise DatabaseUnavailable(line) from None
