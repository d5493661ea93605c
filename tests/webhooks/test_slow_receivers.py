"""A receiver that answers one byte at a time, on SQLite and PostgreSQL: an attempt has one
deadline for the whole exchange (not per read), so a dripping receiver costs one failed
attempt — recorded RETRYING, "timed out" — and the other endpoints' deliveries of the same
run go out. A run stops starting attempts once its time is spent and gives back what it did
not start, so a run always ends well inside its rows' two-minute lease."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from persistence.models import WebhookDelivery as DeliveryRow
from resolvers.webhooks import delivery
from tests.applications.test_applications import act, create, give_coupons
from tests.identity.test_subaccounts import as_user
from tests.webhooks.test_webhooks_api import allow_loopback, deliveries, nodes, register
from tradecert.composition import build_services

SUBMITTED = ["APPLICATION_SUBMITTED"]
GIVE_UP_AFTER = 60.0  # seconds: the dripping receiver then hangs up, so a broken deadline fails the test, not hangs it


class DrippingReceiver:
    """A raw socket server on 127.0.0.1 that reads the request and then writes its answer one
    byte per second — "HTTP/1.1 200 OK\\r\\n", then header bytes — without ever finishing it."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.stopping = threading.Event()
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/hooks/slow"

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed: the test is over
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                request += chunk
            self.requests.append(request)
            answer = b"HTTP/1.1 200 OK\r\n" + b"X-Drip: " + b"." * 1000
            started = time.monotonic()
            for byte in answer:
                if self.stopping.wait(1.0) or time.monotonic() - started > GIVE_UP_AFTER:
                    return
                conn.sendall(bytes([byte]))  # raises once the client has hung up

    def close(self) -> None:
        self.stopping.set()
        self.listener.close()


@pytest.fixture
def dripping() -> Iterator[DrippingReceiver]:
    found = DrippingReceiver()
    try:
        yield found
    finally:
        found.close()


async def test_a_dripping_receiver_costs_one_timed_out_attempt_and_the_others_are_delivered(live, receiver, dripping):
    allow_loopback(live)
    signer = as_user(live, "signer-2701000002")
    slow = register(live, signer, dripping.url, SUBMITTED)["endpoint"]
    fast = register(live, signer, receiver.url, SUBMITTED)["endpoint"]
    give_coupons(live, 1)
    assert act(live, signer, "submitApplication", create(live, signer)["application"]["id"])["errors"] == []

    outcome = await live.run_job("webhook-delivery")
    assert (outcome.status, outcome.message) == ("ok", "1 delivered, 1 retrying")
    assert len(dripping.requests) == 1 and len(receiver.received) == 1  # both were sent, in the same run
    [stuck] = nodes(deliveries(live, signer, slow["id"]))
    assert (stuck["status"], stuck["attempts"], stuck["lastStatusCode"]) == ("RETRYING", 1, None)
    assert "timed out" in stuck["lastError"]
    assert stuck["nextAttemptAt"] == "2026-04-01T10:01:00+09:00"  # an ordinary failure: tried again in a minute
    [sent] = nodes(deliveries(live, signer, fast["id"]))
    assert (sent["status"], sent["attempts"], sent["lastStatusCode"]) == ("DELIVERED", 1, 200)


async def test_a_run_whose_time_is_spent_gives_back_what_it_did_not_start(live, migrated, receiver):
    _target, db = migrated
    allow_loopback(live)
    signer = as_user(live, "signer-2701000002")
    endpoint = register(live, signer, receiver.url, SUBMITTED)["endpoint"]
    give_coupons(live, 2)
    for invoice in ("INV-1", "INV-2"):
        assert act(live, signer, "submitApplication",
                   create(live, signer, invoiceNumber=invoice)["application"]["id"])["errors"] == []
    services = build_services(settings=live.services.settings, db=db, rules=live.services.rules, clock=live.clock)

    assert await delivery.deliver_due(services, budget=0.0) == "2 left for the next run"
    assert receiver.received == []
    async with db.read() as session:
        rows = (await session.scalars(select(DeliveryRow))).all()
    assert [(r.status, r.attempts, r.lease_holder, r.leased_until) for r in rows] == [("PENDING", 0, None, None)] * 2

    # free at once: the next run (same instant) sends them
    assert (await live.run_job("webhook-delivery")).message == "2 delivered"
    assert len(receiver.received) == 2
    assert {n["status"] for n in nodes(deliveries(live, signer, endpoint["id"]))} == {"DELIVERED"}


