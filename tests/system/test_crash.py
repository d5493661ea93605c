"""Crash tests (issue 10, "Prove it"): ``kill -9`` the server or the CLI at a random point
of card settlement, checkout settlement, bank import and reconciliation, then restart or
run it again. Exactly once, nothing stuck: after the restart, the retry and the jobs,

* every charge the gateway made is issued once (an ISSUED order with its coupons credited
  once, or ISSUED applications with one certificate number each) or owed back as a
  refund — never both, never neither;
* every line of a bank statement is recorded once and applied once;
* no payment session, order or job lease stays open past its time;
* ``tests/invariants.money_problems`` finds nothing.

Real processes on both databases: ``tradecert serve`` (a killed server's successor boots
in the background while the round before the kill runs, as a second host behind a load
balancer would take over; the hosted page's link is followed on whichever answers) and the
``tradecert bank import`` / ``tradecert jobs run`` CLI, on one migrated database per kind
shared by the tests of this module. The jobs that recover a card session run in this
process, through ``jobs.run_jobs`` (what ``tradecert jobs run`` calls) with a
``FixedClock``; the CLI re-run after a lease runs under libfaketime.

A kill is aimed at a point seen in the database (the request sent, the gateway charged,
the notification recorded, the page answered; the import started, recorded, reconciling;
the nightly run leased, progressed) plus a random delay, and where it landed is printed.
The choices are seeded: the seed is printed (and shown with a failure), and
``TRADECERT_CRASH_SEED=<seed>`` repeats them (the timing of the processes varies, so the
landing points may differ). ``TRADECERT_CRASH_ITERATIONS=<n>`` runs n kills per test and
database; the defaults (3, 2 and 2) cost about 80 s of CPU.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from persistence import migrate
from persistence.db import Database
from persistence.models import (
    Account,
    Application,
    BankDeposit,
    CardNotification,
    CardPayment,
    CardPaymentItem,
    CouponEntry,
    CouponPurchase,
    CouponPurchaseLine,
    JobLease,
    OutboxMail,
    Refund,
    SandboxGatewaySession,
)
from resolvers.adapters.bank_files import write_zengin
from resolvers.core.clock import Clock, FixedClock, tokyo_date
from resolvers.core.context import Services
from resolvers.core.settings import Settings
from resolvers.coupons.reconciliation import CHUNK
from rules.runtime import RulesRuntime
from tests.applications.test_applications import act, create
from tests.conftest import PG_BASE, RULES_DIR, _free_port, create_pg_schema, drop_pg_schema, require_postgres
from tests.coupons.test_purchases import START
from tests.identity.test_subaccounts import as_user
from tests.invariants import money_problems
from tests.payments.test_card_checkout import ADD, CHECKOUT
from tests.payments.test_card_payments import GOOD
from tests.tradecert.test_serve_process import _require_faketime
from tradecert import jobs
from tradecert.composition import JOBS, build_services
from tradecert.demo import seed_demo

TRADECERT = str(Path(sys.executable).parent / "tradecert")
SEED = int(os.environ.get("TRADECERT_CRASH_SEED") or random.SystemRandom().randrange(2**32))
SCALE = int(os.environ.get("TRADECERT_CRASH_ITERATIONS") or 0)
SESSION_MINUTES = 5  # limits.yaml card_session_minutes; the jobs run this long after "now" and a minute more
RECONCILIATION_LEASE = JOBS["bank-reconciliation"].lease


def rng_for(test: str, kind: str) -> random.Random:
    print(f"{test}[{kind}]: seed {SEED} (TRADECERT_CRASH_SEED={SEED} replays it)")
    return random.Random(f"{SEED}:{test}:{kind}")


def iterations(default: int) -> int:
    return SCALE or default


# --------------------------------------------------------------------------- processes


class Server:
    """One `tradecert serve` process on its own port (jobs off: this test runs them)."""

    def __init__(self, env: dict, logs: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = logs / f"serve-{self.port}.log"
        self.log = open(self.log_path, "w+", encoding="utf-8")  # a pipe nobody reads would block the server
        self.process = subprocess.Popen([TRADECERT, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                                        env=env, stdout=self.log, stderr=subprocess.STDOUT, text=True)
        self.ready = False

    def wait_ready(self, seconds: float = 90) -> Server:
        deadline = time.monotonic() + seconds
        while not self.ready:
            assert self.process.poll() is None, f"serve exited {self.process.returncode}: {self.output()}"
            with contextlib.suppress(httpx.HTTPError):
                self.ready = httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
            if not self.ready:
                assert time.monotonic() < deadline, f"serve did not become ready: {self.output()}"
                time.sleep(0.05)
        return self

    def graphql(self, query: str, variables: dict | None = None, headers: dict | None = None) -> httpx.Response:
        return httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                          headers=headers or {}, timeout=60)

    def here(self, url: str) -> str:
        """A hosted-page link made by another server, on this one (as behind a load balancer)."""
        return self.url + urlsplit(url).path

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(encoding="utf-8")[-4000:]


class Servers:
    """Hosts behind one address: ``current`` answers; ``arm()`` starts another process in
    the background; ``crash()`` kills the current one with SIGKILL and that other one
    takes over (a restart, without waiting for it)."""

    def __init__(self, env: dict, logs: Path):
        self.env, self.logs = env, logs
        self._current = Server(env, logs)
        self._spare: Server | None = None

    @property
    def current(self) -> Server:
        return self._current.wait_ready()

    def arm(self) -> None:
        if self._spare is None:
            self._spare = Server(self.env, self.logs)

    def crash(self) -> None:
        self._current.kill()
        self.arm()
        self._current, self._spare = self._spare, None

    def stop(self) -> None:
        for server in (self._current, self._spare):
            if server is not None:
                server.stop()


@dataclass
class Site:
    """One migrated database with the demo data, its servers, and what the CLI needs."""

    kind: str
    db: Database
    env: dict
    servers: Servers
    tmp: Path
    points: dict[str, collections.Counter] = field(default_factory=dict)

    rules: RulesRuntime = field(default_factory=lambda: RulesRuntime(RULES_DIR))

    def services(self, clock: Clock) -> Services:
        return build_services(settings=Settings.from_env(self.env), db=self.db, rules=self.rules, clock=clock)

    async def run_jobs(self, at: dt.datetime, *names: str) -> None:
        outcomes = await jobs.run_jobs(self.services(FixedClock(at)), list(names))
        assert [o.status for o in outcomes] == ["ok"] * len(names), outcomes

    def cli(self, *args: str, faketime: str | None = None) -> subprocess.Popen:
        prefix = [_require_faketime(), "-f", faketime] if faketime else []
        return subprocess.Popen([*prefix, TRADECERT, *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def site(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"crash-{request.param}")
    schema = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'tradecert.db'}"
    else:
        require_postgres()
        url, schema = PG_BASE, await create_pg_schema()
    db = Database(url, schema=schema)
    await migrate.upgrade(db.engine)
    env = {**os.environ, "TRADECERT_DATABASE_URL": url, "TRADECERT_DATABASE_SCHEMA": schema or "",
           "TRADECERT_RULES_DIR": str(RULES_DIR), "TRADECERT_RUN_JOBS": "0", "TRADECERT_RULES_POLL_SECONDS": "0",
           "TRADECERT_PUBLIC_URL": "", "COLUMNS": "200"}
    env.pop("TRADECERT_SMTP_URL", None)
    servers = Servers(env, tmp)  # boots while the demo data goes in
    try:
        await seed_demo(db, Clock())  # the servers run on the system clock: the demo data as `serve --demo` seeds it
        yield Site(request.param, db, env, servers, tmp)
    finally:
        servers.stop()
        await db.dispose()
        if schema:
            await drop_pg_schema(schema)


PHASES = ("sent", "charged", "notified", "answered")  # where a kill is aimed (it lands a little later)


async def post_and_kill(site: Site, url: str, phase: str, delay: float) -> str:
    """POST the card on the hosted page and SIGKILL the server ``delay`` seconds after the
    payment reached ``phase`` (seen in the database): the request was sent, the gateway
    charged, we recorded its notification, or the page answered."""
    server = site.servers.current
    session_id = urlsplit(url).path.rsplit("/", 1)[1]
    async with site.db.read() as session:
        reference = await session.scalar(select(CardPayment.reference).where(CardPayment.gateway_session == session_id))
    answer: dict = {}

    def post() -> None:
        try:
            answer["status"] = httpx.post(server.here(url), data=GOOD, timeout=60).status_code
        except Exception as exc:  # the connection dies with the server
            answer["error"] = type(exc).__name__

    async def reached() -> bool:
        if phase == "sent" or not thread.is_alive():
            return True
        async with site.db.read() as session:
            if phase == "charged":
                return await session.scalar(select(SandboxGatewaySession.status)
                                            .where(SandboxGatewaySession.id == session_id)) != "OPEN"
            if phase == "notified":
                return bool(await session.scalar(select(func.count()).select_from(CardNotification)
                                                 .where(CardNotification.reference == reference)))
        return False  # "answered": when the thread is done

    started = time.monotonic()
    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    while not await reached():
        assert time.monotonic() - started < 60, "the payment never reached " + phase
        await asyncio.sleep(0.005)
    await asyncio.sleep(delay)
    site.servers.crash()
    thread.join(60)
    return f"aimed {delay * 1000:.0f} ms after '{phase}', the page: {answer}"


# --------------------------------------------------------------------------- what a kill left


@dataclass
class Left:
    """The gateway's and our view of one card session right after the kill."""

    point: str
    gateway_status: str
    charge_id: str | None
    payment_status: str


