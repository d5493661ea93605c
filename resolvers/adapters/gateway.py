"""The card payment gateway, behind an interface.

tradecert never sees a card number in production: the buyer pays on the provider's hosted
page (``paymentUrl``), and the provider tells us the outcome in a **signed notification**
(``POST /payments/notify``, HMAC-SHA256 over ``"<timestamp>.<body>"`` with the shared
secret ``TRADECERT_PAYMENT_SECRET``). A real provider plugs in by implementing
``PaymentGateway`` (open and cancel a hosted session) and by its notifications being
translated into ``GatewayEvent`` — docs/payments.md says how.

This repository ships only ``SandboxGateway``, which behaves like a provider: its own
state (``sandbox_gateway_sessions``), a hosted HTML card page mounted at
``/sandbox-gateway/pay/{session}`` (pages/sandbox_gateway.py), 5-minute sessions checked
when the card is posted, test cards (``4111111111111111`` approves; ``DECLINED_CARDS`` are
refused, each with its reason), and signed notifications delivered to the merchant's
notification handler — the same function the HTTP endpoint calls. No real provider is
contacted.

A declined card does not end the session: like Epsilon's, GMO's or Stripe Checkout's
page, the hosted page shows the reason and takes another card until the window closes.
The decline goes to the sandbox's attempt log (``sandbox_gateway_attempts``, what a
provider's merchant console lists), not to the merchant: there is nothing for it to do,
as its payment stays open. Only a charge, the session's one outcome, is notified.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from sqlalchemy import select, update

from persistence.models import SandboxGatewayAttempt, SandboxGatewaySession
from resolvers.core.context import Services
from resolvers.core.settings import Settings

SIGNATURE_HEADER = "tradecert-signature"
SIGNATURE_TOLERANCE = dt.timedelta(minutes=10)  # a notification older than this is refused (replay window)


@dataclass(frozen=True)
class HostedSession:
    session_id: str
    payment_url: str


class PaymentGateway(Protocol):
    async def open_session(self, services: Services, *, reference: str, amount: int, description: str,
                           expires_at: dt.datetime) -> HostedSession:
        """A hosted payment page for ``amount`` yen, closing at ``expires_at``."""

    async def cancel_session(self, services: Services, session_id: str) -> None:
        """Close the hosted page (the order was cancelled); a charge already made still notifies."""


class GatewayNotConfigured(ValueError):
    """No usable card gateway is configured; the one-line message says what to set."""


def gateway_of(services: Services) -> PaymentGateway:
    """The gateway of this process: one plugged into ``services``, else the one
    ``TRADECERT_PAYMENT_GATEWAY`` names (``GATEWAYS``)."""
    return gateway_for(services.settings, services.gateway)


def gateway_for(settings: Settings, gateway: PaymentGateway | None = None) -> PaymentGateway:
    """`serve` and ``create_app`` ask this at start-up, so a bad configuration refuses to
    start (one line) rather than failing a payment."""
    if gateway is None:
        make = GATEWAYS.get(settings.payment_gateway)
        if make is None:
            raise GatewayNotConfigured(
                f"TRADECERT_PAYMENT_GATEWAY={settings.payment_gateway!r} is not a gateway of this build "
                f"(known: {', '.join(GATEWAYS)}; docs/payments.md says how to plug one in)")
        gateway = make()
    if (isinstance(gateway, SandboxGateway) and settings.environment == "production"
            and not settings.allow_sandbox_gateway_in_production):
        # its hosted page is served by this app and its test card 4111111111111111 pays
        raise GatewayNotConfigured(
            "production refuses the sandbox card gateway (its test card pays for real coupons): set "
            "TRADECERT_PAYMENT_GATEWAY to a real provider, or TRADECERT_ALLOW_SANDBOX_GATEWAY_IN_PRODUCTION=1 "
            "for a staging system")
    return gateway


# --------------------------------------------------------------------------- signatures


def sign(secret: str, body: bytes, at: dt.datetime) -> str:
    timestamp = int(at.timestamp())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str | None, now: dt.datetime) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and is not older than the tolerance."""
    if not header:
        return False
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parts.get("v1", "")):
        return False
    return abs(now - dt.datetime.fromtimestamp(timestamp, dt.UTC)) <= SIGNATURE_TOLERANCE


