"""rulesDiff: chamber staff see what changed in the rule files; others are refused; a point
that is neither a date nor a known rules version is BAD_USER_INPUT in the request's language."""

from __future__ import annotations

import pytest

from tests.identity.test_identity_sessions import bearer, login

DIFF = """query($f: String!, $t: String) { rulesDiff(from: $f, to: $t) { table effectiveFrom kind row before after } }"""
EN = {"Accept-Language": "en-US,en;q=0.9"}


def staff(live, extra: dict | None = None) -> dict:
    return {**bearer(login(live, "staff-2701")["token"]), **(extra or {})}


def test_staff_see_the_2026_revision_row_by_row(live):
    body = live.graphql(DIFF, {"f": "2026-03-31", "t": "2026-04-01"}, headers=staff(live)).json()
    assert "errors" not in body, body
    changes = body["data"]["rulesDiff"]
    assert {c["table"] for c in changes} == {"application_fees", "coupon_products", "pack_refund_deductions"}
    assert {c["effectiveFrom"] for c in changes} == {"2026-04-01"}
    assert {"table": "application_fees", "effectiveFrom": "2026-04-01", "kind": "CHANGED", "row": "membership=MEMBER",
            "before": "amount=1100", "after": "amount=1210"} in changes


def test_to_defaults_to_today_in_tokyo(live):
    """The server's clock says 2026-04-01: from the day before, the revision; from today, nothing."""
    headers = staff(live)
    since_yesterday = live.graphql(DIFF, {"f": "2026-03-31"}, headers=headers).json()["data"]["rulesDiff"]
    assert {c["table"] for c in since_yesterday} == {"application_fees", "coupon_products", "pack_refund_deductions"}
    assert live.graphql(DIFF, {"f": "2026-04-01"}, headers=headers).json()["data"]["rulesDiff"] == []


def test_the_served_version_compares_as_files(live):
    version = live.services.rules.current.version
    body = live.graphql(DIFF, {"f": version, "t": version}, headers=staff(live)).json()
    assert body["data"]["rulesDiff"] == [], body


@pytest.mark.parametrize("username", ["signer-2701000002", "admin-2701000002"])
def test_a_registration_login_is_forbidden(live, username):
    body = live.graphql(DIFF, {"f": "2026-03-31"}, headers=bearer(login(live, username)["token"])).json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


def test_no_login_is_unauthenticated(live):
    body = live.graphql(DIFF, {"f": "2026-03-31"}).json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


@pytest.mark.parametrize(("variables", "argument", "words_en", "words_ja"), [
    ({"f": "yesterday"}, "from", "give a rules version, 12 characters, or a date as YYYY-MM-DD; 'yesterday' is neither",
     "「yesterday」はどちらでもありません"),
    ({"f": "2026-03-31", "t": "2026/04/01"}, "to", "'2026/04/01' is neither", "YYYY-MM-DD形式の日付"),
    ({"f": "2026-02-30"}, "from", "this date does not exist", "この日付は存在しません"),
    ({"f": "x" * 5000}, "from", "is neither", "どちらでもありません"),
])
def test_a_point_that_is_neither_a_date_nor_a_version_is_bad_input(live, variables, argument, words_en, words_ja):
    for extra, words in ((EN, words_en), ({"Accept-Language": "ja"}, words_ja)):
        response = live.graphql(DIFF, variables, headers=staff(live, extra))
        assert response.status_code == 200
        body = response.json()
        assert body["data"] is None, body
        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert error["extensions"]["argument"] == argument, error
        assert words in error["message"], error
        assert "x" * 41 not in error["message"]


FUTURE = """
  - effective_from: 2031-04-01
    source: "a revision decided in advance (test)"
    rows:
      - membership: MEMBER
        amount: 1300
      - membership: NON_MEMBER
        amount: 3700
"""


def test_a_version_from_the_rules_history_diffs_as_files(live):
    """The version the server went live with is kept; after a future version is added to the
    files, that version against the files (or today) shows the new rows as ADDED."""
    old = live.services.rules.current.version
    path = live.rules_dir / "application_fees.yaml"
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n") + FUTURE, encoding="utf-8")
    assert live.services.rules.reload().changed
    new = live.services.rules.current.version
    expected = [
        {"table": "application_fees", "effectiveFrom": "2031-04-01", "kind": "ADDED", "row": "membership=MEMBER",
         "before": None, "after": "amount=1300"},
        {"table": "application_fees", "effectiveFrom": "2031-04-01", "kind": "ADDED", "row": "membership=NON_MEMBER",
         "before": None, "after": "amount=3700"},
    ]
    headers = staff(live)
    for variables in ({"f": old, "t": new}, {"f": old}):
        body = live.graphql(DIFF, variables, headers=headers).json()
        assert body.get("data") and body["data"]["rulesDiff"] == expected, body
    back = live.graphql(DIFF, {"f": new, "t": old}, headers=headers).json()["data"]["rulesDiff"]
    assert [(c["kind"], c["before"], c["after"]) for c in back] == [("REMOVED", "amount=1300", None),
                                                                      ("REMOVED", "amount=3700", None)]


def test_a_version_not_in_the_history_is_bad_input(live):
    body = live.graphql(DIFF, {"f": "0123456789ab"}, headers=staff(live, EN)).json()
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "rules version '0123456789ab' is not in the rules history" in error["message"]
