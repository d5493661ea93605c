"""Issue 10, "A concurrent model test": clients run random interleavings of the money use
cases against a real ``tradecert serve --workers 2`` on PostgreSQL; afterwards the
invariants of ``tests/invariants.py`` hold, nothing is stuck, and no answer anywhere was a
5xx or an INTERNAL_SERVER_ERROR (UserErrors are expected: they are counted by code).

What the clients do (over HTTP, as the demo's signers and chamber staff would):

* purchase by bank transfer or card (the sandbox's hosted page, a good or a declined
  card — the page stays open for another card — or left open to expire), deposits of the right, a too small or a too large amount,
  reconciliation (the job, or ``checkPurchasePayment``), the expiry jobs, cancellation;
* create + submit, hold, resubmit, withdraw, approve, card checkout of approved
  applications;
* coupon adjustments (±), membership toggles, and once, near the end, 退会 of 2701000003.

One seed (printed; ``TRADECERT_MODEL_SEED`` repeats it) gives each client its own
``random.Random``: a seed repeats the operations each client chooses, not their timing —
that is the two worker processes' and PostgreSQL's, which is the point. The jobs run as
``tradecert jobs run NAME`` processes, as cron or an operator would (the server's own
scheduler is off). Card sessions last 1 minute here (a copy of the rules), so the expiry
job and a late payment really meet within a run.

``bench/model.py`` runs the same model for about 10 minutes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.applications.test_applications import ORIGIN
from tests.conftest import PG_BASE, RULES_DIR, _free_port, create_pg_schema, drop_pg_schema, require_postgres

pytestmark = pytest.mark.postgres

TRADECERT = str(Path(sys.executable).parent / "tradecert")
PASSWORD = "demo-pass-2701"
REG2, REG3 = "2701000002", "2701000003"
SIGNERS = {"signer-2701000002": REG2, "signer2-2701000002": REG2, "signer-2701000003": REG3}
STAFF = "staff-2701"
CARD_SESSION_MINUTES = 1
GOOD_CARD = "4111111111111111"
DECLINED_CARD = "4000000000000002"

LOGIN = """mutation($u: String!, $p: String!) { login(input: {chamberCode: "2701", username: $u, password: $p}) {
  token errors { code } } }"""
CREATE = """mutation($input: CreateApplicationInput!) { createApplication(input: $input) {
  application { id state } errors { code } } }"""
ACTION = """mutation($id: ID!) {{ {name}(input: {{applicationId: $id}}) {{ application {{ id state }} errors {{ code }} }} }}"""
SUBMIT = ACTION.format(name="submitApplication")
WITHDRAW = ACTION.format(name="withdrawApplication")
APPROVE = ACTION.format(name="approveApplication")
HOLD = """mutation($id: ID!, $r: String!) { holdApplication(input: {applicationId: $id, reason: $r}) {
  application { id state } errors { code } } }"""
ADD_TO_CART = """mutation($ids: [ID!]!) { addToCardCart(input: {applicationIds: $ids}) { cart { total items { id } }
  errors { code } } }"""
CHECKOUT = """mutation($key: String) { startCardCheckout(input: {idempotencyKey: $key}) { paymentUrl amount
  errors { code } } }"""
PURCHASE = """mutation($lines: [CouponPurchaseLineInput!]!, $method: PurchaseMethod!, $key: String) {
  startCouponPurchase(input: {lines: $lines, method: $method, idempotencyKey: $key}) {
    purchase { id status amount coupons paymentUrl virtualAccount { accountNumber } } errors { code } } }"""
CANCEL = """mutation($id: ID!) { cancelCouponPurchase(input: {purchaseId: $id}) { purchase { id status } errors { code } } }"""
DEPOSIT = """mutation($deposits: [BankDepositInput!]!) { recordBankDeposits(input: {deposits: $deposits}) {
  matched { id status } errors { code } } }"""
CHECK = """mutation($id: ID!) { checkPurchasePayment(input: {purchaseId: $id}) { purchase { id status } errors { code } } }"""
ADJUST = """mutation($n: String!, $c: Int!) { adjustCoupons(input: {registrationNumber: $n, coupons: $c, reason: "モデル試験"}) {
  errors { code } } }"""
SET_MEMBERSHIP = """mutation($n: String!, $m: Membership!) { setMembership(input: {registrationNumber: $n, membership: $m}) {
  registration { membership } refunds { amount } errors { code } } }"""
LEAVE = """mutation($n: String!) { withdrawTradeRegistration(input: {registrationNumber: $n, reason: "モデル試験"}) {
  registration { number } refunds { amount } errors { code } } }"""
OWN_ACCOUNT = "{ couponAccount { balance pending registration { number membership } } }"
STAFF_ACCOUNT = """query($n: String!) { couponAccount(registrationNumber: $n) { balance pending
  registration { number membership } } }"""

# operation → weight (how often a client picks it)
OPERATIONS = {
    "submit": 12, "hold": 7, "resubmit": 6, "withdraw": 5, "approve": 7, "checkout": 5,
    "purchase": 9, "pay_later": 3, "deposit": 7, "reconcile": 4, "expire": 2, "cancel": 4,
    "adjust": 5, "membership": 2, "look": 2,
}


# --------------------------------------------------------------------------- the server


class ModelServer:
    """``tradecert serve --demo --workers 2`` on its own PostgreSQL schema, jobs off; the
    jobs run as ``tradecert jobs run`` processes with the same environment."""

    def __init__(self, workdir: Path, schema: str) -> None:
        self.workdir, self.schema = workdir, schema
        rules = workdir / "rules"
        shutil.copytree(RULES_DIR, rules, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
        limits = rules / "limits.yaml"
        text, changed = re.subn(r"(limit: card_session_minutes\n\s+value: )\d+", rf"\g<1>{CARD_SESSION_MINUTES}",
                                limits.read_text(encoding="utf-8"))
        assert changed, "rules/limits.yaml: card_session_minutes not found"
        limits.write_text(text, encoding="utf-8")
        key = workdir / "signing-key.pem"  # made before two workers race to create it
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("TRADECERT_")}
        self.env = {
            **inherited,
            "TRADECERT_DATABASE_URL": PG_BASE, "TRADECERT_DATABASE_SCHEMA": schema,
            "TRADECERT_RULES_DIR": str(rules), "TRADECERT_RULES_POLL_SECONDS": "0",
            "TRADECERT_RUN_JOBS": "0", "TRADECERT_PUBLIC_URL": self.base,
            "TRADECERT_SIGNING_KEY_FILE": str(key), "TRADECERT_NACCS_KEY_FILE": str(workdir / "naccs-fernet.key"),
            "TRADECERT_LOG_LEVEL": "WARNING",  # no access log: the ERROR records are what the model reads
            "TRADECERT_LOG_JSON": "1",  # logged_errors reads JSON lines (development's default is a readable line)
        }
        self.log_path = workdir / "serve.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self._log = open(self.log_path, "w", encoding="utf-8")
        self.process = subprocess.Popen(
            [TRADECERT, "serve", "--demo", "--workers", "2", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited {self.process.returncode}: {self.log()}")
            try:
                if httpx.post(f"{self.base}/graphql", json={"query": "{ feeSchedule { on } }"}, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not answer in 120 s: {self.log()}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session: the server and its two workers
            self.process.wait()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def run_jobs(self, *names: str) -> subprocess.CompletedProcess:
        return subprocess.run([TRADECERT, "jobs", "run", *names], env=self.env, capture_output=True, text=True,
                              timeout=300)


def logged_errors(text: str) -> list[str]:
    """The ERROR (and worse) records of the server's JSON log, and any bare traceback."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("level") in ("ERROR", "CRITICAL"):
                found.append(f"{record.get('logger')}: {record.get('message')} (request {record.get('request_id')})"
                             + _our_frames(record.get("exc_info") or ""))
        elif line.startswith(("Traceback", "ERROR")):
            found.append(line)
    return found


