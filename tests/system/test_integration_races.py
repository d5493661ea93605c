"""Issue 14, "Prove it" for API keys and bulk filing: two real ``tradecert serve`` processes on
one database (SQLite and PostgreSQL), requests racing across them.

* **API keys.** 20 parallel ``createApiKey`` of one account, split over both processes, with
  ``api_keys_per_account`` 10 → exactly 10 live keys, the others TOO_MANY_ITEMS. A key used
  continuously on both processes while it is revoked: no request sent after the revocation
  answered passes. A burst with one key on both processes: exactly
  ``api_key_requests_per_minute`` pass (the count is shared).
* **Bulk filing.** ``submitApplications`` on one process racing single ``submitApplication``
  calls of the same ids on the other, with fewer coupons than ids: each application is
  submitted once, coupons consumed == applications SUBMITTED, the balance never negative
  (sampled during the race, and every ledger entry's ``balance_after``), one
  application.submitted webhook event per submission, and ``tradecert jobs run ledger-audit``
  ok. Two ``submitApplications`` with one idempotency key at once on both processes answer
  the same outcomes and consume once.

The servers run on the system clock; ``api_key_requests_per_minute`` is 30 in this module's
copy of the rules so that a burst stays well inside its one-minute window.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from persistence import migrate
from persistence.db import Database
from persistence.models import Account, ApiKey, CouponAccount, CouponEntry, TradeRegistration, WebhookDelivery
from persistence.models import Application as ApplicationRow
from schema.identity import from_global_id
from tests.applications.test_applications import ORIGIN
from tests.conftest import PG_BASE, RULES_DIR, _free_port, create_pg_schema, drop_pg_schema, require_postgres
from tests.invariants import money_problems

TRADECERT = str(Path(sys.executable).parent / "tradecert")
PASSWORD = "demo-pass-2701"
REG2 = "2701000002"
KEYS_PER_ACCOUNT = 10  # rules/limits.yaml api_keys_per_account
REQUESTS_PER_MINUTE = 30  # this module's copy of limits.yaml

LOGIN = """mutation($u: String!) { login(input: {chamberCode: "2701", username: $u, password: "demo-pass-2701"}) { token } }"""
CREATE_KEY = """mutation($name: String!) { createApiKey(input: {name: $name}) { apiKey { id } secret errors { code } } }"""
REVOKE_KEY = """mutation($id: ID!) { revokeApiKey(input: {apiKeyId: $id}) { apiKey { id revokedAt } errors { code } } }"""
ME = "{ me { username } }"
ADJUST = """mutation($c: Int!) { adjustCoupons(input: {registrationNumber: "2701000002", coupons: $c, reason: "並行試験"}) {
  errors { code } } }"""
CREATE_MANY = """mutation($rows: [CreateApplicationInput!]!) { createApplications(input: {applications: $rows}) {
  applications { id } errors { code field } } }"""
SUBMIT_MANY = """mutation($ids: [ID!]!, $key: String) { submitApplications(input: {applicationIds: $ids, idempotencyKey: $key}) {
  results { applicationId application { id state receiptNumber } errors { code field } } errors { code field } } }"""
SUBMIT_ONE = """mutation($id: ID!) { submitApplication(input: {applicationId: $id}) { application { id state }
  errors { code } } }"""
CREATE_ENDPOINT = """mutation($url: String!) { createWebhookEndpoint(input: {url: $url, events: [APPLICATION_SUBMITTED]}) {
  endpoint { id } errors { code field } } }"""


# --------------------------------------------------------------------------- two server processes


class Server:
    """One ``tradecert serve`` process on a free port (jobs off), sharing the database."""

    def __init__(self, env: dict, workdir: Path, demo: bool) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / f"serve-{self.port}.log", "w", encoding="utf-8")  # a pipe nobody reads blocks
        self.process = subprocess.Popen([TRADECERT, "serve", *(["--demo"] if demo else []), "--host", "127.0.0.1",
                                         "--port", str(self.port)], env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.log_path = workdir / f"serve-{self.port}.log"
        deadline = time.monotonic() + 120
        while True:
            assert self.process.poll() is None, self.log_path.read_text(encoding="utf-8")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not become ready in 120 s"
            time.sleep(0.2)

    def post(self, query: str, variables: dict | None = None, headers: dict | None = None) -> dict:
        response = httpx.post(f"{self.base}/graphql", json={"query": query, "variables": variables or {}},
                              headers=headers or {}, timeout=120)
        assert response.status_code in (200, 429), response.text  # never a 5xx
        body: dict = response.json()
        assert "INTERNAL_SERVER_ERROR" not in json.dumps(body), body
        return body

    def data(self, query: str, variables: dict | None = None, headers: dict | None = None) -> dict:
        body = self.post(query, variables, headers)
        assert "errors" not in body, body
        return body["data"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@dataclass
class Pair:
    kind: str
    db: Database
    env: dict
    first: Server
    second: Server

    def bearer(self, username: str) -> dict:
        token = self.first.data(LOGIN, {"u": username})["login"]["token"]
        return {"Authorization": f"Bearer {token}"}

    @property
    def servers(self) -> tuple[Server, Server]:
        return self.first, self.second


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def pair(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(f"integration-{request.param}")
    schema = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'tradecert.db'}"
    else:
        require_postgres()
        url, schema = PG_BASE, await create_pg_schema()
    rules = workdir / "rules"
    shutil.copytree(RULES_DIR, rules, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    limits = rules / "limits.yaml"
    text, changed = re.subn(r"(limit: api_key_requests_per_minute\n\s+value: )\d+", rf"\g<1>{REQUESTS_PER_MINUTE}",
                            limits.read_text(encoding="utf-8"))
    assert changed == 1, "rules/limits.yaml: api_key_requests_per_minute not found"
    limits.write_text(text, encoding="utf-8")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TRADECERT_")}
    env = {**inherited, "TRADECERT_DATABASE_URL": url, "TRADECERT_DATABASE_SCHEMA": schema or "",
           "TRADECERT_RULES_DIR": str(rules), "TRADECERT_RULES_POLL_SECONDS": "0", "TRADECERT_RUN_JOBS": "0",
           "TRADECERT_SIGNING_KEY_FILE": str(workdir / "signing-key.pem"),
           "TRADECERT_NACCS_KEY_FILE": str(workdir / "naccs-fernet.key"), "TRADECERT_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
           "TRADECERT_PUBLIC_URL": "", "TRADECERT_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    db = Database(url, schema=schema)
    servers: list[Server] = []
    try:
        servers.append(await asyncio.to_thread(Server, env, workdir, True))  # migrates and seeds the demo data
        servers.append(await asyncio.to_thread(Server, env, workdir, False))
        await migrate.upgrade(db.engine)  # at head already: only checks
        yield Pair(request.param, db, env, *servers)
    finally:
        for server in servers:
            await asyncio.to_thread(server.stop)
        await db.dispose()
        if schema:
            await drop_pg_schema(schema)


def code_of(body: dict) -> str | None:
    return (body.get("errors") or [{}])[0].get("extensions", {}).get("code")


# --------------------------------------------------------------------------- API keys


async def test_twenty_parallel_key_creations_leave_exactly_the_limit(pair):
    username = "signer-2701000003"
    session = pair.bearer(username)

    def make(i: int) -> dict:
        server = pair.servers[i % 2]
        return server.data(CREATE_KEY, {"name": f"ERP {i}"}, session)["createApiKey"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(make, range(20)))
    made = [a for a in answers if a["errors"] == []]
    refused = [a for a in answers if a["errors"]]
    assert len(made) == KEYS_PER_ACCOUNT, answers
    assert {tuple(e["code"] for e in a["errors"]) for a in refused} == {("TOO_MANY_ITEMS",)}
    assert all(a["apiKey"] is None and a["secret"] is None for a in refused)
    async with pair.db.read() as s:
        live_keys = (await s.scalars(select(ApiKey.id).join(Account, Account.id == ApiKey.account_id)
                                     .where(Account.username == username, ApiKey.revoked_at.is_(None)))).all()
    assert sorted(map(str, live_keys)) == sorted(str(from_global_id(a["apiKey"]["id"])[1]) for a in made)
    for i, key in enumerate(made):  # each made key works, on either process
        assert pair.servers[i % 2].data(ME, headers={"Authorization": f"Bearer {key['secret']}"})["me"] == {
            "username": username}


async def test_no_request_sent_after_the_revocation_answered_passes(pair):
    username = "signer2-2701000002"
    session = pair.bearer(username)
    made = pair.first.data(CREATE_KEY, {"name": "revoked while used"}, session)["createApiKey"]
    key = {"Authorization": f"Bearer {made['secret']}"}
    seen: list[tuple[float, float, bool, int]] = []  # (sent, answered, passed, server)
    revoked_at: list[float] = []
    lock = threading.Lock()

    def use(worker: int) -> None:
        n = 0
        while sum(1 for s in list(seen) if revoked_at and s[0] > revoked_at[0] and s[3] == worker % 2) < 3:
            server = pair.servers[(worker + n) % 2]
            sent = time.monotonic()
            body = server.post(ME, headers=key)
            passed = (body.get("data") or {}).get("me") is not None
            assert passed or body["data"]["me"] is None, body  # refused as anonymous, not by the throttle
            with lock:
                seen.append((sent, time.monotonic(), passed, (worker + n) % 2))
                assert len(seen) < REQUESTS_PER_MINUTE - 2, "the throttle would answer next"
            n += 1
            time.sleep(0.02)

    def revoke() -> None:
        while sum(1 for s in list(seen) if s[2]) < 6:  # the key has been passing on both
            time.sleep(0.005)
        answer = pair.second.data(REVOKE_KEY, {"id": made["apiKey"]["id"]}, session)["revokeApiKey"]
        assert answer["errors"] == [] and answer["apiKey"]["revokedAt"], answer
        revoked_at.append(time.monotonic())

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(use, w) for w in range(3)] + [pool.submit(revoke)]
        for f in futures:
            f.result()
    [done] = revoked_at
    after = [s for s in seen if s[0] > done]
    before = [s for s in seen if s[1] < done]
    print(f"{len(before)} answered before the revocation, {len(after)} sent after it, "
          f"{len(seen) - len(before) - len(after)} in flight")
    assert any(s[2] for s in before)
    assert len(after) >= 3 and {s[3] for s in after} == {0, 1}, seen  # both processes asked after it
    assert [s for s in after if s[2]] == []


async def test_a_keys_requests_per_minute_are_counted_across_both_processes(pair):
    session = pair.bearer("signer-2701000002")
    made = pair.second.data(CREATE_KEY, {"name": "burst"}, session)["createApiKey"]
    key = {"Authorization": f"Bearer {made['secret']}"}

    def ask(i: int) -> str | None:
        body = pair.servers[i % 2].post(ME, headers=key)
        return "ok" if (body.get("data") or {}).get("me") else code_of(body)

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(ask, range(REQUESTS_PER_MINUTE + 20)))
    assert answers.count("ok") == REQUESTS_PER_MINUTE, answers
    assert answers.count("TOO_MANY_REQUESTS") == 20, answers


# --------------------------------------------------------------------------- bulk filing


async def registration_id(db: Database) -> int:
    async with db.read() as s:
        found = await s.scalar(select(TradeRegistration.id).where(TradeRegistration.number == REG2))
    assert found is not None
    return found


async def ledger_of(db: Database, reg: int, app_pks: list[int]) -> dict:
    """What the database says of these applications and the registration's coupons."""
    async with db.read() as s:
        states = dict((await s.execute(select(ApplicationRow.id, ApplicationRow.state)
                                       .where(ApplicationRow.id.in_(app_pks)))).all())
        uses = dict((await s.execute(select(ApplicationRow.id, ApplicationRow.coupon_uses)
                                     .where(ApplicationRow.id.in_(app_pks)))).all())
        keys = (await s.scalars(select(CouponEntry.external_key).where(
            CouponEntry.kind == "USE", CouponEntry.external_key.in_([f"use:app:{pk}:1" for pk in app_pks])))).all()
        lowest = await s.scalar(select(func.min(CouponEntry.balance_after)).where(CouponEntry.registration_id == reg))
        balance = await s.scalar(select(CouponAccount.balance).where(CouponAccount.registration_id == reg))
        payloads = (await s.execute(select(WebhookDelivery.event_id, WebhookDelivery.payload).where(
            WebhookDelivery.event == "application.submitted", WebhookDelivery.redelivery_of_id.is_(None)))).all()
    # one event per change, whatever the number of endpoints: the applications of the distinct event ids
    events = {event_id: from_global_id(json.loads(payload)["data"]["id"])[1] for event_id, payload in payloads}
    return {"states": states, "uses": uses, "use_keys": list(keys), "lowest": lowest, "balance": balance,
            "events": [pk for pk in events.values() if pk in set(app_pks)]}


