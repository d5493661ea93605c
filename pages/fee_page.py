"""The public fee schedule (料金表): ``GET /fees`` and ``/fees?on=YYYY-MM-DD`` as a printable
Japanese HTML page, and `tradecert rules show --format markdown|html`.

Every amount, title and product name comes from the rule files in force on the date; this
module only lays them out. The page is what a chamber publishes: the amounts and the dates
they apply from (or until), and a revision already in the files. ``?references=1`` is the
staff view of the same tables: the rules version, each table's file, version and source (出典),
each row's note (備考) and file/version/row (根拠) — the rule files' notes and sources are
written for staff (seed documents, English remarks) and are not published.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from resolvers.identity.names import Membership, RegistrationKind
from rules import fees
from rules.policy import PolicySet, RowRef, Version, in_force

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from resolvers.core.context import Services

MEMBERSHIP = {Membership.MEMBER: "会員", Membership.NON_MEMBER: "非会員"}
KIND = {RegistrationKind.APPLICANT: "申請者", RegistrationKind.AGENT: "代行業者"}
ROUNDING = {"floor": "切り捨て", "half_up": "四捨五入", "ceil": "切り上げ"}
ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"


@dataclass(frozen=True)
class Row:
    """One row as published (``cells``), with what only the staff view shows."""

    cells: tuple[str, ...]
    note: str  # the rule row's note, for staff
    where: str  # file, version and row


@dataclass(frozen=True)
class Section:
    """One table of the schedule: its rows from one version of one rule file."""

    title: str
    file: str
    version: Version
    on: dt.date
    next_from: dt.date | None  # the next version's effective_from, when one is already in the file
    columns: tuple[str, ...]
    rows: tuple[Row, ...]

    @property
    def upcoming(self) -> bool:
        """The version starts after the date shown: the oldest version answers for earlier
        dates too (rules/policy.py), but it is published as what applies from its date."""
        return self.on < self.version.effective_from


@dataclass(frozen=True)
class FeePage:
    on: dt.date
    rules_version: str
    tax_note: str
    tax_where: str
    sections: tuple[Section, ...]


def _yen(value: int | None) -> str:
    return "受付なし" if value is None else f"{value:,}円"


def _date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _where(rule: RowRef) -> str:
    return f"{rule.file} 第{rule.version}版 {rule.row}行目"


def _row(rule: RowRef, *cells: str) -> Row:
    return Row(cells, rule.note or "", _where(rule))


def _section(policy: PolicySet, table: str, on: dt.date, columns: tuple[str, ...], rows: Sequence[Row]) -> Section:
    t = policy.tables[table]
    version = in_force(t.versions, on)
    later = [v.effective_from for v in t.versions if v.number > version.number]
    title = (t.title or table).split(" (")[0]  # the files' titles read "発給申請手数料 (application fee …)"
    return Section(title, t.file, version, on, min(later) if later else None, columns, tuple(rows))


def build(policy: PolicySet, on: dt.date) -> FeePage:
    """The schedule in force on ``on`` (a Tokyo date), as the rule files state it."""
    tax = fees.tax_rule(policy, on)
    tax_note = (f"金額はすべて消費税({tax.integer('rate_percent')}%)込みです。"
                f"うち消費税額の1円未満の端数は{ROUNDING.get(tax.text('rounding'), tax.text('rounding'))}としています。")
    application = []
    for membership, label in MEMBERSHIP.items():
        fee = fees.application_fee(policy, on, membership)
        application.append(_row(fee.rule, label, _yen(fee.value)))
    registration = []
    for kind, kind_label in KIND.items():
        for membership, label in MEMBERSHIP.items():
            fee = fees.registration_fee(policy, on, kind, membership)
            registration.append(_row(fee.rule, kind_label, label, _yen(fee.value)))
    products = []
    for membership, label in MEMBERSHIP.items():
        for p in fees.coupon_products(policy, on, membership):
            products.append(_row(p.rule, p.name, label, f"{p.coupons:,}枚", _yen(p.price), _yen(p.face_value), _yen(p.tax)))
    deductions = []
    for values in in_force(policy.tables["pack_refund_deductions"].versions, on).rows:
        product = str(values["product"])
        d = fees.pack_refund_deduction(policy, on, product)
        names = sorted({p.name for m in MEMBERSHIP for p in fees.coupon_products(policy, on, m) if p.code == product})
        deductions.append(_row(d.rule, "・".join(names) or product, _yen(d.value)))
    costs = []
    for values in sorted(in_force(policy.tables["refund_transfer_costs"].versions, on).rows,
                         key=lambda r: int(str(r["refund_from"]))):
        low = int(str(values["refund_from"]))
        cost = fees.refund_transfer_cost(policy, on, low)
        high = cost.rule.optional_integer("refund_to")
        band = f"{low:,}円〜{high:,}円" if high is not None else f"{low:,}円以上"
        costs.append(_row(cost.rule, band, _yen(cost.value)))
    return FeePage(on, policy.version, tax_note, _where(tax), (
        _section(policy, "application_fees", on, ("区分", "手数料 (1件)"), application),
        _section(policy, "registration_fees", on, ("登録の種類", "区分", "登録料"), registration),
        _section(policy, "coupon_products", on, ("商品", "対象", "枚数", "価格", "額面", "うち消費税"), products),
        _section(policy, "pack_refund_deductions", on, ("商品", "返金時の控除額 (1綴りごと)"), deductions),
        _section(policy, "refund_transfer_costs", on, ("返金額", "差し引く諸経費"), costs),
    ))


STAFF_COLUMNS = ("備考", "根拠")  # the staff view's extra columns: the rule row's note, its file/version/row


def _period(section: Section, references: bool = False) -> str:
    """When the table applies, as published: from its date (until the next version's, when
    one is in the file); a version that starts after the date shown "applies from" it."""
    v = section.version
    if section.upcoming:
        text = f"{_date(v.effective_from)}から適用されます"
    else:
        until = f"{_date(v.effective_until)}まで" if v.effective_until else ""
        text = f"{_date(v.effective_from)}から{until}適用"
    return f"{text} ({section.file} 第{v.number}版)" if references else text


def _columns(section: Section, references: bool) -> tuple[str, ...]:
    return (*section.columns, *STAFF_COLUMNS) if references else section.columns


def _cells(row: Row, references: bool) -> tuple[str, ...]:
    return (*row.cells, row.note, row.where) if references else row.cells


def _tax_note(page: FeePage, references: bool) -> str:
    return f"{page.tax_note} ({page.tax_where})" if references else page.tax_note


def _link(on: dt.date, references: bool) -> str:
    return f"/fees?on={on.isoformat()}" + ("&references=1" if references else "")


# --------------------------------------------------------------------------- HTML

STYLE = """
 body { font-family: "IPAexGothic", "Hiragino Sans", "Noto Sans JP", sans-serif; color: #111; max-width: 60rem;
        margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }
 h1 { font-size: 1.5rem; margin-bottom: .25rem; } h2 { font-size: 1.15rem; margin: 1.75rem 0 .25rem; }
 .meta, .period, .source, .next { color: #444; font-size: .85rem; margin: .1rem 0; }
 .next { color: #a40; } .upcoming { color: #a40; font-weight: bold; }
 section { overflow-x: auto; }  /* a wide table scrolls inside its section, not the whole page (phones) */
 table { border-collapse: collapse; min-width: min(24rem, 100%); margin-top: .4rem; font-size: .92rem; }
 body.staff table { width: 100%; }
 th, td { border: 1px solid #999; padding: .3rem .5rem; text-align: left; vertical-align: top; white-space: nowrap; }
 td.note, td.rule { white-space: normal; }
 th { background: #eee; } td.amount, th.amount { text-align: right; white-space: nowrap; } td.rule { font-size: .75rem; color: #555; }
 form { margin: 1rem 0; font-size: .9rem; } .tax { margin-top: 1rem; }
 @media print {
   @page { size: A4; margin: 15mm; }
   body { margin: 0; max-width: none; font-size: 10pt; } form { display: none; }
   section { break-inside: avoid; overflow: visible; } th { background: #eee; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
 }
"""

AMOUNT_COLUMNS = {"手数料 (1件)", "登録料", "価格", "額面", "うち消費税", "返金時の控除額 (1綴りごと)", "差し引く諸経費", "枚数"}


AMOUNT_CLASS = ' class="amount"'


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def render_html(page: FeePage, references: bool = False) -> str:
    """The page; ``references``: the staff view (see the module's docstring)."""
    on = page.on.isoformat()
    view = "参照情報つき (職員用)" if references else ""
    parts = [
        '<!doctype html>\n<html lang="ja">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>手数料一覧 ({_e(_date(page.on))}現在){_e(' ' + view if view else '')} — 貿易関係証明発給システム</title>\n"
        f"<style>{STYLE}</style>\n</head>\n" + ('<body class="staff">\n' if references else "<body>\n"),
        f"<h1>手数料一覧 <small>{_e(_date(page.on))}現在</small></h1>\n",
    ]
    if references:
        parts.append(f'<p class="meta">{_e(view)} — ルール版 <code>{_e(page.rules_version)}</code> — 表示日 {_e(on)}'
                     f' — <a href="{_e(_link(page.on, False))}">公開用の表示</a></p>\n')
    parts += [
        '<form method="get" action="/fees"><label>表示する日付 <input type="date" name="on" '
        f'value="{_e(on)}"></label>' + ('<input type="hidden" name="references" value="1">' if references else "")
        + ' <button type="submit">表示</button></form>\n',
        f'<p class="tax">{_e(_tax_note(page, references))}</p>\n',
    ]
    for s in page.sections:
        period_css = "period upcoming" if s.upcoming else "period"
        parts.append(f"<section>\n<h2>{_e(s.title)}</h2>\n<p class=\"{period_css}\">{_e(_period(s, references))}</p>\n")
        if references and s.version.source:
            parts.append(f'<p class="source">出典: {_e(s.version.source)}</p>\n')
        if s.next_from:
            parts.append(f'<p class="next">{_e(_date(s.next_from))}に改定されます'
                         f' (<a href="{_e(_link(s.next_from, references))}">改定後の手数料</a>)。</p>\n')
        columns = _columns(s, references)
        parts.append("<table>\n<thead><tr>" + "".join(f"<th{AMOUNT_CLASS if c in AMOUNT_COLUMNS else ''}>{_e(c)}</th>" for c in columns) + "</tr></thead>\n<tbody>\n")
        for row in s.rows:
            cells = []
            for column, cell in zip(columns, _cells(row, references)):
                css = (' class="amount"' if column in AMOUNT_COLUMNS else ' class="rule"' if column == "根拠"
                       else ' class="note"' if column == "備考" else "")
                cells.append(f"<td{css}>{_e(cell)}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>\n")
        parts.append("</tbody>\n</table>\n</section>\n")
    parts.append("</body>\n</html>\n")
    return "".join(parts)


# --------------------------------------------------------------------------- Markdown


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(page: FeePage, references: bool = False) -> str:
    lines = [f"# 手数料一覧 ({_date(page.on)}現在)", ""]
    if references:
        lines += [f"ルール版 `{page.rules_version}`", ""]
    lines += [_md(_tax_note(page, references))]
    for s in page.sections:
        lines += ["", f"## {_md(s.title)}", "", _md(_period(s, references))]
        if references and s.version.source:
            lines += ["", f"出典: {_md(s.version.source)}"]
        if s.next_from:
            lines += ["", f"{_date(s.next_from)}に改定されます。"]
        columns = _columns(s, references)
        lines += ["", "| " + " | ".join(_md(c) for c in columns) + " |",
                  "|" + "|".join("---:" if c in AMOUNT_COLUMNS else "---" for c in columns) + "|"]
        lines += ["| " + " | ".join(_md(c) for c in _cells(row, references)) + " |" for row in s.rows]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- route


def parse_day(value: str | None) -> dt.date | None:
    """``YYYY-MM-DD`` as a date; None when it is not one."""
    if value is None or not ISO_DATE.match(value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def routes(services: Services) -> list[Route]:
    """``GET /fees``: public, in production too (the schedule chambers publish)."""
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from pages.common import page_headers

    headers = page_headers(PAGE_CSP)

    async def fee_page(request: Request) -> Response:
        raw = request.query_params.get("on")
        day = services.clock.today() if raw is None or raw == "" else parse_day(raw)
        if day is None:
            shown = raw[:40] if raw else ""
            body = (f'<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>日付の誤り</title></head><body>'
                    f"<h1>日付の形式が正しくありません</h1><p>「{_e(shown)}」は日付として読めません。"
                    "日付は YYYY-MM-DD の形式 (例: 2026-04-01) で指定してください。</p>"
                    '<p><a href="/fees">本日の手数料一覧</a></p></body></html>')
            return HTMLResponse(body, status_code=400, headers=headers)
        references = request.query_params.get("references") == "1"
        return HTMLResponse(render_html(build(services.rules.current, day), references), headers=headers)

    return [Route("/fees", fee_page, methods=["GET"])]
