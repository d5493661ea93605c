"""``tradecert applications import FILE.csv --as USERNAME``: file applications from a CSV
file as an account, for chamber staff who help exporters by hand (layout and encodings:
docs/applications-import.md; the work: resolvers/applications/import_csv.py).

Every line is checked first; any problem is printed as ``line N, column X (name): message``
and nothing is written (exit 1). Otherwise all lines become drafts in one transaction and
each line's application id is printed (exit 0); ``--submit`` then submits each, in its own
transaction, and prints its receipt number or why not (exit 3 when any was not submitted:
the drafts stay, to be corrected and submitted). Run again, the same file names the same
applications: only the drafts are submitted, those an earlier run submitted are printed as
"already submitted" (exit 0 when every line is submitted now), and one put on hold or
withdrawn meanwhile is not submitted again (exit 3). Output fits 80 columns.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

import click
from rich.console import Console

from tradecert.cli.text import visible

ENCODINGS = ("auto", "utf-8", "cp932")
NOT_SUBMITTED = 3  # exit status: created, but some were not submitted
WIDTH = 80
SHOWN_PROBLEMS = 50  # a file with more gets the first 50 and a count: a terminal is not a log


def _console(stderr: bool = False) -> Console:
    width = min(WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns)
    return Console(stderr=stderr, width=width, soft_wrap=False, highlight=False, markup=False)


def _say(console: Console, text: str) -> None:
    """Print one line of output. Header cells, values and the file name come from the file and
    its name, so control characters (an escape sequence, a bidirectional override, a NUL) are
    written out as ``\\x1b``/``\\u202e``: a file cannot drive the terminal or reorder what is shown."""
    console.print(visible(text, newlines=False))


@dataclass(frozen=True)
class Line:
    number: int
    text: str
    ok: bool = True
    already: bool = False  # submitted by an earlier run of the same file


@dataclass(frozen=True)
class Report:
    encoding: str
    lines: list[Line]
    problems: list[str]
    submitted: int = 0
    refused: int = 0
    already: int = 0


async def _run(data: bytes, username: str, chamber: str | None, encoding: str, submit: bool, language: str) -> Report:
    from resolvers.applications import bulk, queries
    from resolvers.applications.import_csv import CsvRefused, import_applications
    from resolvers.applications.messages import STATE_NAMES
    from resolvers.applications.names import ApplicationState
    from resolvers.core.errors import Forbidden, Unauthenticated
    from resolvers.core.settings import Settings
    from resolvers.identity.acting import NoSuchAccount, acting_as, context_as
    from schema.identity import to_global_id
    from tradecert.cli.common import check_database
    from tradecert.composition import build_services

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(f"configuration: {exc}") from None
    await check_database(settings)
    services = build_services(settings)
    try:
        try:
            acting = await acting_as(services, username, chamber)
        except NoSuchAccount as exc:
            raise click.ClickException(str(exc)) from None
        ctx = context_as(services, acting)
        try:
            try:
                imported = await import_applications(ctx, data, encoding)
            except CsvRefused as refused:
                return Report(encoding, [], [p.text(language) for p in refused.problems])
            except (Forbidden, Unauthenticated) as refused:  # an admin, staff or NACCS ID files nothing
                who = refused.words.en if language == "en" else refused.words.ja
                raise click.ClickException(f"{username}: {who}") from None
            lines = [Line(row.line, f"{to_global_id('Application', app_id)}  {row.data.invoice_number or ''}")
                     for row, app_id in imported.created]
            if not submit:
                return Report(imported.encoding, lines, [])
            ids = [app_id for _row, app_id in imported.created]
            # the same file again (a run that crashed or lacked coupons) names the same
            # applications: only the drafts are submitted; one an earlier run submitted is
            # reported as such, one put on hold or withdrawn meanwhile is left to the person
            drafts = await bulk.drafts_among(ctx, ids)
            outcomes = dict(zip(drafts, await bulk.submit_applications(ctx, [str(i) for i in drafts], drafts),
                                strict=True)) if drafts else {}
            views = await queries.applications_by_id(ctx, ids)
            submitted: list[Line] = []
            for row, app_id in imported.created:
                invoice = row.data.invoice_number or ""
                outcome = outcomes.get(app_id)
                view = views[app_id]
                if outcome is not None and not outcome.refusals:
                    submitted.append(Line(row.line, f"{invoice} submitted, receipt {view.receipt_number}"))
                elif outcome is not None:
                    why = "; ".join(r.message(language) for r in outcome.refusals)
                    submitted.append(Line(row.line, f"{invoice} not submitted: {why}", ok=False))
                elif view.state in (ApplicationState.SUBMITTED, ApplicationState.APPROVED, ApplicationState.ISSUED):
                    submitted.append(Line(row.line, f"{invoice} already submitted, receipt {view.receipt_number}",
                                          already=True))
                else:  # on hold or withdrawn since the earlier run: not submitted again behind anyone's back
                    state = STATE_NAMES[view.state].in_(language)
                    submitted.append(Line(row.line, f"{invoice} not submitted again: {state}", ok=False))
            refused_count = sum(1 for line in submitted if not line.ok)
            already = sum(1 for line in submitted if line.already)
            return Report(imported.encoding, submitted, [], len(submitted) - refused_count - already, refused_count,
                          already)
        finally:
            await ctx.close()
    finally:
        await services.db.dispose()


@click.group("applications")
def applications() -> None:
    """Applications (発給申請): import from CSV."""


@applications.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "username", required=True, metavar="USERNAME",
              help="Login name of the signer or sub-ID that files them (the applications are its drafts).")
@click.option("--chamber", metavar="CODE", help="Chamber code, when the login name exists in more than one chamber.")
@click.option("--encoding", type=click.Choice(ENCODINGS), default="auto", show_default=True,
              help="utf-8 (BOM or not) or cp932 (Shift_JIS, Japanese Excel); auto: UTF-8 if it is, else cp932.")
@click.option("--submit", is_flag=True, help="Then submit each one (a coupon application takes a coupon).")
@click.option("--language", type=click.Choice(["ja", "en"]), default="ja", show_default=True,
              help="Language of the problems printed.")
def applications_import(path: Path, username: str, chamber: str | None, encoding: str, submit: bool,
                        language: str) -> None:
    """File the applications of a CSV file (docs/applications-import.md), one per line, as
    USERNAME: all of them in one transaction, or none when any line has a problem (each is
    printed as "line N, column X: message"; exit status 1). The same file imported again
    as the same account creates nothing more."""
    out, err = _console(), _console(stderr=True)
    report = asyncio.run(_run(path.read_bytes(), username, chamber, encoding, submit, language))
    if report.problems:
        for problem in report.problems[:SHOWN_PROBLEMS]:
            _say(err, f"{path.name}: {problem}")
        if len(report.problems) > SHOWN_PROBLEMS:
            _say(err, f"{path.name}: … and {len(report.problems) - SHOWN_PROBLEMS} more problems")
        _say(err, f"{path.name}: {len(report.problems)} problem(s); nothing was filed")
        raise SystemExit(1)
    _say(out, f"{path.name} ({report.encoding}): {len(report.lines)} application(s) filed as {username}")
    for line in report.lines:
        _say(out if line.ok else err, f"line {line.number}: {line.text}")
    if submit:
        summary = f"submitted {report.submitted}"
        if report.already:
            summary += f", already submitted {report.already}"
        if report.refused:
            summary += f", not submitted {report.refused} (correct them and submit)"
        out.print(summary)
        if report.refused:
            raise SystemExit(NOT_SUBMITTED)
