"""Webhook endpoints of a registration and their delivery outbox."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from persistence.models.base import Base, UTCDateTime

WEBHOOK_EVENTS = ("application.submitted", "application.on_hold", "application.approved", "application.issued",
                  "coupon_purchase.issued", "coupon_purchase.cancelled")


class WebhookEndpoint(Base):
    """A registration's webhook receiver (migration 0023): URL, events (comma-separated names)
    and the signing secret, Fernet-sealed (it must be read back to sign). Deleting one sets
    ``disabled_at``; its delivery log stays. ``failing_since``: the first failed attempt since
    it last answered 2xx; ``suspended_at``: the delivery job stopped sending to it (failing too
    long, or 410 Gone — migration 0026) until an admin enables it again."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("trade_registrations.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[str] = mapped_column(String(400))
    secret_sealed: Mapped[str] = mapped_column(String(400))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    failing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    suspended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    suspended_reason: Mapped[str | None] = mapped_column(String(200))


class WebhookDelivery(Base):
    """The webhook outbox: one row per event and endpoint, written in the transaction of the
    change, holding the exact body; the ``webhook-delivery`` job sends it (a per-row lease
    keeps two hosts from sending it at once) and records each attempt's outcome."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('PENDING', 'DELIVERED', 'RETRYING', 'FAILED')", name="status"),
        CheckConstraint("event IN (" + ", ".join(f"'{e}'" for e in WEBHOOK_EVENTS) + ")", name="event"),
        CheckConstraint("attempts >= 0", name="attempts"),
        CheckConstraint("status NOT IN ('PENDING', 'RETRYING') OR next_attempt_at IS NOT NULL", name="open_has_next"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
        Index("ix_webhook_deliveries_due", "next_attempt_at", sqlite_where=text("status IN ('PENDING', 'RETRYING')"),
              postgresql_where=text("status IN ('PENDING', 'RETRYING')")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str] = mapped_column(String(40))  # the body's "id": one per change, kept by a redelivery
    payload: Mapped[str] = mapped_column(Text)  # the body, byte for byte (UTF-8 JSON)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)  # None: no answer (timeout, refused, not sent)
    last_error: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    redelivery_of_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_deliveries.id"))
    lease_holder: Mapped[str | None] = mapped_column(String(64))
    leased_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
