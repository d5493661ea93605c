"""A way out of a wrong version in force (issue 20 item 4): a version whose effective_from
has come cannot be edited in place, so a wrong one used to stay until the next day. A
correction replaces it at once, recorded in the rules history with who and why; what was
priced under the wrong version keeps it."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import httpx
import pytest
from sqlalchemy import select

from persistence.models import RulesCorrection
from resolvers.core.clock import TOKYO, FixedClock
from resolvers.fees import rules_history
from rules.limits import LimitOutOfRange, limit
from rules.policy import load_policy
from tests.conftest import settings_for, start_server, tokyo
from tests.identity.test_subaccounts import as_user
from tests.payments.test_card_checkout import ADD, STATEMENTS, approved_card_application, checkout
from tests.payments.test_card_payments import GOOD, pay
from tests.payments.test_statement_rules_version import EIGHT_PERCENT
from tests.rules.test_rule_bounds import add_limits_version, today
from tests.rules.test_rules_history import cli_env, fee_on, migrated_db, wait_for
from tests.tradecert.test_cli import run


async def test_the_3000000_days_version_in_force_today_is_corrected_the_same_day(db_target, rules_copy):
    """The issue's scenario, as a release without bounds left it: the wrong limits.yaml
    version went live this morning; restoring the file is refused until it is a correction."""
    limits = rules_copy / "limits.yaml"
    original = limits.read_text(encoding="utf-8")
    now = dt.datetime.now(TOKYO)
    db = await migrated_db(db_target)
    try:
        good = load_policy(rules_copy)
        await rules_history.record_version(db, good, FixedClock(now - dt.timedelta(days=1)))
        add_limits_version(rules_copy, today(), 3_000_000)
        bad = load_policy(rules_copy, bounded=False)  # what a release without bounds served
        await rules_history.record_version(db, bad, FixedClock(now - dt.timedelta(hours=1)))
    finally:
        await db.dispose()
    env = cli_env(db_target, rules_copy)

    limits.write_text(original, encoding="utf-8")  # restored: it rewrites (removes) a version in force
    refused = await asyncio.to_thread(run, "rules", "check", env=env)
    assert refused.returncode == 1
    assert f"limits.yaml: version (effective_from {today()}): version removed;" in refused.stderr
    assert "tradecert rules correct --reason … --by …" in refused.stderr

    missing = await asyncio.to_thread(run, "rules", "correct", "--by", "山田 政策担当", env=env)
    assert missing.returncode == 2 and "--reason" in missing.stderr

    why = "bank_transfer_valid_days 3000000 was a typo for 30; coupon sales failed"
    done = await asyncio.to_thread(run, "rules", "correct", "--reason", why, "--by", "山田 政策担当", env=env)
    assert done.returncode == 0, done.stderr
    assert f"rules {good.version} corrects {bad.version} from {today()} " in done.stdout
    assert f"by 山田 政策担当: {why}" in done.stdout

    checked = await asyncio.to_thread(run, "rules", "check", env=env)
    assert checked.returncode == 0, checked.stderr
    assert "none rewritten" in checked.stdout

    again = await asyncio.to_thread(run, "rules", "correct", "--reason", why, "--by", "山田 政策担当", env=env)
    assert again.returncode == 1 and "nothing to correct" in again.stderr

    history = await asyncio.to_thread(run, "rules", "history", env={**env, "COLUMNS": "80"})
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert f"corrects {bad.version}" in lines[1] and lines[2].strip().startswith("by 山田 政策担当: bank_transfer")
    assert bad.version in lines[3] and good.version in lines[4]  # the wrong version stays in the history
    assert lines[-1] == "2 version(s), 1 correction(s)"

    db = db_target.database()
    try:
        async with db.read() as session:
            [row] = (await session.scalars(select(RulesCorrection))).all()
        assert (row.version, row.corrects, row.corrected_by, row.reason) == (good.version, bad.version, "山田 政策担当", why)
        # the wrong version can still be loaded for what names it; its limit is refused at use
        kept = await rules_history.policy_of_version(db, bad.version)
        assert kept is not None and kept.version == bad.version
        with pytest.raises(LimitOutOfRange):
            limit(kept, dt.date.fromisoformat(today()), "bank_transfer_valid_days")
    finally:
        await db.dispose()

    # a server starting now accepts the restored files and sells coupons with 30 days
    settings = settings_for(db_target.url, rules_copy)
    server = await asyncio.to_thread(start_server, settings, FixedClock(now), db_target.schema)
    try:
        assert (await asyncio.to_thread(fee_on, server, today()))["rulesVersion"] == good.version
        assert limit(server.services.rules.current, dt.date.fromisoformat(today()), "bank_transfer_valid_days") == 30
    finally:
        await asyncio.to_thread(server.stop)


def paid_statement_taxes(live, signer) -> list[int]:
    statements = live.graphql(STATEMENTS, {"m": "2026-04"}, headers=signer).json()["data"]["cardStatements"]
    return sorted(s["tax"] for s in statements)


def pay_one_application(live, signer, staff, invoice: str) -> None:
    app_id = approved_card_application(live, signer, staff, invoiceNumber=invoice)
    assert live.graphql(ADD, {"ids": [app_id]}, headers=signer).json()["data"]["addToCardCart"]["errors"] == []
    assert pay(checkout(live, signer)["paymentUrl"], GOOD).status_code == 200


async def test_a_running_server_serves_the_correction_at_once_and_reprints_under_the_wrong_version(
        migrated, rules_copy, smtp, caplog):
    """A wrong tax version in force today (8 % instead of 10 %): a fee is paid under it, the
    correction goes live the same morning, later fees use it, and the first statement still
    reprints under the version it was priced under."""
    target, db = migrated
    tax = rules_copy / "tax.yaml"
    original = tax.read_text(encoding="utf-8")
    tax.write_text(original.rstrip("\n") + "\n" + EIGHT_PERCENT, encoding="utf-8")
    clock = FixedClock(tokyo(2026, 4, 1, 10, 0))
    settings = settings_for(target.url, rules_copy, smtp_url=smtp.url).with_(rules_poll_seconds=0.1)
    live = await asyncio.to_thread(start_server, settings, clock, target.schema)
    try:
        wrong = live.services.rules.current.version
        signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
        await asyncio.to_thread(pay_one_application, live, signer, staff, "WRONG-1")
        assert await asyncio.to_thread(paid_statement_taxes, live, signer) == [89]  # 1,210 × 8/108

        with caplog.at_level(logging.ERROR, logger="tradecert.rules"):
            tax.write_text(original, encoding="utf-8")  # the fix, without a correction: refused
            await asyncio.sleep(1.0)
        assert live.services.rules.current.version == wrong
        assert any("version removed" in p for r in caplog.records for p in getattr(r, "problems", []))

        clock.advance(dt.timedelta(minutes=20))
        corrected = load_policy(rules_copy)
        done = await rules_history.record_correction(db, corrected, clock, "消費税率の誤り (8% → 10%)", "山田 政策担当")
        assert done.corrects == (wrong,) and done.at == tokyo(2026, 4, 1, 10, 20)
        served = await asyncio.to_thread(wait_for, lambda: live.services.rules.current.version,
                                         lambda v: v == corrected.version)
        assert served == corrected.version  # the next reload, the same day

        await asyncio.to_thread(pay_one_application, live, signer, staff, "RIGHT-1")
        assert await asyncio.to_thread(paid_statement_taxes, live, signer) == [89, 110]  # each under its own version
        statements = live.graphql(STATEMENTS, {"m": "2026-04"}, headers=signer).json()["data"]["cardStatements"]
        first = next(s for s in statements if s["tax"] == 89)  # the wrong version's statement is not rewritten
        pdf = httpx.get(first["pdfUrl"], headers=signer)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

        query = "{ rulesCorrections { version corrects reason correctedBy correctedAt } }"
        shown = (await asyncio.to_thread(live.graphql, query, None, staff)).json()["data"]["rulesCorrections"]
        assert shown == [{"version": corrected.version, "corrects": [wrong], "reason": "消費税率の誤り (8% → 10%)",
                          "correctedBy": "山田 政策担当", "correctedAt": "2026-04-01T10:20:00+09:00"}]
        refused = (await asyncio.to_thread(live.graphql, query, None, signer)).json()
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert wrong in {v.version for v in await rules_history.all_versions(db)}  # kept for what names it
    finally:
        await asyncio.to_thread(live.stop)
