"""Webhooks over HTTP on SQLite and PostgreSQL: a real receiver on loopback (allowed through
TRADECERT_WEBHOOK_ALLOW_HOSTS) gets signed events once the delivery job runs; failures are
retried with backoff until a 2xx or 24 hours; internal destinations are refused without the
setting, at registration and at delivery; events exist exactly when their change does."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import func, select

from persistence.models import WebhookDelivery as DeliveryRow
from tests.applications.test_applications import act, create, give_coupons
from tests.coupons.test_purchases import CHECK, deposit, start
from tests.identity.test_subaccounts import as_user

ALL_EVENTS = ["APPLICATION_SUBMITTED", "APPLICATION_ON_HOLD", "APPLICATION_APPROVED", "APPLICATION_ISSUED",
              "COUPON_PURCHASE_ISSUED", "COUPON_PURCHASE_CANCELLED"]
CREATE_ENDPOINT = """mutation($url: String!, $events: [WebhookEvent!]!) {
  createWebhookEndpoint(input: {url: $url, events: $events}) {
    endpoint { id url events createdAt disabledAt } secret errors { code field message } } }"""
DELIVERIES = """query($id: ID!, $first: Int, $after: String) { webhookDeliveries(endpointId: $id, first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { node { id event status attempts lastStatusCode lastError createdAt deliveredAt nextAttemptAt } } } }"""
REDELIVER = """mutation($id: ID!) { redeliverWebhook(input: {deliveryId: $id}) {
  delivery { id event status attempts } errors { code field } } }"""
DELETE = """mutation($id: ID!) { deleteWebhookEndpoint(input: {endpointId: $id}) { endpoint { id disabledAt } errors { code field } } }"""
HOLD = """mutation($id: ID!) { holdApplication(input: {applicationId: $id, reason: "品名の誤り"}) { errors { code } } }"""


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every request and answers the queued
    statuses in turn, then 200."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived: list[float] = []  # time.monotonic() of each request, in the order received
        self.answers: list[int] = []
        self.always: int | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.arrived.append(time.monotonic())
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.always or (receiver.answers.pop(0) if receiver.answers else 200)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/tradecert"

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _headers, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def allow_loopback(live, allowed: bool = True) -> None:
    """TRADECERT_WEBHOOK_ALLOW_HOSTS=127.0.0.1 for the running server and its jobs (or not)."""
    live.services.settings = live.services.settings.with_(
        webhook_allow_hosts=frozenset({"127.0.0.1"}) if allowed else frozenset())


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does (docs/api.md): recompute the HMAC over "<t>.<body>"."""
    parts = dict(item.split("=", 1) for item in headers["tradecert-signature"].split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def register(live, headers, url, events=ALL_EVENTS) -> dict:
    return live.graphql(CREATE_ENDPOINT, {"url": url, "events": events}, headers=headers).json()["data"]["createWebhookEndpoint"]


def deliveries(live, headers, endpoint_id, first=None) -> dict:
    return live.graphql(DELIVERIES, {"id": endpoint_id, "first": first}, headers=headers).json()["data"]["webhookDeliveries"]


def nodes(connection: dict) -> list[dict]:
    return [edge["node"] for edge in connection["edges"]]


async def test_a_loopback_receiver_gets_each_change_signed_once_the_job_runs(live, receiver):
    allow_loopback(live)
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    created = register(live, signer, receiver.url)
    assert created["errors"] == [] and created["secret"].startswith("whsec_")
    endpoint = created["endpoint"]
    assert (endpoint["url"], endpoint["events"], endpoint["disabledAt"]) == (receiver.url, ALL_EVENTS, None)
    give_coupons(live, 2)
    app_id = create(live, signer)["application"]["id"]
    assert act(live, signer, "submitApplication", app_id)["errors"] == []
    assert live.graphql(HOLD, {"id": app_id}, headers=staff).json()["data"]["holdApplication"]["errors"] == []
    assert act(live, signer, "submitApplication", app_id)["errors"] == []
    issued = act(live, staff, "approveApplication", app_id)["application"]
    assert issued["state"] == "ISSUED"
    assert receiver.received == []  # nothing is sent from a request

    outcome = await live.run_job("webhook-delivery")
    assert (outcome.status, outcome.message) == ("ok", "5 delivered")
    assert len(receiver.received) == 5
    for headers, body in receiver.received:
        assert verify(created["secret"], headers, body)
        assert headers["content-type"].startswith("application/json")
        assert int(headers["tradecert-signature"].split(",")[0].removeprefix("t=")) == int(live.clock.now().timestamp())
    bodies = sorted(receiver.bodies(), key=lambda b: ALL_EVENTS.index(b["event"].upper().replace(".", "_")))
    assert [(b["event"], b["data"]["state"]) for b in bodies] == [
        ("application.submitted", "SUBMITTED"), ("application.submitted", "SUBMITTED"),
        ("application.on_hold", "ON_HOLD"), ("application.approved", "APPROVED"), ("application.issued", "ISSUED")]
    for b in bodies:
        assert set(b) == {"id", "event", "createdAt", "data"} and b["id"].startswith("evt_")
        assert b["createdAt"] == "2026-04-01T10:00:00+09:00"
        assert b["data"]["id"] == app_id and b["data"]["receiptNumber"] == issued["receiptNumber"]
    assert bodies[-1]["data"]["certificateNumber"] == issued["certificateNumber"]
    assert len({b["id"] for b in bodies}) == 5  # one event id per change
    # the object the event names is the API's: node(id:) finds it
    seen = live.graphql("query($id: ID!) { node(id: $id) { id } }", {"id": app_id}, headers=signer).json()["data"]["node"]
    assert seen == {"id": app_id}

    log = deliveries(live, signer, endpoint["id"])
    assert log["totalCount"] == 5
    assert {(n["status"], n["attempts"], n["lastStatusCode"]) for n in nodes(log)} == {("DELIVERED", 1, 200)}
    assert all(n["deliveredAt"] == "2026-04-01T10:00:00+09:00" and n["nextAttemptAt"] is None for n in nodes(log))
    ids = [n["id"] for n in nodes(log)]
    paged = deliveries(live, signer, endpoint["id"], first=2)
    assert [n["id"] for n in nodes(paged)] == ids[:2] and paged["pageInfo"]["hasNextPage"]  # newest first
    assert (await live.run_job("webhook-delivery")).message == "nothing to deliver"
    assert len(receiver.received) == 5


async def test_a_failing_receiver_is_retried_with_backoff_until_it_answers_and_fails_after_24_hours(live, receiver, migrated):
    _target, db = migrated
    allow_loopback(live)
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    endpoint = register(live, signer, receiver.url, ["APPLICATION_SUBMITTED", "APPLICATION_ON_HOLD"])["endpoint"]
    give_coupons(live, 1)
    app_id = create(live, signer)["application"]["id"]
    act(live, signer, "submitApplication", app_id)
    receiver.answers = [500, 500]

    def only() -> dict:
        [delivery] = nodes(deliveries(live, signer, endpoint["id"]))
        return delivery

    assert (await live.run_job("webhook-delivery")).message == "1 retrying"
    first = only()
    assert (first["status"], first["attempts"], first["lastStatusCode"], first["lastError"]) == ("RETRYING", 1, 500, "HTTP 500")
    assert first["nextAttemptAt"] == "2026-04-01T10:01:00+09:00"  # 1 minute
    assert (await live.run_job("webhook-delivery")).message == "nothing to deliver"  # not due yet
    live.clock.advance(dt.timedelta(minutes=1))
    await live.run_job("webhook-delivery")
    second = only()
    assert (second["status"], second["attempts"], second["nextAttemptAt"]) == ("RETRYING", 2, "2026-04-01T10:03:00+09:00")
    live.clock.advance(dt.timedelta(minutes=2))
    await live.run_job("webhook-delivery")
    third = only()
    assert (third["status"], third["attempts"], third["lastStatusCode"], third["lastError"]) == ("DELIVERED", 3, 200, None)
    assert len(receiver.received) == 3 and len({body for _h, body in receiver.received}) == 1  # the same body each time

    # a receiver that never answers 2xx: retried, at most an hour apart, until 24 hours after the event
    receiver.always = 503
    assert live.graphql(HOLD, {"id": app_id}, headers=staff).json()["data"]["holdApplication"]["errors"] == []
    created_at = live.clock.now()
    for _ in range(60):  # read from the database: the signer's session would end in the hours this covers
        await live.run_job("webhook-delivery")
        async with db.read() as session:
            row = await session.scalar(select(DeliveryRow).order_by(DeliveryRow.id.desc()).limit(1))
        if row.status == "FAILED":
            break
        assert row.status == "RETRYING" and row.next_attempt_at - live.clock.now() <= dt.timedelta(hours=1)
        live.clock.set(row.next_attempt_at)
    held = nodes(deliveries(live, as_user(live, "signer-2701000002"), endpoint["id"]))[0]
    assert held["status"] == "FAILED" and held["nextAttemptAt"] is None and held["lastStatusCode"] == 503
    assert live.clock.now() == created_at + dt.timedelta(hours=24)  # the last try is at the end of the period
    # tries at 0, 1, 3, 7, 15 and 31 minutes (waits doubling), then hourly from 63 minutes to 23 h 3 min (23),
    # and the last at 24 h
    assert held["attempts"] == 6 + 23 + 1
    assert (await live.run_job("webhook-delivery")).message == "nothing to deliver"


async def test_internal_destinations_are_refused_without_the_allow_setting(live, receiver):
    signer = as_user(live, "signer-2701000002")
    for url in ("https://127.0.0.1/hook", "https://10.0.0.1/hook", "https://169.254.169.254/latest/meta-data",
                "https://[::1]/hook", "https://localhost/hook", "https://[::ffff:10.0.0.1]/hook", receiver.url,
                "http://example.com/hook", "https://user:pw@example.com/hook", "https://example.com/" + "x" * 2100):
        refused = register(live, signer, url)
        assert refused["endpoint"] is None and refused["secret"] is None, url
        assert [(e["code"], e["field"]) for e in refused["errors"]] == [("INVALID", ["input", "url"])], url
    english = live.graphql(CREATE_ENDPOINT, {"url": "https://10.0.0.1/", "events": ALL_EVENTS},
                           headers={**signer, "Accept-Language": "en"}).json()["data"]["createWebhookEndpoint"]
    assert "private, loopback, link-local" in english["errors"][0]["message"]
    assert live.graphql("{ webhookEndpoints { id } }", headers=signer).json()["data"]["webhookEndpoints"] == []

    # registered while allowed; the setting is gone by the time of delivery: nothing is sent
    allow_loopback(live)
    endpoint = register(live, signer, receiver.url)["endpoint"]
    give_coupons(live, 1)
    act(live, signer, "submitApplication", create(live, signer)["application"]["id"])
    allow_loopback(live, False)
    assert (await live.run_job("webhook-delivery")).message == "1 failed"
    assert receiver.received == []
    [failed] = nodes(deliveries(live, signer, endpoint["id"]))
    assert (failed["status"], failed["attempts"], failed["lastStatusCode"], failed["lastError"]) == (
        "FAILED", 0, None, "destination not allowed")


async def test_a_refused_change_writes_no_event(live, migrated, receiver):
    _target, db = migrated
    allow_loopback(live)
    signer = as_user(live, "signer-2701000002")
    endpoint = register(live, signer, receiver.url)["endpoint"]
    app_id = create(live, signer)["application"]["id"]
    refused = act(live, signer, "submitApplication", app_id)  # no coupons
    assert [e["code"] for e in refused["errors"]] == ["INSUFFICIENT_COUPONS"]
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(DeliveryRow)) == 0
    assert deliveries(live, signer, endpoint["id"])["totalCount"] == 0
    # and an event no endpoint subscribed to writes nothing either
    only_issued = register(live, signer, receiver.url, ["APPLICATION_ISSUED"])["endpoint"]
    give_coupons(live, 1)
    act(live, signer, "submitApplication", app_id)
    assert deliveries(live, signer, only_issued["id"])["totalCount"] == 0
    assert deliveries(live, signer, endpoint["id"])["totalCount"] == 1


