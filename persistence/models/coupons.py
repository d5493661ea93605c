"""The coupon ledger (account, lots, entries and the lots each entry touched), refunds, and
coupon orders with what pays them by bank transfer (virtual accounts, deposits)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from persistence.models.base import Base, UTCDateTime


class CouponAccount(Base):
    """The coupon balance of an applicant registration, changed only together with a
    ledger entry; the database refuses a negative balance."""

    __tablename__ = "coupon_accounts"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance"),
        CheckConstraint("pending >= 0", name="pending"),
    )

    registration_id: Mapped[int] = mapped_column(ForeignKey("trade_registrations.id"), primary_key=True)
    balance: Mapped[int] = mapped_column(Integer, default=0)
    pending: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CouponLot(Base):
    """Coupons that came in together (a purchase line, a chamber addition), with the
    product, membership, price, Tokyo date and rules version they came under — so a
    refund is computed per lot, under the lot's own rules. Consumed oldest first."""

    __tablename__ = "coupon_lots"
    __table_args__ = (
        CheckConstraint("coupons_left >= 0 AND coupons_left <= coupons", name="left"),
        CheckConstraint("coupons > 0", name="coupons"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("trade_registrations.id"), index=True)
    product_code: Mapped[str | None] = mapped_column(String(32))  # None: a chamber addition (no price)
    membership: Mapped[str | None] = mapped_column(String(16))
    unit_price: Mapped[int | None] = mapped_column(Integer)
    coupons: Mapped[int] = mapped_column(Integer)
    coupons_left: Mapped[int] = mapped_column(Integer)
    acquired_on: Mapped[dt.date] = mapped_column(Date)
    rules_version: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CouponEntry(Base):
    """Append-only ledger. ``coupons`` is the signed change; ``external_key`` makes every
    external event (deposit, card charge, application submission …) apply once."""

    __tablename__ = "coupon_entries"
    __table_args__ = (
        CheckConstraint("kind IN ('PURCHASE', 'USE', 'RETURN', 'CHAMBER_OPERATION', 'REFUND')", name="kind"),
        CheckConstraint("balance_after IS NULL OR balance_after >= 0", name="balance_after"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("trade_registrations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    coupons: Mapped[int] = mapped_column(Integer)
    balance_after: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    note: Mapped[str | None] = mapped_column(String(500))
    receipt_number: Mapped[str | None] = mapped_column(String(16))
    external_key: Mapped[str] = mapped_column(String(128), unique=True)
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("coupon_purchases.id"))


class CouponEntryLot(Base):
    """Which lots an entry took coupons from (or gave them back to)."""

    __tablename__ = "coupon_entry_lots"
    __table_args__ = (CheckConstraint("coupons <> 0", name="coupons"),)

    entry_id: Mapped[int] = mapped_column(ForeignKey("coupon_entries.id"), primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("coupon_lots.id"), primary_key=True)
    coupons: Mapped[int] = mapped_column(Integer)


class Refund(Base):
    """Money the chamber owes back (membership change, withdrawal, over/under payment)."""

    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("amount >= 0", name="amount"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("trade_registrations.id"), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    external_key: Mapped[str] = mapped_column(String(128), unique=True)
    # the rules versions the amount was computed under (migration 0020): each priced lot's own
    # — comma-separated, in the order of the lots, when they came under several; None when
    # no priced lot was refunded, or for a refund recorded before 0020
    rules_version: Mapped[str | None] = mapped_column(String(500))


class CouponPurchase(Base):
    """An order of coupons. At most one AWAITING_PAYMENT per registration (partial unique
    index): a second concurrent order fails in the database, not in a race."""

    __tablename__ = "coupon_purchases"
    __table_args__ = (
        CheckConstraint("status IN ('AWAITING_PAYMENT', 'ISSUED', 'CANCELLED')", name="status"),
        CheckConstraint("method IN ('BANK_TRANSFER', 'CARD')", name="method"),
        CheckConstraint("coupons > 0 AND amount > 0", name="positive"),
        Index("uq_coupon_purchases_in_progress", "registration_id", unique=True,
              sqlite_where=text("status = 'AWAITING_PAYMENT'"), postgresql_where=text("status = 'AWAITING_PAYMENT'")),
        Index("uq_coupon_purchases_idempotency", "buyer_id", "idempotency_key", unique=True,
              sqlite_where=text("idempotency_key IS NOT NULL"), postgresql_where=text("idempotency_key IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_number: Mapped[str] = mapped_column(String(32), unique=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("trade_registrations.id"), index=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    method: Mapped[str] = mapped_column(String(16))
    membership: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(20))
    coupons: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(Integer)
    ordered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ordered_on: Mapped[dt.date] = mapped_column(Date)
    rules_version: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    deposited_amount: Mapped[int | None] = mapped_column(Integer)
    refund_due: Mapped[int | None] = mapped_column(Integer)
    notify_email: Mapped[str | None] = mapped_column(String(254))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    # SHA-256 of the request that used the key: the same key with another request is refused
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64))


class CouponPurchaseLine(Base):
    __tablename__ = "coupon_purchase_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purchase_id: Mapped[int] = mapped_column(ForeignKey("coupon_purchases.id"), index=True)
    product_code: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(Integer)
    coupons: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(Integer)


class VirtualAccount(Base):
    """A one-time bank account for one bank-transfer order (never reused)."""

    __tablename__ = "virtual_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purchase_id: Mapped[int] = mapped_column(ForeignKey("coupon_purchases.id"), unique=True)
    bank_code: Mapped[str] = mapped_column(String(4))
    bank_name: Mapped[str] = mapped_column(String(60))
    branch_code: Mapped[str] = mapped_column(String(3))
    branch_name: Mapped[str] = mapped_column(String(60))
    account_number: Mapped[str] = mapped_column(String(7), unique=True)
    holder: Mapped[str] = mapped_column(String(60))
    valid_until: Mapped[dt.date] = mapped_column(Date)


class BankDeposit(Base):
    """A deposit reported by the bank, applied at most once (unique deposit key: the bank's
    id, or the statement file's SHA-256 and line, or a new key for a hand entry without id)."""

    __tablename__ = "bank_deposits"
    __table_args__ = (CheckConstraint("amount > 0", name="amount"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deposit_key: Mapped[str] = mapped_column(String(128), unique=True)
    account_number: Mapped[str] = mapped_column(String(7), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    deposited_on: Mapped[dt.date] = mapped_column(Date)
    payer_name: Mapped[str | None] = mapped_column(String(120))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(32))
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("coupon_purchases.id"))
    # where it was recorded from: a statement file (name, SHA-256) and its line, or a person's entry
    source: Mapped[str | None] = mapped_column(String(200))
    source_line: Mapped[int | None] = mapped_column(Integer)


# Set-based reconciliation (issue 11, migration 0017): a lot's allocations by lot (SQLite
# checks them when an INSERT … SELECT adds lots), and the deposits not yet applied.
Index("ix_coupon_entry_lots_lot_id", CouponEntryLot.lot_id)
Index("ix_bank_deposits_unprocessed", BankDeposit.id, sqlite_where=text("processed_at IS NULL"),
      postgresql_where=text("processed_at IS NULL"))
