"""`tradecert rules diff`: the 2026-04-01 revision row by row, at 80 columns; a version kept
in the rules history against the files; points that are neither a date nor a version."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

import pytest
import yaml

from resolvers.core.clock import TOKYO, FixedClock
from resolvers.fees import rules_history
from rules.policy import load_policy
from tests.conftest import RULES_DIR, tokyo
from tests.rules.test_rules_history import add_application_fee_version, cli_env, migrated_db
from tests.tradecert.test_cli import run
from tests.tradecert.test_rules_show_width import assert_fits, in_terminal, piped

REVISION = ["rules", "diff", "--from", "2026-03-31", "--to", "2026-04-01"]
NEXT_YEAR = dt.datetime.now(tz=TOKYO).year + 1  # `rules diff` runs on the real date: next year stays ahead


def revised_files(rules_dir: Path, on: str) -> set[str]:
    """The files with a version taking effect on ``on`` after an earlier one, read from the YAML."""
    found = set()
    for path in rules_dir.glob("*.yaml"):
        versions = yaml.safe_load(path.read_text(encoding="utf-8"))["versions"]
        if any(str(v["effective_from"]) == on for v in versions[1:]):
            found.add(path.name)
    return found


def named_files(text: str) -> set[str]:
    return set(re.findall(r"^([a-z_]+\.yaml)", text, re.M))


@pytest.mark.parametrize("env_columns", [None, "80"], ids=["piped", "piped-COLUMNS=80"])
def test_the_2026_revision_lists_exactly_its_tables_and_rows_in_80_columns(env_columns):
    text = piped(*REVISION, env_columns=env_columns)
    assert_fits(text)
    assert named_files(text) == revised_files(RULES_DIR, "2026-04-01")
    block = text.split("application_fees.yaml", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"CHANGED\s+membership=MEMBER\n\s+before: amount=1100\n\s+after:\s+amount=1210", block), block
    assert "version effective_from 2026-04-01" in block
    assert "price=35090" in text and "deduction=1210" in text


def test_the_revision_fits_an_80_column_terminal():
    assert_fits(in_terminal(*REVISION))


def test_from_defaults_to_the_day_before_the_last_revision():
    assert piped("rules", "diff", "--to", "2026-04-01", env_columns="80") == piped(*REVISION, env_columns="80")
    assert "No rows differ." in piped("rules", "diff", "--from", "2026-04-01", "--to", "2026-12-31", env_columns="80")


@pytest.mark.parametrize(("args", "words"), [
    (["--from", "yesterday"], "--from (give a rules version, 12 characters, or a date as YYYY-MM-DD; 'yesterday' is neither)"),
    (["--from", "2026-02-30"], "--from (this date does not exist"),
    (["--to", "2026/04/01"], "'2026/04/01' is neither"),
])
def test_a_point_that_is_neither_a_date_nor_a_version_is_refused_in_one_line(args, words):
    result = run("rules", "diff", *args)
    assert result.returncode == 2
    assert words in result.stderr and "Traceback" not in result.stderr


def test_a_version_needs_the_rules_history(tmp_path):
    env = {"TRADECERT_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"}
    result = run("rules", "diff", "--from", "0123456789ab", env=env)
    assert result.returncode == 1
    assert "0123456789ab" in result.stderr and "no database at" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "none.db").exists()


async def test_a_future_version_shows_as_added_rows_against_the_version_that_went_live(db_target, rules_copy):
    went_live = load_policy(rules_copy)
    db = await migrated_db(db_target)
    try:
        await rules_history.record_version(db, went_live, FixedClock(tokyo(2026, 4, 1, 9, 0)))
    finally:
        await db.dispose()
    add_application_fee_version(rules_copy, NEXT_YEAR, 1300)
    env = {**cli_env(db_target, rules_copy), "COLUMNS": "80"}

    result = await asyncio.to_thread(run, "rules", "diff", "--from", went_live.version, env=env)
    assert result.returncode == 0, result.stderr
    assert_fits(result.stdout)
    assert named_files(result.stdout) == {"application_fees.yaml"}
    assert f"version effective_from {NEXT_YEAR}-04-01" in result.stdout
    assert re.search(r"ADDED\s+membership=MEMBER\n\s+after:\s+amount=1300", result.stdout), result.stdout
    assert re.search(r"ADDED\s+membership=NON_MEMBER\n\s+after:\s+amount=3700", result.stdout), result.stdout
    assert "CHANGED" not in result.stdout and "REMOVED" not in result.stdout

    unknown = await asyncio.to_thread(run, "rules", "diff", "--from", "0123456789ab", env=env)
    assert unknown.returncode == 2
    assert "rules version '0123456789ab' is not in the rules history" in unknown.stderr


def test_to_a_version_needs_from():
    version = load_policy(RULES_DIR).version
    result = run("rules", "diff", "--to", version)
    assert result.returncode == 2 and "give --from when --to is a version" in result.stderr


def test_every_kind_of_row_reads_in_80_columns(rules_copy):
    """A mail body (many lines, Japanese), a permission row (all key) and a keyless tax row."""
    from rules.diff import diff
    from tests.tradecert.test_rules_show_width import columns
    from tradecert.cli.rules_diff import RulesPoint, render

    before = load_policy(rules_copy)
    mails = rules_copy / "mail_templates.yaml"
    mails.write_text(mails.read_text(encoding="utf-8").replace(
        "貿易関係証明発給システムのサブIDが付与されました。", "サブIDが付与されました。ご確認ください。", 1), encoding="utf-8")
    permissions = rules_copy / "permissions.yaml"
    permissions.write_text(permissions.read_text(encoding="utf-8").replace(
        "{action: audit.view, kind: CHAMBER_STAFF, registration: any, relation: same_chamber}",
        "{action: audit.view, kind: CHAMBER_STAFF, registration: any, relation: any}"), encoding="utf-8")
    tax = rules_copy / "tax.yaml"
    tax.write_text(tax.read_text(encoding="utf-8").rstrip("\n") + """
  - effective_from: 2030-10-01
    rows:
      - rate_percent: 12
        included: true
        rounding: floor
""", encoding="utf-8")
    after = load_policy(rules_copy)
    text = "\n".join(render(RulesPoint(before, None), RulesPoint(after, None), diff(before, None, after, None)))
    assert_fits(text)
    assert max(columns(line) for line in text.splitlines()) <= 80
    assert named_files(text) == {"mail_templates.yaml", "permissions.yaml", "tax.yaml"}
    assert re.search(r"CHANGED\s+template=subaccount.notice\n\s+before: body=", text), text
    assert "サブIDが付与されました。ご確認ください。" in text
    assert re.search(r"ADDED\s+row 1\n\s+after:\s+rate_percent=12, included=true, rounding=floor", text), text
    assert re.search(r"REMOVED\s+action=audit.view, kind=CHAMBER_STAFF, registration=any,\n\s+relation=same_chamber$", text)