# --------------------------------------------------------------------------- card checks


BRANDS = (  # (brand, number pattern, lengths) — what the hosted page accepts, as the seed's page lists
    ("VISA", re.compile(r"4"), (16,)),
    ("Mastercard", re.compile(r"5[1-5]|2(2[2-9]|[3-6]\d|7[01]|720)"), (16,)),
    ("JCB", re.compile(r"35(2[89]|[3-8]\d)"), (16,)),
    ("American Express", re.compile(r"3[47]"), (15,)),
    ("Diners Club", re.compile(r"3(0[0-5]|6|8|9)"), (14,)),
)


@dataclass(frozen=True)
class Decline:
    """Why the issuer refused a card: a code (the provider's) and the words its page shows."""

    code: str
    reason: str


# the sandbox's cards that the issuer refuses (the numbers of Stripe's test cards)
DECLINED_CARDS = {
    "4000000000000002": Decline("card_declined", "カード会社により承認されませんでした。"),
    "4000000000009995": Decline("insufficient_funds", "ご利用可能額を超えています。"),
    "4000000000000069": Decline("expired_card", "カード会社の記録ではこのカードは有効期限切れです。"),
}


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def brand_of(number: str) -> str | None:
    for brand, pattern, lengths in BRANDS:
        if pattern.match(number) and len(number) in lengths:
            return brand
    return None


def check_card(form: dict[str, str], today: dt.date) -> tuple[dict[str, str], dict[str, str]]:
    """(clean values, errors by field) for the hosted page's four fields."""
    errors: dict[str, str] = {}
    number = (form.get("card_number") or "").replace(" ", "")
    if not re.fullmatch(r"\d{14,16}", number):
        errors["card_number"] = "カード番号は半角数字14〜16桁、ハイフンなしで入力してください。"
    elif brand_of(number) is None or not luhn_ok(number):
        errors["card_number"] = "このカード番号はご利用いただけません (VISA / Mastercard / JCB / American Express / Diners Club)。"
    month_raw, year_raw = (form.get("expiry_month") or "").strip(), (form.get("expiry_year") or "").strip()
    if not (month_raw.isdigit() and 1 <= int(month_raw) <= 12):
        errors["expiry_month"] = "有効期限の月を1〜12で入力してください。"
    if not (year_raw.isdigit() and len(year_raw) == 4):
        errors["expiry_year"] = "有効期限の年を西暦4桁で入力してください。"
    elif "expiry_month" not in errors and (int(year_raw), int(month_raw)) < (today.year, today.month):
        errors["expiry_year"] = "有効期限が切れています。"
    holder = (form.get("holder") or "").strip()
    if not re.fullmatch(r"[A-Za-z][A-Za-z .'-]{0,44}", holder):
        errors["holder"] = "カード名義人を半角英字で入力してください (45文字以内)。"
    return {"card_number": number, "expiry_month": month_raw, "expiry_year": year_raw, "holder": holder}, errors


# --------------------------------------------------------------------------- the sandbox


class SandboxStatus(StrEnum):
    """A sandbox session (sandbox_gateway_sessions.status), and what paying on its page did."""

    OPEN = "OPEN"
    PAID = "PAID"
    DECLINED = "DECLINED"  # an attempt (sandbox_gateway_attempts); a session only before issue 12
    EXPIRED = "EXPIRED"
    CLOSED = "CLOSED"  # only as the answer to a payment: the session was no longer open (never stored)


@dataclass(frozen=True)
class Charge:
    """What posting a card did: PAID (with the event to notify), DECLINED (why; the
    session stays open), EXPIRED or CLOSED."""

    status: SandboxStatus
    event: bytes | None = None
    decline: Decline | None = None


