"""`tradecert rules check|history|correct|diff|test|show`: the policy rule files."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from resolvers.core.settings import Settings
from tradecert.cli.common import check_database, console, errors, load_rules, settings_from_env
from tradecert.cli.show import rules_show

if TYPE_CHECKING:
    from persistence.db import Database
    from rules.policy import PolicySet


@click.group()
def rules() -> None:
    """Policy rule files: check, test against golden tables, show."""


@rules.command("check")
def rules_check() -> None:
    """Validate every rule file; exit 1 naming file, version, row and value of each problem,
    or (with a database) each row of a version already in force that the files rewrite."""
    settings = settings_from_env()
    policy = load_rules(settings)
    consulted, problems = asyncio.run(_rules_history_problems(settings, policy))
    if problems:
        errors.print(f"[red]rules in {settings.rules_dir} rewrite rules already in force "
                     f"({len(problems)} problem(s)):[/]")
        for problem in problems:
            errors.print(f"  {problem}", markup=False, highlight=False)
        raise SystemExit(1)
    console.print(f"rules OK: {len(policy.tables)} tables in {settings.rules_dir}, version {policy.version}")
    console.print(consulted, markup=False, highlight=False)


def _no_database_file(settings: Settings) -> str | None:
    """Why an SQLite database cannot hold a rules history: its file does not exist."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).is_file()):
        return f"no database at {url.database or settings.database_url}"
    return None


async def _rules_history(settings: Settings) -> tuple[Database | None, str]:
    """The database holding the rules history, or None and why not (never creates one)."""
    from sqlalchemy import inspect

    from persistence.db import Database
    from persistence.problems import DatabaseUnavailable

    missing = _no_database_file(settings)
    if missing:
        return None, f"rules history not consulted: {missing}"
    try:
        await check_database(settings)
    except DatabaseUnavailable as exc:
        return None, f"rules history not consulted: {exc}"
    database = Database(settings.database_url, schema=settings.database_schema)
    async with database.engine.connect() as conn:
        present = await conn.run_sync(lambda c: inspect(c).has_table("rules_versions"))
    if not present:
        await database.dispose()
        return None, "rules history not consulted: the database has none yet (run `tradecert db upgrade`)"
    return database, ""


async def _rules_history_problems(settings: Settings, policy: PolicySet) -> tuple[str, list[str]]:
    from resolvers.core.clock import Clock
    from resolvers.fees.rules_history import all_corrections, all_versions, rewrites

    database, why_not = await _rules_history(settings)
    if database is None:
        return why_not, []
    try:
        history = await all_versions(database)
        corrections = await all_corrections(database)
    finally:
        await database.dispose()
    problems = rewrites(history, policy, Clock().today(), corrections)
    return f"rules history consulted: {len(history)} version(s) went live, none rewritten", [str(p) for p in problems]


@rules.command("history")
def rules_history() -> None:
    """List the rules versions that went live, newest first, with when (Asia/Tokyo), and
    each correction: which version it replaced, by whom and why."""
    from resolvers.core.clock import TOKYO
    from resolvers.fees.rules_history import Correction, all_corrections, all_versions
    from rules.policy import fingerprint

    settings = settings_from_env()

    async def go() -> tuple[list[tuple[dt.datetime, str, int]], list[Correction], str]:
        database, why_not = await _rules_history(settings)
        if database is None:
            return [], [], why_not
        try:
            found = await all_versions(database)
            corrections = await all_corrections(database)
        finally:
            await database.dispose()
        return [(v.went_live_at, v.version, len(v.files)) for v in found], corrections, ""

    found, corrections, why_not = asyncio.run(go())
    if why_not:
        raise click.ClickException(why_not.replace("rules history not consulted: ", "no rules history: "))
    try:
        on_disk = fingerprint(settings.rules_dir)
    except OSError:
        on_disk = ""
    lines: list[tuple[dt.datetime, int, str]] = []
    for went_live, version, files in found:
        mark = "  (the files in " + settings.rules_dir.name + "/)" if version == on_disk else ""
        lines.append((went_live, 0, f"{went_live.astimezone(TOKYO):%Y-%m-%d %H:%M}{'':<8}{version:<14}{files:>5}{mark}"[:80]))
    for c in corrections:  # a correction: the wrong version stays above, for the records that name it
        at = f"{c.at.astimezone(TOKYO):%Y-%m-%d %H:%M}"
        lines.append((c.at, 1, f"{at:<24}{c.version:<14}  corrects {', '.join(c.corrects)}"[:80]))
        lines.append((c.at, 1, f"{'':<24}by {c.by}: {c.reason}"[:80]))
    console.print(f"{'went live (Asia/Tokyo)':<24}{'version':<14}{'files':>5}", markup=False, highlight=False)
    for _at, _kind, line in sorted(lines, key=lambda x: (x[0], x[1]), reverse=True):
        console.print(line, markup=False, highlight=False)
    console.print(f"{len(found)} version(s)" + (f", {len(corrections)} correction(s)" if corrections else ""),
                  markup=False, highlight=False)


