"""Filing certificate applications from your own system: the worked example of
docs/integration.md.

It logs in once as a person to make an API key, then works with the key only: registers a
webhook endpoint at a small receiver of its own, files three applications in one call,
submits them in one call, and waits until the receiver has got — and verified — the three
``application.submitted`` events.

    python docs/examples/integration.py

Settings come from the environment; the defaults are the demo server of `make serve`
(docs/integration.md lists them): PORT or TRADECERT_URL, TRADECERT_CHAMBER,
TRADECERT_USERNAME, TRADECERT_PASSWORD, RECEIVER_HOST and RECEIVER_PORT. Needs only httpx.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import queue
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


def port(name: str, default: str, lowest: int) -> int:
    raw = os.environ.get(name) or default
    if not raw.isdigit() or not lowest <= int(raw) <= 65535:
        sys.exit(f"{name} must be a port number ({lowest} to 65535), got {raw!r}")
    return int(raw)


# PORT is the one `tradecert serve` (and `make serve`) listens on; TRADECERT_URL, if set, wins
URL = (os.environ.get("TRADECERT_URL") or f"http://127.0.0.1:{port('PORT', '8000', 1)}").rstrip("/")
CHAMBER = os.environ.get("TRADECERT_CHAMBER") or "2701"
USERNAME = os.environ.get("TRADECERT_USERNAME") or "signer-2701000002"
PASSWORD = os.environ.get("TRADECERT_PASSWORD") or "demo-pass-2701"
# where the server reaches this program's webhook receiver (127.0.0.1 needs the server's
# TRADECERT_WEBHOOK_ALLOW_HOSTS=127.0.0.1); port 0: any free port
RECEIVER_HOST = os.environ.get("RECEIVER_HOST") or "127.0.0.1"
RECEIVER_PORT = port("RECEIVER_PORT", "0", 0)
TOLERANCE_SECONDS = 300  # refuse events signed longer ago than this (replays)


def graphql(client: httpx.Client, query: str, variables: dict | None = None) -> dict:
    """POST one operation; stop on a top-level error (a refused key, a bad request), or in
    one line when the server cannot be reached or is not tradecert."""
    try:
        response = client.post("/graphql", json={"query": query, "variables": variables or {}})
    except httpx.TransportError as exc:
        sys.exit(f"cannot reach tradecert at {URL} ({exc or type(exc).__name__}) — start it, "
                 "or set TRADECERT_URL (or PORT) to where it listens")
    try:
        answer = response.json()
    except ValueError:
        sys.exit(f"{URL}/graphql answered HTTP {response.status_code}, not GraphQL — is TRADECERT_URL tradecert's address?")
    if answer.get("errors"):
        sys.exit(f"refused: {answer['errors'][0]['message']}")
    return answer["data"]


def check(payload: dict) -> dict:
    """A mutation's payload, stopping on the first UserError (code, field, message)."""
    if payload.get("errors"):
        sys.exit(f"refused: {json.dumps(payload['errors'], ensure_ascii=False)}")
    return payload


# --------------------------------------------------------------------------- 1. a key

def make_api_key() -> tuple[str, str]:
    """A person logs in once and makes a key for the system; the key is shown only now.
    Returns the key and its id."""
    with httpx.Client(base_url=URL, timeout=30) as client:
        login = check(graphql(client, """
            mutation($c: String!, $u: String!, $p: String!) {
              login(input: {chamberCode: $c, username: $u, password: $p}) { token errors { code field message } } }""",
            {"c": CHAMBER, "u": USERNAME, "p": PASSWORD})["login"])
        client.headers["Authorization"] = f"Bearer {login['token']}"
        made = check(graphql(client, """
            mutation($name: String!) { createApiKey(input: {name: $name}) {
              apiKey { id prefix } secret errors { code field message } } }""",
            {"name": "ERP (worked example)"})["createApiKey"])
        graphql(client, "mutation { logout(input: {}) { errors { code } } }")  # the key is all we keep
    print(f"API key made: {made['apiKey']['prefix']}… (keep the secret in your system's vault)")
    return str(made["secret"]), str(made["apiKey"]["id"])


# --------------------------------------------------------------------------- 2. a receiver

