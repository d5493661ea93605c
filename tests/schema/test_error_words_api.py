"""Errors that explain themselves (issue 12), over real HTTP on SQLite and PostgreSQL, in
Japanese and in English (Accept-Language): field labels in the request's language, the next
business day named, the state named, the e-mail confirmation, malformed scalar values and
page sizes as BAD_USER_INPUT with localised words, and `rules show --on`."""

from __future__ import annotations

import re

from click.testing import CliRunner

from tests.applications.test_applications import act, create
from tests.conftest import tokyo
from tests.coupons.test_purchases import START
from tests.identity.test_subaccounts import as_user
from tests.naccs.test_naccs import CONTACT, office, reissue, submit_codes

JAPANESE = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
EN = {"Accept-Language": "en-US,en;q=0.9"}
JA = {"Accept-Language": "ja"}
SCHEDULE = "query($on: Date) { feeSchedule(on: $on) { on } }"


def english(message: str) -> str:
    assert not JAPANESE.search(message), message
    return message


def top_level(body: dict) -> dict:
    assert body.get("data") is None and body.get("errors"), body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    return error


def test_an_english_message_has_an_english_label_and_the_limit(live):
    signer = as_user(live, "signer-2701000002")
    lines = [{"productCode": "SINGLE", "quantity": 5000}]
    for headers, label in ((EN, "Quantity (1 to 1000)"), (JA, "数量(1〜1000)")):
        body = live.graphql(START, {"lines": lines, "method": "BANK_TRANSFER"}, headers={**signer, **headers}).json()
        [error] = body["data"]["startCouponPurchase"]["errors"]
        assert error["code"] == "INVALID" and error["field"] == ["input", "lines", "0", "quantity"]
        assert label in error["message"]
    en = live.graphql(START, {"lines": lines, "method": "BANK_TRANSFER"}, headers={**signer, **EN}).json()
    english(en["data"]["startCouponPurchase"]["errors"][0]["message"])


def test_an_application_in_english_names_every_bad_field_in_english(live):
    signer = as_user(live, "signer-2701000002")
    result = create(live, {**signer, **EN}, destinationCountry="ZZ", invoiceNumber="x" * 51,
                    goods=[{"description": "", "quantity": "1", "hsCode": "12", "originCountry": "JP"}])
    messages = {".".join(e["field"]): english(e["message"]) for e in result["errors"]}
    assert "Destination country (ISO 3166 two-letter country code)" in messages["input.destinationCountry"]
    assert "Invoice number (at most 50 characters)" in messages["input.invoiceNumber"]
    assert "HS code (6 to 10 digits)" in messages["input.goods.0.hsCode"]
    assert "Description of goods is required" in messages["input.goods.0.description"]


def test_business_day_errors_name_the_day_to_choose(live):
    live.clock.set(tokyo(2026, 11, 20, 10, 0))  # Friday; Monday 11/23 is 勤労感謝の日
    headers = office(live)
    weekend_en = reissue(live, {**headers, **EN}, "2026-11-21")["errors"][0]
    assert weekend_en["code"] == "NOT_BUSINESS_DAY"
    assert "2026-11-21" in english(weekend_en["message"]) and "2026-11-24" in weekend_en["message"]
    weekend_ja = reissue(live, {**headers, **JA}, "2026-11-21")["errors"][0]["message"]
    assert "営業日ではありません" in weekend_ja and "2026-11-24" in weekend_ja
    today = reissue(live, {**headers, **EN}, "2026-11-20")["errors"][0]
    assert today["code"] == "DATE_TOO_EARLY"
    assert "2026-11-20" in english(today["message"]) and "2026-11-24" in today["message"]
    assert "2026-11-24以降" in reissue(live, {**headers, **JA}, "2026-11-20")["errors"][0]["message"]


def test_invalid_state_names_the_state_in_the_request_language(live):
    signer = as_user(live, "signer-2701000002")
    app_id = create(live, signer)["application"]["id"]
    assert act(live, signer, "withdrawApplication", app_id)["errors"] == []
    again = live.graphql("""mutation($id: ID!) { withdrawApplication(input: {applicationId: $id}) {
        errors { code field message } } }""", {"id": app_id}, headers={**signer, **EN}).json()
    [error] = again["data"]["withdrawApplication"]["errors"]
    assert error["code"] == "INVALID_STATE" and "(withdrawn)" in english(error["message"])
    ja = live.graphql("""mutation($id: ID!) { withdrawApplication(input: {applicationId: $id}) {
        errors { message } } }""", {"id": app_id}, headers={**signer, **JA}).json()
    assert "取下げ" in ja["data"]["withdrawApplication"]["errors"][0]["message"]


def test_an_e_mail_confirmation_that_differs_says_so(live):
    contact = {**CONTACT, "emailConfirmation": "hanako2@naccs-demo.example"}
    for headers, expected in ((EN, "the two e-mail addresses differ"), (JA, "一致しません")):
        result = submit_codes(live, {**office(live), **headers}, contact=contact)
        [error] = result["errors"]
        assert error["field"] == ["input", "contact", "emailConfirmation"]
        assert expected in error["message"]
        assert "format" not in error["message"] and "形式" not in error["message"]


