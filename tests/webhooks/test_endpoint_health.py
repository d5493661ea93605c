"""Endpoints that keep failing, and redelivery limits, over HTTP on SQLite and PostgreSQL.

An answer 410 Gone disables an endpoint at once (Standard Webhooks); every attempt failing
for ``webhook_disable_after_days`` (5) disables it too. Disabled: its open deliveries end
FAILED ("endpoint disabled"), new events are logged FAILED and not sent, redelivery is
refused, and the signer who registered it gets a mail in Japanese and English;
``enableWebhookEndpoint`` resumes it. ``redeliverWebhook`` counts against
``webhook_redeliveries_per_hour`` per registration, aliases included."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from persistence.models import WebhookEndpoint
from rules.limits import limit
from tests.applications.test_applications import act, create, give_coupons
from tests.identity.test_subaccounts import as_user
from tests.webhooks.test_webhooks_api import REDELIVER, allow_loopback, deliveries, nodes, register

SUBMITTED = ["APPLICATION_SUBMITTED"]
ENDPOINTS = "{ webhookEndpoints { id disabledAt failingSince suspendedAt suspendedReason } }"
ENABLE = """mutation($id: ID!) { enableWebhookEndpoint(input: {endpointId: $id}) {
  endpoint { id suspendedAt suspendedReason failingSince } errors { code field message } } }"""
REDELIVER_WORDS = """mutation($id: ID!) { redeliverWebhook(input: {deliveryId: $id}) {
  delivery { id } errors { code field message } } }"""
DELETE = """mutation($id: ID!) { deleteWebhookEndpoint(input: {endpointId: $id}) { errors { code } } }"""


def endpoint_state(live, headers) -> dict:
    [found] = live.graphql(ENDPOINTS, headers=headers).json()["data"]["webhookEndpoints"]
    return found


def redeliver(live, headers, delivery_id: str, language: str = "ja") -> dict:
    return live.graphql(REDELIVER, {"id": delivery_id},
                        headers={**headers, "Accept-Language": language}).json()["data"]["redeliverWebhook"]


def submit(live, signer, invoice: str) -> None:
    give_coupons(live, 1)
    assert act(live, signer, "submitApplication", create(live, signer, invoiceNumber=invoice)["application"]["id"])[
        "errors"] == []


async def test_a_410_disables_the_endpoint_at_once_mails_its_registrant_and_enabling_resumes_it(live, receiver):
    allow_loopback(live)
    signer = as_user(live, "signer-2701000002")
    endpoint = register(live, signer, receiver.url, SUBMITTED)["endpoint"]
    submit(live, signer, "INV-1")
    receiver.answers = [500, 410]
    assert (await live.run_job("webhook-delivery")).message == "1 retrying"  # tried again in a minute
    submit(live, signer, "INV-2")

    outcome = await live.run_job("webhook-delivery")  # INV-2's event is told "gone"; INV-1's retry is not due
    assert outcome.message == "1 failed" and len(receiver.received) == 2
    state = endpoint_state(live, signer)
    assert (state["disabledAt"], state["suspendedAt"], state["failingSince"]) == (
        None, "2026-04-01T10:00:00+09:00", "2026-04-01T10:00:00+09:00")
    assert "410" in state["suspendedReason"]
    log = nodes(deliveries(live, signer, endpoint["id"]))
    assert sorted((n["status"], n["lastStatusCode"], n["lastError"]) for n in log) == [
        ("FAILED", 410, "HTTP 410"), ("FAILED", 500, "endpoint disabled")]  # the open retry ends too

    assert (await live.run_job("mail-delivery")).status == "ok"
    [mail] = [m for m in live.smtp.messages if "Webhook" in m["subject"]]
    text = mail.get_content()
    assert "Webhook endpoint disabled" in mail["subject"] and receiver.url in text
    assert "に停止しました" in text and "HTTP 410 (Gone) と応答しました" in text and "We stopped sending" in text and "410" in text

    # disabled: a new event is logged FAILED and not sent; redelivery is refused
    submit(live, signer, "INV-3")
    assert (await live.run_job("webhook-delivery")).message == "nothing to deliver"
    assert len(receiver.received) == 2
    newest = nodes(deliveries(live, signer, endpoint["id"]))[0]
    assert (newest["status"], newest["attempts"], newest["lastError"]) == ("FAILED", 0, "endpoint disabled")
    refused = redeliver(live, signer, newest["id"], "en")
    assert [(e["code"], e["field"]) for e in refused["errors"]] == [("INVALID_STATE", ["input", "deliveryId"])]

    # another registration's signer cannot enable it; its own signer can, and it is sent to again
    other = live.graphql(ENABLE, {"id": endpoint["id"]}, headers=as_user(live, "signer-2701000003")).json()
    assert [e["code"] for e in other["data"]["enableWebhookEndpoint"]["errors"]] == ["NOT_FOUND"]
    enabled = live.graphql(ENABLE, {"id": endpoint["id"]}, headers=signer).json()["data"]["enableWebhookEndpoint"]
    assert enabled["errors"] == [] and enabled["endpoint"] == {
        "id": endpoint["id"], "suspendedAt": None, "suspendedReason": None, "failingSince": None}
    again = redeliver(live, signer, newest["id"])
    assert again["errors"] == []
    submit(live, signer, "INV-4")
    assert (await live.run_job("webhook-delivery")).message == "2 delivered"
    assert len(receiver.received) == 4
    # enabling an endpoint that is not disabled changes nothing; a deleted one is INVALID_STATE
    same = live.graphql(ENABLE, {"id": endpoint["id"]}, headers=signer).json()["data"]["enableWebhookEndpoint"]
    assert same["errors"] == [] and same["endpoint"]["suspendedAt"] is None
    assert live.graphql(DELETE, {"id": endpoint["id"]}, headers=signer).json()["data"]["deleteWebhookEndpoint"][
        "errors"] == []
    gone = live.graphql(ENABLE, {"id": endpoint["id"]}, headers=signer).json()["data"]["enableWebhookEndpoint"]
    assert [(e["code"], e["field"]) for e in gone["errors"]] == [("INVALID_STATE", ["input", "endpointId"])]


async def test_an_endpoint_failing_for_five_days_is_disabled_and_a_2xx_before_that_starts_the_count_afresh(
        live, receiver):
    allow_loopback(live)
    signer = as_user(live, "signer-2701000002")
    endpoint = register(live, signer, receiver.url, SUBMITTED)["endpoint"]
    days = limit(live.services.rules.current, live.clock.today(), "webhook_disable_after_days")
    assert days == 5
    submit(live, signer, "INV-1")
    receiver.always = 503
    assert (await live.run_job("webhook-delivery")).message == "1 retrying"
    started = live.clock.now()
    [first] = nodes(deliveries(live, signer, endpoint["id"]))
    assert endpoint_state(live, signer)["failingSince"] == "2026-04-01T10:00:00+09:00"

    def resend() -> None:  # a new delivery of the same event, tried at once
        nonlocal signer
        signer = as_user(live, "signer-2701000002")  # sessions end over days
        assert redeliver(live, signer, first["id"])["errors"] == []

    # a day short of the period: still sent to
    live.clock.set(started + dt.timedelta(days=days) - dt.timedelta(minutes=1))
    resend()
    await live.run_job("webhook-delivery")
    state = endpoint_state(live, signer)
    assert state["suspendedAt"] is None and state["failingSince"] == "2026-04-01T10:00:00+09:00"
    # five days after the first failure, another failure disables it
    live.clock.set(started + dt.timedelta(days=days))
    resend()
    await live.run_job("webhook-delivery")
    state = endpoint_state(live, signer)
    assert state["suspendedAt"] == "2026-04-06T10:00:00+09:00"
    assert "5 days" in state["suspendedReason"] and "2026-04-01T10:00+09:00" in state["suspendedReason"]
    assert {n["status"] for n in nodes(deliveries(live, signer, endpoint["id"]))} == {"FAILED"}  # nothing left open

    # enabled, answering again: a success clears failingSince, so one later failure does not disable it
    assert live.graphql(ENABLE, {"id": endpoint["id"]}, headers=signer).json()["data"]["enableWebhookEndpoint"][
        "errors"] == []
    receiver.always = None
    resend()
    assert (await live.run_job("webhook-delivery")).message == "1 delivered"
    receiver.always = 500
    live.clock.advance(dt.timedelta(days=days + 1))
    resend()
    assert (await live.run_job("webhook-delivery")).message == "1 retrying"
    state = endpoint_state(live, signer)
    assert state["suspendedAt"] is None and state["failingSince"] == "2026-04-12T10:00:00+09:00"


async def test_redeliveries_are_limited_per_registration_an_hour(live, receiver):
    allow_loopback(live)
    signer = as_user(live, "signer-2701000002")
    endpoint = register(live, signer, receiver.url, SUBMITTED)["endpoint"]
    submit(live, signer, "INV-1")
    [original] = nodes(deliveries(live, signer, endpoint["id"]))
    most = limit(live.services.rules.current, live.clock.today(), "webhook_redeliveries_per_hour")
    assert most == 60
    aliases = " ".join(f'r{i}: redeliverWebhook(input: {{deliveryId: "{original["id"]}"}}) {{ errors {{ code }} }}'
                       for i in range(30))
    for _ in range(most // 30):  # 30 aliases a request: each one counts
        answers = live.graphql(f"mutation {{ {aliases} }}", headers=signer).json()["data"]
        assert all(a["errors"] == [] for a in answers.values())
    over = live.graphql(REDELIVER_WORDS, {"id": original["id"]}, headers={**signer, "Accept-Language": "en"}).json()
    assert [(e["code"], e["field"], e["message"]) for e in over["data"]["redeliverWebhook"]["errors"]] == [
        ("TOO_MANY_REQUESTS", ["input", "deliveryId"], "Too many attempts. Try again in 3600 seconds.")]
    assert over["data"]["redeliverWebhook"]["delivery"] is None and "errors" not in over  # a UserError, no 500
    assert deliveries(live, signer, endpoint["id"])["totalCount"] == 1 + most

    # the limit is the registration's: another registration redelivers as usual; an hour later this one again
    other = as_user(live, "signer-2701000003")
    theirs = register(live, other, receiver.url, SUBMITTED)["endpoint"]
    give_coupons(live, 1, registration="2701000003")
    assert act(live, other, "submitApplication", create(live, other)["application"]["id"])["errors"] == []
    [their_first] = nodes(deliveries(live, other, theirs["id"]))
    assert redeliver(live, other, their_first["id"])["errors"] == []
    live.clock.advance(dt.timedelta(hours=1))
    assert redeliver(live, as_user(live, "signer-2701000002"), original["id"])["errors"] == []


async def test_a_delivery_queued_while_its_endpoint_was_being_disabled_fails_as_disabled_not_deleted(live, migrated,
                                                                                                    receiver):
    """An event emitted (or a redelivery made) in the instant the delivery job disabled its
    endpoint is left PENDING (the disabling unit did not see it): the job does not send it and
    logs it as the endpoint's state is — disabled, which enableWebhookEndpoint resumes — never
    "endpoint deleted"."""
    _target, db = migrated
    allow_loopback(live)
    signer = as_user(live, "signer-2701000002")
    endpoint = register(live, signer, receiver.url, SUBMITTED)["endpoint"]
    submit(live, signer, "INV-RACE")
    async with db.write() as tx:  # the disabling unit committed first; the PENDING row came after it
        await tx.execute(update(WebhookEndpoint).values(suspended_at=live.clock.now(), suspended_reason="HTTP 410 Gone"))
    assert (await live.run_job("webhook-delivery")).status == "ok"
    assert receiver.received == []
    [row] = nodes(deliveries(live, signer, endpoint["id"]))
    assert (row["status"], row["lastError"]) == ("FAILED", "endpoint disabled")
