"""graphql-core's refusals of a document in the request's language (issue 20, item 15):
validation and syntax errors, enum suggestions in one language, and logs that never quote
the value a request gave."""

from __future__ import annotations

import asyncio
import logging
import re

ENGLISH = re.compile(r"Cannot query|Did you mean|Syntax Error|Unknown (argument|type|fragment)|must have|is never used|"
                     r"is required|does not exist|Expected value")

REFUSED = [  # query, variables, what the Japanese message says
    ("{ aplications { totalCount } }", None, "Queryにaplicationsというフィールドはありません(候補: applications)"),
    ("{ applications(frist: 1) { totalCount } }", None, "Query.applicationsにfristという引数はありません(候補: first)"),
    ("{ feeSchedule }", None, "feeSchedule(FeeSchedule!)には取得する項目を { } で指定してください"),
    ("{ feeSchedule { on { year } } }", None, "on(Date!)には項目を指定できません"),
    ("{ node { id } }", None, "Query.nodeの必須の引数id(ID!)がありません"),
    ("query($a: Int) { __typename }", None, "変数$aが使われていません"),
    ("query($f: ApplicationFiltr) { applications(filter: $f) { totalCount } }", None, "ApplicationFiltrという型はありません"),
    ("{ ...Missing }", None, "フラグメントMissingがありません"),
    ("{ feeSchedule { on ", None, "GraphQLの構文が正しくありません(1行20列)"),
    ("{ feeSchedule { couponProducts(membership: MEMBE) { code } } }", None, "Membershipの値の一つを指定してください"),
    ("query($m: Membership!) { feeSchedule { couponProducts(membership: $m) { code } } }", {"m": "MEMBE"},
     "$mの値が正しくありません: Membershipの値の一つを指定してください(値: \"MEMBE\")(候補: MEMBER)"),
]


async def test_graphql_core_refusals_are_answered_in_japanese(sqlite_live):
    live = await asyncio.to_thread(sqlite_live)
    for query, variables, expected in REFUSED:
        body = live.graphql(query, variables, headers={"Accept-Language": "ja"}).json()
        message = body["errors"][0]["message"]
        assert expected in message, (query, message)
        assert not ENGLISH.search(message), (query, message)  # never half in each language
        assert body["errors"][0]["extensions"]["code"] in ("GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED",
                                                           "BAD_USER_INPUT"), body


async def test_english_keeps_graphql_cores_words(sqlite_live):
    live = await asyncio.to_thread(sqlite_live)
    body = live.graphql("{ aplications { totalCount } }", headers={"Accept-Language": "en"}).json()
    assert body["errors"][0]["message"].startswith("Cannot query field 'aplications' on type 'Query'.")
    enum = live.graphql("query($m: Membership!) { feeSchedule { couponProducts(membership: $m) { code } } }",
                        {"m": "MEMBE"}, headers={"Accept-Language": "en"}).json()
    assert enum["errors"][0]["message"] == '$m: give one of the values of Membership (value: "MEMBE") Did you mean MEMBER?'


async def test_the_log_never_quotes_an_enum_value_the_request_gave(sqlite_live, caplog):
    live = await asyncio.to_thread(sqlite_live)
    with caplog.at_level(logging.DEBUG):
        live.graphql("{ feeSchedule { couponProducts(membership: MEMBZQ) { code } } }")
        live.graphql("query($m: Membership!) { feeSchedule { couponProducts(membership: $m) { code } } }", {"m": "MEMBZQ"})
    assert "MEMBZQ" not in caplog.text
    assert "does not exist in 'Membership' enum" in caplog.text  # what was wrong is still logged


async def test_the_log_never_quotes_a_page_size_the_request_gave(sqlite_live, caplog):
    """Our own refusal of a value (messages.BAD_VALUE) quotes it to the client, never to the log."""
    live = await asyncio.to_thread(sqlite_live)
    with caplog.at_level(logging.DEBUG):
        answered = live.graphql("{ applications(first: 987654321) { totalCount } }").json()
    assert "987654321" in answered["errors"][0]["message"]  # the client is told what it sent
    assert "987654321" not in caplog.text
    assert "(値: (not logged))" in caplog.text or "(value: (not logged))" in caplog.text, caplog.text
