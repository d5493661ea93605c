"""PDF documents (real text, Japanese included) drawn with an embedded Japanese TrueType font,
served with the same session and permissions as the object they belong to."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from sqlalchemy import select

from persistence.models import (
    Application,
    CardPayment,
    CardStatement,
    Chamber,
    CouponPurchase,
    CouponPurchaseLine,
    TradeRegistration,
    VirtualAccount,
)
from resolvers.applications import certificates
from resolvers.applications.certificates import canonical, format_access_code
from resolvers.applications.messages import CERTIFICATE_TYPE_NAMES
from resolvers.applications.names import ApplicationState, CertificateType
from resolvers.applications.use_cases import application_to_view
from resolvers.core.clock import tokyo_date
from resolvers.core.context import Context
from resolvers.core.errors import Forbidden, UserFailure
from resolvers.coupons.names import PurchaseMethod
from resolvers.fees import rules_history
from resolvers.identity.actor import authorize, require_viewer
from resolvers.payments.checkout import statement_of
from resolvers.payments.names import CardPaymentStatus
from resolvers.payments.queries import statement_tax
from rules import fees

# Every PDF draws all its text, Latin included, with this one TrueType font, embedded as a subset of the
# glyphs it uses: a reader without Japanese fonts sees what was issued (a CID font or Helvetica left the
# glyphs to the reader's machine). Licence and source: fonts/README.md.
FONT = "IPAexGothic"
FONT_FILE = Path(__file__).parent / "fonts" / "ipaexg.ttf"
_registered = False


def _font() -> str:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(TTFont(FONT, FONT_FILE))
        _registered = True
    return FONT


def _canvas(buffer: io.BytesIO) -> canvas.Canvas:
    """An A4 canvas whose every font is ours: the page's initial font too, else each page names Helvetica."""
    # types-reportlab types initialFontName as a float; ReportLab takes a font name
    return canvas.Canvas(buffer, pagesize=A4, pageCompression=1, initialFontName=_font())  # type: ignore[arg-type]


def _table(pdf: canvas.Canvas, x: float, y: float, rows: list[tuple[str, str]], width: float = 170 * mm,
           label_width: float = 45 * mm) -> float:
    for label, value in rows:
        pdf.rect(x, y - 8 * mm, label_width, 8 * mm)
        pdf.rect(x + label_width, y - 8 * mm, width - label_width, 8 * mm)
        pdf.drawString(x + 2 * mm, y - 5.5 * mm, label)
        pdf.drawString(x + label_width + 2 * mm, y - 5.5 * mm, value)
        y -= 8 * mm
    return y


def _issuer_page(title: str, heading: str, size: int, issuer: str, registration_number_t: str,
                 lines: list[str]) -> tuple[io.BytesIO, canvas.Canvas, float, float]:
    """A page in the issuer's name: the heading, then issuer, registration number and the given lines on the right."""
    buffer = io.BytesIO()
    pdf = _canvas(buffer)
    pdf.setTitle(title)
    pdf.setAuthor(issuer)
    width, height = A4
    pdf.setFont(_font(), size)
    pdf.drawCentredString(width / 2, height - 30 * mm, heading)
    pdf.setFont(_font(), 10)
    for i, line in enumerate([issuer, f"登録番号: {registration_number_t}", *lines]):
        pdf.drawRightString(width - 20 * mm, height - (42 + 6 * i) * mm, line)
    return buffer, pdf, width, height