def _our_frames(traceback: str) -> str:
    """A traceback shortened to this project's frames and the exception (the log has it all)."""
    ours = [f"{m.group(2)}:{m.group(3)} {m.group(4)}" for m in re.finditer(
        r'File "([^"]*/((?:resolvers|schema|persistence|tradecert)/[^"]+))", line (\d+), in (\w+)', traceback)
        if "site-packages" not in m.group(1)]
    raised = [line for line in traceback.splitlines() if re.match(r"[\w.]*(Error|Exception|Violation)\b", line)]
    return "".join(f"\n      at {frame}" for frame in ours[-6:]) + (f"\n      {raised[-1][:300]}" if raised else "")


# --------------------------------------------------------------------------- what the clients know


@dataclass
class App:
    id: str
    registration: str
    payment: str  # COUPON | CARD
    state: str  # as last answered; the server may have moved on


@dataclass
class Order:
    id: str
    registration: str
    method: str
    amount: int
    account: str | None
    state: str
    buyer: str


@dataclass
class Page:
    """A hosted card page and what it pays for."""
    url: str
    order: Order | None = None
    apps: list[App] = field(default_factory=list)

    def paid(self, outcome: str) -> None:
        """What the clients now believe (the server may know better: a cancellation or the
        expiry job may have come first)."""
        if outcome.startswith("PAID"):
            state, order_state = "ISSUED", "ISSUED"
        elif outcome.startswith("SESSION_"):
            state, order_state = "APPROVED", "CANCELLED"
        else:  # PAYMENT_DECLINED: the page stays open for another card, and so do the order and the checkout
            return
        for app in self.apps:
            app.state = state
        if self.order is not None:
            self.order.state = order_state


