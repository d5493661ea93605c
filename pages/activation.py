"""/activate: the page of the sub-ID activation link. A plain HTML form that posts to itself
(guarded by ``cross_site``); the server answers with a page, and it works without JavaScript."""

from __future__ import annotations

import base64
import hashlib
import html
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse

from pages.common import cross_site, form_fields, page_headers

if TYPE_CHECKING:
    from resolvers.core.context import Services


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


def _result(code: str, text: str, css: str = "error") -> str:
    role = "status" if css == "ok" else "alert"
    return f'<p class="result {css}" data-code="{code}" role="{role}">{html.escape(text)}</p>'


def _activation(token: str, username: str = "", result: str = "", status: int = 200,
                extra: dict[str, str] | None = None) -> HTMLResponse:
    body = ACTIVATE_FORM.format(token=html.escape(token, quote=True), username=html.escape(username, quote=True),
                                result=result, script=ACTIVATE_SCRIPT)
    return HTMLResponse(ACTIVATE_PAGE.format(body=body), status_code=status,
                        headers={**page_headers(ACTIVATE_CSP), **(extra or {})})


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
