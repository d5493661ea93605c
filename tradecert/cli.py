"""`tradecert`: serve, db, demo, rules, jobs, mail, schema."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from resolvers.core.settings import Settings
from resolvers.identity.names import Membership, RegistrationKind
from tradecert.application_import import applications as applications_group  # click only until a command runs
from tradecert.mailbox import mail as mail_group  # click only until a command runs
from tradecert.operations import KEY_KINDS, OneLineErrors, check_database, db_backup, db_restore, keys, require_migrated
from tradecert.params import IsoDate

if TYPE_CHECKING:  # the commands import what they use when they run (a fast `--help`)
    from persistence.db import Database
    from resolvers.adapters.sandbox_deposits import SandboxDeposit
    from resolvers.core.errors import UserFailure
    from resolvers.coupons.purchases import StoredDeposits
    from rules.fees import Amount, CouponProduct
    from rules.policy import PolicySet
    from tradecert.demo import SeedReport
    from tradecert.jobs import JobOutcome

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


@click.group(cls=OneLineErrors)  # a database that cannot be used: one line, no traceback
def main() -> None:
    """tradecert — trade certificates for chambers of commerce, over GraphQL."""


# --------------------------------------------------------------------------- db


@contextlib.asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[Database]:
    from persistence.db import Database

    await check_database(settings)  # what is missing, in one line (tradecert/operations.py)
    database = Database(settings.database_url, schema=settings.database_schema)
    try:
        yield database
    finally:
        await database.dispose()


async def _upgrade(settings: Settings, only_if_empty: bool = False) -> str:
    from persistence import migrate

    async with _database(settings) as db:
        if only_if_empty and await migrate.has_tables(db.engine):
            current = await migrate.current_revision(db.engine)
            if current != migrate.head_revision():
                errors.print(f"[yellow]database at revision {current}; run `tradecert db upgrade`[/]")
            return current or ""
        await migrate.upgrade(db.engine)
        return await migrate.current_revision(db.engine) or ""


@main.group()
def db() -> None:
    """Database: schema migrations (Alembic), backup and restore."""


db.add_command(db_backup)
db.add_command(db_restore)
main.add_command(keys)


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest revision."""
    settings = _settings()
    revision = asyncio.run(_upgrade(settings))
    console.print(f"database at revision {revision}")


# --------------------------------------------------------------------------- demo


async def _seed(settings: Settings) -> SeedReport:
    from resolvers.core.clock import Clock
    from tradecert.demo import seed_demo

    async with _database(settings) as db:
        return await seed_demo(db, Clock())


@main.group()
def demo() -> None:
    """Demo data: the accounts and what to try with them are in docs/api.md, "Demo data"."""


def _refuse_demo_in_production(settings: Settings) -> None:
    """Demo accounts share the password docs/api.md publishes: never in production."""
    if settings.environment == "production":
        raise click.ClickException("production refuses demo data: its accounts share the published demo password")


@demo.command("seed")
def demo_seed() -> None:
    """Load the demo data set; running it again changes nothing. Refused in production."""
    settings = _settings()
    _refuse_demo_in_production(settings)
    asyncio.run(_upgrade(settings))
    report = asyncio.run(_seed(settings))
    console.print(f"demo data: {report.created} created, {report.existing} already there")


# --------------------------------------------------------------------------- serve


@main.command()
@click.option("--host", default=lambda: os.environ.get("HOST", "127.0.0.1"), show_default="127.0.0.1")
@click.option("--port", default=lambda: int(os.environ.get("PORT", "8000")), type=int, show_default="8000")
@click.option("--workers", default=1, type=int, show_default=True, help="Worker processes (use PostgreSQL for more than 1).")
@click.option("--demo", "with_demo", is_flag=True,
              help="Upgrade the database and load the demo data first (refused in production).")
