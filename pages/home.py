"""``GET /``: the system's name and its public pages, where the sandbox card page's
success screen links back to by default (TRADECERT_PAYMENT_RETURN_URL unset), so that
link never ends in a bare "Not Found"."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from starlette.responses import HTMLResponse

from pages.common import page_headers

if TYPE_CHECKING:
    from resolvers.core.settings import Settings

HOME_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"


def home_page(settings: Settings) -> HTMLResponse:
    """The public pages (GraphiQL where it is on)."""
    links = [("/fees", "手数料一覧"), ("/verify", "証明書の検証")]
    if settings.graphiql:
        links.append(("/graphql", "GraphiQL (API の画面)"))
    items = "".join(f'<li><a href="{href}">{html.escape(label)}</a></li>' for href, label in links)
    body = ('<!doctype html><html lang="ja"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1"><title>貿易関係証明発給システム</title>'
            '<style>body { font-family: sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }</style>'
            f"</head><body><h1>貿易関係証明発給システム</h1><ul>{items}</ul></body></html>")
    return HTMLResponse(body, headers=page_headers(HOME_CSP))
