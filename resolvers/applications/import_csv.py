"""Applications from a CSV file (``tradecert applications import``; the layout is
docs/applications-import.md): one application per line, goods lines in numbered columns
(``goods1Description`` … ``goods1OriginCountry``, ``goods2…``), so an exporter fills one
row per application in Excel.

The file is read whole, every line checked with the checks of ``createApplications`` and
every problem reported as its line and column; with none, the lines are created by
``bulk.create_applications`` in one transaction — all or nothing. The idempotency key is
the file's SHA-256 (and encoding): importing the same file again as the same account
creates nothing more and answers the applications of the first import.

Encoding: UTF-8, with or without a BOM (Excel's "CSV UTF-8"), or Shift_JIS as Japanese
Excel writes "CSV (カンマ区切り)" (cp932, Microsoft's Shift_JIS with its extra characters).
Without ``encoding`` the file is read as UTF-8 when it is valid UTF-8, else as cp932 when it
holds at least one of cp932's two-byte characters (kanji, kana, full-width forms): Japanese
text in one is practically never valid in the other, and ASCII is both. A file that is not
UTF-8 and has no such character — ASCII with stray bytes, say — is refused, not read as cp932.

The file is read as strict CSV (an unclosed quote, text after a closing quote and a cell over
``csv.field_size_limit()`` are one problem naming the line, never a traceback), and a header
wider than the layout can be is refused before its cells are looked at.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from resolvers.applications import bulk
from resolvers.applications import messages as words
from resolvers.applications.names import CertificateType, FeePayment
from resolvers.applications.use_cases import ApplicationData, GoodsInput
from resolvers.core.context import Context
from resolvers.core.errors import UserFailure, UserFailures
from resolvers.core.messages import Words

# column → ApplicationData attribute (the API's input names, so the layout reads like the API)
COLUMNS = {
    "type": "type", "destinationCountry": "destination_country", "goodsCategory": "goods_category",
    "invoiceNumber": "invoice_number", "exporterName": "exporter_name", "feePayment": "fee_payment",
    "signatureKind": "signature_kind", "consignee": "consignee", "transport": "transport",
    "personInCharge": "person_in_charge",
}
REQUIRED_COLUMNS = ("type", "destinationCountry", "goodsCategory", "invoiceNumber", "exporterName", "feePayment")
GOODS_PARTS = {"description": "Description", "quantity": "Quantity", "hsCode": "HsCode", "originCountry": "OriginCountry"}
GOODS_COLUMN = re.compile(r"goods([1-9][0-9]?)(Description|Quantity|HsCode|OriginCountry)", re.IGNORECASE)
# values an exporter may type besides the API's names: the certificate names it sees on the forms
TYPE_NAMES = {"原産地証明書(日本産)": CertificateType.ORIGIN_JAPANESE, "原産地証明書(外国産)": CertificateType.ORIGIN_FOREIGN,
              "インボイス証明": CertificateType.INVOICE, "サイン証明": CertificateType.SIGNATURE}
PAYMENT_NAMES = {"クーポン": FeePayment.COUPON, "カード": FeePayment.CARD, "クレジットカード": FeePayment.CARD}
ENCODINGS = ("auto", "utf-8", "cp932")
GOODS_GROUPS = 99  # goods1 … goods99
MAX_COLUMNS = len(COLUMNS) + GOODS_GROUPS * len(GOODS_PARTS)  # the widest header the layout has: 406
ECHOED = 40  # characters of a header cell repeated in a problem; the rest is "…"


@dataclass(frozen=True)
class Problem:
    """What is wrong, where: ``line`` 0 is the file as a whole; ``column`` the header name and
    ``letter`` its column as Excel names it (A, B, …, AA)."""

    line: int
    column: str | None
    letter: str | None
    words: Words

    def text(self, language: str) -> str:
        where = "" if self.line == 0 else f"line {self.line}"
        if self.column is not None:
            where += f", column {self.letter} ({self.column})" if self.letter else f", column {self.column}"
        message = self.words.in_(language)
        return f"{where}: {message}" if where else message


class CsvRefused(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s)")


@dataclass(frozen=True)
class Row:
    line: int
    data: ApplicationData
    goods_numbers: list[int] = field(default_factory=list)  # goods[i] came from the goods{n} columns, n = goods_numbers[i]


@dataclass(frozen=True)
class Imported:
    encoding: str
    created: list[tuple[Row, int]]  # each line with its application's id


def letter(index: int) -> str:
    """Excel's name of the 0-based column ``index``: A … Z, AA …"""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def _has_double_byte(text: str) -> bool:
    """Whether cp932 ``text`` holds a two-byte character (kanji, kana, full-width forms): what
    Japanese text has and ASCII with a stray byte (read as one-byte 0x80, 0xA0, 0xFD–0xFF or
    half-width katakana) has not."""
    return any(len(char.encode("cp932")) == 2 for char in set(text) if not char.isascii())


