"""Who may act: chambers, trade registrations and their membership history, accounts,
and what proves a login (sessions, API keys, activation links, the login throttle)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from persistence.models.base import Base, UTCDateTime


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