@dataclass
class Tally:
    counts: Counter = field(default_factory=Counter)  # (operation, outcome) → n
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, operation: str, outcome: str) -> None:
        with self.lock:
            self.counts[(operation, outcome)] += 1

    def fail(self, text: str) -> None:
        with self.lock:
            self.failures.append(text)


@dataclass
class Tokens:
    by_actor: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class World:
    """What the clients have been told; shared, and deliberately allowed to go stale."""

    def __init__(self, operations: int | None, seconds: float | None, withdraw_at: float) -> None:
        self.lock = threading.Lock()
        self.apps: list[App] = []
        self.orders: list[Order] = []
        self.open_pages: list[Page] = []
        self.membership = {REG2: "MEMBER", REG3: "NON_MEMBER"}
        self.withdrawn = False  # 2701000003 left the chamber
        self.withdraw_claimed = False
        self.withdraw_at = withdraw_at  # fraction of the run
        self.operations, self.seconds = operations, seconds
        self.done_operations = 0
        self.started = time.monotonic()
        self.serial = 0

    def progress(self) -> float:
        parts = []
        if self.operations:
            parts.append(self.done_operations / self.operations)
        if self.seconds:
            parts.append((time.monotonic() - self.started) / self.seconds)
        return max(parts)

    def near_the_end(self) -> bool:
        if self.seconds and self.started + self.seconds - time.monotonic() < 8:
            return True
        return bool(self.operations) and self.done_operations > 0.97 * self.operations

    def tick(self) -> None:
        with self.lock:
            self.done_operations += 1

    def next_serial(self) -> int:
        with self.lock:
            self.serial += 1
            return self.serial

    def claim_withdrawal(self) -> bool:
        with self.lock:
            if self.withdraw_claimed or self.progress() < self.withdraw_at:
                return False
            self.withdraw_claimed = True
            return True

    def pick_app(self, rng: random.Random, states: tuple[str, ...], registration: str | None = None,
                 payment: str | None = None) -> App | None:
        """A recent application in one of ``states`` as last known — or, now and then, any
        recent one: the server decides from what it holds, not from what we think."""
        with self.lock:
            recent = [a for a in self.apps[-60:] if (registration is None or a.registration == registration)
                      and (payment is None or a.payment == payment)]
        wanted = [a for a in recent if a.state in states]
        pool = wanted if wanted and rng.random() > 0.12 else recent
        return rng.choice(pool) if pool else None

    def pick_order(self, rng: random.Random, method: str | None = None, registration: str | None = None,
                   buyer: str | None = None) -> Order | None:
        with self.lock:
            recent = [o for o in self.orders[-30:] if (method is None or o.method == method)
                      and (registration is None or o.registration == registration) and (buyer is None or o.buyer == buyer)]
        waiting = [o for o in recent if o.state == "AWAITING_PAYMENT"]
        pool = waiting if waiting and rng.random() > 0.2 else recent
        return rng.choice(pool) if pool else None


@dataclass
class Answer:
    payload: dict | None  # the mutation's or query's field; None after a top-level error
    codes: list[str]

    @property
    def ok(self) -> bool:
        return self.payload is not None and not self.codes

    @property
    def outcome(self) -> str:
        return "ok" if self.ok else "+".join(sorted(set(self.codes))) or "no data"


# --------------------------------------------------------------------------- a client