def serve(host: str, port: int, workers: int, with_demo: bool) -> None:
    """Serve GraphQL (+ GraphiQL), /healthz, /readyz, /metrics."""
    import uvicorn

    from resolvers.core.logs import configure_logging

    settings = _settings()
    if with_demo:
        _refuse_demo_in_production(settings)
    _require_production_settings(settings)
    _require_gateway(settings)
    _require_trusted_documents(settings)
    if not os.environ.get("TRADECERT_PUBLIC_URL"):
        # links in mails must reach this server: default to where it listens
        public_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        os.environ["TRADECERT_PUBLIC_URL"] = f"http://{public_host}:{port}"  # also for --workers processes
        settings = settings.with_(public_url=os.environ["TRADECERT_PUBLIC_URL"])
    configure_logging(settings.log_level, settings.log_json)
    _load_rules(settings)  # refuse to start on rules that do not validate, naming each problem
    if with_demo:
        asyncio.run(_upgrade(settings))
        report = asyncio.run(_seed(settings))
        console.print(f"demo data: {report.created} created, {report.existing} already there")
    elif settings.is_sqlite:
        asyncio.run(_upgrade(settings, only_if_empty=True))  # an empty embedded database upgrades itself
    elif warning := asyncio.run(require_migrated(settings)):  # PostgreSQL: at this release's revision
        errors.print(f"[yellow]{warning}[/]")
    if settings.environment == "production" and not settings.smtp_url:
        # `mail list` and /dev/mail are off in production: without a relay nobody reads the outbox
        errors.print("[yellow]TRADECERT_SMTP_URL is not set: mails (sub-ID activation links, notices) wait in the "
                     "outbox and reach nobody (docs/operations.md, \"Mail (SMTP)\")[/]")
    if workers > 1 and settings.is_sqlite:
        errors.print("[yellow]several workers on SQLite serialise their writes; use PostgreSQL in production[/]")
    console.print(f"GraphQL at http://{host}:{port}/graphql " + (
        "(GraphiQL in a browser)" if settings.graphiql else "(POST only; GraphiQL is off)"))
    # proxy_headers=False: the client address is the socket peer unless TRADECERT_TRUSTED_PROXIES
    # says otherwise (resolvers/ratelimit.py); uvicorn would believe X-Forwarded-For from 127.0.0.1.
    from tradecert.metrics import multiprocess_metrics

    with multiprocess_metrics(workers):  # every worker's counts in /metrics; set up before any worker starts
        if workers > 1:
            uvicorn.run("tradecert.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                        log_config=None, access_log=False, proxy_headers=False)
        else:
            from tradecert.app import create_app

            uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False,
                        proxy_headers=False)  # access_log: tradecert.http logs each request once (tradecert/app.py)


def _require_production_settings(settings: Settings) -> None:
    """In production, refuse to start (one line, exit 1) on what would otherwise fall back to a
    development default at the first request that needs it: the public address (else every
    certificate's printed verification link and every mailed link point at 127.0.0.1) and the
    two key files (else the first approval fails; the defaults lie under the release's var/)."""
    if settings.environment != "production":
        return
    if not os.environ.get("TRADECERT_PUBLIC_URL"):
        raise click.ClickException(
            "configuration: TRADECERT_PUBLIC_URL must be set in production (the address people use: "
            "the base of mailed links and of the verification link printed on certificates)")
    for kind in KEY_KINDS:
        if not os.environ.get(kind.setting):
            raise click.ClickException(f"configuration: {kind.setting} must be set in production "
                                       "(make the key files with `tradecert keys init --dir DIR`)")
        if not kind.path(settings).is_file():
            raise click.ClickException(f"configuration: {kind.name} {kind.path(settings)} is missing "
                                       f"({kind.setting}) — make it with `tradecert keys init`")


def _require_gateway(settings: Settings) -> None:
    """Refuse to start (before any worker does) without a usable card gateway: one line, exit 1."""
    from resolvers.adapters.gateway import GatewayNotConfigured, gateway_for

    try:
        gateway_for(settings)
    except GatewayNotConfigured as exc:
        raise click.ClickException(f"configuration: {exc}") from None


def _require_trusted_documents(settings: Settings) -> None:
    """Refuse to start (before any worker does) on a trusted-documents manifest that does not
    check: one line naming the file and the key, exit 1."""
    if settings.trusted_documents_file is None:
        return
    from schema import build_schema
    from tradecert.trusted_documents import ManifestInvalid, load_manifest

    try:
        load_manifest(settings.trusted_documents_file, build_schema(settings)._schema)
    except ManifestInvalid as exc:
        raise click.ClickException(f"configuration: {exc}") from None


# --------------------------------------------------------------------------- rules


def _load_rules(settings: Settings) -> PolicySet:
    from rules.policy import RulesInvalid, load_policy

    try:
        return load_policy(settings.rules_dir)
    except RulesInvalid as exc:
        errors.print(f"[red]rules in {settings.rules_dir} do not validate ({len(exc.problems)} problem(s)):[/]")
        for problem in exc.problems:
            errors.print(f"  {problem}", markup=False, highlight=False)
        raise SystemExit(1) from None


