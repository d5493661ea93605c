"""Sub-IDs (eco-sub-id.ja.txt) over HTTP with real mail, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import func, select

from persistence.models import Account, ActivationToken, AuditEntry, OutboxMail
from tests.identity.test_identity_sessions import bearer, login

SUB_PASSWORD = "hanako-pass-2026"
CREATE = """mutation($name: String!, $password: String!, $email: String!, $phone: String) {
  createSubAccount(input: {name: $name, password: $password, email: $email, phone: $phone}) {
    account { id username status generatedBy { username } registration { number } } errors { code field message } } }"""
NOTIFY = """mutation($id: ID!, $target: String!, $phone: String!, $email: String!, $subject: String, $body: String) {
  notifySubAccount(input: {accountId: $id, targetRegistrationNumber: $target, phone: $phone, email: $email, subject: $subject, body: $body}) {
    account { id status email notifiedAt activationExpiresAt } errors { code field message } } }"""
ACTIVATE = """mutation($t: String!, $u: String!, $p: String!) {
  activateSubAccount(input: {token: $t, username: $u, password: $p}) { account { username status } errors { code field } } }"""
RESET = """mutation($id: ID!, $p: String!) { resetAccountPassword(input: {accountId: $id, newPassword: $p}) { account { username } errors { code field } } }"""
UPDATE = """mutation($id: ID!, $email: String, $name: String) { updateSubAccount(input: {accountId: $id, email: $email, name: $name}) { account { name email } errors { code field } } }"""
DELETE = """mutation($id: ID!) { deleteSubAccount(input: {accountId: $id}) { account { status } errors { code } } }"""
SUBS = "{ subAccounts { username status } }"


def as_user(live, username):
    return bearer(login(live, username)["token"])


def create_sub(live, signer_headers, name="山田 花子", email="hanako@kakogawa.example", phone="06-1234-5678"):
    result = live.graphql(CREATE, {"name": name, "password": SUB_PASSWORD, "email": email, "phone": phone},
                          headers=signer_headers).json()["data"]["createSubAccount"]
    assert result["errors"] == [], result
    return result["account"]


def notify(live, headers, account_id, target="2701000002", email="hanako@kakogawa.example", **extra):
    variables = {"id": account_id, "target": target, "phone": "0612345678", "email": email, **extra}
    return live.graphql(NOTIFY, variables, headers=headers).json()


async def mailed_token(live) -> tuple[str, object]:
    outcome = await live.run_job("mail-delivery")
    assert outcome.status == "ok", outcome
    message = live.smtp.messages[-1]
    body = message.get_content()
    url = re.search(r"https?://\S+/activate\?token=\S+", body).group(0)
    return parse_qs(urlsplit(url).query)["token"][0], message


async def test_a_sub_id_is_created_notified_by_real_mail_activated_and_logs_in(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    sub = create_sub(live, signer)
    assert re.fullmatch(r"[A-Za-z0-9]{12}", sub["username"])
    assert sub["status"] == "CREATED" and sub["generatedBy"]["username"] == "signer-2701000002"
    assert login(live, sub["username"], SUB_PASSWORD)["errors"][0]["code"] == "INVALID_CREDENTIALS"  # not active yet

    notified = notify(live, signer, sub["id"])["data"]["notifySubAccount"]
    assert notified["errors"] == [] and notified["account"]["status"] == "NOTIFIED"
    expires = dt.datetime.fromisoformat(notified["account"]["activationExpiresAt"])
    assert expires - dt.datetime.fromisoformat(notified["account"]["notifiedAt"]) == dt.timedelta(hours=72)

    token, message = await mailed_token(live)
    assert message["To"] == "hanako@kakogawa.example"
    assert message["Subject"] == "【貿易関係証明発給システム】サブID付与のお知らせ"
    body = message.get_content()
    assert sub["username"] in body and "2701" in body and f"{live.url}/activate?token=" in body
    assert SUB_PASSWORD not in body  # never the password

    page = httpx.get(f"{live.url}/activate", params={"token": token})
    assert page.status_code == 200 and token in page.text and "サブIDの有効化" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"

    activated = live.graphql(ACTIVATE, {"t": token, "u": sub["username"], "p": SUB_PASSWORD},
                             headers={"Origin": live.url}).json()["data"]["activateSubAccount"]
    assert activated == {"account": {"username": sub["username"], "status": "ACTIVE"}, "errors": []}
    logged_in = login(live, sub["username"], SUB_PASSWORD)
    assert logged_in["errors"] == [] and logged_in["account"]["kind"] == "SUB"
    me = live.graphql("{ me { generatedBy { username } registration { number } } }", headers=bearer(logged_in["token"])).json()
    assert me["data"]["me"] == {"generatedBy": {"username": "signer-2701000002"}, "registration": {"number": "2701000002"}}

    async with db.read() as session:
        stored = (await session.scalars(select(ActivationToken.token_hash))).all()
        mails = await session.scalar(select(func.count()).select_from(OutboxMail).where(OutboxMail.status == "SENT"))
    assert token not in stored and mails == 1


async def test_a_73_hour_old_link_is_expired_and_a_new_notice_replaces_it(live):
    signer = as_user(live, "signer-2701000002")
    sub = create_sub(live, signer)
    notify(live, signer, sub["id"])
    token, _ = await mailed_token(live)
    live.clock.advance(dt.timedelta(hours=73))
    expired = live.graphql(ACTIVATE, {"t": token, "u": sub["username"], "p": SUB_PASSWORD}).json()["data"]["activateSubAccount"]
    assert expired["errors"] == [{"code": "TOKEN_EXPIRED", "field": ["input", "token"]}]
    signer = as_user(live, "signer-2701000002")  # the session idled out meanwhile
    assert notify(live, signer, sub["id"])["data"]["notifySubAccount"]["errors"] == []
    fresh, _ = await mailed_token(live)
    ok = live.graphql(ACTIVATE, {"t": fresh, "u": sub["username"], "p": SUB_PASSWORD}).json()["data"]["activateSubAccount"]
    assert ok["errors"] == []
    reused = live.graphql(ACTIVATE, {"t": fresh, "u": sub["username"], "p": SUB_PASSWORD}).json()["data"]["activateSubAccount"]
    assert reused["errors"][0]["code"] == "TOKEN_INVALID"


async def test_a_link_works_once_even_when_two_activations_race(live):
    signer = as_user(live, "signer-2701000002")
    sub = create_sub(live, signer)
    notify(live, signer, sub["id"])
    token, _ = await mailed_token(live)
    barrier = threading.Barrier(6)
    answers: list = []

    def activate():
        barrier.wait()
        answers.append(live.graphql(ACTIVATE, {"t": token, "u": sub["username"], "p": SUB_PASSWORD}).json())

    threads = [threading.Thread(target=activate) for _ in range(6)]
    await asyncio.to_thread(lambda: ([t.start() for t in threads], [t.join() for t in threads]))
    payloads = [a["data"]["activateSubAccount"] for a in answers]
    assert sum(1 for p in payloads if p["errors"] == []) == 1
    assert all(p["errors"][0]["code"] == "TOKEN_INVALID" for p in payloads if p["errors"])


def test_the_target_must_be_the_own_registration_or_an_agent_of_the_same_chamber(live):
    signer = as_user(live, "signer-2701000002")
    sub = create_sub(live, signer)
    other = notify(live, signer, sub["id"], target="2701000003", email="x@nissho-test.example")["data"]["notifySubAccount"]
    assert other["errors"] == [{"code": "TARGET_NOT_ELIGIBLE", "field": ["input", "targetRegistrationNumber"], "message": other["errors"][0]["message"]}]
    assert notify(live, signer, sub["id"], target="9999999999")["data"]["notifySubAccount"]["errors"][0]["code"] == "TARGET_NOT_ELIGIBLE"
    wrong_domain = notify(live, signer, sub["id"], target="2701000004", email="staff@gmail.example")["data"]["notifySubAccount"]
    assert wrong_domain["errors"][0]["code"] == "EMAIL_DOMAIN_MISMATCH"
    agent = notify(live, signer, sub["id"], target="2701000004", email="clerk@osaka-fwd.example")["data"]["notifySubAccount"]
    assert agent["errors"] == []  # the agent's contact person's domain


def test_the_address_is_locked_once_notified(live):
    signer = as_user(live, "signer-2701000002")
    sub = create_sub(live, signer)
    assert notify(live, signer, sub["id"])["data"]["notifySubAccount"]["errors"] == []
    again = notify(live, signer, sub["id"], email="other@kakogawa.example")["data"]["notifySubAccount"]
    assert again["errors"][0]["code"] == "EMAIL_LOCKED"
    changed = live.graphql(UPDATE, {"id": sub["id"], "email": "other@kakogawa.example"}, headers=signer).json()["data"]["updateSubAccount"]
    assert changed["errors"] == [{"code": "EMAIL_LOCKED", "field": ["input", "email"]}]
    renamed = live.graphql(UPDATE, {"id": sub["id"], "name": "山田　花江"}, headers=signer).json()["data"]["updateSubAccount"]
    assert renamed == {"account": {"name": "山田　花江", "email": "hanako@kakogawa.example"}, "errors": []}


def test_who_may_do_what_with_sub_ids(live):
    signer = as_user(live, "signer-2701000002")
    sub = create_sub(live, signer)
    admin = as_user(live, "admin-2701000002")
    other_signer = as_user(live, "signer2-2701000002")
    agent_admin = as_user(live, "admin-2701000004")

    def code(response):
        return response.json()["errors"][0]["extensions"]["code"]

    # the admin cannot create sub-IDs
    assert code(live.graphql(CREATE, {"name": "a b", "password": SUB_PASSWORD, "email": "a@kakogawa.example"}, headers=admin)) == "FORBIDDEN"
    # one signer cannot touch another signer's sub-IDs
    assert code(live.graphql(UPDATE, {"id": sub["id"], "name": "x y"}, headers=other_signer)) == "FORBIDDEN"
    assert code(live.graphql(DELETE, {"id": sub["id"]}, headers=other_signer)) == "FORBIDDEN"
    assert live.graphql(SUBS, headers=other_signer).json()["data"]["subAccounts"] == []
    # the agent's admin cannot see or manage sub-IDs at all
    assert code(live.graphql(SUBS, headers=agent_admin)) == "FORBIDDEN"
    assert code(live.graphql(RESET, {"id": sub["id"], "p": "agent-reset-123"}, headers=agent_admin)) == "FORBIDDEN"
    # the applicant admin sees only activated sub-IDs
    assert live.graphql(SUBS, headers=admin).json()["data"]["subAccounts"] == []
    assert live.graphql(SUBS, headers=signer).json()["data"]["subAccounts"] == [{"username": sub["username"], "status": "CREATED"}]
    # not logged in
    assert code(live.graphql(SUBS)) == "UNAUTHENTICATED"


async def test_a_sub_id_can_only_change_its_own_password(live):
    signer = as_user(live, "signer-2701000002")
    sub = create_sub(live, signer)
    notify(live, signer, sub["id"])
    token, _ = await mailed_token(live)
    live.graphql(ACTIVATE, {"t": token, "u": sub["username"], "p": SUB_PASSWORD})
    sub_headers = bearer(login(live, sub["username"], SUB_PASSWORD)["token"])
    me = live.graphql("{ me { generatedBy { id } } }", headers=signer).json()
    signer_id = live.graphql("{ me { id } }", headers=signer).json()["data"]["me"]["id"]
    assert me["data"]["me"]["generatedBy"] is None
    assert live.graphql(RESET, {"id": signer_id, "p": "taken-over-123"}, headers=sub_headers).json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert live.graphql(SUBS, headers=sub_headers).json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert live.graphql(CREATE, {"name": "a b", "password": SUB_PASSWORD, "email": "a@kakogawa.example"}, headers=sub_headers).json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    own = live.graphql("""mutation { changePassword(input: {currentPassword: "hanako-pass-2026", newPassword: "hanako-new-2027"}) { errors { code } } }""",
                       headers=sub_headers).json()
    assert own["data"]["changePassword"]["errors"] == []


async def test_resets_by_the_applicant_admin_and_by_the_generating_signer(live):
    signer = as_user(live, "signer-2701000002")
    admin = as_user(live, "admin-2701000002")
    sub = create_sub(live, signer)
    # the admin may not reset a sub-ID that is not activated yet; the generating signer may
    assert live.graphql(RESET, {"id": sub["id"], "p": "fresh-pass-4242"}, headers=admin).json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert live.graphql(RESET, {"id": sub["id"], "p": "fresh-pass-4242"}, headers=signer).json()["data"]["resetAccountPassword"]["errors"] == []
    signer2_id = live.graphql("{ me { id } }", headers=as_user(live, "signer2-2701000002")).json()["data"]["me"]["id"]
    weak = live.graphql(RESET, {"id": signer2_id, "p": "weak"}, headers=admin).json()["data"]["resetAccountPassword"]
    assert weak["errors"] == [{"code": "PASSWORD_TOO_WEAK", "field": ["input", "newPassword"]}]
    assert live.graphql(RESET, {"id": signer2_id, "p": "admin-set-7788"}, headers=admin).json()["data"]["resetAccountPassword"]["errors"] == []
    assert login(live, "signer2-2701000002", "admin-set-7788")["errors"] == []


async def test_malformed_input_gets_one_user_error_per_field_and_writes_nothing(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    async with db.read() as session:
        before = await session.scalar(select(func.count()).select_from(Account))
    result = live.graphql(CREATE, {"name": "山田花子", "password": "short", "email": "not-an-email", "phone": "０６－１２３４"},
                          headers=signer).json()["data"]["createSubAccount"]
    assert result["account"] is None
    assert sorted((e["code"], e["field"][1]) for e in result["errors"]) == [
        ("INVALID", "email"), ("INVALID", "name"), ("INVALID", "phone"), ("PASSWORD_TOO_WEAK", "password"),
    ]
    assert all(e["message"] for e in result["errors"])
    huge = live.graphql(CREATE, {"name": "山" * 5000 + " 花子", "password": SUB_PASSWORD, "email": "a" * 300 + "@kakogawa.example"},
                        headers=signer).json()["data"]["createSubAccount"]
    assert {e["field"][1] for e in huge["errors"]} == {"name", "email"}
    missing = live.graphql(CREATE, {"name": " ", "password": SUB_PASSWORD, "email": ""}, headers=signer).json()["data"]["createSubAccount"]
    assert sorted((e["code"], e["field"][1]) for e in missing["errors"]) == [("REQUIRED", "email"), ("REQUIRED", "name")]
    bad_id = live.graphql(DELETE, {"id": "Zm9v"}, headers=signer).json()["data"]["deleteSubAccount"]
    assert bad_id["errors"] == [{"code": "NOT_FOUND"}]
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Account)) == before


async def test_deleting_a_sub_id_keeps_its_history_attributable(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    sub = create_sub(live, signer)
    notify(live, signer, sub["id"])
    token, _ = await mailed_token(live)
    live.graphql(ACTIVATE, {"t": token, "u": sub["username"], "p": SUB_PASSWORD})
    sub_token = login(live, sub["username"], SUB_PASSWORD)["token"]
    assert live.graphql(DELETE, {"id": sub["id"]}, headers=signer).json()["data"]["deleteSubAccount"]["account"]["status"] == "DELETED"
    assert live.graphql("{ me { username } }", headers=bearer(sub_token)).json()["data"]["me"] is None
    assert login(live, sub["username"], SUB_PASSWORD)["errors"][0]["code"] == "INVALID_CREDENTIALS"
    async with db.read() as session:
        account = await session.scalar(select(Account).where(Account.username == sub["username"]))
        signer_id = await session.scalar(select(Account.id).where(Account.username == "signer-2701000002"))
        entries = (await session.execute(select(AuditEntry.action, AuditEntry.actor_id, AuditEntry.responsible_id)
                                         .where(AuditEntry.actor_id == account.id))).all()
    assert account.status == "DELETED" and account.deleted_at is not None
    assert ("login", account.id, signer_id) in entries and ("subaccount.activate", account.id, signer_id) in entries


async def test_mail_delivery_retries_with_backoff_until_smtp_answers(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    sub = create_sub(live, signer)
    notify(live, signer, sub["id"])
    from aiosmtpd.controller import Controller

    port = live.smtp.controller.port
    live.smtp.controller.stop()  # the mail server is down
    try:
        outcome = await live.run_job("mail-delivery")
        assert outcome.message == "0 sent, 1 failed"
        async with db.read() as session:
            mail = await session.scalar(select(OutboxMail))
        assert mail.status == "PENDING" and mail.attempts == 1 and mail.last_error
        assert mail.next_attempt_at - live.clock.now() == dt.timedelta(seconds=30)
        assert (await live.run_job("mail-delivery")).message == "nothing to send"  # not due yet
    finally:
        live.smtp.controller = Controller(live.smtp, hostname="127.0.0.1", port=port)  # back up
        live.smtp.controller.start()
    live.clock.advance(dt.timedelta(seconds=31))
    assert (await live.run_job("mail-delivery")).message == "1 sent, 0 failed"
    assert len(live.smtp.messages) == 1
