"""SQLAlchemy models. Constraints that guard correctness live in the database (CHECK,
partial unique indexes), so a bug above cannot write a state the domain forbids.

The Alembic migrations in persistence/migrations are the source of the schema; these
models mirror them (a test compares the two).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timestamps stored in UTC and always returned timezone-aware (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime written to the database; use the clock")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Chamber(Base):
    """商工会議所: a chamber of commerce, 4-digit code (Osaka = 2701)."""

    __tablename__ = "chambers"
    __table_args__ = (CheckConstraint("length(code) = 4", name="code_length"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(4), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class TradeRegistration(Base):
    """貿易登録: an applicant (申請者) or agent (代行業者) registered with one chamber."""

    __tablename__ = "trade_registrations"
    __table_args__ = (
        CheckConstraint("kind IN ('APPLICANT', 'AGENT')", name="kind"),
        CheckConstraint("length(number) = 10", name="number_length"),
        CheckConstraint("valid_until IS NULL OR valid_until >= valid_from", name="validity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(10), unique=True)
    chamber_id: Mapped[int] = mapped_column(ForeignKey("chambers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date | None] = mapped_column(Date)
    allows_bank_transfer: Mapped[bool] = mapped_column(Boolean, default=False)
    allows_card: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # 退会: its IDs can no longer log in


class RegistrationMembership(Base):
    """Membership history: the status in force at a moment decides prices.
    At most one open period (valid_until IS NULL) per registration."""

    __tablename__ = "registration_memberships"
    __table_args__ = (
        CheckConstraint("membership IN ('MEMBER', 'NON_MEMBER')", name="membership"),
        CheckConstraint("valid_until IS NULL OR valid_until > valid_from", name="period"),
        Index(
            "uq_registration_memberships_open",
            "registration_id",
            unique=True,
            sqlite_where=text("valid_until IS NULL"),
            postgresql_where=text("valid_until IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("trade_registrations.id"), index=True)
    membership: Mapped[str] = mapped_column(String(16))
    valid_from: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Account(Base):
    """Every kind of login: eCO admin/signer/sub-ID and chamber staff (with a chamber),
    NACCS office and center accounts (without)."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('ADMIN', 'SIGNER', 'SUB', 'CHAMBER_STAFF', 'NACCS_OFFICE', 'NACCS_CENTER')", name="kind"
        ),
        CheckConstraint("status IN ('CREATED', 'NOTIFIED', 'ACTIVE', 'DELETED')", name="status"),
        CheckConstraint(
            "(kind IN ('ADMIN', 'SIGNER', 'SUB') AND registration_id IS NOT NULL AND chamber_id IS NOT NULL)"
            " OR (kind = 'CHAMBER_STAFF' AND registration_id IS NULL AND chamber_id IS NOT NULL)"
            " OR (kind IN ('NACCS_OFFICE', 'NACCS_CENTER') AND registration_id IS NULL AND chamber_id IS NULL)",
            name="belongs",
        ),
        CheckConstraint("kind = 'SUB' OR generated_by_id IS NULL", name="generated_only_sub"),
        Index(
            "uq_accounts_chamber_username",
            "chamber_id",
            "username",
            unique=True,
            sqlite_where=text("chamber_id IS NOT NULL"),
            postgresql_where=text("chamber_id IS NOT NULL"),
        ),
        Index(
            "uq_accounts_naccs_username",
            "username",
            unique=True,
            sqlite_where=text("chamber_id IS NULL"),
            postgresql_where=text("chamber_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    username: Mapped[str] = mapped_column(String(64))
    chamber_id: Mapped[int | None] = mapped_column(ForeignKey("chambers.id"))
    registration_id: Mapped[int | None] = mapped_column(ForeignKey("trade_registrations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    generated_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # sub-IDs: notification (通知) and activation; the e-mail is locked once notified
    notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    activation_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    target_registration_id: Mapped[int | None] = mapped_column(ForeignKey("trade_registrations.id"))
    # signers beyond the limit: the chamber's reason
    limit_reason: Mapped[str | None] = mapped_column(String(500))


class JobLease(Base):
    """One row per job: a host runs a job only while it holds the lease (conditional
    UPDATE), so jobs are safe to run on several hosts at once."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128))
    leased_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[str | None] = mapped_column(String(16))
    last_message: Mapped[str | None] = mapped_column(String(2000))
    last_succeeded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # a day's run counts only once it finished ok


class Session(Base):
    """A login session. Only the SHA-256 of the token is stored; the token itself is
    shown to the client once, at login."""

    __tablename__ = "sessions"
    __table_args__ = (CheckConstraint("absolute_expires_at >= created_at", name="expiry"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    absolute_expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))


class LoginThrottle(Base):
    """Failed logins per login name (chamber code + ID), whether or not the ID exists,
    so throttling tells nothing about which IDs exist."""

    __tablename__ = "login_throttles"
    __table_args__ = (CheckConstraint("failures >= 0", name="failures"),)

    login_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Who did what: the acting ID and the responsible signer (for a sub-ID, the signer
    that generated it), the action, its target, when, and the request id."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    responsible_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    chamber_id: Mapped[int | None] = mapped_column(ForeignKey("chambers.id"), index=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(128))
    request_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(2000))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))  # the request came with this key (0022)


class ApiKey(Base):
    """An API key of a signer or sub-ID (migration 0022): only the SHA-256 of the secret is
    stored, with a visible prefix; revoked rather than deleted, so audit rows keep naming it."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("expires_at IS NULL OR expires_at > created_at", name="expiry"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    registration_id: Mapped[int | None] = mapped_column(ForeignKey("trade_registrations.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))


class ActivationToken(Base):
    """A sub-ID activation link: only the SHA-256 of the token is stored; single use,
    consumed by a conditional UPDATE … WHERE used_at IS NULL."""

    __tablename__ = "activation_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class OutboxMail(Base):
    """Every mail, written in the transaction of the change that causes it, then
    delivered over SMTP by the mail-delivery job (with retries and backoff)."""

    __tablename__ = "mail_outbox"
    __table_args__ = (
        CheckConstraint("status IN ('PENDING', 'SENT', 'FAILED')", name="status"),
        CheckConstraint("attempts >= 0", name="attempts"),
        Index("ix_mail_outbox_pending", "next_attempt_at", sqlite_where=text("status = 'PENDING'"),
              postgresql_where=text("status = 'PENDING'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(64))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(400))
    body: Mapped[str] = mapped_column(String(20000))
    status: Mapped[str] = mapped_column(String(16), default="PENDING")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(2000))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))


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


class Counter(Base):
    """Gapless named numbers (certificate, card payment and NACCS numbers): one upsert
    ``… DO UPDATE SET value = value + 1 RETURNING value``, whose row lock holds until the
    transaction ends, so a rolled-back number is given back (resolvers/core/counters.py)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class ReceiptNumber(Base):
    """Receipt numbers (発給受付番号), gaps allowed, so no row every submission must lock.
    PostgreSQL draws ``nextval('receipt_numbers_id_seq')`` and inserts nothing; SQLite
    inserts a row (AUTOINCREMENT never hands out an id twice, and the insert is undone with
    its unit of work)."""

    __tablename__ = "receipt_numbers"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)


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


class NaccsOffice(Base):
    """A NACCS contract holder's office (事業所); its login is a NACCS_OFFICE account."""

    __tablename__ = "naccs_offices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str] = mapped_column(String(100))
    contact_email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class NaccsUserId(Base):
    """利用者ID = 5-character user code + 3-character identification number (unique together)."""

    __tablename__ = "naccs_user_ids"
    __table_args__ = (Index("uq_naccs_user_ids_code", "user_code", "identification_number", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("naccs_offices.id"), index=True)
    user_code: Mapped[str] = mapped_column(String(5))
    identification_number: Mapped[str] = mapped_column(String(3))
    industries: Mapped[str] = mapped_column(String(400))  # JSON list of industry names
    single_sign_on: Mapped[bool] = mapped_column(Boolean, default=False)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("naccs_applications.id"))
    # the issued password, Fernet-encrypted, kept only during the viewing window
    password_encrypted: Mapped[str | None] = mapped_column(String(400))
    password_destroyed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class NaccsTerminal(Base):
    """論理端末 and its digital certificate (valid a year from issue)."""

    __tablename__ = "naccs_terminals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("naccs_offices.id"), index=True)
    name: Mapped[str] = mapped_column(String(20), unique=True)
    area: Mapped[str] = mapped_column(String(10))
    equipment: Mapped[str] = mapped_column(String(40))
    issued_on: Mapped[dt.date] = mapped_column(Date)


class NaccsApplication(Base):
    """A user-code addition (変更申込) or a digital-certificate reissue; every transition is a
    conditional UPDATE on its state."""

    __tablename__ = "naccs_applications"
    __table_args__ = (
        CheckConstraint("kind IN ('USER_CODE_ADDITION', 'CERTIFICATE_REISSUE')", name="kind"),
        CheckConstraint("state IN ('SUBMITTED', 'CLARIFICATION_REQUESTED', 'APPROVED', 'COMPLETED', 'WITHDRAWN')",
                        name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("naccs_offices.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    state: Mapped[str] = mapped_column(String(24), index=True)
    receipt_number: Mapped[str] = mapped_column(String(12), unique=True)
    desired_date: Mapped[dt.date] = mapped_column(Date)
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(1000))
    contact: Mapped[str] = mapped_column(String(2000))  # JSON
    details: Mapped[str] = mapped_column(String(8000))  # JSON: user codes or terminal names
    clarification: Mapped[str | None] = mapped_column(String(2000))
    password_viewable_until: Mapped[dt.date | None] = mapped_column(Date)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class NaccsNotice(Base):
    """新着情報 of an office, written in the same transaction as the event it reports."""

    __tablename__ = "naccs_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("naccs_offices.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    category: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(String(1000))


class RateLimit(Base):
    """Attempts in the current window per limited subject — a client address or a target
    such as a certificate number or an activation link (resolvers/ratelimit.py). Keys of
    targets are hashed; an expired window is reset by the next attempt or pruned."""

    __tablename__ = "rate_limits"
    __table_args__ = (CheckConstraint("attempts >= 0", name="attempts"),)

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    window_ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)



class RulesVersion(Base):
    """A rules version as it went live (migration 0019): its content hash, the first time a
    server loaded it, and its files (JSON: file name → text). Append-only: written once,
    never changed; the history that in-place edits of past rule versions are checked against."""

    __tablename__ = "rules_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    went_live_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    files: Mapped[str] = mapped_column(Text)  # JSON


class RulesCorrection(Base):
    """A correction of a rules version in force that turned out wrong (migration 0027,
    issue 20): from ``corrected_at`` the rules ``version`` (a row of ``rules_versions``)
    replaces ``corrects`` (the versions whose rows it rewrites, comma-separated), decided by
    ``corrected_by`` for ``reason``. Append-only; the history guard reads the files from
    the newest correction on, and records priced under ``corrects`` keep naming it."""

    __tablename__ = "rules_corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    corrects: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    corrected_by: Mapped[str] = mapped_column(String(100))
    corrected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

# Set-based reconciliation (issue 11, migration 0017): a lot's allocations by lot (SQLite
# checks them when an INSERT … SELECT adds lots), and the deposits not yet applied.
Index("ix_coupon_entry_lots_lot_id", CouponEntryLot.lot_id)
Index("ix_bank_deposits_unprocessed", BankDeposit.id, sqlite_where=text("processed_at IS NULL"),
      postgresql_where=text("processed_at IS NULL"))


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
