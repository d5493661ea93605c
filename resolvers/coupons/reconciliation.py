"""Bank deposits in bulk, set-based (issue 11, P5: 100,000 deposits in ≤ 10 s).

Recording: a statement's lines are bulk-loaded into a staging table of the connection
(``COPY`` on PostgreSQL, one ``executemany`` on SQLite); the accounts are checked and the
deposits recorded by a few statements over it, not row by row. Callers
(``purchases.store_deposits``) keep every decision about the input: what a key is, what
a problem is, what "recorded before" means.

Reconciliation: ``apply_deposits`` fills a work table with a chunk of unprocessed
deposits and decides and writes them with a fixed number of statements (about 25 however
many deposits the chunk holds), in the one lock order of ``persistence.locks``:

1. the deposits' registrations, 2. their coupon accounts, 5. their orders, then 7. the
deposits themselves, claimed by a conditional UPDATE (a deposit another reconciler took
first is dropped from the chunk);

then, from rows read under those locks: per order, the lowest deposit made within the
account's validity while the order awaits payment decides it — exact → issued; more →
issued, the excess less costs owed back; less → the order is cancelled and the deposit
less costs owed back — and every other deposit is owed back whole, less costs. Coupons go
into the ledger as one entry and one lot per order line (key ``purchase:<order>:line:<line>``,
unique, so nothing can be issued twice), the balance and pending counts move by one
UPDATE, refunds (key ``deposit:<id>``) and mails are inserted by one statement each.

The staging and work tables are TEMPORARY: private to the connection, emptied at the
start of each use, never in a migration. Text that people read (refund reasons, the mail)
is a template in resolvers/coupons/messages.py, bound as parameters and rendered by the
database (``_render``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import CreateTable

from persistence import locks
from persistence.models import (
    Account,
    BankDeposit,
    Base,
    CouponAccount,
    CouponEntry,
    CouponEntryLot,
    CouponLot,
    CouponPurchase,
    CouponPurchaseLine,
    OutboxMail,
    Refund,
    TradeRegistration,
    UTCDateTime,
    VirtualAccount,
)
from resolvers.adapters.mail import OutboxStatus
from resolvers.coupons import messages as words
from resolvers.coupons.names import CouponEntryKind, CouponMail, DepositOutcome, PurchaseStatus
from rules import fees, mail
from rules.policy import PolicySet, RowRef

CHUNK = 5000  # deposits per reconciliation transaction (docs/decisions.md, "Reconciliation in chunks")


PAID = (DepositOutcome.ISSUED.value, DepositOutcome.ISSUED_OVER.value)



def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


deposits_t, accounts_t, purchases_t = _table(BankDeposit), _table(VirtualAccount), _table(CouponPurchase)
registrations_t, balances_t, lines_t = _table(TradeRegistration), _table(CouponAccount), _table(CouponPurchaseLine)
entries_t, lots_t, entry_lots_t = _table(CouponEntry), _table(CouponLot), _table(CouponEntryLot)
refunds_t, mails_t, people_t = _table(Refund), _table(OutboxMail), _table(Account)

_TEMPORARY = MetaData()  # not the models' metadata: no migration, no model comparison

stage = Table(  # one row per statement line with a well-formed account number
    "deposit_stage", _TEMPORARY,
    Column("pos", Integer, primary_key=True, autoincrement=False),  # the line's position in the input
    Column("deposit_key", String(128)),  # None: the line has a problem and is only checked, never recorded
    Column("account_number", String(7), nullable=False),
    Column("amount", BigInteger),
    Column("deposited_on", Date),
    Column("payer_name", String(120)),
    Column("source_line", Integer),
    prefixes=["TEMPORARY"],
)
work = Table(  # the deposits of one reconciliation chunk, with what they belong to and what was decided
    "reconcile_work", _TEMPORARY,
    Column("deposit_id", Integer, primary_key=True, autoincrement=False),
    Column("amount", Integer, nullable=False),
    Column("deposited_on", Date, nullable=False),
    Column("valid_until", Date, nullable=False),
    Column("purchase_id", Integer, nullable=False),
    Column("registration_id", Integer, nullable=False),
    Column("order_amount", Integer, nullable=False),
    Column("order_coupons", Integer, nullable=False),
    Column("order_number", String(32), nullable=False),
    Column("outcome", String(16)),
    Column("owed", Integer),  # before transfer costs
    Column("due", Integer),  # after transfer costs (rules/refund_transfer_costs.yaml)
    prefixes=["TEMPORARY"],
)
issue = Table(  # one row per order line issued in the chunk: its ledger entry, lot and the balance after it
    "reconcile_lines", _TEMPORARY,
    Column("rn", Integer, primary_key=True, autoincrement=False),
    Column("entry_id", Integer, nullable=False),
    Column("lot_id", Integer, nullable=False),
    Column("registration_id", Integer, nullable=False),
    Column("purchase_id", Integer, nullable=False),
    Column("line_id", Integer, nullable=False),
    Column("product_code", String(32), nullable=False),
    Column("unit_price", Integer, nullable=False),
    Column("coupons", Integer, nullable=False),
    Column("balance_after", Integer, nullable=False),
    Column("membership", String(16), nullable=False),
    Column("acquired_on", Date, nullable=False),
    Column("rules_version", String(32), nullable=False),
    Column("buyer_id", Integer, nullable=False),
    Column("order_number", String(32), nullable=False),
    prefixes=["TEMPORARY"],
)
dues = Table(  # what is paid back of an amount owed: asked of the rules once per distinct amount
    "reconcile_dues", _TEMPORARY,
    Column("owed", Integer, primary_key=True, autoincrement=False),
    Column("due", Integer, nullable=False),
    prefixes=["TEMPORARY"],
)

_FIELD = re.compile(r"\{(\w+)\}")


def _render(template: str, **values: ColumnElement[Any]) -> ColumnElement[str]:
    """A text template as an SQL expression: the words are bound parameters, each ``{name}``
    the given column (as text)."""
    parts: list[ColumnElement[str]] = []
    for i, piece in enumerate(_FIELD.split(template)):
        if i % 2:
            parts.append(sql_cast(values[piece], String))
        elif piece:
            parts.append(literal(piece, String))
    rendered = parts[0]
    for part in parts[1:]:
        rendered = rendered + part
    return rendered


def _at(now: dt.datetime) -> ColumnElement[dt.datetime]:
    return literal(now, UTCDateTime())


async def _count(tx: AsyncSession, statement: Any) -> int:
    """Run an INSERT, UPDATE or DELETE; the number of rows it wrote."""
    return cast(CursorResult[Any], await tx.execute(statement)).rowcount


def _is_sqlite(tx: AsyncSession) -> bool:
    return tx.get_bind().dialect.name == "sqlite"


async def _fresh(tx: AsyncSession, *tables: Table) -> None:
    """Create the connection's temporary tables if this connection has none yet, and empty them."""
    for table in tables:
        await tx.execute(CreateTable(table, if_not_exists=True))
    if _is_sqlite(tx):
        for table in tables:
            await tx.execute(delete(table))
    else:  # TRUNCATE: temporary tables are never vacuumed, so DELETE would leave them growing
        await tx.execute(text("TRUNCATE " + ", ".join(table.name for table in tables)))


