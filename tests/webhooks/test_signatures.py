"""Every delivery carries two signatures with the endpoint's one secret, on SQLite and
PostgreSQL: ``Tradecert-Signature`` is exactly Stripe's scheme (the ``stripe`` library's
``WebhookSignature.verify_header`` accepts it) and ``webhook-id`` / ``webhook-timestamp`` /
``webhook-signature`` are Standard Webhooks' (the ``standardwebhooks`` library's
``Webhook.verify`` accepts them) — a receiver built on either library verifies a real
delivery with the secret exactly as ``createWebhookEndpoint`` showed it."""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets

import pytest
import standardwebhooks
import stripe

from resolvers.webhooks import signatures
from tests.applications.test_applications import act, create, give_coupons
from tests.identity.test_subaccounts import as_user
from tests.webhooks.test_webhooks_api import allow_loopback, deliveries, nodes, register


async def test_a_real_delivery_verifies_with_the_stripe_and_the_standard_webhooks_libraries(live, receiver):
    allow_loopback(live)
    signer = as_user(live, "signer-2701000002")
    created = register(live, signer, receiver.url, ["APPLICATION_SUBMITTED"])
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    give_coupons(live, 1)
    assert act(live, signer, "submitApplication", create(live, signer)["application"]["id"])["errors"] == []
    live.clock.set(dt.datetime.now(dt.UTC))  # both libraries refuse a timestamp more than 5 minutes from their clock
    assert (await live.run_job("webhook-delivery")).message == "1 delivered"

    [(headers, body)] = receiver.received
    event = stripe.WebhookSignature.verify_header(body.decode(), headers["tradecert-signature"], secret, tolerance=300)
    assert event is True
    verified = standardwebhooks.Webhook(secret).verify(body, headers)
    assert verified == json.loads(body)
    assert headers["webhook-id"] == verified["id"]  # the event id: the same in a retry and a redelivery
    assert headers["webhook-timestamp"] == headers["tradecert-signature"].split(",")[0].removeprefix("t=")
    assert headers["webhook-signature"].startswith("v1,")

    # a changed body, or another secret, verifies with neither
    tampered = body.replace(b"SUBMITTED", b"APPROVED")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(tampered.decode(), headers["tradecert-signature"], secret, tolerance=300)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(tampered, headers)
    other = signatures.new_secret()
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(other).verify(body, headers)
    [sent] = nodes(deliveries(live, as_user(live, "signer-2701000002"), created["endpoint"]["id"]))  # a new session, months on
    assert sent["status"] == "DELIVERED"


def test_a_secret_made_before_issue_20_keeps_its_key_and_has_a_standard_webhooks_form():
    """Secrets made before issue 20 are ``whsec_`` + URL-safe base64 without padding: the
    Stripe-style signature is unchanged (keyed by the text), and the Standard Webhooks key is
    the same 32 bytes, which ``standard_secret`` writes as the libraries read it."""
    old = "whsec_" + secrets.token_urlsafe(32)
    at = dt.datetime.now(dt.UTC)
    body = b'{"id":"evt_1","event":"application.submitted"}'
    sent = {k.lower(): v for k, v in signatures.headers(old, "evt_1", body, at).items()}
    assert stripe.WebhookSignature.verify_header(body.decode(), sent["tradecert-signature"], old, tolerance=300)
    assert signatures.standard_key(old) == base64.urlsafe_b64decode(old.removeprefix("whsec_") + "=")
    assert standardwebhooks.Webhook(signatures.standard_secret(old)).verify(body, sent)["id"] == "evt_1"
    new = signatures.new_secret()
    assert signatures.standard_secret(new) == new  # a new secret is its own Standard Webhooks form
