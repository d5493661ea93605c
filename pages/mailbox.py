"""The development mail box: read the outbox without an SMTP server.

* ``/dev/mail`` and ``/dev/mail/{id}`` show the outbox in a browser, links clickable, so the
  sub-ID activation link can be followed without a mail client;
* ``tradecert mail list [--to ADDRESS]`` and ``tradecert mail show ID`` (tradecert/cli/mail.py)
  print the same mails decoded, with what this module reads out of them (decoded headers,
  Tokyo time, status in the outbox, the links).

Both are off in production (``TRADECERT_ENV=production``): the page is not mounted (404)
and the command refuses in one line. Mail there goes out over ``TRADECERT_SMTP_URL`` and
the outbox holds other people's activation links.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from resolvers.adapters.mail import OutboxEntry
    from resolvers.core.context import Services

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


_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


def _unbalanced(url: str, pair: str) -> bool:
    return url[-1] == pair[1] and url.count(pair[0]) < url.count(pair[1])


def url_spans(text: str) -> Iterator[tuple[int, int]]:
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
    return list(dict.fromkeys(text[start:end] for start, end in url_spans(text)))


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
    for start, end in url_spans(text):
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

    from pages.common import page_headers
    from resolvers.adapters.mail import outbox_mail, outbox_mails

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