# --------------------------------------------------------------------------- recording


StagedLine = tuple[int, str | None, str, int | None, dt.date | None, str | None, int | None]
"""pos, deposit key (None: not to be recorded), account number, amount, date, payer name, file line."""


async def stage_lines(tx: AsyncSession, rows: Sequence[StagedLine]) -> None:
    """Bulk-load statement lines into the connection's staging table, in the caller's unit."""
    await _fresh(tx, stage)
    if not rows:
        return
    columns = [c.name for c in stage.columns]
    if _is_sqlite(tx):
        sql = f"INSERT INTO {stage.name} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        values = [(pos, key, number, amount, on.isoformat() if on else None, payer, line)
                  for pos, key, number, amount, on, payer, line in rows]
        # one executemany, straight to the driver (no per-row parameter processing)
        await (await tx.connection()).run_sync(lambda connection: connection.exec_driver_sql(sql, values))
        return
    # COPY through the connection this unit of work holds (its transaction began with the statements above)
    raw = await (await tx.connection()).get_raw_connection()
    await raw.driver_connection.copy_records_to_table(stage.name, records=rows, columns=columns)  # type: ignore[union-attr]


async def unknown_accounts(tx: AsyncSession, chamber_id: int | None) -> list[int]:
    """Positions of staged lines whose account is no order's (or, with ``chamber_id``, no
    order of that chamber's: another chamber's account looks exactly like an unknown one)."""
    owner = (select(accounts_t.c.id)
             .join(purchases_t, purchases_t.c.id == accounts_t.c.purchase_id)
             .where(accounts_t.c.account_number == stage.c.account_number))
    if chamber_id is not None:
        owner = (owner.join(registrations_t, registrations_t.c.id == purchases_t.c.registration_id)
                 .where(registrations_t.c.chamber_id == chamber_id))
    return list((await tx.scalars(select(stage.c.pos).where(~exists(owner)).order_by(stage.c.pos))).all())