class Client:
    def __init__(self, index: int, seed: int, server: ModelServer, world: World, tally: Tally, tokens: Tokens) -> None:
        self.index, self.seed = index, seed
        self.rng = random.Random(f"{seed}:{index}")
        self.server, self.world, self.tally = server, world, tally
        self.http = httpx.Client(base_url=server.base, timeout=120)
        self.tokens = tokens
        self.trace: list[str] = []
        self.today = dt.datetime.now(dt.timezone(dt.timedelta(hours=9))).date()

    # ---- transport, with the checks every answer gets

    def _note(self, text: str) -> None:
        self.trace.append(f"{time.monotonic() - self.world.started:8.3f} c{self.index} {text}")

    def _token(self, actor: str) -> str | None:
        with self.tokens.lock:  # one login per account, shared by the clients (a user with several tabs)
            if actor not in self.tokens.by_actor:
                answer = self._post("login", LOGIN, {"u": actor, "p": PASSWORD}, None)
                if not answer.ok or not answer.payload.get("token"):
                    self._note(f"login {actor}: {answer.outcome}")
                    return None
                self.tokens.by_actor[actor] = answer.payload["token"]
            return self.tokens.by_actor[actor]

    def _post(self, name: str, query: str, variables: dict, token: str | None) -> Answer:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        if response.status_code >= 500:
            self.tally.fail(f"{name} {variables}: HTTP {response.status_code}: {response.text[:500]}")
            return Answer(None, [f"HTTP {response.status_code}"])
        if response.status_code != 200:
            return Answer(None, [f"HTTP {response.status_code}"])
        body = response.json()
        top = [e.get("extensions", {}).get("code") or "NO_CODE" for e in body.get("errors") or []]
        if "INTERNAL_SERVER_ERROR" in top:
            ids = [e["extensions"].get("requestId") for e in body["errors"]]
            self.tally.fail(f"{name} {variables}: INTERNAL_SERVER_ERROR (request {ids})")
        data = body.get("data") or {}
        payload = next(iter(data.values()), None) if data else None
        if top or payload is None:
            return Answer(None, [f"top:{c}" for c in top] or ["no data"])
        return Answer(payload, [e["code"] for e in payload.get("errors") or []] if isinstance(payload, dict) else [])

    def call(self, name: str, actor: str, query: str, variables: dict) -> Answer:
        for attempt in range(2):
            token = self._token(actor)
            if token is None:
                return Answer(None, ["login refused"])
            answer = self._post(name, query, variables, token)
            if "top:UNAUTHENTICATED" in answer.codes and attempt == 0:
                with self.tokens.lock:  # the session ended (退会, or idle): log in again once
                    if self.tokens.by_actor.get(actor) == token:
                        del self.tokens.by_actor[actor]
                continue
            self._note(f"{name} {actor} {json.dumps(variables, ensure_ascii=False)[:160]} → {answer.outcome}")
            return answer
        return answer

    def pay(self, url: str, card: str) -> str:
        """POST the sandbox's hosted page; its answer's data-code (PAID, PAYMENT_DECLINED, …)."""
        month_year = {"expiry_month": "12", "expiry_year": str(self.today.year + 2)}
        response = self.http.post(url, data={"card_number": card, "holder": "ICHIRO NISSHO", **month_year})
        if response.status_code >= 500:
            self.tally.fail(f"pay {url}: HTTP {response.status_code}: {response.text[:300]}")
        code = re.search(r'data-code="([A-Z_]+)"', response.text)
        outcome = f"{code.group(1) if code else 'no code'} {response.status_code}"
        self._note(f"pay {card[-4:]} → {outcome}")
        return outcome

    def jobs(self, *names: str, closing: bool = False) -> str:
        if self.world.near_the_end() and not closing:
            return "too late to start"  # a job process takes seconds: the run would overrun its size
        if not JOB_SLOTS.acquire(timeout=15):
            return "no job slot"
        try:
            result = self.server.run_jobs(*names)
        finally:
            JOB_SLOTS.release()
        outcomes = re.findall(r"^([\w-]+): (ok|failed|skipped) — ", result.stdout, re.MULTILINE)
        failed = [n for n, status in outcomes if status == "failed"]
        if result.returncode != 0 or failed or "Traceback" in result.stderr:
            self.tally.fail(f"jobs run {' '.join(names)}: exit {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}")
        self._note(f"jobs {' '.join(names)} → {result.stdout.strip()!r}")
        return "+".join(sorted({status for _, status in outcomes})) or f"exit {result.returncode}"

    # ---- choosing who acts

    def signer(self, registration: str | None = None) -> str:
        names = [n for n, r in SIGNERS.items() if registration is None or r == registration]
        if registration is None and self.world.withdrawn and self.rng.random() > 0.1:
            names = [n for n in names if SIGNERS[n] != REG3]  # now and then a withdrawn signer tries anyway
        return self.rng.choice(names)

    # ---- the operations (each returns its outcome)

    def op_submit(self) -> str:
        actor = self.signer()
        registration = SIGNERS[actor]
        payment = "CARD" if self.rng.random() < 0.3 else "COUPON"
        serial = self.world.next_serial()
        created = self.call("createApplication", actor, CREATE,
                            {"input": {**ORIGIN, "feePayment": payment, "invoiceNumber": f"MODEL-{self.seed}-{serial}"}})
        if not created.ok:
            return f"create {created.outcome}"
        app = App(created.payload["application"]["id"], registration, payment, "DRAFT")
        with self.world.lock:
            self.world.apps.append(app)
        if self.rng.random() < 0.08:
            return "draft"  # left as a draft: withdrawals meet drafts too
        return self._act(app, "submitApplication", SUBMIT, self.signer(registration))

    def _act(self, app: App, name: str, query: str, actor: str, **extra) -> str:
        answer = self.call(name, actor, query, {"id": app.id, **extra})
        if answer.ok:
            app.state = answer.payload["application"]["state"]
        return answer.outcome

    def op_hold(self) -> str:
        app = self.world.pick_app(self.rng, ("SUBMITTED",))
        if app is None:
            return "nothing to do"
        return self._act(app, "holdApplication", HOLD, STAFF, r=self.rng.choice(["インボイスと品名が一致しません", "確認中"]))

    def op_resubmit(self) -> str:
        app = self.world.pick_app(self.rng, ("ON_HOLD",))
        if app is None:
            return "nothing to do"
        return self._act(app, "submitApplication", SUBMIT, self.signer(app.registration))

    def op_withdraw(self) -> str:
        app = self.world.pick_app(self.rng, ("SUBMITTED", "ON_HOLD", "DRAFT"))
        if app is None:
            return "nothing to do"
        return self._act(app, "withdrawApplication", WITHDRAW, self.signer(app.registration))

    def op_approve(self) -> str:
        app = self.world.pick_app(self.rng, ("SUBMITTED",))
        if app is None:
            return "nothing to do"
        return self._act(app, "approveApplication", APPROVE, STAFF)

    def op_checkout(self) -> str:
        actor = self.signer()
        registration = SIGNERS[actor]
        with self.world.lock:
            approved = [a for a in self.world.apps[-80:] if a.registration == registration and a.payment == "CARD"
                        and a.state == "APPROVED"]
        if not approved:
            return "nothing to do"
        chosen = self.rng.sample(approved, min(len(approved), self.rng.randint(1, 3)))
        added = self.call("addToCardCart", actor, ADD_TO_CART, {"ids": [a.id for a in chosen]})
        if not added.ok:
            return f"cart {added.outcome}"
        key = f"checkout-{self.seed}-{self.world.next_serial()}" if self.rng.random() < 0.3 else None
        started = self.call("startCardCheckout", actor, CHECKOUT, {"key": key})
        if not started.ok:
            return f"checkout {started.outcome}"
        if key and self.rng.random() < 0.3:  # a retry with the key answers the same page
            again = self.call("startCardCheckout", actor, CHECKOUT, {"key": key})
            if again.ok and again.payload["paymentUrl"] != started.payload["paymentUrl"]:
                self.tally.fail(f"startCardCheckout key {key}: a retry answered another page")
        for app in chosen:
            app.state = "IN_CHECKOUT"
        return "checkout ok, " + self._settle(Page(started.payload["paymentUrl"], apps=chosen))

    def _settle(self, page: Page) -> str:
        """Pay a new page at once (a good or a declined card), or leave it open for later."""
        roll = self.rng.random()
        if roll < 0.25:
            with self.world.lock:
                self.world.open_pages.append(page)
            return "left open"
        outcome = self.pay(page.url, DECLINED_CARD if roll < 0.4 else GOOD_CARD)
        page.paid(outcome)
        if outcome.startswith("PAYMENT_DECLINED"):  # the page stays open: another card now, or later
            if self.rng.random() < 0.5:
                retry = self.pay(page.url, GOOD_CARD)
                page.paid(retry)
                return f"{outcome}, then {retry}"
            with self.world.lock:
                self.world.open_pages.append(page)
            return f"{outcome}, left open"
        return outcome

    def op_purchase(self) -> str:
        actor = self.signer()
        registration = SIGNERS[actor]
        method = "CARD" if self.rng.random() < 0.45 else "BANK_TRANSFER"
        lines = [{"productCode": "SINGLE", "quantity": self.rng.randint(1, 4)}]
        if self.world.membership[registration] == "MEMBER" and self.rng.random() < 0.2:
            lines.append({"productCode": "PACK30", "quantity": 1})
        key = f"order-{self.seed}-{self.world.next_serial()}" if self.rng.random() < 0.25 else None
        variables = {"lines": lines, "method": method, "key": key}
        answer = self.call("startCouponPurchase", actor, PURCHASE, variables)
        if "PURCHASE_IN_PROGRESS" in answer.codes and self.rng.random() < 0.4:
            return f"{method} PURCHASE_IN_PROGRESS, then " + self.op_cancel(registration, actor)
        if not answer.ok:
            return f"{method} {answer.outcome}"
        bought = answer.payload["purchase"]
        if key and self.rng.random() < 0.4:  # a retry: the same order, never a second one
            again = self.call("startCouponPurchase", actor, PURCHASE, variables)
            if again.ok and again.payload["purchase"]["id"] != bought["id"]:
                self.tally.fail(f"startCouponPurchase key {key}: a retry made another order")
        order = Order(bought["id"], registration, method, bought["amount"],
                      (bought.get("virtualAccount") or {}).get("accountNumber"), bought["status"], actor)
        with self.world.lock:
            self.world.orders.append(order)
        if method == "BANK_TRANSFER":
            return f"{method} ok"
        return f"{method} ok, " + self._settle(Page(bought["paymentUrl"], order=order))

    def op_pay_later(self) -> str:
        with self.world.lock:
            if not self.world.open_pages:
                return "nothing to do"
            page = self.rng.choice(self.world.open_pages[-10:])
            if self.rng.random() < 0.7:
                self.world.open_pages.remove(page)  # else it stays: a second tab may pay it again
        outcome = self.pay(page.url, DECLINED_CARD if self.rng.random() < 0.15 else GOOD_CARD)
        page.paid(outcome)
        if outcome.startswith("PAYMENT_DECLINED"):
            with self.world.lock:
                if page not in self.world.open_pages:
                    self.world.open_pages.append(page)  # still open for another card
        return outcome

    def op_deposit(self) -> str:
        order = self.world.pick_order(self.rng, method="BANK_TRANSFER")
        if order is None or order.account is None:
            return "nothing to do"
        roll = self.rng.random()
        amount, kind = ((order.amount, "exact") if roll < 0.6 else
                        (max(1, order.amount - self.rng.randint(1, 1210)), "short") if roll < 0.8 else
                        (order.amount + self.rng.randint(1, 5000), "over"))
        deposit = {"accountNumber": order.account, "amount": amount, "depositedOn": self.today.isoformat(),
                   "payerName": "ﾓﾃﾞﾙｼｹﾝ", "depositId": uuid.uuid4().hex[:20] if self.rng.random() < 0.7 else None}
        answer = self.call("recordBankDeposits", STAFF, DEPOSIT, {"deposits": [deposit]})
        return f"{kind} {answer.outcome}"

    def op_reconcile(self) -> str:
        if self.rng.random() < 0.4:
            return "job " + self.jobs("bank-reconciliation")
        order = self.world.pick_order(self.rng, method="BANK_TRANSFER")
        if order is None:
            return "nothing to do"
        answer = self.call("checkPurchasePayment", STAFF, CHECK, {"id": order.id})
        if answer.ok:
            order.state = answer.payload["purchase"]["status"]
        return f"check {answer.outcome}"

    def op_expire(self) -> str:
        return self.jobs("card-session-expiry", "purchase-expiry", "card-notification-redelivery")

    def op_cancel(self, registration: str | None = None, buyer: str | None = None) -> str:
        order = self.world.pick_order(self.rng, registration=registration, buyer=buyer)
        if order is None:
            return "nothing to do"
        actor = order.buyer if self.rng.random() < 0.9 else self.signer(order.registration)  # only the buyer may
        answer = self.call("cancelCouponPurchase", actor, CANCEL, {"id": order.id})
        if answer.ok:
            order.state = answer.payload["purchase"]["status"]
        return f"{order.method} {answer.outcome}"

    def op_adjust(self) -> str:
        registration = REG2 if self.rng.random() < 0.65 else REG3
        coupons = self.rng.randint(1, 3) if self.rng.random() < 0.6 else -self.rng.randint(1, 3)
        answer = self.call("adjustCoupons", STAFF, ADJUST, {"n": registration, "c": coupons})
        return f"{'+' if coupons > 0 else '-'} {answer.outcome}"

    def op_membership(self) -> str:
        registration = REG2 if self.world.withdrawn or self.rng.random() < 0.7 else REG3  # not after 退会
        wanted = "NON_MEMBER" if self.world.membership[registration] == "MEMBER" else "MEMBER"
        answer = self.call("setMembership", STAFF, SET_MEMBERSHIP, {"n": registration, "m": wanted})
        if answer.ok:
            self.world.membership[registration] = answer.payload["registration"]["membership"]
        return answer.outcome

    def op_look(self) -> str:
        if self.rng.random() < 0.5:
            answer = self.call("couponAccount", self.signer(), OWN_ACCOUNT, {})
        else:
            answer = self.call("couponAccount", STAFF, STAFF_ACCOUNT, {"n": self.rng.choice([REG2, REG3])})
        if answer.ok:
            registration = answer.payload["registration"]
            self.world.membership[registration["number"]] = registration["membership"]
            if answer.payload["balance"] < 0 or answer.payload["pending"] < 0:
                self.tally.fail(f"couponAccount {registration['number']}: {answer.payload}")
        return answer.outcome

    def op_leave(self) -> str:
        answer = self.call("withdrawTradeRegistration", STAFF, LEAVE, {"n": REG3})
        if answer.ok:
            self.world.withdrawn = True
        return answer.outcome

    # ---- the loop

    def run(self) -> None:
        kinds, weights = list(OPERATIONS), list(OPERATIONS.values())
        try:
            while self.world.progress() < 1:
                kind = "leave" if self.world.claim_withdrawal() else self.rng.choices(kinds, weights)[0]
                try:
                    outcome = getattr(self, f"op_{kind}")()
                except httpx.HTTPError as exc:  # a hung or dropped request is a finding too
                    self.tally.fail(f"{kind}: {type(exc).__name__}: {exc}")
                    outcome = type(exc).__name__
                self.tally.count(kind, outcome)
                self.world.tick()
        except Exception as exc:  # a bug of the model itself: fail loudly, not silently
            self.tally.fail(f"client {self.index} crashed: {type(exc).__name__}: {exc!r}")
            raise
        finally:
            self.http.close()


