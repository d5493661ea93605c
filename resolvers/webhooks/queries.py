"""Reading webhook endpoints and their delivery log: plain frozen views, a fixed number of
statements whatever the page size. Only the viewer's registration is visible; another
registration's endpoint is NOT_FOUND, the same answer as an unknown one."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from persistence.models import WebhookDelivery, WebhookEndpoint
from resolvers.core.context import Context
from resolvers.core.errors import ErrorCode, UserFailure
from resolvers.core.paging import newest_first
from resolvers.identity.actor import Viewer, authorize, require_viewer
from resolvers.webhooks.names import WebhookDeliveryStatus, WebhookEvent


@dataclass(frozen=True)
class EndpointView:
    id: int
    url: str
    events: tuple[WebhookEvent, ...]
    created_at: dt.datetime
    disabled_at: dt.datetime | None
    failing_since: dt.datetime | None
    suspended_at: dt.datetime | None
    suspended_reason: str | None


@dataclass(frozen=True)
class DeliveryView:
    id: int
    endpoint_id: int
    event: WebhookEvent
    status: WebhookDeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    redelivery_of_id: int | None


def _endpoint(row: WebhookEndpoint) -> EndpointView:
    return EndpointView(id=row.id, url=row.url, events=tuple(WebhookEvent(e) for e in row.events.split(",") if e),
                        created_at=row.created_at, disabled_at=row.disabled_at, failing_since=row.failing_since,
                        suspended_at=row.suspended_at, suspended_reason=row.suspended_reason)


def _delivery(row: WebhookDelivery) -> DeliveryView:
    return DeliveryView(id=row.id, endpoint_id=row.endpoint_id, event=WebhookEvent(row.event),
                        status=WebhookDeliveryStatus(row.status), attempts=row.attempts,
                        last_status_code=row.last_status_code, last_error=row.last_error, created_at=row.created_at,
                        delivered_at=row.delivered_at, next_attempt_at=row.next_attempt_at,
                        redelivery_of_id=row.redelivery_of_id)


async def _viewer_allowed(ctx: Context) -> Viewer:
    who = await require_viewer(ctx)
    await authorize(ctx, who, "webhook.view", {"own_registration"})
    return who


async def endpoints(ctx: Context) -> list[EndpointView]:
    """The viewer's registration's endpoints, deleted ones included (their log stays), oldest first."""
    who = await _viewer_allowed(ctx)
    async with ctx.read() as session:
        rows = (await session.scalars(select(WebhookEndpoint).where(
            WebhookEndpoint.registration_id == who.registration_id).order_by(WebhookEndpoint.id))).all()
    return [_endpoint(r) for r in rows]


async def endpoint(ctx: Context, endpoint_id: int, field: list[str] | None = None) -> EndpointView:
    """One endpoint of the viewer's registration (NOT_FOUND otherwise)."""
    who = await _viewer_allowed(ctx)
    async with ctx.read() as session:
        row = await session.get(WebhookEndpoint, endpoint_id)
    if row is None or row.registration_id != who.registration_id:
        raise UserFailure(ErrorCode.NOT_FOUND, field or ["endpointId"])
    return _endpoint(row)


async def deliveries(ctx: Context, endpoint_id: int, first: int, before_id: int | None) -> tuple[list[DeliveryView], int, bool]:
    """An endpoint's delivery log, newest first: (deliveries, total, more)."""
    await endpoint(ctx, endpoint_id)
    rows, total, more = await newest_first(ctx, WebhookDelivery, WebhookDelivery.endpoint_id == endpoint_id,
                                           first, before_id)
    return [_delivery(r) for r in rows], total, more


async def delivery(ctx: Context, delivery_id: int, field: list[str] | None = None) -> DeliveryView:
    """One delivery of an endpoint of the viewer's registration (NOT_FOUND otherwise)."""
    who = await _viewer_allowed(ctx)
    async with ctx.read() as session:
        row = await session.get(WebhookDelivery, delivery_id)
        owner = None if row is None else await session.get(WebhookEndpoint, row.endpoint_id)
    if row is None or owner is None or owner.registration_id != who.registration_id:
        raise UserFailure(ErrorCode.NOT_FOUND, field or ["deliveryId"])
    return _delivery(row)
