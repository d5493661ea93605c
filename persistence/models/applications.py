"""Applications for certificates (発給申請), their goods lines, and keyed bulk calls."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from persistence.models.base import Base, UTCDateTime

APPLICATION_STATES = ("DRAFT", "SUBMITTED", "ON_HOLD", "APPROVED", "ISSUED", "WITHDRAWN")


class Application(Base):
    """発給申請. Every state change is one conditional ``UPDATE … WHERE state = … RETURNING``;
    the fee, its rules version and the membership are fixed at the first submission."""

    __tablename__ = "applications"
    __table_args__ = (
        CheckConstraint("state IN ('DRAFT', 'SUBMITTED', 'ON_HOLD', 'APPROVED', 'ISSUED', 'WITHDRAWN')", name="state"),
        CheckConstraint("type IN ('ORIGIN_JAPANESE', 'ORIGIN_FOREIGN', 'INVOICE', 'SIGNATURE')", name="type"),
        CheckConstraint("fee_payment IN ('CARD', 'COUPON')", name="fee_payment"),
        CheckConstraint("state = 'DRAFT' OR receipt_number IS NOT NULL OR state = 'WITHDRAWN'", name="receipt"),
        CheckConstraint("receipt_number IS NULL OR fee IS NOT NULL", name="fee_fixed"),
        CheckConstraint("state <> 'ISSUED' OR certificate_number IS NOT NULL", name="issued_has_number"),
        CheckConstraint("coupon_uses >= 0", name="coupon_uses"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("trade_registrations.id"), index=True)
    agent_registration_id: Mapped[int | None] = mapped_column(ForeignKey("trade_registrations.id"))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    signer_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    type: Mapped[str] = mapped_column(String(20))
    signature_kind: Mapped[str | None] = mapped_column(String(40))
    destination_country: Mapped[str] = mapped_column(String(2))
    goods_category: Mapped[str] = mapped_column(String(100))
    invoice_number: Mapped[str] = mapped_column(String(50), index=True)
    exporter_name: Mapped[str] = mapped_column(String(200))
    consignee: Mapped[str | None] = mapped_column(String(300))
    transport: Mapped[str | None] = mapped_column(String(300))
    person_in_charge: Mapped[str | None] = mapped_column(String(100))
    fee_payment: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(12), index=True)
    receipt_number: Mapped[str | None] = mapped_column(String(9), unique=True)
    fee: Mapped[int | None] = mapped_column(Integer)
    fee_rules_version: Mapped[str | None] = mapped_column(String(32))
    rules_version: Mapped[str | None] = mapped_column(String(32))  # the rules (content hash) that fixed the fee
    fee_membership: Mapped[str | None] = mapped_column(String(16))
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    submitted_on: Mapped[dt.date | None] = mapped_column(Date)
    coupon_uses: Mapped[int] = mapped_column(Integer, default=0)
    hold_reason: Mapped[str | None] = mapped_column(String(1000))
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    issued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    paid_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    certificate_number: Mapped[str | None] = mapped_column(String(20), unique=True)
    access_code: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # in an open card checkout: set by a conditional UPDATE … WHERE checkout_payment_id IS NULL
    checkout_payment_id: Mapped[int | None] = mapped_column(ForeignKey("card_payments.id"))
    # the issued certificate's signed content (Ed25519 over the canonical JSON)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    signature: Mapped[str | None] = mapped_column(String(128))
    key_id: Mapped[str | None] = mapped_column(String(32))


class ApplicationGoods(Base):
    """A goods line of a certificate of origin: description, quantity, HS code, origin."""

    __tablename__ = "application_goods"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(500))
    quantity: Mapped[str] = mapped_column(String(60))
    hs_code: Mapped[str] = mapped_column(String(12))
    origin_country: Mapped[str] = mapped_column(String(2))


class BulkRequest(Base):
    """A ``createApplications`` / ``submitApplications`` call that came with an idempotency
    key (migration 0024): the key is the account's own, per kind of call; ``fingerprint``
    (SHA-256 of the input) tells a retry from a reuse of the key for other input."""

    __tablename__ = "bulk_requests"
    __table_args__ = (
        UniqueConstraint("account_id", "kind", "key"),
        CheckConstraint("kind IN ('CREATE', 'SUBMIT')", name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(8))
    key: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class BulkRequestItem(Base):
    """The outcome of one position of a keyed bulk call, written in the transaction that
    decided it: the application created or submitted (``outcome`` NULL), or the code that
    refused it with its errors (JSON: code, field, ja, en) to answer a replay word for word."""

    __tablename__ = "bulk_request_items"

    request_id: Mapped[int] = mapped_column(ForeignKey("bulk_requests.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    outcome: Mapped[str | None] = mapped_column(String(32))
    errors: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
