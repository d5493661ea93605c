"""Every row of rules/permissions.yaml is what allows its API call: with the row the call is
answered, with only that row removed (a copy of the rules, loaded by the running server) it is
FORBIDDEN or the object is not there. So no permission is decided in code past the matrix,
and a new row with no probe here fails the test. Over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx

from rules.policy import in_force, load_policy
from rules.runtime import RulesRuntime
from tests.applications.test_applications import ORIGIN, act
from tests.identity.test_identity_sessions import bearer, login
from tests.identity.test_subaccounts import ACTIVATE, SUB_PASSWORD, create_sub, mailed_token, notify
from tests.naccs.test_naccs import submit_codes
from tradecert.trusted_documents import document_id

TODAY = dt.date(2026, 4, 1)  # the live server's clock
CREATE_APP = "mutation($input: CreateApplicationInput!) { createApplication(input: $input) { application { id } errors { code } } }"
Probe = Callable[[], httpx.Response]


def refused(response: httpx.Response, must_see: str | None = None) -> bool:
    """FORBIDDEN, or NOT_FOUND for what the caller may not see, or the object absent."""
    body = response.json()
    if any((e.get("extensions") or {}).get("code") == "FORBIDDEN" for e in body.get("errors") or []):
        return True
    payload = next(iter((body.get("data") or {}).values()), None)
    if payload is None:
        return True
    if isinstance(payload, dict) and any(e["code"] == "NOT_FOUND" for e in payload.get("errors") or []):
        return True
    return must_see is not None and must_see not in response.text


def without_row(rules_dir: Path, target: Path, row: dict[str, object]) -> Path:
    """A copy of ``rules_dir`` whose permissions.yaml lacks the one line holding ``row``."""
    shutil.copytree(rules_dir, target)
    path = target / "permissions.yaml"
    pattern = re.compile(r"^\s*- \{" + r",\s*".join(rf"{k}: {re.escape(str(v))}" for k, v in row.items()) + r"\}.*\n",
                         re.MULTILINE)
    text, removed = pattern.subn("", path.read_text(encoding="utf-8"), count=1)
    assert removed == 1, f"no line for {row} in permissions.yaml (rows are written one per line)"
    path.write_text(text, encoding="utf-8")
    return target


async def test_removing_any_permission_row_refuses_exactly_its_call(live, tmp_path):
    tokens = {u: bearer(login(live, u, chamber=c)["token"]) for u, c in (
        ("admin-2701000002", "2701"), ("signer-2701000002", "2701"), ("staff-2701", "2701"),
        ("naccs-demo", None), ("naccs-center", None))}
    signer, staff, admin = tokens["signer-2701000002"], tokens["staff-2701"], tokens["admin-2701000002"]
    sub = create_sub(live, signer)
    notify(live, signer, sub["id"])
    token, _ = await mailed_token(live)
    live.graphql(ACTIVATE, {"t": token, "u": sub["username"], "p": SUB_PASSWORD})
    as_sub = bearer(login(live, sub["username"], SUB_PASSWORD)["token"])
    target = live.graphql(
        """mutation { addSigner(input: {registrationNumber: "2701000002", name: "対象 署名者", email: "t@kakogawa.example",
           password: "target-pass-11", username: "target-signer"}) { account { id } errors { code } } }""", headers=staff,
    ).json()["data"]["addSigner"]["account"]

    def application(headers: dict[str, str], card: bool = False) -> str:
        data = {**ORIGIN, "feePayment": "CARD"} if card else ORIGIN
        app_id: str = live.graphql(CREATE_APP, {"input": data}, headers=headers).json()["data"]["createApplication"]["application"]["id"]
        if card:
            act(live, headers, "submitApplication", app_id)
            act(live, staff, "approveApplication", app_id)
        return app_id

    drafts = {"signer": application(signer), "sub": application(as_sub)}
    cards = {"signer": application(signer, card=True), "sub": application(as_sub, card=True)}
    naccs = submit_codes(live, tokens["naccs-demo"])["application"]["id"]
    make_key = 'mutation($n: String!) { createApiKey(input: {name: $n}) { apiKey { id prefix } errors { code } } }'

    def api_key(headers: dict[str, str], name: str) -> dict[str, str]:
        made: dict[str, str] = live.graphql(make_key, {"n": name}, headers=headers).json()["data"]["createApiKey"]["apiKey"]
        return made

    keys_of = {"signer": api_key(signer, "signer's"), "sub": api_key(as_sub, "sub's")}
    to_revoke = {"signer": api_key(signer, "revoked by itself"), "sub": api_key(as_sub, "revoked by itself"),
                 "admin": api_key(signer, "revoked by the admin")}

    def gql(headers: dict[str, str], query: str, **variables: object) -> Probe:
        return lambda: live.graphql(query, variables, headers=headers)

    def node(headers: dict[str, str], node_id: str) -> Probe:
        return gql(headers, "query($id: ID!) { node(id: $id) { id } }", id=node_id)

    def untrusted(headers: dict[str, str]) -> Probe:
        """A document outside a trusted-documents manifest, while the server holds one."""
        def call() -> httpx.Response:
            live.services.trusted_documents = {document_id("{ __typename }"): "{ __typename }"}
            try:
                return live.graphql("{ me { username } }", headers=headers)
            finally:
                live.services.trusted_documents = None
        return call

    reset = "mutation($id: ID!) { resetAccountPassword(input: {accountId: $id, newPassword: \"x\"}) { errors { code } } }"
    purchase = "mutation { startCouponPurchase(input: {lines: [], method: BANK_TRANSFER}) { errors { code } } }"
    edit = 'mutation($id: ID!) { updateApplication(input: {applicationId: $id, exporterName: "probe"}) { errors { code } } }'
    pay = "mutation($id: ID!) { addToCardCart(input: {applicationIds: [$id]}) { errors { code } } }"
    revoke_key = "mutation($id: ID!) { revokeApiKey(input: {apiKeyId: $id}) { apiKey { id } errors { code } } }"
    # (action, kind, registration, relation) → the call that row allows, and what it must show
    probes: dict[tuple[str, str, str, str], tuple[Probe, str | None]] = {
        ("account.view_self", "any", "any", "self"): (gql(signer, "{ me { username } }"), None),
        ("account.change_own_password", "any", "any", "self"): (gql(signer, """mutation { changePassword(input:
            {currentPassword: "not-the-password", newPassword: "x"}) { errors { code } } }"""), None),
        ("account.reset_password", "ADMIN", "APPLICANT", "own_registration"): (gql(admin, reset, id=target["id"]), None),
        ("subaccount.view", "ADMIN", "APPLICANT", "own_registration"): (gql(admin, "{ subAccounts { username } }"), sub["username"]),
        ("registration.renew", "ADMIN", "any", "own_registration"): (
            gql(admin, "mutation { renewTradeRegistration(input: {}) { errors { code } } }"), None),
        ("subaccount.create", "SIGNER", "APPLICANT", "none"): (gql(signer, """mutation { createSubAccount(input:
            {name: "", password: "x", email: "p@kakogawa.example"}) { errors { code } } }"""), None),
        ("subaccount.view", "SIGNER", "APPLICANT", "generated_by_me"): (gql(signer, "{ subAccounts { username } }"), sub["username"]),
        ("subaccount.manage", "SIGNER", "APPLICANT", "generated_by_me"): (gql(signer, """mutation($id: ID!) {
            updateSubAccount(input: {accountId: $id, name: "山田 花子"}) { errors { code } } }""", id=sub["id"]), None),
        ("account.reset_password", "SIGNER", "APPLICANT", "generated_by_me"): (gql(signer, reset, id=sub["id"]), None),
        ("api_key.create", "SIGNER", "APPLICANT", "none"): (gql(signer, make_key, n=" "), None),  # REQUIRED: nothing made
        ("api_key.create", "SUB", "APPLICANT", "none"): (gql(as_sub, make_key, n=" "), None),
        ("api_key.view", "SIGNER", "APPLICANT", "self"): (gql(signer, "{ apiKeys { prefix } }"), keys_of["signer"]["prefix"]),
        ("api_key.view", "SUB", "APPLICANT", "self"): (gql(as_sub, "{ apiKeys { prefix } }"), keys_of["sub"]["prefix"]),
        ("api_key.view", "ADMIN", "APPLICANT", "own_registration"): (
            gql(admin, "{ apiKeys { prefix } }"), keys_of["signer"]["prefix"]),
        ("api_key.revoke", "SIGNER", "APPLICANT", "self"): (gql(signer, revoke_key, id=to_revoke["signer"]["id"]), None),
        ("api_key.revoke", "SUB", "APPLICANT", "self"): (gql(as_sub, revoke_key, id=to_revoke["sub"]["id"]), None),
        ("api_key.revoke", "ADMIN", "APPLICANT", "own_registration"): (
            gql(admin, revoke_key, id=to_revoke["admin"]["id"]), None),
        ("coupon.purchase", "SIGNER", "APPLICANT", "own_registration"): (gql(signer, purchase), None),
        ("coupon.purchase", "SUB", "APPLICANT", "own_registration"): (gql(as_sub, purchase), None),
        ("coupon.view", "SIGNER", "APPLICANT", "own_registration"): (gql(signer, "{ couponAccount { balance } }"), None),
        ("coupon.view", "SUB", "APPLICANT", "own_registration"): (gql(as_sub, "{ couponAccount { balance } }"), None),
        ("application.create", "SIGNER", "APPLICANT", "own_registration"): (gql(signer, CREATE_APP, input=ORIGIN), None),
        ("application.create", "SUB", "APPLICANT", "own_registration"): (gql(as_sub, CREATE_APP, input=ORIGIN), None),
        ("application.view", "SIGNER", "APPLICANT", "own_registration"): (node(signer, drafts["sub"]), drafts["sub"]),
        ("application.view", "SUB", "APPLICANT", "created_by_me"): (node(as_sub, drafts["sub"]), drafts["sub"]),
        ("application.edit", "SIGNER", "APPLICANT", "own_registration"): (gql(signer, edit, id=drafts["sub"]), None),
        ("application.edit", "SUB", "APPLICANT", "created_by_me"): (gql(as_sub, edit, id=drafts["sub"]), None),
        ("application.pay", "SIGNER", "APPLICANT", "own_registration"): (gql(signer, pay, id=cards["sub"]), None),
        ("application.pay", "SUB", "APPLICANT", "created_by_me"): (gql(as_sub, pay, id=cards["sub"]), None),
        ("application.view", "CHAMBER_STAFF", "any", "same_chamber"): (node(staff, drafts["signer"]), drafts["signer"]),
        ("application.review", "CHAMBER_STAFF", "any", "same_chamber"): (gql(staff, """mutation($id: ID!) {
            approveApplication(input: {applicationId: $id}) { errors { code } } }""", id=drafts["signer"]), None),
        ("registration.create", "CHAMBER_STAFF", "any", "same_chamber"): (gql(staff, """mutation { createTradeRegistration(input:
            {kind: APPLICANT, name: "", membership: MEMBER, contactEmail: "x", adminName: "", adminEmail: "x",
             adminPassword: "x"}) { errors { code } } }"""), None),
        ("registration.withdraw", "CHAMBER_STAFF", "any", "same_chamber"): (gql(staff, """mutation($r: String) {
            withdrawTradeRegistration(input: {registrationNumber: "2701000003", reason: $r}) { errors { code } } }""",
            r="長" * 501), None),  # a reason too long: refused after the permission, nothing withdrawn
        ("signer.add", "CHAMBER_STAFF", "any", "same_chamber"): (gql(staff, """mutation { addSigner(input:
            {registrationNumber: "2701000003", name: "", email: "x", password: "x"}) { errors { code } } }"""), None),
        ("coupon.view", "CHAMBER_STAFF", "any", "same_chamber"): (
            gql(staff, '{ couponAccount(registrationNumber: "2701000002") { balance } }'), None),
        ("coupon.adjust", "CHAMBER_STAFF", "any", "same_chamber"): (gql(staff, """mutation { adjustCoupons(input:
            {registrationNumber: "2701000002", coupons: 0, reason: "probe"}) { errors { code } } }"""), None),
        ("payment.check", "CHAMBER_STAFF", "any", "same_chamber"): (
            gql(staff, "mutation { recordBankDeposits(input: {deposits: []}) { errors { code } } }"), None),
        ("audit.view", "CHAMBER_STAFF", "any", "same_chamber"): (gql(staff, "{ auditLog(first: 1) { totalCount } }"), None),
        ("rules.history", "CHAMBER_STAFF", "any", "none"): (gql(staff, "{ rulesVersions(first: 1) { __typename } }"), None),
        ("rules.diff", "CHAMBER_STAFF", "any", "none"): (
            gql(staff, '{ rulesDiff(from: "2026-03-31", to: "2026-04-01") { __typename } }'), None),
        ("graphql.untrusted_document", "CHAMBER_STAFF", "any", "none"): (untrusted(staff), "staff-2701"),
        ("naccs.apply", "NACCS_OFFICE", "any", "own_office"): (gql(tokens["naccs-demo"], "{ naccsOffice { name } }"), None),
        ("naccs.view", "NACCS_OFFICE", "any", "own_office"): (node(tokens["naccs-demo"], naccs), naccs),
        ("naccs.view", "NACCS_CENTER", "any", "any"): (node(tokens["naccs-center"], naccs), naccs),
        ("naccs.review", "NACCS_CENTER", "any", "any"): (gql(tokens["naccs-center"], "{ naccsReviewQueue { id } }"), naccs),
        ("webhook.view", "SIGNER", "APPLICANT", "own_registration"): (gql(signer, "{ webhookEndpoints { id } }"), None),
        ("webhook.manage", "SIGNER", "APPLICANT", "own_registration"): (gql(signer, """mutation { createWebhookEndpoint(
            input: {url: "ftp://probe.example/", events: [APPLICATION_ISSUED]}) { errors { code } } }"""), None),  # INVALID url
    }

    policy = load_policy(live.rules_dir)
    rows = [dict(r) for r in in_force(policy.tables["permissions"].versions, TODAY).rows]
    keys = [(str(r["action"]), str(r["kind"]), str(r["registration"]), str(r["relation"])) for r in rows]
    assert sorted(set(keys) - set(probes)) == [], "rows of permissions.yaml with no probe here: add one"

    full = live.services.rules
    wrong = []
    for i, (key, row) in enumerate(zip(keys, rows)):
        call, must_see = probes[key]
        if refused(call(), must_see):
            wrong.append(f"{key}: refused with the row present")
        live.services.rules = RulesRuntime(without_row(live.rules_dir, tmp_path / f"without-{i}", row))
        try:
            if not refused(call(), must_see):
                wrong.append(f"{key}: still allowed without the row")
        finally:
            live.services.rules = full
    assert wrong == []