async def test_coupon_orders_report_issue_and_cancellation(live, receiver):
    allow_loopback(live)
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    endpoint = register(live, signer, receiver.url, ["COUPON_PURCHASE_ISSUED", "COUPON_PURCHASE_CANCELLED"])["endpoint"]
    paid = start(live, signer)["purchase"]  # paid exactly, applied by the nightly reconciliation
    deposit(live, staff, paid["virtualAccount"]["accountNumber"], 71390, "INQ-W1")
    assert (await live.run_job("bank-reconciliation")).message == "issued: 1"
    short = start(live, signer, lines=[{"productCode": "PACK30", "quantity": 1}])["purchase"]  # paid short, checked by hand
    deposit(live, staff, short["virtualAccount"]["accountNumber"], 35000, "INQ-W2")
    checked = live.graphql(CHECK, {"id": short["id"]}, headers=staff).json()["data"]["checkPurchasePayment"]["purchase"]
    assert checked["status"] == "CANCELLED"
    mine = start(live, signer, lines=[{"productCode": "SINGLE", "quantity": 1}])["purchase"]  # cancelled by the buyer
    cancel = """mutation($id: ID!) { cancelCouponPurchase(input: {purchaseId: $id}) { errors { code } } }"""
    assert live.graphql(cancel, {"id": mine["id"]}, headers=signer).json()["data"]["cancelCouponPurchase"]["errors"] == []
    assert (await live.run_job("webhook-delivery")).message == "3 delivered"
    got = {(b["event"], b["data"]["id"], b["data"]["state"], b["data"]["orderNumber"]) for b in receiver.bodies()}
    assert got == {("coupon_purchase.issued", paid["id"], "ISSUED", paid["orderNumber"]),
                   ("coupon_purchase.cancelled", short["id"], "CANCELLED", short["orderNumber"]),
                   ("coupon_purchase.cancelled", mine["id"], "CANCELLED", mine["orderNumber"])}
    assert deliveries(live, signer, endpoint["id"])["totalCount"] == 3


