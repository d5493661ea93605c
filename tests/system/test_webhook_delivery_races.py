"""Issue 14, "Prove it" for webhooks: the ``webhook-delivery`` job run by several processes at
once, a delivery process killed with SIGKILL while it sends, and the outbox written in the
change's own transaction — on SQLite and PostgreSQL, against a real HTTP receiver on loopback
(allowed through TRADECERT_WEBHOOK_ALLOW_HOSTS).

* **Overlapping runs.** Three processes run ``deliver_due`` (what the job runs) at the same
  moment over the same due deliveries, bypassing the job's own lease so that only the
  per-row claim stands between them, in small batches so their claims interleave many
  times: each delivery reaches the receiver exactly once (counted by endpoint path and the
  body's ``id``) and ends DELIVERED after one attempt. The same through three
  ``tradecert jobs run webhook-delivery`` processes (the job lease and the row claims
  together).
* **A crash.** ``tradecert jobs run webhook-delivery`` is killed while the receiver holds
  its requests: what was recorded DELIVERED is not sent again; the rest stays leased (the
  job is skipped, ``deliver_due`` finds nothing) until the two-minute lease has passed —
  the re-run goes under libfaketime — and is then sent again and DELIVERED: nothing lost.
* **The outbox.** A refused submission writes no delivery; a transaction that emitted and
  then rolled back leaves none; of parallel submissions of one application one goes
  through, and one event is queued.

Everything happens at the live server's fixed clock (2026-04-01 10:00 in Tokyo): the
processes get it from libfaketime (``tradecert jobs run``) or as an argument (the driver).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from persistence.models import WebhookDelivery, WebhookEndpoint
from resolvers.core.clock import FixedClock
from resolvers.webhooks import delivery
from resolvers.webhooks.names import WebhookEvent
from resolvers.webhooks.use_cases import emit_application
from schema.identity import from_global_id
from tests.applications.test_applications import act, create
from tests.applications.test_bulk import create_many, rows, submit_many
from tests.identity.test_subaccounts import as_user
from tests.tradecert.test_serve_process import _require_faketime
from tradecert import jobs
from tradecert.composition import JOBS, build_services

TRADECERT = str(Path(sys.executable).parent / "tradecert")
SIGNER = "signer-2701000002"
EVENTS = ["APPLICATION_SUBMITTED", "APPLICATION_ON_HOLD", "APPLICATION_APPROVED", "APPLICATION_ISSUED"]
CREATE_ENDPOINT = """mutation($url: String!, $events: [WebhookEvent!]!) {
  createWebhookEndpoint(input: {url: $url, events: $events}) { endpoint { id url } secret errors { code field } } }"""

# deliver_due in a process of its own, at a fixed instant, in batches of BATCH, until it finds
# nothing; it says "ready" once built and starts when the go file appears (all at once).
DRIVER = r"""
import asyncio, datetime as dt, os, sys, time
from resolvers.core.clock import FixedClock
from resolvers.core.settings import Settings
from resolvers.webhooks import delivery
from tradecert.composition import build_services

at, go, batch = dt.datetime.fromisoformat(sys.argv[1]), sys.argv[2], int(sys.argv[3])
delivery.BATCH = batch

async def main():
    services = build_services(Settings.from_env(), clock=FixedClock(at))
    try:
        print("ready", flush=True)
        while not os.path.exists(go):
            time.sleep(0.005)
        while True:
            message = await delivery.deliver_due(services)
            print(message, flush=True)
            if message == "nothing to deliver":
                break
    finally:
        await services.db.dispose()

