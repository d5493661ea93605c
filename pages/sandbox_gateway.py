"""HTTP side of card payments.

* ``/sandbox-gateway/pay/{session}`` — the **sandbox** provider's hosted card page (GET the
  form, POST ``card_number``, ``expiry_month``, ``expiry_year``, ``holder``), laid out like
  the seed's Epsilon page. A real provider hosts this page itself; production does not
  mount it (TRADECERT_PAYMENT_GATEWAY other than ``sandbox``).
* ``/payments/notify`` — where a provider posts signed events (ours: resolvers/payments.py).
"""

from __future__ import annotations

import html
import logging
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from pages.common import FORM_PAGE_CSP, cross_site, page_headers
from persistence.models import SandboxGatewaySession
from resolvers.adapters.gateway import SIGNATURE_HEADER, SandboxGateway, SandboxStatus, check_card
from resolvers.core.clock import TOKYO
from resolvers.core.context import Services
from resolvers.payments.card import InvalidNotification, receive_notification, session_minutes

log = logging.getLogger("tradecert.payments")

HEADERS = page_headers(FORM_PAGE_CSP)

PAGE = """<!doctype html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>クレジットカード決済 (サンドボックス)</title>
<style>
 body {{ font-family: system-ui, "Hiragino Sans", "Noto Sans JP", sans-serif; max-width: 34rem; margin: 2rem auto; padding: 0 1rem; }}
 .sandbox {{ background: #fff3cd; padding: .4rem .8rem; border: 1px solid #e0c060; }}
 table {{ border-collapse: collapse; width: 100%; margin: 1rem 0; }} td, th {{ border: 1px solid #ccc; padding: .4rem; text-align: left; }}
 label {{ display: block; margin-top: 1rem; }} input, select {{ padding: .4rem; font-size: 1rem; box-sizing: border-box; }}
 a.back {{ display: inline-block; margin-top: 1rem; padding: .6rem 1.4rem; border: 1px solid #0a6; border-radius: 4px;
   color: #064; text-decoration: none; }} a.back:hover {{ background: #e8f6ef; }}
 .wide {{ width: 100%; }} .error {{ color: #c00; }} .ok {{ color: #0a6; }} button {{ margin-top: 1.5rem; padding: .6rem 1.4rem; font-size: 1rem; }}
</style>
</head>
<body>
<p class="sandbox">サンドボックス決済 — 実際の請求は行われません (sandbox gateway: no real charge)</p>
<h1>貿易関係証明発給システム</h1>
<table><tr><th>商品名</th><th>合計金額</th></tr><tr><td>{description}</td><td>{amount:,}円</td></tr></table>
{body}
</body>
</html>
"""

FORM = """<h2>クレジットカード情報の入力</h2>
<p>VISA / Mastercard / JCB / American Express / Diners Club</p>
{problems}
<form method="post">
 <label>クレジットカード番号 <small>半角数字14〜16桁、ハイフンなし</small>
  <input class="wide" name="card_number" inputmode="numeric" autocomplete="cc-number" maxlength="19" value="{card_number}" required></label>{e_card_number}
 <label>有効期限
  <input name="expiry_month" inputmode="numeric" maxlength="2" size="3" value="{expiry_month}" required> 月 /
  <input name="expiry_year" inputmode="numeric" maxlength="4" size="5" value="{expiry_year}" required> 年</label>{e_expiry_month}{e_expiry_year}
 <label>クレジットカード名義人
  <input class="wide" name="holder" autocomplete="cc-name" maxlength="45" value="{holder}" required></label>{e_holder}
 <p>以上の内容でよろしければ「決定」ボタンをクリックしてください。お支払い手続きが完了いたします。</p>
 <p>決済の有効期限: {expires}</p>
 <button type="submit">決定</button>
</form>"""


def _page(row: SandboxGatewaySession, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(description=html.escape(row.description), amount=row.amount, body=body),
                        status_code=status, headers=HEADERS)


def _message(code: str, text: str, css: str = "error", reason: str | None = None) -> str:
    why = f' data-reason="{html.escape(reason, quote=True)}"' if reason else ""
    return f'<p class="{css}" data-code="{code}"{why} role="status">{html.escape(text)} ({code})</p>'


