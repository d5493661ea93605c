"""`tradecert db upgrade|backup|restore`: the database schema (Alembic), its backup and restore."""

from __future__ import annotations

import asyncio

import click

from tradecert.cli.backup import db_backup, db_restore
from tradecert.cli.common import console, settings_from_env, upgrade


@click.group()
def db() -> None:
    """Database: schema migrations (Alembic), backup and restore."""


db.add_command(db_backup)
db.add_command(db_restore)


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest revision."""
    settings = settings_from_env()
    revision = asyncio.run(upgrade(settings))
    console.print(f"database at revision {revision}")
