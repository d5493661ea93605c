"""Identity use cases: login, logout, password change, the viewer, permission checks.

Sessions: an opaque random token is handed to the client once; the database keeps only
its SHA-256. A session ends after ``session_idle_minutes`` unused, ``session_absolute_hours``
after login, at logout, and — all of an account's sessions — when its password changes.

Throttling counts password checks per login name (chamber code + ID) whether or not the ID
exists. An attempt is counted, atomically and committed, *before* its password is checked,
so parallel requests and worker processes together get at most ``login_lock_after`` checks
before the name is refused; a success clears the count. When refused, no password is
checked, so the answer and its timing say nothing about which IDs exist.

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
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from persistence.models import (
    Account,
    ApiKey,
    AuditEntry,
    Chamber,
    LoginThrottle,
    RegistrationMembership,
    Session,
    TradeRegistration,
)
from resolvers.core import ratelimit
from resolvers.core.context import Context
from resolvers.core.errors import ErrorCode, Forbidden, TooManyRequests, Unauthenticated, UserFailure
from resolvers.core.messages import Words
from resolvers.identity import key_revocation, messages, queries
from resolvers.identity.key_revocation import revoke_keys_with_password
from resolvers.identity.names import (
    ECO_ACCOUNT_KINDS,
    NACCS_ACCOUNT_KINDS,
    AccountKind,
    AccountStatus,
    Membership,
    SessionEnd,
)
from resolvers.identity.passwords import (
    PASSWORD_MAX,
    PASSWORD_MIN,
    hash_password,
    needs_rehash,
    password_is_acceptable,
    verify_or_spend,
    verify_password,
)
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


# --------------------------------------------------------------------------- sessions


def _presented_token(ctx: Context) -> str | None:
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
    token = _presented_token(ctx)
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


def _set_cookie(ctx: Context, token: str | None) -> None:
    response = ctx.response
    if response is None:
        return
    secure = ctx.services.settings.public_url.startswith("https://")
    if token is None:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=secure)
    else:
        response.set_cookie(
            SESSION_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/",
            max_age=ctx.services.settings.session_absolute_hours * 3600,
        )


async def _new_session(session: AsyncSession, ctx: Context, account_id: int, now: dt.datetime) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        Session(
            account_id=account_id, token_hash=hash_token(token), created_at=now, last_seen_at=now,
            absolute_expires_at=now + dt.timedelta(hours=ctx.services.settings.session_absolute_hours),
        )
    )
    return token


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


# --------------------------------------------------------------------------- login


@dataclass(frozen=True)
class LoginResult:
    token: str
    account: Account


def _login_key(chamber_code: str | None, username: str) -> str:
    return f"{(chamber_code or '-').strip()}|{username.strip().lower()}"[:128]


async def login(ctx: Context, chamber_code: str | None, username: str, password: str) -> LoginResult:
    db = ctx.services.db
    now = ctx.clock.now()
    key = _login_key(chamber_code, username)
    if len(username) > 64 or len(password) > 1024 or (chamber_code is not None and len(chamber_code) > 8) \
            or "\x00" in key:  # no ID is that long or holds a NUL (PostgreSQL text cannot)
        raise UserFailure(ErrorCode.INVALID_CREDENTIALS, ["input", "password"])

    locked_until = await _take_attempt(ctx, key, now)  # counted before the password is checked
    if locked_until is not None:
        minutes = max(1, -(-int((locked_until - now).total_seconds()) // 60))
        raise UserFailure(ErrorCode.TOO_MANY_ATTEMPTS, ["input", "username"], minutes=minutes)

    async with db.read() as session:
        found = await session.scalar(_usable_account(chamber_code, username))
    ok = await verify_or_spend(found.password_hash if found is not None else None, password)
    if not ok or found is None or found.password_hash is None:
        raise UserFailure(ErrorCode.INVALID_CREDENTIALS, ["input", "password"])  # the attempt is already counted

    new_hash = await hash_password(password) if needs_rehash(found.password_hash) else None
    presented = _presented_token(ctx)
    async with db.write() as session:
        account = await session.scalar(_usable_account(chamber_code, username).where(Account.id == found.id))
        if account is None:  # deleted or withdrawn while its password was being checked
            raise UserFailure(ErrorCode.INVALID_CREDENTIALS, ["input", "password"])
        await session.execute(delete(LoginThrottle).where(LoginThrottle.login_key == key))  # a success clears the count
        if presented:  # rotate: the session this browser had before ends
            await session.execute(
                update(Session).where(Session.token_hash == hash_token(presented), Session.ended_at.is_(None))
                .values(ended_at=now, end_reason=SessionEnd.ROTATED)
            )
        if new_hash:
            await session.execute(update(Account).where(Account.id == account.id).values(password_hash=new_hash))
        token = await _new_session(session, ctx, account.id, now)
        audit(session, ctx, account, "login")
    _set_cookie(ctx, token)
    return LoginResult(token, account)


def _usable_account(chamber_code: str | None, username: str) -> Select[tuple[Account]]:
    """The account that may log in under this name: active, not deleted, its registration
    (if any) not withdrawn."""
    kinds = ECO_ACCOUNT_KINDS if chamber_code else NACCS_ACCOUNT_KINDS
    query = (
        select(Account).outerjoin(TradeRegistration, TradeRegistration.id == Account.registration_id)
        .where(Account.username == username.strip(), Account.kind.in_(kinds), Account.status == AccountStatus.ACTIVE,
               Account.deleted_at.is_(None), TradeRegistration.withdrawn_at.is_(None))
    )
    if chamber_code:
        query = query.join(Chamber, Chamber.id == Account.chamber_id).where(Chamber.code == chamber_code.strip())
    return query


async def _take_attempt(ctx: Context, key: str, now: dt.datetime) -> dt.datetime | None:
    """Count one password check for ``key`` unless the name is refused; returns the end of
    the refusal, or None when the check may go ahead.

    Its own short transaction, committed before the password is checked, so parallel
    requests and other worker processes see every attempt: the conditional upsert adds
    one only while the name is not locked (PostgreSQL re-evaluates the condition on the
    newest row after waiting for its lock; SQLite's write lock serialises), and the
    attempt that reaches ``login_lock_after`` sets the lock in the same transaction. A
    failure then needs no further write; a success deletes the row.
    """
    settings = ctx.services.settings
    db = ctx.services.db
    insert = sqlite.insert if db.is_sqlite else postgresql.insert
    table = LoginThrottle.__table__
    fresh = insert(LoginThrottle).values(login_key=key, failures=1, last_failure_at=now)
    upsert = fresh.on_conflict_do_update(
        index_elements=[table.c.login_key],
        set_={"failures": table.c.failures + 1, "last_failure_at": fresh.excluded.last_failure_at},
        where=or_(table.c.locked_until.is_(None), table.c.locked_until <= now),
    ).returning(table.c.failures)
    async with db.write() as session:
        attempts = await session.scalar(upsert)
        if attempts is None:  # refused: no check
            return await session.scalar(select(LoginThrottle.locked_until).where(LoginThrottle.login_key == key))
        if attempts >= settings.login_lock_after:
            seconds = min(settings.login_lock_seconds * 2 ** (attempts - settings.login_lock_after),
                          settings.login_lock_max_seconds)
            await session.execute(
                update(LoginThrottle).where(LoginThrottle.login_key == key)
                .values(locked_until=now + dt.timedelta(seconds=seconds))
            )
    return None


async def logout(ctx: Context, all_sessions: bool = False) -> None:
    who = await require_viewer(ctx)
    require_person(who, messages.LOG_OUT)
    scope = Session.account_id == who.account.id if all_sessions else Session.id == who.session_id
    async with ctx.services.db.write() as session:
        await session.execute(
            update(Session).where(scope, Session.ended_at.is_(None)).values(ended_at=ctx.clock.now(), end_reason=SessionEnd.LOGOUT)
        )
        audit(session, ctx, who.account, "logout")
    _set_cookie(ctx, None)


async def change_password(ctx: Context, current_password: str, new_password: str) -> str:
    """Change the viewer's own password; every session and API key of the account ends (the
    owner is told by mail) and a new session (returned) begins."""
    who = await require_viewer(ctx)
    require_person(who, messages.CHANGE_PASSWORDS)
    await authorize(ctx, who, "account.change_own_password", {"self"})
    if not await verify_password(who.account.password_hash or "", current_password[:1024]):
        raise UserFailure(ErrorCode.INVALID_CREDENTIALS, ["input", "currentPassword"])
    if not password_is_acceptable(new_password, who.account.username):
        raise UserFailure(ErrorCode.PASSWORD_TOO_WEAK, ["input", "newPassword"], min=PASSWORD_MIN, max=PASSWORD_MAX)
    new_hash = await hash_password(new_password)
    now = ctx.clock.now()
    async with ctx.services.db.write() as session:
        await session.execute(
            update(Account).where(Account.id == who.account.id).values(password_hash=new_hash, updated_at=now)
        )
        await session.execute(
            update(Session).where(Session.account_id == who.account.id, Session.ended_at.is_(None))
            .values(ended_at=now, end_reason=SessionEnd.PASSWORD_CHANGED)
        )
        # a key never outlives a login: one minted with the old password ends with its sessions
        keys = await revoke_keys_with_password(session, ctx.services.rules.current, ctx.clock.today(), now,
                                               who.account.id, who.account.id, key_revocation.PASSWORD_CHANGED)
        token = await _new_session(session, ctx, who.account.id, now)
        audit(session, ctx, who.account, "account.change_own_password", target=f"Account:{who.account.id}",
              detail=key_revocation.audit_detail(keys))
    _set_cookie(ctx, token)
    ctx.loaders.pop("viewer", None)
    return token


# --------------------------------------------------------------------------- reads


async def me(ctx: Context) -> AccountView | None:
    """The logged-in account, with its registration (read with the viewer: one statement)."""
    who = await viewer(ctx)
    if who is None:
        return None
    await authorize(ctx, who, "account.view_self", {"self"})
    return who.view


async def sub_accounts(ctx: Context) -> list[AccountView]:
    """A signer: the sub-IDs it generated. An applicant's admin: every activated sub-ID of
    its registration. Anyone else: forbidden (permissions.yaml). The same rule as
    ``subaccounts.list_sub_accounts``, read set-based into views."""
    who = await require_viewer(ctx)
    generated, registration = sub_account_scopes(ctx, who)
    found = {view.id: view for view in await queries.sub_accounts_of_signer(ctx, who.id)} if generated else {}
    if registration:
        found.update((view.id, view) for view in await queries.active_sub_accounts_of(ctx, who.registration_id))
    return [found[k] for k in sorted(found)]


def sub_account_scopes(ctx: Context, who: Viewer) -> tuple[bool, bool]:
    """Which sub-IDs ``who`` may list (subaccount.view): those it generated, and the activated
    ones of its registration — FORBIDDEN when permissions.yaml allows neither."""
    policy, today = ctx.services.rules.current, ctx.clock.today()
    generated = is_allowed(policy, today, who.actor, "subaccount.view", {"generated_by_me"})
    registration = (who.account.registration_id is not None
                    and is_allowed(policy, today, who.actor, "subaccount.view", {"own_registration"}))
    if not (generated or registration):
        raise Forbidden()
    return generated, registration


async def account_by_id(ctx: Context, account_id: int) -> Account | None:
    """The account row (every column), read in the request's read unit."""
    async with ctx.read() as session:
        return await session.get(Account, account_id)


async def membership_at(session: AsyncSession, registration_id: int, now: dt.datetime) -> Membership | None:
    """The membership in force at ``now``, read in the caller's unit of work (a use case
    that fixes a fee reads it after taking the registration's lock)."""
    found = await session.scalar(
        select(RegistrationMembership.membership)
        .where(
            RegistrationMembership.registration_id == registration_id,
            RegistrationMembership.valid_from <= now,
            (RegistrationMembership.valid_until.is_(None)) | (RegistrationMembership.valid_until > now),
        )
        .order_by(RegistrationMembership.valid_from.desc())
        .limit(1)
    )
    return Membership(found) if found is not None else None