@main.group()
def rules() -> None:
    """Policy rule files: check, test against golden tables, show."""


@rules.command("check")
def rules_check() -> None:
    """Validate every rule file; exit 1 naming file, version, row and value of each problem,
    or (with a database) each row of a version already in force that the files rewrite."""
    settings = _settings()
    policy = _load_rules(settings)
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

    settings = _settings()

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

    settings = _settings()
    policy = _load_rules(settings)
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
    from tradecert.rules_diff import default_start, render

    settings = _settings()
    policy = _load_rules(settings)

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

    settings = _settings()
    policy = _load_rules(settings)
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


@rules.command("show")
@click.argument("what", required=False, default="fees", type=click.Choice(["fees", "permissions"]))
@click.option("--on", "on", type=IsoDate(), help="Date (Asia/Tokyo); default today.")
@click.option("--format", "output", type=click.Choice(["text", "markdown", "html"]), default="text", show_default=True,
              help="Fee schedule as a terminal table, Markdown tables for a website, or the /fees page.")
def rules_show(what: str, on: dt.datetime | None, output: str) -> None:
    """Print the fee schedule (or, with `permissions`, who may do what) in force on a date."""
    from resolvers.core.clock import Clock
    from rules import fees

    settings = _settings()
    policy = _load_rules(settings)
    day = on.date() if on else Clock().today()
    if what == "permissions":
        _show_permissions(policy, day)
        return
    if output != "text":
        from tradecert import fee_page

        page = fee_page.build(policy, day)
        click.echo(fee_page.render_html(page) if output == "html" else fee_page.render_markdown(page), nl=False)
        return
    # ASCII lines and no fixed "rule" column: a box-drawing character is two columns wide in a
    # Japanese terminal, and a fourth column cut the rule file names to "application_fee…"
    table = Table(title=f"Fee schedule on {day} (rules {policy.version}; yen, tax included)", box=box.ASCII,
                  show_lines=True)
    table.add_column("item / rule", overflow="fold")
    for membership in Membership:
        table.add_column(membership, overflow="fold")

    def item(name: str, *amounts: Amount) -> Text:
        r = amounts[0].rule
        rows = sorted({a.rule.row for a in amounts})
        where = f"row {rows[0]}" if len(rows) == 1 else f"rows {', '.join(map(str, rows))}"
        return Text(name).append(f"\n{r.file} v{r.version} {where}\nin force from {r.effective_from}", style="dim")

    member, non = fees.application_fee(policy, day, Membership.MEMBER), fees.application_fee(policy, day, Membership.NON_MEMBER)
    table.add_row(item("application fee / 発給申請", member, non), f"{member.value:,}", f"{non.value:,}")
    for kind in RegistrationKind:
        m, n = (fees.registration_fee(policy, day, kind, Membership.MEMBER),
                fees.registration_fee(policy, day, kind, Membership.NON_MEMBER))
        table.add_row(item(f"registration / 貿易登録 {kind}", m, n), _show(m), _show(n))
    by_code: dict[str, dict[str, fees.CouponProduct]] = {}
    for membership in Membership:
        for product in fees.coupon_products(policy, day, membership):
            by_code.setdefault(product.code, {})[membership] = product
    for code, offers in by_code.items():
        def cell(p: CouponProduct | None) -> str:
            return "not sold" if p is None else f"{p.price:,}\nface {p.face_value:,}\ntax {p.tax:,}"
        any_offer = next(iter(offers.values()))
        r = any_offer.rule
        name = Text(f"coupon {code} ({any_offer.coupons})").append(
            f"\n{r.file} v{r.version}\nin force from {r.effective_from}", style="dim")
        table.add_row(name, cell(offers.get(Membership.MEMBER)), cell(offers.get(Membership.NON_MEMBER)))
    console.print(table, soft_wrap=False)


def _show(amount: Amount) -> str:
    return "not offered" if amount.value is None else f"{amount.value:,}"


