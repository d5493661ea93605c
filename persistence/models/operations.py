"""What runs the house rather than a domain: job leases, the audit log, the mail outbox,
numbering (counters, receipt numbers) and rate limits."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from persistence.models.base import Base, UTCDateTime


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


class RateLimit(Base):
    """Attempts in the current window per limited subject — a client address or a target
    such as a certificate number or an activation link (resolvers/ratelimit.py). Keys of
    targets are hashed; an expired window is reset by the next attempt or pruned."""

    __tablename__ = "rate_limits"
    __table_args__ = (CheckConstraint("attempts >= 0", name="attempts"),)

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    window_ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