async def left_behind(db: Database, session_id: str) -> Left:
    async with db.read() as session:
        gateway = await session.get(SandboxGatewaySession, session_id)
        payment = await session.scalar(select(CardPayment).where(CardPayment.gateway_session == session_id))
        notified = await session.scalar(select(func.count()).select_from(CardNotification)
                                        .where(CardNotification.reference == payment.reference))
    if gateway.status == "OPEN":
        point = "before the charge"
    elif not notified:
        point = "charged, before the notification"
    elif gateway.delivered_at is None:
        point = "notified, before the acknowledgement"
    else:
        point = "after the acknowledgement"
    return Left(point, gateway.status, gateway.charge_id, payment.status)


async def recover(site: Site, rng: random.Random, url: str, left: Left) -> tuple[str, Left, dt.datetime]:
    """After the restart: maybe the buyer posts the card again; then the gateway's redelivery
    and the session expiry run — the redelivery first, or the expiry first (nobody came
    back in time). Returns the order the jobs ran in, the state before the jobs and the
    time the expiry ran at (past every session so far)."""
    late = rng.random() < 0.4
    if left.gateway_status == "OPEN" and not late and rng.random() < 0.7:
        response = httpx.post(site.servers.current.here(url), data=GOOD, timeout=60)
        assert response.status_code == 200 and 'data-code="PAID"' in response.text, response.text[-500:]
    before = await left_behind(site.db, urlsplit(url).path.rsplit("/", 1)[1])
    now = Clock().now()
    later = now + dt.timedelta(minutes=SESSION_MINUTES + 1)
    if late:
        await site.run_jobs(later, "card-session-expiry", "card-notification-redelivery")
    else:
        await site.run_jobs(now, "card-notification-redelivery")
        await site.run_jobs(later, "card-session-expiry")
    return ("expiry first" if late else "redelivery first"), before, later