def test_a_date_that_does_not_exist_is_bad_user_input_saying_so(live):
    for query, variables in (('{ feeSchedule(on: "2026-02-30") { on } }', None), (SCHEDULE, {"on": "2026-02-30"})):
        en = top_level(live.graphql(query, variables, headers=EN).json())
        assert "does not exist" in english(en["message"]) and "2026-02-30" in en["message"]
        assert en["extensions"]["argument"] in ("on", "$on")
        ja = top_level(live.graphql(query, variables, headers=JA).json())
        assert "存在しません" in ja["message"] and "2026-02-30" in ja["message"]


def test_a_date_in_another_format_is_told_the_format(live):
    for query, variables in (('{ feeSchedule(on: "2026/02/01") { on } }', None), (SCHEDULE, {"on": "2026/02/01"}),
                             (SCHEDULE, {"on": 20260201})):
        en = top_level(live.graphql(query, variables, headers=EN).json())
        assert "YYYY-MM-DD" in english(en["message"]) and "does not exist" not in en["message"]
        ja = top_level(live.graphql(query, variables, headers=JA).json())
        assert "YYYY-MM-DD形式" in ja["message"]


def test_a_nested_date_names_its_input_field(live):
    signer = as_user(live, "signer-2701000002")
    literal = '{ applications(filter: {submittedFrom: "2026-13-01"}) { totalCount } }'
    error = top_level(live.graphql(literal, headers={**signer, **EN}).json())
    assert error["extensions"]["argument"] == "filter.submittedFrom" and "does not exist" in error["message"]
    query = "query($f: ApplicationFilter) { applications(filter: $f) { totalCount } }"
    error = top_level(live.graphql(query, {"f": {"submittedFrom": "2026-02-29"}}, headers={**signer, **EN}).json())
    assert error["extensions"]["argument"] == "$f.submittedFrom" and "does not exist" in error["message"]


def test_a_hostile_value_is_echoed_briefly(live):
    hostile = "2026-" + "9" * 5000 + "\u0007"
    error = top_level(live.graphql(SCHEDULE, {"on": hostile}, headers=EN).json())
    assert len(error["message"]) < 200 and "9" * 50 not in error["message"] and "\u0007" not in error["message"]
    assert "YYYY-MM-DD" in english(error["message"])


def test_other_malformed_values_are_bad_user_input_in_both_languages(live):
    signer = as_user(live, "signer-2701000002")
    cases = [('{ applications(first: "x") { totalCount } }', None, "first", "whole number", "整数"),
             ("query($f: Int) { applications(first: $f) { totalCount } }", {"f": "x"}, "$f", "whole number", "整数"),
             ("query($f: Int) { applications(first: $f) { totalCount } }", {"f": 10**12}, "$f", "2147483647", "2147483647"),
             ("{ feeSchedule { applicationFee(membership: GOLD) } }", None, "membership", "Membership", "Membership"),
             ("query($f: ApplicationFilter) { applications(filter: $f) { totalCount } }", {"f": {"nope": 1}}, "$f",
              "no field nope", "nope")]
    for query, variables, argument, en_words, ja_words in cases:
        en = top_level(live.graphql(query, variables, headers={**signer, **EN}).json())
        assert en["extensions"]["argument"] == argument and en_words in english(en["message"]), en
        ja = top_level(live.graphql(query, variables, headers={**signer, **JA}).json())
        assert ja_words in ja["message"] and JAPANESE.search(ja["message"]), ja


def test_a_page_size_outside_1_to_100_is_refused_in_the_request_language(live):
    signer = as_user(live, "signer-2701000002")
    query = "query($first: Int) { applications(first: $first) { totalCount } }"
    for first in (0, 1000):
        en = top_level(live.graphql(query, {"first": first}, headers={**signer, **EN}).json())
        assert en["extensions"]["argument"] == "first"
        assert "from 1 to 100" in english(en["message"]) and str(first) in en["message"]
        ja = top_level(live.graphql(query, {"first": first}, headers={**signer, **JA}).json())
        assert "1〜100" in ja["message"] and "must" not in ja["message"]


def test_rules_show_says_a_date_does_not_exist():
    from tradecert.cli import main

    runner = CliRunner()
    missing = runner.invoke(main, ["rules", "show", "--on", "2026-02-30"])
    assert missing.exit_code == 2 and "does not exist" in missing.output, missing.output
    wrong = runner.invoke(main, ["rules", "show", "--on", "2026/02/01"])
    assert wrong.exit_code == 2 and "YYYY-MM-DD" in wrong.output and "does not exist" not in wrong.output


def test_unauthenticated_and_forbidden_answer_in_the_request_language(live):
    audit = "{ auditLog(first: 3) { totalCount } }"
    for headers in (EN, JA):
        anonymous = live.graphql("{ couponAccount { balance } }", headers=headers).json()
        [error] = anonymous["errors"]
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
        assert (english(error["message"]) if headers is EN else JAPANESE.search(error["message"]))
        assert (" / " not in error["message"]), error  # one language, not both
    signer = as_user(live, "signer-2701000002")
    for headers in (EN, JA):
        body = live.graphql(audit, headers={**signer, **headers}).json()
        codes = [e["extensions"]["code"] for e in body.get("errors", [])]
        assert codes == ["FORBIDDEN"], body
        message = body["errors"][0]["message"]
        assert (english(message) if headers is EN else not re.search(r"[A-Za-z]{4}", message)), message
