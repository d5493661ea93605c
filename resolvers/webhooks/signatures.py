"""The two signatures every delivery carries, both HMAC-SHA256 with the endpoint's secret
(docs/integration.md, "Verifying a delivery"; docs/decisions.md, issue 20 "webhook signatures"):

* ``Tradecert-Signature: t=<unix>,v1=<hex>`` over ``"<t>.<body>"``, keyed with the secret's
  UTF-8 text — exactly Stripe's scheme (``stripe.WebhookSignature.verify_header`` accepts it;
  the card gateway's notifications use it too: ``adapters.gateway.sign``).
* Standard Webhooks (https://www.standardwebhooks.com): ``webhook-id`` (the event id, the same
  in a retry and a redelivery), ``webhook-timestamp`` (unix seconds) and
  ``webhook-signature: v1,<base64>`` over ``"<id>.<timestamp>.<body>"``, keyed with the
  base64 decoding of the secret after ``whsec_`` — what the spec's libraries do with a
  ``whsec_`` secret. Secrets are made as ``whsec_`` + standard base64 of 32 random bytes, so
  the one secret string works in both libraries as it is; a secret made before issue 20 is
  ``whsec_`` + URL-safe base64 without padding, which decodes the same way here (either
  alphabet, padding optional) — its Standard Webhooks form is ``whsec_`` + standard base64 of
  that key (``standard_secret``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import secrets

from resolvers.adapters.gateway import sign

PREFIX = "whsec_"
KEY_BYTES = 32


def new_secret() -> str:
    """A fresh endpoint secret: ``whsec_`` + standard base64 of 32 random bytes (44 characters)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def standard_key(secret: str) -> bytes:
    """The Standard Webhooks key of ``secret``: the base64 after ``whsec_``, either alphabet,
    padding optional. A secret that is not base64 (none we made) is keyed by its UTF-8 bytes."""
    text = secret.removeprefix(PREFIX).replace("+", "-").replace("/", "_").rstrip("=")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return secret.encode()


def standard_secret(secret: str) -> str:
    """``secret`` as a Standard Webhooks library reads it (the same string for every secret made
    since issue 20)."""
    return PREFIX + base64.b64encode(standard_key(secret)).decode()


def headers(secret: str, event_id: str, body: bytes, at: dt.datetime) -> dict[str, str]:
    """The signature headers of one attempt, signed at ``at``."""
    timestamp = str(int(at.timestamp()))
    mac = hmac.new(standard_key(secret), f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {"Tradecert-Signature": sign(secret, body, at), "webhook-id": event_id, "webhook-timestamp": timestamp,
            "webhook-signature": "v1," + base64.b64encode(mac).decode()}
