"""The one lock order of the code base (docs/decisions.md, "One transaction per use case").

A use case that changes money, coupons or the state of an application or order runs in
one write unit of work and takes its row locks in this order, never the other way round:

    1 registration   trade_registrations, by id       (the registration's "mutex")
    2 coupon account coupon_accounts (the balance)
    3 coupon lots    coupon_lots, oldest first
    4 application    applications, by id
    5 purchase       coupon_purchases, by id
    6 card payment   card_payments, by id
    7 record         deposits, notifications, refunds: rows keyed by an outside id
    8 counter        counters (receipt, certificate and payment numbers): last, held briefly

Because every use case that touches a registration's coupons, applications or orders
takes that registration's lock first, two of them never wait on each other in a circle,
and each decides from rows it read after the lock: on PostgreSQL (READ COMMITTED) every
statement after the lock sees what the previous holder committed.

PostgreSQL: ``SELECT … FOR NO KEY UPDATE`` (it does not block inserts that merely
reference the row through a foreign key). SQLite: SQLAlchemy drops ``with_for_update()``;
a write unit is ``BEGIN IMMEDIATE`` and already holds the database's only write lock, so
the same code is correct there.

The helpers below note in the session which level was taken last and raise
:class:`LockOrderViolation` when a use case goes back up the order, so a test run catches
a wrong order on either database — reviewers need not find it by reading.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from persistence.models import Application, CardPayment, CouponPurchase, TradeRegistration

Level = Literal["registration", "coupon_account", "coupon_lot", "application", "purchase", "card_payment", "record", "counter"]

ORDER: dict[Level, int] = {
    "registration": 1,
    "coupon_account": 2,
    "coupon_lot": 3,
    "application": 4,
    "purchase": 5,
    "card_payment": 6,
    "record": 7,
    "counter": 8,
}

_Rows = TypeVar("_Rows", bound=tuple[object, ...])


class LockOrderViolation(RuntimeError):
    """A use case took a lock out of the documented order (a bug, never user input)."""


@dataclass
class _Held:
    """The locks a session took so far: the highest level, and the ids per level."""

    level: int = 0
    ids: dict[Level, set[int]] = field(default_factory=dict)


def _held(session: AsyncSession | Session) -> _Held:
    held = session.info.get("tradecert_locks")
    if not isinstance(held, _Held):
        held = session.info["tradecert_locks"] = _Held()
    return held


def note(session: AsyncSession | Session, level: Level, ids: Iterable[int] = ()) -> None:
    """Record that ``level`` is being locked now; refuse to go back up the order.

    Within one level, ids must grow (or be held already), as the sorted lock statements
    below take them."""
    held = _held(session)
    rank = ORDER[level]
    if rank < held.level:
        raise LockOrderViolation(f"lock {level} taken after a later level ({held.level})")
    taken = held.ids.setdefault(level, set())
    new = [i for i in ids if i not in taken]
    if rank == held.level and taken and new and min(new) < max(taken):
        raise LockOrderViolation(f"{level} {min(new)} locked after {max(taken)}")
    taken.update(new)
    held.level = max(held.level, rank)


def holds(session: AsyncSession | Session, level: Level, id_: int) -> bool:
    return id_ in _held(session).ids.get(level, set())


def _for_update(query: Select[_Rows]) -> Select[_Rows]:
    return query.with_for_update(key_share=True).execution_options(populate_existing=True)


async def registrations(session: AsyncSession, ids: Iterable[int]) -> list[TradeRegistration]:
    """Lock registrations (level 1) in id order and return them as they are now."""
    wanted = sorted(set(ids))
    note(session, "registration", wanted)
    if not wanted:
        return []
    return list((await session.scalars(_for_update(
        select(TradeRegistration).where(TradeRegistration.id.in_(wanted)).order_by(TradeRegistration.id)))).all())


async def registration(session: AsyncSession, id_: int) -> TradeRegistration | None:
    found = await registrations(session, [id_])
    return found[0] if found else None


async def applications(session: AsyncSession, ids: Iterable[int]) -> list[Application]:
    """Lock applications (level 4) in id order; their registrations must be locked already."""
    wanted = sorted(set(ids))
    note(session, "application", wanted)
    if not wanted:
        return []
    rows = list((await session.scalars(_for_update(
        select(Application).where(Application.id.in_(wanted)).order_by(Application.id)))).all())
    _require_registrations(session, (a.registration_id for a in rows), "applications")
    return rows


async def application(session: AsyncSession, id_: int) -> Application | None:
    found = await applications(session, [id_])
    return found[0] if found else None


async def purchases(session: AsyncSession, ids: Iterable[int]) -> list[CouponPurchase]:
    wanted = sorted(set(ids))
    note(session, "purchase", wanted)
    if not wanted:
        return []
    rows = list((await session.scalars(_for_update(
        select(CouponPurchase).where(CouponPurchase.id.in_(wanted)).order_by(CouponPurchase.id)))).all())
    _require_registrations(session, (p.registration_id for p in rows), "coupon purchases")
    return rows


async def card_payment(session: AsyncSession, id_: int) -> CardPayment | None:
    note(session, "card_payment", [id_])
    row = await session.scalar(_for_update(select(CardPayment).where(CardPayment.id == id_)))
    if row is not None:
        _require_registrations(session, [row.registration_id], "card payments")
    return row


def require_registration(session: AsyncSession | Session, registration_id: int, what: str) -> None:
    """Ledger and order changes refuse to run unless their registration is locked here."""
    _require_registrations(session, [registration_id], what)


def _require_registrations(session: AsyncSession | Session, ids: Iterable[int], what: str) -> None:
    missing = sorted({i for i in ids if not holds(session, "registration", i)})
    if missing:
        raise LockOrderViolation(f"{what} of registration(s) {missing} changed without the registration lock")