def expected(scenario: str, before: Left) -> str:
    if before.charge_id is None:
        return "nothing charged"
    if scenario == "redelivery first" or before.payment_status == "PAID":
        return "issued"
    return "refund owed"  # charged, but the session expired before we heard of it


async def nothing_stuck(site: Site, now: dt.datetime) -> list[str]:
    """What must hold once the jobs ran at ``now``: no card session or card order open
    past its time, every gateway event acknowledged, no application left in a checkout,
    no certificate number twice, and the money invariants."""
    problems = list(await money_problems(site.db))
    async with site.db.read() as session:
        for row in (await session.execute(select(CardPayment.payment_number, CardPayment.status).where(
                CardPayment.status == "OPEN", CardPayment.expires_at < now))).all():
            problems.append(f"card payment {row.payment_number} still OPEN past its expiry")
        for row in (await session.execute(select(CouponPurchase.order_number).where(
                CouponPurchase.method == "CARD", CouponPurchase.status == "AWAITING_PAYMENT",
                CouponPurchase.expires_at < now))).all():
            problems.append(f"card order {row.order_number} still awaiting payment past its expiry")
        for row in (await session.execute(select(SandboxGatewaySession.id).where(
                SandboxGatewaySession.notification.is_not(None), SandboxGatewaySession.delivered_at.is_(None)))).all():
            problems.append(f"gateway event of {row.id} never acknowledged")
        for row in (await session.execute(select(Application.receipt_number).where(
                Application.checkout_payment_id.is_not(None), Application.state != "APPROVED"))).all():
            problems.append(f"application {row.receipt_number} left in a checkout")
        duplicates = (await session.execute(select(Application.certificate_number).where(
            Application.certificate_number.is_not(None)).group_by(Application.certificate_number)
            .having(func.count() > 1))).all()
        problems += [f"certificate number {row[0]} issued twice" for row in duplicates]
    return problems