async def staged_orders(tx: AsyncSession) -> list[int]:
    """The orders the staged lines pay."""
    return list((await tx.scalars(
        select(accounts_t.c.purchase_id).distinct()
        .join(stage, stage.c.account_number == accounts_t.c.account_number)
        .order_by(accounts_t.c.purchase_id))).all())


_EARLIER = (stage.c.pos, deposits_t.c.account_number, deposits_t.c.amount, deposits_t.c.deposited_on,
            deposits_t.c.source, deposits_t.c.source_line)


async def record_staged(tx: AsyncSession, source: str, now: dt.datetime) -> dict[int, Any]:
    """Insert the staged lines that have a key as deposits, in input order, with one
    statement. A key recorded before (or by a concurrent import that committed first) is
    left as it is: returned are those lines, by position, each with the deposit recorded
    under its key (None when it was committed while this statement ran: ask
    ``earlier_deposits``). Level 7 (records) of the lock order."""
    locks.note(tx, "record")
    lines = (select(stage.c.deposit_key, stage.c.account_number, stage.c.amount, stage.c.deposited_on,
                    stage.c.payer_name, _at(now), literal(source, String), stage.c.source_line)
             .where(stage.c.deposit_key.is_not(None))  # (SQLite: INSERT … SELECT … ON CONFLICT needs a WHERE)
             .order_by(stage.c.pos))
    columns = ["deposit_key", "account_number", "amount", "deposited_on", "payer_name", "recorded_at", "source",
               "source_line"]
    if _is_sqlite(tx):  # one writer at a time (BEGIN IMMEDIATE): what is there now is all there is
        taken = {row.pos: row for row in (await tx.execute(
            select(*_EARLIER).join(deposits_t, deposits_t.c.deposit_key == stage.c.deposit_key))).all()}
        await tx.execute(sqlite.insert(deposits_t).from_select(columns, lines).on_conflict_do_nothing(
            index_elements=["deposit_key"]))
        return taken
    # PostgreSQL: the lines the INSERT skipped, in the same statement; a key a concurrent import
    # committed meanwhile is skipped after waiting for it, and its row is not in this statement's snapshot
    inserted = (postgresql.insert(deposits_t).from_select(columns, lines)
                .on_conflict_do_nothing(index_elements=["deposit_key"])
                .returning(deposits_t.c.deposit_key).cte("inserted"))
    skipped = (select(*_EARLIER)
               .outerjoin(deposits_t, deposits_t.c.deposit_key == stage.c.deposit_key)
               .where(stage.c.deposit_key.is_not(None),
                      ~exists(select(inserted.c.deposit_key).where(inserted.c.deposit_key == stage.c.deposit_key))))
    return {row.pos: (row if row.account_number is not None else None) for row in (await tx.execute(skipped)).all()}


