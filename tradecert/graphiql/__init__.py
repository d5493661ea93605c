"""GraphiQL from this server alone: our page and the vendored GraphiQL, React and explorer
(vendor/, see vendor.py), so the explorer works on an intranet with no way to a CDN.

The page is served at /graphql to a browser (GET, Accept: text/html) when GraphiQL is on;
its files at ``/graphiql/<version>/<name>``, where ``<version>`` is a digest of every served
file, so they are cached for good (``immutable``) and a new build gets new addresses. The page
holds no inline script or style; its Content-Security-Policy names no other origin (``CSP``).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from pages.common import page_headers
from tradecert.graphiql.vendor import VENDOR_DIR

STATIC_DIR = Path(__file__).parent / "static"
SCRIPTS = ("react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "plugin-explorer.umd.js",
           "tradecert-graphiql.js")  # in the order the page loads them: each needs the ones before
STYLES = ("graphiql.min.css", "plugin-explorer.css", "tradecert-graphiql.css")
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

# style-src: GraphiQL's stylesheets are files of ours ('self'); the one <style> element its
# dialogs create carries the page's nonce (static/tradecert-graphiql.js), so 'unsafe-inline'
# is not needed. Fonts and a few icons are data: URLs inside graphiql.min.css.
CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'nonce-{nonce}'; "
       "img-src 'self' data:; font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GraphiQL — tradecert</title>
<link rel="icon" href="data:,">
{styles}
</head>
<body>
<div id="graphiql" data-style-nonce="{nonce}">Loading…</div>
<noscript>GraphiQL needs JavaScript.</noscript>
{scripts}
</body>
</html>
"""


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str

    @functools.cached_property
    def gzipped(self) -> bytes:
        return gzip.compress(self.body, compresslevel=9, mtime=0)


@dataclass(frozen=True)
class Assets:
    version: str  # a digest of every file: a new build, new addresses
    files: dict[str, Asset]


@functools.cache
def assets() -> Assets:
    """The served files, read once per process."""
    files = {}
    for name in (*SCRIPTS, *STYLES):
        path = STATIC_DIR / name if name.startswith("tradecert-") else VENDOR_DIR / name
        files[name] = Asset(path.read_bytes(), MEDIA_TYPES[path.suffix])
    digest = hashlib.sha256()
    for name, asset in files.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(asset.body).digest())
    return Assets(digest.hexdigest()[:16], files)


def page(request: Request) -> Response:
    """The GraphiQL page, with a fresh style nonce in its Content-Security-Policy."""
    version = assets().version
    nonce = secrets.token_urlsafe(16)
    # relative addresses: the page is at /graphql, so these resolve to /graphiql/… (and keep
    # working behind a proxy that mounts the server under a path)
    styles = "\n".join(f'<link rel="stylesheet" href="graphiql/{version}/{name}">' for name in STYLES)
    scripts = "\n".join(f'<script src="graphiql/{version}/{name}"></script>' for name in SCRIPTS)
    headers = {**page_headers(CSP.format(nonce=nonce)), "X-Content-Type-Options": "nosniff"}
    return HTMLResponse(PAGE.format(styles=styles, scripts=scripts, nonce=nonce), headers=headers)


async def asset(request: Request) -> Response:
    served = assets()
    found = served.files.get(request.path_params["name"])
    if found is None or request.path_params["version"] != served.version:
        return JSONResponse({"error": "not found"}, status_code=404, headers={"Cache-Control": "no-store"})
    headers = {"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff",
               "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(found.gzipped, media_type=found.media_type, headers={**headers, "Content-Encoding": "gzip"})
    return Response(found.body, media_type=found.media_type, headers=headers)


def routes() -> list[Route]:
    """The routes of GraphiQL's files; mounted only when GraphiQL is on. Reads the files now,
    so a build that lacks one fails at start-up, not at the first browser."""
    assets()
    return [Route("/graphiql/{version}/{name}", asset, methods=["GET"])]


__all__ = ["CSP", "assets", "page", "routes"]
