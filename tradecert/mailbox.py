"""The development mail box: read the outbox without an SMTP server.

* ``tradecert mail list [--to ADDRESS]`` and ``tradecert mail show ID`` print mails decoded
  (headers, Tokyo time, status in the outbox, the text, and its links on lines of their own);
* ``/dev/mail`` and ``/dev/mail/{id}`` show the same in a browser, links clickable, so the
  sub-ID activation link can be followed without a mail client.

Both are off in production (``TRADECERT_ENV=production``): the page is not mounted (404)
and the command refuses in one line. Mail there goes out over ``TRADECERT_SMTP_URL`` and
the outbox holds other people's activation links.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import re
import shutil
import unicodedata
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from persistence.db import Database
    from resolvers.adapters.mail import OutboxEntry
    from resolvers.core.context import Services
    from resolvers.core.settings import Settings

T = TypeVar("T")

PRODUCTION = "production"
MAX_ID = 2**31 - 1  # mail_outbox.id is an INTEGER
PAGE_SIZE = 100
STATUS_WORDS = {"PENDING": "waiting", "SENT": "sent", "FAILED": "failed"}
STATUS_WORDS_JA = {"PENDING": "送信待ち", "SENT": "送信済み", "FAILED": "送信失敗"}

# --------------------------------------------------------------------------- decoding


def parse_mail_id(raw: str) -> int | None:
    """An outbox id as typed or put in a URL: ASCII digits only, within INTEGER; else None."""
    if not re.fullmatch(r"[0-9]{1,10}", raw):  # not int(): it takes "+1", " 1", "１" and "1_0"
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_ID else None


def decode_words(value: str) -> str:
    """A header value with its MIME encoded-words (``=?utf-8?b?...?=``) decoded; a value
    that does not decode is shown as it is."""
    if "=?" not in value:
        return value
    from email.errors import HeaderParseError
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeDecodeError, ValueError):
        return value


_BIDI = {0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def visible(text: str, *, newlines: bool = True) -> str:
    """Control characters (an escape sequence, a bidirectional override, a NUL) written out
    as ``\\x1b``/``\\u202e`` so a mail cannot drive the terminal or reorder what is shown."""
    out = []
    for char in text:
        code = ord(char)
        if (char == "\n" and newlines) or char == "\t":
            out.append(char)
        elif code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif code in _BIDI:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


def _unbalanced(url: str, pair: str) -> bool:
    return url[-1] == pair[1] and url.count(pair[0]) < url.count(pair[1])


def _url_spans(text: str) -> Iterator[tuple[int, int]]:
    """Where the http(s) links are: RFC 3986 characters only (a link ends at Japanese text
    or a space), without a sentence's closing punctuation or an unbalanced bracket."""
    for match in _URL.finditer(text):
        url = match.group()
        while url and (url[-1] in ".,;:!?'" or _unbalanced(url, "()") or _unbalanced(url, "[]")):
            url = url[:-1]
        if len(url) > len("https://"):
            yield match.start(), match.start() + len(url)


def find_links(text: str) -> list[str]:
    """The links of a text, each once, in order."""
    return list(dict.fromkeys(text[start:end] for start, end in _url_spans(text)))