def _show_permissions(policy: PolicySet, day: dt.date) -> None:
    """The permission rows in force, one block per action: which account kind, of which kind
    of registration, may do it to an object standing in which relation to it. Lines stay
    short, so every action reads in full at 80 columns and through a pipe (an action × kind
    matrix needs seven columns and cut the action names to "account…")."""
    from rules.policy import in_force

    version = in_force(policy.tables["permissions"].versions, day)
    by_action: dict[str, list[tuple[str, str, str]]] = {}
    for row in version.rows:
        by_action.setdefault(str(row["action"]), []).append(
            (str(row["kind"]), str(row["registration"]), str(row["relation"])))

    def say(line: str = "", style: str | None = None) -> None:
        console.print(line, style=style, markup=False, highlight=False, soft_wrap=False)

    say(f"Permissions on {day} (permissions.yaml version {version.number}, rules {policy.version})", style="bold")
    say("Each line allows an action to an account kind, of a registration kind, on an object in "
        "that relation to the account; an action without a line is allowed to nobody. Relations: "
        "self (its own account), own_registration, generated_by_me (a sub-ID it generated), "
        "created_by_me (an application it created), same_chamber, own_office (NACCS), "
        "none (no object); any matches everything.")
    say()
    say(f"  {'account kind':<14} {'registration':<12} relation", style="dim")
    for action in sorted(by_action):
        say()
        say(action, style="bold")
        for kind, registration, relation in by_action[action]:
            say(f"  {kind:<14} {registration:<12} {relation}")


# --------------------------------------------------------------------------- jobs


@main.group()
def jobs() -> None:
    """Background jobs."""


@jobs.command("run")
@click.argument("names", nargs=-1)
def jobs_run(names: tuple[str, ...]) -> None:
    """Run the named jobs (default: all) once, now."""
    from tradecert.composition import JOBS, build_services
    from tradecert.jobs import run_jobs

    settings = _settings()
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


# --------------------------------------------------------------------------- bank


@main.group()
def bank() -> None:
    """Bank statements (the sandbox bank's, or a real bank's files)."""


@bank.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--no-reconcile", is_flag=True, help="Only record the deposits; the nightly job matches them.")
def bank_import(path: Path, no_reconcile: bool) -> None:
    """Record the deposits of a Zengin 振込入金通知 (01) or CSV statement, then match them to orders.

    Every line is a deposit (money received), recorded once: a line whose bank id (or, without
    one, this very file and line) was recorded before is reported and skipped. A problem is one
    line naming the file and its line; then nothing is recorded and the exit status is 1."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from resolvers.adapters.bank_files import StatementError, describe, parse_statement
    from resolvers.core.clock import Clock
    from resolvers.core.errors import UserFailure, UserFailures
    from resolvers.coupons.purchases import DepositSource, import_deposits, reconcile
    from tradecert.composition import build_services

    settings = _settings()
    name = path.name

    def say(line: str) -> None:
        errors.print(f"{name}: {line}", markup=False, highlight=False)

    def refuse(problems: list[str]) -> NoReturn:
        for problem in problems[:50]:
            say(problem)
        if len(problems) > 50:
            say(f"… and {len(problems) - 50} more problem(s)")
        say("not imported; nothing was recorded")
        raise SystemExit(1)

    data = path.read_bytes()
    try:
        statement = parse_statement(data, Clock().today())
    except StatementError as exc:
        refuse(exc.problems)
    if not statement.deposits:
        if statement.cancellations:  # a cancelled notice needs a person; there is nothing else to do
            refuse(statement.cancellations)
        console.print(f"{name}: {statement.format}, no deposits")
        return

    async def go() -> list[UserFailure] | tuple[StoredDeposits, dict[str, int]]:
        await check_database(settings)
        services = build_services(settings)
        try:
            try:
                stored = await import_deposits(services, statement.deposits, DepositSource.file(name, data))
            except (UserFailure, UserFailures) as failure:
                return failure.failures if isinstance(failure, UserFailures) else [failure]
            if no_reconcile:
                return stored, {}
            with Progress(TextColumn("reconciling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=True) as bar:
                task = bar.add_task("reconcile", total=None)
                counts = await reconcile(services, progress=lambda done, total: bar.update(task, completed=done, total=total))
            return stored, counts
        finally:
            await services.db.dispose()

    outcome = asyncio.run(go())
    if isinstance(outcome, list):  # the deposits' problems: nothing was recorded
        refuse([str(f) if i is None else describe(f, statement.deposits[i], i)
                for f in outcome for i in [_deposit_position(f)]])
    stored, counts = outcome
    recorded = [statement.deposits[i] for i in stored.recorded]
    summary = f"{name}: {statement.format}, {len(recorded)} deposit(s), {sum(d.amount for d in recorded):,} yen"
    if stored.already:
        lines = [str(statement.deposits[i].line) for i, _ in stored.already]
        summary += f"; {len(lines)} already recorded (lines {', '.join(lines[:20])}{', …' if len(lines) > 20 else ''})"
    if statement.cancelled:
        summary += f", {statement.cancelled} cancelled notice(s) skipped"
    console.print(summary, markup=False, highlight=False)
    for i, first in stored.repeats:
        repeat, original = statement.deposits[i], statement.deposits[first]
        say(f"line {repeat.line}: deposit id {repeat.deposit_id} repeats line {original.line}; recorded as a deposit of "
            "its own (money received) — ask the bank before refunding it")
    for cancellation in statement.cancellations:
        say(cancellation)
    if not no_reconcile:
        console.print("reconciled: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing new"))


@bank.command("sandbox-deposit")
@click.argument("order_number")
@click.option("--amount", type=int, help="Yen transferred; default: the order's amount due (less: a short payment).")
@click.option("--payer", help="振込依頼人名 in half-width kana; default: the registration's number and name.")
@click.option("--on", "on", type=click.DateTime(formats=["%Y-%m-%d"]), help="Booking date (Asia/Tokyo); default today.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the file; default: zengin-ORDER_NUMBER.dat here.")
def bank_sandbox_deposit(order_number: str, amount: int | None, payer: str | None, on: dt.datetime | None,
                         out: Path | None) -> None:
    """Write the sandbox bank's deposit notice (Zengin 振込入金通知) for a demo transfer to an order.

    Then `tradecert bank import` the file, as a real bank's. Refused in production."""
    from resolvers.adapters.sandbox_deposits import SandboxDepositRefused, sandbox_deposit
    from tradecert.composition import build_services

    settings = _settings()

    async def go() -> SandboxDeposit:
        services = build_services(settings)
        try:
            return await sandbox_deposit(services, order_number, amount, payer, on.date() if on else None)
        finally:
            await services.db.dispose()

    try:
        deposit = asyncio.run(go())
    except SandboxDepositRefused as exc:
        raise click.ClickException(str(exc)) from None
    path = out or Path(f"zengin-{deposit.order_number}.dat")
    try:
        path.write_bytes(deposit.data)
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror or exc}") from None
    console.print(f"{path}: 振込入金通知\n  {deposit.amount:,} yen to account {deposit.account_number} from "
                  f"{deposit.remitter} on {deposit.booked_on}\n  order {deposit.order_number}, due {deposit.amount_due:,} yen",
                  markup=False, highlight=False)
    if deposit.order_status != "AWAITING_PAYMENT":
        errors.print(f"order {deposit.order_number} is {deposit.order_status}: this deposit will be owed back",
                     markup=False, highlight=False)
    console.print(f"next: tradecert bank import {path}", markup=False, highlight=False)