class SandboxGateway:
    """A provider in this process: sessions in its own table, the hosted page in pages/sandbox_gateway."""

    async def open_session(self, services: Services, *, reference: str, amount: int, description: str,
                           expires_at: dt.datetime) -> HostedSession:
        session_id = "sbx_" + secrets.token_urlsafe(24)
        async with services.db.write() as session:
            session.add(SandboxGatewaySession(
                id=session_id, merchant_reference=reference, amount=amount, description=description, status=SandboxStatus.OPEN,
                created_at=services.clock.now(), expires_at=expires_at))
        return HostedSession(session_id, f"{services.settings.public_url}/sandbox-gateway/pay/{session_id}")

    async def cancel_session(self, services: Services, session_id: str) -> None:
        async with services.db.write() as session:
            await session.execute(update(SandboxGatewaySession).where(
                SandboxGatewaySession.id == session_id, SandboxGatewaySession.status == SandboxStatus.OPEN)
                .values(status=SandboxStatus.EXPIRED))

    async def get(self, services: Services, session_id: str) -> SandboxGatewaySession | None:
        async with services.db.read() as session:
            return await session.get(SandboxGatewaySession, session_id)

    async def pay(self, services: Services, session_id: str, card: dict[str, str]) -> Charge:
        """Charge a checked card. The session is settled once, by a charge (conditional
        UPDATE); a declined card is logged and leaves it open for another card until it
        expires. The expiry is the gateway's own."""
        now = services.clock.now()
        number = card["card_number"]
        brand, last4 = brand_of(number), number[-4:]
        async with services.db.write() as session:
            row = await session.get(SandboxGatewaySession, session_id)
            if row is None or row.status != SandboxStatus.OPEN:
                return Charge(SandboxStatus.CLOSED)
            if now > row.expires_at:
                await session.execute(update(SandboxGatewaySession).where(
                    SandboxGatewaySession.id == session_id, SandboxGatewaySession.status == SandboxStatus.OPEN)
                    .values(status=SandboxStatus.EXPIRED))
                return Charge(SandboxStatus.EXPIRED)
            decline = DECLINED_CARDS.get(number)
            if decline is not None:
                session.add(SandboxGatewayAttempt(session_id=session_id, attempted_at=now, outcome=SandboxStatus.DECLINED,
                                                  decline_code=decline.code, brand=brand, last4=last4))
                return Charge(SandboxStatus.DECLINED, decline=decline)
            charge_id = "ch_" + secrets.token_hex(12)
            event = {
                "id": "evt_" + secrets.token_hex(12), "type": "charge.succeeded",
                "session": session_id, "reference": row.merchant_reference, "amount": row.amount,
                "chargeId": charge_id, "brand": brand, "last4": last4, "at": now.isoformat(),
            }
            body = json.dumps(event, separators=(",", ":")).encode()
            settled = await session.scalar(
                update(SandboxGatewaySession).where(SandboxGatewaySession.id == session_id,
                                                    SandboxGatewaySession.status == SandboxStatus.OPEN)
                .values(status=SandboxStatus.PAID, charge_id=charge_id, brand=brand, last4=last4,
                        holder=card["holder"], paid_at=now, notification=body.decode())
                .returning(SandboxGatewaySession.id))
            if settled is None:  # a second tab posted first
                return Charge(SandboxStatus.CLOSED)
            session.add(SandboxGatewayAttempt(session_id=session_id, attempted_at=now, outcome=SandboxStatus.PAID,
                                              brand=brand, last4=last4))
        return Charge(SandboxStatus.PAID, body)

    async def deliver(self, services: Services, session_id: str, body: bytes) -> str:
        """Send the signed event to the merchant (in process: the handler behind
        POST /payments/notify) and remember that it was acknowledged."""
        if services.receive_notification is None:
            raise RuntimeError("no notification receiver is wired (tradecert/composition.py)")
        now = services.clock.now()
        outcome = await services.receive_notification(services, body, sign(services.settings.payment_secret, body, now))
        async with services.db.write() as session:
            await session.execute(update(SandboxGatewaySession).where(SandboxGatewaySession.id == session_id)
                                  .values(delivered_at=now))
        return outcome

    async def redeliver(self, services: Services) -> str:
        """Events not yet acknowledged go again (a provider retries its webhooks)."""
        async with services.db.read() as session:
            rows = (await session.execute(select(SandboxGatewaySession.id, SandboxGatewaySession.notification).where(
                SandboxGatewaySession.notification.is_not(None), SandboxGatewaySession.delivered_at.is_(None)))).all()
        for session_id, body in rows:
            await self.deliver(services, session_id, body.encode())
        return f"{len(rows)} notification(s) redelivered"


GATEWAYS: dict[str, Callable[[], PaymentGateway]] = {"sandbox": SandboxGateway}  # TRADECERT_PAYMENT_GATEWAY → adapter; a provider adds itself
