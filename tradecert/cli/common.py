"""What every command shares: the consoles, the settings, the database and its checks before
work, the rules, and the one-line errors every command ends with when the database cannot be
used (docs/operations.md).

Imports only click, rich and the settings at module level: `tradecert --help` stays fast."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from resolvers.core.settings import PROJECT_DIR, Settings

if TYPE_CHECKING:  # the commands import what they use when they run (a fast `--help`)
    from persistence.db import Database
    from rules.policy import PolicySet

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)
DEFAULT_DATA_DIR = PROJECT_DIR / "var"  # the one directory an SQLite database may create for itself


def settings_from_env() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


class OneLineErrors(click.Group):
    """The `tradecert` group: a database that cannot be reached or used (no server, no such
    database or schema, no tables yet, a missing directory) ends the command with one line on
    stderr saying what is missing and what to do, and exit status 1 — never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            line = _database_problem(exc)
            if line is None:
                raise
            raise click.ClickException(line) from None


def _database_problem(exc: BaseException) -> str | None:
    from persistence.problems import explain

    try:
        settings = Settings.from_env()
    except ValueError:
        return None
    return explain(exc, settings.database_url, settings.database_schema)


def fail(message: str) -> click.ClickException:
    return click.ClickException(message)


async def check_database(settings: Settings) -> None:
    """Raise DatabaseUnavailable (one line) unless the configured database can be reached and,
    on PostgreSQL, its schema exists. An SQLite file's directory must exist, except the default
    ``var/`` of a checkout, which is made."""
    from persistence.db import Database
    from persistence.problems import check, check_sqlite_directory

    check_sqlite_directory(settings.database_url, may_create=DEFAULT_DATA_DIR)
    database = Database(settings.database_url, schema=settings.database_schema)
    try:
        await check(database.engine, settings.database_url, settings.database_schema)
    finally:
        await database.dispose()


async def require_migrated(settings: Settings) -> str | None:
    """Before serving: the database must be at this release's revision. Raises
    DatabaseUnavailable naming the command to run; returns a warning when the database is at a
    revision this release does not know (a newer release migrated it)."""
    from alembic.script import ScriptDirectory

    from persistence import migrate
    from persistence.db import Database
    from persistence.problems import DatabaseUnavailable

    await check_database(settings)
    database = Database(settings.database_url, schema=settings.database_schema)
    try:
        current = await migrate.current_revision(database.engine)
    finally:
        await database.dispose()
    head = migrate.head_revision()
    if current == head:
        return None
    if current is None:
        raise DatabaseUnavailable("the database has no tradecert tables yet — run `tradecert db upgrade` first")
    known = {script.revision for script in ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions()}
    if current in known:
        raise DatabaseUnavailable(f"the database is at revision {current}, this release needs {head} — "
                                  "back it up, then run `tradecert db upgrade`")
    return (f"the database is at revision {current}, newer than this release ({head}); "
            "serving anyway — upgrade this host's release")


@contextlib.asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    from persistence.db import Database

    await check_database(settings)  # what is missing, in one line
    database = Database(settings.database_url, schema=settings.database_schema)
    try:
        yield database
    finally:
        await database.dispose()


async def upgrade(settings: Settings, only_if_empty: bool = False) -> str:
    from persistence import migrate

    async with open_database(settings) as db:
        if only_if_empty and await migrate.has_tables(db.engine):
            current = await migrate.current_revision(db.engine)
            if current != migrate.head_revision():
                errors.print(f"[yellow]database at revision {current}; run `tradecert db upgrade`[/]")
            return current or ""
        await migrate.upgrade(db.engine)
        return await migrate.current_revision(db.engine) or ""


def load_rules(settings: Settings) -> PolicySet:
    from rules.policy import RulesInvalid, load_policy

    try:
        return load_policy(settings.rules_dir)
    except RulesInvalid as exc:
        errors.print(f"[red]rules in {settings.rules_dir} do not validate ({len(exc.problems)} problem(s)):[/]")
        for problem in exc.problems:
            errors.print(f"  {problem}", markup=False, highlight=False)
        raise SystemExit(1) from None