def decode(data: bytes, encoding: str = "auto") -> tuple[str, str]:
    """The text and the encoding it was read in; a BOM is dropped."""
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0  # utf-8-sig counts after it
    if bom and encoding == "auto":
        encoding = "utf-8"  # a file that begins with the UTF-8 BOM says what it is
    if encoding != "auto":
        try:
            return data.decode("utf-8-sig" if encoding == "utf-8" else encoding), encoding
        except UnicodeDecodeError as exc:
            at = exc.start + 1 + (bom if encoding == "utf-8" else 0)
            raise CsvRefused([Problem(0, None, None, words.CSV_NOT_ENCODING.format(encoding=encoding, position=at))]) from None
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        not_utf8 = exc.start + 1 + bom
    try:
        text = data.decode("cp932")
    except UnicodeDecodeError as exc:
        raise CsvRefused([Problem(0, None, None, words.CSV_NOT_TEXT.format(position=exc.start + 1))]) from None
    if not _has_double_byte(text):
        raise CsvRefused([Problem(0, None, None, words.CSV_NOT_UTF8_AUTO.format(position=not_utf8))])
    return text, "cp932"


def _canonical(header: str) -> str | None:
    """The column a header cell names (case and surrounding spaces ignored), or None."""
    wanted = header.strip().lower()
    for name in COLUMNS:
        if name.lower() == wanted:
            return name
    match = GOODS_COLUMN.fullmatch(header.strip())
    if match:
        part = next(p for p in GOODS_PARTS.values() if p.lower() == match.group(2).lower())
        return f"goods{int(match.group(1))}{part}"
    return None


def _echoed(cell: str) -> str:
    """A header cell as a problem repeats it: cut at ``ECHOED`` characters."""
    cell = cell.strip()
    return cell if len(cell) <= ECHOED else cell[:ECHOED] + "…"


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Each record of the file with the physical line it starts on. Strict CSV: a file the
    reader cannot read raises ``CsvRefused`` naming the line of the record it stopped in."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    ended = 0  # the physical line the previous record ended on
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CsvRefused([Problem(ended + 1, None, None, _csv_problem(str(exc)))]) from None
        start, ended = ended + 1, reader.line_num
        yield start, cells


def _csv_problem(error: str) -> Words:
    """The csv module's error as the words of a problem."""
    if error == "unexpected end of data":  # strict: the file ended inside a quoted cell
        return words.CSV_QUOTE_NOT_CLOSED
    if error.startswith("field larger than field limit"):
        return words.CSV_CELL_TOO_LONG.format(limit=csv.field_size_limit())
    if error.startswith("',' expected after"):
        return words.CSV_TEXT_AFTER_QUOTE
    return words.CSV_NOT_CSV.format(detail=error)


