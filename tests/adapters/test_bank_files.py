"""Zengin 振込入金通知 and CSV statements: parsed exactly, refused with line numbers."""

from __future__ import annotations

import datetime as dt

import pytest

from resolvers.adapters.bank_files import StatementError, parse_statement, write_zengin

TODAY = dt.date(2026, 4, 3)


def sample(crlf=True) -> bytes:
    return write_zengin({
        "1234567": [(1, 71390, dt.date(2026, 4, 2), "ｶｺｶﾞﾜｼｾﾞﾝｼﾖｸﾋﾝ"), (2, 5000, dt.date(2026, 4, 3), "ﾃｽﾄ")],
        "7654321": [(1, 3630, dt.date(2026, 4, 2), "ﾆﾂｼﾖｳ")],
    }, TODAY, crlf=crlf)


@pytest.mark.parametrize("crlf", [True, False])
def test_a_zengin_file_with_two_accounts_is_read_exactly(crlf):
    statement = parse_statement(sample(crlf), TODAY)
    assert statement.format == "zengin-01"
    assert [(d.account_number, d.amount, d.deposited_on, d.payer_name) for d in statement.deposits] == [
        ("1234567", 71390, dt.date(2026, 4, 2), "ｶｺｶﾞﾜｼｾﾞﾝｼﾖｸﾋﾝ"),
        ("1234567", 5000, dt.date(2026, 4, 3), "ﾃｽﾄ"),
        ("7654321", 3630, dt.date(2026, 4, 2), "ﾆﾂｼﾖｳ"),
    ]
    assert statement.deposits[0].deposit_id == "0310-502-1234567-20260402-000001"


def records(data: bytes) -> list[bytearray]:
    return [bytearray(r) for r in data.split(b"\r\n") if r]


def join(recs) -> bytes:
    return b"\r\n".join(bytes(r) for r in recs) + b"\r\n"


def problems(data: bytes) -> list[str]:
    with pytest.raises(StatementError) as caught:
        parse_statement(data, TODAY)
    return caught.value.problems


def test_a_bad_amount_is_refused_with_its_line():
    recs = records(sample())
    recs[1][19:29] = b"00000ABC00"
    assert problems(join(recs)) == ["line 2: 金額 '00000ABC00' is not a number",
                                    "line 4: trailer says 2 deposits, the group holds 1",
                                    "line 4: trailer says 76390 yen, the group's deposits sum to 5000"]


def test_a_trailer_that_does_not_add_up_is_refused():
    recs = records(sample())
    recs[3][7:19] = b"000000076391"
    assert problems(join(recs)) == ["line 4: trailer says 76391 yen, the group's deposits sum to 76390"]


def test_truncated_files_and_unknown_record_kinds_are_refused():
    assert problems(sample()[:-50])[0].startswith("file: ")
    recs = records(sample())
    recs[2][0:1] = b"7"
    assert "line 3: データ区分 b'7' is not 1, 2, 8 or 9" in problems(join(recs))
    assert problems(join(records(sample())[:-1]))[-1] == "line 7: the file has no end record (9)"


def test_type_03_is_refused_clearly_rather_than_misread():
    recs = records(sample())
    recs[0][1:3] = b"03"
    assert problems(join(recs)) == ["line 1: 種別コード 03 (入出金取引明細) is not supported yet; ask the bank for 01 (振込入金通知) or CSV"]


def test_csv_statements_and_their_errors():
    ok = parse_statement("account_number,amount,deposited_on,payer_name,deposit_id\n1234567,\"71,390\",2026-04-02,ｶｺｶﾞﾜ,A1\n".encode(), TODAY)
    assert [(d.account_number, d.amount, d.deposit_id) for d in ok.deposits] == [("1234567", 71390, "A1")]
    bad = "account_number,amount,deposited_on,payer_name,deposit_id\n1234567,12x,2026-04-02,,\n12,5,2026-04-02,,\n1234567,5,02/04/2026,,\n"
    assert problems(bad.encode()) == [
        "line 2: amount '12x' is not a whole number of yen",
        "line 3: account_number '12' is not 7 digits",
        "line 4: deposited_on '02/04/2026' is not YYYY-MM-DD",
    ]
    assert problems(b"foo,bar\n1,2\n")[0].startswith("line 1: header must be")


def test_every_deposit_keeps_the_line_it_was_read_from():
    assert [d.line for d in parse_statement(sample(), TODAY).deposits] == [2, 3, 6]
    csv_text = "account_number,amount,deposited_on,payer_name,deposit_id\n1234567,5,2026-04-02,,\n1234567,5,2026-04-02,,\n"
    assert [d.line for d in parse_statement(csv_text.encode(), TODAY).deposits] == [2, 3]


def test_a_file_in_neither_utf8_nor_cp932_names_the_line_that_breaks():
    data = "account_number,amount,deposited_on,payer_name,deposit_id\n1234567,5,2026-04-02,ｶｺ,\n".encode("cp932")
    assert parse_statement(data, TODAY).deposits[0].payer_name == "ｶｺ"  # Shift_JIS is fine
    broken = data + b"1234567,5,2026-04-02,\x81\x20\xff,\n"
    assert problems(broken) == ["line 3: byte 0x81 is neither UTF-8 nor Shift_JIS (cp932) text; save the file in one of them"]


def test_a_malformed_csv_line_and_odd_amounts_are_named():
    import csv

    limit = csv.field_size_limit()
    huge = "account_number,amount,deposited_on,payer_name,deposit_id\n1234567,5,2026-04-02," + "x" * (limit + 1) + ",\n"
    assert problems(huge.encode())[0].startswith("line 2: field larger than field limit")
    odd = "account_number,amount,deposited_on,payer_name,deposit_id\n1234567,2_420,2026-04-02,,\n1234567,２４２０,2026-04-02,,\n"
    assert problems(odd.encode()) == ["line 2: amount '2_420' is not a whole number of yen",
                                      "line 3: amount '２４２０' is not a whole number of yen"]


def test_a_cancelled_notice_is_listed_for_a_person_not_recorded():
    recs = records(sample())
    recs[2][127:128] = b"1"  # 取消区分 of the second deposit of the first account
    recs[3][1:19] = b"000001" + b"000000071390"
    statement = parse_statement(join(recs), TODAY)
    assert [d.amount for d in statement.deposits] == [71390, 3630] and statement.cancelled == 1
    assert statement.cancellations == ["line 3: 取消 (cancellation) of 照会番号 000002, account 1234567, 5,000 yen on 2026-04-03: "
                                       "not a deposit and not applied; if that deposit was recorded, check its order by hand"]


def test_a_header_with_a_bank_code_that_is_not_digits_is_refused():
    recs = records(sample())
    recs[0][22:26] = b"03\x001"
    assert problems(join(recs)) == ["line 1: 銀行コード '03\\x001' is not 4 digits"]