class BalanceWatch:
    """Samples the registration's balance while a race runs; ``lowest`` is the least seen."""

    def __init__(self, db: Database, reg: int) -> None:
        self.db, self.reg = db, reg
        self.samples: list[int | None] = []
        self.running = True

    async def run(self) -> None:
        while self.running:
            async with self.db.read() as s:
                self.samples.append(await s.scalar(select(CouponAccount.balance)
                                                   .where(CouponAccount.registration_id == self.reg)))
            await asyncio.sleep(0.005)


def ledger_audit(pair: Pair) -> str:
    done = subprocess.run([TRADECERT, "jobs", "run", "ledger-audit"], env=pair.env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def fresh_drafts(pair: Pair, signer: dict, n: int, coupons: int) -> tuple[list[str], list[int]]:
    """``n`` coupon-paid drafts and the registration's balance brought to exactly ``coupons``."""
    made = pair.first.data(CREATE_MANY, {"rows": [{**ORIGIN, "invoiceNumber": f"RACE-{i:02d}"} for i in range(n)]},
                           signer)["createApplications"]
    assert made["errors"] == [], made
    ids = [a["id"] for a in made["applications"]]
    staff = pair.bearer("staff-2701")
    reg = await registration_id(pair.db)
    async with pair.db.read() as s:
        now = await s.scalar(select(CouponAccount.balance).where(CouponAccount.registration_id == reg)) or 0
    if coupons != now:
        assert pair.first.data(ADJUST, {"c": coupons - now}, staff)["adjustCoupons"]["errors"] == []
    return ids, [from_global_id(i)[1] for i in ids]


def bulk_against_singles(pair: Pair, signer: dict, ids: list[str]) -> tuple[dict, list[dict]]:
    """submitApplications of ``ids`` on the first process while the second submits them one by
    one from the other end (they meet in the middle)."""
    def single(app_id: str) -> dict:
        return pair.second.data(SUBMIT_ONE, {"id": app_id}, signer)["submitApplication"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        many = pool.submit(pair.first.data, SUBMIT_MANY, {"ids": ids}, signer)
        singles = list(pool.map(single, reversed(ids)))
        return many.result()["submitApplications"], singles


def listen(pair: Pair, signer: dict) -> None:
    """An endpoint of the registration for application.submitted (never sent to: no job runs
    here), so each submission queues its event."""
    endpoint = pair.first.data(CREATE_ENDPOINT, {"url": "http://127.0.0.1:9/hooks"}, signer)["createWebhookEndpoint"]
    assert endpoint["errors"] == [], endpoint


async def test_bulk_and_single_submissions_of_the_same_ids_on_two_processes_submit_each_once(pair):
    signer = pair.bearer("signer-2701000002")
    listen(pair, signer)
    reg = await registration_id(pair.db)
    for round_ in range(2):
        n, coupons = 14, 9
        ids, pks = await fresh_drafts(pair, signer, n, coupons)
        watch = BalanceWatch(pair.db, reg)
        sampler = asyncio.create_task(watch.run())

        try:
            bulk_answer, singles = await asyncio.to_thread(bulk_against_singles, pair, signer, ids)  # sampled meanwhile
        finally:
            watch.running = False
            await sampler
        by_bulk = {r["applicationId"] for r in bulk_answer["results"] if not r["errors"]}
        by_single = {a["application"]["id"] for a in singles if not a["errors"]}
        codes = {e["code"] for r in bulk_answer["results"] for e in r["errors"]} | {
            e["code"] for a in singles for e in a["errors"]}
        context = f"round {round_}: bulk {len(by_bulk)}, single {len(by_single)}, {len(watch.samples)} samples"
        print(context)
        assert codes <= {"INSUFFICIENT_COUPONS", "INVALID_STATE"}, (context, bulk_answer, singles)
        assert by_bulk.isdisjoint(by_single), context  # no application submitted by both
        assert len(by_bulk | by_single) == coupons, context

        found = await ledger_of(pair.db, reg, pks)
        submitted = sorted(pk for pk, state in found["states"].items() if state == "SUBMITTED")
        assert submitted == sorted(from_global_id(i)[1] for i in by_bulk | by_single), context
        assert len(found["use_keys"]) == len(set(found["use_keys"])) == coupons, context  # consumed == SUBMITTED
        assert all(found["uses"][pk] == (1 if pk in submitted else 0) for pk in pks), context
        assert found["balance"] == 0 and found["lowest"] >= 0 and min(watch.samples) >= 0, context
        assert sorted(found["events"]) == submitted, context  # one application.submitted per submission
    assert await money_problems(pair.db) == []
    assert "ledger-audit: ok" in ledger_audit(pair)


async def test_one_idempotency_key_on_both_processes_at_once_answers_the_same_and_consumes_once(pair):
    signer = pair.bearer("signer-2701000002")
    listen(pair, signer)
    reg = await registration_id(pair.db)
    ids, pks = await fresh_drafts(pair, signer, 10, 6)
    key = f"erp-race-{pair.kind}"
    with ThreadPoolExecutor(max_workers=2) as pool:
        calls = [pool.submit(server.data, SUBMIT_MANY, {"ids": ids, "key": key}, signer) for server in pair.servers]
        first, second = (c.result()["submitApplications"] for c in calls)
    outcome = [(r["applicationId"], [e["code"] for e in r["errors"]]) for r in first["results"]]
    assert [(r["applicationId"], [e["code"] for e in r["errors"]]) for r in second["results"]] == outcome
    assert sum(1 for _id, errors in outcome if not errors) == 6
    assert {tuple(errors) for _id, errors in outcome if errors} == {("INSUFFICIENT_COUPONS",)}
    found = await ledger_of(pair.db, reg, pks)
    submitted = sorted(pk for pk, state in found["states"].items() if state == "SUBMITTED")
    assert submitted == sorted(from_global_id(i)[1] for i, errors in outcome if not errors)
    assert len(found["use_keys"]) == 6 and found["balance"] == 0 and found["lowest"] >= 0
    assert sorted(found["events"]) == submitted
    # a third run of the key, now: the recorded answer
    again = pair.second.data(SUBMIT_MANY, {"ids": ids, "key": key}, signer)["submitApplications"]
    assert [(r["applicationId"], [e["code"] for e in r["errors"]]) for r in again["results"]] == outcome
    assert await money_problems(pair.db) == []