class SilentReceiver:
    """A raw socket server on 127.0.0.1 that accepts every connection, reads the request and
    never answers (a receiver that hangs): each attempt to it costs the whole attempt deadline."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.stopping = threading.Event()
        self.requests = 0
        self.holding = 0  # requests held open now
        self.most_at_once = 0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/hooks/silent"

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed: the test is over
                return
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        held = 0
        with conn, contextlib.suppress(OSError):
            conn.settimeout(1.0)
            seen = b""
            while not self.stopping.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:  # the sender hung up (its deadline)
                    break
                seen += chunk
                if b"\r\n\r\n" in seen:
                    with self.lock:
                        self.requests += 1
                        self.holding += 1
                        held += 1
                        self.most_at_once = max(self.most_at_once, self.holding)
                    seen = b""  # count each request once; answer nothing
        with self.lock:
            self.holding -= held

    def close(self) -> None:
        self.stopping.set()
        self.listener.close()


@pytest.fixture
def silent() -> Iterator[SilentReceiver]:
    found = SilentReceiver()
    try:
        yield found
    finally:
        found.close()


REDELIVER_MANY = "mutation {{ {} }}"


def redeliver_many(live, headers, delivery_id: str, n: int) -> list[dict]:
    """``n`` redeliverWebhook calls as aliases of one request (30 at most, like a client would)."""
    fields = " ".join(f'r{i}: redeliverWebhook(input: {{deliveryId: "{delivery_id}"}}) {{ delivery {{ id }} errors {{ code }} }}'
                      for i in range(n))
    data = live.graphql(REDELIVER_MANY.format(fields), headers=headers).json()["data"]
    return [data[f"r{i}"] for i in range(n)]


async def test_a_hanging_receiver_with_100_redeliveries_delays_another_registrations_event_by_under_10_s(live, receiver,
                                                                                                        silent):
    allow_loopback(live)
    signer = as_user(live, "signer-2701000002")
    stuck = register(live, signer, silent.url, SUBMITTED)["endpoint"]
    give_coupons(live, 1)
    assert act(live, signer, "submitApplication", create(live, signer)["application"]["id"])["errors"] == []
    [original] = nodes(deliveries(live, signer, stuck["id"]))
    queued = 0
    for batch in (30, 20, None, 30, 20):  # 100 redeliveries, in two hours (the redelivery limit is per hour)
        if batch is None:
            live.clock.advance(dt.timedelta(hours=1))
            signer = as_user(live, "signer-2701000002")
            continue
        answers = redeliver_many(live, signer, original["id"], batch)
        assert all(a["errors"] == [] for a in answers), answers
        queued += batch
    assert queued == 100 and deliveries(live, signer, stuck["id"])["totalCount"] == 101

    other = as_user(live, "signer-2701000003")
    fresh = register(live, other, receiver.url, SUBMITTED)["endpoint"]
    give_coupons(live, 1, registration="2701000003")
    assert act(live, other, "submitApplication", create(live, other)["application"]["id"])["errors"] == []
    created = time.monotonic()
    delay = None
    while delay is None and time.monotonic() - created < 45:  # runs as the scheduler would start them, one after another
        await live.run_job("webhook-delivery")
        if receiver.received:
            delay = receiver.arrived[0] - created
    print(f"another registration's event arrived {delay} s after it was queued; "
          f"{silent.requests} attempts to the hanging receiver meanwhile")
    assert delay is not None and delay < 10.0
    assert silent.most_at_once == 4  # webhook_in_flight_per_endpoint: the hanging endpoint never had more
    [sent] = nodes(deliveries(live, other, fresh["id"]))
    assert sent["status"] == "DELIVERED"


async def test_ten_hanging_endpoints_of_one_registration_delay_another_registrations_event_by_under_10_s(live, receiver,
                                                                                                         silent):
    """webhook_endpoints_per_registration (10) endpoints that all hang: each holds its own
    in-flight slots, and none of them makes another registration's fresh event wait for an
    attempt's 10 s deadline (the run had 8 requests in flight in all, so the 9th endpoint in
    turn waited for a hanging one to time out)."""
    allow_loopback(live)
    signer = as_user(live, "signer-2701000002")
    hanging = [register(live, signer, f"{silent.url}/{i}", SUBMITTED)["endpoint"] for i in range(10)]
    assert all(endpoint is not None for endpoint in hanging)
    give_coupons(live, 1)
    assert act(live, signer, "submitApplication", create(live, signer)["application"]["id"])["errors"] == []

    other = as_user(live, "signer-2701000003")
    register(live, other, receiver.url, SUBMITTED)
    give_coupons(live, 1, registration="2701000003")
    assert act(live, other, "submitApplication", create(live, other)["application"]["id"])["errors"] == []
    created = time.monotonic()
    outcome = await live.run_job("webhook-delivery")
    assert receiver.received, outcome.message
    delay = receiver.arrived[0] - created
    print(f"another registration's event arrived {delay:.2f} s after it was queued ({outcome.message})")
    assert delay < 10.0
    assert silent.requests == 10  # every hanging endpoint was tried in the same run


async def test_two_hosts_runs_at_once_keep_the_in_flight_limit_and_send_each_delivery_once(live, migrated, receiver,
                                                                                           silent):
    """Two job hosts (each its own engine and pool) run ``webhook-delivery`` at the same time:
    the hanging endpoint never has more than webhook_in_flight_per_endpoint (4) requests open
    over both, and each delivery to the healthy endpoint arrives exactly once."""
    target, _db = migrated
    allow_loopback(live)
    signer = as_user(live, "signer-2701000002")
    stuck = register(live, signer, silent.url, SUBMITTED)["endpoint"]
    register(live, signer, receiver.url, SUBMITTED)
    give_coupons(live, 6)
    for n in range(6):
        assert act(live, signer, "submitApplication",
                   create(live, signer, invoiceNumber=f"INV-{n}")["application"]["id"])["errors"] == []
    first = nodes(deliveries(live, signer, stuck["id"]))[0]
    assert all(a["errors"] == [] for a in redeliver_many(live, signer, first["id"], 20))

    hosts = [target.database(), target.database()]
    try:
        runs = [build_services(settings=live.services.settings, db=host, rules=live.services.rules, clock=live.clock)
                for host in hosts]
        outcomes = await asyncio.gather(*(delivery.deliver_due(services, budget=12.0) for services in runs))
    finally:
        for host in hosts:
            await host.dispose()
    print(f"two hosts: {outcomes}; {silent.requests} attempts to the hanging receiver, at most {silent.most_at_once} at once")
    assert 1 <= silent.most_at_once <= 4
    ids = [headers["webhook-id"] for headers, _body in receiver.received]
    assert len(ids) == 6 and len(set(ids)) == 6
