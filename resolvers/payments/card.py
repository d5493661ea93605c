"""Card payments on our side (the seeds: eco-payment-2026): open a hosted session at the
gateway, take its signed notifications, settle once, expire after the limit in the rules.

* A payment is settled by one conditional ``UPDATE card_payments … WHERE status = 'OPEN'
  RETURNING``; a notification is recorded under its unique event id first, so a replay
  (the provider retries, a test posts it twice) changes nothing.
* A charge that arrives for a payment that is no longer open (expired, cancelled, paid
  by another charge) is never applied: it becomes a refund due, so no money is lost.
* A declined card is an attempt, not an outcome: the hosted page takes another card until
  the window closes, so a ``charge.declined`` event is recorded (card_notifications: our
  log of what the gateway told us) and the payment stays open. Only a charge, the buyer's
  cancellation or the window's end closes it.
* A settled payment's 利用明細 get their 発行番号 in the same unit (``number_statements``).
* What a paid payment does depends on its purpose (``Purpose``; tradecert/composition.py
  wires each): a coupon order is issued, a paid cart issues its applications.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from persistence import locks
from persistence.models import (
    CardNotification,
    CardPayment,
    CardPaymentItem,
    CardStatement,
    Chamber,
    Refund,
    TradeRegistration,
)
from resolvers.adapters.gateway import gateway_of, verify
from resolvers.core.clock import tokyo_date
from resolvers.core.context import Services
from resolvers.core.counters import next_number, next_numbers
from resolvers.payments import messages as words
from resolvers.payments.names import CardPaymentStatus, NotificationOutcome, PaymentPurpose
from rules.limits import limit

log = logging.getLogger("tradecert.payments")


class InvalidNotification(Exception):
    """Not signed by the gateway (or too old): refused, nothing recorded."""


@dataclass(frozen=True)
class Purpose:
    """What a paid or failed payment of one ``PaymentPurpose`` does (wired in tradecert/composition.py)."""

    # → False: it cannot be applied, and the charge is owed back
    paid: Callable[[AsyncSession, Services, CardPayment, dt.datetime], Awaitable[bool]]
    # the last argument is the reason, in words staff read
    failed: Callable[[AsyncSession, Services, CardPayment, dt.datetime, str], Awaitable[None]]
    # (session, payment id): lock what paid/failed will change that comes before the payment
    # in the lock order (applications, the purchase); the registration is locked already
    lock_related: Callable[[AsyncSession, int], Awaitable[None]]


def _purpose(services: Services, purpose: str) -> Purpose:
    found: Purpose = services.purposes[PaymentPurpose(purpose)]
    return found


def session_minutes(services: Services) -> int:
    return limit(services.rules.current, services.clock.today(), "card_session_minutes")


async def open_payment(services: Services, *, purpose: PaymentPurpose, registration_id: int,
                       payer_id: int, amount: int, description: str, expires_at: dt.datetime,
                       idempotency_key: str | None = None) -> tuple[CardPayment, Callable[[], Awaitable[None]]]:
    """Open the hosted session first (outside our transaction: a real provider is a network
    call) and return ``(row, cancel)``: the caller adds the row in its own transaction, and
    calls ``cancel()`` if that transaction fails."""
    gateway = gateway_of(services)
    reference = "pay_" + secrets.token_urlsafe(18)
    hosted = await gateway.open_session(services, reference=reference, amount=amount, description=description,
                                        expires_at=expires_at)
    now = services.clock.now()
    row = CardPayment(  # payment_number: set by number_payment() inside the caller's transaction
        reference=reference, purpose=purpose, registration_id=registration_id, payer_id=payer_id, amount=amount,
        description=description, status=CardPaymentStatus.OPEN, gateway_session=hosted.session_id, payment_url=hosted.payment_url,
        created_at=now, expires_at=expires_at, idempotency_key=idempotency_key,
        rules_version=services.rules.current.version,
    )

    async def cancel() -> None:
        await gateway.cancel_session(services, hosted.session_id)

    return row, cancel


# --------------------------------------------------------------------------- notifications


def _insert(services: Services) -> Callable[..., Any]:
    return sqlite.insert if services.db.is_sqlite else postgresql.insert


MAX_AMOUNT = 10_000_000_000  # no card charge comes near it; a bound for a hostile body
_TEXT_LIMITS = {"id": 64, "type": 32, "reference": 48, "chargeId": 64, "brand": 24, "last4": 4}


def _checked_event(event: object) -> tuple[dict[str, Any] | None, str]:
    """The event's fields if they fit our records, else (None, why): a signed event that
    we cannot apply is recorded as rejected and acknowledged, so the gateway stops
    retrying it (its log shows it; staff look at it) — never a 500."""
    if not isinstance(event, dict):
        return None, "not an object"
    for name, size in _TEXT_LIMITS.items():
        value = event.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value or len(value) > size or "\x00" in value:
            return None, f"bad {name}"
    if not all(event.get(name) for name in ("id", "type", "reference")):
        return None, "id, type and reference are required"
    amount = event.get("amount")
    if event.get("type") == "charge.succeeded" and (
            type(amount) is not int or not 0 < amount <= MAX_AMOUNT or not event.get("chargeId")):
        return None, "bad amount or chargeId"
    return event, ""


def _event_key(raw: object) -> str:
    """A key for recording any signed event once: its id when it fits, else a hash of it."""
    if isinstance(raw, str) and 0 < len(raw) <= 64 and "\x00" not in raw:
        return raw
    import hashlib

    return "sha256:" + hashlib.sha256(repr(raw).encode("utf-8", "backslashreplace")).hexdigest()[:56]


async def receive_notification(services: Services, body: bytes, signature: str | None) -> str:
    """The merchant's side of ``POST /payments/notify``: verify, record once, settle once.
    Returns the outcome (``paid``, ``declined``, ``refund_due``, ``duplicate``,
    ``rejected`` …).

    One unit of work in the lock order: the payment's registration, what the payment
    settles (applications or the coupon order), the payment, then the notification's
    record — so settlement decides from the rows it holds."""
    now = services.clock.now()
    if not verify(services.settings.payment_secret, body, signature, now):
        raise InvalidNotification("bad or stale signature")
    try:
        raw = json.loads(body)
    except ValueError:
        raise InvalidNotification("not a gateway event") from None
    event, why = _checked_event(raw)
    async with services.db.write() as tx:
        if event is None:
            key = _event_key(raw.get("id") if isinstance(raw, dict) else None)
            await tx.execute(_insert(services)(CardNotification).values(
                event_id=key, reference=str(raw.get("reference") if isinstance(raw, dict) else "")[:48].replace("\x00", ""),
                kind=NotificationOutcome.REJECTED, outcome=NotificationOutcome.REJECTED, received_at=now)
                .on_conflict_do_nothing(index_elements=["event_id"]))
            log.error("signed card notification %s rejected: %s", key, why)
            return NotificationOutcome.REJECTED
        event_id, kind, reference = event["id"], event["type"], event["reference"]
        found = (await tx.execute(select(CardPayment.id, CardPayment.registration_id, CardPayment.purpose)
                                  .where(CardPayment.reference == reference))).first()
        payment = None
        if found is not None:
            await locks.registration(tx, found.registration_id)
            await _purpose(services, found.purpose).lock_related(tx, found.id)
            payment = await locks.card_payment(tx, found.id)
        locks.note(tx, "record")
        recorded = await tx.scalar(
            _insert(services)(CardNotification)
            .values(event_id=event_id, reference=reference, kind=kind, outcome=NotificationOutcome.RECEIVED, received_at=now)
            .on_conflict_do_nothing(index_elements=["event_id"]).returning(CardNotification.id))
        if recorded is None:
            return NotificationOutcome.DUPLICATE
        if payment is None:
            outcome = NotificationOutcome.UNKNOWN_REFERENCE
            log.error("card notification %s for unknown reference %s", event_id, reference)
        elif kind == "charge.succeeded":
            outcome = await _succeeded(tx, services, payment, event, now)
        elif kind == "charge.declined":  # an attempt: the payer may try another card until the window closes
            outcome = NotificationOutcome.DECLINED
        else:
            outcome = NotificationOutcome.IGNORED
        await tx.execute(update(CardNotification).where(CardNotification.id == recorded).values(outcome=outcome))
    return outcome


async def _succeeded(session: AsyncSession, services: Services, payment: CardPayment, event: dict[str, Any],
                     now: dt.datetime) -> NotificationOutcome:
    charge_id, amount = str(event.get("chargeId") or ""), event.get("amount")
    if payment.charge_id is not None and payment.charge_id == charge_id:
        return NotificationOutcome.DUPLICATE  # the same charge told again under another event id
    settled = None
    if payment.status == CardPaymentStatus.OPEN and amount == payment.amount:
        settled = await session.scalar(
            update(CardPayment).where(CardPayment.id == payment.id, CardPayment.status == CardPaymentStatus.OPEN)
            .values(status=CardPaymentStatus.PAID, closed_at=now, charge_id=charge_id, brand=event.get("brand"), last4=event.get("last4"))
            .returning(CardPayment.id))
    if settled is not None and await _purpose(services, payment.purpose).paid(session, services, payment, now):
        await number_statements(session, payment, now)
        return NotificationOutcome.PAID
    # money taken for something we can no longer deliver: owe it back, never apply it
    if settled is not None:
        await session.execute(update(CardPayment).where(CardPayment.id == payment.id).values(status=CardPaymentStatus.CANCELLED))
    await session.execute(_insert(services)(Refund).values(
        registration_id=payment.registration_id, amount=int(amount or 0), created_at=now,
        reason=words.CHARGE_REFUND.format(payment_number=payment.payment_number, charge_id=charge_id),
        external_key=f"charge:{charge_id or event.get('id')}").on_conflict_do_nothing(index_elements=["external_key"]))
    log.warning("card charge %s for %s not applied (payment %s): refund due", charge_id, payment.reference, payment.status)
    return NotificationOutcome.REFUND_DUE


_CLOSED = {CardPaymentStatus.EXPIRED: NotificationOutcome.EXPIRED}


async def _close(session: AsyncSession, services: Services, payment: CardPayment, now: dt.datetime,
                 status: CardPaymentStatus, reason: str) -> NotificationOutcome:
    closed = await session.scalar(
        update(CardPayment).where(CardPayment.id == payment.id, CardPayment.status == CardPaymentStatus.OPEN)
        .values(status=status, closed_at=now).returning(CardPayment.id))
    if closed is None:
        return NotificationOutcome.NOT_OPEN
    await _purpose(services, payment.purpose).failed(session, services, payment, now, reason)
    return _CLOSED[status]


async def expire_payments(services: Services, registration_id: int | None = None) -> int:
    """Close open payments past their time (job `card-session-expiry`, and before a new
    card order of the same registration). The candidates are read first; each is then
    closed in its own unit of work under the lock order, and only if still open and due."""
    now = services.clock.now()
    query = select(CardPayment.id, CardPayment.registration_id, CardPayment.purpose).where(
        CardPayment.status == CardPaymentStatus.OPEN, CardPayment.expires_at < now)
    if registration_id is not None:
        query = query.where(CardPayment.registration_id == registration_id)
    async with services.db.read() as session:
        due = (await session.execute(query.order_by(CardPayment.id).limit(1000))).all()
    expired = 0
    for payment_id, payment_registration, purpose in due:
        async with services.db.write() as tx:
            await locks.registration(tx, payment_registration)
            await _purpose(services, purpose).lock_related(tx, payment_id)
            payment = await locks.card_payment(tx, payment_id)
            if payment is None or payment.status != CardPaymentStatus.OPEN or payment.expires_at >= now:
                continue
            closed = await _close(tx, services, payment, now, CardPaymentStatus.EXPIRED, words.EXPIRED)
            expired += closed == NotificationOutcome.EXPIRED
        await gateway_of(services).cancel_session(services, payment.gateway_session)
    return expired


async def expiry_job(services: Services) -> str:
    return f"{await expire_payments(services)} card session(s) expired"


async def redelivery_job(services: Services) -> str:
    gateway = gateway_of(services)
    return await gateway.redeliver(services) if hasattr(gateway, "redeliver") else "nothing to redeliver"


async def number_payment(session: AsyncSession, row: CardPayment, today: dt.date, registration_number: str) -> None:
    """クレジットカード決済番号 as the seed shows it: date-registration-serial (unique in the database)."""
    serial = await next_number(session, f"card-payment:{row.registration_id}")
    row.payment_number = f"{today:%Y%m%d}-{registration_number}-{serial:05d}"


async def number_statements(session: AsyncSession, payment: CardPayment, paid_at: dt.datetime) -> None:
    """発行番号 of a settled payment's 利用明細, in its unit of work: one per paid application,
    or one for a coupon order. As the seed prints it (20240703888811531): the Tokyo payment
    date, the registration's chamber code and that chamber's serial of the day — one counter
    for every kind, so a coupon order's statement and an application's never share a number
    (``card_statements.number`` is unique, and says so if code ever tried)."""
    chamber = await session.scalar(select(Chamber.code).join(TradeRegistration, TradeRegistration.chamber_id == Chamber.id)
                                   .where(TradeRegistration.id == payment.registration_id))
    items: list[int | None] = list((await session.scalars(
        select(CardPaymentItem.id).where(CardPaymentItem.card_payment_id == payment.id).order_by(CardPaymentItem.id))).all())
    day = tokyo_date(paid_at)
    serials = await next_numbers(session, f"card-statement:{chamber}:{day:%Y%m%d}", len(items) or 1)
    await session.execute(insert(CardStatement), [
        {"number": f"{day:%Y%m%d}{chamber}{serial:05d}", "card_payment_id": payment.id, "card_payment_item_id": item}
        for item, serial in zip(items or [None], serials, strict=True)])