def transfer_request_pdf(*, issuer: str, registration_number_t: str, printed_on: dt.date, purchase: CouponPurchase,
                         registration: TradeRegistration, lines: list[tuple[str, int, int]], account: VirtualAccount,
                         tax: int) -> bytes:
    """振込依頼書 as in eco-payment-2026: order, amount with its tax part, and where to pay."""
    buffer, pdf, _width, height = _issuer_page(f"振込依頼書 {purchase.order_number}", "振込依頼書", 20, issuer,
                                              registration_number_t, [f"印刷日: {printed_on:%Y/%m/%d}"])
    font = _font()
    pdf.drawString(20 * mm, height - 66 * mm, "以下の金額につきまして指定口座への御振込みをお願い致します。")
    pdf.setFont(font, 12)
    pdf.drawString(20 * mm, height - 78 * mm, "【ご購入内容】")
    pdf.setFont(font, 10)
    content = " / ".join(f"{name} {price:,}円 × {quantity}" for name, price, quantity in lines)
    y = _table(pdf, 20 * mm, height - 82 * mm, [
        ("注文番号", purchase.order_number),
        ("貿易登録番号", registration.number),
        ("企業名", registration.name),
        ("購入申込日", f"{purchase.ordered_on:%Y年%m月%d日}"),
        ("購入内容", content),
        ("決済種別", "銀行振込"),
    ])
    pdf.setFont(font, 14)
    pdf.drawString(20 * mm, y - 12 * mm, f"支払金額: {purchase.amount:,} 円")
    pdf.setFont(font, 10)
    pdf.drawString(20 * mm, y - 19 * mm, f"(内課税対象額: {purchase.amount - tax:,}円、内消費税額(10%): {tax:,}円)")
    pdf.setFont(font, 12)
    pdf.drawString(20 * mm, y - 32 * mm, "【振込先情報】")
    pdf.setFont(font, 10)
    y = _table(pdf, 20 * mm, y - 36 * mm, [
        ("振込先銀行名", f"{account.bank_name} ({account.bank_code})"),
        ("振込先支店名", f"{account.branch_name} ({account.branch_code})"),
        ("振込先口座種別", "普通"),
        ("振込先口座番号", account.account_number),
        ("振込先名義人名", account.holder),
        ("振込口座有効期限", f"{account.valid_until:%Y年%m月%d日}"),
    ])
    pdf.setFont(font, 8)
    pdf.drawString(20 * mm, y - 10 * mm, "※振込手数料はご購入者の負担となります。請求書は発行しません。本書をご利用ください。")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


async def purchase_transfer_request(ctx: Context, purchase_id: int) -> bytes:
    who = await require_viewer(ctx)
    async with ctx.services.db.read() as session:
        purchase = await session.get(CouponPurchase, purchase_id)
        if purchase is None or purchase.method != PurchaseMethod.BANK_TRANSFER:
            raise Forbidden()
        registration = await session.get(TradeRegistration, purchase.registration_id)
        account = await session.scalar(select(VirtualAccount).where(VirtualAccount.purchase_id == purchase.id))
        if registration is None or account is None:
            raise Forbidden()
        rows = (await session.scalars(select(CouponPurchaseLine).where(CouponPurchaseLine.purchase_id == purchase.id)
                                      .order_by(CouponPurchaseLine.id))).all()
    relations: set[str] = set()
    if who.account.registration_id == registration.id:
        relations.add("own_registration")
    if who.account.chamber_id == registration.chamber_id:
        relations.add("same_chamber")
    await authorize(ctx, who, "coupon.view", relations or {"none"})
    policy = ctx.services.rules.current
    names = {p.code: p.name for p in fees.coupon_products(policy, purchase.ordered_on, purchase.membership)}
    settings = ctx.services.settings
    return transfer_request_pdf(
        issuer=settings.invoice_issuer, registration_number_t=settings.invoice_registration_number,
        printed_on=ctx.clock.today(), purchase=purchase, registration=registration,
        lines=[(names.get(r.product_code, r.product_code), r.unit_price, r.quantity) for r in rows], account=account,
        tax=fees.tax_part(policy, purchase.ordered_on, purchase.amount),
    )


@dataclass(frozen=True)
class CardStatementData:
    """One クレジットカード決済 利用明細 (eco-payment-2026 §5): one per paid item."""

    statement_number: str
    registration_number: str
    company: str
    chamber: str
    content: str
    details: list[tuple[str, str]]  # e.g. 証明書番号, インボイス番号 — or 注文番号 for coupons
    paid_on: dt.date
    amount: int
    tax: int
    payment_number: str
    card: str  # brand and last four digits


def card_statement_pdf(*, issuer: str, registration_number_t: str, printed_on: dt.date, data: CardStatementData) -> bytes:
    buffer, pdf, _width, height = _issuer_page(
        f"クレジットカード決済 利用明細 {data.statement_number}", "クレジットカード決済 利用明細(控)", 18, issuer,
        registration_number_t, [f"発行日: {printed_on:%Y/%m/%d}", f"発行番号: {data.statement_number}"])
    font = _font()
    y = _table(pdf, 20 * mm, height - 70 * mm, [
        ("貿易登録番号", data.registration_number),
        ("企業名", data.company),
        ("証明書発給商工会議所", data.chamber),
    ])
    y = _table(pdf, 20 * mm, y - 8 * mm, [
        ("内容", data.content),
        *data.details,
        ("決済日", f"{data.paid_on:%Y年%m月%d日}"),
        ("決済金額", f"{data.amount:,}円 (内課税対象額 {data.amount - data.tax:,}円)"),
        ("内 消費税額(10%)", f"{data.tax:,}円"),
        ("支払区分", "一括"),
        ("クレジットカード決済番号", data.payment_number),
        ("カード", data.card),
    ])
    pdf.setFont(font, 8)
    pdf.drawString(20 * mm, y - 10 * mm, "※本明細は決済を行ったIDでのみ閲覧・印刷できます。")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


