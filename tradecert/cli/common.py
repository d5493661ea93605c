"""What every command shares: the consoles, the settings, the database, the rules."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import click
from rich.console import Console

from resolvers.core.settings import Settings
from tradecert.operations import check_database

if TYPE_CHECKING:  # the commands import what they use when they run (a fast `--help`)
    from persistence.db import Database
    from rules.policy import PolicySet

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def settings_from_env() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


@contextlib.asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    from persistence.db import Database

    await check_database(settings)  # what is missing, in one line (tradecert/operations.py)
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
