"""What every page of ours shares: the headers it sends, and the rule and reader of a form post."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request

if TYPE_CHECKING:
    from resolvers.core.settings import Settings

FORM_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
FORM_BODY_BYTES = 4096  # a token (≤128), a sub-ID (≤64) and a password (≤1,024) fit many times over


def page_headers(csp: str) -> dict[str, str]:
    """What every small HTML page sends: its Content-Security-Policy, no referrer (links may
    carry tokens), never cached."""
    return {"Content-Security-Policy": csp, "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def cross_site(request: Request, settings: Settings) -> bool:
    """A form post from another site: the rule of /graphql's CsrfGuard (tradecert/app.py).
    An ``Origin`` must be this server, TRADECERT_PUBLIC_URL or an allowed origin; without
    one (or ``null``: our pages send no referrer, so browsers send ``Origin: null`` even for
    their own form posts) the browser's ``Sec-Fetch-Site`` must not say cross-site."""
    origin = (request.headers.get("origin") or "").strip().lower().rstrip("/")
    if origin and origin != "null":
        host = (request.headers.get("host") or "").lower()
        allowed = {_origin(settings.public_url), *(o.lower() for o in settings.allowed_origins),
                   f"http://{host}", f"https://{host}"}
        return origin not in allowed
    return (request.headers.get("sec-fetch-site") or "").lower() == "cross-site"


async def form_fields(request: Request, names: tuple[str, ...]) -> dict[str, str] | None:
    """A small ``application/x-www-form-urlencoded`` body as {name: first value}; None when
    it is not one (another type, too long, too many fields, a NUL)."""
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return None
    raw = await request.body()
    if len(raw) > FORM_BODY_BYTES:
        return None
    try:
        parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=16)
    except ValueError:
        return None
    fields = {name: parsed.get(name, [""])[0] for name in names}
    return None if any("\x00" in value for value in fields.values()) else fields
