"""Dated entries in business_calendar.yaml: a closure on one date (a system-maintenance
day) and a working day on a date that is otherwise closed, validated against the calendar
they change, with golden rows, on a copy of rules/."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from rules import calendar
from rules.golden import run_golden
from rules.policy import RulesInvalid, load_policy

TRADECERT = str(Path(sys.executable).parent / "tradecert")
YEAR_END = '        note: "年末年始休業 (12月29日〜1月3日)"\n'


def add_rows(rules_dir: Path, rows: str) -> None:
    path = rules_dir / "business_calendar.yaml"
    text = path.read_text(encoding="utf-8")
    assert YEAR_END in text
    path.write_text(text.replace(YEAR_END, YEAR_END + rows), encoding="utf-8")


MAINTENANCE = """\
      - closure: システムメンテナンス
        date: "2026-12-28"
        note: "システム更新のため休業"
"""
OPEN_ON_HOLIDAY = """\
      - working_day: 臨時営業日
        date: "2026-11-23"
"""


def problems_of(directory: Path) -> list[str]:
    with pytest.raises(RulesInvalid) as caught:
        load_policy(directory)
    return [str(p) for p in caught.value.problems]


def test_a_dated_closure_and_a_dated_working_day_change_only_their_dates(rules_copy):
    before = load_policy(rules_copy)
    add_rows(rules_copy, MAINTENANCE + OPEN_ON_HOLIDAY)
    policy = load_policy(rules_copy)
    assert calendar.is_business_day(before, dt.date(2026, 12, 28))
    assert calendar.why_closed(policy, dt.date(2026, 12, 28)) == "システムメンテナンス"
    assert calendar.is_business_day(policy, dt.date(2027, 12, 28))  # that date only, not every year
    assert calendar.next_business_day(policy, dt.date(2026, 12, 25)) == dt.date(2027, 1, 4)
    assert calendar.why_closed(before, dt.date(2026, 11, 23)) == "勤労感謝の日"
    assert calendar.is_business_day(policy, dt.date(2026, 11, 23))
    assert not calendar.is_business_day(policy, dt.date(2025, 11, 24))  # 振替休日 of 2025 stays closed
    assert calendar.next_business_day(policy, dt.date(2026, 11, 20)) == dt.date(2026, 11, 23)


def test_golden_rows_for_dated_entries_pass_and_a_wrong_one_names_its_case(rules_copy):
    add_rows(rules_copy, MAINTENANCE + OPEN_ON_HOLIDAY)
    golden = rules_copy / "tests" / "calendar.yaml"
    golden.write_text(golden.read_text(encoding="utf-8").replace(
        '- {ask: business_day, on: 2026-12-28, expect: true}\n', "").replace(
        '- {ask: next_business_day, on: 2026-12-28, expect: "2027-01-04"}\n', "").replace(
        '- {ask: business_day, on: 2026-11-23, expect: false}    # 勤労感謝の日 (Monday)\n', "").replace(
        '- {ask: next_business_day, on: 2026-11-20, expect: "2026-11-24"}\n', "").replace(
        '- {ask: add_business_days, on: 2026-12-25, days: 2, expect: "2027-01-04"}\n', "").replace(
        '- {ask: closed_because, on: 2026-12-28, expect: null}\n', "") + """\
- {ask: closed_because, on: 2026-12-28, expect: システムメンテナンス}
- {ask: business_day, on: 2026-11-23, expect: true}
- {ask: next_business_day, on: 2026-11-20, expect: "2026-11-23"}
- {ask: add_business_days, on: 2026-12-24, days: 2, expect: "2027-01-04"}
""", encoding="utf-8")
    policy = load_policy(rules_copy)
    assert [r.describe() for r in run_golden(policy, rules_copy) if not r.passed] == []
    env = {"TRADECERT_RULES_DIR": str(rules_copy), "PATH": str(Path(sys.executable).parent)}
    ok = subprocess.run([TRADECERT, "rules", "test"], env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    golden.write_text(golden.read_text(encoding="utf-8")
                      + "- {ask: closed_because, on: 2026-12-29, expect: システムメンテナンス}\n", encoding="utf-8")
    failed = [r.describe() for r in run_golden(load_policy(rules_copy), rules_copy) if not r.passed]
    assert len(failed) == 1 and "calendar.yaml case" in failed[0] and "got '年末年始'" in failed[0]


@pytest.mark.parametrize("rows, expected", [
    ('      - closure: 臨時休業\n        date: "2026-12-26"\n',
     "business_calendar.yaml: version 1 (effective_from 2020-01-01), row 2 (closure=臨時休業): "
     "2026-12-26 is already closed (土曜日); a dated closure must fall on a business day"),
    ('      - closure: 臨時休業\n        date: "2026-11-23"\n',
     "row 2 (closure=臨時休業): 2026-11-23 is already closed (勤労感謝の日)"),
    ('      - closure: 臨時休業\n        date: "2026-12-30"\n', "2026-12-30 is already closed (年末年始)"),
    ('      - working_day: 臨時営業日\n        date: "2026-12-24"\n',
     "business_calendar.yaml: version 1 (effective_from 2020-01-01), row 2 (working_day=臨時営業日): "
     "2026-12-24 is already a business day; a dated working day must fall on a closed day"),
    ('      - closure: 臨時休業\n        date: "2026-02-30"\n', "row 2 (closure=臨時休業): date '2026-02-30' is not a calendar date"),
    ('  - effective_from: 2027-01-01\n    rows:\n      - closure: 年末年始\n        from: "12-29"\n        to: "01-03"\n'
     '      - closure: 臨時休業\n        date: "2026-12-28"\n',
     "version 2 (effective_from 2027-01-01), row 2 (closure=臨時休業): 2026-12-28 is before this version's effective_from"),
    ('      - closure: 臨時休業\n        date: "2026-12-28"\n      - working_day: 臨時営業日\n        date: "2026-12-28"\n',
     "row 3 (working_day=臨時営業日): 2026-12-28 is also a dated closure (row 2)"),
])
def test_a_dated_entry_that_changes_nothing_or_contradicts_is_refused(rules_copy, rows, expected):
    add_rows(rules_copy, rows)
    found = problems_of(rules_copy)
    assert any(expected in p for p in found), found


def test_the_schema_refuses_a_row_with_both_a_date_and_a_yearly_range(rules_copy):
    add_rows(rules_copy, '      - closure: 臨時休業\n        date: "2026-12-28"\n        from: "12-28"\n        to: "12-28"\n')
    found = problems_of(rules_copy)
    assert any(p.startswith("business_calendar.yaml: version 1 (effective_from 2020-01-01), row 2") for p in found), found
