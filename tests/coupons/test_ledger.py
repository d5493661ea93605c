"""The coupon ledger under concurrency, replays and refunds, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select

from persistence import locks
from persistence.models import CouponAccount, CouponEntry, CouponLot, TradeRegistration
from resolvers.core.errors import UserFailure
from resolvers.coupons import ledger
from rules.policy import load_policy
from tests.conftest import RULES_DIR, tokyo

NOW = tokyo(2026, 5, 1, 10, 0)


async def registration_id(db, number="2701000002") -> int:
    async with db.read() as session:
        return await session.scalar(select(TradeRegistration.id).where(TradeRegistration.number == number))


async def buy(db, reg, key, product, coupons, on, price, membership="MEMBER"):
    async with db.write() as session:
        await locks.registration(session, reg)
        return await ledger.credit(session, registration_id=reg, coupons=coupons, kind="PURCHASE", key=key, now=NOW,
                                   acquired_on=on, rules_version="test", product_code=product, membership=membership,
                                   unit_price=price)


async def balance(db, reg) -> int:
    async with db.read() as session:
        return await session.scalar(select(CouponAccount.balance).where(CouponAccount.registration_id == reg))


async def test_twenty_concurrent_consumers_against_five_coupons_take_exactly_five(migrated):
    _target, db = migrated
    reg = await registration_id(db)
    for i in range(5):
        await buy(db, reg, f"buy:{i}", "SINGLE", 1, dt.date(2026, 4, 1), 1210)

    async def consume(i: int) -> str:
        try:
            async with db.write() as session:
                await locks.registration(session, reg)
                await ledger.debit(session, registration_id=reg, coupons=1, kind="USE", key=f"use:{i}", now=NOW)
            return "ok"
        except UserFailure as failure:
            return failure.code

    outcomes = await asyncio.gather(*(consume(i) for i in range(20)))
    assert outcomes.count("ok") == 5 and outcomes.count("INSUFFICIENT_COUPONS") == 15
    assert await balance(db, reg) == 0
    async with db.read() as session:
        assert await ledger.audit_ledger(session) == []
        assert await session.scalar(select(func.count()).select_from(CouponEntry).where(CouponEntry.kind == "USE")) == 5


async def test_a_replayed_event_changes_nothing(migrated):
    _target, db = migrated
    reg = await registration_id(db)
    first = await buy(db, reg, "deposit:42", "PACK30", 30, dt.date(2026, 4, 2), 35090)
    again = await buy(db, reg, "deposit:42", "PACK30", 30, dt.date(2026, 4, 2), 35090)
    assert first.applied and first.balance == 30 and not again.applied
    async with db.write() as session:
        await locks.registration(session, reg)
        used = await ledger.debit(session, registration_id=reg, coupons=1, kind="USE", key="use:app:7:1", now=NOW)
        replay = await ledger.debit(session, registration_id=reg, coupons=1, kind="USE", key="use:app:7:1", now=NOW)
    assert used.balance == 29 and not replay.applied
    assert await balance(db, reg) == 29


async def test_coupons_are_taken_oldest_first_and_given_back_to_the_same_lot(migrated):
    _target, db = migrated
    reg = await registration_id(db)
    await buy(db, reg, "new", "SINGLE", 2, dt.date(2026, 4, 10), 1210)
    await buy(db, reg, "old", "SINGLE", 1, dt.date(2026, 3, 10), 1100)
    async with db.write() as session:
        await locks.registration(session, reg)
        await ledger.debit(session, registration_id=reg, coupons=2, kind="USE", key="use:1", now=NOW)
    async with db.read() as session:
        left = dict((await session.execute(select(CouponLot.acquired_on, CouponLot.coupons_left))).all())
    assert left == {dt.date(2026, 3, 10): 0, dt.date(2026, 4, 10): 1}
    async with db.write() as session:
        await locks.registration(session, reg)
        back = await ledger.give_back(session, registration_id=reg, of_key="use:1", key="return:1", now=NOW)
        twice = await ledger.give_back(session, registration_id=reg, of_key="use:1", key="return:1", now=NOW)
    assert back.balance == 3 and not twice.applied
    async with db.read() as session:
        left = dict((await session.execute(select(CouponLot.acquired_on, CouponLot.coupons_left))).all())
        assert await ledger.audit_ledger(session) == []
    assert left == {dt.date(2026, 3, 10): 1, dt.date(2026, 4, 10): 2}


async def test_a_membership_change_refunds_each_lot_under_its_own_rules(migrated):
    _target, db = migrated
    reg = await registration_id(db)
    policy = load_policy(RULES_DIR)
    await buy(db, reg, "old-pack", "PACK30", 30, dt.date(2026, 3, 15), 31900)
    await buy(db, reg, "new-pack-1", "PACK30", 30, dt.date(2026, 5, 1), 35090)
    await buy(db, reg, "new-pack-2", "PACK30", 30, dt.date(2026, 5, 1), 35090)
    for i in range(4):
        await buy(db, reg, f"single-{i}", "SINGLE", 1, dt.date(2026, 5, 1), 1210)
    async with db.write() as session:
        await locks.registration(session, reg)
        await ledger.credit(session, registration_id=reg, coupons=3, kind="CHAMBER_OPERATION", key="gift", now=NOW,
                            acquired_on=dt.date(2026, 5, 1), rules_version="test", note="お詫び")
    async with db.write() as session:
        await locks.registration(session, reg)
        refund, result = await ledger.erase_and_refund(session, policy, registration_id=reg, key="membership:1",
                                                       now=NOW, reason="会員→非会員")
    assert refund.amount == 106_920  # 31,900 + 2 × 35,090 + 4 × 1,210; the chamber's 3 refund nothing
    assert result.balance == 0
    async with db.write() as session:
        await locks.registration(session, reg)
        again, replay = await ledger.erase_and_refund(session, policy, registration_id=reg, key="membership:1",
                                                      now=NOW, reason="会員→非会員")
    assert again is None and not replay.applied
    async with db.read() as session:
        assert await ledger.audit_ledger(session) == []


async def test_the_database_refuses_a_negative_balance_even_past_the_code(migrated):
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    _target, db = migrated
    reg = await registration_id(db)
    await buy(db, reg, "one", "SINGLE", 1, dt.date(2026, 4, 1), 1210)
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            await session.execute(update(CouponAccount).where(CouponAccount.registration_id == reg).values(balance=-1))
    assert await balance(db, reg) == 1


async def test_a_debit_and_a_give_back_are_one_statement_each_on_postgresql(migrated):
    """Set-based: the balance, the entry, its lots and their allocation move together — one
    data-modifying statement on PostgreSQL, four on SQLite (no data-modifying CTEs there) —
    however many lots a debit spans."""
    from sqlalchemy import event

    target, db = migrated
    reg = await registration_id(db)
    for i in range(3):
        await buy(db, reg, f"lot:{i}", "SINGLE", 1, dt.date(2026, 4, 1 + i), 1210)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    async with db.write() as session:
        await locks.registration(session, reg)
        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        try:
            used = await ledger.debit(session, registration_id=reg, coupons=2, kind="USE", key="use:set", now=NOW,
                                      receipt_number="000000042")
            debit_statements = len(statements)
            statements.clear()
            back = await ledger.give_back(session, registration_id=reg, of_key="use:set", key="return:set", now=NOW)
            give_back_statements = len(statements) - 1  # reading the original debit comes first
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert (used.balance, used.receipt_number, back.balance) == (1, "000000042", 3)
    expected = 1 if target.kind == "postgresql" else 4
    assert (debit_statements, give_back_statements) == (expected, expected)
    async with db.read() as session:
        assert await ledger.audit_ledger(session) == []
        left = sorted((await session.execute(select(CouponLot.acquired_on, CouponLot.coupons_left))).all())
    assert [n for _on, n in left] == [1, 1, 1]


async def test_a_short_balance_takes_nothing_and_a_replay_after_it_still_applies_once(migrated):
    _target, db = migrated
    reg = await registration_id(db)
    await buy(db, reg, "one", "SINGLE", 1, dt.date(2026, 4, 1), 1210)
    with pytest.raises(UserFailure) as short:
        async with db.write() as session:
            await locks.registration(session, reg)
            await ledger.debit(session, registration_id=reg, coupons=2, kind="USE", key="use:two", now=NOW)
    assert short.value.code == "INSUFFICIENT_COUPONS"
    async with db.write() as session:
        await locks.registration(session, reg)
        first = await ledger.debit(session, registration_id=reg, coupons=1, kind="USE", key="use:one", now=NOW)
        again = await ledger.debit(session, registration_id=reg, coupons=1, kind="USE", key="use:one", now=NOW)
    assert first.applied and first.balance == 0 and not again.applied
    async with db.read() as session:
        assert await ledger.audit_ledger(session) == []
        assert await session.scalar(select(func.count()).select_from(CouponEntry)) == 2  # the purchase and one use
