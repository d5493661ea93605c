"""Card payments at the gateway, what each pays and its statements (利用明細), the cart,
and the sandbox gateway's own state."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from persistence.models.base import Base, UTCDateTime


class CardPayment(Base):
    """Our record of one card payment session at the gateway (a coupon order now; a cart of
    approved applications later). It is settled once: the conditional ``UPDATE … WHERE
    status = 'OPEN'`` that marks it paid is the only way in, and the charge id is unique."""

    __tablename__ = "card_payments"
    __table_args__ = (
        CheckConstraint("status IN ('OPEN', 'PAID', 'DECLINED', 'EXPIRED', 'CANCELLED')", name="status"),
        CheckConstraint("amount > 0", name="amount"),
        Index("uq_card_payments_idempotency", "payer_id", "idempotency_key", unique=True,
              sqlite_where=text("idempotency_key IS NOT NULL"), postgresql_where=text("idempotency_key IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(48), unique=True)  # ours, sent to the gateway
    payment_number: Mapped[str] = mapped_column(String(40), unique=True)  # クレジットカード決済番号
    purpose: Mapped[str] = mapped_column(String(24))
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("coupon_purchases.id"), unique=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("trade_registrations.id"), index=True)
    payer_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    gateway_session: Mapped[str] = mapped_column(String(64), unique=True)
    payment_url: Mapped[str] = mapped_column(String(400))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    rules_version: Mapped[str | None] = mapped_column(String(32))  # the rules in force when it started (statement tax)
    charge_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    brand: Mapped[str | None] = mapped_column(String(24))
    last4: Mapped[str | None] = mapped_column(String(4))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64))


class CardNotification(Base):
    """Every signed gateway notification we accepted, once (unique event id): replays are
    answered from here and change nothing."""

    __tablename__ = "card_notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    reference: Mapped[str] = mapped_column(String(48), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CardCartItem(Base):
    """An approved card application in an account's cart (カートに追加)."""

    __tablename__ = "card_cart_items"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), primary_key=True)
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CardPaymentItem(Base):
    """What one card payment pays: an application and its fixed fee (one 利用明細 each)."""

    __tablename__ = "card_payment_items"
    __table_args__ = (CheckConstraint("amount > 0", name="amount"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_payment_id: Mapped[int] = mapped_column(ForeignKey("card_payments.id"), index=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    amount: Mapped[int] = mapped_column(Integer)


class CardStatement(Base):
    """利用明細 and its 発行番号, given when the payment settles: one per paid application
    (``card_payment_item_id``) or one for a paid coupon order (the payment alone). Every
    kind draws from one table, so the unique number holds across kinds."""

    __tablename__ = "card_statements"
    __table_args__ = (
        Index("uq_card_statements_order_payment", "card_payment_id", unique=True,
              sqlite_where=text("card_payment_item_id IS NULL"), postgresql_where=text("card_payment_item_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)  # 発行番号
    card_payment_id: Mapped[int] = mapped_column(ForeignKey("card_payments.id"), index=True)
    card_payment_item_id: Mapped[int | None] = mapped_column(ForeignKey("card_payment_items.id"), unique=True)


class SandboxGatewaySession(Base):
    """The sandbox gateway's own state (what a real provider keeps on its side)."""

    __tablename__ = "sandbox_gateway_sessions"
    __table_args__ = (CheckConstraint("status IN ('OPEN', 'PAID', 'DECLINED', 'EXPIRED')", name="status"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    merchant_reference: Mapped[str] = mapped_column(String(48), unique=True)
    amount: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    charge_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    brand: Mapped[str | None] = mapped_column(String(24))
    last4: Mapped[str | None] = mapped_column(String(4))
    holder: Mapped[str | None] = mapped_column(String(60))
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    notification: Mapped[str | None] = mapped_column(String(2000))  # the body of the event sent to the merchant
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # acknowledged by the merchant


class SandboxGatewayAttempt(Base):
    """The sandbox gateway's attempt log: every card it tried to charge on a hosted page,
    declined or paid (what a provider's merchant console lists; the card number never)."""

    __tablename__ = "sandbox_gateway_attempts"
    __table_args__ = (CheckConstraint("outcome IN ('PAID', 'DECLINED')", name="outcome"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sandbox_gateway_sessions.id"), index=True)
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    decline_code: Mapped[str | None] = mapped_column(String(32))
    brand: Mapped[str | None] = mapped_column(String(24))
    last4: Mapped[str] = mapped_column(String(4))
