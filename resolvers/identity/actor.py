"""Who a request acts as: the viewer (by session token or API key), permission checks, audit rows.

Sessions: an opaque random token is handed to the client once (resolvers/identity/sessions.py
begins and ends them); the database keeps only its SHA-256. A session is the viewer's while
it is open, within ``session_idle_minutes`` of its last use and ``session_absolute_hours`` of
login.

API keys (``Authorization: Bearer tck_…``, resolvers/identity/api_keys.py makes them) stand in
for a session: the same account, the same permissions, looked up by the key's SHA-256 under
the same conditions (account active and not deleted, registration not withdrawn) plus the
key's own (not revoked, not expired). Each request a key authenticates is counted against
``api_key_requests_per_minute`` (rules/limits.yaml) in ``rate_limits`` — shared by every
worker — and over it the request is refused as a whole (``TooManyRequests``). What only a
person may do (``require_person``) refuses a key.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from persistence.models import Account, ApiKey, AuditEntry, Session
from resolvers.core import ratelimit
from resolvers.core.context import Context
from resolvers.core.errors import Forbidden, TooManyRequests, Unauthenticated
from resolvers.core.messages import Words
from resolvers.identity import messages, queries
from resolvers.identity.names import AccountKind, AccountStatus
from resolvers.identity.queries import AccountView
from rules.limits import limit
from rules.permissions import Actor, is_allowed

SESSION_COOKIE = "tradecert_session"
# last_seen_at is written at most this often: a read request writes nothing in between. The
# idle limit (session_idle_minutes) is counted from it, so a session may end up to this much
# earlier than its last use plus the idle limit — never later.
TOUCH_EVERY = dt.timedelta(minutes=1)
TOUCH = (update(Session)
         .where(Session.id == bindparam("session_id"), Session.ended_at.is_(None),
                Session.last_seen_at <= bindparam("seen_before"))
         .values(last_seen_at=bindparam("now", type_=Session.last_seen_at.type))
         .execution_options(synchronize_session=False))
API_KEY_PREFIX = "tck_"  # a bearer token starting so is an API key, not a session
# An API key's last_used_at: the same once-a-minute write, by the UPDATE's own condition.
TOUCH_KEY = (update(ApiKey)
             .where(ApiKey.id == bindparam("key_id"), ApiKey.revoked_at.is_(None),
                    or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= bindparam("seen_before")))
             .values(last_used_at=bindparam("now", type_=ApiKey.last_used_at.type))
             .execution_options(synchronize_session=False))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Viewer:
    """The logged-in account of this request: its view (registration, chamber and membership
    in it) for reads, and — built only when a use case asks — the ORM row it may hand on
    (``account``: every column, detached, as a row read in a unit of work that ended)."""

    view: AccountView
    session_id: int | None  # None when an API key authenticated the request
    _record: dict[str, Any] = field(repr=False, compare=False)
    api_key_id: int | None = None  # the key that authenticated the request (audit rows name it)

    @property
    def id(self) -> int:
        return self.view.id

    @property
    def kind(self) -> str:
        return self.view.kind

    @property
    def registration_id(self) -> int | None:
        return self.view.registration_id

    @property
    def chamber_id(self) -> int | None:
        return self.view.chamber_id

    @property
    def registration_kind(self) -> str | None:
        return self.view.registration.kind if self.view.registration is not None else None

    @functools.cached_property
    def account(self) -> Account:
        row = Account(**self._record)
        make_transient_to_detached(row)
        return row

    @property
    def actor(self) -> Actor:
        return Actor(self.view.id, self.view.kind, self.registration_kind)


def presented_token(ctx: Context) -> str | None:
    request = ctx.request
    if request is None:
        return None
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    cookie = request.cookies.get(SESSION_COOKIE) or None
    if cookie is not None and cookie.startswith(API_KEY_PREFIX):
        return None  # keys are for systems, sent in the Authorization header; the cookie holds sessions
    return cookie


async def viewer(ctx: Context) -> Viewer | None:
    """The account behind the presented token, or None. Cached for the request.

    One statement in the request's read unit (``queries.VIEWER_BY_TOKEN`` by ``ctx.rows``).
    The session must be open, within its absolute and idle limits; the account active and
    not deleted; its registration (if any) not withdrawn. ``last_seen_at`` (the idle
    limit's start) is written only when it is older than TOUCH_EVERY, by ``_touch``. A
    ``tck_`` token is an API key instead (``_viewer_by_key``)."""
    if "viewer" in ctx.loaders:
        cached: Viewer | None = ctx.loaders["viewer"]
        return cached
    # Sibling fields resolve as concurrent tasks: the first finds the viewer, the others wait
    # for it, so a request is one lookup (and one count of its API key), not one per field.
    lock: asyncio.Lock = ctx.loaders.setdefault("viewer_lock", asyncio.Lock())
    async with lock:
        if "viewer" in ctx.loaders:
            found: Viewer | None = ctx.loaders["viewer"]
            return found
        return await _find_viewer(ctx)


async def _find_viewer(ctx: Context) -> Viewer | None:
    if "viewer_refused" in ctx.loaders:  # a key over its limit: every field of the request is refused
        raise ctx.loaders["viewer_refused"]
    token = presented_token(ctx)
    found: Viewer | None = None
    if token and len(token) <= 128 and token.startswith(API_KEY_PREFIX):
        found = await _viewer_by_key(ctx, token)
    elif token and len(token) <= 128:
        now = ctx.clock.now()
        rows = await ctx.rows(queries.VIEWER_BY_TOKEN, {"token_hash": hash_token(token), "now": now})
        if rows:
            row = rows[0]
            session_id, last_seen_at, absolute_expires_at, ended_at, withdrawn_at = row[:5]
            view = queries.viewer_account(row)
            record = queries.viewer_record(row)
            idle_limit = last_seen_at + dt.timedelta(minutes=ctx.services.settings.session_idle_minutes)
            alive = ended_at is None and now < absolute_expires_at and now < idle_limit
            if (alive and view.status == AccountStatus.ACTIVE and record["deleted_at"] is None
                    and withdrawn_at is None):
                found = Viewer(view, session_id, record)
                if now - last_seen_at >= TOUCH_EVERY:
                    await _touch(ctx, session_id, now)
    ctx.loaders["viewer"] = found
    return found


async def _viewer_by_key(ctx: Context, key: str) -> Viewer | None:
    """The account behind an API key: one short write unit reads it (``queries.VIEWER_BY_KEY``)
    and writes ``last_used_at`` at most once a minute (``TOUCH_KEY``); then the key's request
    is counted (``_spend_key``) in a unit of its own.

    Not in the request's read unit: a request that held its read connection while it waited
    for a second one to count the key would, under a flood of parallel requests with one
    key, hold every connection of the pool and wait for the others (a security review
    stalled the server for 30 s so). Units one after another hold one connection at a time."""
    now = ctx.clock.now()
    async with ctx.services.db.write() as unit:
        row = (await unit.execute(queries.VIEWER_BY_KEY, {"secret_hash": hash_token(key), "now": now})).first()
        if row is None:
            return None
        key_id, last_used_at, expires_at, revoked_at, withdrawn_at = row[:5]
        view = queries.viewer_account(row)
        record = queries.viewer_record(row)
        usable = revoked_at is None and (expires_at is None or now < expires_at)
        if not (usable and view.status == AccountStatus.ACTIVE and record["deleted_at"] is None and withdrawn_at is None):
            return None
        if last_used_at is None or now - last_used_at >= TOUCH_EVERY:
            await unit.execute(TOUCH_KEY, {"key_id": key_id, "now": now, "seen_before": now - TOUCH_EVERY})
    await _spend_key(ctx, key_id, now)
    return Viewer(view, None, record, api_key_id=key_id)


async def _spend_key(ctx: Context, key_id: int, now: dt.datetime) -> None:
    """Count one request of the key against ``api_key_requests_per_minute`` (a fixed
    one-minute window in ``rate_limits``: one conditional upsert, committed before the
    request goes on, so parallel requests and every worker share the count). Over the limit
    the refusal is kept for the rest of the request and raised."""
    most = limit(ctx.services.rules.current, ctx.clock.today(), "api_key_requests_per_minute")
    per_key = ratelimit.Limit("api_key", most, dt.timedelta(minutes=1))
    try:
        await ratelimit.spend(ctx.services.db, now, [ratelimit.Charge(per_key, str(key_id), hashed=False)])
    except ratelimit.RateLimited as over:
        refused = TooManyRequests(over.retry_after)
        ctx.loaders["viewer_refused"] = refused
        response = ctx.response
        if response is not None and hasattr(response, "headers"):
            response.headers["Retry-After"] = str(over.retry_after)
        raise refused from None


async def _touch(ctx: Context, session_id: int, now: dt.datetime) -> None:
    """Move the session's ``last_seen_at`` to ``now`` — unless another request did so within
    TOUCH_EVERY: decided by the UPDATE's own condition on the row it holds, so requests of
    one session racing past the read write it once (the others match no row), and a session
    that ended meanwhile is left alone. Its own short write unit: the request's read unit
    is only read from."""
    async with ctx.services.db.write() as unit:
        await unit.execute(TOUCH, {"session_id": session_id, "now": now, "seen_before": now - TOUCH_EVERY})


async def require_viewer(ctx: Context) -> Viewer:
    found = await viewer(ctx)
    if found is None:
        raise Unauthenticated()
    return found


def require_person(who: Viewer, doing: Words) -> None:
    """Refuse what only a person logged in with a password may do when the request came with
    an API key (the issue: a key cannot create keys, change passwords or manage sub-IDs;
    logging out has no meaning for it). FORBIDDEN, its message naming what was refused."""
    if who.api_key_id is not None:
        raise Forbidden(messages.NOT_WITH_API_KEY.format(doing=doing))


async def authorize(ctx: Context, who: Viewer, action: str, relations: set[str]) -> None:
    """Raise Forbidden unless permissions.yaml allows ``action`` under one of ``relations``."""
    if not is_allowed(ctx.services.rules.current, ctx.clock.today(), who.actor, action, relations):
        raise Forbidden()


def audit(session: AsyncSession, ctx: Context, account: Account | None, action: str, target: str | None = None, detail: str | None = None) -> None:
    """Record who did what; for a sub-ID the responsible signer is the one that generated it.
    When the request's viewer is ``account`` authenticated by an API key, the row names the key."""
    responsible = None
    if account is not None:
        responsible = account.generated_by_id if account.kind == AccountKind.SUB else account.id
    who = ctx.loaders.get("viewer")
    api_key_id = who.api_key_id if isinstance(who, Viewer) and account is not None and who.id == account.id else None
    session.add(
        AuditEntry(
            at=ctx.clock.now(), actor_id=account.id if account else None, responsible_id=responsible,
            chamber_id=account.chamber_id if account else None, action=action, target=target,
            request_id=ctx.request_id, detail=detail, api_key_id=api_key_id,
        )
    )