async def earlier_deposits(tx: AsyncSession, positions: set[int]) -> dict[int, Any]:
    """For staged lines whose key is recorded: the deposit recorded under it."""
    rows = (await tx.execute(select(*_EARLIER).join(deposits_t, deposits_t.c.deposit_key == stage.c.deposit_key))).all()
    return {row.pos: row for row in rows if row.pos in positions}


# --------------------------------------------------------------------------- reconciliation


def unprocessed_ids() -> Any:
    """Every deposit not yet applied, in the order they were recorded."""
    return select(deposits_t.c.id).where(deposits_t.c.processed_at.is_(None)).order_by(deposits_t.c.id)


def in_range(first: int, last: int) -> ColumnElement[bool]:
    """A chunk of the work list: the unprocessed deposits with ids from first to last."""
    return deposits_t.c.id.between(first, last)


def of_order(purchase_id: int) -> ColumnElement[bool]:
    """The deposits paid into one order's account."""
    return accounts_t.c.purchase_id == purchase_id


async def apply_deposits(tx: AsyncSession, policy: PolicySet, today: dt.date, now: dt.datetime,
                         which: ColumnElement[bool]) -> dict[str, int]:
    """Apply the unprocessed deposits ``which`` selects, in the caller's unit of work; counts by outcome.

    A caller may hold the lock of the registration involved already (an order's check, its
    expiry); nothing else of the lock order may be held yet."""
    await _fresh(tx, work, issue, dues)
    found = await _count(tx, insert(work).from_select(
        ["deposit_id", "amount", "deposited_on", "valid_until", "purchase_id", "registration_id", "order_amount",
         "order_coupons", "order_number"],
        # what a deposit belongs to never changes (an account's order, an order's registration): read without locks
        select(deposits_t.c.id, deposits_t.c.amount, deposits_t.c.deposited_on, accounts_t.c.valid_until,
               accounts_t.c.purchase_id, purchases_t.c.registration_id, purchases_t.c.amount, purchases_t.c.coupons,
               purchases_t.c.order_number)
        .join(accounts_t, accounts_t.c.account_number == deposits_t.c.account_number)
        .join(purchases_t, purchases_t.c.id == accounts_t.c.purchase_id)
        .where(deposits_t.c.processed_at.is_(None), which)))
    if not found:
        return {}
    await _lock(tx)
    # Under those locks no one else can apply these deposits: one another reconciler applied
    # while this one waited for them is dropped from the chunk (it is claimed below, once).
    found -= await _count(tx, delete(work).where(work.c.deposit_id.in_(select(deposits_t.c.id).where(
        deposits_t.c.id.in_(select(work.c.deposit_id)), deposits_t.c.processed_at.is_not(None)))))
    await _decide(tx, policy, today)
    await _write_orders(tx, now)
    await _issue_coupons(tx, now)
    await _owe_and_tell(tx, now, mail.template(policy, today, "coupon.issued_by_transfer"))
    await _claim(tx, now, found)
    counts = (await tx.execute(select(work.c.outcome, func.count()).group_by(work.c.outcome))).all()
    return {outcome: n for outcome, n in counts}


async def decided_orders(tx: AsyncSession) -> tuple[list[int], list[int]]:
    """(orders issued, orders cancelled for a short payment) by the last ``apply_deposits``
    of this unit — read from its work table, so the caller can report them in the same unit."""
    rows = (await tx.execute(select(work.c.purchase_id, work.c.outcome).where(
        work.c.outcome.in_((*PAID, DepositOutcome.SHORT.value))).order_by(work.c.purchase_id))).all()
    issued = [r.purchase_id for r in rows if r.outcome in PAID]
    return issued, [r.purchase_id for r in rows if r.outcome == DepositOutcome.SHORT.value]


