"""rules/diff.py: what changed between two points, row by row, in the words of the tables."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import yaml

from rules.diff import ChangeKind, RuleChange, diff, last_revision
from rules.policy import load_policy
from tests.conftest import RULES_DIR

BEFORE, REVISION = dt.date(2026, 3, 31), dt.date(2026, 4, 1)


def yaml_versions(rules_dir: Path) -> dict[str, list[dict]]:
    found = {}
    for path in sorted(rules_dir.glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        found[document["table"]] = document["versions"]
    return found


def revised_tables(rules_dir: Path, on: dt.date) -> set[str]:
    """Tables whose files have a version taking effect on ``on`` after an earlier one (read from the YAML)."""
    return {table for table, versions in yaml_versions(rules_dir).items()
            if any(str(v["effective_from"]) == on.isoformat() for v in versions[1:])}


def by_row(changes: list[RuleChange], table: str) -> dict[str, RuleChange]:
    return {c.row: c for c in changes if c.table == table}


def test_the_day_of_the_2026_revision_lists_exactly_its_rows():
    policy = load_policy(RULES_DIR)
    changes = diff(policy, BEFORE, policy, REVISION)

    assert {c.table for c in changes} == revised_tables(RULES_DIR, REVISION)
    assert {c.effective_from for c in changes} == {REVISION}
    fees = by_row(changes, "application_fees")
    assert set(fees) == {"membership=MEMBER", "membership=NON_MEMBER"}
    member = fees["membership=MEMBER"]
    assert (member.kind, member.before, member.after) == (ChangeKind.CHANGED, "amount=1100", "amount=1210")
    non_member = fees["membership=NON_MEMBER"]
    assert non_member.kind is ChangeKind.CHANGED
    assert non_member.before is not None and non_member.before.startswith("amount=3300, note=3,300円 = ")
    assert non_member.after == "amount=3630, note=null"  # the note was left out
    products = by_row(changes, "coupon_products")
    assert set(products) == {"membership=MEMBER, code=SINGLE", "membership=MEMBER, code=PACK30",
                             "membership=NON_MEMBER, code=SINGLE"}
    assert "price=35090" in (products["membership=MEMBER, code=PACK30"].after or "")
    assert by_row(changes, "pack_refund_deductions")["product=PACK30"].after == "deduction=1210"


def test_every_change_of_the_revision_reads_as_its_yaml_rows():
    """Each 'before' holds the cells of the replaced row that the 2026-04-01 row changes, and
    'after' the same cells of the 2026-04-01 row, as written in the YAML."""
    policy = load_policy(RULES_DIR)
    versions = yaml_versions(RULES_DIR)
    for change in diff(policy, BEFORE, policy, REVISION):
        new, old = versions[change.table][-1], versions[change.table][-2]
        assert str(new["effective_from"]) == "2026-04-01"
        key = dict(part.split("=", 1) for part in change.row.split(", "))

        def row_of(version: dict, key: dict[str, str] = key) -> dict:
            return next(r for r in version["rows"] if all(str(r.get(k)) == v for k, v in key.items()))

        assert change.kind is ChangeKind.CHANGED
        was, now = row_of(old), row_of(new)
        differ = [n for n in dict.fromkeys([*was, *now]) if n not in key and was.get(n) != now.get(n)]
        assert differ
        shown = {None: "null"}
        assert change.before == ", ".join(f"{n}={shown.get(was.get(n), was.get(n))}" for n in differ)
        assert change.after == ", ".join(f"{n}={shown.get(now.get(n), now.get(n))}" for n in differ)


def test_the_same_day_or_the_same_files_show_nothing():
    policy = load_policy(RULES_DIR)
    assert diff(policy, REVISION, policy, REVISION) == []
    assert diff(policy, dt.date(2026, 4, 2), policy, dt.date(2030, 1, 1)) == []
    assert diff(policy, None, policy, None) == []


def test_going_back_in_time_shows_the_revision_reversed():
    policy = load_policy(RULES_DIR)
    back = by_row(diff(policy, REVISION, policy, BEFORE), "application_fees")["membership=MEMBER"]
    assert (back.before, back.after) == ("amount=1210", "amount=1100")
    assert back.effective_from == dt.date(2022, 4, 1)  # the version in force on the later end's date


def add_version(rules_dir: Path, name: str, block: str) -> None:
    path = rules_dir / name
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n") + "\n" + block, encoding="utf-8")


FUTURE_FEES = """\
  - effective_from: 2027-04-01
    source: "board decision 2027 (test)"
    rows:
      - membership: MEMBER
        amount: 1210
      - membership: NON_MEMBER
        amount: 3960
