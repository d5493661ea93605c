"""Webhooks (issue 14): ``webhookEndpoints``, ``webhookDeliveries``, ``createWebhookEndpoint``,
``deleteWebhookEndpoint``, ``redeliverWebhook`` and their nodes.

Built from the views of resolvers/webhooks/queries.py. The signing secret appears once, in
``CreateWebhookEndpointPayload.secret``; no field shows it again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry

from resolvers.core.context import Context
from resolvers.core.errors import ErrorCode, UserFailure
from resolvers.webhooks import messages as words
from resolvers.webhooks import queries
from resolvers.webhooks import use_cases as webhooks
from schema.enums import WebhookDeliveryStatus, WebhookEvent
from schema.errors import UserError, run_mutation
from schema.identity import Node, NodeLoader, from_global_id, to_global_id
from schema.inputs import MAX_LIST_ITEMS, at_most
from schema.paging import PageInfo, encode_cursor, page_info, page_window

T = TypeVar("T")
P = TypeVar("P")


@strawberry.type(description="A receiver of the registration's webhooks: signed POSTs of the events it chose "
                             "(docs/api.md, \"Webhooks\").")
class WebhookEndpoint(Node):
    url: str
    events: list[WebhookEvent]
    created_at: dt.datetime
    disabled_at: dt.datetime | None = strawberry.field(description="When it was deleted: nothing is sent to it since.")
    failing_since: dt.datetime | None = strawberry.field(description=(
        "The first failed attempt since it last answered 2xx; null while it answers. Failing for "
        "`webhook_disable_after_days` (5) disables it (`suspendedAt`)."))
    suspended_at: dt.datetime | None = strawberry.field(description=(
        "When the delivery job disabled it — every attempt failed for `webhook_disable_after_days`, or it answered "
        "410 Gone; null while it is sent to. While disabled, events are logged FAILED (\"endpoint disabled\") "
        "and not sent; `enableWebhookEndpoint` resumes it."))
    suspended_reason: str | None = strawberry.field(description="Why it was disabled (English), while `suspendedAt` is set.")

    @classmethod
    def from_view(cls, view: queries.EndpointView) -> WebhookEndpoint:
        return cls(id=to_global_id("WebhookEndpoint", view.id), url=view.url, events=list(view.events),
                   created_at=view.created_at, disabled_at=view.disabled_at, failing_since=view.failing_since,
                   suspended_at=view.suspended_at, suspended_reason=view.suspended_reason)


@strawberry.type(description="One event sent (or to be sent) to one endpoint, with the outcome of its attempts.")
class WebhookDelivery(Node):
    event: WebhookEvent
    status: WebhookDeliveryStatus
    attempts: int
    last_status_code: int | None = strawberry.field(
        description="The HTTP status of the last answer; null when there was none (timeout, refused connection) or "
                    "nothing was sent.")
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    next_attempt_at: dt.datetime | None = strawberry.field(description="While PENDING or RETRYING: the next try.")
    last_error: str | None = strawberry.field(description="Why the last attempt failed, as recorded (English).")

    @classmethod
    def from_view(cls, view: queries.DeliveryView) -> WebhookDelivery:
        return cls(id=to_global_id("WebhookDelivery", view.id), event=view.event, status=view.status,
                   attempts=view.attempts, last_status_code=view.last_status_code, created_at=view.created_at,
                   delivered_at=view.delivered_at, next_attempt_at=view.next_attempt_at, last_error=view.last_error)


async def _endpoint_node(info: strawberry.Info[Context], pk: int) -> WebhookEndpoint | None:
    try:
        return WebhookEndpoint.from_view(await queries.endpoint(info.context, pk))
    except UserFailure:
        return None


async def _delivery_node(info: strawberry.Info[Context], pk: int) -> WebhookDelivery | None:
    try:
        return WebhookDelivery.from_view(await queries.delivery(info.context, pk))
    except UserFailure:
        return None


NODES: dict[str, NodeLoader] = {"WebhookEndpoint": _endpoint_node, "WebhookDelivery": _delivery_node}  # wired into Node lookup by schema/__init__.py


@strawberry.type
class WebhookDeliveryEdge:
    cursor: str
    node: WebhookDelivery


@strawberry.type
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    page_info: PageInfo
    total_count: int


def _pk(value: str, type_name: str, field: list[str]) -> int:
    decoded = from_global_id(value)
    if decoded is None or decoded[0] != type_name:
        raise UserFailure(ErrorCode.NOT_FOUND, field)
    return decoded[1]


@strawberry.type
class WebhooksQuery:
    @strawberry.field(description="Signer: the webhook endpoints of its registration, deleted ones included, oldest first.")
    async def webhook_endpoints(self, info: strawberry.Info[Context]) -> list[WebhookEndpoint]:
        return [WebhookEndpoint.from_view(v) for v in await queries.endpoints(info.context)]

    @strawberry.field(description="Signer: an endpoint's delivery log, newest first (redeliveries are new entries).")
    async def webhook_deliveries(self, info: strawberry.Info[Context], endpoint_id: strawberry.ID,
                                 first: int | None = None, after: str | None = None) -> WebhookDeliveryConnection:
        size, before = page_window("WebhookDelivery", first, after)
        # an id of no endpoint of the viewer's registration: NOT_FOUND, as for another registration's
        found, total, more = await queries.deliveries(info.context, _pk(endpoint_id, "WebhookEndpoint", ["endpointId"]),
                                                      size, before)
        edges = [WebhookDeliveryEdge(cursor=encode_cursor("WebhookDelivery", v.id), node=WebhookDelivery.from_view(v))
                 for v in found]
        return WebhookDeliveryConnection(edges=edges, page_info=page_info(edges, more), total_count=total)



@strawberry.input
class CreateWebhookEndpointInput:
    url: str = strawberry.field(description="https:// (a public address; docs/api.md says which hosts are refused), "
                                            "at most 2048 characters.")
    events: list[WebhookEvent] = strawberry.field(description="What to send; at least one.")


@strawberry.type
class CreateWebhookEndpointPayload:
    endpoint: WebhookEndpoint | None
    secret: str | None = strawberry.field(description="The signing secret, `whsec_` + base64: shown only here, once; "
                                                      "a receiver checks `Tradecert-Signature` (Stripe's scheme) or "
                                                      "`webhook-signature` (Standard Webhooks) with it.")
    errors: list[UserError]


@strawberry.input
class DeleteWebhookEndpointInput:
    endpoint_id: strawberry.ID


@strawberry.type
class DeleteWebhookEndpointPayload:
    endpoint: WebhookEndpoint | None
    errors: list[UserError]


@strawberry.input
class EnableWebhookEndpointInput:
    endpoint_id: strawberry.ID


@strawberry.type
class EnableWebhookEndpointPayload:
    endpoint: WebhookEndpoint | None
    errors: list[UserError]


@strawberry.input
class RedeliverWebhookInput:
    delivery_id: strawberry.ID


@strawberry.type
class RedeliverWebhookPayload:
    delivery: WebhookDelivery | None = strawberry.field(description="The new delivery (PENDING), sent by the next run "
                                                                    "of the delivery job.")
    errors: list[UserError]


async def _run(info: strawberry.Info[Context], call: Callable[[], Awaitable[T]], ok: Callable[[T], Awaitable[P]],
               failed: Callable[[list[UserError]], P]) -> P:
    """A use case, then its object read again by id after the write (inside ``run_mutation``,
    so a failure of either is the payload's errors)."""
    async def run() -> P:
        return await ok(await call())

    return await run_mutation(info, run, ok=lambda payload: payload, failed=failed)


@strawberry.type
class WebhooksMutation:
    @strawberry.mutation(description="Signer: register a webhook endpoint for its registration; the secret is shown once.")
    async def create_webhook_endpoint(self, info: strawberry.Info[Context],
                                      input: CreateWebhookEndpointInput) -> CreateWebhookEndpointPayload:
        async def call() -> webhooks.CreatedEndpoint:
            at_most(input.events, MAX_LIST_ITEMS, ["input", "events"], words.EVENTS)
            return await webhooks.create_endpoint(info.context, input.url, list(input.events))

        async def ok(created: webhooks.CreatedEndpoint) -> CreateWebhookEndpointPayload:
            view = await queries.endpoint(info.context, created.id, ["input", "url"])
            return CreateWebhookEndpointPayload(endpoint=WebhookEndpoint.from_view(view), secret=created.secret, errors=[])

        return await _run(info, call, ok,
                          lambda errors: CreateWebhookEndpointPayload(endpoint=None, secret=None, errors=errors))

    @strawberry.mutation(description="Signer: delete an endpoint of its registration; its pending deliveries end as "
                                     "FAILED and nothing more is sent to it. Its log stays.")
    async def delete_webhook_endpoint(self, info: strawberry.Info[Context],
                                      input: DeleteWebhookEndpointInput) -> DeleteWebhookEndpointPayload:
        field = ["input", "endpointId"]

        async def call() -> int:
            return await webhooks.delete_endpoint(info.context, _pk(input.endpoint_id, "WebhookEndpoint", field))

        async def ok(pk: int) -> DeleteWebhookEndpointPayload:
            view = await queries.endpoint(info.context, pk, field)
            return DeleteWebhookEndpointPayload(endpoint=WebhookEndpoint.from_view(view), errors=[])

        return await _run(info, call, ok, lambda errors: DeleteWebhookEndpointPayload(endpoint=None, errors=errors))

    @strawberry.mutation(description="Signer: resume an endpoint the delivery job disabled (`suspendedAt`): new "
                                     "events are sent again; what failed meanwhile can be sent with `redeliverWebhook`. "
                                     "An endpoint that is not disabled is returned unchanged; a deleted one is "
                                     "INVALID_STATE.")
    async def enable_webhook_endpoint(self, info: strawberry.Info[Context],
                                      input: EnableWebhookEndpointInput) -> EnableWebhookEndpointPayload:
        field = ["input", "endpointId"]

        async def call() -> int:
            return await webhooks.enable_endpoint(info.context, _pk(input.endpoint_id, "WebhookEndpoint", field))

        async def ok(pk: int) -> EnableWebhookEndpointPayload:
            view = await queries.endpoint(info.context, pk, field)
            return EnableWebhookEndpointPayload(endpoint=WebhookEndpoint.from_view(view), errors=[])

        return await _run(info, call, ok, lambda errors: EnableWebhookEndpointPayload(endpoint=None, errors=errors))

    @strawberry.mutation(description="Signer: send a delivery again now — a new delivery with the same body "
                                     "(the same `id`), signed when sent. At most `webhook_redeliveries_per_hour` (60) "
                                     "per registration an hour, aliases included: more is TOO_MANY_REQUESTS.")
    async def redeliver_webhook(self, info: strawberry.Info[Context], input: RedeliverWebhookInput) -> RedeliverWebhookPayload:
        field = ["input", "deliveryId"]

        async def call() -> int:
            return await webhooks.redeliver(info.context, _pk(input.delivery_id, "WebhookDelivery", field))

        async def ok(pk: int) -> RedeliverWebhookPayload:
            view = await queries.delivery(info.context, pk, field)
            return RedeliverWebhookPayload(delivery=WebhookDelivery.from_view(view), errors=[])

        return await _run(info, call, ok, lambda errors: RedeliverWebhookPayload(delivery=None, errors=errors))