def _deposit_position(failure: UserFailure) -> int | None:
    """The deposit a failure of ``store_deposits`` names (field ["input", "deposits", <position>, …]), if any."""
    field = failure.field or []
    return int(field[2]) if len(field) > 2 and field[2].isdigit() else None


# --------------------------------------------------------------------------- schema


@main.group("schema")
def schema_group() -> None:
    """The GraphQL schema."""


@schema_group.command("export")
def schema_export() -> None:
    """Print the schema in SDL (what schema/schema.graphql holds)."""
    from schema import sdl

    sys.stdout.write(sdl())


@schema_group.command("trusted-documents")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def schema_trusted_documents(directory: Path) -> None:
    """Print the trusted-documents manifest (TRADECERT_TRUSTED_DOCUMENTS) of every *.graphql
    file under DIRECTORY: JSON {"sha256:<hex>": "<document>"}, keys sorted. A file is one
    document (several operations in it run by operationName); exit 1 naming each file that
    does not validate against the schema."""
    from schema import build_schema
    from tradecert.trusted_documents import build_manifest, manifest_json

    manifest, problems = build_manifest(directory, build_schema()._schema)
    if problems:
        for problem in problems:
            errors.print(problem, markup=False, highlight=False)
        raise SystemExit(1)
    sys.stdout.buffer.write(manifest_json(manifest).encode("utf-8"))
    sys.stdout.flush()


# --------------------------------------------------------------------------- mail

main.add_command(mail_group)  # `tradecert mail list|show`: the outbox without SMTP (tradecert/mailbox.py)
main.add_command(applications_group)  # `tradecert applications import`: CSV filing (tradecert/application_import.py)


if __name__ == "__main__":  # pragma: no cover
    main()