def cells(text: str) -> int:
    """Terminal columns: wide (CJK) characters take two, combining marks none."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


# 禁則: a line does not start with the closing marks (they hang at the end of the line before)
_NO_LINE_END = set("(（「『【〔〈《[")  # nor end with these: they go down with the word they open
_NO_LINE_START = set("、。，．,.・：；:;？！?!）)」』】〕〉》ー〜…‥ぁぃぅぇぉっゃゅょァィゥェォッャュョ")


def _tokens(line: str) -> Iterator[tuple[str, str]]:
    """(kind, text): "url" and "word" (narrow characters) never split, "space", and each
    wide character on its own (Japanese breaks between any two characters)."""
    position = 0
    for start, end in [*_url_spans(line), (len(line), len(line))]:
        word = ""
        for char in line[position:start]:
            if char.isspace() or cells(char) > 1:
                if word:
                    yield "word", word
                    word = ""
                yield ("space" if char.isspace() else "wide"), char
            else:
                word += char
        if word:
            yield "word", word
        if end > start:
            yield "url", line[start:end]
        position = end


def wrap(line: str, width: int) -> list[str]:
    """One line folded to ``width`` columns, counting wide characters as two; links are
    never broken (a longer one gets a line of its own), other over-long words are."""
    out: list[str] = []
    current, used = "", 0
    for kind, text in _tokens(line):
        size = cells(text)
        if kind == "space":
            if current or not out:  # the line's own indentation stays; a folded line starts at a word
                current, used = current + text, used + size
            continue
        if used + size > width and current.strip() and text not in _NO_LINE_START:
            carried = current[-1] if current[-1] in _NO_LINE_END and current[:-1].strip() else ""
            out.append(current[: len(current) - len(carried)].rstrip())
            current, used = carried, cells(carried)
        if kind == "word" and size > width:
            for char in text:
                if used + 1 > width and current:
                    out.append(current)
                    current, used = "", 0
                current, used = current + char, used + 1
            continue
        current, used = current + text, used + size
    out.append(current.rstrip())
    return out


def wrap_text(text: str, width: int) -> list[str]:
    return [folded for line in text.splitlines() or [""] for folded in wrap(line, width)]


def tokyo_time(instant: dt.datetime) -> str:
    from resolvers.core.clock import TOKYO

    return f"{instant.astimezone(TOKYO):%Y-%m-%d %H:%M:%S} JST"


def status_line(mail: OutboxEntry) -> str:
    """Where the mail is in the outbox, in words."""
    word = STATUS_WORDS[mail.status]
    if mail.status == "SENT" and mail.sent_at is not None:
        return f"{word} {tokyo_time(mail.sent_at)}"
    if mail.status == "FAILED":
        return f"{word} after {mail.attempts} attempt(s): {mail.last_error or 'no error recorded'}"
    tried = f"; {mail.attempts} failed attempt(s), last: {mail.last_error}" if mail.attempts else ""
    return f"{word} (not sent yet{tried})"


# --------------------------------------------------------------------------- the command


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


# --------------------------------------------------------------------------- the page

PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

PAGE = """<!doctype html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title} — 開発用メールボックス</title>
<style>
 body {{ font-family: system-ui, "Hiragino Sans", "Noto Sans JP", sans-serif; max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem; }}
 .dev {{ background: #fff3cd; padding: .4rem .8rem; border: 1px solid #e0c060; }}
 table {{ border-collapse: collapse; width: 100%; margin: 1rem 0; }}
 td, th {{ border: 1px solid #ccc; padding: .4rem; text-align: left; vertical-align: top; }}
 td.time, td.status {{ white-space: nowrap; }} .FAILED {{ color: #c00; }} .PENDING {{ color: #8a5a00; }} .SENT {{ color: #0a6; }}
 pre {{ white-space: pre-wrap; overflow-wrap: anywhere; font-family: inherit; background: #f7f7f7; padding: 1rem; border: 1px solid #ddd; }}
 ol.links a, td a {{ overflow-wrap: anywhere; }} dt {{ font-weight: bold; }} dd {{ margin: 0 0 .4rem 0; overflow-wrap: anywhere; }}
 dl {{ display: grid; grid-template-columns: max-content 1fr; gap: 0 1rem; }}
</style>
</head>
<body>
<p class="dev">開発用 — 本番 (TRADECERT_ENV=production) では表示されません。 Development only: off in production.</p>
{body}
</body>
</html>
"""


def _link(url: str) -> str:
    """An http(s) link of the mail (RFC 3986 characters only, so it cannot leave the attribute)."""
    safe = html.escape(url, quote=True)
    return f'<a href="{safe}" rel="noreferrer noopener">{safe}</a>'


def linked_text(text: str) -> str:
    """The text escaped, its links made clickable."""
    parts, position = [], 0
    for start, end in _url_spans(text):
        parts += [html.escape(text[position:start]), _link(text[start:end])]
        position = end
    parts.append(html.escape(text[position:]))
    return "".join(parts)


def _list_page(mails: list[OutboxEntry], total: int, to: str | None) -> str:
    rows = "".join(
        f'<tr data-id="{m.id}"><td>{m.id}</td><td class="time">{tokyo_time(m.created_at)}</td>'
        f"<td>{html.escape(m.to_address)}</td>"
        f'<td><a href="/dev/mail/{m.id}">{html.escape(decode_words(m.subject)) or "(件名なし)"}</a></td>'
        f'<td class="status {m.status}">{STATUS_WORDS_JA[m.status]} {STATUS_WORDS[m.status]}</td></tr>'
        for m in mails)
    shown = f"新しい順に {len(mails)} 通 / 全 {total} 通 (newest first)" if total > len(mails) else f"{total} 通 (newest first)"
    heading = f"宛先 {html.escape(to)} のメール" if to else "送信メール (outbox)"
    table = ("<table><tr><th>ID</th><th>日時 Time</th><th>宛先 To</th><th>件名 Subject</th><th>状態 Status</th></tr>"
             f"{rows}</table>") if mails else "<p>メールはありません。 No mail.</p>"
    search = (f'<form method="get"><label>宛先 To <input name="to" type="email" value="{html.escape(to or "", quote=True)}" '
              'maxlength="254"></label> <button type="submit">絞り込む Filter</button></form>')
    return PAGE.format(title="送信メール", body=f"<h1>{heading}</h1>{search}<p>{shown}</p>{table}")


def _mail_page(mail: OutboxEntry, sender: str) -> str:
    fields = [("From", html.escape(sender)), ("To", html.escape(mail.to_address)),
              ("Subject", html.escape(decode_words(mail.subject))), ("Date", tokyo_time(mail.created_at)),
              ("Status", f'<span class="{mail.status}">{STATUS_WORDS_JA[mail.status]} — {html.escape(status_line(mail))}</span>'),
              ("Kind", html.escape(mail.kind))]
    links = find_links(mail.body)
    listed = f'<h2>リンク Links</h2><ol class="links">{"".join(f"<li>{_link(u)}</li>" for u in links)}</ol>' if links else ""
    body = (f'<p><a href="/dev/mail">← 一覧 All mails</a></p><h1>{html.escape(decode_words(mail.subject)) or "(件名なし)"}</h1>'
            f'<dl>{"".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in fields)}</dl>'
            f"<pre>{linked_text(mail.body)}</pre>{listed}")
    return PAGE.format(title=html.escape(f"Mail {mail.id}"), body=body)


def routes(services: Services) -> list[Route]:
    """``/dev/mail`` and ``/dev/mail/{id}``, or nothing at all in production."""
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from resolvers.adapters.mail import outbox_mail, outbox_mails
    from tradecert.pages import page_headers

    if services.settings.environment == PRODUCTION:
        return []
    headers = page_headers(PAGE_CSP)

    def not_found() -> Response:
        return HTMLResponse(PAGE.format(title="Not found", body='<h1>メールが見つかりません。 No such mail.</h1>'
                                        '<p><a href="/dev/mail">← 一覧 All mails</a></p>'), status_code=404, headers=headers)

    async def mail_list(request: Request) -> Response:
        to = request.query_params.get("to", "").strip()[:254] or None
        mails, total = await outbox_mails(services.db, to=to, limit=PAGE_SIZE)
        return HTMLResponse(_list_page(mails, total, to), headers=headers)

    async def mail_show(request: Request) -> Response:
        wanted = parse_mail_id(request.path_params["mail_id"])
        found = None if wanted is None else await outbox_mail(services.db, wanted)
        if found is None:
            return not_found()
        return HTMLResponse(_mail_page(found, services.settings.mail_from), headers=headers)

    return [Route("/dev/mail", mail_list, methods=["GET"]), Route("/dev/mail/{mail_id}", mail_show, methods=["GET"])]