JOB_SLOTS = threading.BoundedSemaphore(2)  # at most two `tradecert jobs run` processes at once


# --------------------------------------------------------------------------- after a run


async def settlement_problems(db, expiry_ran_at: dt.datetime) -> list[str]:
    """What must hold once the jobs ran, beyond tests/invariants.py: every charge the gateway
    took reached us; no card payment is open past its time; no order or application waits
    on a closed payment; every deposit was applied, and each either issued its order (the
    only one that did) or is owed back; a registration that left the chamber (退会) keeps
    no bought coupon, which it could neither use nor have refunded."""
    from sqlalchemy import func, select

    from persistence.models import (
        Application,
        BankDeposit,
        CardPayment,
        CouponLot,
        CouponPurchase,
        Refund,
        SandboxGatewaySession,
        TradeRegistration,
    )

    problems = []
    async with db.read() as session:
        charged = (await session.execute(select(SandboxGatewaySession.id, SandboxGatewaySession.charge_id,
                                                SandboxGatewaySession.delivered_at)
                                         .where(SandboxGatewaySession.status == "PAID"))).all()
        applied = set((await session.scalars(select(CardPayment.charge_id).where(CardPayment.charge_id.is_not(None)))).all())
        owed = set((await session.scalars(select(Refund.external_key).where(Refund.external_key.like("charge:%")))).all())
        for session_id, charge_id, delivered in charged:  # applied to its payment, or owed back
            if delivered is None or (charge_id not in applied and f"charge:{charge_id}" not in owed):
                problems.append(f"gateway charge {charge_id} (session {session_id[:12]}…) never reached us "
                                f"(delivered {delivered})")
        for payment_id, expires in (await session.execute(select(CardPayment.id, CardPayment.expires_at).where(
                CardPayment.status == "OPEN", CardPayment.expires_at < expiry_ran_at))).all():
            problems.append(f"card payment {payment_id} still OPEN, expired at {expires}")
        for (payment_id,) in (await session.execute(select(CardPayment.id).where(CardPayment.status == "DECLINED"))).all():
            problems.append(f"card payment {payment_id} closed by a declined card (its page takes another card)")
        for purchase_id, status in (await session.execute(
                select(CouponPurchase.id, CardPayment.status).join(CardPayment, CardPayment.purchase_id == CouponPurchase.id)
                .where(CouponPurchase.status == "AWAITING_PAYMENT", CardPayment.status != "OPEN"))).all():
            problems.append(f"card order {purchase_id} awaits payment, its card payment is {status}")
        for app_id, status in (await session.execute(
                select(Application.id, CardPayment.status).join(CardPayment, CardPayment.id == Application.checkout_payment_id)
                .where(CardPayment.status != "OPEN"))).all():
            problems.append(f"application {app_id} still held by a {status} checkout")
        refunded = set((await session.scalars(select(Refund.external_key).where(Refund.external_key.like("deposit:%")))).all())
        issuing: dict[int, int] = {}
        for deposit_id, outcome, purchase_id, processed in (await session.execute(
                select(BankDeposit.id, BankDeposit.outcome, BankDeposit.purchase_id, BankDeposit.processed_at))).all():
            if processed is None:
                problems.append(f"deposit {deposit_id} never applied")
            elif outcome in ("issued", "issued_over"):
                issuing[purchase_id] = issuing.get(purchase_id, 0) + 1
            if outcome in ("issued_over", "short", "refunded") and f"deposit:{deposit_id}" not in refunded:
                problems.append(f"deposit {deposit_id} ({outcome}) is owed back, but no refund is recorded")
        for purchase_id, status in (await session.execute(select(CouponPurchase.id, CouponPurchase.status).where(
                CouponPurchase.method == "BANK_TRANSFER"))).all():
            if issuing.get(purchase_id, 0) != (1 if status == "ISSUED" else 0):
                problems.append(f"bank order {purchase_id} {status}, issued by {issuing.get(purchase_id, 0)} deposit(s)")
        for number, coupons in (await session.execute(  # bought (a product), not added by the chamber
                select(TradeRegistration.number, func.sum(CouponLot.coupons_left))
                .join(CouponLot, CouponLot.registration_id == TradeRegistration.id)
                .where(TradeRegistration.withdrawn_at.is_not(None), CouponLot.product_code.is_not(None))
                .group_by(TradeRegistration.number).having(func.sum(CouponLot.coupons_left) > 0))).all():
            problems.append(f"registration {number} left the chamber but holds {coupons} bought coupon(s): "
                            "neither usable nor refunded")
    return problems