@rules.command("correct")
@click.option("--reason", required=True, help="Why the version in force is wrong (recorded in the rules history).")
@click.option("--by", "by", required=True, help="Who decides the correction (recorded in the rules history).")
def rules_correct(reason: str, by: str) -> None:
    """Replace a version in force that turned out wrong by the files as they are now, at once.

    The files must pass `rules check` (apart from rewriting the version in force — that is
    the correction) and `rules test`. The rules history records the correcting version, the
    one it replaces, who and why; from now `rules check` and every server's reload hold the
    files to it, and servers serve it on their next reload. The wrong version stays in the
    history: what was priced under it keeps it."""
    from resolvers.core.clock import TOKYO, Clock
    from resolvers.fees.rules_history import NothingToCorrect, record_correction
    from rules.golden import run_golden, uncovered_rows

    settings = settings_from_env()
    policy = load_rules(settings)
    results = run_golden(policy, settings.rules_dir)
    failed = [r for r in results if not r.passed]
    uncovered = uncovered_rows(policy, results)
    if failed or uncovered or not results:
        for result in failed:
            errors.print(f"FAIL {result.describe()}", markup=False, highlight=False)
        for row in uncovered:
            errors.print(f"UNCOVERED {row.describe()}", markup=False, highlight=False)
        raise click.ClickException("the golden tables do not pass (`tradecert rules test`); nothing recorded")

    async def go() -> str:
        database, why_not = await _rules_history(settings)
        if database is None:
            raise click.ClickException(f"a correction is recorded in the rules history; {why_not}")
        try:
            done = await record_correction(database, policy, Clock(), reason, by)
        except NothingToCorrect as nothing:
            raise click.ClickException(str(nothing)) from None
        except ValueError as bad:
            raise click.UsageError(str(bad)) from None
        finally:
            await database.dispose()
        return (f"rules {done.version} corrects {', '.join(done.corrects)} from "
                f"{done.at.astimezone(TOKYO):%Y-%m-%d %H:%M:%S} (Asia/Tokyo), by {done.by}: {done.reason}")

    console.print(asyncio.run(go()), markup=False, highlight=False)
    console.print("servers serve it on their next reload (TRADECERT_RULES_POLL_SECONDS, or SIGHUP); records priced "
                  "under the corrected version keep it", markup=False, highlight=False)


@rules.command("diff")
@click.option("--from", "start", metavar="VERSION|DATE",
              help="A rules version or a date; default: the day before the last revision in force on --to.")
@click.option("--to", "end", metavar="VERSION|DATE", help="A rules version or a date (Asia/Tokyo); default today.")
def rules_diff(start: str | None, end: str | None) -> None:
    """Rows added, removed and changed per table and version. Two dates compare the rows in
    force on each (in the files of the rules directory); a version (as `rules history`
    lists it) compares every version of its files with the other end's."""
    from resolvers.core.clock import Clock
    from resolvers.core.errors import UserFailure
    from resolvers.fees.rules_diff import RulesPoint, between, rules_point
    from resolvers.fees.rules_history import policy_of_version
    from tradecert.cli.rules_diff import default_start, render

    settings = settings_from_env()
    policy = load_rules(settings)

    async def stored(version: str) -> PolicySet | None:
        database, why_not = await _rules_history(settings)
        if database is None:
            raise click.ClickException(f"version {version} is not the files' ({policy.version}); {why_not}")
        try:
            return await policy_of_version(database, version)
        finally:
            await database.dispose()

    async def points() -> tuple[RulesPoint, RulesPoint]:
        last = await rules_point(end, "--to", policy, stored) if end is not None else RulesPoint(policy, Clock().today())
        if start is not None:
            return await rules_point(start, "--from", policy, stored), last
        if last.on is None:
            raise click.UsageError("give --from when --to is a version")
        return RulesPoint(policy, default_start(policy, last.on)), last

    try:
        first, last = asyncio.run(points())
    except UserFailure as failure:
        raise click.UsageError(failure.message("en")) from None
    for line in render(first, last, between(first, last)):
        click.echo(line)


@rules.command("test")
def rules_test() -> None:
    """Run the golden tables (rules/tests/*.yaml); exit 1 on any disagreement or on a rule
    row (of any version) that no golden row hits."""
    from rules.golden import run_golden, uncovered_rows

    settings = settings_from_env()
    policy = load_rules(settings)
    results = run_golden(policy, settings.rules_dir)
    failed = [r for r in results if not r.passed]
    for result in failed:
        errors.print(f"FAIL {result.describe()}", markup=False, highlight=False)
    uncovered = uncovered_rows(policy, results)
    for row in uncovered:
        errors.print(f"UNCOVERED {row.describe()}", markup=False, highlight=False)
    console.print(f"golden rows: {len(results) - len(failed)} passed, {len(failed)} failed")
    if uncovered:
        console.print(f"{len(uncovered)} row(s) of the rule files hit by no golden row: add a golden row for each")
    if failed or uncovered or not results:
        raise SystemExit(1)


rules.add_command(rules_show)