"""

def copy_rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    target.mkdir()
    for path in RULES_DIR.glob("*.yaml"):
        shutil.copy(path, target / path.name)
    return target


def test_a_future_version_shows_as_added_rows_between_versions(tmp_path):
    current = load_policy(RULES_DIR)
    edited_dir = copy_rules(tmp_path)
    add_version(edited_dir, "application_fees.yaml", FUTURE_FEES)
    edited = load_policy(edited_dir)
    assert edited.version != current.version

    changes = diff(current, None, edited, None)
    assert [(c.table, c.effective_from, c.kind, c.row, c.after) for c in changes] == [
        ("application_fees", dt.date(2027, 4, 1), ChangeKind.ADDED, "membership=MEMBER", "amount=1210"),
        ("application_fees", dt.date(2027, 4, 1), ChangeKind.ADDED, "membership=NON_MEMBER", "amount=3960"),
    ]
    assert all(c.before is None for c in changes)
    removed = diff(edited, None, current, None)
    assert {(c.kind, c.row, c.before, c.after) for c in removed} == {
        (ChangeKind.REMOVED, "membership=MEMBER", "amount=1210", None),
        (ChangeKind.REMOVED, "membership=NON_MEMBER", "amount=3960", None),
    }
    # between dates on the edited files: only a changed non-member fee (the member fee stays 1,210)
    dated = diff(edited, dt.date(2027, 3, 31), edited, dt.date(2027, 4, 1))
    assert [(c.kind, c.row, c.before, c.after) for c in dated] == [
        (ChangeKind.CHANGED, "membership=NON_MEMBER", "amount=3630", "amount=3960")]


def test_an_edited_past_row_shows_as_changed_in_its_version(tmp_path):
    current = load_policy(RULES_DIR)
    edited_dir = copy_rules(tmp_path)
    path = edited_dir / "application_fees.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("amount: 1210", "amount: 1300"), encoding="utf-8")
    changes = diff(current, None, load_policy(edited_dir), None)
    assert [(c.table, c.effective_from, c.kind, c.row, c.before, c.after) for c in changes] == [
        ("application_fees", REVISION, ChangeKind.CHANGED, "membership=MEMBER", "amount=1210", "amount=1300")]


def test_rows_without_other_cells_read_as_themselves(tmp_path):
    """A permission row is all key: added, it reads as the row."""
    current = load_policy(RULES_DIR)
    edited_dir = copy_rules(tmp_path)
    path = edited_dir / "permissions.yaml"
    text = path.read_text(encoding="utf-8")
    row = "      - {action: audit.view, kind: CHAMBER_STAFF, registration: any, relation: same_chamber}\n"
    assert row in text
    path.write_text(text.replace(row, ""), encoding="utf-8")
    [change] = diff(current, None, load_policy(edited_dir), None)
    label = "action=audit.view, kind=CHAMBER_STAFF, registration=any, relation=same_chamber"
    assert (change.table, change.kind, change.row, change.before, change.after) == (
        "permissions", ChangeKind.REMOVED, label, label, None)


def test_the_last_revision_on_a_date():
    policy = load_policy(RULES_DIR)
    assert last_revision(policy, dt.date(2026, 5, 1)) == REVISION
    assert last_revision(policy, REVISION) == REVISION
    assert last_revision(policy, BEFORE) is None or last_revision(policy, BEFORE) < REVISION
