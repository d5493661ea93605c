"""Decision-table discipline: each rule file declares its hit policy (unique, first,
collect), `rules check` reports overlaps, gaps and shadowed rows by that policy, and
`rules test` fails while a row of any version is hit by no golden row. On a copy of rules/."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rules import fees
from rules.golden import run_golden, uncovered_rows
from rules.policy import TABLES, RulesInvalid, load_policy
from tests.conftest import RULES_DIR

TRADECERT = str(Path(sys.executable).parent / "tradecert")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def problems_of(directory: Path) -> list[str]:
    with pytest.raises(RulesInvalid) as caught:
        load_policy(directory)
    return [str(p) for p in caught.value.problems]


def rules_test(directory: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "TRADECERT_RULES_DIR": str(directory)}
    return subprocess.run([TRADECERT, "rules", "test"], capture_output=True, text=True, env=env, timeout=120)


# --------------------------------------------------------------------------- hit policies


def test_every_shipped_table_declares_the_hit_policy_it_is_asked_by():
    policy = load_policy(RULES_DIR)
    declared = {name: table.hit_policy for name, table in policy.tables.items()}
    assert set(declared) == set(TABLES)
    assert declared["application_fees"] == "unique"
    assert declared["refund_transfer_costs"] == "unique"
    assert declared["permissions"] == "collect"
    assert declared["coupon_products"] == "collect"


def test_a_table_without_a_hit_policy_is_named(rules_copy):
    edit(rules_copy / "tax.yaml", "hit_policy: unique", "# (no hit policy)")
    [problem] = problems_of(rules_copy)
    assert problem.startswith("tax.yaml: ") and "'hit_policy' is a required property" in problem


def test_an_unknown_hit_policy_is_named_with_its_value(rules_copy):
    edit(rules_copy / "application_fees.yaml", "hit_policy: unique", "hit_policy: any")
    [problem] = problems_of(rules_copy)
    assert problem.startswith("application_fees.yaml: hit_policy: ") and "'any'" in problem


def test_a_hit_policy_the_code_cannot_ask_by_is_refused(rules_copy):
    edit(rules_copy / "application_fees.yaml", "hit_policy: unique", "hit_policy: collect")
    edit(rules_copy / "permissions.yaml", "hit_policy: collect", "hit_policy: unique")
    found = problems_of(rules_copy)
    assert any(p.startswith("application_fees.yaml: hit_policy: collect") and "unique or first" in p for p in found), found
    assert any(p.startswith("permissions.yaml: hit_policy: unique") and "collect" in p for p in found), found


def test_an_overlap_in_a_unique_table_names_file_version_and_rows(rules_copy):
    edit(rules_copy / "pack_refund_deductions.yaml", "      - product: PACK30\n        deduction: 1210\n",
         "      - product: PACK30\n        deduction: 1210\n      - product: PACK30\n        deduction: 1100\n")
    found = problems_of(rules_copy)
    assert "pack_refund_deductions.yaml: version 2 (effective_from 2026-04-01), row 2: overlaps row 1 (product=PACK30)" in found


def test_a_membership_without_a_row_is_a_gap(rules_copy):
    edit(rules_copy / "application_fees.yaml", "      - membership: NON_MEMBER\n        amount: 3630\n", "")
    assert problems_of(rules_copy) == [
        "application_fees.yaml: version 2 (effective_from 2026-04-01): no row for membership=NON_MEMBER"
    ]


def test_a_hole_in_a_range_is_a_gap(rules_copy):
    edit(rules_copy / "refund_transfer_costs.yaml", "refund_to: 29999", "refund_to: 9999")
    assert problems_of(rules_copy) == [
        "refund_transfer_costs.yaml: version 1 (effective_from 2022-04-01): "
        "no row covers refunds from 10000 yen (next row starts at 30000)"
    ]


def test_a_first_hit_table_may_overlap_and_the_first_row_answers(rules_copy):
    edit(rules_copy / "refund_transfer_costs.yaml", "hit_policy: unique", "hit_policy: first")
    edit(rules_copy / "refund_transfer_costs.yaml", "      - refund_from: 0\n",
         "      - refund_from: 1000\n        refund_to: 4999\n        cost: 330\n      - refund_from: 0\n")
    policy = load_policy(rules_copy)  # overlaps are allowed under `first`
    assert fees.refund_transfer_cost(policy, dt.date(2026, 4, 1), 2000).value == 330
    assert fees.refund_transfer_cost(policy, dt.date(2026, 4, 1), 500).value == 550
    assert fees.refund_transfer_cost(policy, dt.date(2026, 4, 1), 6000).value == 550


def test_a_row_a_first_hit_table_can_never_reach_is_reported(rules_copy):
    edit(rules_copy / "refund_transfer_costs.yaml", "hit_policy: unique", "hit_policy: first")
    edit(rules_copy / "refund_transfer_costs.yaml", "        cost: 770\n",
         "        cost: 770\n      - refund_from: 50000\n        refund_to: 59999\n        cost: 990\n")
    assert problems_of(rules_copy) == [
        "refund_transfer_costs.yaml: version 1 (effective_from 2022-04-01), row 3: "
        "never hit: row 2 above it answers every question it would (hit_policy first)"
    ]


def test_a_collect_table_may_have_overlapping_rows(rules_copy):
    edit(rules_copy / "permissions.yaml",
         "      - {action: coupon.view, kind: SUB, registration: APPLICANT, relation: own_registration}\n",
         "      - {action: coupon.view, kind: SUB, registration: APPLICANT, relation: own_registration}\n"
         "      - {action: coupon.view, kind: any, registration: APPLICANT, relation: own_registration}\n")
    load_policy(rules_copy)  # every matching row applies: no overlap check


# --------------------------------------------------------------------------- golden coverage


def test_each_golden_case_records_the_rows_it_hit():
    results = run_golden(load_policy(RULES_DIR), RULES_DIR)
    old_fee = next(r for r in results if r.case.get("ask") == "application_fee" and str(r.case.get("on")) == "2026-03-31")
    assert ("application_fees", 1, 1) in old_fee.hits
    refund = next(r for r in results if r.case.get("ask") == "refund_after_costs" and r.case.get("refund") == 30000)
    assert refund.hits == {("refund_transfer_costs", 1, 2)}


def test_every_row_of_every_version_of_the_shipped_rules_has_a_golden_row():
    policy = load_policy(RULES_DIR)
    assert [u.describe() for u in uncovered_rows(policy, run_golden(policy, RULES_DIR))] == []


def test_a_row_without_a_golden_row_fails_rules_test(rules_copy):
    assert rules_test(rules_copy).returncode == 0
    with (rules_copy / "application_fees.yaml").open("a", encoding="utf-8") as f:
        f.write("  - effective_from: 2031-04-01\n    source: test\n    rows:\n"
                "      - {membership: MEMBER, amount: 1320}\n      - {membership: NON_MEMBER, amount: 3960}\n")
    with (rules_copy / "tests" / "fees.yaml").open("a", encoding="utf-8") as f:
        f.write("- {ask: application_fee, on: 2031-04-01, membership: MEMBER, expect: 1320}\n")
    result = rules_test(rules_copy)
    assert result.returncode == 1
    assert "0 failed" in result.stdout
    uncovered = [line for line in result.stderr.splitlines() if line.startswith("UNCOVERED")]
    assert uncovered == [
        "UNCOVERED application_fees.yaml version 3 (effective_from 2031-04-01) row 2 (membership=NON_MEMBER): "
        "no golden row hits it"
    ]
    assert "1 row(s) of the rule files hit by no golden row" in result.stdout


def test_an_old_version_needs_golden_rows_of_its_own(rules_copy):
    edit(rules_copy / "tests" / "fees.yaml",
         "- {ask: application_fee, on: 2026-03-31, membership: NON_MEMBER, expect: 3300}\n", "")
    policy = load_policy(rules_copy)
    found = [u.describe() for u in uncovered_rows(policy, run_golden(policy, rules_copy))]
    assert found == [
        "application_fees.yaml version 1 (effective_from 2022-04-01) row 2 (membership=NON_MEMBER): no golden row hits it"
    ]


def test_only_the_first_matching_row_of_a_first_hit_table_is_hit(rules_copy):
    edit(rules_copy / "refund_transfer_costs.yaml", "hit_policy: unique", "hit_policy: first")
    edit(rules_copy / "refund_transfer_costs.yaml", "      - refund_from: 0\n",
         "      - refund_from: 1000\n        refund_to: 4999\n        cost: 330\n      - refund_from: 0\n")
    policy = load_policy(rules_copy)
    found = [u.describe() for u in uncovered_rows(policy, run_golden(policy, rules_copy))]
    # 5,000 yen and 300 yen are asked: the new row (1,000–4,999) answers neither.
    assert found == [
        "refund_transfer_costs.yaml version 1 (effective_from 2022-04-01) row 1 (refund_from=1000, refund_to=4999): "
        "no golden row hits it"
    ]