@dataclass
class ModelReport:
    seed: int
    seconds: float
    counts: Counter
    failures: list[str]
    problems: list[str]
    trace_path: Path

    def table(self) -> str:
        by_kind: dict[str, Counter] = {}
        for (kind, outcome), n in self.counts.items():
            by_kind.setdefault(kind, Counter())[outcome] = n
        lines = [f"seed {self.seed}: {sum(self.counts.values())} operations in {self.seconds:.0f} s"]
        for kind in sorted(by_kind, key=lambda k: -sum(by_kind[k].values())):
            outcomes = ", ".join(f"{o} {n}" for o, n in by_kind[kind].most_common())
            lines.append(f"  {kind:<11} {sum(by_kind[kind].values()):>5}  {outcomes}")
        return "\n".join(lines)


def run_model(seed: int, workdir: Path, *, operations: int | None = None, seconds: float | None = None,
              clients: int = 6, keep_schema: bool = False, say=print) -> ModelReport:
    """Start a server on a fresh schema, run ``clients`` clients until ``operations`` or
    ``seconds`` (whichever comes first), run the jobs once more, and check everything."""
    from persistence.db import Database
    from tests.invariants import money_problems

    assert operations or seconds, "a size: operations or seconds"
    rng = random.Random(seed)
    schema = asyncio.run(create_pg_schema())
    server = ModelServer(workdir, schema)
    tally = Tally()
    say(f"model: seed {seed}, {clients} clients, schema {schema}, server {server.base} (log {server.log_path})")
    try:
        server.start()
        world = World(operations, seconds, withdraw_at=rng.uniform(0.75, 0.95))
        tokens = Tokens()
        workers = [Client(i, seed, server, world, tally, tokens) for i in range(clients)]
        for actor in [*SIGNERS, STAFF]:  # logins (argon2) and a stock of coupons before the clock starts
            workers[0]._token(actor)
        for registration in (REG2, REG3):
            workers[0].call("adjustCoupons", STAFF, ADJUST, {"n": registration, "c": 6})  # then mostly bought ones
        world.started = time.monotonic()
        threads = [threading.Thread(target=c.run, name=f"model-client-{c.index}") for c in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - world.started
        closing = Client(clients, seed, server, world, tally, tokens)
        expiry_ran_at = dt.datetime.now(dt.UTC)
        tally.count("final jobs", closing.jobs("bank-reconciliation", "card-notification-redelivery",
                                               "card-session-expiry", "purchase-expiry", closing=True))
        trace = sorted(line for c in [*workers, closing] for line in c.trace)
        trace_path = workdir / "trace.txt"
        trace_path.write_text("\n".join(trace) + "\n", encoding="utf-8")

        async def check():
            db = Database(PG_BASE, schema=schema)
            try:
                return await money_problems(db) + await settlement_problems(db, expiry_ran_at)
            finally:
                await db.dispose()

        problems = asyncio.run(check())
    finally:
        server.stop()
        if not keep_schema:
            asyncio.run(drop_pg_schema(schema))
    for error in logged_errors(server.log()):
        tally.fail(f"server logged: {error}")
    return ModelReport(seed, elapsed, tally.counts, tally.failures, problems, trace_path)


def describe_failure(report: ModelReport) -> str:
    return "\n".join([
        report.table(),
        f"{len(report.failures)} failed answer(s), {len(report.problems)} invariant problem(s) — seed {report.seed}, "
        f"trace {report.trace_path}",
        *("  answer: " + f for f in report.failures[:30]),
        *("  invariant: " + p for p in report.problems[:30]),
    ])


def test_random_interleavings_keep_the_money_whole(tmp_path):
    """About a minute on two cores: six clients, two workers, one seed."""
    require_postgres()
    seed = int(os.environ.get("TRADECERT_MODEL_SEED") or random.SystemRandom().randrange(10**6))
    seconds = float(os.environ.get("TRADECERT_MODEL_SECONDS") or 40)
    report = run_model(seed, tmp_path, seconds=seconds)
    print(report.table())
    assert not report.failures and not report.problems, describe_failure(report)
    done = sum(n for (_kind, outcome), n in report.counts.items() if re.search(r"\bok\b|PAID", outcome))
    assert done > 50, report.table()  # the model did something
