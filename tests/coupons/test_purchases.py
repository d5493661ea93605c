"""Coupon purchases by bank transfer, deposits and reconciliation over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading

from sqlalchemy import func, select

from persistence.models import BankDeposit, CouponPurchase, OutboxMail, Refund
from tests.conftest import pdf_text
from tests.coupons.test_coupons_api import SET_MEMBERSHIP
from tests.identity.test_subaccounts import as_user

START = """mutation($lines: [CouponPurchaseLineInput!]!, $method: PurchaseMethod!, $key: String) {
  startCouponPurchase(input: {lines: $lines, method: $method, idempotencyKey: $key}) {
    purchase { id orderNumber status method membership coupons amount expiresAt buyer { username }
      lines { productCode quantity unitPrice coupons amount }
      virtualAccount { bankCode branchCode accountNumber holder validUntil } }
    errors { code field message } } }"""
DEPOSIT = """mutation($deposits: [BankDepositInput!]!) { recordBankDeposits(input: {deposits: $deposits}) {
  matched { orderNumber status } errors { code field } } }"""
CHECK = """mutation($id: ID!) { checkPurchasePayment(input: {purchaseId: $id}) { purchase { status paidAt depositedAmount refundDue cancelReason } errors { code } } }"""
ACCOUNT = "{ couponAccount { balance pending purchases { totalCount edges { node { orderNumber status } } } } }"
ORDER = [{"productCode": "SINGLE", "quantity": 1}, {"productCode": "PACK30", "quantity": 2}]


def start(live, headers, lines=ORDER, method="BANK_TRANSFER", key=None):
    return live.graphql(START, {"lines": lines, "method": method, "key": key}, headers=headers).json()["data"]["startCouponPurchase"]


def deposit(live, staff, account, amount, deposit_id, on="2026-04-02"):
    return live.graphql(DEPOSIT, {"deposits": [{"accountNumber": account, "amount": amount, "depositedOn": on,
                                                "payerName": "ｶｺｶﾞﾜｼｾﾞﾝｼﾖｸﾋﾝ", "depositId": deposit_id}]},
                        headers=staff).json()["data"]["recordBankDeposits"]


async def test_an_order_gets_a_one_time_account_and_a_mail_with_its_details(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    result = start(live, signer)
    assert result["errors"] == []
    purchase = result["purchase"]
    assert purchase["orderNumber"] == "20260401270100000200001"
    assert (purchase["status"], purchase["membership"], purchase["coupons"], purchase["amount"]) == ("AWAITING_PAYMENT", "MEMBER", 61, 71390)
    assert purchase["lines"] == [
        {"productCode": "SINGLE", "quantity": 1, "unitPrice": 1210, "coupons": 1, "amount": 1210},
        {"productCode": "PACK30", "quantity": 2, "unitPrice": 35090, "coupons": 60, "amount": 70180},
    ]
    account = purchase["virtualAccount"]
    assert account["bankCode"] == "0310" and re.fullmatch(r"\d{7}", account["accountNumber"])
    assert account["validUntil"] == "2026-05-01"
    assert live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]["pending"] == 61
    async with db.read() as session:
        mail = await session.scalar(select(OutboxMail).where(OutboxMail.kind == "coupon.order"))
    assert mail.to_address == "zeiss@kakogawa.example" and account["accountNumber"] in mail.body and "71,390円" in mail.body


async def test_one_purchase_in_progress_per_registration_even_under_concurrency(live, migrated):
    _target, db = migrated
    tokens = [as_user(live, "signer-2701000002"), as_user(live, "signer2-2701000002")]
    barrier = threading.Barrier(8)
    results: list = []

    def order(i):
        barrier.wait()
        results.append(start(live, tokens[i % 2], lines=[{"productCode": "SINGLE", "quantity": 1 + i}]))

    threads = [threading.Thread(target=order, args=(i,)) for i in range(8)]
    await asyncio.to_thread(lambda: ([t.start() for t in threads], [t.join() for t in threads]))
    assert sum(1 for r in results if r["errors"] == []) == 1
    assert all(r["errors"][0]["code"] == "PURCHASE_IN_PROGRESS" for r in results if r["errors"])
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(CouponPurchase)) == 1


def test_the_same_idempotency_key_returns_the_first_order(live):
    signer = as_user(live, "signer-2701000002")
    first = start(live, signer, key="order-2026-04-01-a")["purchase"]
    again = start(live, signer, key="order-2026-04-01-a")
    assert again["errors"] == [] and again["purchase"]["id"] == first["id"]
    other = start(live, signer, key="order-2026-04-01-b")
    assert other["errors"][0]["code"] == "PURCHASE_IN_PROGRESS"


def test_bad_orders_get_user_errors(live):
    signer = as_user(live, "signer-2701000002")
    nonmember = as_user(live, "signer-2701000003")
    pack = start(live, nonmember, lines=[{"productCode": "PACK30", "quantity": 1}])
    assert pack["errors"][0]["code"] == "PRODUCT_NOT_OFFERED" and pack["errors"][0]["field"] == ["input", "lines", "0", "productCode"]
    bad = start(live, signer, lines=[{"productCode": "SINGLE", "quantity": 0}, {"productCode": "GOLD", "quantity": 1},
                                     {"productCode": "PACK30", "quantity": 10_000_000}])
    assert sorted((e["code"], tuple(e["field"])) for e in bad["errors"]) == [
        ("INVALID", ("input", "lines", "0", "quantity")), ("INVALID", ("input", "lines", "2", "quantity")),
        ("PRODUCT_NOT_OFFERED", ("input", "lines", "1", "productCode")),
    ]
    assert start(live, signer, lines=[])["errors"][0]["code"] == "REQUIRED"
    admin = as_user(live, "admin-2701000002")
    assert live.graphql(START, {"lines": ORDER, "method": "BANK_TRANSFER"}, headers=admin).json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_an_exact_deposit_issues_the_coupons_once(live, migrated):
    _target, _db = migrated
    signer = as_user(live, "signer-2701000002")
    staff = as_user(live, "staff-2701")
    purchase = start(live, signer)["purchase"]
    account = purchase["virtualAccount"]["accountNumber"]
    recorded = deposit(live, staff, account, 71390, "INQ-0001")
    assert recorded == {"matched": [{"orderNumber": purchase["orderNumber"], "status": "AWAITING_PAYMENT"}], "errors": []}
    checked = live.graphql(CHECK, {"id": purchase["id"]}, headers=staff).json()["data"]["checkPurchasePayment"]["purchase"]
    assert checked["status"] == "ISSUED" and checked["depositedAmount"] == 71390 and checked["refundDue"] is None
    seen = live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]
    assert (seen["balance"], seen["pending"]) == (61, 0)
    history = live.graphql("{ couponAccount { history(first: null) { edges { node { kind coupons purchase { orderNumber } } } } } }",
                           headers=signer).json()["data"]["couponAccount"]["history"]["edges"]
    assert [(e["node"]["kind"], e["node"]["coupons"], e["node"]["purchase"]["orderNumber"]) for e in history] == [
        ("PURCHASE", 60, purchase["orderNumber"]), ("PURCHASE", 1, purchase["orderNumber"])]
    # the same statement again, and the nightly job: nothing more
    assert deposit(live, staff, account, 71390, "INQ-0001")["errors"] == []
    assert (await live.run_job("bank-reconciliation")).message == "no new deposits"
    assert live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]["balance"] == 61
    # a later transfer to the used account is owed back, never applied
    deposit(live, staff, account, 5000, "INQ-0002", on="2026-04-03")
    assert (await live.run_job("bank-reconciliation")).message == "refunded: 1"
    refunds = live.graphql("{ refunds { amount reason } }", headers=staff).json()["data"]["refunds"]
    assert refunds[0]["amount"] == 4450 and purchase["orderNumber"] in refunds[0]["reason"]
    assert live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]["balance"] == 61
    assert (await live.run_job("ledger-audit")).status == "ok"
    # the mails: the order (with the account details) and the issue, over SMTP
    assert (await live.run_job("mail-delivery")).status == "ok"
    by_subject = {m["Subject"]: m for m in live.smtp.messages if m["To"] == "zeiss@kakogawa.example"}
    order_mail = next(m for s, m in by_subject.items() if "お振込のご案内" in s).get_content()
    issue_mail = next(m for s, m in by_subject.items() if "クーポン発行" in s).get_content()
    assert account in order_mail and "71,390円" in order_mail
    assert purchase["orderNumber"] in issue_mail and "61 枚" in issue_mail


async def test_more_issues_and_refunds_the_excess_less_costs_and_less_cancels_and_refunds(live):
    signer = as_user(live, "signer-2701000002")
    staff = as_user(live, "staff-2701")
    over = start(live, signer, lines=[{"productCode": "SINGLE", "quantity": 2}])["purchase"]
    deposit(live, staff, over["virtualAccount"]["accountNumber"], 2420 + 10000, "INQ-1")
    await live.run_job("bank-reconciliation")
    done = live.graphql(CHECK, {"id": over["id"]}, headers=staff).json()["data"]["checkPurchasePayment"]["purchase"]
    assert (done["status"], done["depositedAmount"], done["refundDue"]) == ("ISSUED", 12420, 10000 - 550)
    short = start(live, signer, lines=[{"productCode": "PACK30", "quantity": 1}])["purchase"]
    deposit(live, staff, short["virtualAccount"]["accountNumber"], 35000, "INQ-2")
    cancelled = live.graphql(CHECK, {"id": short["id"]}, headers=staff).json()["data"]["checkPurchasePayment"]["purchase"]
    assert (cancelled["status"], cancelled["cancelReason"], cancelled["refundDue"]) == ("CANCELLED", "入金額不足", 35000 - 770)
    seen = live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]
    assert (seen["balance"], seen["pending"]) == (2, 0)


async def test_deposits_to_unknown_accounts_are_refused_and_nothing_is_written(live, migrated):
    _target, db = migrated
    staff = as_user(live, "staff-2701")
    signer = as_user(live, "signer-2701000002")
    account = start(live, signer)["purchase"]["virtualAccount"]["accountNumber"]
    result = live.graphql(DEPOSIT, {"deposits": [
        {"accountNumber": account, "amount": 71390, "depositedOn": "2026-04-02"},
        {"accountNumber": "9999999", "amount": 1000, "depositedOn": "2026-04-02"},
        {"accountNumber": "12ab", "amount": 0, "depositedOn": "2026-04-02"},
    ]}, headers=staff).json()["data"]["recordBankDeposits"]
    assert sorted((e["code"], tuple(e["field"])) for e in result["errors"]) == [
        ("INVALID", ("input", "deposits", "2", "accountNumber")), ("INVALID", ("input", "deposits", "2", "amount")),
        ("NOT_FOUND", ("input", "deposits", "1", "accountNumber")),
    ]
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(BankDeposit)) == 0
    assert live.graphql(DEPOSIT, {"deposits": []}, headers=signer).json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_unpaid_orders_are_cancelled_after_thirty_days_and_buyers_may_cancel(live):
    signer = as_user(live, "signer-2701000002")
    first = start(live, signer)["purchase"]
    live.clock.advance(dt.timedelta(days=30, minutes=1))
    assert (await live.run_job("purchase-expiry")).message == "1 unpaid order(s) cancelled"
    signer = as_user(live, "signer-2701000002")
    seen = live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]
    assert seen["pending"] == 0 and seen["purchases"]["edges"][0]["node"]["status"] == "CANCELLED"
    second = start(live, signer, lines=[{"productCode": "SINGLE", "quantity": 1}])["purchase"]
    cancel = "mutation($id: ID!) { cancelCouponPurchase(input: {purchaseId: $id}) { purchase { status cancelReason } errors { code } } }"
    other = as_user(live, "signer2-2701000002")
    assert live.graphql(cancel, {"id": second["id"]}, headers=other).json()["data"]["cancelCouponPurchase"]["errors"] == [{"code": "NOT_FOUND"}]
    done = live.graphql(cancel, {"id": second["id"]}, headers=signer).json()["data"]["cancelCouponPurchase"]
    assert done == {"purchase": {"status": "CANCELLED", "cancelReason": "購入者による取消"}, "errors": []}
    assert live.graphql(cancel, {"id": second["id"]}, headers=signer).json()["data"]["cancelCouponPurchase"]["errors"] == [{"code": "INVALID_STATE"}]
    assert first["orderNumber"].endswith("00001") and second["orderNumber"].endswith("00002")


async def test_tradecert_bank_import_records_and_reconciles_a_zengin_file_once(live, migrated, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from resolvers.adapters.bank_files import write_zengin

    target, _db = migrated
    signer = as_user(live, "signer-2701000002")
    purchase = start(live, signer)["purchase"]
    account = purchase["virtualAccount"]["accountNumber"]
    statement = tmp_path / "nyukin.dat"
    statement.write_bytes(write_zengin({account: [(1, 71390, dt.date(2026, 4, 2), "ｶｺｶﾞﾜｼｾﾞﾝｼﾖｸﾋﾝ")]}, dt.date(2026, 4, 2)))
    env = {**os.environ, "TRADECERT_DATABASE_URL": target.url, "TRADECERT_DATABASE_SCHEMA": target.schema or "",
           "TRADECERT_RULES_DIR": str(live.rules_dir), "COLUMNS": "200"}
    tradecert = str(Path(sys.executable).parent / "tradecert")

    def run(path):
        return subprocess.run([tradecert, "bank", "import", str(path)], env=env, capture_output=True, text=True, timeout=120)

    first = run(statement)
    assert first.returncode == 0, first.stderr
    assert "zengin-01, 1 deposit(s), 71,390 yen" in first.stdout and "reconciled: issued 1" in first.stdout
    assert run(statement).stdout.strip().endswith("reconciled: nothing new")  # the same file again
    seen = live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]
    assert (seen["balance"], seen["pending"]) == (61, 0)

    unknown = tmp_path / "unknown.dat"
    unknown.write_bytes(write_zengin({"0000001": [(7, 1000, dt.date(2026, 4, 2), "ﾀﾞﾚ")]}, dt.date(2026, 4, 2)))
    refused = run(unknown)
    assert refused.returncode == 1 and "deposit 1 (account 0000001, 1000 yen): NOT_FOUND accountNumber" in refused.stderr
    broken = tmp_path / "broken.dat"
    broken.write_bytes(statement.read_bytes().replace(b"0000071390", b"00000713X0"))
    failed = run(broken)
    assert failed.returncode == 1 and "broken.dat: line 2: 金額 '00000713X0' is not a number" in failed.stderr


async def _orders(live, staff, n):
    """n orders of n new registrations (one order in progress per registration)."""
    accounts = []
    for i in range(n):
        created = live.graphql("""mutation($name: String!) { createTradeRegistration(input: {kind: APPLICANT, name: $name,
            membership: MEMBER, contactEmail: "c@reg.example", purchaseMethods: [BANK_TRANSFER], adminName: "管理 者",
            adminEmail: "a@reg.example", adminPassword: "admin-pass-123"}) { registration { number } errors { code } } }""",
            {"name": f"商事 {i}"}, headers=staff).json()["data"]["createTradeRegistration"]
        number = created["registration"]["number"]
        live.graphql("""mutation($n: String!) { addSigner(input: {registrationNumber: $n, name: "署名 者", email: "s@reg.example",
            password: "signer-pass-77", username: "buyer"}) { errors { code } } }""".replace('"buyer"', f'"buyer-{number}"'),
            {"n": number}, headers=staff)
        from tests.identity.test_identity_sessions import bearer, login

        buyer = bearer(login(live, f"buyer-{number}", "signer-pass-77")["token"])
        accounts.append(start(live, buyer, lines=[{"productCode": "SINGLE", "quantity": 2}])["purchase"]["virtualAccount"]["accountNumber"])
    return accounts


async def test_one_chunk_with_every_outcome_keeps_the_ledger_exact(live, migrated):
    from resolvers.coupons.ledger import audit_ledger

    _target, db = migrated
    staff = as_user(live, "staff-2701")
    a, b, c = await _orders(live, staff, 3)
    deposits = [
        {"accountNumber": a, "amount": 2420, "depositedOn": "2026-04-02", "depositId": "1"},   # exact
        {"accountNumber": a, "amount": 2420, "depositedOn": "2026-04-02", "depositId": "2"},   # the same again: owed back
        {"accountNumber": b, "amount": 3000, "depositedOn": "2026-04-02", "depositId": "3"},   # more
        {"accountNumber": c, "amount": 1000, "depositedOn": "2026-04-02", "depositId": "4"},   # less
    ]
    assert live.graphql(DEPOSIT, {"deposits": deposits}, headers=staff).json()["data"]["recordBankDeposits"]["errors"] == []
    outcome = await live.run_job("bank-reconciliation")
    assert outcome.message == "issued: 1, issued_over: 1, refunded: 1, short: 1"
    async with db.read() as session:
        assert await audit_ledger(session) == []
        refunds = sorted((await session.scalars(select(Refund.amount))).all())
    assert refunds == sorted([2420 - 550, 3000 - 2420 - 550 if 3000 - 2420 > 550 else 0, 1000 - 550])


async def test_two_reconcilers_at_once_apply_each_deposit_once(live, migrated):
    from resolvers.coupons.purchases import reconcile
    from tradecert.composition import build_services

    _target, db = migrated
    staff = as_user(live, "staff-2701")
    accounts = await _orders(live, staff, 4)
    live.graphql(DEPOSIT, {"deposits": [{"accountNumber": n, "amount": 2420, "depositedOn": "2026-04-02", "depositId": n}
                                        for n in accounts]}, headers=staff)
    services = build_services(settings=live.services.settings, db=db, rules=live.services.rules, clock=live.clock)
    first, second = await asyncio.gather(reconcile(services), reconcile(services))
    assert first.get("issued", 0) + second.get("issued", 0) == 4
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(BankDeposit).where(BankDeposit.outcome == "issued")) == 4


async def test_the_transfer_request_pdf_is_real_japanese_text_for_those_who_may_see_the_order(live, tmp_path):

    import httpx

    signer = as_user(live, "signer-2701000002")
    purchase = live.graphql(START.replace("orderNumber status", "orderNumber status transferRequestPdfUrl"),
                            {"lines": ORDER, "method": "BANK_TRANSFER"}, headers=signer).json()["data"]["startCouponPurchase"]["purchase"]
    url = purchase["transferRequestPdfUrl"]
    assert url.startswith(live.url) and url.endswith("/transfer-request.pdf")
    response = httpx.get(url, headers=signer)
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers=as_user(live, "signer-2701000003")).status_code == 404  # out of reach reads as not found
    assert httpx.get(url, headers=as_user(live, "staff-2701")).status_code == 200
    text = pdf_text(tmp_path, response.content, "request.pdf")
    for expected in ("振込依頼書", "日本商工会議所", "T5010005003975", purchase["orderNumber"], "71,390",
                     "内消費税額(10%): 6,490円", purchase["virtualAccount"]["accountNumber"]):
        assert expected in text, expected


async def test_a_membership_change_cancels_the_order_awaiting_payment(live):
    """A member's order priced at member prices, paid after the registration became a
    non-member, would issue member-priced coupons the change had just erased and refunded: the
    change cancels it (as 退会 does), and a deposit that still comes issues nothing."""
    signer = as_user(live, "signer-2701000002")
    staff = as_user(live, "staff-2701")
    purchase = start(live, signer)["purchase"]
    assert (purchase["membership"], purchase["amount"]) == ("MEMBER", 71390)
    changed = live.graphql(SET_MEMBERSHIP, {"n": "2701000002", "m": "NON_MEMBER"}, headers=staff).json()["data"]["setMembership"]
    assert changed["errors"] == []
    checked = live.graphql(CHECK, {"id": purchase["id"]}, headers=staff).json()["data"]["checkPurchasePayment"]
    assert checked["purchase"]["status"] == "CANCELLED"
    assert checked["purchase"]["cancelReason"] == "会員区分の変更による取消"
    deposit(live, staff, purchase["virtualAccount"]["accountNumber"], 71390, "INQ-AFTER-CHANGE")
    seen = live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]
    assert (seen["balance"], seen["pending"]) == (0, 0)
    assert live.graphql(CHECK, {"id": purchase["id"]}, headers=staff).json()["data"]["checkPurchasePayment"][
        "purchase"]["status"] == "CANCELLED"
