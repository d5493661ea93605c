"""Deposit statements from the bank: the Zengin (全銀協) 振込入金通知 fixed-length format
and a plain CSV. Every problem names the line (record) and the value.

Zengin, type code 01 (振込入金通知), JIS code set, 200-byte records with or without CR LF;
one header/data…/trailer group per account (here: per one-time virtual account):

  header  1  データ区分 "1" · 2-3 種別コード "01" · 4 コード区分 "0" · 5-10 作成日 ·
             11-16/17-22 勘定日(自/至) · 23-26 銀行コード · 27-41 銀行名 · 42-44 支店コード ·
             45-59 支店名 · 60 預金種目 · 61-67 口座番号 · 68-107 口座名 · 108-200 ダミー
  data    1  "2" · 2-7 照会番号 · 8-13 勘定日 · 14-19 起算日 · 20-29 金額 N(10) ·
             30-39 うち他店券金額 · 40-49 振込依頼人コード · 50-97 振込依頼人名 (半角カナ) ·
             98-112 仕向銀行名 · 113-127 仕向店名 · 128 取消区分 · 129-148 EDI情報 · 149-200
  trailer 1  "8" · 2-7 件数 · 8-19 金額合計 N(12) · 20-25 取消件数 · 26-37 取消金額 · 38-200
  end     1  "9"

Dates are Japanese-era YYMMDD (Reiwa; a year beyond the current Reiwa year is read as
Heisei). Type code 03 (入出金取引明細) has a different data layout and is refused with a
clear message until it is built against a bank's specification.

CSV: a header line ``account_number,amount,deposited_on,payer_name,deposit_id`` (UTF-8 or
Shift_JIS), dates as YYYY-MM-DD.

Every deposit keeps the line (record) it was read from, so every later problem — a bad
field, an unknown account, a repeat — names the line too (``describe``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from resolvers.adapters.bank import MAX_DEPOSIT, MAX_DEPOSIT_ID, MAX_PAYER_NAME, DepositInput
from resolvers.core.errors import ErrorCode, UserFailure

RECORD = 200
REIWA_START = 2018  # 令和1年 = 2019
HEISEI_START = 1988


class StatementFormat(StrEnum):
    ZENGIN_01 = "zengin-01"  # 全銀協 振込入金通知
    CSV = "csv"


class StatementError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Statement:
    format: StatementFormat
    deposits: list[DepositInput]
    cancelled: int = 0  # records with 取消区分 set: not deposits
    cancellations: list[str] = field(default_factory=list)  # one line per cancelled notice, for a person to check


def _wareki(text: str, today: dt.date) -> dt.date:
    yy, mm, dd = int(text[0:2]), int(text[2:4]), int(text[4:6])
    year = REIWA_START + yy if REIWA_START + yy <= today.year + 1 else HEISEI_START + yy
    return dt.date(year, mm, dd)


def _records(data: bytes) -> list[bytes]:
    body = data.replace(b"\r\n", b"").replace(b"\n", b"") if b"\n" in data else data
    if len(body) % RECORD:
        raise StatementError([f"file: {len(body)} bytes is not a whole number of {RECORD}-byte records"])
    return [body[i:i + RECORD] for i in range(0, len(body), RECORD)]


def _text(record: bytes, start: int, end: int) -> str:
    """1-based inclusive positions, as in the Zengin tables."""
    return record[start - 1:end].decode("cp932", errors="replace").strip()


def _number(record: bytes, start: int, end: int, line: int, name: str, problems: list[str]) -> int | None:
    raw = record[start - 1:end].decode("ascii", errors="replace")
    if not raw.isdigit():
        problems.append(f"line {line}: {name} {raw!r} is not a number")
        return None
    return int(raw)


def parse_zengin(data: bytes, today: dt.date) -> Statement:
    records = _records(data)
    problems: list[str] = []
    deposits: list[DepositInput] = []
    cancelled = 0
    cancellations: list[str] = []
    account = bank = branch = None
    group_count = group_total = 0
    ended = False
    for line, record in enumerate(records, start=1):
        kind = record[0:1]
        if ended:
            problems.append(f"line {line}: record after the end record (9)")
            break
        if kind == b"1":
            code = record[1:3].decode("ascii", errors="replace")
            if code == "03":
                problems.append(f"line {line}: 種別コード 03 (入出金取引明細) is not supported yet; ask the bank for 01 (振込入金通知) or CSV")
                break
            if code != "01":
                problems.append(f"line {line}: 種別コード {code!r} is not 01 (振込入金通知)")
                break
            if record[3:4] != b"0":
                problems.append(f"line {line}: コード区分 {record[3:4]!r} is not 0 (JIS)")
            bank, branch = _text(record, 23, 26), _text(record, 42, 44)
            if not re.fullmatch(r"[0-9]{4}", bank):
                problems.append(f"line {line}: 銀行コード {bank!r} is not 4 digits")
            if not re.fullmatch(r"[0-9]{3}", branch):
                problems.append(f"line {line}: 支店コード {branch!r} is not 3 digits")
            account = record[60:67].decode("ascii", errors="replace")
            if not re.fullmatch(r"[0-9]{7}", account):
                problems.append(f"line {line}: 口座番号 {account!r} is not 7 digits")
            group_count = group_total = 0
        elif kind == b"2":
            if account is None:
                problems.append(f"line {line}: data record before any header record")
                continue
            inquiry = _number(record, 2, 7, line, "照会番号", problems)
            amount = _number(record, 20, 29, line, "金額", problems)
            try:
                booked = _wareki(record[7:13].decode("ascii"), today)
            except (ValueError, UnicodeDecodeError):
                problems.append(f"line {line}: 勘定日 {record[7:13]!r} is not a date (和暦 YYMMDD)")
                booked = None
            if inquiry is None or amount is None or booked is None:
                continue
            if _text(record, 128, 128) not in ("", "0"):  # 取消: the bank cancels an earlier notice
                cancelled += 1
                cancellations.append(
                    f"line {line}: 取消 (cancellation) of 照会番号 {inquiry:06d}, account {account}, {amount:,} yen on "
                    f"{booked:%Y-%m-%d}: not a deposit and not applied; if that deposit was recorded, check its order by hand")
                continue
            deposits.append(DepositInput(
                account_number=account, amount=amount, deposited_on=booked,
                payer_name=_text(record, 50, 97) or None, deposit_id=f"{bank}-{branch}-{account}-{booked:%Y%m%d}-{inquiry:06d}",
                line=line,
            ))
            group_count += 1
            group_total += amount
        elif kind == b"8":
            count = _number(record, 2, 7, line, "件数", problems)
            total = _number(record, 8, 19, line, "金額合計", problems)
            if count is not None and count != group_count:
                problems.append(f"line {line}: trailer says {count} deposits, the group holds {group_count}")
            if total is not None and total != group_total:
                problems.append(f"line {line}: trailer says {total} yen, the group's deposits sum to {group_total}")
            account = None
        elif kind == b"9":
            ended = True
        else:
            problems.append(f"line {line}: データ区分 {kind!r} is not 1, 2, 8 or 9")
    if not problems and not ended:
        problems.append(f"line {len(records)}: the file has no end record (9)")
    if problems:
        raise StatementError(problems)
    return Statement(StatementFormat.ZENGIN_01, deposits, cancelled, cancellations)


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Shift_JIS (cp932); neither names the line that breaks."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as utf8:
        try:
            return data.decode("cp932")
        except UnicodeDecodeError as sjis:
            at = max(utf8.start, sjis.start)  # where the likelier of the two gives up
            line = data[:at].count(b"\n") + 1
            raise StatementError([f"line {line}: byte {data[at]:#04x} is neither UTF-8 nor Shift_JIS (cp932) text; "
                                  "save the file in one of them"]) from None


CsvRow = dict[str | Any, str | Any]  # csv.DictReader's row


def _rows(text: str) -> tuple[Sequence[str] | None, Iterator[tuple[int, CsvRow]]]:
    """The header and the (line, row) of a CSV text; a malformed CSV line is a
    StatementError naming it."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise StatementError([f"line 1: {exc}"]) from None
    return fieldnames, _lines(reader)