async def test_redelivery_sends_the_same_body_newly_signed_and_others_see_nothing(live, receiver):
    allow_loopback(live)
    signer = as_user(live, "signer-2701000002")
    created = register(live, signer, receiver.url, ["APPLICATION_SUBMITTED"])
    endpoint = created["endpoint"]
    give_coupons(live, 1)
    act(live, signer, "submitApplication", create(live, signer)["application"]["id"])
    await live.run_job("webhook-delivery")
    [first] = nodes(deliveries(live, signer, endpoint["id"]))
    live.clock.advance(dt.timedelta(minutes=5))
    again = live.graphql(REDELIVER, {"id": first["id"]}, headers=signer).json()["data"]["redeliverWebhook"]
    assert again["errors"] == [] and (again["delivery"]["status"], again["delivery"]["attempts"]) == ("PENDING", 0)
    assert again["delivery"]["id"] != first["id"]
    assert (await live.run_job("webhook-delivery")).message == "1 delivered"
    (h1, b1), (h2, b2) = receiver.received
    assert b1 == b2 and h1["tradecert-signature"] != h2["tradecert-signature"]
    assert verify(created["secret"], h2, b2)
    assert [n["id"] for n in nodes(deliveries(live, signer, endpoint["id"]))] == [again["delivery"]["id"], first["id"]]

    # another registration's signer: none of it exists; the admin and staff: not allowed
    other = as_user(live, "signer-2701000003")
    assert live.graphql("{ webhookEndpoints { id } }", headers=other).json()["data"]["webhookEndpoints"] == []
    refused = live.graphql(DELIVERIES, {"id": endpoint["id"]}, headers=other).json()
    assert refused["data"] is None and refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    for mutation, variables, name in ((REDELIVER, {"id": first["id"]}, "redeliverWebhook"),
                                      (DELETE, {"id": endpoint["id"]}, "deleteWebhookEndpoint")):
        answer = live.graphql(mutation, variables, headers=other).json()["data"][name]
        assert [e["code"] for e in answer["errors"]] == ["NOT_FOUND"]
    node = "query($id: ID!) { node(id: $id) { id } }"
    assert live.graphql(node, {"id": endpoint["id"]}, headers=other).json()["data"]["node"] is None
    assert live.graphql(node, {"id": first["id"]}, headers=other).json()["data"]["node"] is None
    assert live.graphql(node, {"id": first["id"]}, headers=signer).json()["data"]["node"] == {"id": first["id"]}
    for user in ("admin-2701000002", "staff-2701"):
        answer = live.graphql("{ webhookEndpoints { id } }", headers=as_user(live, user)).json()
        assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN", user