def report(site: Site, test: str, point: str) -> None:
    site.points.setdefault(test, collections.Counter())[point] += 1


def print_points(site: Site, test: str) -> None:
    print(f"{test}[{site.kind}] kill points: {dict(site.points.get(test, {}))}")


# --------------------------------------------------------------------------- 1. card settlement of a coupon order


CARD_ORDER = """mutation($lines: [CouponPurchaseLineInput!]!) {
  startCouponPurchase(input: {lines: $lines, method: CARD}) { purchase { orderNumber paymentUrl coupons amount }
    errors { code } } }"""


async def test_a_card_coupon_order_is_issued_once_or_refunded_when_the_server_is_killed_mid_payment(site):
    rng = rng_for("card-coupons", site.kind)
    signer = as_user(site.servers.current, "signer-2701000002")

    def order() -> dict:
        lines = [{"productCode": "SINGLE", "quantity": rng.randint(1, 3)}]
        if rng.random() < 0.5:
            lines.append({"productCode": "PACK30", "quantity": 1})
        result = site.servers.current.graphql(CARD_ORDER, {"lines": lines}, headers=signer).json()
        assert result["data"]["startCouponPurchase"]["errors"] == [], result
        return result["data"]["startCouponPurchase"]["purchase"]

    for _ in range(iterations(3)):
        site.servers.arm()  # the restart boots while this round runs
        purchase = order()
        url = purchase["paymentUrl"]
        outcome = await post_and_kill(site, url, rng.choice(PHASES), rng.uniform(0, 0.02))
        left = await left_behind(site.db, urlsplit(url).path.rsplit("/", 1)[1])
        report(site, "card-coupons", left.point)
        scenario, before, jobs_at = await recover(site, rng, url, left)
        want = expected(scenario, before)
        context = f"seed {SEED}: killed {outcome}: {left.point}; {scenario}; want {want}"
        print(f"  {context}")

        async with site.db.read() as session:
            row = await session.scalar(select(CouponPurchase).where(CouponPurchase.order_number == purchase["orderNumber"]))
            payment = await session.scalar(select(CardPayment).where(CardPayment.purchase_id == row.id))
            credited = (await session.execute(select(func.count(), func.coalesce(func.sum(CouponEntry.coupons), 0))
                                              .where(CouponEntry.purchase_id == row.id))).one()
            lines = await session.scalar(select(func.count()).select_from(CouponPurchaseLine)
                                         .where(CouponPurchaseLine.purchase_id == row.id))
            refunds = (await session.scalars(select(Refund.amount).where(
                Refund.external_key == f"charge:{before.charge_id}"))).all()
            mails = await session.scalar(select(func.count()).select_from(OutboxMail).where(
                OutboxMail.kind == "coupon.issued", OutboxMail.body.contains(row.order_number)))
        if want == "issued":
            assert (row.status, payment.status, payment.charge_id) == ("ISSUED", "PAID", before.charge_id), context
            assert tuple(credited) == (lines, row.coupons), context  # each line credited once
            assert refunds == [] and mails == 1, context
        elif want == "refund owed":
            assert (row.status, payment.status) == ("CANCELLED", "EXPIRED"), context
            assert refunds == [row.amount] and credited[0] == 0 and mails == 0, context
        else:
            assert (row.status, payment.status) == ("CANCELLED", "EXPIRED"), context
            assert refunds == [] and credited[0] == 0 and mails == 0, context
        assert await nothing_stuck(site, jobs_at) == [], context
    print_points(site, "card-coupons")


