"""Drawing PDFs from plain data (boxes and text), with an embedded Japanese TrueType font.

The domains decide who may download what and build the content (resolvers/applications/documents.py,
resolvers/payments/documents.py, resolvers/coupons/documents.py, resolvers/naccs/documents.py); this
module only draws what it is given and knows no domain."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

# Every PDF draws all its text, Latin included, with this one TrueType font, embedded as a subset of the
# glyphs it uses: a reader without Japanese fonts sees what was issued (a CID font or Helvetica left the
# glyphs to the reader's machine). Licence and source: fonts/README.md.
FONT = "IPAexGothic"
FONT_FILE = Path(__file__).parent / "fonts" / "ipaexg.ttf"
_registered = False


def font() -> str:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(TTFont(FONT, FONT_FILE))
        _registered = True
    return FONT


def a4_canvas(buffer: io.BytesIO) -> canvas.Canvas:
    """An A4 canvas whose every font is ours: the page's initial font too, else each page names Helvetica."""
    # types-reportlab types initialFontName as a float; ReportLab takes a font name
    return canvas.Canvas(buffer, pagesize=A4, pageCompression=1, initialFontName=font())  # type: ignore[arg-type]


def table(pdf: canvas.Canvas, x: float, y: float, rows: list[tuple[str, str]], width: float = 170 * mm,
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
    pdf = a4_canvas(buffer)
    pdf.setTitle(title)
    pdf.setAuthor(issuer)
    width, height = A4
    pdf.setFont(font(), size)
    pdf.drawCentredString(width / 2, height - 30 * mm, heading)
    pdf.setFont(font(), 10)
    for i, line in enumerate([issuer, f"登録番号: {registration_number_t}", *lines]):
        pdf.drawRightString(width - 20 * mm, height - (42 + 6 * i) * mm, line)
    return buffer, pdf, width, height



@dataclass(frozen=True)
class TransferRequestData:
    """One 振込依頼書 (eco-payment-2026): the order, its amount with the tax part, and where to pay."""

    order_number: str
    registration_number: str
    company: str
    ordered_on: dt.date
    lines: list[tuple[str, int, int]]  # product name, unit price, quantity
    amount: int
    tax: int
    bank_name: str
    bank_code: str
    branch_name: str
    branch_code: str
    account_number: str
    holder: str
    valid_until: dt.date


def transfer_request_pdf(*, issuer: str, registration_number_t: str, printed_on: dt.date,
                         data: TransferRequestData) -> bytes:
    """振込依頼書 as in eco-payment-2026: order, amount with its tax part, and where to pay."""
    buffer, pdf, _width, height = _issuer_page(f"振込依頼書 {data.order_number}", "振込依頼書", 20, issuer,
                                              registration_number_t, [f"印刷日: {printed_on:%Y/%m/%d}"])
    face = font()
    pdf.drawString(20 * mm, height - 66 * mm, "以下の金額につきまして指定口座への御振込みをお願い致します。")
    pdf.setFont(face, 12)
    pdf.drawString(20 * mm, height - 78 * mm, "【ご購入内容】")
    pdf.setFont(face, 10)
    content = " / ".join(f"{name} {price:,}円 × {quantity}" for name, price, quantity in data.lines)
    y = table(pdf, 20 * mm, height - 82 * mm, [
        ("注文番号", data.order_number),
        ("貿易登録番号", data.registration_number),
        ("企業名", data.company),
        ("購入申込日", f"{data.ordered_on:%Y年%m月%d日}"),
        ("購入内容", content),
        ("決済種別", "銀行振込"),
    ])
    pdf.setFont(face, 14)
    pdf.drawString(20 * mm, y - 12 * mm, f"支払金額: {data.amount:,} 円")
    pdf.setFont(face, 10)
    pdf.drawString(20 * mm, y - 19 * mm, f"(内課税対象額: {data.amount - data.tax:,}円、内消費税額(10%): {data.tax:,}円)")
    pdf.setFont(face, 12)
    pdf.drawString(20 * mm, y - 32 * mm, "【振込先情報】")
    pdf.setFont(face, 10)
    y = table(pdf, 20 * mm, y - 36 * mm, [
        ("振込先銀行名", f"{data.bank_name} ({data.bank_code})"),
        ("振込先支店名", f"{data.branch_name} ({data.branch_code})"),
        ("振込先口座種別", "普通"),
        ("振込先口座番号", data.account_number),
        ("振込先名義人名", data.holder),
        ("振込口座有効期限", f"{data.valid_until:%Y年%m月%d日}"),
    ])
    pdf.setFont(face, 8)
    pdf.drawString(20 * mm, y - 10 * mm, "※振込手数料はご購入者の負担となります。請求書は発行しません。本書をご利用ください。")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


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
    face = font()
    y = table(pdf, 20 * mm, height - 70 * mm, [
        ("貿易登録番号", data.registration_number),
        ("企業名", data.company),
        ("証明書発給商工会議所", data.chamber),
    ])
    y = table(pdf, 20 * mm, y - 8 * mm, [
        ("内容", data.content),
        *data.details,
        ("決済日", f"{data.paid_on:%Y年%m月%d日}"),
        ("決済金額", f"{data.amount:,}円 (内課税対象額 {data.amount - data.tax:,}円)"),
        ("内 消費税額(10%)", f"{data.tax:,}円"),
        ("支払区分", "一括"),
        ("クレジットカード決済番号", data.payment_number),
        ("カード", data.card),
    ])
    pdf.setFont(face, 8)
    pdf.drawString(20 * mm, y - 10 * mm, "※本明細は決済を行ったIDでのみ閲覧・印刷できます。")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()



@dataclass(frozen=True)
class CertificateData:
    """What a certificate PDF shows, as text: the domain fills it from the signed content."""

    title: str  # the document title: type name and certificate number
    english_title: str
    type_name: str
    certificate_number: str
    issued_on: str
    author: str  # the chamber's name
    subject: str  # hash, signature and key id
    keywords: str  # the signed content, for offline verification
    rows: list[tuple[str, str]]  # 1. to 6.
    goods: list[str]
    chamber: str  # name (code)
    verify_url: str
    footer: list[str]  # left of the QR code


def certificate_pdf(data: CertificateData) -> bytes:
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing

    buffer = io.BytesIO()
    pdf = a4_canvas(buffer)
    pdf.setTitle(data.title)
    pdf.setAuthor(data.author)
    pdf.setSubject(data.subject)
    pdf.setKeywords(data.keywords)
    face = font()
    width, height = A4
    pdf.setFont(face, 18)
    pdf.drawCentredString(width / 2, height - 25 * mm, data.english_title)
    pdf.setFont(face, 12)
    pdf.drawCentredString(width / 2, height - 32 * mm, data.type_name)
    pdf.setFont(face, 9)
    pdf.drawRightString(width - 20 * mm, height - 40 * mm, f"Certificate No. 証明書番号: {data.certificate_number}")
    pdf.drawRightString(width - 20 * mm, height - 45 * mm, f"Date of issue 交付日: {data.issued_on}")
    y = table(pdf, 20 * mm, height - 52 * mm, data.rows, label_width=58 * mm)
    pdf.drawString(20 * mm, y - 8 * mm, "7. Goods 品目 (description / quantity / HS code / origin)")
    y -= 10 * mm
    for line in data.goods:
        y -= 6 * mm
        pdf.drawString(22 * mm, y, line)
    y -= 14 * mm
    pdf.drawString(20 * mm, y, "The undersigned hereby certifies, on the basis of the application, the content above.")
    pdf.drawString(20 * mm, y - 6 * mm, data.chamber)
    qr = QrCodeWidget(data.verify_url)
    x0, y0, x1, y1 = qr.getBounds()
    drawing = Drawing(32 * mm, 32 * mm, transform=[32 * mm / (x1 - x0), 0, 0, 32 * mm / (y1 - y0), 0, 0],
                      initialFontName=face)  # the drawing's default font, else it names Helvetica
    drawing.add(qr)
    renderPDF.draw(drawing, pdf, width - 52 * mm, 22 * mm)
    pdf.setFont(face, 7)
    for i, line in enumerate(data.footer):  # left of the QR code
        pdf.drawString(20 * mm, (46 - 4.5 * i) * mm, line)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _titled(title: str) -> tuple[io.BytesIO, canvas.Canvas, float]:
    buffer = io.BytesIO()
    pdf = a4_canvas(buffer)
    pdf.setTitle(title)
    face = font()
    width, height = A4
    pdf.setFont(face, 16)
    pdf.drawCentredString(width / 2, height - 28 * mm, title)
    pdf.setFont(face, 10)
    return buffer, pdf, height


def form_pdf(title: str, rows: list[tuple[str, str]], lines: list[str]) -> bytes:
    """A titled form: a table of rows, then one line of text after another."""
    buffer, pdf, height = _titled(title)
    y = table(pdf, 20 * mm, height - 40 * mm, rows)
    y -= 8 * mm
    for line in lines:
        pdf.drawString(20 * mm, y, line)
        y -= 6 * mm
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def notice_pdf(title: str, rows: list[tuple[str, str]], heading: str, items: list[str], footnote: str) -> bytes:
    """A titled notice: a table of rows, a heading over indented items, and a small footnote."""
    buffer, pdf, height = _titled(title)
    y = table(pdf, 20 * mm, height - 40 * mm, rows)
    y -= 8 * mm
    pdf.drawString(20 * mm, y, heading)
    for item in items:
        y -= 6 * mm
        pdf.drawString(24 * mm, y, item)
    y -= 12 * mm
    pdf.setFont(font(), 8)
    pdf.drawString(20 * mm, y, footnote)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
