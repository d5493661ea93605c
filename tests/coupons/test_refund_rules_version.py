"""A refund of a coupon lot is computed under the rules version the lot was bought under
(kept in the rules history), whatever the files say by the time of the refund — on SQLite
and PostgreSQL. A lot whose version never went live here falls back to the files in force."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from persistence import locks
from persistence.models import Refund
from resolvers.core.clock import FixedClock
from resolvers.coupons import ledger
from resolvers.fees import rules_history
from rules import fees
from rules.policy import load_policy
from tests.conftest import tokyo
from tests.coupons.test_ledger import registration_id

BOUGHT_ON = dt.date(2026, 5, 1)
PACK30 = 35_090  # 30 × 1,210 less the 2026-04-01 deduction of 1,210
UNDER_B = 30 * 1_210 - 3_000


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{path.name}: {old!r} not found"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def add_deduction_version(rules: Path, effective_from: str) -> None:
    """A version B selling the pack at 33,300 yen: its deduction is 36,300 − 33,300 = 3,000."""
    products = rules / "coupon_products.yaml"
    products.write_text(products.read_text(encoding="utf-8").rstrip("\n") + f"""
  - effective_from: {effective_from}
    source: "a revision of the pack price"
    rows:
      - {{membership: MEMBER, code: SINGLE, name: クーポン 1枚, coupons: 1, price: 1210, face_value: 1210}}
      - {{membership: MEMBER, code: PACK30, name: クーポン 30枚綴り, coupons: 30, price: 33300, face_value: 36300}}
      - {{membership: NON_MEMBER, code: SINGLE, name: クーポン 1枚, coupons: 1, price: 3630, face_value: 3630}}
""", encoding="utf-8")
    path = rules / "pack_refund_deductions.yaml"
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n") + f"""
  - effective_from: {effective_from}
    source: "a revision of the pack deduction"
    rows:
      - product: PACK30
        deduction: 3000
""", encoding="utf-8")


def in_place(rules: Path) -> None:
    """What the history guard refuses — done behind its back (files edited, server not asked)."""
    edit(rules / "coupon_products.yaml", "price: 35090", "price: 33300")
    edit(rules / "pack_refund_deductions.yaml", "deduction: 1210", "deduction: 3000")


def same_day(rules: Path) -> None:
    """A new version in force from the very day the lot was bought (decided that afternoon)."""
    add_deduction_version(rules, BOUGHT_ON.isoformat())


def later(rules: Path) -> None:
    add_deduction_version(rules, "2026-06-01")


async def buy_pack(db, reg: int, version: str) -> None:
    async with db.write() as session:
        await locks.registration(session, reg)
        await ledger.credit(session, registration_id=reg, coupons=30, kind="PURCHASE", key="deposit:a", now=tokyo(2026, 5, 1, 10, 0),
                            acquired_on=BOUGHT_ON, rules_version=version, product_code="PACK30", membership="MEMBER",
                            unit_price=PACK30)


async def refund_all(db, reg: int, policy, now: dt.datetime) -> Refund:
    async with db.write() as session:
        await locks.registration(session, reg)
        refund, _ = await ledger.erase_and_refund(session, policy, registration_id=reg, key="withdrawal:a", now=now,
                                                  reason="退会")
    assert refund is not None
    async with db.read() as session:
        stored = await session.scalar(select(Refund).where(Refund.id == refund.id))
    assert stored is not None
    return stored


@pytest.mark.parametrize("supersede", [in_place, same_day, later], ids=["in-place", "same-day", "later"])
async def test_a_lot_bought_under_a_superseded_version_is_refunded_by_its_own_version(migrated, rules_copy, supersede):
    _target, db = migrated
    reg = await registration_id(db)
    clock = FixedClock(tokyo(2026, 5, 1, 9, 0))
    version_a = load_policy(rules_copy)
    await rules_history.record_version(db, version_a, clock)
    await buy_pack(db, reg, version_a.version)

    supersede(rules_copy)
    clock.advance(dt.timedelta(days=45))  # 2026-06-15: B is the version in force
    version_b = load_policy(rules_copy)
    assert version_b.version != version_a.version
    await rules_history.record_version(db, version_b, clock)
    # under B's files the lot's date would now give another deduction (but for "later")
    assert fees.lot_refund(version_b, BOUGHT_ON, "MEMBER", "PACK30", 30) in (UNDER_B, PACK30)

    refund = await refund_all(db, reg, version_b, clock.now())
    assert refund.amount == PACK30  # A's deduction of 1,210, not B's 3,000
    assert refund.rules_version == version_a.version


async def test_a_lot_whose_version_is_not_in_the_history_is_refunded_by_the_files_in_force_on_its_date(
        migrated, rules_copy):
    _target, db = migrated
    reg = await registration_id(db)
    await buy_pack(db, reg, "0123456789ab")  # recorded before the history existed
    later(rules_copy)
    current = load_policy(rules_copy)
    refund = await refund_all(db, reg, current, tokyo(2026, 6, 15, 9, 0))
    assert refund.amount == PACK30  # the 2026-04-01 row, in force on 2026-05-01
    assert refund.rules_version == current.version


async def test_a_refund_of_chamber_additions_only_names_no_version(migrated):
    _target, db = migrated
    reg = await registration_id(db)
    async with db.write() as session:
        await locks.registration(session, reg)
        await ledger.credit(session, registration_id=reg, coupons=3, kind="CHAMBER_OPERATION", key="gift",
                            now=tokyo(2026, 5, 1, 10, 0), acquired_on=BOUGHT_ON, rules_version="0123456789ab", note="お詫び")
    refund = await refund_all(db, reg, load_policy(), tokyo(2026, 6, 15, 9, 0))
    assert refund.amount == 0 and refund.rules_version is None
