"""Rule files: validation names file, version/row and value; cross-checks; golden tables."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from rules import fees
from rules.golden import run_golden
from rules.policy import RulesInvalid, fingerprint, load_policy
from tests.conftest import RULES_DIR


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def problems_of(directory: Path) -> list[str]:
    with pytest.raises(RulesInvalid) as caught:
        load_policy(directory)
    return [str(p) for p in caught.value.problems]


def test_the_shipped_rules_validate_and_every_golden_row_passes():
    policy = load_policy(RULES_DIR)
    results = run_golden(policy, RULES_DIR)
    assert len(results) >= 25
    assert [r.describe() for r in results if not r.passed] == []


def test_a_broken_price_names_file_version_row_and_value(rules_copy):
    edit(rules_copy / "application_fees.yaml", "amount: 1210", 'amount: "1,210"')
    [problem] = problems_of(rules_copy)
    assert problem.startswith("application_fees.yaml: version 2 (effective_from 2026-04-01), row 1 (membership=MEMBER), amount")
    assert "'1,210'" in problem


def test_a_negative_fee_is_refused(rules_copy):
    edit(rules_copy / "application_fees.yaml", "amount: 3630", "amount: -3630")
    [problem] = problems_of(rules_copy)
    assert "row 2 (membership=NON_MEMBER)" in problem and "-3630" in problem


def test_face_value_must_be_coupons_times_the_single_price(rules_copy):
    edit(rules_copy / "coupon_products.yaml", "face_value: 36300", "face_value: 36000")
    found = problems_of(rules_copy)
    assert any(
        p.startswith("coupon_products.yaml: version 2 (effective_from 2026-04-01), row 2 (membership=MEMBER, code=PACK30)")
        and "36000" in p and "30 × SINGLE price 1210 = 36300" in p
        for p in found
    ), found


def test_the_pack_deduction_must_match_the_pack_discount(rules_copy):
    edit(rules_copy / "pack_refund_deductions.yaml", "deduction: 1210", "deduction: 1100")
    [problem] = problems_of(rules_copy)
    assert problem.startswith("pack_refund_deductions.yaml: version 2 (effective_from 2026-04-01), product=PACK30")
    assert "36300 − 35090 = 1210" in problem


def test_two_rows_answering_the_same_question_are_refused(rules_copy):
    edit(rules_copy / "application_fees.yaml", "membership: NON_MEMBER\n        amount: 3630", "membership: MEMBER\n        amount: 3630")
    found = problems_of(rules_copy)
    assert any("version 2 (effective_from 2026-04-01), row 2: overlaps row 1 (membership=MEMBER)" in p for p in found), found
    assert any("no row for membership=NON_MEMBER" in p for p in found), found


def test_overlapping_tiers_are_refused(rules_copy):
    edit(rules_copy / "refund_transfer_costs.yaml", "refund_from: 30000", "refund_from: 20000")
    found = problems_of(rules_copy)
    assert any(p.startswith("refund_transfer_costs.yaml: version 1") and "overlaps row 1" in p for p in found), found


def test_a_gap_between_tiers_is_refused(rules_copy):
    edit(rules_copy / "refund_transfer_costs.yaml", "refund_from: 30000", "refund_from: 40000")
    [problem] = problems_of(rules_copy)
    assert "no row covers refunds from 30000 yen" in problem


def test_versions_must_be_in_date_order_and_real_dates(rules_copy):
    edit(rules_copy / "application_fees.yaml", "effective_from: 2026-04-01", "effective_from: 2021-04-01")
    [problem] = problems_of(rules_copy)
    assert problem.startswith("application_fees.yaml: version 2 (effective_from 2021-04-01)")
    edit(rules_copy / "application_fees.yaml", "effective_from: 2021-04-01", "effective_from: 2026-02-30")
    [problem] = problems_of(rules_copy)
    assert "'2026-02-30' is not a calendar date" in problem


def test_missing_unknown_and_unreadable_files_are_named(rules_copy):
    (rules_copy / "tax.yaml").unlink()
    (rules_copy / "discounts.yaml").write_text("table: discounts\n", encoding="utf-8")
    (rules_copy / "registration_fees.yaml").write_text("table: [unclosed\n", encoding="utf-8")
    found = problems_of(rules_copy)
    assert any(p.startswith("tax.yaml: rule file is missing") for p in found), found
    assert any(p.startswith("discounts.yaml: unknown rule file") for p in found), found
    assert any(p.startswith("registration_fees.yaml: line") and "not valid YAML" in p for p in found), found


def test_a_file_must_hold_the_table_its_name_says(rules_copy):
    edit(rules_copy / "tax.yaml", "table: tax", "table: application_fees")
    found = problems_of(rules_copy)
    assert any(p.startswith("tax.yaml: table: says 'application_fees'") for p in found), found


def test_the_rules_version_is_a_hash_of_the_content(rules_copy):
    before = fingerprint(rules_copy)
    assert re.fullmatch(r"[0-9a-f]{12}", before)
    assert fingerprint(rules_copy) == before
    edit(rules_copy / "application_fees.yaml", "# 発給申請手数料", "# 発給申請手数料 (edited)")
    assert fingerprint(rules_copy) != before
    assert load_policy(rules_copy).version == fingerprint(rules_copy)


def test_a_fee_revision_is_a_new_version_in_the_file(rules_copy):
    (rules_copy / "application_fees.yaml").write_text(
        (rules_copy / "application_fees.yaml").read_text(encoding="utf-8")
        + "  - effective_from: 2027-04-01\n    source: test\n    rows:\n"
        "      - {membership: MEMBER, amount: 1320}\n      - {membership: NON_MEMBER, amount: 3960}\n",
        encoding="utf-8",
    )
    policy = load_policy(rules_copy)
    assert fees.application_fee(policy, dt.date(2027, 3, 31), "MEMBER").value == 1210
    assert fees.application_fee(policy, dt.date(2027, 4, 1), "MEMBER").value == 1320
    assert fees.application_fee(policy, dt.date(2027, 3, 31), "MEMBER").rule.effective_until == dt.date(2027, 3, 31)


def test_a_wrong_golden_row_is_reported_with_its_case(rules_copy):
    edit(rules_copy / "tests" / "fees.yaml", "membership: MEMBER, expect: 1210}", "membership: MEMBER, expect: 1200}")
    results = run_golden(load_policy(rules_copy), rules_copy)
    failed = [r.describe() for r in results if not r.passed]
    assert failed == ["fees.yaml case 4: application_fee(on=2026-04-01, membership=MEMBER): expected 1200, got 1210"]


def test_a_golden_input_of_the_wrong_kind_is_reported_with_its_case(rules_copy):
    edit(rules_copy / "tests" / "fees.yaml", "membership: MEMBER, expect: 1210}", "membership: 5, expect: 1210}")
    results = run_golden(load_policy(rules_copy), rules_copy)
    failed = [r.describe() for r in results if not r.passed]
    assert failed == ["fees.yaml case 4: application_fee(on=2026-04-01, membership=5): ValueError: membership must be text, got 5"]


def test_a_golden_file_that_is_not_a_list_of_cases_is_reported(rules_copy):
    (rules_copy / "tests" / "extra.yaml").write_text("ask: application_fee\n", encoding="utf-8")
    results = run_golden(load_policy(rules_copy), rules_copy)
    assert [r.describe() for r in results if not r.passed] == ["extra.yaml case 0: None(): a golden file is a list of cases"]


def test_a_rule_row_answers_in_the_types_its_schema_gives():
    fee = fees.application_fee(load_policy(RULES_DIR), dt.date(2026, 4, 1), "MEMBER").rule
    assert (fee.integer("amount"), fee.text("membership"), fee.optional_integer("missing")) == (1210, "MEMBER", None)
    with pytest.raises(TypeError, match=r"application_fees\.yaml version 2 row 1: membership is 'MEMBER', not a whole number"):
        fee.integer("membership")
