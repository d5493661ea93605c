"""Every limit, yen amount and count has a bound (issue 20 item 4): a limits.yaml version in
force today with `bank_transfer_valid_days: 3000000` once passed `rules check` and made
every `startCouponPurchase` an INTERNAL_SERVER_ERROR ("date value out of range")."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from resolvers.core.clock import TOKYO
from rules.limits import LimitOutOfRange, bounds, limit
from rules.policy import SCHEMA_PATH, RulesInvalid, load_policy
from tests.coupons.test_purchases import start
from tests.identity.test_subaccounts import as_user
from tests.tradecert.test_cli import run

BAD_ROW = "bank_transfer_valid_days\n        value: 30\n"


def add_limits_version(rules: Path, effective_from: str, bank_transfer_valid_days: int) -> None:
    """A new limits.yaml version: the first one's rows with another bank-transfer period."""
    path = rules / "limits.yaml"
    text = path.read_text(encoding="utf-8")
    first = text[text.index("  - effective_from: 2022-04-01"):]
    assert BAD_ROW in first
    added = first.replace("2022-04-01", effective_from, 1).replace(
        BAD_ROW, f"bank_transfer_valid_days\n        value: {bank_transfer_valid_days}\n", 1)
    path.write_text(text.rstrip("\n") + "\n" + added, encoding="utf-8")


def today() -> str:
    return dt.datetime.now(TOKYO).date().isoformat()


def test_rules_check_refuses_3000000_days_in_a_version_in_force_today_naming_file_version_row_and_bound(
        tmp_path, rules_copy):
    add_limits_version(rules_copy, today(), 3_000_000)
    env = {"TRADECERT_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}", "TRADECERT_RULES_DIR": str(rules_copy)}
    result = run("rules", "check", env=env)
    assert result.returncode == 1
    assert (f"limits.yaml: version 2 (effective_from {today()}), row 2 (limit=bank_transfer_valid_days), value: "
            "3000000 is above the bound (at most 365; bank_transfer_valid_days is counted in days)") in result.stderr
    assert result.stderr.count("3000000") == 1  # the limit's own bound, not also the general one


def test_every_limit_every_yen_amount_and_every_count_has_a_maximum():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$defs"]["yen"]["maximum"] == 10_000_000
    limits = next(b for b in schema["allOf"] if b["if"]["properties"]["table"]["const"] == "limits")
    items = limits["then"]["properties"]["versions"]["items"]["properties"]["rows"]["items"]
    named = set(items["properties"]["limit"]["enum"])
    own = {r["if"]["properties"]["limit"]["const"] for r in items["allOf"]}
    assert own == named, f"limits without a bound of their own: {sorted(named - own)}"
    assert bounds()["bank_transfer_valid_days"] == 365 and bounds()[""] == 1_000_000
    policy = load_policy(rules_copy_dir := Path(__file__).parents[2] / "rules")
    for name in named:  # the shipped values sit inside their bounds
        assert 1 <= limit(policy, dt.date(2026, 4, 1), name) <= bounds()[name], (name, rules_copy_dir)


def test_a_yen_amount_with_extra_zeros_is_refused(rules_copy):
    path = rules_copy / "application_fees.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("amount: 1210", "amount: 121000000", 1), encoding="utf-8")
    with pytest.raises(RulesInvalid) as refused:
        load_policy(rules_copy)
    assert any("membership=MEMBER), amount: 121000000 is above the bound (at most 10000000" in str(p)
               for p in refused.value.problems)


def test_a_stored_version_beyond_the_bounds_still_loads_to_reprint_what_was_priced_under_it(rules_copy):
    add_limits_version(rules_copy, "2026-04-01", 3_000_000)
    policy = load_policy(rules_copy, bounded=False)  # as the rules history loads a version that went live
    with pytest.raises(LimitOutOfRange) as bad:
        limit(policy, dt.date(2026, 4, 1), "bank_transfer_valid_days")
    assert str(bad.value) == ("limits.yaml version 2 (effective_from 2026-04-01) row 2 "
                              "(limit=bank_transfer_valid_days): value 3000000 is outside its bound 1–365")
    assert limit(policy, dt.date(2026, 3, 31), "bank_transfer_valid_days") == 30


async def test_a_running_server_keeps_its_rules_and_sells_coupons_when_a_version_breaks_a_bound(live):
    add_limits_version(live.rules_dir, "2026-04-01", 3_000_000)  # today on the server's clock
    served = live.services.rules.current.version
    outcome = await asyncio.to_thread(live.services.rules.reload)
    assert not outcome.changed and outcome.version == served
    assert any("row 2 (limit=bank_transfer_valid_days), value: 3000000 is above the bound" in p for p in outcome.problems)
    result = await asyncio.to_thread(start, live, as_user(live, "signer-2701000002"))
    assert result["errors"] == [] and result["purchase"]["virtualAccount"]["validUntil"] == "2026-05-01"


async def test_a_limit_past_its_bound_that_reached_the_server_is_refused_naming_the_row_never_a_500(live):
    add_limits_version(live.rules_dir, "2026-04-01", 3_000_000)
    # a policy that bypassed the bounds (only a stored version loaded again does): the check at use
    live.services.rules._current = load_policy(live.rules_dir, bounded=False)
    signer = as_user(live, "signer-2701000002")
    result = await asyncio.to_thread(start, live, signer)
    assert result["purchase"] is None
    [error] = result["errors"]
    assert error["code"] == "RULES_OUT_OF_RANGE"
    assert "limits.yaml 第2版 2行目のbank_transfer_valid_days" in error["message"]
    english = await asyncio.to_thread(start, live, {**signer, "Accept-Language": "en"})
    assert english["errors"][0]["message"].startswith(
        "The rules in force hold a value outside its bound (limits.yaml version 2 row 2, bank_transfer_valid_days)")
