"""Bank deposits under hostile or careless input (issue 10: items 4, 9, 12, 13), on SQLite and PostgreSQL.

A deposit is money received: every line of a statement is recorded, a replay is
recognised only by the bank's own id (or by the same file and line), a foreign or unknown
account is NOT_FOUND either way, and bad input is one clear error with nothing written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from persistence.models import Account, BankDeposit, Chamber, CouponPurchase, Refund
from resolvers.adapters.bank_files import write_zengin
from resolvers.identity.passwords import hash_password
from tests.coupons.test_purchases import CHECK, DEPOSIT, start
from tests.identity.test_identity_sessions import bearer, login
from tests.identity.test_subaccounts import as_user
from tradecert.demo import DEMO_PASSWORD

TRADECERT = str(Path(sys.executable).parent / "tradecert")
TWO_SINGLES = [{"productCode": "SINGLE", "quantity": 2}]  # 2,420 yen
RECORD = """mutation($deposits: [BankDepositInput!]!) { recordBankDeposits(input: {deposits: $deposits}) {
  matched { orderNumber status } alreadyRecorded errors { code field } } }"""


async def count(db, model=BankDeposit) -> int:
    async with db.read() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def staff_of_another_chamber(live, db) -> dict:
    """staff-1301 of 東京商工会議所, a chamber with no registrations of its own here."""
    now = live.clock.now()
    async with db.write() as session:
        chamber = Chamber(code="1301", name="東京商工会議所")
        session.add(chamber)
        await session.flush()
        session.add(Account(kind="CHAMBER_STAFF", username="staff-1301", chamber_id=chamber.id, name="東京 次郎",
                            email="staff@tokyo.cci.example", password_hash=await hash_password(DEMO_PASSWORD),
                            status="ACTIVE", created_at=now, updated_at=now))
    return bearer(login(live, "staff-1301", chamber="1301")["token"])


def cli(live, target, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRADECERT_DATABASE_URL": target.url, "TRADECERT_DATABASE_SCHEMA": target.schema or "",
           "TRADECERT_RULES_DIR": str(live.rules_dir), "COLUMNS": "200"}
    return subprocess.run([TRADECERT, *args], env=env, capture_output=True, text=True, timeout=120)


# --------------------------------------------------------------------------- item 4: another chamber's account


async def test_staff_of_another_chamber_get_not_found_for_this_chambers_account_and_nothing_is_recorded(live, migrated):
    _target, db = migrated
    tokyo_staff = await staff_of_another_chamber(live, db)
    order = start(live, as_user(live, "signer-2701000002"), lines=TWO_SINGLES)["purchase"]
    account = order["virtualAccount"]["accountNumber"]

    def record(number):
        return live.graphql(DEPOSIT, {"deposits": [{"accountNumber": number, "amount": 100, "depositedOn": "2026-04-02",
                                                    "depositId": f"X-{number}"}]}, headers=tokyo_staff).json()

    foreign, unknown = record(account), record("9999999")
    assert foreign == unknown == {"data": {"recordBankDeposits": {
        "matched": [], "errors": [{"code": "NOT_FOUND", "field": ["input", "deposits", "0", "accountNumber"]}]}}}
    assert order["orderNumber"] not in json.dumps(foreign)
    assert await count(db) == 0
    assert (await live.run_job("bank-reconciliation")).message == "no new deposits"
    async with db.read() as session:
        assert await session.scalar(select(CouponPurchase.status)) == "AWAITING_PAYMENT"
    # the order's own chamber still may
    own = live.graphql(DEPOSIT, {"deposits": [{"accountNumber": account, "amount": 2420, "depositedOn": "2026-04-02"}]},
                       headers=as_user(live, "staff-2701")).json()["data"]["recordBankDeposits"]
    assert own == {"matched": [{"orderNumber": order["orderNumber"], "status": "AWAITING_PAYMENT"}], "errors": []}


# --------------------------------------------------------------------------- item 9: every line is money received


async def test_two_identical_csv_lines_without_a_deposit_id_are_two_deposits_and_the_second_is_owed_back(live, migrated, tmp_path):
    target, db = migrated
    account = start(live, as_user(live, "signer-2701000002"), lines=TWO_SINGLES)["purchase"]["virtualAccount"]["accountNumber"]
    statement = tmp_path / "nyukin.csv"
    statement.write_text("account_number,amount,deposited_on,payer_name,deposit_id\n"
                         f"{account},2420,2026-04-02,ｶｺｶﾞﾜ,\n{account},2420,2026-04-02,ｶｺｶﾞﾜ,\n", encoding="utf-8")
    first = cli(live, target, "bank", "import", str(statement))
    assert first.returncode == 0, first.stderr
    assert "nyukin.csv: csv, 2 deposit(s), 4,840 yen" in first.stdout
    assert "reconciled: issued 1, refunded 1" in first.stdout
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(BankDeposit)) == 2
        assert (await session.scalars(select(Refund.amount))).all() == [2420 - 550]
    again = cli(live, target, "bank", "import", str(statement))
    assert again.returncode == 0, again.stderr
    assert "nyukin.csv: csv, 0 deposit(s), 0 yen; 2 already recorded (lines 2, 3)" in again.stdout
    assert again.stdout.strip().endswith("reconciled: nothing new")
    assert await count(db) == 2 and await count(db, Refund) == 1


async def test_a_zengin_file_repeating_an_inquiry_number_records_both_and_names_the_line(live, migrated, tmp_path):
    target, db = migrated
    account = start(live, as_user(live, "signer-2701000002"), lines=TWO_SINGLES)["purchase"]["virtualAccount"]["accountNumber"]
    statement = tmp_path / "nyukin.dat"
    day = dt.date(2026, 4, 2)
    statement.write_bytes(write_zengin({account: [(1, 2420, day, "ｶｺｶﾞﾜ"), (1, 2420, day, "ｶｺｶﾞﾜ")]}, day))
    first = cli(live, target, "bank", "import", str(statement))
    assert first.returncode == 0, first.stderr
    assert "nyukin.dat: zengin-01, 2 deposit(s), 4,840 yen" in first.stdout
    assert "nyukin.dat: line 3: deposit id 0310-502-" in first.stderr and "repeats line 2" in first.stderr
    assert "reconciled: issued 1, refunded 1" in first.stdout
    assert await count(db) == 2 and await count(db, Refund) == 1
    again = cli(live, target, "bank", "import", str(statement))
    assert "2 already recorded (lines 2, 3)" in again.stdout and await count(db) == 2


async def test_deposits_without_an_id_are_each_recorded_and_a_bank_id_is_a_replay_only_with_the_same_content(live, migrated):
    _target, db = migrated
    staff = as_user(live, "staff-2701")
    account = start(live, as_user(live, "signer-2701000002"), lines=TWO_SINGLES)["purchase"]["virtualAccount"]["accountNumber"]
    line = {"accountNumber": account, "amount": 2420, "depositedOn": "2026-04-02", "payerName": "ｶｺｶﾞﾜ"}

    def record(*deposits):
        return live.graphql(RECORD, {"deposits": list(deposits)}, headers=staff).json()["data"]["recordBankDeposits"]

    assert record(line, line)["errors"] == []
    assert await count(db) == 2
    assert record({**line, "depositId": "INQ-1"})["alreadyRecorded"] == []
    replay = record({**line, "amount": 1, "depositId": "INQ-2"}, {**line, "depositId": "INQ-1"})
    assert replay["errors"] == [] and replay["alreadyRecorded"] == [1]
    assert await count(db) == 4
    clash = record({**line, "amount": 999, "depositId": "INQ-1"})  # the same bank id, another deposit: refused
    assert clash["errors"] == [{"code": "INVALID", "field": ["input", "deposits", "0", "depositId"]}]
    twice = record({**line, "depositId": "INQ-3"}, {**line, "depositId": "INQ-3"})
    assert twice["errors"] == [{"code": "INVALID", "field": ["input", "deposits", "1", "depositId"]}]
    assert await count(db) == 4
    assert (await live.run_job("bank-reconciliation")).message == "issued: 1, refunded: 3"
    async with db.read() as session:
        refunds = sorted((await session.scalars(select(Refund.amount))).all())
    assert refunds == [0, 2420 - 550, 2420 - 550]  # 1 yen less costs is nothing, never below zero


# --------------------------------------------------------------------------- item 12: overlong ids and NUL


async def test_an_overlong_deposit_id_or_a_control_character_is_a_user_error_and_nothing_is_written(live, migrated):
    _target, db = migrated
    staff = as_user(live, "staff-2701")
    account = start(live, as_user(live, "signer-2701000002"), lines=TWO_SINGLES)["purchase"]["virtualAccount"]["accountNumber"]
    good = {"accountNumber": account, "amount": 2420, "depositedOn": "2026-04-02"}
    body = live.graphql(RECORD, {"deposits": [good, {**good, "depositId": "A" * 65}, {**good, "payerName": "ｶ" * 121},
                                              {**good, "depositId": "INQ\t1"}]}, headers=staff).json()
    assert body["data"]["recordBankDeposits"]["errors"] == [
        {"code": "TOO_LONG", "field": ["input", "deposits", "1", "depositId"]},
        {"code": "TOO_LONG", "field": ["input", "deposits", "2", "payerName"]},
        {"code": "INVALID", "field": ["input", "deposits", "3", "depositId"]},
    ]
    # NUL, or a lone surrogate (valid JSON, not encodable text), in any deposit field: the edge
    # (tradecert/request_guards.py) or the use case refuses it — never a 500, nothing written
    for name, value in [("depositId", "INQ\x00-1"), ("payerName", "ｶｺ\x00ｶﾞﾜ"), ("accountNumber", "123\x00567"),
                        ("payerName", "\ud800")]:
        raw = json.dumps({"query": RECORD, "variables": {"deposits": [{**good, name: value}]}})
        with live.client() as client:
            answer = client.post("/graphql", content=raw.encode(), headers={**staff, "Content-Type": "application/json"})
        assert "INTERNAL_SERVER_ERROR" not in answer.text, answer.text
        if answer.status_code == 200:
            assert answer.json()["data"]["recordBankDeposits"]["errors"] == [
                {"code": "INVALID", "field": ["input", "deposits", "0", name]}]
        else:
            assert answer.status_code == 400 and answer.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await count(db) == 0


async def test_the_use_case_refuses_control_characters_itself(live, migrated):
    """Behind the edge (the CLI, a job, a later API), recording checks the text itself."""
    from resolvers.adapters.bank import DepositInput
    from resolvers.core.errors import UserFailures
    from resolvers.coupons.purchases import DepositSource, import_deposits
    from tradecert.composition import build_services

    _target, db = migrated
    account = start(live, as_user(live, "signer-2701000002"), lines=TWO_SINGLES)["purchase"]["virtualAccount"]["accountNumber"]
    on = dt.date(2026, 4, 2)
    services = build_services(settings=live.services.settings, db=db, rules=live.services.rules, clock=live.clock)
    with pytest.raises(UserFailures) as refused:
        await import_deposits(services, [DepositInput(account, 2420, on, "ｶｺ\x00", "A\x00"),
                                              DepositInput(account, 2420, on, "\ud800"),
                                              DepositInput(account, 3_000_000_000, on, None, "B" * 65)], DepositSource("test"))
    assert [(f.code, f.field[2:]) for f in refused.value.failures] == [
        ("INVALID", ["0", "payerName"]), ("INVALID", ["0", "depositId"]), ("INVALID", ["1", "payerName"]),
        ("INVALID", ["2", "amount"]), ("TOO_LONG", ["2", "depositId"])]
    assert await count(db) == 0


# --------------------------------------------------------------------------- item 13: `tradecert bank import` never tracebacks


def _csv(account: str, payer: bytes = b"\xb6\xba", deposit_id: bytes = b"") -> bytes:
    return (b"account_number,amount,deposited_on,payer_name,deposit_id\n" + account.encode()
            + b",2420,2026-04-02," + payer + b"," + deposit_id + b"\n")


def _cancellation_only(account: str) -> bytes:
    day = dt.date(2026, 4, 2)
    records = [bytearray(r) for r in write_zengin({account: [(1, 2420, day, "ｶｺｶﾞﾜ")]}, day).split(b"\r\n") if r]
    records[1][127:128] = b"1"  # 取消区分: the bank cancels an earlier notice
    records[2][1:19] = b"000000" + b"0" * 12  # 件数 0, 金額 0
    records[2][19:37] = b"000001" + b"000000002420"  # 取消件数 1, 取消金額
    return b"\r\n".join(bytes(r) for r in records) + b"\r\n"


def _nul_payer(account: str) -> bytes:
    day = dt.date(2026, 4, 2)
    records = [bytearray(r) for r in write_zengin({account: [(1, 2420, day, "ｶｺｶﾞﾜ")]}, day).split(b"\r\n") if r]
    records[1][50:51] = b"\x00"
    return b"\r\n".join(bytes(r) for r in records) + b"\r\n"


HOSTILE = {
    "encoding": (lambda account: _csv(account, payer=b"\x81\x20\xff"), "line 2: "),
    "cancellation": (_cancellation_only, "line 2: "),
    "long-id": (lambda account: _csv(account, deposit_id=b"A" * 200), "line 2: "),
    "nul": (_nul_payer, "line 2: "),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_bank_import_refuses_a_hostile_file_in_one_line_naming_the_file_and_line(live, migrated, tmp_path, case):
    target, db = migrated
    account = start(live, as_user(live, "signer-2701000002"), lines=TWO_SINGLES)["purchase"]["virtualAccount"]["accountNumber"]
    build, where = HOSTILE[case]
    statement = tmp_path / f"{case}.dat"
    statement.write_bytes(build(account))
    result = cli(live, target, "bank", "import", str(statement))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith(f"{case}.dat: {where}") for line in lines), result.stderr
    assert len(lines) <= 2, result.stderr  # the line, and "nothing was recorded"
    assert await count(db) == 0
    check = live.graphql(CHECK, {"id": (await _order_id(live))}, headers=as_user(live, "staff-2701")).json()
    assert check["data"]["checkPurchasePayment"]["purchase"]["status"] == "AWAITING_PAYMENT"


async def _order_id(live) -> str:
    signer = as_user(live, "signer-2701000002")
    body = live.graphql("{ couponAccount { purchases { edges { node { id } } } } }", headers=signer).json()
    return body["data"]["couponAccount"]["purchases"]["edges"][0]["node"]["id"]


# --------------------------------------------------------------------------- reconciliation: one unit, the one lock order


async def deposit_problems(db) -> list[str]:
    """Every yen received is issued or owed back: each processed deposit either paid its
    order (ISSUED with this amount) or has its refund; an over-payment has both."""
    problems = []
    async with db.read() as session:
        owed = set((await session.scalars(select(Refund.external_key))).all())
        orders = {p.id: p for p in (await session.scalars(select(CouponPurchase))).all()}
        issued_by: dict[int, int] = {}
        for d in (await session.scalars(select(BankDeposit).order_by(BankDeposit.id))).all():
            refunded = f"deposit:{d.id}" in owed
            if d.processed_at is None:
                continue
            if d.outcome in ("issued", "issued_over"):
                order = orders[d.purchase_id]
                issued_by[order.id] = issued_by.get(order.id, 0) + 1
                if order.status != "ISSUED" or order.deposited_amount != d.amount:
                    problems.append(f"deposit {d.id} issued order {order.id} ({order.status}, {order.deposited_amount})")
                if d.outcome == "issued_over" and not refunded:
                    problems.append(f"deposit {d.id}: over-payment without a refund")
            elif d.outcome in ("short", "refunded"):
                if not refunded:
                    problems.append(f"deposit {d.id} ({d.outcome}) without a refund")
            else:
                problems.append(f"deposit {d.id}: processed with outcome {d.outcome!r}")
        problems += [f"order {o} issued by {n} deposits" for o, n in issued_by.items() if n > 1]
    return problems


async def test_a_deposit_recorded_in_time_is_applied_before_its_order_can_expire(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    order = start(live, signer, lines=TWO_SINGLES)["purchase"]
    live.graphql(DEPOSIT, {"deposits": [{"accountNumber": order["virtualAccount"]["accountNumber"], "amount": 2420,
                                         "depositedOn": "2026-05-01", "depositId": "INQ-LAST-DAY"}]},
                 headers=as_user(live, "staff-2701"))
    live.clock.advance(dt.timedelta(days=30, minutes=1))  # the expiry job runs before the nightly reconciliation
    assert (await live.run_job("purchase-expiry")).message == "0 unpaid order(s) cancelled"
    async with db.read() as session:
        assert await session.scalar(select(CouponPurchase.status)) == "ISSUED"
    assert await deposit_problems(db) == [] and await count(db, Refund) == 0


async def test_reconcilers_expiry_and_checks_racing_keep_every_yen(live, migrated):
    """Two reconcilers, two expiry jobs and staff's checks at once over many registrations:
    no deadlock (each takes registrations in id order, then accounts, orders, deposits),
    each deposit applied once, and every yen issued or owed back."""
    import asyncio

    from resolvers.coupons.purchases import expire_unpaid, reconcile
    from tests.coupons.test_purchases import _orders
    from tests.invariants import money_problems
    from tradecert.composition import build_services

    _target, db = migrated
    staff = as_user(live, "staff-2701")
    accounts = await _orders(live, staff, 6)
    amounts = [2420, 2420, 5000, 1000, 2420, 2420]
    deposits = [{"accountNumber": n, "amount": a, "depositedOn": "2026-04-02", "depositId": f"R-{n}"}
                for n, a in zip(accounts, amounts)]
    deposits += [{"accountNumber": accounts[0], "amount": 2420, "depositedOn": "2026-04-02"},  # paid twice
                 {"accountNumber": accounts[4], "amount": 2420, "depositedOn": "2026-05-09"}]  # after the account's validity
    assert live.graphql(DEPOSIT, {"deposits": deposits}, headers=staff).json()["data"]["recordBankDeposits"]["errors"] == []
    live.clock.advance(dt.timedelta(days=30, minutes=1))
    staff = as_user(live, "staff-2701")  # a new session: the first one expired with the month
    services = build_services(settings=live.services.settings, db=db, rules=live.services.rules, clock=live.clock)
    async with db.read() as session:
        order_ids = (await session.scalars(select(CouponPurchase.id).order_by(CouponPurchase.id))).all()
    ids = [to_id(i) for i in order_ids]

    def checks():
        return [live.graphql(CHECK, {"id": i}, headers=staff).json() for i in reversed(ids)]

    results = await asyncio.gather(reconcile(services), expire_unpaid(services), reconcile(services),
                                   expire_unpaid(services), asyncio.to_thread(checks))
    assert all("errors" not in body for body in results[-1]), results[-1]
    async with db.read() as session:
        outcomes = sorted((await session.scalars(select(BankDeposit.outcome))).all())
        statuses = sorted((await session.scalars(select(CouponPurchase.status))).all())
    assert outcomes == ["issued"] * 4 + ["issued_over", "refunded", "refunded", "short"], outcomes
    assert statuses == ["CANCELLED", "ISSUED", "ISSUED", "ISSUED", "ISSUED", "ISSUED"]
    assert await deposit_problems(db) == [] and await money_problems(db) == []


def to_id(pk: int) -> str:
    from schema.identity import to_global_id

    return to_global_id("CouponPurchase", pk)


# --------------------------------------------------------------------------- a statement of any size (issue 11, P5)

MANY = 33_000  # more lines (and accounts) than PostgreSQL takes parameters in one statement (32,767)


async def _many_orders(db, now, n: int) -> list[str]:
    """n registrations, each with one order of one SINGLE (1,210 yen) awaiting payment."""
    from sqlalchemy import insert

    from persistence.models import CouponAccount, CouponPurchaseLine, TradeRegistration, VirtualAccount

    async with db.write() as session:
        chamber = await session.scalar(select(Chamber.id))
        buyer = await session.scalar(select(Account.id).where(Account.username == "signer-2701000002"))
        await session.execute(insert(TradeRegistration), [
            {"number": f"28{i:08d}", "chamber_id": chamber, "kind": "APPLICANT", "name": f"many {i}", "valid_from": now.date(),
             "allows_bank_transfer": True, "allows_card": False, "created_at": now} for i in range(n)])
        ids = (await session.scalars(select(TradeRegistration.id).where(TradeRegistration.name.like("many %"))
                                     .order_by(TradeRegistration.id))).all()
        await session.execute(insert(CouponPurchase), [
            {"order_number": f"M{i:012d}", "registration_id": rid, "buyer_id": buyer, "method": "BANK_TRANSFER",
             "membership": "MEMBER", "status": "AWAITING_PAYMENT", "coupons": 1, "amount": 1210, "ordered_at": now,
             "ordered_on": now.date(), "rules_version": "test", "expires_at": now + dt.timedelta(days=30)}
            for i, rid in enumerate(ids)])
        await session.execute(insert(CouponAccount), [{"registration_id": rid, "balance": 0, "pending": 1, "updated_at": now}
                                                      for rid in ids])
        pids = (await session.scalars(select(CouponPurchase.id).where(CouponPurchase.order_number.like("M%"))
                                      .order_by(CouponPurchase.id))).all()
        await session.execute(insert(CouponPurchaseLine), [
            {"purchase_id": pid, "product_code": "SINGLE", "quantity": 1, "unit_price": 1210, "coupons": 1, "amount": 1210}
            for pid in pids])
        numbers = [f"{8_000_000 + i:07d}" for i in range(n)]
        await session.execute(insert(VirtualAccount), [
            {"purchase_id": pid, "bank_code": "0310", "bank_name": "test", "branch_code": "502", "branch_name": "test",
             "account_number": number, "holder": "test", "valid_until": now.date() + dt.timedelta(days=30)}
            for pid, number in zip(pids, numbers)])
    return numbers


async def test_a_statement_of_more_lines_than_a_statement_takes_parameters_is_recorded_and_reconciled(live, migrated):
    """Recording checks the accounts and keys of a whole statement set-based: 33,000 lines
    paying 33,000 orders (PostgreSQL refused the old per-account IN list of them), plus one
    second payment owed back; all recorded once, reconciled once, every yen accounted for."""
    from resolvers.adapters.bank import DepositInput
    from resolvers.coupons.purchases import DepositSource, import_deposits, reconcile
    from tests.invariants import money_problems
    from tradecert.composition import build_services

    _target, db = migrated
    numbers = await _many_orders(db, live.clock.now(), MANY)
    on = live.clock.today()
    lines = [DepositInput(number, 1210, on, "ﾀｲﾘﾖｳ", f"MANY-{number}", line=i + 2) for i, number in enumerate(numbers)]
    lines.append(DepositInput(numbers[0], 1210, on, "ﾀｲﾘﾖｳ", None, line=MANY + 2))  # paid twice: owed back
    services = build_services(settings=live.services.settings, db=db, rules=live.services.rules, clock=live.clock)
    source = DepositSource.file("many.csv", b"many")
    stored = await import_deposits(services, lines, source)
    assert len(stored.recorded) == MANY + 1 and stored.already == [] and stored.repeats == []
    again = await import_deposits(services, lines, source)  # the same statement again: every line recorded before
    assert again.recorded == [] and [i for i, _ in again.already] == list(range(MANY + 1))
    assert await reconcile(services) == {"issued": MANY, "refunded": 1}
    assert await reconcile(services) == {}
    assert await count(db) == MANY + 1 and await count(db, Refund) == 1
    assert await deposit_problems(db) == [] and await money_problems(db) == []
