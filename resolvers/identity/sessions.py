"""Sessions: login (with its throttle), the session cookie, logout.

Sessions: an opaque random token is handed to the client once; the database keeps only
its SHA-256. A session ends after ``session_idle_minutes`` unused, ``session_absolute_hours``
after login, at logout, and — all of an account's sessions — when its password changes
(``accounts.change_password``). Which account a token stands for is resolvers/identity/actor.py.

Throttling counts password checks per login name (chamber code + ID) whether or not the ID
exists. An attempt is counted, atomically and committed, *before* its password is checked,
so parallel requests and worker processes together get at most ``login_lock_after`` checks
before the name is refused; a success clears the count. When refused, no password is
checked, so the answer and its timing say nothing about which IDs exist.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import Select, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Account, Chamber, LoginThrottle, Session, TradeRegistration
from resolvers.core.context import Context
from resolvers.core.errors import ErrorCode, UserFailure
from resolvers.identity import messages
from resolvers.identity.actor import SESSION_COOKIE, audit, hash_token, presented_token, require_person, require_viewer
from resolvers.identity.names import ECO_ACCOUNT_KINDS, NACCS_ACCOUNT_KINDS, AccountStatus, SessionEnd
from resolvers.identity.passwords import hash_password, needs_rehash, verify_or_spend


def set_cookie(ctx: Context, token: str | None) -> None:
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


async def new_session(session: AsyncSession, ctx: Context, account_id: int, now: dt.datetime) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        Session(
            account_id=account_id, token_hash=hash_token(token), created_at=now, last_seen_at=now,
            absolute_expires_at=now + dt.timedelta(hours=ctx.services.settings.session_absolute_hours),
        )
    )
    return token



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
    presented = presented_token(ctx)
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
        token = await new_session(session, ctx, account.id, now)
        audit(session, ctx, account, "login")
    set_cookie(ctx, token)
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
    set_cookie(ctx, None)
