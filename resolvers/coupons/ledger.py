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
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    Table,
    bindparam,
    case,
    exists,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from persistence import locks
from persistence.db import dialect_insert
from persistence.models import CouponAccount, CouponEntry, CouponEntryLot, CouponLot, Refund, UTCDateTime
from resolvers.core.context import Services
from resolvers.core.errors import ErrorCode, UserFailure
from resolvers.coupons.names import CouponEntryKind
from resolvers.fees import rules_history
from rules import fees
from rules.policy import PolicySet

ACCOUNTS, LOTS = cast(Table, CouponAccount.__table__), cast(Table, CouponLot.__table__)
ENTRIES, ENTRY_LOTS = cast(Table, CouponEntry.__table__), cast(Table, CouponEntryLot.__table__)


@dataclass(frozen=True)
class LedgerResult:
    applied: bool  # False: this external key was applied before; nothing changed now
    entry_id: int | None = None
    balance: int | None = None
    receipt_number: str | None = None  # what the entry recorded (a debit drawing a new number: that number)


async def allocate_ids(session: AsyncSession, table: Any, n: int) -> list[int]:
    """``n`` fresh primary keys for a bulk insert without RETURNING (which SQLite runs a
    row at a time). PostgreSQL: the table's sequence. SQLite: after max(id) — safe because
    a write unit holds the database's write lock (BEGIN IMMEDIATE) until it commits."""
    if n == 0:
        return []
    if session.get_bind().dialect.name == "sqlite":
        start = int(await session.scalar(select(func.coalesce(func.max(table.id), 0))) or 0) + 1
        return list(range(start, start + n))
    sequence = f"{table.__tablename__}_id_seq"
    return list((await session.scalars(
        select(func.nextval(sequence)).select_from(func.generate_series(1, n)))).all())


async def ensure_account(session: AsyncSession, registration_id: int, now: dt.datetime) -> None:
    await session.execute(
        dialect_insert(session)(CouponAccount).values(registration_id=registration_id, balance=0, pending=0, updated_at=now)
        .on_conflict_do_nothing()
    )


async def _entry(session: AsyncSession, registration_id: int, kind: str, coupons: int, key: str, now: dt.datetime,
                 actor_id: int | None, note: str | None, receipt_number: str | None,
                 purchase_id: int | None = None) -> int | None:
    entry_id: int | None = await session.scalar(
        dialect_insert(session)(CouponEntry)
        .values(registration_id=registration_id, kind=kind, coupons=coupons, at=now, confirmed=True,
                actor_id=actor_id, note=note, receipt_number=receipt_number, external_key=key, purchase_id=purchase_id)
        .on_conflict_do_nothing(index_elements=["external_key"])
        .returning(CouponEntry.id)
    )
    return entry_id


async def _move_balance(session: AsyncSession, registration_id: int, delta: int, now: dt.datetime) -> int | None:
    """Add ``delta`` (negative: take) unless the balance would go below zero; the new balance or None."""
    query = update(CouponAccount).where(CouponAccount.registration_id == registration_id)
    if delta < 0:
        query = query.where(CouponAccount.balance >= -delta)
    balance: int | None = await session.scalar(
        query.values(balance=CouponAccount.balance + delta, updated_at=now).returning(CouponAccount.balance))
    return balance


async def _finish(session: AsyncSession, entry_id: int, balance: int) -> LedgerResult:
    await session.execute(update(CouponEntry).where(CouponEntry.id == entry_id).values(balance_after=balance))
    return LedgerResult(True, entry_id, balance)


async def credit(session: AsyncSession, *, registration_id: int, coupons: int, kind: str, key: str, now: dt.datetime,
                 acquired_on: dt.date, rules_version: str, product_code: str | None = None,
                 membership: str | None = None, unit_price: int | None = None, actor_id: int | None = None,
                 note: str | None = None, purchase_id: int | None = None) -> LedgerResult:
    """Coupons come in as a new lot (a purchase line, a chamber addition)."""
    if coupons <= 0:
        raise ValueError("credit takes a positive number of coupons")
    locks.require_registration(session, registration_id, "a coupon credit")
    locks.note(session, "coupon_lot", [registration_id])  # level 3: the lots it writes
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
    assert balance is not None  # the account exists (ensure_account) and a credit only adds
    return await _finish(session, entry_id, balance)


