"""Issue 20: an API key never outlives a password change. Changing one's password, an admin's
or signer's reset, and a signer setting a sub-ID's password revoke the account's keys in the
same transaction, and the key's owner is told by real mail. Over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text

from persistence.models import Account, ApiKey, AuditEntry
from tests.applications.test_applications import ORIGIN
from tests.identity.test_api_keys import CREATE_APP, CREATE_KEY, ME, make_key, top_code
from tests.identity.test_identity_sessions import CHANGE, PASSWORD, bearer, login
from tests.identity.test_subaccounts import ACTIVATE, RESET, SUB_PASSWORD, as_user, create_sub, mailed_token, notify

SUBJECT = "APIキー失効のお知らせ"
SET_SUB_PASSWORD = """mutation($id: ID!, $p: String) { updateSubAccount(input: {accountId: $id, password: $p}) {
  account { username } errors { code field } } }"""


def refused(live, key: dict) -> bool:
    """The key reads nothing and files nothing (a top-level UNAUTHENTICATED)."""
    me = live.graphql(ME, headers=key).json()["data"]["me"]
    filed = live.graphql(CREATE_APP, {"input": ORIGIN}, headers=key).json()
    return me is None and top_code(filed) == "UNAUTHENTICATED"


def works(live, key: dict) -> bool:
    return live.graphql(ME, headers=key).json()["data"]["me"] is not None


async def revocation_mails(live, to: str) -> list[str]:
    assert (await live.run_job("mail-delivery")).status == "ok"
    return [m.get_content() for m in live.smtp.messages if m["To"] == to and SUBJECT in m["Subject"]]


async def test_changing_ones_password_revokes_ones_keys_and_tells_by_mail(live, migrated):
    _target, db = migrated
    thief = as_user(live, "signer-2701000002")  # a stolen password: the thief logs in and mints a key
    stolen = make_key(live, thief, "thief")
    key = bearer(stolen["secret"])
    colleague = bearer(make_key(live, as_user(live, "signer2-2701000002"), "ERP")["secret"])
    assert works(live, key)

    owner = as_user(live, "signer-2701000002")
    done = live.graphql(CHANGE, {"cur": PASSWORD, "new": "brand-new-pass-42"}, headers=owner).json()["data"]["changePassword"]
    assert done["errors"] == []
    assert refused(live, key)
    assert works(live, colleague)  # only the account's own keys
    assert live.graphql(ME, headers=bearer(done["token"])).json()["data"]["me"]["username"] == "signer-2701000002"
    async with db.read() as session:
        row = await session.scalar(select(ApiKey).where(ApiKey.prefix == stolen["apiKey"]["prefix"]))
        changed = await session.scalar(select(AuditEntry).where(AuditEntry.action == "account.change_own_password"))
    assert row is not None and row.revoked_at == live.clock.now() and row.revoked_by_id == row.account_id
    assert changed is not None and changed.detail == "1 API key(s) revoked"

    [body] = await revocation_mails(live, "zeiss@kakogawa.example")
    assert stolen["apiKey"]["prefix"] in body and "thief" in body and "signer-2701000002" in body
    assert stolen["secret"] not in body
    assert "was changed" in body  # and in English below the Japanese


async def test_an_admins_reset_revokes_the_signers_keys(live):
    key = bearer(make_key(live, as_user(live, "signer2-2701000002"), "ERP")["secret"])
    admin = as_user(live, "admin-2701000002")
    signer2_id = live.graphql("{ me { id } }", headers=as_user(live, "signer2-2701000002")).json()["data"]["me"]["id"]
    reset = live.graphql(RESET, {"id": signer2_id, "p": "admin-set-7788"}, headers=admin).json()["data"]["resetAccountPassword"]
    assert reset["errors"] == []
    assert refused(live, key)
    [body] = await revocation_mails(live, "tezuka@kakogawa.example")
    assert "ERP" in body and "パスワードが再設定" in body


async def test_a_signer_setting_or_resetting_a_sub_ids_password_revokes_its_keys(live):
    signer = as_user(live, "signer-2701000002")
    sub = create_sub(live, signer)
    notify(live, signer, sub["id"])
    token, _ = await mailed_token(live)
    live.graphql(ACTIVATE, {"t": token, "u": sub["username"], "p": SUB_PASSWORD})
    as_sub = bearer(login(live, sub["username"], SUB_PASSWORD)["token"])
    first = bearer(make_key(live, as_sub, "script")["secret"])

    updated = live.graphql(SET_SUB_PASSWORD, {"id": sub["id"], "p": "signer-set-5151"}, headers=signer).json()
    assert updated["data"]["updateSubAccount"]["errors"] == []
    assert refused(live, first)
    assert len(await revocation_mails(live, "hanako@kakogawa.example")) == 1

    as_sub = bearer(login(live, sub["username"], "signer-set-5151")["token"])
    second = bearer(make_key(live, as_sub, "script 2")["secret"])
    reset = live.graphql(RESET, {"id": sub["id"], "p": "signer-reset-6262"}, headers=signer).json()
    assert reset["data"]["resetAccountPassword"]["errors"] == []
    assert refused(live, second)
    assert len(await revocation_mails(live, "hanako@kakogawa.example")) == 2


async def test_a_password_change_without_keys_sends_no_revocation_mail(live):
    owner = as_user(live, "signer-2701000003")
    done = live.graphql(CHANGE, {"cur": PASSWORD, "new": "brand-new-pass-42"}, headers=owner).json()["data"]["changePassword"]
    assert done["errors"] == []
    assert await revocation_mails(live, "ichiro@nissho-test.example") == []


async def _blocked_behind(session, holder_pid: int) -> set[int]:
    """The backends waiting, directly or in a queue, on the lock ``holder_pid`` holds."""
    rows = (await session.execute(text(
        "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0"))).all()
    waiting: set[int] = set()
    grew = True
    while grew:
        grew = False
        for pid, blockers in rows:
            if pid not in waiting and ({holder_pid} | waiting) & set(blockers):
                waiting.add(pid)
                grew = True
    return waiting


async def _until_waiting(db, holder_pid: int, count: int) -> None:
    for _ in range(200):  # bounded: 20 s
        async with db.read() as session:
            if len(await _blocked_behind(session, holder_pid)) >= count:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {count} requests wait on the account row")


async def test_a_key_made_by_a_session_the_password_change_ended_is_refused(live, migrated):
    """The thief's createApiKey authenticated while the session was alive, then the owner's
    changePassword committed first: the key must not be made (it would outlive the change).
    PostgreSQL only: a held row lock lines the two requests up in that order (SQLite's write
    units queue in the process, where a test cannot hold them at a chosen point)."""
    target, db = migrated
    if target.kind != "postgresql":
        pytest.skip("the interleaving is held with a PostgreSQL row lock")
    thief = as_user(live, "signer-2701000002")
    owner = as_user(live, "signer-2701000002")
    async with db.write() as holder:  # holds the account row: both requests queue behind it
        holder_pid = await holder.scalar(text("SELECT pg_backend_pid()"))
        await holder.execute(select(Account.id).where(Account.username == "signer-2701000002").with_for_update())
        changing = asyncio.create_task(asyncio.to_thread(
            live.graphql, CHANGE, {"cur": PASSWORD, "new": "brand-new-pass-42"}, owner))
        await _until_waiting(db, holder_pid, 1)  # the change waits first ...
        minting = asyncio.create_task(asyncio.to_thread(
            live.graphql, CREATE_KEY, {"name": "thief", "expiresAt": None}, thief))
        await _until_waiting(db, holder_pid, 2)  # ... the key, authenticated by the live session, behind it
    changed = (await changing).json()["data"]["changePassword"]
    minted = (await minting).json()
    assert changed["errors"] == []
    assert top_code(minted) == "UNAUTHENTICATED", minted
    async with db.read() as session:
        assert (await session.scalar(select(ApiKey.id).where(ApiKey.name == "thief"))) is None
