"""The coupon ledger: nothing is lost or counted twice.

Every change is one ledger entry plus the balance, in the caller's transaction:

* an entry carries a unique ``external_key`` (deposit id, card charge id, application id
  + step …) and is inserted first with ``ON CONFLICT DO NOTHING`` — a replayed event
  finds its key taken and changes nothing;
* the balance moves by ``UPDATE … SET balance = balance - n WHERE balance >= n
  RETURNING``, and ``CHECK (balance >= 0)`` backs it — no read-then-write, no
  ``with_for_update()`` (which SQLAlchemy silently drops on SQLite);
* coupons live in lots (what came in together, at which product, price, date and rules
  version), consumed oldest first; each entry records the lots it touched, so a return
  goes back to the same lots and a refund is computed per lot under its own rules.

These functions take an open session (a write unit of work); the applications and
purchases use cases call them inside their own transactions, after taking the
registration's lock (``persistence.locks``, level 1) — each function refuses to run
without it, so every change of one registration's coupons is serialised by one lock and
no two of them can wait on each other. Within a change the balance moves before the lots
(level 2 before 3), for a debit and a give-back alike.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, update

from persistence import locks
from persistence.db import dialect_insert
from persistence.models import CouponAccount, CouponEntry, CouponEntryLot, CouponLot, Refund
from resolvers.core.context import Services
from resolvers.core.errors import UserFailure
from rules import fees
from rules.policy import PolicySet


@dataclass(frozen=True)
class LedgerResult:
    applied: bool  # False: this external key was applied before; nothing changed now
    entry_id: int | None = None
    balance: int | None = None


async def allocate_ids(session, table, n: int) -> list[int]:
    """``n`` fresh primary keys for a bulk insert without RETURNING (which SQLite runs a
    row at a time). PostgreSQL: the table's sequence. SQLite: after max(id) — safe because
    a write unit holds the database's write lock (BEGIN IMMEDIATE) until it commits."""
    if n == 0:
        return []
    if session.bind.dialect.name == "sqlite":
        start = (await session.scalar(select(func.coalesce(func.max(table.id), 0)))) + 1
        return list(range(start, start + n))
    sequence = f"{table.__tablename__}_id_seq"
    return list((await session.scalars(
        select(func.nextval(sequence)).select_from(func.generate_series(1, n)))).all())


async def ensure_account(session, registration_id: int, now: dt.datetime) -> None:
    await session.execute(
        dialect_insert(session)(CouponAccount).values(registration_id=registration_id, balance=0, pending=0, updated_at=now)
        .on_conflict_do_nothing()
    )


async def _entry(session, registration_id: int, kind: str, coupons: int, key: str, now: dt.datetime,
                 actor_id: int | None, note: str | None, receipt_number: str | None,
                 purchase_id: int | None = None) -> int | None:
    return await session.scalar(
        dialect_insert(session)(CouponEntry)
        .values(registration_id=registration_id, kind=kind, coupons=coupons, at=now, confirmed=True,
                actor_id=actor_id, note=note, receipt_number=receipt_number, external_key=key, purchase_id=purchase_id)
        .on_conflict_do_nothing(index_elements=["external_key"])
        .returning(CouponEntry.id)
    )


async def _move_balance(session, registration_id: int, delta: int, now: dt.datetime) -> int | None:
    """Add ``delta`` (negative: take) unless the balance would go below zero; the new balance or None."""
    query = update(CouponAccount).where(CouponAccount.registration_id == registration_id)
    if delta < 0:
        query = query.where(CouponAccount.balance >= -delta)
    return await session.scalar(
        query.values(balance=CouponAccount.balance + delta, updated_at=now).returning(CouponAccount.balance)
    )


async def _finish(session, entry_id: int, balance: int) -> LedgerResult:
    await session.execute(update(CouponEntry).where(CouponEntry.id == entry_id).values(balance_after=balance))
    return LedgerResult(True, entry_id, balance)