# --------------------------------------------------------------------------- debit and give-back, set-based
#
# PostgreSQL: one statement each — a data-modifying CTE that moves the balance (guarded:
# enough coupons, key not used yet), inserts the entry with its balance_after, records the
# lots it takes (oldest first, by a running sum) or gives back (the original's lots), moves
# those lots, and returns what it did. SQLite has RETURNING but no data-modifying CTEs: the
# same steps as four statements (balance, entry, entry-lots, lots) under the write lock its
# BEGIN IMMEDIATE already holds. Both: a short balance moves nothing and inserts no entry
# (→ INSUFFICIENT_COUPONS); the unique external key backs the replay check; the CHECKs on
# balance and lots back the arithmetic. The statements are built once, with bind
# parameters, so a call pays neither SQL compilation nor SQLAlchemy's cache-key walk.

ENTRY_COLUMNS = ["registration_id", "kind", "coupons", "balance_after", "at", "confirmed", "actor_id", "note",
                 "receipt_number", "external_key"]
_REGISTRATION, _KEY = bindparam("p_registration_id", type_=Integer()), bindparam("p_key", type_=String())
_NOW = bindparam("p_now", type_=UTCDateTime())
_COUPONS = bindparam("p_coupons", type_=Integer())  # the debit's size (positive)
_KEY_TAKEN = exists().where(ENTRIES.c.external_key == _KEY)


def _balance_update(delta: Any, *, guard: bool) -> Any:
    """UPDATE coupon_accounts SET balance = balance + delta … unless the key was used (and,
    with ``guard``, unless fewer than :coupons are left) RETURNING balance."""
    query = update(ACCOUNTS).where(ACCOUNTS.c.registration_id == _REGISTRATION, ~_KEY_TAKEN)
    if guard:
        query = query.where(ACCOUNTS.c.balance >= _COUPONS)
    return query.values(balance=ACCOUNTS.c.balance + delta, updated_at=_NOW).returning(ACCOUNTS.c.balance)


def _entry_values(coupons: Any, balance: Any, receipt: Any) -> Any:
    """The entry's row as a SELECT (of the balance CTE on PostgreSQL, of parameters on SQLite)."""
    return select(_REGISTRATION, bindparam("p_kind", type_=String()), coupons, balance, _NOW, true(),
                  bindparam("p_actor_id", type_=Integer()), bindparam("p_note", type_=String()), receipt, _KEY)


def _oldest_first(*where: Any) -> Any:
    """(lot id, coupons to take) of the oldest lots that together hold :coupons."""
    before = func.coalesce(func.sum(LOTS.c.coupons_left).over(order_by=(LOTS.c.acquired_on, LOTS.c.id), rows=(None, -1)), 0)
    running = (select(LOTS.c.id, LOTS.c.coupons_left, before.label("before"))
               .where(LOTS.c.registration_id == _REGISTRATION, LOTS.c.coupons_left > 0, *where).subquery("running"))
    # the smaller of what the lot holds and what is still wanted (a CASE: least() is PostgreSQL's, min() SQLite's)
    take = case((running.c.coupons_left < _COUPONS - running.c.before, running.c.coupons_left),
                else_=_COUPONS - running.c.before)
    return select(running.c.id, take.label("take")).where(running.c.before < _COUPONS)


def _finish_postgresql(entry: Any, allocations: Any) -> Any:
    """The end of a debit's or give-back's statement: move the lots the allocations name and
    return (entry id, balance after, receipt number, coupons the lots moved, key used before)."""
    moved = (update(LOTS).where(LOTS.c.id == allocations.c.lot_id)
             .values(coupons_left=LOTS.c.coupons_left + allocations.c.coupons)
             .returning(allocations.c.coupons.label("moved")).cte("moved"))
    return select(select(entry.c.id).scalar_subquery(), select(entry.c.balance_after).scalar_subquery(),
                  select(entry.c.receipt_number).scalar_subquery(),
                  select(func.coalesce(func.sum(moved.c.moved), 0)).scalar_subquery(), _KEY_TAKEN)


def _debit_postgresql(receipt: Any) -> Any:
    account = _balance_update(-_COUPONS, guard=True).cte("account")
    entry = (insert(ENTRIES).from_select(ENTRY_COLUMNS, _entry_values(-_COUPONS, account.c.balance, receipt))
             .returning(ENTRIES.c.id, ENTRIES.c.balance_after, ENTRIES.c.receipt_number).cte("entry"))
    picked = _oldest_first(exists(select(account.c.balance))).cte("picked")
    allocations = (insert(ENTRY_LOTS).from_select(
        ["entry_id", "lot_id", "coupons"],
        select(entry.c.id, picked.c.id, -picked.c.take).select_from(entry.join(picked, true())))
        .returning(ENTRY_LOTS.c.lot_id, ENTRY_LOTS.c.coupons).cte("allocations"))
    return _finish_postgresql(entry, allocations)


