"""Numbers handed out by the system, on both database kinds.

* Receipt numbers (発給受付番号, 9 digits) come from a sequence: gaps are allowed (the
  seed's numbers have them) and every submission of every exporter takes one, so no row
  may be locked for them (:func:`next_receipt_number`).
* Certificate, card payment, card statement and NACCS numbers stay gapless: a named
  counter row (:func:`next_number`). They are taken per chamber and year (certificates),
  per chamber and day (the 発行番号 of card statements, as a payment settles), per
  registration (whose lock the caller holds already) or rarely, and held only until the
  unit commits, so that row is never a hot spot.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, String, cast, func, insert, literal_column
from sqlalchemy.ext.asyncio import AsyncSession

from persistence import locks
from persistence.db import dialect_insert
from persistence.models import Counter, ReceiptNumber

RECEIPT_DIGITS = 9  # 000004172, as the seed shows them
# PostgreSQL: the next receipt number as an SQL expression (one object, so the statements
# embedding it are built and compiled once)
NEXT_RECEIPT: ColumnElement[str] = func.lpad(
    cast(func.nextval(literal_column("'receipt_numbers_id_seq'")), String), RECEIPT_DIGITS, literal_column("'0'"))


async def next_number(session: AsyncSession, name: str) -> int:
    """The next value of a named counter, race-free on both databases: one upsert
    (``INSERT … ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value``)
    whose row lock holds until the caller's transaction ends, so a rolled-back use case
    gives its number back. Counters are the last level of the lock order."""
    locks.note(session, "counter")
    insert_ = dialect_insert(session)
    statement = insert_(Counter).values(name=name, value=1)
    statement = statement.on_conflict_do_update(index_elements=["name"], set_={"value": Counter.value + 1})
    value: int = (await session.execute(statement.returning(Counter.value))).scalar_one()
    return value


async def next_numbers(session: AsyncSession, name: str, count: int) -> range:
    """The next ``count`` values of a named counter, in one upsert (as :func:`next_number`)."""
    locks.note(session, "counter")
    insert_ = dialect_insert(session)
    statement = insert_(Counter).values(name=name, value=count)
    statement = statement.on_conflict_do_update(index_elements=["name"], set_={"value": Counter.value + count})
    last: int = (await session.execute(statement.returning(Counter.value))).scalar_one()
    return range(last - count + 1, last + 1)


async def next_receipt_number(session: AsyncSession) -> str | ColumnElement[str]:
    """The next receipt number, for the statement that records the submission to write.

    PostgreSQL: an SQL expression, ``lpad(nextval('receipt_numbers_id_seq')::text, 9, '0')``,
    drawn by that statement itself — no extra round trip, no lock (a sequence is never
    rolled back, so concurrent submissions never wait on each other for it), and nothing
    drawn when the statement writes no row (a refused debit); a unit that rolls back
    later leaves a gap. SQLite: the number itself, from one insert into an AUTOINCREMENT
    table under the write lock the unit already holds; it is undone with the unit."""
    if session.get_bind().dialect.name == "sqlite":
        drawn = (await session.execute(insert(ReceiptNumber).returning(ReceiptNumber.id))).scalar_one()
        return f"{drawn:0{RECEIPT_DIGITS}d}"
    return NEXT_RECEIPT
