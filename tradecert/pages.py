"""Small HTML pages for people following links: /activate (the sub-ID activation link) and
/verify (certificate verification). Each works as a plain HTML form, without JavaScript:
/verify is a GET form, /activate posts to itself (guarded by ``cross_site``) and the server
answers with a page."""

from __future__ import annotations

import base64
import hashlib
import html
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse

if TYPE_CHECKING:
    from resolvers.applications.certificates import Verification
    from resolvers.core.context import Services
    from resolvers.core.settings import Settings


def page_headers(csp: str) -> dict[str, str]:
    """What every small HTML page sends: its Content-Security-Policy, no referrer (links may
    carry tokens), never cached."""
    return {"Content-Security-Policy": csp, "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


HOME_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"


def home_page(settings: Settings) -> HTMLResponse:
    """``GET /``: where the sandbox card page's success screen links back to by default
    (TRADECERT_PAYMENT_RETURN_URL unset), so that link never ends in a bare "Not Found":
    the system's name and its public pages (GraphiQL where it is on)."""
    links = [("/fees", "手数料一覧"), ("/verify", "証明書の検証")]
    if settings.graphiql:
        links.append(("/graphql", "GraphiQL (API の画面)"))
    items = "".join(f'<li><a href="{href}">{html.escape(label)}</a></li>' for href, label in links)
    body = ('<!doctype html><html lang="ja"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1"><title>貿易関係証明発給システム</title>'
            '<style>body { font-family: sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }</style>'
            f"</head><body><h1>貿易関係証明発給システム</h1><ul>{items}</ul></body></html>")
    return HTMLResponse(body, headers=page_headers(HOME_CSP))


# The activation page is a plain form that posts to itself; the server answers with a page.
# Its one script only stops a second submission (a link activates once: a double click would
# otherwise answer "already used"); the page works the same without it. Its hash is the only
# script the page's Content-Security-Policy allows.
ACTIVATE_SCRIPT = """
document.getElementById("activate").addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.sent) { event.preventDefault(); return; }
  form.dataset.sent = "1";
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  button.textContent = "送信しています…";
});
"""
ACTIVATE_CSP = ("default-src 'none'; script-src 'sha256-"
                + base64.b64encode(hashlib.sha256(ACTIVATE_SCRIPT.encode()).digest()).decode()
                + "'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

ACTIVATE_PAGE = """<!doctype html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>サブIDの有効化 — 貿易関係証明発給システム</title>
<style>
 body {{ font-family: system-ui, "Hiragino Sans", "Noto Sans JP", sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; }}
 label {{ display: block; margin-top: 1rem; }} input {{ width: 100%; padding: .5rem; font-size: 1rem; box-sizing: border-box; }}
 button {{ margin-top: 1.5rem; padding: .6rem 1.4rem; font-size: 1rem; }}
 .result {{ margin-top: 1.5rem; padding: .6rem .8rem; font-weight: bold; border-radius: 4px; }}
 .ok {{ color: #064; background: #e8f6ef; border: 1px solid #0a6; }} .error {{ color: #a00; background: #fdecec; border: 1px solid #c00; }}
</style>
</head>
<body>
<h1>サブIDの有効化</h1>
{body}
</body>
</html>
"""

ACTIVATE_FORM = """<p>通知メールに記載のサブIDと、署名者から伝えられたパスワードを入力してください。有効化後、ログインできます。</p>
{result}
<form method="post" action="/activate" id="activate">
 <input type="hidden" name="token" value="{token}">
 <label>サブID <input name="username" value="{username}" autocomplete="username" required maxlength="64"></label>
 <label>パスワード <input name="password" type="password" autocomplete="current-password" required maxlength="128"></label>
 <button type="submit">有効化する</button>
</form>
<script>{script}</script>"""

# what the page itself says (the use case's refusals say theirs: resolvers/core/errors.py)
ACTIVATED = "有効化しました。サブID {username} とパスワードでログインできます。"
BAD_FORM = "送信された内容を読み取れませんでした。通知メールのURLからもう一度開いてください。"
CROSS_SITE = "別のサイトから送信されたため受け付けませんでした。通知メールのURLから開いたこのページで入力してください。"
NO_TOKEN = "このURLには有効化に必要な情報がありません。通知メールに記載のURLをそのまま開いてください。"
FORM_BODY_BYTES = 4096  # a token (≤128), a sub-ID (≤64) and a password (≤1,024) fit many times over


def _result(code: str, text: str, css: str = "error") -> str:
    role = "status" if css == "ok" else "alert"
    return f'<p class="result {css}" data-code="{code}" role="{role}">{html.escape(text)}</p>'


def _activation(token: str, username: str = "", result: str = "", status: int = 200,
                extra: dict[str, str] | None = None) -> HTMLResponse:
    body = ACTIVATE_FORM.format(token=html.escape(token, quote=True), username=html.escape(username, quote=True),
                                result=result, script=ACTIVATE_SCRIPT)
    return HTMLResponse(ACTIVATE_PAGE.format(body=body), status_code=status,
                        headers={**page_headers(ACTIVATE_CSP), **(extra or {})})


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


async def activate_page(request: Request) -> HTMLResponse:
    """GET: the form for the mailed link's token. POST (the form): activate, and answer
    with a page — the activation itself, or the form again with the reason."""
    if request.method != "POST":
        token = request.query_params.get("token", "")[:128]
        if not token.strip():  # a form without the link's token could only answer "invalid" after typing
            return HTMLResponse(ACTIVATE_PAGE.format(body=_result("TOKEN_MISSING", NO_TOKEN)), status_code=400,
                                headers=page_headers(ACTIVATE_CSP))
        return _activation(token)
    from resolvers.core.context import Context
    from resolvers.core.errors import ErrorCode, UserFailure, UserFailures
    from resolvers.core.logs import request_id_var
    from resolvers.core.ratelimit import RateLimited
    from resolvers.identity.subaccounts import activate_sub_account

    services: Services = request.app.state.services
    if cross_site(request, services.settings):
        return _activation("", result=_result("CSRF", CROSS_SITE), status=403)
    fields = await form_fields(request, ("token", "username", "password"))
    if fields is None:
        return _activation("", result=_result("BAD_REQUEST", BAD_FORM), status=400)
    token, username = fields["token"][:128], fields["username"][:64]
    context = Context(services=services, request=request, request_id=request_id_var.get())
    try:
        async with context.writing():
            account = await activate_sub_account(context, token, username, fields["password"])
    except RateLimited as refused:
        return _activation(token, username, _result(refused.code, refused.message("ja")), 429,
                           {"Retry-After": str(refused.retry_after)})
    except UserFailures as failures:
        first = failures.failures[0]
        return _activation(token, username, _result(first.code, first.message("ja")), 422)
    except UserFailure as failure:
        if failure.code in (ErrorCode.TOKEN_INVALID, ErrorCode.TOKEN_EXPIRED):  # no try with this link can succeed
            return HTMLResponse(ACTIVATE_PAGE.format(body=_result(failure.code, failure.message("ja"))),
                                status_code=422, headers=page_headers(ACTIVATE_CSP))
        return _activation(token, username, _result(failure.code, failure.message("ja")), 422)
    finally:
        await context.close()
    done = _result("ACTIVATED", ACTIVATED.format(username=account.username), "ok")
    return HTMLResponse(ACTIVATE_PAGE.format(body=done), headers=page_headers(ACTIVATE_CSP))


FORM_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"

VERIFY_PAGE = """<!doctype html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>証明書の検証 / Certificate verification</title>
<style>
 body {{ font-family: system-ui, "Hiragino Sans", "Noto Sans JP", sans-serif; max-width: 36rem; margin: 3rem auto; padding: 0 1rem; }}
 label {{ display: block; margin-top: 1rem; }} input {{ width: 100%; padding: .5rem; font-size: 1rem; }}
 button {{ margin-top: 1.2rem; padding: .6rem 1.4rem; font-size: 1rem; }} .valid {{ color: #0a6; }} .invalid {{ color: #c00; }}
 table {{ border-collapse: collapse; margin-top: 1rem; }} td, th {{ border: 1px solid #ccc; padding: .4rem; text-align: left; }}
 code {{ word-break: break-all; font-size: .8rem; }}
</style>
</head>
<body>
<h1>証明書の検証 <small>Certificate verification</small></h1>
<form method="get">
 <label>証明書番号 Certificate number <input name="number" value="{number}" maxlength="20" required></label>
 <label>アクセスコード Access code <input name="code" value="{code}" maxlength="24" autocomplete="off"
   placeholder="XXXX-XXXX-XXXX-XXXX" required></label>
 <button type="submit">検証 / Verify</button>
</form>
{result}
</body>
</html>
"""


async def verification_page(request: Request, services: Services) -> HTMLResponse:
    """Public: the same answer as Query.verifyCertificate — validity, type, issue date,
    exporter and chamber, and the signed content's hash; never more."""
    from resolvers.applications.certificates import verify
    from resolvers.core.ratelimit import RateLimited, client_address

    number = request.query_params.get("number", "")[:20]
    code = request.query_params.get("code", "")[:24]
    result, status, headers = "", 200, page_headers(FORM_PAGE_CSP)
    if number or code:
        try:  # the same limits as verifyCertificate: one attempt per page view with a query
            found = await verify(services, number, code, client_address(request, services.settings))
        except RateLimited as refused:
            status = 429
            headers["Retry-After"] = str(refused.retry_after)
            result = (f'<p class="invalid" data-code="TOO_MANY_REQUESTS">{html.escape(refused.message("ja"))}<br>'
                      f'{html.escape(refused.message("en"))}</p>')
        else:
            result = _verification_result(found)
    return HTMLResponse(
        VERIFY_PAGE.format(number=html.escape(number, quote=True), code=html.escape(code, quote=True), result=result),
        status_code=status, headers=headers)


def _verification_result(found: Verification) -> str:
    from resolvers.applications.messages import CERTIFICATE_TYPE_NAMES
    from resolvers.applications.names import CertificateType
    from resolvers.core.clock import tokyo_date

    app, chamber = found.application, found.chamber
    if not found.valid or app is None or chamber is None or app.issued_at is None:  # valid: all three are there
        return '<p class="invalid" data-valid="false">該当する有効な証明書はありません。 No valid certificate matches.</p>'
    rows = [("結果 Result", '<strong class="valid" data-valid="true">有効 VALID</strong>'),
            ("種別 Type", html.escape(CERTIFICATE_TYPE_NAMES[CertificateType(app.type)])),
            ("交付日 Issued", f"{tokyo_date(app.issued_at):%Y-%m-%d}"),
            ("輸出者 Exporter", html.escape(app.exporter_name)),
            ("商工会議所 Chamber", html.escape(f"{chamber.name} ({chamber.code})")),
            ("内容のハッシュ Content SHA-256", f"<code>{app.content_hash}</code>")]
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"
