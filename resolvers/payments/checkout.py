"""Card payment of approved applications (the seeds: eco-payment-2026 §1): who may pay
(``payable_scope``), the cart, the checkout through the payment gateway, its settlement,
and one application's card statement (the PDF). The cart and the statements as the API
shows them are read in resolvers/payments/queries.py.

An application joins a checkout only through ``UPDATE applications SET
checkout_payment_id = … WHERE … AND checkout_payment_id IS NULL RETURNING`` — two
checkouts (two tabs, two signers) cannot both hold it. A paid checkout issues its
applications; an expired one lets them go (approved, selectable again). A declined card
does neither: the hosted page takes another card until the window closes. Statements are
visible only to the account that paid.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from persistence import locks
from persistence.db import dialect_insert
from persistence.models import Application, CardCartItem, CardPayment, CardPaymentItem, CardStatement, TradeRegistration
from resolvers.applications import use_cases as applications
from resolvers.applications.names import ApplicationState, FeePayment
from resolvers.core.context import Context, Services
from resolvers.core.errors import ErrorCode, Forbidden, UserFailure, UserFailures
from resolvers.identity.actor import Viewer, audit, authorize, require_viewer
from resolvers.payments import card as payments
from resolvers.payments import messages as words
from resolvers.payments.names import CardPaymentStatus, PaymentPurpose
from rules.permissions import is_allowed

MAX_ITEMS = 100  # per checkout: a sanity bound, not policy


# --------------------------------------------------------------------------- who may pay


def payable_scope(ctx: Context, who: Viewer) -> ColumnElement[bool]:
    """Who may pay which application — the one definition: an approved card application that
    no checkout holds, standing in a relation to ``who`` (its own registration's, one it
    created …: ``applications.relation_conditions``) under which rules/permissions.yaml
    allows ``application.pay``. The cart, adding to it and the checkout (again, under the
    lock) all select through it."""
    policy, today = ctx.services.rules.current, ctx.clock.today()
    scope = applications.visibility_scope(who, lambda rel: is_allowed(policy, today, who.actor, "application.pay", rel))
    return and_(scope, Application.state == ApplicationState.APPROVED, Application.fee_payment == FeePayment.CARD,
                Application.checkout_payment_id.is_(None))


async def authorize_payer(ctx: Context, who: Viewer) -> None:
    """FORBIDDEN unless permissions.yaml lets ``who`` pay an application under one of the
    relations an application can stand in to it: the relations :func:`payable_scope`
    selects by, so this passes exactly when the scope can select anything."""
    await authorize(ctx, who, "application.pay", set(applications.relation_conditions(who)))


# --------------------------------------------------------------------------- the cart


async def add_to_cart(ctx: Context, app_ids: list[int]) -> None:
    """カートに追加: each must be an approved card application the viewer may pay."""
    who = await require_viewer(ctx)
    if who.account.registration_id is None:
        raise Forbidden()
    if not app_ids:
        raise UserFailure(ErrorCode.REQUIRED, ["input", "applicationIds"], label=words.APPLICATIONS)
    if len(app_ids) > MAX_ITEMS:
        raise UserFailure(ErrorCode.TOO_MANY_ITEMS, ["input", "applicationIds"], label=words.APPLICATIONS, limit=MAX_ITEMS)
    now = ctx.clock.now()
    async with ctx.services.db.write() as tx:  # decided and written in one unit (the checkout checks again)
        payable = set((await tx.scalars(select(Application.id).where(
            payable_scope(ctx, who), Application.id.in_(app_ids)))).all())
        problems = [UserFailure(ErrorCode.NOT_FOUND, ["input", "applicationIds", str(i)]) for i, a in enumerate(app_ids)
                    if a not in payable]
        if problems:
            raise UserFailures(problems)
        await tx.execute(dialect_insert(tx)(CardCartItem).on_conflict_do_nothing(), [
            {"account_id": who.account.id, "application_id": a, "added_at": now} for a in dict.fromkeys(app_ids)])


async def remove_from_cart(ctx: Context, app_ids: list[int]) -> None:
    who = await require_viewer(ctx)
    async with ctx.services.db.write() as session:
        await session.execute(delete(CardCartItem).where(CardCartItem.account_id == who.account.id,
                                                         CardCartItem.application_id.in_(app_ids)))


async def _cart_items(ctx: Context, who: Viewer) -> list[Application]:
    """The viewer's cart, as far as it is still payable (read before the checkout's unit of
    work, which decides again under the lock)."""
    async with ctx.services.db.read() as session:
        return list((await session.scalars(
            select(Application).join(CardCartItem, CardCartItem.application_id == Application.id)
            .where(CardCartItem.account_id == who.account.id, payable_scope(ctx, who)).order_by(Application.id))).all())


# --------------------------------------------------------------------------- checkout


@dataclass
class Checkout:
    payment_url: str
    expires_at: dt.datetime
    amount: int


async def start_card_checkout(ctx: Context, idempotency_key: str | None) -> Checkout:
    """「決済する」: one payment at the gateway for the cart's applications (the sum of their
    fixed fees); the hosted page closes after the rules' card session minutes.

    The hosted session is opened first (a real provider is a network call, never made
    inside a transaction); then one unit of work decides under the lock order —
    registration, the cart's applications, the payment, the counter — and the hosted
    session is cancelled if that unit does not commit (or finds the idempotency key
    used: the first checkout is the answer)."""
    who = await require_viewer(ctx)
    if who.account.registration_id is None:
        raise Forbidden()
    await authorize_payer(ctx, who)
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 128:
        raise UserFailure(ErrorCode.INVALID, ["input", "idempotencyKey"], label=words.IDEMPOTENCY_KEY)
    if idempotency_key:  # the fast path for a retry; decided again under the lock below
        earlier = await _checkout_by_key(ctx, who, idempotency_key)
        if earlier is not None:
            return earlier
    await payments.expire_payments(ctx.services, who.account.registration_id)
    items = await _cart_items(ctx, who)
    if not items:
        raise UserFailure(ErrorCode.REQUIRED, ["input"], label=words.CART_TO_PAY)
    if len(items) > MAX_ITEMS:
        raise UserFailure(ErrorCode.TOO_MANY_ITEMS, ["input"], label=words.CART, limit=MAX_ITEMS)
    now, today = ctx.clock.now(), ctx.clock.today()
    expires_at = now + dt.timedelta(minutes=payments.session_minutes(ctx.services))
    row, cancel = await payments.open_payment(
        ctx.services, purpose=PaymentPurpose.APPLICATIONS, registration_id=who.account.registration_id, payer_id=who.account.id,
        amount=sum(a.fee or 0 for a in items), description=words.APPLICATION_FEES.format(count=len(items)),
        expires_at=expires_at, idempotency_key=idempotency_key)
    ids = [a.id for a in items]
    earlier_row: CardPayment | None = None
    try:
        async with ctx.services.db.write() as tx:
            registration = await locks.registration(tx, who.account.registration_id)
            if idempotency_key:
                earlier_row = await tx.scalar(select(CardPayment).where(
                    CardPayment.payer_id == who.account.id, CardPayment.idempotency_key == idempotency_key))
            if earlier_row is None:
                held = await locks.applications(tx, ids)
                scope = payable_scope(ctx, who)
                still = set((await tx.scalars(select(Application.id).where(scope, Application.id.in_(ids)))).all())
                if registration is None or registration.withdrawn_at is not None or len(held) != len(ids) or still != set(ids):
                    raise UserFailure(ErrorCode.INVALID_STATE, ["input"], state=words.CART_CHANGED)  # another checkout or a change came first
                amount = sum(a.fee or 0 for a in held)
                if amount != row.amount:
                    raise UserFailure(ErrorCode.INVALID_STATE, ["input"], state=words.CART_CHANGED)
                await payments.number_payment(tx, row, today, registration.number)
                tx.add(row)
                await tx.flush()
                await tx.execute(update(Application).where(Application.id.in_(ids)).values(checkout_payment_id=row.id))
                tx.add_all([CardPaymentItem(card_payment_id=row.id, application_id=a.id, amount=a.fee) for a in held])
                await tx.execute(delete(CardCartItem).where(CardCartItem.account_id == who.account.id,
                                                            CardCartItem.application_id.in_(ids)))
                audit(tx, ctx, who.account, "application.pay", target=f"CardPayment:{row.id}",
                      detail=f"{len(ids)} application(s), {amount} yen")
    except BaseException:
        await cancel()
        raise
    if earlier_row is not None:
        await cancel()
        return Checkout(earlier_row.payment_url, earlier_row.expires_at, earlier_row.amount)
    return Checkout(row.payment_url, row.expires_at, row.amount)


async def _checkout_by_key(ctx: Context, who: Viewer, key: str) -> Checkout | None:
    async with ctx.services.db.read() as session:
        earlier = await session.scalar(select(CardPayment).where(
            CardPayment.payer_id == who.account.id, CardPayment.idempotency_key == key))
    return Checkout(earlier.payment_url, earlier.expires_at, earlier.amount) if earlier is not None else None


# --------------------------------------------------------------------------- settlement


async def card_paid(session: AsyncSession, services: Services, payment: CardPayment, now: dt.datetime) -> bool:
    """Issue every application of the checkout, or none: if one is no longer approved and
    held by this payment (cannot happen while the checkout holds it), nothing is issued,
    the others are let go and the caller owes the whole charge back."""
    ids = set((await session.scalars(select(CardPaymentItem.application_id)
                                     .where(CardPaymentItem.card_payment_id == payment.id))).all())
    held = set((await session.scalars(select(Application.id).where(
        Application.checkout_payment_id == payment.id, Application.state == ApplicationState.APPROVED))).all())
    if held != ids:
        await card_failed(session, services, payment, now, "not all applications could be issued")
        return False
    for app_id in sorted(ids):
        if not await applications.issue(session, services, app_id, now, paid_by_id=payment.payer_id):
            raise RuntimeError(f"application {app_id} changed under its checkout")  # rolls the whole settlement back
    await session.execute(update(Application).where(Application.checkout_payment_id == payment.id)
                          .values(checkout_payment_id=None))
    return True


async def card_failed(session: AsyncSession, services: Services, payment: CardPayment, now: dt.datetime, reason: str) -> None:
    """Expired or cancelled: the applications stay approved and payable again."""
    await session.execute(update(Application).where(Application.checkout_payment_id == payment.id)
                          .values(checkout_payment_id=None, updated_at=now))


async def lock_for_card(session: AsyncSession, payment_id: int) -> None:
    """The applications a checkout settles or lets go (level 4, before the payment)."""
    ids = (await session.scalars(select(CardPaymentItem.application_id)
                                 .where(CardPaymentItem.card_payment_id == payment_id))).all()
    await locks.applications(session, ids)


# --------------------------------------------------------------------------- statements


@dataclass
class Statement:
    number: str
    application: Application
    registration: TradeRegistration
    payment: CardPayment
    amount: int
    paid_at: dt.datetime


_MONTH = re.compile(r"(\d{4})-(\d{2})", re.ASCII)
FIRST_STATEMENT_YEAR = 2000  # no card payment predates the system; also keeps Tokyo midnight convertible to UTC


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """The first day of ``month`` ("2026-04") and of the month after; INVALID for anything
    else — including "9999-12", whose next month no date can hold."""
    found = _MONTH.fullmatch(month)
    if found and int(found[1]) >= FIRST_STATEMENT_YEAR:
        year, number = int(found[1]), int(found[2])
        with contextlib.suppress(ValueError):  # month 00 or 13, or a next month past 9999
            return dt.date(year, number, 1), dt.date(year + number // 12, number % 12 + 1, 1)
    raise UserFailure(ErrorCode.INVALID, ["month"], label=words.MONTH)


async def _statements(ctx: Context, who: Viewer, condition: ColumnElement[bool]) -> list[Statement]:
    async with ctx.services.db.read() as session:
        rows = (await session.execute(
            select(CardPaymentItem, Application, TradeRegistration, CardPayment, CardStatement.number)
            .join(CardPayment, CardPayment.id == CardPaymentItem.card_payment_id)
            .join(CardStatement, CardStatement.card_payment_item_id == CardPaymentItem.id)
            .join(Application, Application.id == CardPaymentItem.application_id)
            .join(TradeRegistration, TradeRegistration.id == Application.registration_id)
            .where(CardPayment.payer_id == who.account.id, CardPayment.status == CardPaymentStatus.PAID, condition)
            .order_by(CardPayment.closed_at.desc(), CardPaymentItem.id.desc()))).all()
    return [Statement(number, a, r, p, i.amount, p.closed_at) for i, a, r, p, number in rows]


async def statement_of(ctx: Context, app_id: int) -> Statement:
    """One application's statement, for the account that paid it (else Forbidden)."""
    who = await require_viewer(ctx)
    found = await _statements(ctx, who, CardPaymentItem.application_id == app_id)
    if not found:
        raise Forbidden()
    return found[0]

