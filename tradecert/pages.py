"""Small HTML pages for people following links: /activate (the sub-ID activation link)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse

if TYPE_CHECKING:
    from resolvers.applications.certificates import Verification
    from resolvers.core.context import Services


def page_headers(csp: str) -> dict[str, str]:
    """What every small HTML page sends: its Content-Security-Policy, no referrer (links may
    carry tokens), never cached."""
    return {"Content-Security-Policy": csp, "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


ACTIVATE_PAGE = """<!doctype html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>サブIDの有効化 — 貿易関係証明発給システム</title>
<style>
 body {{ font-family: system-ui, "Hiragino Sans", "Noto Sans JP", sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; }}
 label {{ display: block; margin-top: 1rem; }} input {{ width: 100%; padding: .5rem; font-size: 1rem; }}
 button {{ margin-top: 1.5rem; padding: .6rem 1.4rem; font-size: 1rem; }}
 #result {{ margin-top: 1.5rem; font-weight: bold; }} .ok {{ color: #0a6; }} .error {{ color: #c00; }}
</style>
</head>
<body>
<h1>サブIDの有効化</h1>
<p>通知メールに記載のサブIDと、署名者から伝えられたパスワードを入力してください。有効化後、ログインできます。</p>
<form id="activate">
 <input type="hidden" name="token" value="{token}">
 <label>サブID <input name="username" autocomplete="username" required maxlength="64"></label>
 <label>パスワード <input name="password" type="password" autocomplete="current-password" required maxlength="128"></label>
 <button type="submit">有効化する</button>
</form>
<p id="result" role="status"></p>
<script>
document.getElementById("activate").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const form = new FormData(event.target);
  const result = document.getElementById("result");
  const response = await fetch("/graphql", {{
    method: "POST",
    headers: {{"Content-Type": "application/json"}},
    body: JSON.stringify({{
      query: "mutation($t: String!, $u: String!, $p: String!) {{ activateSubAccount(input: {{token: $t, username: $u, password: $p}}) {{ account {{ username status }} errors {{ code message }} }} }}",
      variables: {{t: form.get("token"), u: form.get("username"), p: form.get("password")}}
    }})
  }});
  const body = await response.json();
  const payload = body.data && body.data.activateSubAccount;
  if (payload && payload.errors.length === 0) {{
    result.className = "ok"; result.textContent = "有効化しました。ログインできます。";
    event.target.remove();
  }} else {{
    result.className = "error";
    result.textContent = payload ? payload.errors.map(e => e.message).join(" ") : "エラーが発生しました。";
  }}
}});
</script>
</body>
</html>
"""


async def activate_page(request: Request) -> HTMLResponse:
    token = request.query_params.get("token", "")[:128]
    return HTMLResponse(
        ACTIVATE_PAGE.format(token=html.escape(token, quote=True)),
        headers=page_headers("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                             "connect-src 'self'; form-action 'none'; frame-ancestors 'none'"),
    )


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