def parse(text: str) -> tuple[list[Row], list[str]]:
    """The rows of the file and its columns by position (their canonical names)."""
    problems: list[Problem] = []
    header: list[str] | None = None
    columns: list[str] = []
    rows: list[Row] = []
    for start, cells in _records(text):
        if not any(c.strip() for c in cells):
            continue  # a blank line (Excel writes ",,,," for an emptied row)
        if header is None:
            header = cells
            if len(cells) > MAX_COLUMNS:  # before looking at each: 200,000 unknown columns are one problem
                raise CsvRefused([Problem(start, None, None, words.CSV_TOO_WIDE.format(count=len(cells), most=MAX_COLUMNS))])
            for i, cell in enumerate(cells):
                name = _canonical(cell)
                if name is None or name in columns:
                    problems.append(Problem(start, _echoed(cell) or f"#{i + 1}", letter(i),
                                            words.CSV_UNKNOWN_COLUMN if name is None else words.CSV_REPEATED_COLUMN))
                columns.append(name or "")
            problems.extend(Problem(start, None, None, words.CSV_MISSING_COLUMN.format(column=name))
                            for name in REQUIRED_COLUMNS if name not in columns)
            if problems:
                raise CsvRefused(problems)
            continue
        if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns):]):
            problems.append(Problem(start, None, letter(len(columns)), words.CSV_EXTRA_CELLS))
            continue
        rows.append(_row(start, columns, cells))
    if header is None:
        raise CsvRefused([Problem(0, None, None, words.CSV_NO_HEADER)])
    if problems:
        raise CsvRefused(problems)
    return rows, columns


def _row(line: int, columns: Sequence[str], cells: Sequence[str]) -> Row:
    values: dict[str, str | None] = {}
    goods: dict[int, dict[str, str]] = {}
    for name, cell in zip(columns, cells):
        value = cell if cell.strip() else None
        if name in COLUMNS:
            values[COLUMNS[name]] = value
            continue
        match = GOODS_COLUMN.fullmatch(name)
        if match and value is not None:
            goods.setdefault(int(match.group(1)), {})[match.group(2)] = value
    kind, payment = values.get("type"), values.get("fee_payment")
    if kind is not None:
        kind = TYPE_NAMES.get(kind.strip(), kind.strip().upper())
    if payment is not None:
        payment = PAYMENT_NAMES.get(payment.strip(), payment.strip().upper())
    numbers = sorted(goods)
    lines = [GoodsInput(goods[n].get("Description", ""), goods[n].get("Quantity", ""), goods[n].get("HsCode", ""),
                        goods[n].get("OriginCountry", "")) for n in numbers]
    data = ApplicationData(
        type=kind, destination_country=values.get("destination_country"), goods_category=values.get("goods_category"),
        invoice_number=values.get("invoice_number"), exporter_name=values.get("exporter_name"), fee_payment=payment,
        signature_kind=values.get("signature_kind"), consignee=values.get("consignee"), transport=values.get("transport"),
        person_in_charge=values.get("person_in_charge"), goods=lines or None)
    return Row(line, data, numbers)


def _where(failure: UserFailure, rows: Sequence[Row], columns: Sequence[str]) -> Problem:
    """A failure of ``["input", "applications", i, field, …]`` as the line and column it came from."""
    path = failure.field or []
    message = Words(failure.message("ja"), failure.message("en"))
    if len(path) < 3 or not path[2].isdigit():
        return Problem(0, None, None, message)
    row = rows[int(path[2])]
    rest = path[3:]
    column: str | None = None
    if rest and rest[0] in COLUMNS:
        column = rest[0]
    elif rest[:1] == ["goods"] and len(rest) == 3 and rest[1].isdigit() and int(rest[1]) < len(row.goods_numbers):
        column = f"goods{row.goods_numbers[int(rest[1])]}{GOODS_PARTS.get(rest[2], rest[2])}"
    at = letter(columns.index(column)) if column in columns else None
    return Problem(row.line, column, at, message)


async def import_applications(ctx: Context, data: bytes, encoding: str = "auto") -> Imported:
    """Every line of the file as a new draft of the context's viewer, in one transaction, or
    ``CsvRefused`` with every problem (nothing written)."""
    text, used = decode(data, encoding)
    rows, columns = parse(text)
    key = f"csv:{used}:{hashlib.sha256(data).hexdigest()}"
    try:
        ids = await bulk.create_applications(ctx, [row.data for row in rows], idempotency_key=key)
    except (UserFailure, UserFailures) as failure:
        failures = failure.failures if isinstance(failure, UserFailures) else [failure]
        raise CsvRefused(sorted((_where(f, rows, columns) for f in failures),
                                key=lambda p: (p.line, columns.index(p.column) if p.column in columns else -1))) from None
    return Imported(used, list(zip(rows, ids)))