async def purchase_card_statement(ctx: Context, purchase_id: int) -> bytes:
    """The 利用明細 of a card coupon order: only the account that paid may see it."""
    who = await require_viewer(ctx)
    async with ctx.services.db.read() as session:
        payment = await session.scalar(select(CardPayment).where(CardPayment.purchase_id == purchase_id,
                                                                 CardPayment.status == CardPaymentStatus.PAID))
        if payment is None or payment.payer_id != who.account.id:
            raise Forbidden()
        purchase = await session.get(CouponPurchase, purchase_id)
        registration = await session.get(TradeRegistration, purchase.registration_id) if purchase else None
        chamber = await session.get(Chamber, registration.chamber_id) if registration else None
        number = await session.scalar(select(CardStatement.number).where(  # 発行番号, given as it settled
            CardStatement.card_payment_id == payment.id, CardStatement.card_payment_item_id.is_(None)))
        # reprinted under the rules the order was priced by, whatever the files say now
        policy = await rules_history.policy_of_record(session, purchase.rules_version if purchase else None,
                                                      ctx.services.rules.current)
    if purchase is None or purchase.paid_at is None or registration is None or chamber is None or number is None:
        raise Forbidden()
    paid_on = tokyo_date(purchase.paid_at)
    settings = ctx.services.settings
    return card_statement_pdf(
        issuer=settings.invoice_issuer, registration_number_t=settings.invoice_registration_number,
        printed_on=ctx.clock.today(), data=CardStatementData(
            statement_number=number,
            registration_number=registration.number, company=registration.name, chamber=chamber.name,
            content=f"クーポン購入 ({purchase.coupons}枚)", details=[("注文番号", purchase.order_number)],
            paid_on=paid_on, amount=payment.amount,
            tax=statement_tax(policy, purchase.ordered_on, payment.amount),
            payment_number=payment.payment_number, card=f"{payment.brand or ''} ****{payment.last4 or ''}"))


async def application_card_statement(ctx: Context, app_id: int) -> bytes:
    """One application's 利用明細 (eco-payment-2026 §5): only the account that paid."""
    statement = await statement_of(ctx, app_id)
    app, registration, payment = statement.application, statement.registration, statement.payment
    async with ctx.services.db.read() as session:
        chamber = await session.get(Chamber, registration.chamber_id)
        # the rules that fixed the fee at the first submission, whatever the files say now
        policy = await rules_history.policy_of_record(session, app.rules_version, ctx.services.rules.current)
    if chamber is None or app.submitted_on is None:
        raise Forbidden()
    settings = ctx.services.settings
    content = CERTIFICATE_TYPE_NAMES[CertificateType(app.type)] + (f"({app.signature_kind})" if app.signature_kind else "")
    return card_statement_pdf(
        issuer=settings.invoice_issuer, registration_number_t=settings.invoice_registration_number,
        printed_on=ctx.clock.today(), data=CardStatementData(
            statement_number=statement.number, registration_number=registration.number, company=registration.name,
            chamber=chamber.name, content=content,
            details=[("証明書番号", app.certificate_number or ""), ("インボイス番号", app.invoice_number)],
            paid_on=tokyo_date(statement.paid_at), amount=statement.amount,
            tax=statement_tax(policy, app.submitted_on, statement.amount),
            payment_number=payment.payment_number, card=f"{payment.brand or ''} ****{payment.last4 or ''}"))


