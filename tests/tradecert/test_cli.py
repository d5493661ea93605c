"""The `tradecert` command as policy staff and operators run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import RULES_DIR

TRADECERT = str(Path(sys.executable).parent / "tradecert")


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([TRADECERT, *args], capture_output=True, text=True, env=full_env, timeout=120)


def test_rules_check_passes_on_the_shipped_rules():
    result = run("rules", "check", env={"TRADECERT_RULES_DIR": str(RULES_DIR)})
    assert result.returncode == 0, result.stderr
    from rules.policy import TABLES

    assert f"rules OK: {len(TABLES)} tables" in result.stdout


def test_rules_check_fails_naming_the_file_of_a_broken_price(rules_copy):
    path = rules_copy / "coupon_products.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("price: 35090", "price: 35,090"), encoding="utf-8")
    result = run("rules", "check", env={"TRADECERT_RULES_DIR": str(rules_copy)})
    assert result.returncode == 1
    assert "coupon_products.yaml: version 2 (effective_from 2026-04-01), row 2 (membership=MEMBER, code=PACK30), price" in result.stderr
    assert "'35,090'" in result.stderr


def test_rules_test_runs_the_golden_tables_and_fails_on_a_disagreement(rules_copy):
    ok = run("rules", "test", env={"TRADECERT_RULES_DIR": str(rules_copy)})
    assert ok.returncode == 0 and "0 failed" in ok.stdout
    golden = rules_copy / "tests" / "fees.yaml"
    golden.write_text(golden.read_text(encoding="utf-8").replace("expect: 16500", "expect: 15000"), encoding="utf-8")
    bad = run("rules", "test", env={"TRADECERT_RULES_DIR": str(rules_copy)})
    assert bad.returncode == 1
    assert "registration_fee(on=2026-04-01, kind=APPLICANT, membership=NON_MEMBER): expected 15000, got 16500" in bad.stderr


def test_rules_show_prints_the_schedule_in_force_on_a_date():
    before = run("rules", "show", "--on", "2026-03-31")
    after = run("rules", "show", "--on", "2026-04-01")
    assert before.returncode == 0 and after.returncode == 0
    assert "1,100" in before.stdout and "31,900" in before.stdout and "1,210" not in before.stdout
    assert "1,210" in after.stdout and "35,090" in after.stdout and "36,300" in after.stdout and "16,500" in after.stdout


def test_demo_seed_creates_then_changes_nothing(tmp_path):
    env = {"TRADECERT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"}
    first = run("demo", "seed", env=env)
    second = run("demo", "seed", env=env)
    assert first.returncode == 0 and "14 created" in first.stdout, first.stderr  # + the NACCS office
    assert second.returncode == 0 and "0 created, 14 already there" in second.stdout


def test_db_upgrade_and_jobs_run_report_clearly(tmp_path):
    env = {"TRADECERT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}"}
    upgrade = run("db", "upgrade", env=env)
    from persistence.migrate import head_revision

    assert upgrade.returncode == 0 and f"database at revision {head_revision()}" in upgrade.stdout
    assert run("jobs", "run", env=env).returncode == 0
    unknown = run("jobs", "run", "no-such-job", env=env)
    assert unknown.returncode == 2 and "unknown job(s): no-such-job" in unknown.stderr


def test_schema_export_prints_the_checked_in_schema():
    result = run("schema", "export")
    assert result.returncode == 0
    assert result.stdout == (Path(__file__).resolve().parents[2] / "schema" / "schema.graphql").read_text(encoding="utf-8")


def test_demo_terminal_certificates_are_issued_relative_to_the_day_of_seeding(tmp_path):
    import datetime as dt
    import sqlite3

    from resolvers.core.clock import Clock
    from tradecert.demo import naccs_certificates_issued_on

    assert naccs_certificates_issued_on(dt.date(2026, 3, 1)) == dt.date(2025, 12, 1)  # the tests' seed day
    assert naccs_certificates_issued_on(dt.date(2027, 1, 31)) == dt.date(2026, 10, 1)
    db = tmp_path / "demo.db"
    assert run("demo", "seed", env={"TRADECERT_DATABASE_URL": f"sqlite+aiosqlite:///{db}"}).returncode == 0
    with sqlite3.connect(db) as conn:
        issued = {dt.date.fromisoformat(row[0]) for row in conn.execute("SELECT issued_on FROM naccs_terminals")}
    today = Clock().today()
    assert issued == {naccs_certificates_issued_on(today)}
    assert today - dt.timedelta(days=125) < issued.pop() < today  # valid for most of a year from the seeding
