"""NACCS PDFs: the application form (any time) and the approval notice (利用申込確認完了の
お知らせ; from the start date on). Only the office that applied and the NACCS center. What they
say is decided here; resolvers/adapters/pdf.py draws it."""

from __future__ import annotations

import json

from sqlalchemy import select

from persistence.models import NaccsApplication, NaccsOffice, NaccsUserId
from resolvers.adapters import pdf
from resolvers.core.clock import tokyo_date
from resolvers.core.context import Context
from resolvers.core.errors import Forbidden
from resolvers.naccs import messages as words
from resolvers.naccs.names import NaccsApplicationKind, ReissueReason
from resolvers.naccs.use_cases import visible_application


async def _load(ctx: Context, app_id: int) -> tuple[NaccsApplication, NaccsOffice, list[NaccsUserId]]:
    app = await visible_application(ctx, app_id)
    if app is None:
        raise Forbidden()
    async with ctx.services.db.read() as session:
        office = await session.get(NaccsOffice, app.office_id)
        ids = (await session.scalars(select(NaccsUserId).where(NaccsUserId.application_id == app.id)
                                     .order_by(NaccsUserId.user_code, NaccsUserId.identification_number))).all()
    if office is None:
        raise Forbidden()
    return app, office, list(ids)


def _reason(code: object, stored: str) -> str:
    """The reissue reason's words (the code the office chose), else the words stored with it."""
    return words.REISSUE_REASONS[ReissueReason(code)] if isinstance(code, str) and code in tuple(ReissueReason) else stored


async def application_form(ctx: Context, app_id: int) -> bytes:
    app, office, _ids = await _load(ctx, app_id)
    contact, details = json.loads(app.contact), json.loads(app.details)
    rows = [
        ("申込種別", words.FORM_KIND_NAMES[NaccsApplicationKind(app.kind)]),
        ("受付番号", app.receipt_number),
        ("申込日", f"{tokyo_date(app.submitted_at):%Y年%m月%d日}"),
        ("事業所", office.name),
        ("担当者", f"{contact['family_name']} {contact['given_name']} ({contact['family_name_kana']} {contact['given_name_kana']})"),
        ("部署・役職", f"{contact['department']} {contact['title']}"),
        ("電話 / FAX", f"{contact['phone']} / {contact.get('fax') or '-'}"),
        ("E-mail", contact["email"]),
        ("希望日", f"{app.desired_date:%Y年%m月%d日}"),
        ("理由", app.reason[:60]),
    ]
    if app.kind == NaccsApplicationKind.USER_CODE_ADDITION:
        lines = [f"利用者コード{i}: {code['category']} / 業種 {'・'.join(code['industries'])} / "
                 f"{code['processingMethod']} / SSO {'有' if code['singleSignOn'] else '無'} / "
                 f"識別番号数 {code['identificationCount']} / 統計(有料 {code['statisticsPaid']}・無料 {code['statisticsFree']})"
                 for i, code in enumerate(details["userCodes"], start=1)]
    else:
        lines = [f"対象論理端末: {', '.join(details['terminals'])}  再発行理由: {_reason(details.get('reasonCode'), app.reason)}"]
    return pdf.form_pdf("NACCS 申込書", rows, lines)


async def approval_notice(ctx: Context, app_id: int) -> bytes:
    """From the start date on; never with passwords (those are shown only in the ID notice window)."""
    app, office, ids = await _load(ctx, app_id)
    if (app.kind != NaccsApplicationKind.USER_CODE_ADDITION or app.start_date is None or app.approved_at is None
            or ctx.clock.today() < app.start_date):
        raise Forbidden()
    return pdf.notice_pdf("利用申込確認完了のお知らせ", [
        ("事業所", office.name),
        ("受付番号", app.receipt_number),
        ("利用開始日", f"{app.start_date:%Y年%m月%d日}"),
        ("確認完了日", f"{tokyo_date(app.approved_at):%Y年%m月%d日}"),
    ], "追加された利用者ID (利用者コード + 識別番号) / 業種",
        [f"{row.user_code}{row.identification_number}  /  {'・'.join(json.loads(row.industries))}" for row in ids],
        "パスワードはID通知の閲覧期間内にのみ表示されます。期間後は再発行の手続きが必要です。")