def _lines(reader: csv.DictReader[str]) -> Iterator[tuple[int, CsvRow]]:
    read = reader.line_num  # the last line of the last record read: a malformed record starts after it
    try:
        for row in reader:
            yield read + 1, row
            read = reader.line_num
    except csv.Error as exc:
        raise StatementError([f"line {read + 1}: {exc}"]) from None


def parse_csv(data: bytes) -> Statement:
    fieldnames, rows = _rows(_decode(data))
    expected = ["account_number", "amount", "deposited_on", "payer_name", "deposit_id"]
    if fieldnames is None or [(f or "").strip() for f in fieldnames][:3] != expected[:3]:
        raise StatementError([f"line 1: header must be {','.join(expected)} (got {fieldnames!r})"])
    problems: list[str] = []
    deposits: list[DepositInput] = []
    for line, row in rows:
        number = (row.get("account_number") or "").strip()
        raw_amount = (row.get("amount") or "").replace(",", "").strip()
        if not re.fullmatch(r"[0-9]{1,12}", raw_amount):
            problems.append(f"line {line}: amount {row.get('amount')!r} is not a whole number of yen")
            continue
        amount = int(raw_amount)
        try:
            on = dt.date.fromisoformat((row.get("deposited_on") or "").strip())
        except ValueError:
            problems.append(f"line {line}: deposited_on {row.get('deposited_on')!r} is not YYYY-MM-DD")
            continue
        if not re.fullmatch(r"[0-9]{7}", number):
            problems.append(f"line {line}: account_number {number!r} is not 7 digits")
            continue
        deposits.append(DepositInput(number, amount, on, (row.get("payer_name") or "").strip() or None,
                                     (row.get("deposit_id") or "").strip() or None, line=line))
    if problems:
        raise StatementError(problems)
    return Statement(StatementFormat.CSV, deposits)


