"""API keys (issue 14) over HTTP, on SQLite and PostgreSQL: made once and stored hashed, used
as `Authorization: Bearer tck_…`, refused once revoked or expired, never able to do what only
a person may, revoked with their account, named in the audit log, throttled per key."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import select

from persistence.models import ApiKey, AuditEntry
from rules.runtime import RulesRuntime
from schema.identity import to_global_id
from tests.applications.test_applications import ORIGIN
from tests.identity.test_identity_sessions import CHANGE, PASSWORD, bearer, login
from tests.identity.test_subaccounts import ACTIVATE, CREATE, DELETE, SUB_PASSWORD, as_user, create_sub, mailed_token, notify

CREATE_KEY = """mutation($name: String!, $expiresAt: DateTime) {
  createApiKey(input: {name: $name, expiresAt: $expiresAt}) {
    apiKey { id name prefix createdAt expiresAt lastUsedAt revokedAt account { username } } secret
    errors { code field message } } }"""
REVOKE_KEY = """mutation($id: ID!) { revokeApiKey(input: {apiKeyId: $id}) {
  apiKey { id revokedAt } errors { code field message } } }"""
KEYS = "{ apiKeys { id name prefix revokedAt account { username } } }"
ME = "{ me { username kind } }"
CREATE_APP = "mutation($input: CreateApplicationInput!) { createApplication(input: $input) { application { id } errors { code } } }"


def make_key(live, headers, name="ERP", expires_at=None) -> dict:
    result = live.graphql(CREATE_KEY, {"name": name, "expiresAt": expires_at}, headers=headers).json()["data"]["createApiKey"]
    assert result["errors"] == [], result
    return result


def top_code(body: dict) -> str | None:
    return (body.get("errors") or [{}])[0].get("extensions", {}).get("code")


async def test_a_key_works_until_revoked_and_only_its_hash_is_stored(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    made = make_key(live, signer, "  ERP (production)  ")
    secret, key = made["secret"], made["apiKey"]
    assert re.fullmatch(r"tck_[A-Za-z0-9_-]{43}", secret)
    assert key["name"] == "ERP (production)" and key["prefix"] == secret[:12] and key["revokedAt"] is None
    assert key["account"] == {"username": "signer-2701000002"} and key["lastUsedAt"] is None

    me = live.graphql(ME, headers=bearer(secret)).json()["data"]["me"]
    assert me == {"username": "signer-2701000002", "kind": "SIGNER"}
    filed = live.graphql(CREATE_APP, {"input": ORIGIN}, headers=bearer(secret)).json()["data"]["createApplication"]
    assert filed["errors"] == []  # the signer's permissions: it files for its registration
    listed = live.graphql(KEYS, headers=bearer(secret)).json()["data"]["apiKeys"]
    assert [k["id"] for k in listed] == [key["id"]]

    async with db.read() as session:
        row = (await session.scalars(select(ApiKey))).one()
        audit = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "application.create"))).one()
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert all(secret not in str(value) for value in row.__dict__.values())  # the key text is nowhere in its row
    assert row.last_used_at == live.clock.now()
    assert audit.api_key_id == row.id and audit.actor_id == audit.responsible_id == row.account_id

    revoked = live.graphql(REVOKE_KEY, {"id": key["id"]}, headers=signer).json()["data"]["revokeApiKey"]
    assert revoked["errors"] == [] and revoked["apiKey"]["revokedAt"] is not None
    assert live.graphql(ME, headers=bearer(secret)).json()["data"]["me"] is None
    assert top_code(live.graphql(KEYS, headers=bearer(secret)).json()) == "UNAUTHENTICATED"
    again = live.graphql(REVOKE_KEY, {"id": key["id"]}, headers=signer).json()["data"]["revokeApiKey"]
    assert again["apiKey"]["revokedAt"] == revoked["apiKey"]["revokedAt"]  # a retry changes nothing


async def test_a_key_cannot_make_keys_change_passwords_or_manage_sub_ids(live):
    signer = as_user(live, "signer-2701000002")
    key = bearer(make_key(live, signer)["secret"])
    english = {**key, "Accept-Language": "en"}
    made = live.graphql(CREATE_KEY, {"name": "another"}, headers=english).json()
    assert top_code(made) == "FORBIDDEN" and made["errors"][0]["message"].startswith("An API key cannot create API keys")
    changed = live.graphql(CHANGE, {"cur": PASSWORD, "new": "another-pass-99"}, headers=key).json()
    assert top_code(changed) == "FORBIDDEN" and "APIキーでは" in changed["errors"][0]["message"]
    sub = live.graphql(CREATE, {"name": "山田 花子", "password": SUB_PASSWORD, "email": "h@kakogawa.example"}, headers=key).json()
    assert top_code(sub) == "FORBIDDEN"
    assert top_code(live.graphql("mutation { logout(input: {}) { errors { code } } }", headers=key).json()) == "FORBIDDEN"
    assert live.graphql(ME, headers=key).json()["data"]["me"]["username"] == "signer-2701000002"  # still a key
    assert login(live, "signer-2701000002")["errors"] == []  # the password did not change


async def test_an_expired_key_is_refused_and_an_expiry_must_lie_ahead(live):
    signer = as_user(live, "signer-2701000002")
    in_an_hour = (live.clock.now() + dt.timedelta(hours=1)).isoformat()
    key = bearer(make_key(live, signer, expires_at=in_an_hour)["secret"])
    assert live.graphql(ME, headers=key).json()["data"]["me"] is not None
    live.clock.advance(dt.timedelta(minutes=61))
    assert live.graphql(ME, headers=key).json()["data"]["me"] is None
    assert top_code(live.graphql(KEYS, headers=key).json()) == "UNAUTHENTICATED"
    past = live.graphql(CREATE_KEY, {"name": "old", "expiresAt": "2026-04-01T09:00:00+09:00"},
                        headers=as_user(live, "signer-2701000002")).json()["data"]["createApiKey"]
    assert past["apiKey"] is None and [(e["code"], e["field"]) for e in past["errors"]] == [("INVALID", ["input", "expiresAt"])]
    blank = live.graphql(CREATE_KEY, {"name": "  "}, headers=as_user(live, "signer-2701000002")).json()["data"]["createApiKey"]
    assert [(e["code"], e["field"]) for e in blank["errors"]] == [("REQUIRED", ["input", "name"])]


async def test_the_admin_lists_and_revokes_its_registrations_keys_a_colleague_cannot(live):
    signer, colleague, admin = (as_user(live, u) for u in ("signer-2701000002", "signer2-2701000002", "admin-2701000002"))
    made = make_key(live, signer, "ERP")
    other = make_key(live, colleague, "forwarder link")
    elsewhere = make_key(live, as_user(live, "signer-2701000003"), "another registration")
    assert [k["name"] for k in live.graphql(KEYS, headers=admin).json()["data"]["apiKeys"]] == ["ERP", "forwarder link"]
    assert [k["name"] for k in live.graphql(KEYS, headers=colleague).json()["data"]["apiKeys"]] == ["forwarder link"]

    refused = live.graphql(REVOKE_KEY, {"id": made["apiKey"]["id"]}, headers=colleague).json()
    assert top_code(refused) is None and not_found(refused)  # a colleague's key: as if there were none
    assert not_found(live.graphql(REVOKE_KEY, {"id": elsewhere["apiKey"]["id"]}, headers=admin).json())
    node = "query($id: ID!) { node(id: $id) { ... on ApiKey { name } } }"
    assert live.graphql(node, {"id": made["apiKey"]["id"]}, headers=colleague).json()["data"]["node"] is None
    assert live.graphql(node, {"id": made["apiKey"]["id"]}, headers=admin).json()["data"]["node"] == {"name": "ERP"}
    assert live.graphql(ME, headers=bearer(made["secret"])).json()["data"]["me"] is not None

    revoked = live.graphql(REVOKE_KEY, {"id": made["apiKey"]["id"]}, headers=admin).json()["data"]["revokeApiKey"]
    assert revoked["errors"] == [] and revoked["apiKey"]["revokedAt"] is not None
    assert live.graphql(ME, headers=bearer(made["secret"])).json()["data"]["me"] is None
    assert live.graphql(ME, headers=bearer(other["secret"])).json()["data"]["me"] is not None
    staff = as_user(live, "staff-2701")
    assert top_code(live.graphql(KEYS, headers=staff).json()) == "FORBIDDEN"


def not_found(body: dict) -> bool:
    payload = body["data"]["revokeApiKey"]
    return payload["apiKey"] is None and [(e["code"], e["field"]) for e in payload["errors"]] == [
        ("NOT_FOUND", ["input", "apiKeyId"])]


async def test_revoking_a_key_out_of_reach_answers_as_a_key_that_does_not_exist(live, migrated):
    _target, db = migrated
    signer, admin = as_user(live, "signer-2701000002"), as_user(live, "admin-2701000002")
    elsewhere = make_key(live, as_user(live, "signer-2701000003"), "another registration")["apiKey"]["id"]
    missing = to_global_id("ApiKey", 999_999)
    for who in (signer, admin):  # another registration's key and no key at all: one answer, word for word
        theirs = live.graphql(REVOKE_KEY, {"id": elsewhere}, headers=who).json()
        nothing = live.graphql(REVOKE_KEY, {"id": missing}, headers=who).json()
        assert not_found(theirs) and theirs["data"] == nothing["data"], (theirs, nothing)
    staff = as_user(live, "staff-2701")  # may revoke no key at all: FORBIDDEN, whichever id, before any lookup
    assert top_code(live.graphql(REVOKE_KEY, {"id": elsewhere}, headers=staff).json()) == "FORBIDDEN"
    assert top_code(live.graphql(REVOKE_KEY, {"id": missing}, headers=staff).json()) == "FORBIDDEN"
    async with db.read() as session:
        assert (await session.scalars(select(ApiKey.revoked_at))).all() == [None]


async def test_deleting_a_sub_id_revokes_its_keys_and_audit_rows_name_the_key(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    sub = create_sub(live, signer)
    notify(live, signer, sub["id"])
    token, _ = await mailed_token(live)
    assert live.graphql(ACTIVATE, {"t": token, "u": sub["username"], "p": SUB_PASSWORD}).json()["data"]["activateSubAccount"]["errors"] == []
    as_sub = bearer(login(live, sub["username"], SUB_PASSWORD)["token"])
    made = make_key(live, as_sub, "sub's script")
    key = bearer(made["secret"])
    filed = live.graphql(CREATE_APP, {"input": ORIGIN}, headers=key).json()["data"]["createApplication"]
    assert filed["errors"] == []

    deleted = live.graphql(DELETE, {"id": sub["id"]}, headers=signer).json()["data"]["deleteSubAccount"]
    assert deleted["errors"] == [] and deleted["account"]["status"] == "DELETED"
    assert live.graphql(ME, headers=key).json()["data"]["me"] is None
    async with db.read() as session:
        row = (await session.scalars(select(ApiKey))).one()
        entry = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "application.create"))).one()
        made_by = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "api_key.create"))).one()
    assert row.revoked_at == live.clock.now() and row.revoked_by_id is not None
    assert entry.api_key_id == row.id and entry.actor_id == row.account_id
    assert entry.responsible_id != entry.actor_id  # a sub-ID's responsible signer: the one that generated it
    assert made_by.api_key_id is None and made_by.target == f"ApiKey:{row.id}"  # made in a session, not by a key


async def test_withdrawing_a_registration_revokes_the_keys_of_its_ids(live, migrated):
    _target, db = migrated
    key = bearer(make_key(live, as_user(live, "signer-2701000003"))["secret"])
    withdraw = """mutation { withdrawTradeRegistration(input: {registrationNumber: "2701000003", reason: "廃業"}) {
        errors { code } } }"""
    assert live.graphql(withdraw, headers=as_user(live, "staff-2701")).json()["data"]["withdrawTradeRegistration"]["errors"] == []
    assert live.graphql(ME, headers=key).json()["data"]["me"] is None
    async with db.read() as session:
        assert (await session.scalars(select(ApiKey))).one().revoked_at is not None


async def test_a_key_gets_at_most_its_requests_per_minute_even_in_parallel(live):
    path = live.rules_dir / "limits.yaml"
    text, changed = re.subn(r"(limit: api_key_requests_per_minute\n\s+value: )\d+", r"\g<1>5", path.read_text(encoding="utf-8"))
    assert changed == 1
    path.write_text(text, encoding="utf-8")
    live.services.rules = RulesRuntime(live.rules_dir)
    secret = make_key(live, as_user(live, "signer-2701000002"))["secret"]

    barrier = threading.Barrier(12)

    def one(_: int) -> dict:
        with httpx.Client(base_url=live.url, timeout=60) as client:
            barrier.wait()
            return client.post("/graphql", json={"query": "{ me { username } couponAccount { balance } }"},
                               headers=bearer(secret)).json()

    with ThreadPoolExecutor(12) as pool:
        answers = await asyncio.to_thread(lambda: list(pool.map(one, range(12))))
    passed = [a for a in answers if not a.get("errors")]
    refused = [a for a in answers if a.get("errors")]
    assert len(passed) == 5 and len(refused) == 7
    for answer in refused:  # one top-level refusal per request, whatever it asked, with the wait
        assert {top_code({"errors": [e]}) for e in answer["errors"]} == {"TOO_MANY_REQUESTS"}
        assert 1 <= answer["errors"][0]["extensions"]["retryAfter"] <= 60
    over = live.graphql(ME, headers={**bearer(secret), "Accept-Language": "en"})
    assert over.headers["retry-after"] and over.json()["errors"][0]["message"].startswith("Too many attempts")
    live.clock.advance(dt.timedelta(seconds=61))  # a new window
    assert live.graphql(ME, headers=bearer(secret)).json()["data"]["me"] == {"username": "signer-2701000002", "kind": "SIGNER"}