def verify(secret: str, header: str, body: bytes, now: float) -> bool:
    """Tradecert-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    if not parts.get("t", "").isdigit() or abs(now - int(parts["t"])) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


class Receiver:
    """A webhook endpoint on this machine: verifies each POST, answers 204, queues the event."""

    def __init__(self) -> None:
        self.secret = ""
        self.events: queue.Queue[dict] = queue.Queue()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not verify(receiver.secret, self.headers.get("Tradecert-Signature", ""), body, time.time()):
                    self.send_response(400)  # not from tradecert (or too old): tradecert retries a real one
                    self.end_headers()
                    return
                receiver.events.put(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        try:
            self.server = ThreadingHTTPServer((RECEIVER_HOST, RECEIVER_PORT), Handler)
        except OSError as exc:
            sys.exit(f"cannot listen on {RECEIVER_HOST}:{RECEIVER_PORT} ({exc.strerror or exc}) — "
                     "set RECEIVER_HOST and RECEIVER_PORT")
        self.url = f"http://{RECEIVER_HOST}:{self.server.server_address[1]}/tradecert-events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# --------------------------------------------------------------------------- 3. file and submit

APPLICATIONS = [
    {"type": "INVOICE", "destinationCountry": "US", "goodsCategory": "緑茶", "invoiceNumber": f"ERP-{n}",
     "exporterName": "ACME Trading Co., Ltd.", "feePayment": "CARD"}
    for n in ("2026-0001", "2026-0002", "2026-0003")
]


def main() -> None:
    receiver = Receiver()  # first: a port that is taken stops the example before it makes a key
    secret, key_id = make_api_key()
    batch = uuid.uuid4().hex[:12]  # one idempotency key per batch: a retried call files nothing twice
    with httpx.Client(base_url=URL, timeout=60, headers={"Authorization": f"Bearer {secret}"}) as api:
        registered = graphql(api, """
            mutation($url: String!) { createWebhookEndpoint(input: {url: $url, events: [APPLICATION_SUBMITTED,
              APPLICATION_ON_HOLD, APPLICATION_APPROVED, APPLICATION_ISSUED]}) {
                endpoint { id url } secret errors { code field message } } }""",
            {"url": receiver.url})["createWebhookEndpoint"]
        if any((error.get("field") or [])[-1:] == ["url"] for error in registered["errors"]):
            # a server refuses loopback destinations unless its settings allow them
            sys.exit(f"tradecert refused the receiver's address {receiver.url}: start the server with "
                     f"TRADECERT_WEBHOOK_ALLOW_HOSTS={RECEIVER_HOST} (docs/integration.md, \"Worked example\")")
        endpoint = check(registered)
        receiver.secret = endpoint["secret"]
        print(f"webhook endpoint: {endpoint['endpoint']['url']}")

        created = check(graphql(api, """
            mutation($apps: [CreateApplicationInput!]!, $key: String) {
              createApplications(input: {applications: $apps, idempotencyKey: $key}) {
                applications { id invoiceNumber state } errors { code field message } } }""",
            {"apps": APPLICATIONS, "key": f"create-{batch}"})["createApplications"])
        ids = [a["id"] for a in created["applications"]]
        print(f"filed {len(ids)} applications in one call")

        submitted = check(graphql(api, """
            mutation($ids: [ID!]!, $key: String) {
              submitApplications(input: {applicationIds: $ids, idempotencyKey: $key}) {
                results { applicationId application { receiptNumber state fee } errors { code message } }
                errors { code field message } } }""",
            {"ids": ids, "key": f"submit-{batch}"})["submitApplications"])
        for result in submitted["results"]:
            app = result["application"]
            outcome = f"{app['state']} 受付番号 {app['receiptNumber']}" if not result["errors"] else result["errors"][0]["message"]
            print(f"  {result['applicationId']}: {outcome}")

        seen: set[str] = set()
        deadline = time.monotonic() + 90
        while seen != set(ids) and time.monotonic() < deadline:
            try:
                event = receiver.events.get(timeout=1)
            except queue.Empty:
                continue
            if event["event"] == "application.submitted":
                seen.add(event["data"]["id"])
                print(f"webhook verified: {event['event']} {event['data']['id']} {event['data'].get('state', '')}")

        # A real system keeps its endpoint and key; this example tidies up after itself, so
        # that later events are not retried to a receiver that is gone.
        graphql(api, """mutation($id: ID!) { deleteWebhookEndpoint(input: {endpointId: $id}) { errors { code } } }""",
                {"id": endpoint["endpoint"]["id"]})
        graphql(api, """mutation($id: ID!) { revokeApiKey(input: {apiKeyId: $id}) { errors { code } } }""",
                {"id": key_id})
    receiver.server.shutdown()
    if seen != set(ids):
        sys.exit(f"only {len(seen)} of {len(ids)} submissions were announced within 90 seconds")
    print("done: 3 applications filed, submitted and announced")


if __name__ == "__main__":
    main()