asyncio.run(main())
"""


# --------------------------------------------------------------------------- the receiver


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # 3 senders × 8 connections: the default backlog (5) resets some (ReadError)


class Receiver:
    """A real HTTP server on 127.0.0.1 that records (path, body id) of every POST and answers
    200 — after ``delay``; requests after the first ``hold_after`` wait until ``release()``
    (a receiver that hangs while the sender is killed)."""

    def __init__(self, delay: float = 0.0, hold_after: int | None = None) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[str, str]] = []
        self.delay, self.hold_after = delay, hold_after
        self.gate = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.received.append((urlsplit(self.path).path, json.loads(body)["id"]))
                    arrived = len(receiver.received)
                if receiver.hold_after is not None and arrived > receiver.hold_after:
                    receiver.gate.wait(60)
                time.sleep(receiver.delay)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender died meanwhile
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def counts(self) -> collections.Counter[tuple[str, str]]:
        with self.lock:
            return collections.Counter(self.received)

    def release(self) -> None:
        self.gate.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    found = Receiver()
    try:
        yield found
    finally:
        found.close()


# --------------------------------------------------------------------------- helpers


def allow_loopback(live) -> None:
    live.services.settings = live.services.settings.with_(webhook_allow_hosts=frozenset({"127.0.0.1"}))


def register(live, headers, url: str) -> dict:
    made = live.graphql(CREATE_ENDPOINT, {"url": url, "events": EVENTS}, headers=headers).json()
    assert made["data"]["createWebhookEndpoint"]["errors"] == [], made
    return made["data"]["createWebhookEndpoint"]["endpoint"]


def submitted_card_applications(live, headers, n: int) -> list[str]:
    """``n`` card-paid applications submitted (no coupons needed): ``n`` application.submitted events."""
    ids = [a["id"] for a in create_many(live, headers, rows(n, feePayment="CARD"))["applications"]]
    answer = submit_many(live, headers, ids)
    assert all(r["errors"] == [] for r in answer["results"]), answer
    return ids


def process_env(target, live) -> dict[str, str]:
    """What a job process on this database needs: the same database, rules, key files and
    allow list as the live server."""
    settings = live.services.settings
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TRADECERT_")}
    return {**inherited, "TRADECERT_DATABASE_URL": target.url, "TRADECERT_DATABASE_SCHEMA": target.schema or "",
            "TRADECERT_RULES_DIR": str(settings.rules_dir), "TRADECERT_NACCS_KEY_FILE": str(settings.naccs_key_file),
            "TRADECERT_SIGNING_KEY_FILE": str(settings.signing_key_file), "TRADECERT_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
            "TRADECERT_RUN_JOBS": "0", "TRADECERT_RULES_POLL_SECONDS": "0", "TRADECERT_LOG_LEVEL": "WARNING",
            "TZ": "UTC", "COLUMNS": "200"}


def faked(at: dt.datetime) -> list[str]:
    """libfaketime starting at ``at`` and ticking on (TZ=UTC in the process's environment)."""
    return [_require_faketime(), "-f", "@" + at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")]


def job_process(env: dict, at: dt.datetime) -> subprocess.Popen:
    return subprocess.Popen([*faked(at), TRADECERT, "jobs", "run", "webhook-delivery"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


async def deliveries(db) -> list:
    async with db.read() as session:
        return list((await session.execute(
            select(WebhookDelivery.id, WebhookEndpoint.url, WebhookDelivery.event_id, WebhookDelivery.status,
                   WebhookDelivery.attempts, WebhookDelivery.lease_holder, WebhookDelivery.leased_until)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .order_by(WebhookDelivery.id))).all())


def expected_posts(rows_: list) -> set[tuple[str, str]]:
    return {(urlsplit(r.url).path, r.event_id) for r in rows_}


# --------------------------------------------------------------------------- 1. overlapping runs


async def test_three_processes_delivering_at_once_post_each_delivery_exactly_once(live, migrated, receiver, tmp_path):
    target, db = migrated
    receiver.delay = 0.005
    allow_loopback(live)
    signer = as_user(live, SIGNER)
    for path in ("/a", "/b"):
        register(live, signer, receiver.url(path))
    submitted_card_applications(live, signer, 45)
    queued = await deliveries(db)
    assert len(queued) == 90 and {r.status for r in queued} == {"PENDING"}

    go = tmp_path / "go"
    env = process_env(target, live)
    at = (live.clock.now() + dt.timedelta(seconds=30)).isoformat()
    drivers = [subprocess.Popen([sys.executable, "-c", DRIVER, at, str(go), "7"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    try:
        for process in drivers:
            line = await asyncio.to_thread(process.stdout.readline)
            assert line.strip() == "ready", line + process.stdout.read()
        go.touch()  # all three claim at once
        outputs = [(await asyncio.to_thread(process.communicate, timeout=120))[0] for process in drivers]
    finally:
        for process in drivers:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert [p.returncode for p in drivers] == [0, 0, 0], outputs
    sent_by = [sum(int(line.split()[0]) for line in out.splitlines() if line.endswith(" delivered")) for out in outputs]
    print(f"deliveries sent by each process: {sent_by}")
    assert sum(sent_by) == 90, outputs

    counts = receiver.counts()
    done = await deliveries(db)
    assert set(counts) == expected_posts(done) and len(counts) == 90
    assert [key for key, n in counts.items() if n != 1] == []  # each (endpoint, event) POSTed exactly once
    assert {(r.status, r.attempts, r.lease_holder, r.leased_until) for r in done} == {("DELIVERED", 1, None, None)}


async def test_three_job_processes_at_once_deliver_each_once(live, migrated, receiver):
    """``tradecert jobs run webhook-delivery`` three at a time, round after round until
    nothing is due (a run claims again as attempts end, at most the in-flight limit per
    endpoint at once): the job lease turns the others away or the row claims leave them
    nothing; never a second POST."""
    target, db = migrated
    allow_loopback(live)
    signer = as_user(live, SIGNER)
    register(live, signer, receiver.url("/hooks"))
    submitted_card_applications(live, signer, delivery.BATCH + 10)
    env = process_env(target, live)
    statuses: list[list[str]] = []
    at = live.clock.now() + dt.timedelta(seconds=30)
    for _round in range(5):
        if {r.status for r in await deliveries(db)} == {"DELIVERED"}:
            break
        processes = [job_process(env, at) for _ in range(3)]
        outputs = [(await asyncio.to_thread(p.communicate, timeout=120))[0] for p in processes]
        assert [p.returncode for p in processes] == [0, 0, 0], outputs
        statuses.append([out.split("webhook-delivery: ", 1)[1].split()[0] for out in outputs])
        assert "ok" in statuses[-1], outputs
        at += dt.timedelta(seconds=10)
    print(f"job outcomes per round: {statuses}")
    done = await deliveries(db)
    counts = receiver.counts()
    assert len(done) == delivery.BATCH + 10 and set(counts) == expected_posts(done)
    assert set(counts.values()) == {1}
    assert {(r.status, r.attempts) for r in done} == {("DELIVERED", 1)}


# --------------------------------------------------------------------------- 2. a crash


async def test_a_delivery_process_killed_mid_send_leaves_leases_that_expire_and_nothing_is_lost(live, migrated):
    target, db = migrated
    receiver = Receiver(hold_after=1)  # the first request is answered, the others hang
    try:
        allow_loopback(live)
        signer = as_user(live, SIGNER)
        register(live, signer, receiver.url("/hooks"))
        submitted_card_applications(live, signer, 4)
        env = process_env(target, live)
        started = live.clock.now() + dt.timedelta(seconds=30)
        process = job_process(env, started)
        deadline = time.monotonic() + 60
        while True:  # all four in flight, the first recorded DELIVERED
            rows_ = await deliveries(db)
            if receiver.count() == 4 and sum(r.status == "DELIVERED" for r in rows_) == 1:
                break
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, (receiver.received, rows_)
            await asyncio.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)  # faketime's child too
        process.communicate()
        receiver.release()

        left = await deliveries(db)
        delivered_before = {r.event_id for r in left if r.status == "DELIVERED"}
        open_ = [r for r in left if r.status != "DELIVERED"]
        assert len(delivered_before) == 1 and len(open_) == 3
        assert all(r.status == "PENDING" and r.attempts == 0 and r.lease_holder for r in open_), open_
        lease_ends = min(r.leased_until for r in open_)
        assert lease_ends >= started + delivery.LEASE

        # before the lease ends: the job is skipped (its lease), and even past it the rows are not claimed
        soon = build_services(settings=live.services.settings, db=db, rules=live.services.rules,
                              clock=FixedClock(started + dt.timedelta(minutes=1)))
        assert (await jobs.run_job(soon, JOBS["webhook-delivery"])).status == "skipped"
        assert await delivery.deliver_due(soon) == "nothing to deliver"
        assert receiver.count() == 4

        # after it: sent again, once each, and DELIVERED
        later = job_process(env, lease_ends + dt.timedelta(seconds=5))
        output = (await asyncio.to_thread(later.communicate, timeout=120))[0]
        assert later.returncode == 0 and "webhook-delivery: ok — 3 delivered" in output, output
    finally:
        receiver.close()
    done = await deliveries(db)
    counts = receiver.counts()
    assert {(r.status, r.attempts, r.lease_holder) for r in done} == {("DELIVERED", 1, None)}
    assert set(counts) == expected_posts(done)  # nothing lost
    assert {event for (_path, event), n in counts.items() if n == 2} == {r.event_id for r in open_}
    assert all(counts[("/hooks", event)] == 1 for event in delivered_before)  # what was recorded is not sent again


# --------------------------------------------------------------------------- 3. the outbox


async def count_deliveries(db) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0)


async def test_an_event_exists_exactly_when_its_change_committed(live, migrated, receiver):
    _target, db = migrated
    allow_loopback(live)
    signer = as_user(live, SIGNER)
    register(live, signer, receiver.url("/hooks"))
    app_id = create(live, signer)["application"]["id"]  # paid by coupon; the registration has none
    refused = act(live, signer, "submitApplication", app_id)
    assert [e["code"] for e in refused["errors"]] == ["INSUFFICIENT_COUPONS"]
    assert await count_deliveries(db) == 0

    # emit in a transaction that then fails: rolled back with it
    pk = from_global_id(app_id)[1]

    class Refused(Exception):
        pass

    with pytest.raises(Refused):
        async with db.write() as tx:
            assert await emit_application(tx, WebhookEvent.APPLICATION_SUBMITTED, pk, live.clock.now()) == 1
            raise Refused
    assert await count_deliveries(db) == 0
    async with db.write() as tx:  # the same, committed: there
        assert await emit_application(tx, WebhookEvent.APPLICATION_SUBMITTED, pk, live.clock.now()) == 1
    assert await count_deliveries(db) == 1


async def test_parallel_submissions_of_one_application_queue_one_event(live, migrated, receiver):
    _target, db = migrated
    allow_loopback(live)
    signer = as_user(live, SIGNER)
    register(live, signer, receiver.url("/hooks"))
    for _ in range(3):
        app_id = create(live, signer, feePayment="CARD")["application"]["id"]
        before = await count_deliveries(db)
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(lambda _i, app_id=app_id: act(live, signer, "submitApplication", app_id), range(6)))
        assert sorted(tuple(e["code"] for e in a["errors"]) for a in answers) == [()] + [("INVALID_STATE",)] * 5, answers
        assert await count_deliveries(db) == before + 1