async def credit(session, *, registration_id: int, coupons: int, kind: str, key: str, now: dt.datetime,
                 acquired_on: dt.date, rules_version: str, product_code: str | None = None,
                 membership: str | None = None, unit_price: int | None = None, actor_id: int | None = None,
                 note: str | None = None, purchase_id: int | None = None) -> LedgerResult:
    """Coupons come in as a new lot (a purchase line, a chamber addition)."""
    if coupons <= 0:
        raise ValueError("credit takes a positive number of coupons")
    locks.require_registration(session, registration_id, "a coupon credit")
    await ensure_account(session, registration_id, now)
    entry_id = await _entry(session, registration_id, kind, coupons, key, now, actor_id, note, None, purchase_id)
    if entry_id is None:
        return LedgerResult(False)
    lot = CouponLot(registration_id=registration_id, product_code=product_code, membership=membership,
                    unit_price=unit_price, coupons=coupons, coupons_left=coupons, acquired_on=acquired_on,
                    rules_version=rules_version, created_at=now)
    session.add(lot)
    await session.flush()
    session.add(CouponEntryLot(entry_id=entry_id, lot_id=lot.id, coupons=coupons))
    balance = await _move_balance(session, registration_id, coupons, now)
    return await _finish(session, entry_id, balance)


async def debit(session, *, registration_id: int, coupons: int, kind: str, key: str, now: dt.datetime,
                actor_id: int | None = None, note: str | None = None, receipt_number: str | None = None,
                field: list[str] | None = None) -> LedgerResult:
    """Take coupons, oldest lots first. INSUFFICIENT_COUPONS leaves everything as it was
    (the caller's transaction rolls back the entry this inserted)."""
    if coupons <= 0:
        raise ValueError("debit takes a positive number of coupons")
    locks.require_registration(session, registration_id, "a coupon debit")
    # no ensure_account: without an account row the guarded balance update finds nothing
    entry_id = await _entry(session, registration_id, kind, -coupons, key, now, actor_id, note, receipt_number)
    if entry_id is None:
        return LedgerResult(False)
    balance = await _move_balance(session, registration_id, -coupons, now)
    if balance is None:
        raise UserFailure("INSUFFICIENT_COUPONS", field or ["input"])
    remaining = coupons
    lots = (
        await session.execute(
            select(CouponLot.id, CouponLot.coupons_left)
            .where(CouponLot.registration_id == registration_id, CouponLot.coupons_left > 0)
            .order_by(CouponLot.acquired_on, CouponLot.id)
        )
    ).all()
    for lot_id, left in lots:
        take = min(left, remaining)
        taken = await session.scalar(
            update(CouponLot).where(CouponLot.id == lot_id, CouponLot.coupons_left >= take)
            .values(coupons_left=CouponLot.coupons_left - take).returning(CouponLot.id)
        )
        if taken is None:  # pragma: no cover - the balance row lock serialises debits
            raise RuntimeError(f"lot {lot_id} changed under a debit")
        session.add(CouponEntryLot(entry_id=entry_id, lot_id=lot_id, coupons=-take))
        remaining -= take
        if remaining == 0:
            break
    if remaining:
        raise RuntimeError(f"registration {registration_id}: lots hold fewer coupons than the balance")
    return await _finish(session, entry_id, balance)


async def give_back(session, *, registration_id: int, of_key: str, key: str, now: dt.datetime,
                    kind: str = "RETURN", actor_id: int | None = None, note: str | None = None,
                    receipt_number: str | None = None) -> LedgerResult:
    """Undo a debit: the same coupons go back to the same lots (once per ``key``)."""
    locks.require_registration(session, registration_id, "a coupon return")
    original = await session.scalar(select(CouponEntry).where(CouponEntry.external_key == of_key))
    if original is None or original.coupons >= 0 or original.registration_id != registration_id:
        raise ValueError(f"no debit {of_key!r} to give back")
    entry_id = await _entry(session, registration_id, kind, -original.coupons, key, now, actor_id, note, receipt_number)
    if entry_id is None:
        return LedgerResult(False)
    balance = await _move_balance(session, registration_id, -original.coupons, now)  # the balance first, as a debit does
    allocations = (await session.execute(
        select(CouponEntryLot.lot_id, CouponEntryLot.coupons).where(CouponEntryLot.entry_id == original.id)
        .order_by(CouponEntryLot.lot_id)
    )).all()
    for lot_id, taken in allocations:
        await session.execute(
            update(CouponLot).where(CouponLot.id == lot_id).values(coupons_left=CouponLot.coupons_left - taken)
        )
        session.add(CouponEntryLot(entry_id=entry_id, lot_id=lot_id, coupons=-taken))
    return await _finish(session, entry_id, balance)


