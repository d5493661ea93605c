"""feeSchedule over real HTTP, on SQLite and PostgreSQL (eco-payment-2026, docs/api.md "Fees")."""

from __future__ import annotations

import datetime as dt

from tests.conftest import tokyo

SCHEDULE = """
query Schedule($on: Date) {
  feeSchedule(on: $on) {
    on rulesVersion
    member: applicationFee(membership: MEMBER)
    nonMember: applicationFee(membership: NON_MEMBER)
    memberProducts: couponProducts(membership: MEMBER) { code name coupons price faceValue tax }
    nonMemberProducts: couponProducts(membership: NON_MEMBER) { code coupons price faceValue tax }
    applicantMember: registrationFee(kind: APPLICANT, membership: MEMBER)
    applicantNonMember: registrationFee(kind: APPLICANT, membership: NON_MEMBER)
    agentMember: registrationFee(kind: AGENT, membership: MEMBER)
    agentNonMember: registrationFee(kind: AGENT, membership: NON_MEMBER)
    taxRatePercent
  }
}
"""


def schedule(live, on: str | None = None) -> dict:
    response = live.graphql(SCHEDULE, {"on": on} if on else {})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["feeSchedule"]


def test_fees_before_the_revision_are_the_2022_fees(live):
    fees = schedule(live, "2026-03-31")
    assert (fees["member"], fees["nonMember"]) == (1100, 3300)
    assert [(p["code"], p["coupons"], p["price"], p["faceValue"], p["tax"]) for p in fees["memberProducts"]] == [
        ("SINGLE", 1, 1100, 1100, 100),
        ("PACK30", 30, 31900, 33000, 2900),
    ]
    assert [(p["code"], p["price"]) for p in fees["nonMemberProducts"]] == [("SINGLE", 3300)]


def test_fees_from_2026_04_01_are_the_revised_fees(live):
    fees = schedule(live, "2026-04-01")
    assert (fees["member"], fees["nonMember"]) == (1210, 3630)
    assert [(p["code"], p["coupons"], p["price"], p["faceValue"], p["tax"]) for p in fees["memberProducts"]] == [
        ("SINGLE", 1, 1210, 1210, 110),
        ("PACK30", 30, 35090, 36300, 3190),
    ]
    assert [(p["code"], p["price"], p["tax"]) for p in fees["nonMemberProducts"]] == [("SINGLE", 3630, 330)]
    assert (fees["applicantMember"], fees["applicantNonMember"]) == (0, 16500)
    assert (fees["agentMember"], fees["agentNonMember"]) == (0, None)  # agents: non-member not offered
    assert fees["taxRatePercent"] == 10


def test_today_is_the_tokyo_date_already_at_half_past_midnight(live):
    live.clock.set(tokyo(2026, 4, 1, 0, 30))  # still 2026-03-31 in UTC
    fees = schedule(live)
    assert fees["on"] == "2026-04-01"
    assert fees["member"] == 1210


def test_today_is_still_march_31_one_minute_before_tokyo_midnight(live):
    live.clock.set(tokyo(2026, 3, 31, 23, 59))
    fees = schedule(live)
    assert fees["on"] == "2026-03-31"
    assert fees["member"] == 1100


def test_the_clock_is_read_at_the_moment_of_use(live):
    live.clock.set(tokyo(2026, 3, 31, 12, 0))
    assert schedule(live)["member"] == 1100
    live.clock.advance(dt.timedelta(days=1))
    assert schedule(live)["member"] == 1210


def test_an_amount_explains_which_rule_produced_it(live):
    response = live.graphql(
        """{ feeSchedule(on: "2026-04-01") {
              applicationFeeRule(membership: NON_MEMBER) { file table version row effectiveFrom effectiveUntil source rulesVersion }
              couponProducts(membership: MEMBER) { code rule { file version row effectiveFrom } }
              registrationFeeRule(kind: AGENT, membership: NON_MEMBER) { file row note }
              rulesVersion } }"""
    )
    data = response.json()["data"]["feeSchedule"]
    rule = data["applicationFeeRule"]
    assert (rule["file"], rule["table"], rule["version"], rule["row"]) == ("application_fees.yaml", "application_fees", 2, 2)
    assert rule["effectiveFrom"] == "2026-04-01" and rule["effectiveUntil"] is None
    assert "eco-payment-2026" in rule["source"]
    assert rule["rulesVersion"] == data["rulesVersion"]
    assert [(p["code"], p["rule"]["version"], p["rule"]["row"]) for p in data["couponProducts"]] == [("SINGLE", 2, 1), ("PACK30", 2, 2)]
    assert data["registrationFeeRule"]["file"] == "registration_fees.yaml"
    assert data["registrationFeeRule"]["note"]


def test_the_oldest_version_covers_earlier_dates(live):
    old = live.graphql('{ feeSchedule(on: "1999-01-01") { applicationFeeRule(membership: MEMBER) { version effectiveFrom } applicationFee(membership: MEMBER) } }')
    data = old.json()["data"]["feeSchedule"]
    assert data["applicationFee"] == 1100 and data["applicationFeeRule"]["version"] == 1


def test_a_malformed_date_is_a_graphql_error_not_a_server_error(live):
    response = live.graphql('{ feeSchedule(on: "2026-02-30") { on } }')
    assert response.status_code == 200
    assert response.json()["errors"]
    response = live.graphql("query($on: Date) { feeSchedule(on: $on) { on } }", {"on": "yesterday"})
    assert response.status_code == 200
    assert response.json()["errors"]


def test_a_rules_reload_changes_the_schedule_served_at_once(live):
    before = schedule(live, "2026-04-01")
    assert schedule(live, "2026-04-01") == before  # asked twice: the second answer is the kept schedule
    path = live.rules_dir / "application_fees.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("amount: 1210", "amount: 1250"), encoding="utf-8")
    assert live.services.rules.reload().changed
    after = schedule(live, "2026-04-01")
    assert after["member"] == 1250 and after["rulesVersion"] != before["rulesVersion"]
    assert after["memberProducts"] == before["memberProducts"]  # coupon_products.yaml did not change
