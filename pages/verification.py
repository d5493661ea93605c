"""/verify: certificate verification, a plain GET form that works without JavaScript."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse

from pages.common import FORM_PAGE_CSP, page_headers

if TYPE_CHECKING:
    from resolvers.applications.certificates import Verification
    from resolvers.core.context import Services

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