async def _lock(tx: AsyncSession) -> None:
    """Levels 1, 2 and 5 of the lock order, each in id order, for every row the chunk
    touches. (SQLite: the write unit's
    BEGIN IMMEDIATE already holds the only write lock, and SQLAlchemy drops FOR UPDATE, so
    the locking reads are left out there; the order is still checked.)"""
    lock = not _is_sqlite(tx)
    registration_ids = list((await tx.scalars(
        select(work.c.registration_id).distinct().order_by(work.c.registration_id))).all())
    locks.note(tx, "registration", registration_ids)  # 1
    if lock:
        await tx.execute(select(registrations_t.c.id).where(registrations_t.c.id.in_(select(work.c.registration_id)))
                         .order_by(registrations_t.c.id).with_for_update(key_share=True))
    locks.note(tx, "coupon_account", registration_ids)  # 2
    if lock:
        await tx.execute(select(balances_t.c.registration_id)
                         .where(balances_t.c.registration_id.in_(select(work.c.registration_id)))
                         .order_by(balances_t.c.registration_id).with_for_update(key_share=True))
    purchase_ids = list((await tx.scalars(select(work.c.purchase_id).distinct().order_by(work.c.purchase_id))).all())
    locks.note(tx, "purchase", purchase_ids)  # 5
    if lock:
        await tx.execute(select(purchases_t.c.id).where(purchases_t.c.id.in_(select(work.c.purchase_id)))
                         .order_by(purchases_t.c.id).with_for_update(key_share=True))


async def _claim(tx: AsyncSession, now: dt.datetime, expected: int) -> None:
    """Level 7, last: the deposits are marked applied, with their outcome, by one UPDATE
    that only takes a deposit not applied yet; any other count is a broken lock order and
    undoes the chunk."""
    locks.note(tx, "record")
    decided = select(work).where(work.c.deposit_id == deposits_t.c.id)  # by the work table's key (an UPDATE … FROM
    claimed = await _count(tx, update(deposits_t).where(  # would scan every deposit on SQLite)
        deposits_t.c.id.in_(select(work.c.deposit_id)), deposits_t.c.processed_at.is_(None)).values(
        processed_at=now, outcome=decided.with_only_columns(work.c.outcome).scalar_subquery(),
        purchase_id=decided.with_only_columns(work.c.purchase_id).scalar_subquery()))
    if claimed != expected:
        raise RuntimeError(f"{expected} deposits decided, {claimed} claimed: applied elsewhere without the locks")


async def _decide(tx: AsyncSession, policy: PolicySet, today: dt.date) -> None:
    """Per order, the first deposit made within the account's validity while the order
    awaits payment (its state read now, under its lock) decides it; every other deposit is
    owed back. One UPDATE of the work table sets each deposit's outcome and what is owed."""
    earlier = work.alias("earlier")
    awaiting = select(purchases_t.c.status).where(purchases_t.c.id == earlier.c.purchase_id).scalar_subquery()
    deciding = work.c.deposit_id.in_(
        select(func.min(earlier.c.deposit_id))
        .where(awaiting == PurchaseStatus.AWAITING_PAYMENT.value, earlier.c.deposited_on <= earlier.c.valid_until)
        .group_by(earlier.c.purchase_id))
    await tx.execute(update(work).values(
        outcome=case((deciding, case((work.c.amount < work.c.order_amount, DepositOutcome.SHORT.value),
                                     (work.c.amount == work.c.order_amount, DepositOutcome.ISSUED.value),
                                     else_=DepositOutcome.ISSUED_OVER.value)),
                     else_=DepositOutcome.REFUNDED.value),
        owed=case((deciding & (work.c.amount == work.c.order_amount), 0),
                  (deciding & (work.c.amount > work.c.order_amount), work.c.amount - work.c.order_amount),
                  else_=work.c.amount)))
    owed = (await tx.scalars(select(work.c.owed).distinct().where(work.c.owed > 0))).all()
    if owed:  # the rules decide the transfer costs: asked once per distinct amount
        await tx.execute(insert(dues), [{"owed": o, "due": fees.refund_after_costs(policy, today, o)} for o in owed])
        await tx.execute(update(work).where(work.c.owed > 0).values(
            due=select(dues.c.due).where(dues.c.owed == work.c.owed).scalar_subquery()))