# --------------------------------------------------------------------------- 2. checkout settlement of applications


async def test_a_card_checkout_issues_each_application_once_or_is_refunded_when_the_server_is_killed(site):
    rng = rng_for("checkout", site.kind)
    server = site.servers.current
    signer, staff = as_user(server, "signer-2701000002"), as_user(server, "staff-2701")
    async with site.db.read() as session:
        signer_id = await session.scalar(select(Account.id).where(Account.username == "signer-2701000002"))

    def checkout(n: int) -> tuple[list[str], dict]:
        server = site.servers.current
        ids = []
        for _ in range(n):
            app = create(server, signer, feePayment="CARD", invoiceNumber=f"CRASH-{rng.randrange(10**6)}")
            assert app["errors"] == [], app
            ids.append(app["application"]["id"])
            assert act(server, signer, "submitApplication", ids[-1])["errors"] == []
            assert act(server, staff, "approveApplication", ids[-1])["application"]["state"] == "APPROVED"
        added = server.graphql(ADD, {"ids": ids}, headers=signer).json()["data"]["addToCardCart"]
        assert added["errors"] == [], added
        started = server.graphql(CHECKOUT, {"key": None}, headers=signer).json()["data"]["startCardCheckout"]
        assert started["errors"] == [], started
        return ids, started

    for _ in range(iterations(2)):
        site.servers.arm()
        app_ids, started = checkout(rng.randint(1, 2))
        url = started["paymentUrl"]
        session_id = urlsplit(url).path.rsplit("/", 1)[1]
        outcome = await post_and_kill(site, url, rng.choice(PHASES), rng.uniform(0, 0.02))
        left = await left_behind(site.db, session_id)
        report(site, "checkout", left.point)
        scenario, before, jobs_at = await recover(site, rng, url, left)
        want = expected(scenario, before)
        context = f"seed {SEED}: killed {outcome}: {left.point}; {scenario}; want {want}"
        print(f"  {context}")

        async with site.db.read() as session:
            payment = await session.scalar(select(CardPayment).where(CardPayment.gateway_session == session_id))
            apps = (await session.scalars(select(Application).join(
                CardPaymentItem, CardPaymentItem.application_id == Application.id)
                .where(CardPaymentItem.card_payment_id == payment.id).order_by(Application.id))).all()
            mails = {a.receipt_number: await session.scalar(select(func.count()).select_from(OutboxMail).where(
                OutboxMail.kind == "application.issued", OutboxMail.body.contains(f"受付番号 {a.receipt_number} の"))) for a in apps}
            refunds = (await session.scalars(select(Refund.amount).where(
                Refund.external_key == f"charge:{before.charge_id}"))).all()
        assert len(apps) == len(app_ids), context
        if want == "issued":
            assert (payment.status, payment.charge_id) == ("PAID", before.charge_id), context
            assert all(a.state == "ISSUED" and a.certificate_number and a.paid_by_id == signer_id for a in apps), context
            assert len({a.certificate_number for a in apps}) == len(apps), context
            assert set(mails.values()) == {1} and refunds == [], context
        else:
            assert payment.status == "EXPIRED", context
            assert all(a.state == "APPROVED" and a.certificate_number is None and a.checkout_payment_id is None
                       for a in apps), context  # payable again
            assert set(mails.values()) == {0}, context
            assert refunds == ([payment.amount] if want == "refund owed" else []), context
        assert await nothing_stuck(site, jobs_at) == [], context
    print_points(site, "checkout")


# --------------------------------------------------------------------------- 3. bank import and reconciliation


EXTRA_DEPOSITS = CHUNK + 500  # paid again into a used account, owed back: two reconciliation chunks


