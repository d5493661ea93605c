"""Webhook endpoints (a signer registers them for its registration) and the outbox of events.

``emit`` writes one delivery per enabled endpoint of the registration that subscribed to
the event, **in the caller's transaction**: the event exists exactly when the change does
(a refused submission writes none), and nothing is sent from the request — the
``webhook-delivery`` job sends it (resolvers/webhooks/delivery.py). Each delivery holds the
exact body bytes; the signature is computed when it is sent.

Use cases here are one unit of work each, like every other (docs/decisions.md).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from persistence import locks
from persistence.models import Application, CouponPurchase, WebhookDelivery, WebhookEndpoint
from resolvers.core import ratelimit
from resolvers.core.clock import TOKYO
from resolvers.core.context import Context, Services
from resolvers.core.errors import ErrorCode, UserFailure
from resolvers.core.messages import Words
from resolvers.core.sealing import fernet
from resolvers.identity.actor import Viewer, audit, authorize, require_viewer
from resolvers.webhooks import destinations, signatures
from resolvers.webhooks import messages as words
from resolvers.webhooks.names import OPEN_STATUSES, WebhookDeliveryStatus, WebhookEvent
from rules.limits import limit

SECRET_PREFIX = signatures.PREFIX


# --------------------------------------------------------------------------- the outbox


def global_id(type_name: str, pk: int) -> str:
    """The GraphQL global id of a row (as schema/identity.py's ``to_global_id`` makes it), so
    a receiver can ask ``node(id:)`` for the object the event names."""
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def body(event_id: str, event: WebhookEvent, at: dt.datetime, data: dict[str, Any]) -> str:
    """The JSON a receiver gets, compact and UTF-8 (Japanese stays readable)."""
    return json.dumps({"id": event_id, "event": event.value, "createdAt": at.astimezone(TOKYO).isoformat(),
                       "data": data}, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Event:
    """One change to report: what happened, to whose registration, and the object's data."""

    event: WebhookEvent
    registration_id: int
    data: dict[str, Any]


def _subscribed(events: str, event: WebhookEvent) -> bool:
    return event.value in events.split(",")


async def _endpoints_of(tx: AsyncSession, registration_ids: Iterable[int]) -> dict[int, list[tuple[int, str, bool]]]:
    """Endpoints not deleted, by registration: (endpoint id, its events, disabled by the
    delivery job)."""
    ids = sorted(set(registration_ids))
    if not ids:
        return {}
    rows = (await tx.execute(
        select(WebhookEndpoint.registration_id, WebhookEndpoint.id, WebhookEndpoint.events,
               WebhookEndpoint.suspended_at)
        .where(WebhookEndpoint.registration_id.in_(ids), WebhookEndpoint.disabled_at.is_(None))
        .order_by(WebhookEndpoint.id))).all()
    found: dict[int, list[tuple[int, str, bool]]] = {}
    for registration_id, endpoint_id, events, suspended_at in rows:
        found.setdefault(registration_id, []).append((endpoint_id, events, suspended_at is not None))
    return found


def _outbox_row(endpoint_id: int, suspended: bool, item: Event, event_id: str, payload: str,
                now: dt.datetime) -> dict[str, Any]:
    """A delivery to send — or, for an endpoint the delivery job disabled, one logged FAILED
    at once ("endpoint disabled"), which ``redeliverWebhook`` can send once it is enabled."""
    row: dict[str, Any] = {"endpoint_id": endpoint_id, "event": item.event.value, "event_id": event_id,
                           "payload": payload, "status": WebhookDeliveryStatus.PENDING.value, "attempts": 0,
                           "created_at": now, "next_attempt_at": now}
    if suspended:
        row.update(status=WebhookDeliveryStatus.FAILED.value, next_attempt_at=None,
                   last_error=words.ENDPOINT_SUSPENDED_ERROR)
    return row


async def emit_many(tx: AsyncSession, events: Sequence[Event], now: dt.datetime) -> int:
    """Queue ``events`` for every enabled endpoint subscribed to them, in the caller's
    transaction: one SELECT of endpoints and one INSERT however many events. Returns the
    number of deliveries written."""
    if not events:
        return 0
    endpoints = await _endpoints_of(tx, (e.registration_id for e in events))
    rows: list[dict[str, Any]] = []
    for item in events:
        listening = [(endpoint_id, suspended) for endpoint_id, names, suspended in endpoints.get(item.registration_id, [])
                     if _subscribed(names, item.event)]
        if not listening:
            continue
        event_id = f"evt_{uuid.uuid4().hex}"  # one per change: the same in every endpoint's body and in a redelivery
        payload = body(event_id, item.event, now, item.data)
        rows.extend(_outbox_row(endpoint_id, suspended, item, event_id, payload, now)
                    for endpoint_id, suspended in listening)
    if rows:
        await tx.execute(insert(WebhookDelivery), rows)
    return len(rows)


async def emit(tx: AsyncSession, event: WebhookEvent, registration_id: int, data: dict[str, Any], now: dt.datetime) -> int:
    """Queue one event (see ``emit_many``)."""
    return await emit_many(tx, [Event(event, registration_id, data)], now)


async def emit_application(tx: AsyncSession, event: WebhookEvent, app_id: int, now: dt.datetime) -> int:
    """Queue ``event`` for an application, with its state as the caller's transaction left it.
    One statement when its registration has no endpoint (the common case: a submission pays
    nothing more for webhooks it does not use)."""
    row = (await tx.execute(
        select(Application.registration_id, Application.state, Application.receipt_number,
               Application.certificate_number)
        .join(WebhookEndpoint, WebhookEndpoint.registration_id == Application.registration_id)
        .where(Application.id == app_id, WebhookEndpoint.disabled_at.is_(None)).limit(1))).first()
    if row is None:  # no endpoint listens
        return 0
    data: dict[str, Any] = {"id": global_id("Application", app_id), "state": row.state,
                            "receiptNumber": row.receipt_number}
    if row.certificate_number is not None:
        data["certificateNumber"] = row.certificate_number
    return await emit(tx, event, row.registration_id, data, now)


async def emit_purchases(tx: AsyncSession, event: WebhookEvent, purchase_ids: Iterable[int], now: dt.datetime) -> int:
    """Queue ``event`` for each coupon order of ``purchase_ids`` (a reconciliation chunk may
    issue thousands: two statements to read, one to write). Only orders of registrations
    with an endpoint are read."""
    ids = sorted(set(purchase_ids))
    if not ids:
        return 0
    listening = select(WebhookEndpoint.registration_id).where(WebhookEndpoint.disabled_at.is_(None))
    rows = (await tx.execute(select(CouponPurchase.id, CouponPurchase.registration_id, CouponPurchase.status,
                                    CouponPurchase.order_number, CouponPurchase.coupons)
                             .where(CouponPurchase.id.in_(ids), CouponPurchase.registration_id.in_(listening))
                             .order_by(CouponPurchase.id))).all()
    return await emit_many(tx, [
        Event(event, r.registration_id, {"id": global_id("CouponPurchase", r.id), "state": r.status,
                                         "orderNumber": r.order_number, "coupons": r.coupons})
        for r in rows], now)


# --------------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class CreatedEndpoint:
    id: int
    secret: str  # shown once


def _allow_hosts(services: Services) -> frozenset[str]:
    return services.settings.webhook_allow_hosts


async def checked_url(services: Services, url: str) -> str:
    """The URL, or INVALID at ``["input","url"]`` saying what is wrong with it."""
    found = await destinations.check(url.strip(), _allow_hosts(services))
    if isinstance(found, Words):
        raise UserFailure(ErrorCode.INVALID, ["input", "url"], label=found)
    return found.target.url


def _registration_of(who: Viewer) -> int:
    if who.registration_id is None:  # the matrix refused before this for accounts without one
        raise UserFailure(ErrorCode.NOT_FOUND, ["input"])
    return who.registration_id


async def create_endpoint(ctx: Context, url: str, events: list[WebhookEvent]) -> CreatedEndpoint:
    """A signer registers an endpoint for its registration. The URL is checked (https, a
    public destination) before the unit of work — DNS is a network call; the secret is made
    here and shown once."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "webhook.manage", {"own_registration"})
    registration_id = _registration_of(who)
    if not events:
        raise UserFailure(ErrorCode.REQUIRED, ["input", "events"], label=words.EVENTS)
    checked = await checked_url(ctx.services, url)
    secret = signatures.new_secret()  # whsec_ + base64: Stripe's and Standard Webhooks' libraries read it as it is
    sealed = fernet(ctx.services).encrypt(secret.encode()).decode()
    now, today = ctx.clock.now(), ctx.clock.today()
    most = limit(ctx.services.rules.current, today, "webhook_endpoints_per_registration")
    names = ",".join(e.value for e in WebhookEvent if e in set(events))  # in the enum's order, once each
    async with ctx.services.db.write() as tx:
        await locks.registration(tx, registration_id)  # counted under the registration's lock
        count = await tx.scalar(select(func.count()).select_from(WebhookEndpoint).where(
            WebhookEndpoint.registration_id == registration_id, WebhookEndpoint.disabled_at.is_(None)))
        if (count or 0) >= most:
            raise UserFailure(ErrorCode.TOO_MANY_ITEMS, ["input", "url"], label=words.ENDPOINTS, limit=most)
        endpoint_id = await tx.scalar(insert(WebhookEndpoint).values(
            registration_id=registration_id, created_by_id=who.id, url=checked, events=names, secret_sealed=sealed,
            created_at=now).returning(WebhookEndpoint.id))
        assert endpoint_id is not None
        audit(tx, ctx, who.account, "webhook.create", target=f"WebhookEndpoint:{endpoint_id}", detail=checked[:2000])
    return CreatedEndpoint(endpoint_id, secret)


async def _own_endpoint(tx: AsyncSession, who: Viewer, endpoint_id: int, field: list[str]) -> WebhookEndpoint:
    endpoint = await tx.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.registration_id != who.registration_id:
        raise UserFailure(ErrorCode.NOT_FOUND, field)
    return endpoint


async def delete_endpoint(ctx: Context, endpoint_id: int) -> int:
    """Disable an endpoint: nothing more is queued for it, and its open deliveries end as
    FAILED ("endpoint deleted"). Its log stays readable."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "webhook.manage", {"own_registration"})
    now = ctx.clock.now()
    async with ctx.services.db.write() as tx:
        endpoint = await _own_endpoint(tx, who, endpoint_id, ["input", "endpointId"])
        disabled = await tx.scalar(update(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint.id, WebhookEndpoint.disabled_at.is_(None))
            .values(disabled_at=now).returning(WebhookEndpoint.id))
        if disabled is None:
            raise UserFailure(ErrorCode.INVALID_STATE, ["input", "endpointId"], state=words.ENDPOINT_DELETED)
        await tx.execute(update(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status.in_(OPEN_STATUSES))
            .values(status=WebhookDeliveryStatus.FAILED, next_attempt_at=None, last_error=words.ENDPOINT_DELETED_ERROR,
                    lease_holder=None, leased_until=None))
        audit(tx, ctx, who.account, "webhook.delete", target=f"WebhookEndpoint:{endpoint.id}")
    return endpoint_id


def redelivery_limit(services: Services) -> ratelimit.Limit:
    """``webhook_redeliveries_per_hour`` redeliveries per registration in a fixed hour."""
    most = limit(services.rules.current, services.clock.today(), "webhook_redeliveries_per_hour")
    return ratelimit.Limit("webhook:redeliver", most, dt.timedelta(hours=1))


async def redeliver(ctx: Context, delivery_id: int) -> int:
    """Send a delivery again, now: a new PENDING delivery with the same body (the same event
    id, so a receiver can tell a repeat) and a new 24-hour retry period; it is signed when
    sent. The endpoint must still be enabled (not deleted, not disabled by the delivery job).

    Each call — an alias too — counts against the registration's
    ``webhook_redeliveries_per_hour`` before anything else (resolvers/core/ratelimit.py, like
    the other throttles): over it, TOO_MANY_REQUESTS with the seconds to wait."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "webhook.manage", {"own_registration"})
    registration_id = _registration_of(who)
    await ratelimit.spend(ctx.services.db, ctx.clock.now(),
                          [ratelimit.Charge(redelivery_limit(ctx.services), str(registration_id), hashed=False)],
                          ["input", "deliveryId"])
    now = ctx.clock.now()
    async with ctx.services.db.write() as tx:
        original = await tx.get(WebhookDelivery, delivery_id)
        if original is None:
            raise UserFailure(ErrorCode.NOT_FOUND, ["input", "deliveryId"])
        endpoint = await _own_endpoint(tx, who, original.endpoint_id, ["input", "deliveryId"])
        if endpoint.disabled_at is not None:
            raise UserFailure(ErrorCode.INVALID_STATE, ["input", "deliveryId"], state=words.ENDPOINT_DELETED)
        if endpoint.suspended_at is not None:
            raise UserFailure(ErrorCode.INVALID_STATE, ["input", "deliveryId"], state=words.ENDPOINT_SUSPENDED)
        new_id = await tx.scalar(insert(WebhookDelivery).values(
            endpoint_id=endpoint.id, event=original.event, event_id=original.event_id, payload=original.payload,
            status=WebhookDeliveryStatus.PENDING, attempts=0, created_at=now, next_attempt_at=now,
            redelivery_of_id=original.id).returning(WebhookDelivery.id))
        assert new_id is not None
        audit(tx, ctx, who.account, "webhook.redeliver", target=f"WebhookDelivery:{original.id}", detail=str(new_id))
    return new_id


async def enable_endpoint(ctx: Context, endpoint_id: int) -> int:
    """Resume an endpoint the delivery job disabled (failing too long, or 410 Gone): new events
    are sent again and its failure count starts afresh; what failed meanwhile stays FAILED in
    the log (``redeliverWebhook`` sends it). An endpoint that is not disabled is left as it
    is; a deleted one is INVALID_STATE."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "webhook.manage", {"own_registration"})
    async with ctx.services.db.write() as tx:
        endpoint = await _own_endpoint(tx, who, endpoint_id, ["input", "endpointId"])
        if endpoint.disabled_at is not None:
            raise UserFailure(ErrorCode.INVALID_STATE, ["input", "endpointId"], state=words.ENDPOINT_DELETED)
        enabled = await tx.scalar(update(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint.id, WebhookEndpoint.suspended_at.is_not(None))
            .values(suspended_at=None, suspended_reason=None, failing_since=None).returning(WebhookEndpoint.id))
        if enabled is not None:
            audit(tx, ctx, who.account, "webhook.enable", target=f"WebhookEndpoint:{endpoint.id}")
    return endpoint_id