async def _write_orders(tx: AsyncSession, now: dt.datetime) -> None:
    short = work.c.outcome == DepositOutcome.SHORT.value
    await tx.execute(
        update(purchases_t)
        .where(purchases_t.c.id == work.c.purchase_id, work.c.outcome != DepositOutcome.REFUNDED.value,
               purchases_t.c.status == PurchaseStatus.AWAITING_PAYMENT.value)
        .values(status=case((short, PurchaseStatus.CANCELLED.value), else_=PurchaseStatus.ISSUED.value),
                paid_at=case((short, purchases_t.c.paid_at), else_=_at(now)),
                cancelled_at=case((short, _at(now)), else_=purchases_t.c.cancelled_at),
                cancel_reason=case((short, literal(words.SHORT_PAYMENT, String)), else_=purchases_t.c.cancel_reason),
                deposited_amount=work.c.amount))
    owed = (select(work.c.purchase_id, func.sum(work.c.due).label("due"))
            .where(work.c.owed > 0).group_by(work.c.purchase_id).subquery())
    await tx.execute(update(purchases_t).where(purchases_t.c.id == owed.c.purchase_id)
                     .values(refund_due=func.coalesce(purchases_t.c.refund_due, 0) + owed.c.due))


async def _issue_coupons(tx: AsyncSession, now: dt.datetime) -> None:
    """One ledger entry and one lot per line of each order paid (balance before lots, as in
    the ledger), then the balance and pending counts of every account involved."""
    order = (work.c.registration_id, work.c.purchase_id, lines_t.c.id)  # one sort for both windows
    paid_lines = (
        select(func.row_number().over(order_by=order).label("rn"), work.c.registration_id, work.c.purchase_id,
               lines_t.c.id.label("line_id"), lines_t.c.product_code, lines_t.c.unit_price, lines_t.c.coupons,
               (balances_t.c.balance + func.sum(lines_t.c.coupons).over(partition_by=work.c.registration_id,
                                                                        order_by=order[1:])).label("balance_after"),
               purchases_t.c.membership, purchases_t.c.ordered_on.label("acquired_on"), purchases_t.c.rules_version,
               purchases_t.c.buyer_id, purchases_t.c.order_number)
        .select_from(work)
        .join(lines_t, lines_t.c.purchase_id == work.c.purchase_id)
        .join(purchases_t, purchases_t.c.id == work.c.purchase_id)
        .join(balances_t, balances_t.c.registration_id == work.c.registration_id)
        .where(work.c.outcome.in_(PAID))
    ).subquery()
    if _is_sqlite(tx):  # the write lock is held: the ids after the largest are free
        entry_id = paid_lines.c.rn + select(func.coalesce(func.max(entries_t.c.id), 0)).scalar_subquery()
        lot_id = paid_lines.c.rn + select(func.coalesce(func.max(lots_t.c.id), 0)).scalar_subquery()
    else:  # the tables' sequences, taken in line order (PostgreSQL evaluates them after the ORDER BY)
        entry_id, lot_id = func.nextval("coupon_entries_id_seq"), func.nextval("coupon_lots_id_seq")
    columns = [c for c in paid_lines.c]
    issued = await _count(tx, insert(issue).from_select(
        [c.name for c in columns] + ["entry_id", "lot_id"], select(*columns, entry_id, lot_id).order_by(paid_lines.c.rn)))
    if issued:
        await tx.execute(insert(entries_t).from_select(
            ["id", "registration_id", "kind", "coupons", "balance_after", "at", "confirmed", "actor_id", "note",
             "external_key", "purchase_id"],
            select(issue.c.entry_id, issue.c.registration_id, literal(CouponEntryKind.PURCHASE.value, String),
                   issue.c.coupons, issue.c.balance_after, _at(now), true(), issue.c.buyer_id,
                   _render(words.ORDER_NOTE, order_number=issue.c.order_number),
                   _render("purchase:{purchase_id}:line:{line_id}", purchase_id=issue.c.purchase_id,
                           line_id=issue.c.line_id),
                   issue.c.purchase_id).order_by(issue.c.rn)))
        await tx.execute(insert(lots_t).from_select(
            ["id", "registration_id", "product_code", "membership", "unit_price", "coupons", "coupons_left",
             "acquired_on", "rules_version", "created_at"],
            select(issue.c.lot_id, issue.c.registration_id, issue.c.product_code, issue.c.membership,
                   issue.c.unit_price, issue.c.coupons, issue.c.coupons, issue.c.acquired_on, issue.c.rules_version,
                   _at(now)).order_by(issue.c.rn)))
        await tx.execute(insert(entry_lots_t).from_select(
            ["entry_id", "lot_id", "coupons"], select(issue.c.entry_id, issue.c.lot_id, issue.c.coupons)))
    credited = select(issue.c.registration_id.label("rid"), issue.c.coupons.label("credit"),
                      literal(0, Integer).label("released"))
    released = select(work.c.registration_id, literal(0, Integer), work.c.order_coupons).where(
        work.c.outcome != DepositOutcome.REFUNDED.value)
    moves = union_all(credited, released).subquery()
    by_account = (select(moves.c.rid, func.sum(moves.c.credit).label("credit"),
                         func.sum(moves.c.released).label("released"))
                  .group_by(moves.c.rid).subquery())
    await tx.execute(update(balances_t).where(balances_t.c.registration_id == by_account.c.rid).values(
        balance=balances_t.c.balance + by_account.c.credit, pending=balances_t.c.pending - by_account.c.released,
        updated_at=_at(now)))


