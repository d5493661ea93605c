"""Login, sessions, throttling and own-password change over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import select

from persistence.models import Account, LoginThrottle, Session

LOGIN = """mutation($c: String, $u: String!, $p: String!) {
  login(input: {chamberCode: $c, username: $u, password: $p}) {
    token account { username kind registration { number kind membership chamber { code name } } }
    errors { code field message } } }"""
ME = "{ me { username kind name email status registration { number name } generatedBy { username } } }"
CHANGE = """mutation($cur: String!, $new: String!) {
  changePassword(input: {currentPassword: $cur, newPassword: $new}) { token errors { code field message } } }"""
PASSWORD = "demo-pass-2701"


def login(live, username, password=PASSWORD, chamber="2701", headers=None):
    body = live.graphql(LOGIN, {"c": chamber, "u": username, "p": password}, headers=headers).json()
    return body["data"]["login"]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_a_signer_logs_in_with_chamber_code_id_and_password(live):
    result = login(live, "signer-2701000002")
    assert result["errors"] == [] and len(result["token"]) >= 40
    account = result["account"]
    assert account["kind"] == "SIGNER"
    assert account["registration"] == {
        "number": "2701000002", "kind": "APPLICANT", "membership": "MEMBER",
        "chamber": {"code": "2701", "name": "大阪商工会議所"},
    }
    me = live.graphql(ME, headers=bearer(result["token"])).json()["data"]["me"]
    assert me["username"] == "signer-2701000002" and me["name"] == "カール・フリードリヒ・ツァイス"


def test_naccs_accounts_log_in_without_a_chamber_code(live):
    assert login(live, "naccs-demo", chamber=None)["account"]["kind"] == "NACCS_OFFICE"
    assert login(live, "naccs-demo", chamber="2701")["errors"][0]["code"] == "INVALID_CREDENTIALS"


def test_me_is_null_without_a_session_and_mutations_need_one(live):
    assert live.graphql(ME).json()["data"]["me"] is None
    body = live.graphql(CHANGE, {"cur": PASSWORD, "new": "another-pass-99"}).json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_wrong_passwords_and_unknown_ids_get_the_same_answer(live):
    wrong = login(live, "signer-2701000002", "wrong-password-1")
    unknown = login(live, "nobody-2701", "wrong-password-1")
    assert wrong["token"] is None and unknown["token"] is None
    assert wrong["errors"] == unknown["errors"]
    assert wrong["errors"][0]["code"] == "INVALID_CREDENTIALS"
    assert wrong["errors"][0]["field"] == ["input", "password"]


def test_english_messages_when_the_client_prefers_english(live):
    en = login(live, "x", "y", headers={"Accept-Language": "en-US,en;q=0.9,ja;q=0.5"})["errors"][0]["message"]
    ja = login(live, "x", "y", headers={"Accept-Language": "ja,en;q=0.5"})["errors"][0]["message"]
    assert en.startswith("The chamber code, ID or password") and "パスワード" in ja


async def test_repeated_failures_lock_the_id_for_a_growing_period_whether_it_exists_or_not(live, migrated):
    _target, db = migrated
    for username in ("signer2-2701000002", "ghost-2701"):
        codes = [login(live, username, "bad-password-0")["errors"][0]["code"] for _ in range(6)]
        assert codes == ["INVALID_CREDENTIALS"] * 5 + ["TOO_MANY_ATTEMPTS"]
    # even the right password is refused while locked; the message says how long
    refused = login(live, "signer2-2701000002")
    assert refused["errors"][0]["code"] == "TOO_MANY_ATTEMPTS" and "1分" in refused["errors"][0]["message"]
    live.clock.advance(dt.timedelta(seconds=61))
    assert login(live, "signer2-2701000002", "bad-password-0")["errors"][0]["code"] == "INVALID_CREDENTIALS"
    async with db.read() as session:
        throttle = await session.get(LoginThrottle, "2701|signer2-2701000002")
    assert throttle.failures == 6
    assert throttle.locked_until - live.clock.now() == dt.timedelta(seconds=120)  # doubled
    live.clock.advance(dt.timedelta(seconds=121))
    assert login(live, "signer2-2701000002")["errors"] == []  # success clears the count
    async with db.read() as session:
        assert await session.get(LoginThrottle, "2701|signer2-2701000002") is None


async def test_sessions_end_when_idle_too_long_and_after_their_absolute_lifetime(live):
    token = login(live, "signer-2701000002")["token"]
    live.clock.advance(dt.timedelta(minutes=29))
    assert live.graphql(ME, headers=bearer(token)).json()["data"]["me"] is not None
    live.clock.advance(dt.timedelta(minutes=29))  # used 29 minutes ago: still alive
    assert live.graphql(ME, headers=bearer(token)).json()["data"]["me"] is not None
    live.clock.advance(dt.timedelta(minutes=31))
    assert live.graphql(ME, headers=bearer(token)).json()["data"]["me"] is None
    token = login(live, "signer-2701000002")["token"]
    for _ in range(25):  # busy all day: the absolute limit still ends it
        live.clock.advance(dt.timedelta(minutes=29))
        last = live.graphql(ME, headers=bearer(token)).json()["data"]["me"]
    assert last is None


async def test_logout_ends_the_session(live):
    token = login(live, "signer-2701000002")["token"]
    other = login(live, "signer-2701000002")["token"]
    out = live.graphql("mutation { logout(input: {}) { errors { code } } }", headers=bearer(token)).json()
    assert out["data"]["logout"]["errors"] == []
    assert live.graphql(ME, headers=bearer(token)).json()["data"]["me"] is None
    assert live.graphql(ME, headers=bearer(other)).json()["data"]["me"] is not None
    live.graphql("mutation { logout(input: {allSessions: true}) { errors { code } } }", headers=bearer(other))
    assert live.graphql(ME, headers=bearer(other)).json()["data"]["me"] is None


async def test_changing_the_password_ends_every_session_and_checks_the_policy(live):
    first = login(live, "signer-2701000003")["token"]
    second = login(live, "signer-2701000003")["token"]
    weak = live.graphql(CHANGE, {"cur": PASSWORD, "new": "short1"}, headers=bearer(first)).json()["data"]["changePassword"]
    assert weak["errors"][0]["code"] == "PASSWORD_TOO_WEAK" and weak["errors"][0]["field"] == ["input", "newPassword"]
    for bad in ("ｆｕｌｌｗｉｄｔｈ１２３４５", "onlyletters-here", "signer-2701000003x1", "x" * 129 + "1"):
        result = live.graphql(CHANGE, {"cur": PASSWORD, "new": bad}, headers=bearer(first)).json()["data"]["changePassword"]
        assert result["errors"][0]["code"] == "PASSWORD_TOO_WEAK", bad
    wrong = live.graphql(CHANGE, {"cur": "not-it-0000", "new": "brand-new-pass-42"}, headers=bearer(first)).json()["data"]["changePassword"]
    assert wrong["errors"][0]["code"] == "INVALID_CREDENTIALS"
    done = live.graphql(CHANGE, {"cur": PASSWORD, "new": "brand-new-pass-42"}, headers=bearer(first)).json()["data"]["changePassword"]
    assert done["errors"] == [] and done["token"]
    for old in (first, second):
        assert live.graphql(ME, headers=bearer(old)).json()["data"]["me"] is None
    assert live.graphql(ME, headers=bearer(done["token"])).json()["data"]["me"]["username"] == "signer-2701000003"
    assert login(live, "signer-2701000003")["errors"][0]["code"] == "INVALID_CREDENTIALS"
    assert login(live, "signer-2701000003", "brand-new-pass-42")["errors"] == []


async def test_the_database_holds_no_password_or_token_in_clear(live, migrated):
    _target, db = migrated
    token = login(live, "signer-2701000002")["token"]
    async with db.read() as session:
        hashes = (await session.scalars(select(Account.password_hash))).all()
        sessions = (await session.scalars(select(Session.token_hash))).all()
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert not any(PASSWORD in h for h in hashes)
    assert token not in sessions and hashlib.sha256(token.encode()).hexdigest() in sessions


def test_browsers_get_an_httponly_strict_cookie(live):
    with live.client() as client:
        response = client.post("/graphql", json={"query": LOGIN, "variables": {"c": "2701", "u": "signer-2701000002", "p": PASSWORD}})
        cookie = response.headers["set-cookie"]
        assert "tradecert_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        me = client.post("/graphql", json={"query": ME}).json()["data"]["me"]
    assert me["username"] == "signer-2701000002"


def test_node_returns_what_the_viewer_may_see(live):
    token = login(live, "signer-2701000002")["token"]
    ids = live.graphql("{ me { id registration { id } } }", headers=bearer(token)).json()["data"]["me"]
    query = "query($id: ID!) { node(id: $id) { id ... on Account { username } ... on TradeRegistration { number } } }"
    assert live.graphql(query, {"id": ids["id"]}, headers=bearer(token)).json()["data"]["node"]["username"] == "signer-2701000002"
    assert live.graphql(query, {"id": ids["registration"]["id"]}, headers=bearer(token)).json()["data"]["node"]["number"] == "2701000002"
    assert live.graphql(query, {"id": ids["id"]}).json()["data"]["node"] is None  # not logged in
    assert live.graphql(query, {"id": "not-an-id"}, headers=bearer(token)).json()["data"]["node"] is None


async def test_a_hash_with_old_parameters_is_upgraded_at_the_next_login(live, migrated):
    from argon2 import PasswordHasher
    from sqlalchemy import update

    _target, db = migrated
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    async with db.write() as session:
        await session.execute(update(Account).where(Account.username == "signer-2701000003").values(password_hash=weak))
    assert login(live, "signer-2701000003")["errors"] == []
    async with db.read() as session:
        upgraded = await session.scalar(select(Account.password_hash).where(Account.username == "signer-2701000003"))
    assert upgraded != weak and upgraded.startswith("$argon2id$") and "m=8192" not in upgraded
    assert login(live, "signer-2701000003")["errors"] == []


def _statements(live, query, headers):
    """The statements one request runs (BEGIN/ROLLBACK/COMMIT left out), as 'VERB tables'."""
    from sqlalchemy import event

    engine = live.services.db.engine.sync_engine
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        if not statement.startswith(("BEGIN", "ROLLBACK", "COMMIT", "PRAGMA")):
            words = statement.replace("(", " ").split()
            tables = sorted({words[i + 1] for i, word in enumerate(words[:-1]) if word in ("FROM", "JOIN", "UPDATE")})
            seen.append(f"{words[0]} {'+'.join(tables)}")

    event.listen(engine, "before_cursor_execute", count)
    try:
        body = live.graphql(query, headers=headers).json()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert "errors" not in body, body
    return seen, body["data"]


def test_me_with_its_registration_is_one_statement_and_writes_nothing_within_a_minute(live):
    token = login(live, "signer-2701000002")["token"]
    live.clock.advance(dt.timedelta(seconds=59))
    query = "{ me { username registration { number membership chamber { name } } } }"
    statements, data = _statements(live, query, bearer(token))
    assert data["me"]["registration"] == {"number": "2701000002", "membership": "MEMBER",
                                          "chamber": {"name": "大阪商工会議所"}}
    assert statements == ["SELECT accounts+chambers+registration_memberships+sessions+trade_registrations"]


async def test_last_seen_is_written_once_a_minute_by_a_conditional_update(live, migrated):
    from sqlalchemy import update

    from resolvers.identity.actor import TOUCH

    _target, db = migrated
    token = login(live, "signer-2701000002")["token"]
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    live.clock.advance(dt.timedelta(seconds=61))
    statements, _ = _statements(live, "{ me { username } }", bearer(token))
    assert statements[1:] == ["UPDATE sessions"]  # after the viewer's read: one write, the session's
    async with db.read() as session:
        seen = await session.scalar(select(Session.last_seen_at).where(Session.token_hash == token_hash))
        session_id = await session.scalar(select(Session.id).where(Session.token_hash == token_hash))
    assert seen == live.clock.now()
    # a request that read the old value a moment ago writes nothing: another one already did
    now = live.clock.now() + dt.timedelta(seconds=5)
    async with db.write() as session:
        moved = await session.execute(TOUCH, {"session_id": session_id, "now": now,
                                              "seen_before": now - dt.timedelta(minutes=1)})
    assert moved.rowcount == 0
    # nor does it bring an ended session back
    later = now + dt.timedelta(minutes=5)
    async with db.write() as session:
        await session.execute(update(Session).where(Session.id == session_id).values(ended_at=now, end_reason="logout"))
        moved = await session.execute(TOUCH, {"session_id": session_id, "now": later,
                                              "seen_before": later - dt.timedelta(minutes=1)})
    assert moved.rowcount == 0
    assert live.graphql(ME, headers=bearer(token)).json()["data"]["me"] is None