def parse_statement(data: bytes, today: dt.date) -> Statement:
    """Zengin when the file starts with a header record (1 + type code), else CSV."""
    if data[:1] == b"1" and data[1:3].isdigit() and len(data) >= RECORD:
        return parse_zengin(data, today)
    return parse_csv(data)


_FIELDS = {"accountNumber": "account number (口座番号)", "amount": "amount (金額)",
           "payerName": "payer name (振込依頼人名)", "depositId": "deposit id (照会番号)"}


def describe(failure: UserFailure, deposit: DepositInput, index: int) -> str:
    """A deposit's problem (a UserFailure of ``store_deposits``) as one line naming the file's line."""
    name = failure.field[-1] if failure.field else ""
    value = {"accountNumber": deposit.account_number, "amount": deposit.amount, "payerName": deposit.payer_name,
             "depositId": deposit.deposit_id}.get(name)
    shown = repr(value) if not isinstance(value, str) or len(value) <= 40 else repr(value[:40]) + f"… ({len(value)} characters)"
    why = {
        ("accountNumber", ErrorCode.INVALID): "is not 7 digits",
        ("accountNumber", ErrorCode.NOT_FOUND): "is no virtual account of an order",
        ("amount", ErrorCode.INVALID): f"is not 1 to {MAX_DEPOSIT:,} yen",
        ("payerName", ErrorCode.INVALID): "holds a control character (NUL …) or is not text",
        ("payerName", ErrorCode.TOO_LONG): f"is longer than {MAX_PAYER_NAME} characters",
        ("depositId", ErrorCode.INVALID): "holds a control character (NUL …) or is not text",
        ("depositId", ErrorCode.TOO_LONG): f"is longer than {MAX_DEPOSIT_ID} characters",
    }.get((name, failure.code), failure.message("en"))
    if "earlier" in failure.params:
        why = f"was recorded before for another deposit (account, amount or date) from {failure.params['earlier']}"
    where = f"line {deposit.line}: " if deposit.line is not None else ""
    return (f"{where}deposit {index + 1} (account {deposit.account_number}, {deposit.amount} yen): {failure.code} {name} — "
            f"{_FIELDS.get(name, name)} {shown} {why}")


def _wareki_text(day: dt.date) -> str:
    return f"{day.year - REIWA_START:02d}{day.month:02d}{day.day:02d}"


def _field(value: str, width: int) -> bytes:
    encoded = value.encode("cp932")[:width]
    return encoded + b" " * (width - len(encoded))


def write_zengin(groups: dict[str, list[tuple[int, int, dt.date, str]]], created_on: dt.date,
                 bank_code: str = "0310", bank_name: str = "ｻﾝﾄﾞﾎﾞﾂｸｽ", branch_code: str = "502",
                 branch_name: str = "ｱｼﾞｻｲ", crlf: bool = True) -> bytes:
    """A 振込入金通知 (01) file as the sandbox bank sends it: per account number, deposits
    as (inquiry number, amount, booking date, remitter name in half-width kana)."""
    out: list[bytes] = []
    for account, deposits in groups.items():
        days = [d[2] for d in deposits] or [created_on]
        header = (b"1" + b"01" + b"0" + _wareki_text(created_on).encode() + _wareki_text(min(days)).encode()
                  + _wareki_text(max(days)).encode() + bank_code.encode() + _field(bank_name, 15) + branch_code.encode()
                  + _field(branch_name, 15) + b"1" + account.encode() + _field("ｼﾖｳｺｳｶｲｷﾞｼﾖ", 40) + b" " * 93)
        out.append(header)
        for inquiry, amount, booked, remitter in deposits:
            day = _wareki_text(booked).encode()
            out.append(b"2" + f"{inquiry:06d}".encode() + day + day + f"{amount:010d}".encode() + b"0" * 10 + b"0" * 10
                       + _field(remitter, 48) + _field("ｼﾑｹｷﾞﾝｺｳ", 15) + _field("ﾎﾝﾃﾝ", 15) + b" " + b" " * 20 + b" " * 52)
        total = sum(d[1] for d in deposits)
        out.append(b"8" + f"{len(deposits):06d}".encode() + f"{total:012d}".encode() + b"0" * 6 + b"0" * 12 + b" " * 163)
    out.append(b"9" + b" " * 199)
    for record in out:
        assert len(record) == RECORD, len(record)
    return (b"\r\n" if crlf else b"").join(out) + (b"\r\n" if crlf else b"")
