"""The ``webhook-delivery`` job: POST each due delivery to its endpoint, signed, and record
what happened. Never run inside a request (a slow receiver must not slow the change).

* **Claim.** A run takes up to ``BATCH`` due deliveries by one conditional UPDATE that sets a
  per-row lease (``lease_holder``, ``leased_until``); another host's run skips leased rows,
  so a delivery is not sent twice at once even when runs overlap. A host that dies mid-way
  leaves leases that expire, and the delivery is sent again (at least once, like every
  webhook; the body's ``id`` lets a receiver drop a repeat).
* **Guard.** The destination is checked again before each attempt (resolvers/webhooks/
  destinations.py): a host that now resolves to an internal address is not contacted — the
  delivery is FAILED with "destination not allowed". The request goes to the address that
  was checked.
* **Send.** ``POST`` the stored body with ``Content-Type: application/json`` and
  ``Tradecert-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` — the scheme the
  card gateway's notifications use (``adapters.gateway.sign``), signed at send time. No
  redirect is followed, proxies from the environment are not used, the answer's body is
  not read.
* **Bounded.** One deadline covers a whole attempt — the destination check, connecting,
  sending, and the status line and headers (``ATTEMPT_SECONDS``); httpx's own timeouts are
  per read, so a receiver dripping a byte every few seconds would otherwise hold an attempt
  for minutes. Past it the attempt is an ordinary failure, "timed out after 10 s". A run
  starts no attempt once ``RUN_SECONDS`` have passed and gives the rest back unattempted
  (lease cleared, due at once), so a run ends within ``RUN_SECONDS + ATTEMPT_SECONDS`` plus
  its database writes — well inside the rows' ``LEASE``, which must not run out while its
  holder may still send (another host would send the delivery again).
* **Outcome.** 2xx → DELIVERED. Anything else — another status, a timeout, a refused
  connection (status code NULL) — → RETRYING after 1 minute, doubling up to an hour, until
  ``webhook_retry_hours`` (rules/limits.yaml) after the delivery was created; the last
  attempt is at that moment, and its failure is FAILED.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import uuid
from dataclasses import dataclass

import httpx
from cryptography.fernet import InvalidToken
from sqlalchemy import or_, select, update

from persistence.models import WebhookDelivery, WebhookEndpoint
from resolvers.adapters.gateway import sign
from resolvers.core.clock import TOKYO
from resolvers.core.context import Services
from resolvers.core.messages import Words
from resolvers.naccs.use_cases import fernet
from resolvers.webhooks import destinations
from resolvers.webhooks import messages as words
from resolvers.webhooks.names import OPEN_STATUSES, WebhookDeliveryStatus
from rules.limits import limit

log = logging.getLogger("tradecert.webhooks")

BATCH = 50  # deliveries per run
CONCURRENCY = 8  # requests in flight at once
ATTEMPT_SECONDS = 10.0  # one attempt, everything included
TIMEOUT = httpx.Timeout(ATTEMPT_SECONDS, connect=5.0)  # per phase, inside the attempt's deadline
RUN_SECONDS = 30.0  # no attempt starts later in a run: the rest waits for the next run
LEASE = dt.timedelta(minutes=2)  # > RUN_SECONDS + ATTEMPT_SECONDS + the writes, with room to spare
FIRST_RETRY = dt.timedelta(minutes=1)
LAST_RETRY = dt.timedelta(hours=1)
SIGNATURE_HEADER = "Tradecert-Signature"
USER_AGENT = "tradecert-webhooks/1"


@dataclass(frozen=True)
class Due:
    """A claimed delivery and what sending it needs."""

    id: int
    event: str
    event_id: str
    payload: str
    attempts: int
    created_at: dt.datetime
    url: str
    secret_sealed: str
    endpoint_disabled: bool


@dataclass(frozen=True)
class Attempt:
    """What one attempt came to: a status code (None: no answer) or why nothing was sent."""

    status_code: int | None
    error: str | None
    final: bool = False  # nothing was sent and nothing will be: the destination is refused, the secret unreadable, …

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff(attempts: int) -> dt.timedelta:
    """The wait after the ``attempts``-th failed attempt: 1 min, 2, 4, … at most an hour."""
    wait: dt.timedelta = FIRST_RETRY * 2 ** max(attempts - 1, 0)
    return min(wait, LAST_RETRY)


def retry_period(services: Services) -> dt.timedelta:
    return dt.timedelta(hours=limit(services.rules.current, services.clock.today(), "webhook_retry_hours"))


async def _claim(services: Services, holder: str, now: dt.datetime) -> list[Due]:
    free = or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now)
    due = (select(WebhookDelivery.id).where(WebhookDelivery.status.in_(OPEN_STATUSES),
                                            WebhookDelivery.next_attempt_at <= now, free)
           .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(BATCH))
    async with services.db.write() as tx:
        ids = (await tx.scalars(update(WebhookDelivery)
                                .where(WebhookDelivery.id.in_(due.scalar_subquery()), free,
                                       WebhookDelivery.status.in_(OPEN_STATUSES))
                                .values(lease_holder=holder, leased_until=now + LEASE)
                                .returning(WebhookDelivery.id))).all()
        if not ids:
            return []
        rows = (await tx.execute(
            select(WebhookDelivery.id, WebhookDelivery.event, WebhookDelivery.event_id, WebhookDelivery.payload,
                   WebhookDelivery.attempts, WebhookDelivery.created_at, WebhookEndpoint.url,
                   WebhookEndpoint.secret_sealed, WebhookEndpoint.disabled_at)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id.in_(ids)).order_by(WebhookDelivery.id))).all()
    return [Due(r.id, r.event, r.event_id, r.payload, r.attempts, r.created_at, r.url, r.secret_sealed,
                r.disabled_at is not None) for r in rows]


async def _attempt(services: Services, client: httpx.AsyncClient, due: Due) -> Attempt:
    """One attempt under one deadline: a receiver (or its DNS) that answers slowly, however
    it spreads its bytes, costs at most ``ATTEMPT_SECONDS``."""
    if due.endpoint_disabled:
        return Attempt(None, words.ENDPOINT_DELETED_ERROR, final=True)
    try:
        async with asyncio.timeout(ATTEMPT_SECONDS):
            return await _send(services, client, due)
    except TimeoutError:
        return Attempt(None, f"timed out after {ATTEMPT_SECONDS:g} s")


async def _send(services: Services, client: httpx.AsyncClient, due: Due) -> Attempt:
    """Check the destination again, sign, POST, and keep only the status code."""
    found = await destinations.check(due.url, services.settings.webhook_allow_hosts)
    if isinstance(found, Words):
        if found == words.URL_UNRESOLVED:  # DNS may come back: an ordinary failure
            return Attempt(None, "the host name does not resolve")
        return Attempt(None, words.DESTINATION_NOT_ALLOWED, final=True)
    try:
        secret = fernet(services).decrypt(due.secret_sealed.encode()).decode()
    except InvalidToken:
        return Attempt(None, words.SECRET_UNREADABLE, final=True)
    body = due.payload.encode()
    url, headers, extensions = destinations.pinned(found)
    headers.update({"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT,
                    SIGNATURE_HEADER: sign(secret, body, services.clock.now()),
                    "Tradecert-Event": due.event, "Tradecert-Event-Id": due.event_id})
    try:
        async with client.stream("POST", url, content=body, headers=headers, extensions=extensions) as response:
            code = response.status_code  # the body is not read: a receiver cannot make us download
    except (httpx.HTTPError, OSError, socket.gaierror) as exc:
        return Attempt(None, f"{type(exc).__name__}: {exc}"[:2000] or type(exc).__name__)
    return Attempt(code, None if 200 <= code < 300 else f"HTTP {code}")


async def _record(services: Services, holder: str, due: Due, attempt: Attempt) -> WebhookDeliveryStatus:
    now = services.clock.now()
    values: dict[str, object] = {"lease_holder": None, "leased_until": None, "last_error": attempt.error}
    attempts = due.attempts + (0 if attempt.final else 1)  # a refusal before sending is no attempt
    values["attempts"] = attempts
    values["last_status_code"] = attempt.status_code
    if attempt.delivered:
        status = WebhookDeliveryStatus.DELIVERED
        values.update(delivered_at=now, next_attempt_at=None)
    else:
        deadline = due.created_at + retry_period(services)
        if attempt.final or now >= deadline:
            status = WebhookDeliveryStatus.FAILED
            values["next_attempt_at"] = None
            log.warning("webhook delivery %s (%s) failed for good after %s attempt(s): %s",
                        due.id, due.event, attempts, attempt.error)
        else:
            status = WebhookDeliveryStatus.RETRYING
            next_try = min(now + backoff(attempts), deadline)  # the last try is at the deadline
            values["next_attempt_at"] = next_try
            log.info("webhook delivery %s (%s) attempt %s failed: %s; next try %s", due.id, due.event, attempts,
                     attempt.error, next_try.astimezone(TOKYO).isoformat(timespec="seconds"))
    values["status"] = status
    async with services.db.write() as tx:
        await tx.execute(update(WebhookDelivery).where(WebhookDelivery.id == due.id,
                                                       WebhookDelivery.lease_holder == holder).values(**values))
    return status


async def _give_back(services: Services, holder: str, due: Due) -> None:
    """Clear the lease of a delivery this run did not try: due at once for the next run,
    its status and attempts untouched."""
    async with services.db.write() as tx:
        await tx.execute(update(WebhookDelivery).where(WebhookDelivery.id == due.id,
                                                       WebhookDelivery.lease_holder == holder)
                         .values(lease_holder=None, leased_until=None))


async def deliver_due(services: Services, budget: float = RUN_SECONDS) -> str:
    """Job ``webhook-delivery``: send what is due, record each outcome (one short unit of
    work per delivery, after its request). No attempt starts ``budget`` seconds (elapsed
    time, not the business clock) after the run began; what did not start is given back."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:64]
    claimed = await _claim(services, holder, services.clock.now())
    if not claimed:
        return "nothing to deliver"
    loop = asyncio.get_running_loop()
    stop_starting_at = loop.time() + budget
    gate = asyncio.Semaphore(CONCURRENCY)
    outcomes: list[WebhookDeliveryStatus] = []
    left = 0

    async def one(client: httpx.AsyncClient, due: Due) -> None:
        nonlocal left
        async with gate:
            if loop.time() >= stop_starting_at:
                await _give_back(services, holder, due)
                left += 1
                return
            attempt = await _attempt(services, client, due)
            outcomes.append(await _record(services, holder, due, attempt))

    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, trust_env=False) as client:
        await asyncio.gather(*(one(client, due) for due in claimed))
    counts = {s: outcomes.count(s) for s in WebhookDeliveryStatus if outcomes.count(s)}
    summary = [f"{n} {s.value.lower()}" for s, n in counts.items()]
    if left:
        summary.append(f"{left} left for the next run")
        log.warning("webhook delivery: %s of %s claimed deliveries left for the next run (slow receivers)",
                    left, len(claimed))
    return ", ".join(summary)