async def erase_and_refund(session, policy: PolicySet, *, registration_id: int, key: str, now: dt.datetime,
                           reason: str, actor_id: int | None = None) -> tuple[Refund | None, LedgerResult]:
    """Membership change or withdrawal: every unused coupon is erased and
    refunded per lot — singles at their price, a pack at unused × its single price less
    its own version's deduction (never below zero); chamber additions refund nothing.
    The lots are read after the registration's lock, so a coupon a concurrent hold gave
    back is either in them or not yet returned — never overwritten."""
    locks.require_registration(session, registration_id, "a coupon refund")
    await ensure_account(session, registration_id, now)
    lots = (await session.scalars(
        select(CouponLot).where(CouponLot.registration_id == registration_id, CouponLot.coupons_left > 0)
        .order_by(CouponLot.acquired_on, CouponLot.id).execution_options(populate_existing=True)
    )).all()
    total_coupons = sum(lot.coupons_left for lot in lots)
    if total_coupons == 0:
        return None, LedgerResult(False)
    entry_id = await _entry(session, registration_id, "REFUND", -total_coupons, key, now, actor_id, reason, None)
    if entry_id is None:
        return None, LedgerResult(False)
    balance = await _move_balance(session, registration_id, -total_coupons, now)  # the balance first
    if balance is None:  # pragma: no cover - lots and balance disagree; the audit job would say so
        raise RuntimeError(f"registration {registration_id}: balance below its lots")
    amount = 0
    for lot in lots:
        if lot.product_code:
            amount += fees.lot_refund(policy, lot.acquired_on, lot.membership, lot.product_code, lot.coupons_left)
        session.add(CouponEntryLot(entry_id=entry_id, lot_id=lot.id, coupons=-lot.coupons_left))
        # take exactly what we read (guarded): never write a number over a concurrent change
        taken = await session.scalar(update(CouponLot).where(CouponLot.id == lot.id, CouponLot.coupons_left == lot.coupons_left)
                                     .values(coupons_left=0).returning(CouponLot.id))
        if taken is None:  # pragma: no cover - the registration lock serialises changes of its lots
            raise RuntimeError(f"lot {lot.id} changed under a refund")
    refund = Refund(registration_id=registration_id, amount=amount, reason=reason, created_at=now, external_key=key)
    session.add(refund)
    await session.flush()
    return refund, await _finish(session, entry_id, balance)


async def audit_ledger(session) -> list[str]:
    """Every registration: entries sum to the balance, and the lots hold the balance."""
    problems = []
    sums = dict((await session.execute(
        select(CouponEntry.registration_id, func.sum(CouponEntry.coupons)).group_by(CouponEntry.registration_id)
    )).all())
    lots = dict((await session.execute(
        select(CouponLot.registration_id, func.sum(CouponLot.coupons_left)).group_by(CouponLot.registration_id)
    )).all())
    for registration_id, balance in (await session.execute(select(CouponAccount.registration_id, CouponAccount.balance))).all():
        if (sums.get(registration_id) or 0) != balance:
            problems.append(f"registration {registration_id}: entries sum to {sums.get(registration_id) or 0}, balance {balance}")
        if (lots.get(registration_id) or 0) != balance:
            problems.append(f"registration {registration_id}: lots hold {lots.get(registration_id) or 0}, balance {balance}")
    return problems


async def audit_job(services: Services) -> str:
    """The ``ledger-audit`` job: entries sum to every balance and lots hold it; a
    disagreement fails the job."""
    async with services.db.read() as session:
        problems = await audit_ledger(session)
    if problems:
        raise RuntimeError("; ".join(problems[:20]))
    return "every balance agrees with its entries and lots"
