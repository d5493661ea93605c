"""Trade registrations, signers, renewal and the audit trail over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading

from tests.identity.test_identity_sessions import login
from tests.identity.test_subaccounts import as_user, create_sub

CREATE_REG = """mutation($kind: RegistrationKind!, $membership: Membership!) {
  createTradeRegistration(input: {kind: $kind, name: "北浜貿易", membership: $membership, contactEmail: "info@kitahama.example",
    purchaseMethods: [CARD], adminName: "北浜 管理", adminEmail: "admin@kitahama.example", adminPassword: "kitahama-admin-1"}) {
    registration { number kind membership validFrom validUntil purchaseMethods chamber { code } }
    admin { username kind } errors { code field } } }"""
ADD_SIGNER = """mutation($n: String!, $name: String!, $reason: String) {
  addSigner(input: {registrationNumber: $n, name: $name, email: "s@kakogawa.example", password: "signer-pass-77", reason: $reason}) {
    account { username kind } errors { code field message } } }"""
RENEW = "mutation { renewTradeRegistration(input: {}) { registration { validUntil } errors { code } } }"
AUDIT = """query($after: String) { auditLog(first: 3, after: $after) { totalCount pageInfo { hasNextPage endCursor }
  edges { node { action target requestId actor { username } responsible { username } } } } }"""


def test_chamber_staff_register_an_applicant_and_its_admin_can_log_in(live):
    staff = as_user(live, "staff-2701")
    result = live.graphql(CREATE_REG, {"kind": "APPLICANT", "membership": "NON_MEMBER"}, headers=staff).json()["data"]["createTradeRegistration"]
    assert result["errors"] == []
    assert result["registration"] == {
        "number": "2701000005", "kind": "APPLICANT", "membership": "NON_MEMBER", "validFrom": "2026-04-01",
        "validUntil": "2027-03-31", "purchaseMethods": ["CARD"], "chamber": {"code": "2701"},
    }
    assert result["admin"] == {"username": "admin-2701000005", "kind": "ADMIN"}
    assert login(live, "admin-2701000005", "kitahama-admin-1")["errors"] == []
    signer = as_user(live, "signer-2701000002")
    denied = live.graphql(CREATE_REG, {"kind": "AGENT", "membership": "MEMBER"}, headers=signer).json()
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_at_most_the_signer_limit_unless_staff_give_a_reason(live):
    staff = as_user(live, "staff-2701")
    for i in range(13):  # the demo registration has 2 signers; the limit is 15
        added = live.graphql(ADD_SIGNER, {"n": "2701000002", "name": f"署名 {i}"}, headers=staff).json()["data"]["addSigner"]
        assert added["errors"] == [], added
    refused = live.graphql(ADD_SIGNER, {"n": "2701000002", "name": "署名 16"}, headers=staff).json()["data"]["addSigner"]
    assert refused["account"] is None
    assert refused["errors"][0]["code"] == "SIGNER_LIMIT" and "15" in refused["errors"][0]["message"]
    allowed = live.graphql(ADD_SIGNER, {"n": "2701000002", "name": "署名 16", "reason": "支店の署名者を追加 (理事会承認)"},
                           headers=staff).json()["data"]["addSigner"]
    assert allowed["errors"] == [] and allowed["account"]["kind"] == "SIGNER"
    assert login(live, allowed["account"]["username"], "signer-pass-77")["errors"] == []


async def test_two_staff_adding_the_15th_signer_at_once_add_only_one(live):
    staff = as_user(live, "staff-2701")
    for i in range(12):
        assert live.graphql(ADD_SIGNER, {"n": "2701000002", "name": f"署名 {i}"}, headers=staff).json()["data"]["addSigner"]["errors"] == []
    barrier = threading.Barrier(2)
    results: list = []

    def add(name):
        barrier.wait()
        results.append(live.graphql(ADD_SIGNER, {"n": "2701000002", "name": name}, headers=staff).json()["data"]["addSigner"])

    threads = [threading.Thread(target=add, args=(f"同時 {i}",)) for i in range(2)]
    await asyncio.to_thread(lambda: ([t.start() for t in threads], [t.join() for t in threads]))
    codes = sorted(r["errors"][0]["code"] if r["errors"] else "OK" for r in results)
    assert codes == ["OK", "SIGNER_LIMIT"]


def test_only_the_registrations_admin_renews_it(live):
    admin = as_user(live, "admin-2701000004")
    renewed = live.graphql(RENEW, headers=admin).json()["data"]["renewTradeRegistration"]
    assert renewed == {"registration": {"validUntil": "2027-03-31"}, "errors": []}
    again = live.graphql(RENEW, headers=admin).json()["data"]["renewTradeRegistration"]
    assert again["registration"]["validUntil"] == "2028-03-31"
    signer = as_user(live, "signer-2701000002")
    assert live.graphql(RENEW, headers=signer).json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_chamber_staff_read_the_audit_trail_with_the_responsible_signer(live):
    signer = as_user(live, "signer-2701000002")
    create_sub(live, signer)
    staff = as_user(live, "staff-2701")
    first = live.graphql(AUDIT, headers={**staff, "X-Request-ID": "audit-1"}).json()["data"]["auditLog"]
    assert first["totalCount"] == 3 and first["pageInfo"]["hasNextPage"] is False
    actions = [e["node"]["action"] for e in first["edges"]]
    assert actions == ["login", "subaccount.create", "login"]  # newest first
    created = first["edges"][1]["node"]
    assert created["actor"]["username"] == "signer-2701000002" and created["responsible"]["username"] == "signer-2701000002"
    assert created["target"].startswith("Account:") and created["requestId"]
    for _ in range(3):
        as_user(live, "signer2-2701000002")
    page = live.graphql(AUDIT, headers=staff).json()["data"]["auditLog"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = live.graphql(AUDIT, {"after": page["pageInfo"]["endCursor"]}, headers=staff).json()["data"]["auditLog"]
    assert len(rest["edges"]) == 3
    assert live.graphql(AUDIT, headers=signer).json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
