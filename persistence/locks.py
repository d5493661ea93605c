"""The one lock order of the code base (docs/decisions.md, "One transaction per use case").

A use case that changes money, coupons or the state of an application or order runs in
one write unit of work and takes its locks in this order:

    1 registration   trade_registrations, by id: first, before anything else (the registration's "mutex")
      then the rows the locked registrations own, as the use case needs them, each
      level in id order, never without its registration's lock:
    2 coupon account coupon_accounts (the balance and the pending count), by registration id
    3 coupon lots    coupon_lots, oldest first
    4 application    applications, by id
    5 purchase       coupon_purchases, by id
    6 card payment   card_payments, by id
    7 record         deposits, notifications, refunds: rows keyed by an outside id
    8 counter        counters (certificate, statement and payment numbers): last, held briefly

The numbers are the order written for a use case that needs them all; the code takes 2–6
in the order of its steps (submit, withdraw and hold lock the application, then the
ledger writes the balance and the lots; a card settlement records the notification before
it credits the coupons). That is safe because each of those rows belongs to exactly one
registration and is taken only while its registration's lock is held: whoever holds a
row of levels 2–6 holds its registration, so nobody else waits for the row, and
registrations are locked first, in id order, so nobody waits for a registration while
holding one of a higher id or a row below it. Counters come last, so their row locks
are short and never held while waiting for anything else.

On PostgreSQL (READ COMMITTED) every statement after the registration lock sees what the
previous holder committed.

PostgreSQL: ``SELECT … FOR NO KEY UPDATE`` (it does not block inserts that merely
reference the row through a foreign key). SQLite: SQLAlchemy drops ``with_for_update()``;
a write unit is ``BEGIN IMMEDIATE`` and already holds the database's only write lock, so
the same code is correct there.

The helpers below note in the session what was taken and raise
:class:`LockOrderViolation` when a use case breaks these rules: a registration after any
other level, a row of levels 2–6 without its registration's lock, ids of one level out of
order, a record after a counter, anything but a counter after one. The ledger's writers
and an order's cancellation note the coupon account (level 2) through
:func:`require_registration`. A test run catches a wrong order on either database —
reviewers need not find it by reading.
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

# the rows a registration owns (levels 2–6): taken in any order under its lock
OWNED: frozenset[Level] = frozenset({"coupon_account", "coupon_lot", "application", "purchase", "card_payment"})

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
    """Record that ``level`` is being locked now; refuse what breaks the order.

    A registration comes before every other level; nothing but a counter after a counter;
    a record not after a counter. The rows a registration owns (:data:`OWNED`) may follow
    each other and the records in the order of the use case's steps. Within one level, ids
    must grow (or be held already), as the sorted lock statements below take them. For the
    coupon account (and lots) the ids are the registration ids, which must be locked."""
    held = _held(session)
    rank = ORDER[level]
    if level in OWNED:
        if held.level >= ORDER["counter"]:
            raise LockOrderViolation(f"lock {level} taken after a counter")
    elif rank < held.level:
        raise LockOrderViolation(f"lock {level} taken after a later level ({held.level})")
    taken = held.ids.setdefault(level, set())
    new = [i for i in ids if i not in taken]
    if taken and new and min(new) < max(taken):
        raise LockOrderViolation(f"{level} {min(new)} locked after {max(taken)}")
    if level in ("coupon_account", "coupon_lot"):
        _require_registrations(session, new, f"the {level.replace('_', ' ')}")
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
    """Ledger and order changes refuse to run unless their registration is locked here;
    each writes the registration's coupon account, so level 2 is noted."""
    _require_registrations(session, [registration_id], what)
    note(session, "coupon_account", [registration_id])


def _require_registrations(session: AsyncSession | Session, ids: Iterable[int], what: str) -> None:
    missing = sorted({i for i in ids if not holds(session, "registration", i)})
    if missing:
        raise LockOrderViolation(f"{what} of registration(s) {missing} changed without the registration lock")