_RECEIPT = bindparam("p_receipt_number", type_=String())
_DEBIT_PG = _debit_postgresql(_RECEIPT)
_DEBITS_DRAWING: dict[int, tuple[ColumnElement[str], Any]] = {}  # by the receipt expression they draw


def _debit_pg_drawing(receipt: ColumnElement[str]) -> Any:
    """The debit statement whose entry draws its receipt number from ``receipt`` (an SQL
    expression such as the next value of a sequence), built once per expression."""
    found = _DEBITS_DRAWING.get(id(receipt))
    if found is not None and found[0] is receipt:
        return found[1]
    statement = _debit_postgresql(receipt)
    if len(_DEBITS_DRAWING) < 8:  # constants in practice; never hold on to passing ones
        _DEBITS_DRAWING[id(receipt)] = (receipt, statement)
    return statement


_ORIGINAL_ID, _ORIGINAL_COUPONS = bindparam("p_original_id", type_=Integer()), bindparam("p_original_coupons", type_=Integer())
_GIVEN_BACK = select(ENTRY_LOTS.c.lot_id, (-ENTRY_LOTS.c.coupons).label("coupons")).where(
    ENTRY_LOTS.c.entry_id == _ORIGINAL_ID)


def _give_back_postgresql() -> Any:
    account = _balance_update(-_ORIGINAL_COUPONS, guard=False).cte("account")
    entry = (insert(ENTRIES).from_select(ENTRY_COLUMNS, _entry_values(-_ORIGINAL_COUPONS, account.c.balance, _RECEIPT))
             .returning(ENTRIES.c.id, ENTRIES.c.balance_after, ENTRIES.c.receipt_number).cte("entry"))
    lots = _GIVEN_BACK.cte("lots")
    allocations = (insert(ENTRY_LOTS).from_select(
        ["entry_id", "lot_id", "coupons"],
        select(entry.c.id, lots.c.lot_id, lots.c.coupons).select_from(entry.join(lots, true())))
        .returning(ENTRY_LOTS.c.lot_id, ENTRY_LOTS.c.coupons).cte("allocations"))
    return _finish_postgresql(entry, allocations)


_GIVE_BACK_PG = _give_back_postgresql()

# SQLite: the same steps, one statement each
_DEBIT_BALANCE = _balance_update(-_COUPONS, guard=True)
_GIVE_BACK_BALANCE = _balance_update(-_ORIGINAL_COUPONS, guard=False)
_ENTRY_SQLITE = (insert(ENTRIES).from_select(ENTRY_COLUMNS, _entry_values(
    bindparam("p_entry_coupons", type_=Integer()), bindparam("p_balance", type_=Integer()), _RECEIPT))
    .returning(ENTRIES.c.id, ENTRIES.c.receipt_number))
_ENTRY_ID = bindparam("p_entry_id", type_=Integer())
_PICKED = _oldest_first().subquery("picked")
_DEBIT_LOTS_SQLITE = (insert(ENTRY_LOTS).from_select(["entry_id", "lot_id", "coupons"],
                                                     select(_ENTRY_ID, _PICKED.c.id, -_PICKED.c.take))
                      .returning(ENTRY_LOTS.c.coupons))
_GIVEN = _GIVEN_BACK.subquery("given")
_GIVE_BACK_LOTS_SQLITE = (insert(ENTRY_LOTS).from_select(["entry_id", "lot_id", "coupons"],
                                                         select(_ENTRY_ID, _GIVEN.c.lot_id, _GIVEN.c.coupons))
                          .returning(ENTRY_LOTS.c.coupons))
_MOVE_LOTS_SQLITE = (update(LOTS).where(LOTS.c.id.in_(select(ENTRY_LOTS.c.lot_id).where(ENTRY_LOTS.c.entry_id == _ENTRY_ID)))
                     .values(coupons_left=LOTS.c.coupons_left + select(ENTRY_LOTS.c.coupons).where(
                         ENTRY_LOTS.c.entry_id == _ENTRY_ID, ENTRY_LOTS.c.lot_id == LOTS.c.id).scalar_subquery()))


