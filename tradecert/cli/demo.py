"""`tradecert demo seed`: the demo data set (refused in production)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import click

from resolvers.core.settings import Settings
from tradecert.cli.common import console, open_database, settings_from_env, upgrade

if TYPE_CHECKING:
    from tradecert.demo import SeedReport


async def seed(settings: Settings) -> SeedReport:
    from resolvers.core.clock import Clock
    from tradecert.demo import seed_demo

    async with open_database(settings) as db:
        return await seed_demo(db, Clock())


@click.group()
def demo() -> None:
    """Demo data: the accounts and what to try with them are in docs/api.md, "Demo data"."""


def refuse_demo_in_production(settings: Settings) -> None:
    """Demo accounts share the password docs/api.md publishes: never in production."""
    if settings.environment == "production":
        raise click.ClickException("production refuses demo data: its accounts share the published demo password")


@demo.command("seed")
def demo_seed() -> None:
    """Load the demo data set; running it again changes nothing. Refused in production."""
    settings = settings_from_env()
    refuse_demo_in_production(settings)
    asyncio.run(upgrade(settings))
    report = asyncio.run(seed(settings))
    console.print(f"demo data: {report.created} created, {report.existing} already there")
