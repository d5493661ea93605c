"""`tradecert mail list|show`: the development mail box in a terminal (the page and what
both read out of a mail: pages/mailbox.py). Off in production."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from pages.mailbox import PRODUCTION, STATUS_WORDS, decode_words, find_links, parse_mail_id, status_line, tokyo_time
from tradecert.cli.text import visible, wrap, wrap_text

if TYPE_CHECKING:
    from persistence.db import Database
    from resolvers.adapters.mail import OutboxEntry
    from resolvers.core.settings import Settings

T = TypeVar("T")


class MailboxRefused(click.ClickException):
    """One line on stderr, exit status 2 (as a usage error): no traceback."""

    exit_code = 2


def _terminal_width() -> int:
    """The terminal's width (COLUMNS, or 80 when piped), between 40 and 100 columns."""
    return max(40, min(shutil.get_terminal_size((80, 24)).columns, 100))


def _open(settings: Settings) -> Database:
    from persistence.db import Database

    return Database(settings.database_url, schema=settings.database_schema)


def _settings() -> Settings:
    from resolvers.core.settings import Settings

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(f"configuration: {exc}") from None
    if settings.environment == PRODUCTION:
        raise click.ClickException("the development mail box is off in production (TRADECERT_ENV=production); "
                                   "mail goes out over TRADECERT_SMTP_URL")
    return settings


def _read(settings: Settings, reading: Callable[[Database], Awaitable[T]]) -> T:
    """Run one outbox read; a database that cannot be read is one line, not a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    async def go() -> T:
        db = _open(settings)
        try:
            return await reading(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(go())
    except (SQLAlchemyError, OSError) as exc:
        text = str(getattr(exc, "orig", None) or exc).strip()
        first = visible(text.splitlines()[0][:200]) if text else type(exc).__name__
        raise click.ClickException(f"cannot read the outbox ({first}); check TRADECERT_DATABASE_URL, then `tradecert db upgrade`") from None


def _field(label: str, value: str, width: int) -> list[str]:
    """``Label:   value``, the value folded under itself."""
    pad = " " * 9
    lines = wrap(visible(value, newlines=False), max(width - len(pad), 20))
    return [f"{label + ':':<9}{lines[0]}", *(pad + line for line in lines[1:])]


def render_summary(mail: OutboxEntry, width: int) -> list[str]:
    lines = [f"#{mail.id}  {tokyo_time(mail.created_at)}  {STATUS_WORDS[mail.status]}  {visible(mail.kind)}"]
    body = [f"  {line}" for line in (
        *_field("To", mail.to_address, width - 2), *_field("Subject", decode_words(mail.subject), width - 2))]
    links = [f"  {'Link:':<9}{link}" for link in find_links(mail.body)]
    return [*lines, *body, *links]


def render_mail(mail: OutboxEntry, sender: str, width: int) -> list[str]:
    lines = [f"Mail {mail.id} — {STATUS_WORDS[mail.status]}"]
    lines += _field("From", sender, width)
    lines += _field("To", mail.to_address, width)
    lines += _field("Subject", decode_words(mail.subject), width)
    lines += _field("Date", tokyo_time(mail.created_at), width)
    lines += _field("Status", status_line(mail), width)
    lines += _field("Kind", mail.kind, width)
    lines += ["", *wrap_text(visible(mail.body), width)]
    links = find_links(mail.body)
    if links:
        lines += ["", "Links:", *(f"  [{n}] {link}" for n, link in enumerate(links, 1))]
    return lines


@click.group("mail")
def mail() -> None:
    """Read the outbox without an SMTP server (off in production)."""


@mail.command("list")
@click.option("--to", "to", metavar="ADDRESS", help="Only mails to this address (any case).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="How many, newest first.")
def mail_list(to: str | None, limit: int) -> None:
    """The newest mails: time (Tokyo), status, to, subject and links."""
    from resolvers.adapters.mail import outbox_mails

    settings = _settings()
    if to is not None and (len(to) > 254 or visible(to) != to):
        raise MailboxRefused(f"--to: not an e-mail address: '{visible(to[:60], newlines=False)}'")
    mails, total = _read(settings, lambda db: outbox_mails(db, to=to, limit=limit))
    if not mails:
        click.echo(f"no mail to {to}" if to else "the outbox is empty")
        return
    width = _terminal_width()
    for mail_entry in mails:
        click.echo("\n".join(render_summary(mail_entry, width)))
        click.echo()
    shown = f"{len(mails)} of {total}" if total > len(mails) else f"{total}"
    click.echo(f"{shown} mail(s), newest first; `tradecert mail show ID` prints one in full")


@mail.command("show", context_settings={"ignore_unknown_options": True})  # "-1" is an id we refuse, not an option
@click.argument("mail_id", metavar="ID")
def mail_show(mail_id: str) -> None:
    """One mail: headers, status, its text and its links."""
    from resolvers.adapters.mail import outbox_mail

    settings = _settings()
    wanted = parse_mail_id(mail_id)
    if wanted is None:
        raise MailboxRefused(f"no mail '{visible(mail_id[:40], newlines=False)}': an ID is a number from `tradecert mail list`")
    found: OutboxEntry | None = _read(settings, lambda db: outbox_mail(db, wanted))
    if found is None:
        raise MailboxRefused(f"no mail {wanted} in the outbox (`tradecert mail list` shows what there is)")
    click.echo("\n".join(render_mail(found, settings.mail_from, _terminal_width())))
