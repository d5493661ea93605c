"""The ``webhook-delivery`` job: POST each due delivery to its endpoint, signed, and record
what happened. Never run inside a request (a slow receiver must not slow the change).

* **Claim, fairly.** A run claims due deliveries by one conditional UPDATE that sets a
  per-row lease (``lease_holder``, ``leased_until``); another host's run skips leased rows,
  so a delivery is not sent twice at once even when runs overlap. A leased row is an
  attempt in flight: an endpoint never has more than ``webhook_in_flight_per_endpoint``
  (rules/limits.yaml) leased at once, over all hosts (on PostgreSQL the claims take turns
  under a transaction-level advisory lock; SQLite serialises writes anyway). Claims go
  round-robin over endpoints — every endpoint's oldest due delivery, then every endpoint's
  second, … — and are sent in that order, so an endpoint that hangs holds at most its own
  few slots while every other endpoint's deliveries go out. Whenever an attempt ends the
  run claims again, until nothing is due or its time is spent. A host that dies mid-way
  leaves leases that expire, and the delivery is sent again (at least once, like every
  webhook; the body's ``id`` lets a receiver drop a repeat).
* **Guard.** The destination is checked again before each attempt (resolvers/webhooks/
  destinations.py): a host that now resolves to an internal address is not contacted — the
  delivery is FAILED with "destination not allowed". The request goes to the address that
  was checked.
* **Send.** ``POST`` the stored body with ``Content-Type: application/json`` and two
  signatures, computed at send time (resolvers/webhooks/signatures.py): Stripe's scheme
  (``Tradecert-Signature: t=<unix>,v1=<hex>``) and Standard Webhooks' (``webhook-id``,
  ``webhook-timestamp``, ``webhook-signature``). No redirect is followed, proxies from the
  environment are not used, the answer's body is not read.
* **Bounded.** One deadline covers a whole attempt — the destination check, connecting,
  sending, and the status line and headers (``ATTEMPT_SECONDS``); httpx's own timeouts are
  per read, so a receiver dripping a byte every few seconds would otherwise hold an attempt
  for minutes. Past it the attempt is an ordinary failure, "timed out after 10 s". A run
  claims nothing and starts no attempt once ``RUN_SECONDS`` have passed and gives back what
  it claimed but did not start (lease cleared, due at once), so a run ends within
  ``RUN_SECONDS + ATTEMPT_SECONDS`` plus its database writes — well inside the rows'
  ``LEASE``, which must not run out while its holder may still send (another host would
  send the delivery again).
* **Outcome.** 2xx → DELIVERED. Anything else — another status, a timeout, a refused
  connection (status code NULL) — → RETRYING after 1 minute, doubling up to an hour, until
  ``webhook_retry_hours`` (rules/limits.yaml) after the delivery was created; the last
  attempt is at that moment, and its failure is FAILED.
* **Endpoints that keep failing.** The endpoint remembers its first failed attempt since
  its last 2xx (``failing_since``). An attempt that fails ``webhook_disable_after_days``
  or more after that, or any answer 410 Gone (Standard Webhooks), disables the endpoint
  (``suspended_at``, with the reason): its open deliveries end FAILED ("endpoint
  disabled"), new events are logged FAILED the same way, and the signer who registered
  it gets the mail ``webhook.endpoint_disabled``. ``enableWebhookEndpoint`` resumes it.
  Locks: the endpoint row first, then its deliveries — the order of ``delete_endpoint``.
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
from sqlalchemy import func, literal, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Account, UTCDateTime, WebhookDelivery, WebhookEndpoint
from resolvers.adapters.mail import queue_mail
from resolvers.core.clock import TOKYO
from resolvers.core.context import Services
from resolvers.core.messages import Words
from resolvers.core.sealing import fernet
from resolvers.webhooks import destinations, signatures
from resolvers.webhooks import messages as words
from resolvers.webhooks.names import OPEN_STATUSES, WebhookDeliveryStatus
from rules import mail
from rules.limits import limit

log = logging.getLogger("tradecert.webhooks")

BATCH = 50  # deliveries claimed and not yet finished by one run, at most
# Every claimed delivery starts at once: the per-endpoint limit is what keeps a hanging
# endpoint to its own slots. A smaller shared gate (it was 8) let 8 hanging endpoints — one
# registration may have 10 — hold every request of the run, so the next endpoint in turn
# waited for their 10 s deadlines (outside testing of issue 20).
CONCURRENCY = BATCH  # requests in flight at once, over at least BATCH / in-flight-per-endpoint endpoints
ATTEMPT_SECONDS = 10.0  # one attempt, everything included
TIMEOUT = httpx.Timeout(ATTEMPT_SECONDS, connect=5.0)  # per phase, inside the attempt's deadline
RUN_SECONDS = 30.0  # no claim and no attempt starts later in a run: the rest waits for the next run
LEASE = dt.timedelta(minutes=2)  # > RUN_SECONDS + ATTEMPT_SECONDS + the writes, with room to spare
FIRST_RETRY = dt.timedelta(minutes=1)
LAST_RETRY = dt.timedelta(hours=1)
SIGNATURE_HEADER = "Tradecert-Signature"
USER_AGENT = "tradecert-webhooks/1"
GONE = 410  # Standard Webhooks: the receiver says the endpoint is gone — disable it at once
CLAIM_LOCK = 0x7764_6C76  # pg_advisory_xact_lock key of the claims ("wdlv"): one claim at a time


@dataclass(frozen=True)
class Due:
    """A claimed delivery and what sending it needs."""

    id: int
    endpoint_id: int
    event: str
    event_id: str
    payload: str
    attempts: int
    created_at: dt.datetime
    url: str
    secret_sealed: str
    endpoint_disabled: bool  # deleted, or disabled by this job (``endpoint_suspended``) since the row was queued
    endpoint_suspended: bool = False


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


async def _claim(services: Services, holder: str, now: dt.datetime, most: int | None = None) -> list[Due]:
    """Lease up to ``most`` (``BATCH``) due deliveries, round-robin over endpoints (each
    endpoint's oldest due first), none beyond an endpoint's ``webhook_in_flight_per_endpoint``
    leases."""
    most = BATCH if most is None else most
    per_endpoint = limit(services.rules.current, services.clock.today(), "webhook_in_flight_per_endpoint")
    free = or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now)
    in_flight = (select(WebhookDelivery.endpoint_id, func.count().label("leased"))
                 .where(WebhookDelivery.leased_until >= now).group_by(WebhookDelivery.endpoint_id).subquery())
    turn = func.row_number().over(partition_by=WebhookDelivery.endpoint_id,
                                  order_by=(WebhookDelivery.next_attempt_at, WebhookDelivery.id)).label("turn")
    due = (select(WebhookDelivery.id, WebhookDelivery.endpoint_id, WebhookDelivery.next_attempt_at, turn)
           .where(WebhookDelivery.status.in_(OPEN_STATUSES), WebhookDelivery.next_attempt_at <= now, free).subquery())
    picked = (select(due.c.id).outerjoin(in_flight, in_flight.c.endpoint_id == due.c.endpoint_id)
              .where(due.c.turn + func.coalesce(in_flight.c.leased, 0) <= per_endpoint)
              .order_by(due.c.turn, due.c.next_attempt_at, due.c.id).limit(most))
    async with services.db.write() as tx:
        if not services.db.is_sqlite:  # two hosts' claims must not both count the same free slots
            await tx.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK})
        order = [row.id for row in (await tx.execute(picked)).all()]
        if not order:
            return []
        ids = set((await tx.scalars(update(WebhookDelivery)
                                    .where(WebhookDelivery.id.in_(order), free,
                                           WebhookDelivery.status.in_(OPEN_STATUSES))
                                    .values(lease_holder=holder, leased_until=now + LEASE)
                                    .returning(WebhookDelivery.id))).all())
        if not ids:
            return []
        rows = {r.id: r for r in (await tx.execute(
            select(WebhookDelivery.id, WebhookDelivery.endpoint_id, WebhookDelivery.event, WebhookDelivery.event_id,
                   WebhookDelivery.payload, WebhookDelivery.attempts, WebhookDelivery.created_at, WebhookEndpoint.url,
                   WebhookEndpoint.secret_sealed, WebhookEndpoint.disabled_at, WebhookEndpoint.suspended_at)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id.in_(ids)))).all()}
    return [Due(r.id, r.endpoint_id, r.event, r.event_id, r.payload, r.attempts, r.created_at, r.url, r.secret_sealed,
                r.disabled_at is not None or r.suspended_at is not None,
                r.disabled_at is None and r.suspended_at is not None)
            for r in (rows[i] for i in order if i in rows)]  # in the round-robin order


async def _attempt(services: Services, client: httpx.AsyncClient, due: Due) -> Attempt:
    """One attempt under one deadline: a receiver (or its DNS) that answers slowly, however
    it spreads its bytes, costs at most ``ATTEMPT_SECONDS``."""
    if due.endpoint_disabled:  # an event or redelivery queued as its endpoint was deleted or disabled
        return Attempt(None, words.ENDPOINT_SUSPENDED_ERROR if due.endpoint_suspended else words.ENDPOINT_DELETED_ERROR,
                       final=True)
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
                    "Tradecert-Event": due.event, "Tradecert-Event-Id": due.event_id})
    headers.update(signatures.headers(secret, due.event_id, body, services.clock.now()))
    try:
        async with client.stream("POST", url, content=body, headers=headers, extensions=extensions) as response:
            code = response.status_code  # the body is not read: a receiver cannot make us download
    except (httpx.HTTPError, OSError, socket.gaierror) as exc:
        return Attempt(None, f"{type(exc).__name__}: {exc}"[:2000] or type(exc).__name__)
    return Attempt(code, None if 200 <= code < 300 else f"HTTP {code}")


async def _endpoint_health(tx: AsyncSession, services: Services, due: Due, attempt: Attempt,
                           now: dt.datetime) -> Words | None:
    """Note the attempt on its endpoint: a 2xx clears ``failing_since``, a failure sets it if
    unset; returns the reason to disable the endpoint now (410, or failing too long), if any."""
    if attempt.delivered:
        await tx.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == due.endpoint_id,
                                                       WebhookEndpoint.failing_since.is_not(None)).values(failing_since=None))
        return None
    since = await tx.scalar(update(WebhookEndpoint).where(WebhookEndpoint.id == due.endpoint_id)
                            .values(failing_since=func.coalesce(WebhookEndpoint.failing_since, literal(now, UTCDateTime())))
                            .returning(WebhookEndpoint.failing_since))
    if attempt.status_code == GONE:
        return words.GONE_REASON
    days = limit(services.rules.current, services.clock.today(), "webhook_disable_after_days")
    if since is not None and now - since >= dt.timedelta(days=days):
        return words.FAILING_REASON.format(days=days, since=since.astimezone(TOKYO).isoformat(timespec="minutes"))
    return None


async def _suspend(tx: AsyncSession, services: Services, endpoint_id: int, reason: Words, now: dt.datetime) -> None:
    """Stop sending to an endpoint: its open deliveries end FAILED, its registrant is mailed.
    Nothing when it is already disabled or deleted (another run got there first)."""
    row = (await tx.execute(update(WebhookEndpoint)
                            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.suspended_at.is_(None),
                                   WebhookEndpoint.disabled_at.is_(None))
                            .values(suspended_at=now, suspended_reason=reason.en[:200])
                            .returning(WebhookEndpoint.url, WebhookEndpoint.created_by_id))).first()
    if row is None:
        return
    await tx.execute(update(WebhookDelivery).where(
        WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status.in_(OPEN_STATUSES))
        .values(status=WebhookDeliveryStatus.FAILED, next_attempt_at=None, last_error=words.ENDPOINT_SUSPENDED_ERROR,
                lease_holder=None, leased_until=None))
    log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason.en)
    admin = await tx.get(Account, row.created_by_id)
    if admin is not None and admin.email:
        words_of = mail.render(services.rules.current, services.clock.today(), "webhook.endpoint_disabled", {
            "url": row.url, "reason": reason.en, "reason_ja": reason.ja, "disabled_at": now.astimezone(TOKYO).strftime("%Y年%m月%d日 %H:%M")})
        queue_mail(tx, now, "webhook.endpoint_disabled", admin.email, words_of.subject, words_of.body,
                   account_id=admin.id)


async def _record(services: Services, holder: str, due: Due, attempt: Attempt) -> WebhookDeliveryStatus:
    now = services.clock.now()
    values: dict[str, object] = {"lease_holder": None, "leased_until": None, "last_error": attempt.error}
    attempts = due.attempts + (0 if attempt.final else 1)  # a refusal before sending is no attempt
    values["attempts"] = attempts
    values["last_status_code"] = attempt.status_code
    async with services.db.write() as tx:
        # the endpoint row first, then deliveries: delete_endpoint's order
        disable = None if attempt.final else await _endpoint_health(tx, services, due, attempt, now)
        if attempt.delivered:
            status = WebhookDeliveryStatus.DELIVERED
            values.update(delivered_at=now, next_attempt_at=None)
        else:
            deadline = due.created_at + retry_period(services)
            if attempt.final or disable is not None or now >= deadline:
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
        await tx.execute(update(WebhookDelivery).where(WebhookDelivery.id == due.id,
                                                       WebhookDelivery.lease_holder == holder).values(**values))
        if disable is not None:
            await _suspend(tx, services, due.endpoint_id, disable, now)
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
    work per delivery, after its request), and claim again as attempts end. No claim and no
    attempt starts ``budget`` seconds (elapsed time, not the business clock) after the run
    began; what was claimed and did not start is given back."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:64]
    claimed = await _claim(services, holder, services.clock.now())
    if not claimed:
        return "nothing to deliver"
    loop = asyncio.get_running_loop()
    stop_starting_at = loop.time() + budget
    gate = asyncio.Semaphore(CONCURRENCY)
    outcomes: list[WebhookDeliveryStatus] = []
    left = 0
    total = 0

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
        running: set[asyncio.Task[None]] = set()
        try:
            while claimed or running:
                total += len(claimed)
                running.update(asyncio.create_task(one(client, due)) for due in claimed)  # in the claim's order
                claimed = []
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # an error in a task is the run's error
                room = BATCH - len(running)
                if room > 0 and loop.time() < stop_starting_at:  # an attempt ended: its endpoint may have room again
                    claimed = await _claim(services, holder, services.clock.now(), room)
        finally:
            for task in running:  # only after an error: the leases of what did not finish expire
                task.cancel()
    counts = {s: outcomes.count(s) for s in WebhookDeliveryStatus if outcomes.count(s)}
    summary = [f"{n} {s.value.lower()}" for s, n in counts.items()]
    if left:
        summary.append(f"{left} left for the next run")
        log.warning("webhook delivery: %s of %s claimed deliveries left for the next run (slow receivers)",
                    left, total)
    return ", ".join(summary)