async def test_deleting_an_endpoint_ends_its_pending_deliveries(live, receiver):
    allow_loopback(live)
    signer = as_user(live, "signer-2701000002")
    endpoint = register(live, signer, receiver.url, ["APPLICATION_SUBMITTED"])["endpoint"]
    give_coupons(live, 2)
    act(live, signer, "submitApplication", create(live, signer)["application"]["id"])
    deleted = live.graphql(DELETE, {"id": endpoint["id"]}, headers=signer).json()["data"]["deleteWebhookEndpoint"]
    assert deleted["errors"] == [] and deleted["endpoint"]["disabledAt"] == "2026-04-01T10:00:00+09:00"
    act(live, signer, "submitApplication", create(live, signer, invoiceNumber="INV-2")["application"]["id"])
    assert (await live.run_job("webhook-delivery")).message == "nothing to deliver"
    assert receiver.received == []
    [ended] = nodes(deliveries(live, signer, endpoint["id"]))  # the second submission queued nothing
    assert (ended["status"], ended["lastError"]) == ("FAILED", "endpoint deleted")
    again = live.graphql(DELETE, {"id": endpoint["id"]}, headers=signer).json()["data"]["deleteWebhookEndpoint"]
    assert [e["code"] for e in again["errors"]] == ["INVALID_STATE"]
    redone = live.graphql(REDELIVER, {"id": ended["id"]}, headers=signer).json()["data"]["redeliverWebhook"]
    assert [e["code"] for e in redone["errors"]] == ["INVALID_STATE"]
    listed = live.graphql("{ webhookEndpoints { id disabledAt } }", headers=signer).json()["data"]["webhookEndpoints"]
    assert listed == [{"id": endpoint["id"], "disabledAt": "2026-04-01T10:00:00+09:00"}]


def test_an_endpoint_needs_events_and_the_registration_has_at_most_ten(live, receiver):
    allow_loopback(live)
    signer = as_user(live, "signer-2701000002")
    none = register(live, signer, receiver.url, [])
    assert [(e["code"], e["field"]) for e in none["errors"]] == [("REQUIRED", ["input", "events"])]
    for _ in range(10):
        assert register(live, signer, receiver.url)["errors"] == []
    eleventh = register(live, signer, receiver.url)
    assert [(e["code"], e["field"]) for e in eleventh["errors"]] == [("TOO_MANY_ITEMS", ["input", "url"])]