def bank_order(server: Server, headers: dict) -> dict:
    result = server.graphql(START, {"lines": [{"productCode": "SINGLE", "quantity": 2}], "method": "BANK_TRANSFER",
                                    "key": None}, headers=headers).json()  # SINGLE: members and non-members
    assert result["data"]["startCouponPurchase"]["errors"] == [], result
    return result["data"]["startCouponPurchase"]["purchase"]


async def deposits_of(db: Database, accounts: list[str]) -> tuple[int, int]:
    """(recorded, processed) deposits into these accounts."""
    async with db.read() as session:
        return tuple((await session.execute(select(func.count(), func.count(BankDeposit.processed_at))
                                            .where(BankDeposit.account_number.in_(accounts)))).one())


async def kill_when(process: subprocess.Popen, ready, delay: float, seconds: float = 120) -> bool:
    """SIGKILL ``process`` ``delay`` seconds after ``ready()`` holds; False if it ended first."""
    deadline = time.monotonic() + seconds
    while not await ready():
        if process.poll() is not None:
            finished(process, "the run to be killed")
            return False
        assert time.monotonic() < deadline, "the kill point never came"
        await asyncio.sleep(0.01)
    await asyncio.sleep(delay)
    if process.poll() is not None:
        finished(process, "the run to be killed")
        return False
    process.send_signal(signal.SIGKILL)
    process.communicate()
    return True


def finished(process: subprocess.Popen, what: str) -> str:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, f"{what} exited {process.returncode}: {output}"
    return output


async def lease(db: Database) -> JobLease:
    async with db.read() as session:
        return await session.scalar(select(JobLease).where(JobLease.name == "bank-reconciliation"))


