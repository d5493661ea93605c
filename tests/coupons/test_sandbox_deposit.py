"""`tradecert bank sandbox-deposit` (issue 12): the sandbox bank's 振込入金通知 for a demo
transfer, which `tradecert bank import` reads and reconciles like a bank's file — as real
processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from resolvers.adapters.bank_files import parse_statement
from resolvers.adapters.sandbox_deposits import bank_characters
from tests.coupons.test_purchases import ACCOUNT, CHECK, start
from tests.identity.test_subaccounts import as_user

TRADECERT = str(Path(sys.executable).parent / "tradecert")
BOOKED = "2026-04-02"  # the day after the order (the live server's clock: 2026-04-01)


def cli(live, target, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TRADECERT_DATABASE_URL": target.url, "TRADECERT_DATABASE_SCHEMA": target.schema or "",
                   "TRADECERT_RULES_DIR": str(live.rules_dir), "COLUMNS": "200", **env}
    return subprocess.run([TRADECERT, *args], env=environment, capture_output=True, text=True, timeout=120)


async def test_a_sandbox_deposit_imported_issues_the_order(live, migrated, tmp_path):
    target, _db = migrated
    signer = as_user(live, "signer-2701000002")
    purchase = start(live, signer)["purchase"]
    number, account = purchase["orderNumber"], purchase["virtualAccount"]["accountNumber"]
    path = tmp_path / "nyukin.dat"

    written = cli(live, target, "bank", "sandbox-deposit", number, "--on", BOOKED, "--out", str(path))
    assert written.returncode == 0, written.stderr
    assert f"71,390 yen to account {account} from 2701000002 on {BOOKED}" in written.stdout
    assert all(len(line) <= 80 for line in written.stdout.splitlines() if line.startswith("  "))  # paths may be long
    assert f"next: tradecert bank import {path}" in written.stdout
    [line] = parse_statement(path.read_bytes(), dt.date(2026, 4, 2)).deposits  # a bank's file, as the reader sees it
    assert (line.account_number, line.amount, line.deposited_on, line.payer_name) == (
        account, 71390, dt.date(2026, 4, 2), "2701000002")

    imported = cli(live, target, "bank", "import", str(path))
    assert imported.returncode == 0, imported.stderr
    assert "zengin-01, 1 deposit(s), 71,390 yen" in imported.stdout and "reconciled: issued 1" in imported.stdout
    seen = live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]
    assert (seen["balance"], seen["pending"]) == (61, 0)
    assert seen["purchases"]["edges"][0]["node"] == {"orderNumber": number, "status": "ISSUED"}

    # the order is paid: a second transfer is a new deposit (the next 照会番号), and owed back
    again = cli(live, target, "bank", "sandbox-deposit", number, "--on", BOOKED, "--out", str(tmp_path / "again.dat"))
    assert again.returncode == 0 and "ISSUED: this deposit will be owed back" in again.stderr
    assert "reconciled: refunded 1" in cli(live, target, "bank", "import", str(tmp_path / "again.dat")).stdout


async def test_a_short_sandbox_deposit_is_handled_as_any_short_payment(live, migrated, tmp_path):
    target, _db = migrated
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    purchase = start(live, signer)["purchase"]
    path = tmp_path / "short.dat"
    written = cli(live, target, "bank", "sandbox-deposit", purchase["orderNumber"], "--amount", "70000", "--on", BOOKED,
                  "--payer", "ｶｺｶﾞﾜｼｾﾞﾝｼｮｸﾋﾝ", "--out", str(path))
    assert written.returncode == 0, written.stderr
    assert "70,000 yen to account" in written.stdout and "from ｶｺｶﾞﾜｼｾﾞﾝｼﾖｸﾋﾝ" in written.stdout and "due 71,390 yen" in written.stdout  # small kana made large
    imported = cli(live, target, "bank", "import", str(path))
    assert imported.returncode == 0 and "reconciled: short 1" in imported.stdout, imported.stdout + imported.stderr
    order = live.graphql(CHECK, {"id": purchase["id"]}, headers=staff).json()["data"]["checkPurchasePayment"]["purchase"]
    assert (order["status"], order["cancelReason"], order["refundDue"]) == ("CANCELLED", "入金額不足", 70000 - 770)
    seen = live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]
    assert (seen["balance"], seen["pending"]) == (0, 0)


async def test_sandbox_deposit_refuses_in_one_line(live, migrated, tmp_path):
    target, _db = migrated
    signer = as_user(live, "signer-2701000002")
    unknown = cli(live, target, "bank", "sandbox-deposit", "20260401999999999999999", "--out", str(tmp_path / "x.dat"))
    assert unknown.returncode == 1 and unknown.stderr.strip() == "Error: no coupon order '20260401999999999999999'"
    card = start(live, signer, lines=[{"productCode": "SINGLE", "quantity": 1}], method="CARD")["purchase"]
    by_card = cli(live, target, "bank", "sandbox-deposit", card["orderNumber"])
    assert by_card.returncode == 1 and "is paid by CARD, not by bank transfer" in by_card.stderr
    assert "Traceback" not in unknown.stderr + by_card.stderr and not (tmp_path / "x.dat").exists()
    kanji = cli(live, target, "bank", "sandbox-deposit", card["orderNumber"], "--payer", "加古川")
    assert kanji.returncode == 1 and "Traceback" not in kanji.stderr


def test_production_refuses_sandbox_deposits(tmp_path):
    refused = subprocess.run(
        [TRADECERT, "bank", "sandbox-deposit", "20260401270100000200001"], capture_output=True, text=True, timeout=120,
        env={**os.environ, "TRADECERT_ENV": "production", "TRADECERT_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
             "TRADECERT_PAYMENT_SECRET": "s" * 40})
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == "Error: production refuses sandbox deposits: its deposits are money nobody sent"


def test_remitter_names_as_a_bank_prints_them():
    assert bank_characters("ニッショウ テスト") == ("ﾆﾂｼﾖｳ ﾃｽﾄ", True)
    assert bank_characters("かこがわ　ﾌｰｽﾞ") == ("ｶｺｶﾞﾜ ﾌ-ｽﾞ", True)  # hiragana, full-width space, long vowel
    assert bank_characters("ＡＢＣ trading (株)") == ("ABC TRADING(ｶ", True)  # the legal form as banks shorten it
    assert bank_characters("株式会社テスト") == ("ｶ)ﾃｽﾄ", True)
    assert bank_characters("加古川自然食品") == ("", False)