def routes(services: Services) -> list[Route]:
    sandbox = SandboxGateway()

    def form(row: SandboxGatewaySession, values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
             problems: str = "") -> str:
        values, errors = values or {}, errors or {}
        fields = {k: html.escape(values.get(k, ""), quote=True) for k in ("expiry_month", "expiry_year", "holder")}
        fields["card_number"] = ""  # a card number is never echoed back
        for key in ("card_number", "expiry_month", "expiry_year", "holder"):
            fields[f"e_{key}"] = f'<p class="error" data-field="{key}">{html.escape(errors[key])}</p>' if key in errors else ""
        if errors:
            problems = _message("INVALID", "入力内容に誤りがあります。")
        return FORM.format(problems=problems, expires=f"{row.expires_at.astimezone(TOKYO):%Y-%m-%d %H:%M:%S} (日本時間)",
                           **fields)

    def paid(text: str) -> str:
        """The success screen: a link back to the system (TRADECERT_PAYMENT_RETURN_URL, else
        the system's own address) — a real provider returns to the merchant's success URL."""
        back = services.settings.payment_return_url or f"{services.settings.public_url}/"
        return (_message("PAID", text, "ok") +
                f'<p><a href="{html.escape(back, quote=True)}" class="back">貿易関係証明発給システムの画面に戻る</a></p>')

    def expired() -> str:  # the minutes are policy: card_session_minutes in limits.yaml
        return _message("SESSION_EXPIRED", f"エラーが発生しました。決済の有効期限 ({session_minutes(services)}分) を過ぎました。"
                        "再度、決済する内容を選択してください。")

    async def pay(request: Request) -> Response:
        session_id = request.path_params["session"]
        row = await sandbox.get(services, session_id)
        if row is None:
            return HTMLResponse("<p>決済が見つかりません。</p>", status_code=404, headers=HEADERS)
        if row.status == SandboxStatus.PAID:
            return _page(row, paid("この決済は完了しています。"))
        if row.status != SandboxStatus.OPEN:
            return _page(row, _message("SESSION_CLOSED", "この決済は終了しています。最初からやり直してください。"), 410)
        if services.clock.now() > row.expires_at:
            return _page(row, expired(), 410)
        if request.method == "GET":
            return _page(row, form(row))
        if cross_site(request, services.settings):  # the rule of every form post of ours (pages/common.py)
            return _page(row, form(row, problems=_message("CSRF", "別のサイトから送信されたため受け付けませんでした。")), 403)
        raw = (await request.body()).decode("utf-8", "replace")[:4096]
        submitted = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        values, errors = check_card(submitted, services.clock.today())
        if errors:
            return _page(row, form(row, values, errors), 422)
        charge = await sandbox.pay(services, session_id, values)
        if charge.status == SandboxStatus.EXPIRED:
            return _page(row, expired(), 410)
        if charge.decline is not None:  # the session stays open: the payer may try another card
            declined = _message("PAYMENT_DECLINED", f"カードが承認されませんでした: {charge.decline.reason}"
                                "別のカードでお支払いいただけます。", reason=charge.decline.code)
            return _page(row, form(row, values, problems=declined), 402)
        if charge.status != SandboxStatus.PAID or charge.event is None:  # nothing was charged
            return _page(row, _message("SESSION_CLOSED", "この決済は終了しています。"), 409)
        try:
            await sandbox.deliver(services, session_id, charge.event)
        except Exception:  # the merchant did not acknowledge: the redelivery job sends it again
            log.exception("sandbox gateway: notification for %s not delivered", session_id)
        return _page(row, paid("お支払いが完了しました。"))

    async def notify(request: Request) -> Response:
        body = await request.body()
        try:
            outcome = await receive_notification(services, body, request.headers.get(SIGNATURE_HEADER))
        except InvalidNotification as exc:
            log.warning("payment notification refused: %s", exc)
            return JSONResponse({"error": "INVALID_SIGNATURE"}, status_code=400)
        return JSONResponse({"received": True, "outcome": outcome})

    mounted = [Route("/payments/notify", notify, methods=["POST"])]
    if services.settings.payment_gateway == "sandbox":
        mounted.append(Route("/sandbox-gateway/pay/{session}", pay, methods=["GET", "POST"]))
    return mounted