def _outcome(entry_id: int | None, balance: int | None, receipt: str | None, lots_moved: int, replayed: bool,
             coupons: int) -> LedgerResult | None:
    """None: the balance was short (INSUFFICIENT_COUPONS for a debit)."""
    if entry_id is None:
        return LedgerResult(False) if replayed else None
    if lots_moved != coupons:  # rolls the caller's transaction back; the audit job would say so
        raise RuntimeError(f"lots moved {lots_moved} coupons for an entry of {coupons}: lots and balance disagree")
    return LedgerResult(True, entry_id, balance, receipt)


async def _run_sqlite(session: AsyncSession, balance_update: Any, lots_insert: Any, params: dict[str, Any],
                      coupons: int) -> LedgerResult | None:
    """SQLite's four statements: balance, entry, entry-lots, lots (``coupons``: the signed change)."""
    balance = await session.scalar(balance_update, params)
    if balance is None:
        return LedgerResult(False) if await session.scalar(select(_KEY_TAKEN), params) else None
    entry_id, receipt = (await session.execute(
        _ENTRY_SQLITE, {**params, "p_entry_coupons": coupons, "p_balance": balance})).one()
    changes = (await session.scalars(lots_insert, {**params, "p_entry_id": entry_id})).all()
    await session.execute(_MOVE_LOTS_SQLITE, {"p_entry_id": entry_id})
    return _outcome(entry_id, balance, receipt, sum(changes), False, coupons)


async def _run_postgresql(session: AsyncSession, statement: Any, params: dict[str, Any],
                          coupons: int) -> LedgerResult | None:
    entry_id, balance, receipt, lots_moved, replayed = (await session.execute(statement, params)).one()
    return _outcome(entry_id, balance, receipt, int(lots_moved), bool(replayed), coupons)


async def debit(session: AsyncSession, *, registration_id: int, coupons: int, kind: str, key: str, now: dt.datetime,
                actor_id: int | None = None, note: str | None = None,
                receipt_number: str | ColumnElement[str] | None = None, field: list[str] | None = None) -> LedgerResult:
    """Take coupons, oldest lots first: one statement on PostgreSQL, four on SQLite.
    INSUFFICIENT_COUPONS changes nothing; a key used before changes nothing and returns
    ``applied=False``. ``receipt_number`` may be an SQL expression (PostgreSQL: the next
    value of a sequence), evaluated only when the coupons are taken; the result says what
    the entry recorded."""
    if coupons <= 0:
        raise ValueError("debit takes a positive number of coupons")
    locks.require_registration(session, registration_id, "a coupon debit")
    locks.note(session, "coupon_lot", [registration_id])  # level 3: the lots it writes
    # no ensure_account: without an account row the guarded balance update finds nothing
    params: dict[str, Any] = {"p_registration_id": registration_id, "p_coupons": coupons, "p_kind": kind, "p_key": key,
                              "p_now": now, "p_actor_id": actor_id, "p_note": note}
    if session.get_bind().dialect.name == "sqlite":
        if isinstance(receipt_number, ColumnElement):
            raise TypeError("SQLite takes the receipt number itself (resolvers.core.counters.next_receipt_number)")
        result = await _run_sqlite(session, _DEBIT_BALANCE, _DEBIT_LOTS_SQLITE,
                                   {**params, "p_receipt_number": receipt_number}, -coupons)
    elif isinstance(receipt_number, ColumnElement):
        result = await _run_postgresql(session, _debit_pg_drawing(receipt_number), params, -coupons)
    else:
        result = await _run_postgresql(session, _DEBIT_PG, {**params, "p_receipt_number": receipt_number}, -coupons)
    if result is None:
        raise UserFailure(ErrorCode.INSUFFICIENT_COUPONS, field or ["input"])
    return result