async def _owe_and_tell(tx: AsyncSession, now: dt.datetime, issued: RowRef) -> None:
    """A refund for every deposit owed anything (even one the costs eat up: it is on
    record), and a mail to the buyer of every order issued."""
    reason = case(*[(work.c.outcome == outcome.value, literal(text_, String))
                    for outcome, text_ in words.REFUND_REASONS.items()])
    await tx.execute(insert(refunds_t).from_select(
        ["registration_id", "amount", "reason", "created_at", "external_key"],
        select(work.c.registration_id, work.c.due, _render(words.REFUND_REASON, reason=reason, order_number=work.c.order_number),
               _at(now), _render("deposit:{deposit_id}", deposit_id=work.c.deposit_id))
        .where(work.c.owed > 0).order_by(work.c.deposit_id)))
    await tx.execute(insert(mails_t).from_select(
        ["created_at", "kind", "to_address", "subject", "body", "status", "attempts", "next_attempt_at", "account_id"],
        select(_at(now), literal(CouponMail.ISSUED.value, String),
               func.coalesce(func.nullif(purchases_t.c.notify_email, ""), func.nullif(people_t.c.email, ""), ""),
               literal(issued.text("subject"), String),  # coupon.issued_by_transfer of mail_templates.yaml
               _render(issued.text("body"), order_number=work.c.order_number, coupons=work.c.order_coupons),
               literal(OutboxStatus.PENDING.value, String), literal(0, Integer), _at(now), purchases_t.c.buyer_id)
        .select_from(work)
        .join(purchases_t, purchases_t.c.id == work.c.purchase_id)
        .outerjoin(people_t, people_t.c.id == purchases_t.c.buyer_id)
        .where(work.c.outcome.in_(PAID)).order_by(work.c.deposit_id)))