async def certificate(ctx: Context, app_id: int) -> bytes:
    """The certificate PDF: those who may view the application, during the print window."""
    who = await require_viewer(ctx)
    try:
        app = await application_to_view(ctx, who, app_id)
    except UserFailure:
        raise Forbidden() from None
    if (app.state != ApplicationState.ISSUED or app.certificate_number is None or app.issued_at is None
            or not certificates.printable(ctx, app)):
        raise Forbidden()
    async with ctx.services.db.read() as session:
        content = await certificates.content_of(session, app, app.certificate_number, tokyo_date(app.issued_at))
    url = f"{ctx.services.settings.public_url}/verify?number={app.certificate_number}&code={app.access_code}"
    return certificate_pdf(content, app, url)


_ENGLISH_TITLES = {
    CertificateType.ORIGIN_JAPANESE: "CERTIFICATE OF ORIGIN",
    CertificateType.ORIGIN_FOREIGN: "CERTIFICATE OF ORIGIN",
    CertificateType.INVOICE: "INVOICE CERTIFICATION",
    CertificateType.SIGNATURE: "CERTIFICATION OF SIGNATURE",
}


def certificate_pdf(content: dict[str, Any], app: Application, verify_url: str) -> bytes:
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing

    buffer = io.BytesIO()
    pdf = _canvas(buffer)
    type_name = CERTIFICATE_TYPE_NAMES[CertificateType(app.type)]
    pdf.setTitle(f"{type_name} {app.certificate_number}")
    pdf.setAuthor(content["chamber"]["name"])
    pdf.setSubject(f"sha256:{app.content_hash} sig:{app.signature} kid:{app.key_id}")
    pdf.setKeywords(canonical(content).decode())  # the signed content, for offline verification
    font = _font()
    width, height = A4
    english = _ENGLISH_TITLES[CertificateType(app.type)]
    pdf.setFont(font, 18)
    pdf.drawCentredString(width / 2, height - 25 * mm, english)
    pdf.setFont(font, 12)
    pdf.drawCentredString(width / 2, height - 32 * mm, type_name)
    pdf.setFont(font, 9)
    pdf.drawRightString(width - 20 * mm, height - 40 * mm, f"Certificate No. 証明書番号: {app.certificate_number}")
    pdf.drawRightString(width - 20 * mm, height - 45 * mm, f"Date of issue 交付日: {content['issuedOn']}")
    y = _table(pdf, 20 * mm, height - 52 * mm, [
        ("1. Exporter 輸出者", content["exporter"]),
        ("2. Consignee 荷受人", content["consignee"] or "-"),
        ("3. Transport 輸送手段", content["transport"] or "-"),
        ("4. Destination 仕向地", content["destinationCountry"]),
        ("5. Invoice No. インボイス番号", content["invoiceNumber"]),
        ("6. Applicant 申請者", f"{content['applicant']['name']} ({content['applicant']['registrationNumber']})"),
    ], label_width=58 * mm)
    pdf.drawString(20 * mm, y - 8 * mm, "7. Goods 品目 (description / quantity / HS code / origin)")
    y -= 10 * mm
    for line in content["goods"] or [{"description": "-", "quantity": "", "hsCode": "", "originCountry": ""}]:
        y -= 6 * mm
        pdf.drawString(22 * mm, y, f"{line['description'][:70]}  /  {line['quantity']}  /  {line['hsCode']}  /  {line['originCountry']}")
    y -= 14 * mm
    pdf.drawString(20 * mm, y, "The undersigned hereby certifies, on the basis of the application, the content above.")
    pdf.drawString(20 * mm, y - 6 * mm, f"{content['chamber']['name']} ({content['chamber']['code']})")
    qr = QrCodeWidget(verify_url)
    x0, y0, x1, y1 = qr.getBounds()
    drawing = Drawing(32 * mm, 32 * mm, transform=[32 * mm / (x1 - x0), 0, 0, 32 * mm / (y1 - y0), 0, 0],
                      initialFontName=font)  # the drawing's default font, else it names Helvetica
    drawing.add(qr)
    renderPDF.draw(drawing, pdf, width - 52 * mm, 22 * mm)
    pdf.setFont(font, 7)
    signature = app.signature or ""  # an issued certificate is always signed
    lines = [f"Verify 検証: {verify_url}", f"Access code アクセスコード: {format_access_code(app.access_code)}",
             f"Content SHA-256: {app.content_hash}", f"Ed25519 signature (key {app.key_id}):",
             *(f"    {signature[i:i + 48]}" for i in range(0, len(signature), 48))]
    for i, line in enumerate(lines):  # left of the QR code
        pdf.drawString(20 * mm, (46 - 4.5 * i) * mm, line)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
