"""`tradecert jobs run [NAME…]`: the background jobs, once, now."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import click

from tradecert.cli.common import check_database, console, settings_from_env

if TYPE_CHECKING:
    from tradecert.jobs import JobOutcome


@click.group()
def jobs() -> None:
    """Background jobs."""


@jobs.command("run")
@click.argument("names", nargs=-1)
def jobs_run(names: tuple[str, ...]) -> None:
    """Run the named jobs (default: all) once, now."""
    from tradecert.composition import JOBS, build_services
    from tradecert.jobs import run_jobs

    settings = settings_from_env()
    if not JOBS and not names:
        console.print("no jobs registered yet")
        return

    async def go() -> list[JobOutcome]:
        await check_database(settings)
        services = build_services(settings)
        try:
            return await run_jobs(services, list(names) or None)
        finally:
            await services.db.dispose()

    try:
        outcomes = asyncio.run(go())
    except KeyError as exc:
        raise click.UsageError(str(exc.args[0])) from None
    for outcome in outcomes:
        console.print(f"{outcome.name}: {outcome.status} — {outcome.message}", markup=False)
    if any(o.status == "failed" for o in outcomes):
        raise SystemExit(1)
