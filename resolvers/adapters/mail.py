"""Mail: queued in the outbox within the transaction of the change that causes it, then
delivered over SMTP (``TRADECERT_SMTP_URL``) by the ``mail-delivery`` job, with retries
and exponential backoff. The outbox keeps every mail (docs/api.md)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from email.message import EmailMessage
from enum import StrEnum
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.db import Database
from persistence.models import OutboxMail
from resolvers.core.context import Services

log = logging.getLogger("tradecert.mail")

MAX_ATTEMPTS = 8
FIRST_RETRY = dt.timedelta(seconds=30)
LAST_RETRY = dt.timedelta(hours=1)
BATCH = 100


class OutboxStatus(StrEnum):
    """mail_outbox.status."""

    PENDING = "PENDING"  # waiting for its next attempt
    SENT = "SENT"
    FAILED = "FAILED"  # gave up after MAX_ATTEMPTS; kept for staff to see


def queue_mail(session: AsyncSession, now: dt.datetime, kind: str, to: str, subject: str, body: str, account_id: int | None = None) -> None:
    session.add(
        OutboxMail(
            created_at=now, kind=kind, to_address=to, subject=subject, body=body, status=OutboxStatus.PENDING,
            attempts=0, next_attempt_at=now, account_id=account_id,
        )
    )


def _smtp_target(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"TRADECERT_SMTP_URL must be smtp:// or smtps://, got {parts.scheme!r}")
    return {
        "hostname": parts.hostname or "127.0.0.1",
        "port": parts.port or (465 if parts.scheme == "smtps" else 25),
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "use_tls": parts.scheme == "smtps",
        "start_tls": False,
        "timeout": 20,
    }


def _message(mail: OutboxMail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to_address
    message["Subject"] = mail.subject
    message["Message-ID"] = f"<outbox-{mail.id}@tradecert>"
    message.set_content(mail.body, charset="utf-8")
    return message


async def deliver_pending(services: Services) -> str:
    """Send what is due; a failure schedules a retry (30 s, doubling, at most 1 h) and
    gives up after 8 attempts (status FAILED, kept for staff to see)."""
    settings = services.settings
    now = services.clock.now()
    async with services.db.read() as session:
        due = (
            await session.scalars(
                select(OutboxMail).where(OutboxMail.status == OutboxStatus.PENDING, OutboxMail.next_attempt_at <= now)
                .order_by(OutboxMail.id).limit(BATCH)
            )
        ).all()
    if not due:
        return "nothing to send"
    if not settings.smtp_url:
        hint = "" if settings.environment == "production" else " (read them with `tradecert mail list`)"
        return f"{len(due)} mail(s) waiting: TRADECERT_SMTP_URL is not set{hint}"
    target = _smtp_target(settings.smtp_url)
    sent = failed = 0
    for mail in due:
        try:
            await aiosmtplib.send(_message(mail, settings.mail_from), **target)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            attempts = mail.attempts + 1
            delay = min(FIRST_RETRY * 2 ** (attempts - 1), LAST_RETRY)
            status = OutboxStatus.FAILED if attempts >= MAX_ATTEMPTS else OutboxStatus.PENDING
            log.warning("mail %s to %s failed (attempt %s): %s", mail.id, mail.to_address, attempts, exc)
            async with services.db.write() as session:
                await session.execute(
                    update(OutboxMail).where(OutboxMail.id == mail.id, OutboxMail.status == OutboxStatus.PENDING).values(
                        attempts=attempts, status=status, next_attempt_at=now + delay, last_error=str(exc)[:2000],
                    )
                )
            failed += 1
            continue
        async with services.db.write() as session:
            await session.execute(
                update(OutboxMail).where(OutboxMail.id == mail.id, OutboxMail.status == OutboxStatus.PENDING).values(
                    status=OutboxStatus.SENT, sent_at=services.clock.now(), attempts=mail.attempts + 1, last_error=None,
                )
            )
        sent += 1
    return f"{sent} sent, {failed} failed"


# --------------------------------------------------------------------------- reading the outbox


@dataclass(frozen=True)
class OutboxEntry:
    """One mail of the outbox as stored (for the development mail box, pages/mailbox.py)."""

    id: int
    created_at: dt.datetime
    kind: str
    to_address: str
    subject: str
    body: str
    status: OutboxStatus
    attempts: int
    next_attempt_at: dt.datetime
    sent_at: dt.datetime | None
    last_error: str | None


def _entry(row: OutboxMail) -> OutboxEntry:
    return OutboxEntry(
        id=row.id, created_at=row.created_at, kind=row.kind, to_address=row.to_address, subject=row.subject,
        body=row.body, status=OutboxStatus(row.status), attempts=row.attempts, next_attempt_at=row.next_attempt_at,
        sent_at=row.sent_at, last_error=row.last_error,
    )


async def outbox_mails(db: Database, *, to: str | None = None, limit: int = 50) -> tuple[list[OutboxEntry], int]:
    """The newest ``limit`` mails (to ``to`` only, compared without case, when given) and how
    many there are in all: two statements whatever the limit."""
    where = [func.lower(OutboxMail.to_address) == to.lower()] if to is not None else []
    async with db.read() as session:
        total = await session.scalar(select(func.count()).select_from(OutboxMail).where(*where)) or 0
        rows = (await session.scalars(
            select(OutboxMail).where(*where).order_by(OutboxMail.id.desc()).limit(limit))).all()
    return [_entry(row) for row in rows], total


async def outbox_mail(db: Database, mail_id: int) -> OutboxEntry | None:
    async with db.read() as session:
        row = await session.get(OutboxMail, mail_id)
    return None if row is None else _entry(row)