async def give_back(session: AsyncSession, *, registration_id: int, of_key: str, key: str, now: dt.datetime,
                    kind: str = CouponEntryKind.RETURN, actor_id: int | None = None, note: str | None = None,
                    receipt_number: str | None = None) -> LedgerResult:
    """Undo a debit: the same coupons go back to the same lots (once per ``key``) — after
    reading the original, one statement on PostgreSQL, four on SQLite."""
    locks.require_registration(session, registration_id, "a coupon return")
    locks.note(session, "coupon_lot", [registration_id])  # level 3: the lots it writes
    original = (await session.execute(select(ENTRIES.c.id, ENTRIES.c.coupons).where(
        ENTRIES.c.external_key == of_key, ENTRIES.c.registration_id == registration_id, ENTRIES.c.coupons < 0))).first()
    if original is None:
        raise ValueError(f"no debit {of_key!r} to give back")
    params = {"p_registration_id": registration_id, "p_original_id": original.id, "p_original_coupons": original.coupons,
              "p_kind": kind, "p_key": key, "p_now": now, "p_actor_id": actor_id, "p_note": note, "p_receipt_number": receipt_number}
    if session.get_bind().dialect.name == "sqlite":
        result = await _run_sqlite(session, _GIVE_BACK_BALANCE, _GIVE_BACK_LOTS_SQLITE, params, -original.coupons)
    else:
        result = await _run_postgresql(session, _GIVE_BACK_PG, params, -original.coupons)
    assert result is not None  # a give-back never lacks coupons
    return result


async def erase_and_refund(session: AsyncSession, policy: PolicySet, *, registration_id: int, key: str, now: dt.datetime,
                           reason: str, actor_id: int | None = None) -> tuple[Refund | None, LedgerResult]:
    """Membership change or withdrawal: every unused coupon is erased and
    refunded per lot — singles at their price, a pack at unused × its single price less
    its own version's deduction (never below zero); chamber additions refund nothing.
    Each lot is computed under the rules version it came under as it went live (the rules
    history; ``policy``, the current files, for a lot from before the history), and the
    refund records the versions used.
    The lots are read after the registration's lock, so a coupon a concurrent hold gave
    back is either in them or not yet returned — never overwritten."""
    locks.require_registration(session, registration_id, "a coupon refund")
    locks.note(session, "coupon_lot", [registration_id])  # level 3: the lots it writes
    await ensure_account(session, registration_id, now)
    lots = (await session.scalars(
        select(CouponLot).where(CouponLot.registration_id == registration_id, CouponLot.coupons_left > 0)
        .order_by(CouponLot.acquired_on, CouponLot.id).execution_options(populate_existing=True)
    )).all()
    total_coupons = sum(lot.coupons_left for lot in lots)
    if total_coupons == 0:
        return None, LedgerResult(False)
    entry_id = await _entry(session, registration_id, CouponEntryKind.REFUND, -total_coupons, key, now, actor_id, reason, None)
    if entry_id is None:
        return None, LedgerResult(False)
    balance = await _move_balance(session, registration_id, -total_coupons, now)  # the balance first
    if balance is None:  # pragma: no cover - lots and balance disagree; the audit job would say so
        raise RuntimeError(f"registration {registration_id}: balance below its lots")
    amount = 0
    used: list[str] = []  # the rules versions the amount is computed under, in the order of the lots
    for lot in lots:
        if lot.product_code:  # a priced lot: its membership is recorded with it
            rules = await rules_history.policy_of_record(session, lot.rules_version, policy)
            amount += fees.lot_refund(rules, lot.acquired_on, cast(str, lot.membership), lot.product_code, lot.coupons_left)
            if rules.version not in used:
                used.append(rules.version)
        session.add(CouponEntryLot(entry_id=entry_id, lot_id=lot.id, coupons=-lot.coupons_left))
        # take exactly what we read (guarded): never write a number over a concurrent change
        taken = await session.scalar(update(CouponLot).where(CouponLot.id == lot.id, CouponLot.coupons_left == lot.coupons_left)
                                     .values(coupons_left=0).returning(CouponLot.id))
        if taken is None:  # pragma: no cover - the registration lock serialises changes of its lots
            raise RuntimeError(f"lot {lot.id} changed under a refund")
    refund = Refund(registration_id=registration_id, amount=amount, reason=reason, created_at=now, external_key=key,
                    rules_version=",".join(used) or None)
    session.add(refund)
    await session.flush()
    return refund, await _finish(session, entry_id, balance)


async def audit_ledger(session: AsyncSession) -> list[str]:
    """Every registration: entries sum to the balance, and the lots hold the balance."""
    problems = []
    sums: dict[int, int] = {registration: total for registration, total in (await session.execute(
        select(CouponEntry.registration_id, func.sum(CouponEntry.coupons)).group_by(CouponEntry.registration_id)
    )).all()}
    lots: dict[int, int] = {registration: total for registration, total in (await session.execute(
        select(CouponLot.registration_id, func.sum(CouponLot.coupons_left)).group_by(CouponLot.registration_id)
    )).all()}
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