async def test_bank_import_and_reconciliation_killed_and_run_again_record_and_issue_once(site):
    rng = rng_for("bank", site.kind)
    server = site.servers.current
    buyers = {number: as_user(server, f"signer-{number}") for number in ("2701000002", "2701000003")}
    to_record = 3.0  # seconds from launch to the import's commit, measured again below
    for n in range(iterations(2)):
        today = tokyo_date(Clock().now())
        orders = {number: bank_order(site.servers.current, headers) for number, headers in buyers.items()}
        first, second = (o["virtualAccount"]["accountNumber"] for o in orders.values())
        first_amount, second_amount = (o["amount"] for o in orders.values())
        second_paid = rng.choice([second_amount, second_amount - 100, second_amount + 500])  # exact, short, over
        inquiry = iter(range(1 + n * 10_000, 10_000 * (n + 1)))
        lines = {first: [(next(inquiry), first_amount, today, "ｶｺｶﾞﾜ")]
                 + [(next(inquiry), 1000 + i, today, "ｶｺｶﾞﾜ") for i in range(EXTRA_DEPOSITS)],
                 second: [(next(inquiry), second_paid, today, "ﾆﾂｼﾖｳ")]}
        total = sum(len(v) for v in lines.values())
        statement = site.tmp / f"statement-{n}.txt"
        statement.write_bytes(write_zengin(lines, today))
        accounts = [first, second]

        async def recorded(accounts=accounts):
            return (await deposits_of(site.db, accounts))[0] > 0

        async def reconciling(accounts=accounts):
            return (await deposits_of(site.db, accounts))[1] > 0

        async def started():
            return True

        # the import: killed at a random moment up to about when it records, right after its
        # one transaction, or once the first reconciliation chunk is in
        anchor = rng.choice([started, recorded, reconciling])
        delay = rng.uniform(0, 1.2 * to_record) if anchor is started else rng.uniform(0, 0.03)
        killed = await kill_when(site.cli("bank", "import", str(statement)), anchor, delay)
        after_kill = await deposits_of(site.db, accounts)
        report(site, "bank import", f"{anchor.__name__}: {'killed' if killed else 'finished'}, "
                                    f"{'recorded' if after_kill[0] else 'nothing recorded'}")
        context = f"seed {SEED}: import killed={killed} {delay:.3f}s after '{anchor.__name__}', left {after_kill}"
        assert after_kill[0] in (0, total), context  # one transaction: all lines or none
        launched = time.monotonic()
        finished(site.cli("bank", "import", "--no-reconcile", str(statement)), "the import run again")
        to_record = time.monotonic() - launched  # about how long the next import takes to record
        assert (await deposits_of(site.db, accounts))[0] == total, context  # every line once

        # the nightly reconciliation: killed once a chunk is in (or while it starts when little is left)
        done_before = (await deposits_of(site.db, accounts))[1]

        async def progressed(accounts=accounts, done_before=done_before):
            return (await deposits_of(site.db, accounts))[1] > done_before

        async def leased():
            held = await lease(site.db)
            return held is not None and held.leased_until is not None

        job_anchor = progressed if total - done_before > CHUNK else leased
        job_delay = rng.uniform(0, 0.03)
        job_killed = await kill_when(site.cli("jobs", "run", "bank-reconciliation"), job_anchor, job_delay)
        held = await lease(site.db)
        report(site, "reconciliation", f"{job_anchor.__name__}: " + (
            "killed holding the lease" if held.leased_until else "finished before the kill"))
        context += f"; job killed={job_killed} {job_delay:.3f}s after '{job_anchor.__name__}'"
        if held.leased_until is not None:
            assert job_killed, context
            # a second host now is refused by the dead run's lease, which ends by itself
            outcome = await jobs.run_job(site.services(Clock()), JOBS["bank-reconciliation"])
            assert outcome.status == "skipped", context
            assert held.leased_until <= Clock().now() + RECONCILIATION_LEASE, context
        later = f"+{int(RECONCILIATION_LEASE.total_seconds() // 60) + 1}m"  # after the lease, on the CLI's clock
        output = finished(site.cli("jobs", "run", "bank-reconciliation", faketime=later), "the nightly run again")
        assert "bank-reconciliation: ok" in output, context + output

        held = await lease(site.db)
        assert held.leased_until is None and held.last_status == "ok", context
        async with site.db.read() as session:
            statuses = dict((await session.execute(select(CouponPurchase.order_number, CouponPurchase.status).where(
                CouponPurchase.order_number.in_([o["orderNumber"] for o in orders.values()])))).all())
            deposits = (await session.execute(select(BankDeposit.id, BankDeposit.account_number, BankDeposit.outcome)
                                              .where(BankDeposit.account_number.in_(accounts))
                                              .order_by(BankDeposit.id))).all()
            refunded = set((await session.scalars(select(Refund.external_key).where(
                Refund.external_key.in_([f"deposit:{d.id}" for d in deposits])))).all())
            credited = dict((await session.execute(
                select(CouponPurchase.order_number, func.sum(CouponEntry.coupons))
                .join(CouponEntry, CouponEntry.purchase_id == CouponPurchase.id)
                .where(CouponPurchase.order_number.in_([o["orderNumber"] for o in orders.values()]))
                .group_by(CouponPurchase.order_number))).all())
            mailed = {o["orderNumber"]: await session.scalar(select(func.count()).select_from(OutboxMail).where(
                OutboxMail.kind == "coupon.issued", OutboxMail.body.contains(o["orderNumber"]))) for o in orders.values()}
        first_order, second_order = orders.values()
        second_status, second_outcome = {second_amount: ("ISSUED", "issued"), second_amount - 100: ("CANCELLED", "short"),
                                         second_amount + 500: ("ISSUED", "issued_over")}[second_paid]
        issued = {o["orderNumber"]: o["coupons"] for o in (first_order, second_order)
                  if o is first_order or second_status == "ISSUED"}
        assert len(deposits) == total and all(d.outcome for d in deposits), context  # every line applied
        assert [d.outcome for d in deposits if d.account_number == first] == ["issued"] + ["refunded"] * EXTRA_DEPOSITS, context
        assert [d.outcome for d in deposits if d.account_number == second] == [second_outcome], context
        assert statuses == {first_order["orderNumber"]: "ISSUED", second_order["orderNumber"]: second_status}, context
        assert credited == issued, context  # the coupons of each issued order credited once
        assert mailed == {number: int(number in issued) for number in mailed}, context
        owed = {f"deposit:{d.id}" for d in deposits if d.outcome in ("refunded", "short", "issued_over")}
        assert refunded == owed, context
        assert await money_problems(site.db) == [], context
    print_points(site, "bank import")
    print_points(site, "reconciliation")
