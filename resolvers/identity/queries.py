"""Reads of identity for the schema: plain frozen views, loaded set-based.

Every read here runs in the request's read unit with SQLAlchemy Core statements over
table columns — no ORM identity map — built once and run by ``ctx.rows`` (or, for other
domains' readers holding a session, ``accounts_by_id`` / ``registrations_by_id``). They
answer views: frozen dataclasses the schema maps field by field (``schema/identity.py``:
``Account.from_view``, ``TradeRegistration.from_view``, ``Chamber.from_view``).

A registration always comes with its chamber and the membership in force now, in the same
statement, and so does an account (its registration's). The viewer — session, account,
registration, chamber, membership — is one statement too (``VIEWER_BY_TOKEN``, read by
``actor.viewer``), so ``me`` costs one statement whatever it asks for. This module
imports nothing of identity's use cases: ``actor`` builds the viewer on it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from persistence.models import Account, ApiKey, Chamber, RegistrationMembership, Session, TradeRegistration
from resolvers.core import loaders
from resolvers.core.context import Context

SESSIONS = Session.__table__.alias("s")
API_KEYS = ApiKey.__table__.alias("k")
ACCOUNTS = Account.__table__.alias("a")
REGISTRATIONS = TradeRegistration.__table__.alias("r")
CHAMBERS = Chamber.__table__.alias("c")
MEMBERSHIPS = RegistrationMembership.__table__.alias("m")


# --------------------------------------------------------------------------- views


@dataclass(frozen=True, slots=True)
class ChamberView:
    """商工会議所."""

    id: int
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class RegistrationView:
    """A trade registration with its chamber and the membership in force when it was read."""

    id: int
    number: str
    kind: str
    name: str
    valid_from: dt.date
    valid_until: dt.date | None
    allows_bank_transfer: bool
    allows_card: bool
    chamber: ChamberView
    membership: str | None  # None only for a registration with no membership period covering now


@dataclass(frozen=True, slots=True)
class AccountView:
    """A login. ``registration`` / ``generated_by`` are the related views when the reader
    loaded them; None with the id set means "not loaded" (the schema loads it on demand)."""

    id: int
    kind: str
    username: str
    name: str
    email: str | None
    phone: str | None
    status: str
    notified_at: dt.datetime | None
    activation_expires_at: dt.datetime | None
    chamber_id: int | None
    registration_id: int | None
    generated_by_id: int | None
    registration: RegistrationView | None = None
    generated_by: AccountView | None = None


# --------------------------------------------------------------------------- statements


def membership_now(registration_id: ColumnElement[Any], now: ColumnElement[Any]) -> ColumnElement[Any]:
    """The membership in force at ``now`` of ``registration_id`` (the newest period covering
    it), as a scalar subquery: rules/fees decides prices from the membership history."""
    m = MEMBERSHIPS
    return (
        select(m.c.membership)
        .where(m.c.registration_id == registration_id, m.c.valid_from <= now,
               or_(m.c.valid_until.is_(None), m.c.valid_until > now))
        .order_by(m.c.valid_from.desc())
        .limit(1)
        .scalar_subquery()
    )


REGISTRATION_COLUMNS = (
    REGISTRATIONS.c.id, REGISTRATIONS.c.number, REGISTRATIONS.c.kind, REGISTRATIONS.c.name, REGISTRATIONS.c.valid_from,
    REGISTRATIONS.c.valid_until, REGISTRATIONS.c.allows_bank_transfer, REGISTRATIONS.c.allows_card,
    CHAMBERS.c.id, CHAMBERS.c.code, CHAMBERS.c.name,
)
ACCOUNT_COLUMNS = (
    ACCOUNTS.c.id, ACCOUNTS.c.kind, ACCOUNTS.c.username, ACCOUNTS.c.name, ACCOUNTS.c.email, ACCOUNTS.c.phone,
    ACCOUNTS.c.status, ACCOUNTS.c.notified_at, ACCOUNTS.c.activation_expires_at, ACCOUNTS.c.chamber_id,
    ACCOUNTS.c.registration_id, ACCOUNTS.c.generated_by_id,
)


def _registrations(now: ColumnElement[Any]) -> Select[Any]:
    """Registrations joined with their chamber and their membership now."""
    return (select(*REGISTRATION_COLUMNS, membership_now(REGISTRATIONS.c.id, now))
            .join_from(REGISTRATIONS, CHAMBERS, CHAMBERS.c.id == REGISTRATIONS.c.chamber_id))


def _registration_of(row: Sequence[Any], at: int = 0) -> RegistrationView:
    """The view of the registration columns (REGISTRATION_COLUMNS, then the membership) at ``at``."""
    (pk, number, kind, name, valid_from, valid_until, bank, card, chamber_pk, chamber_code, chamber_name,
     membership) = row[at:at + 12]
    return RegistrationView(pk, number, kind, name, valid_from, valid_until, bool(bank), bool(card),
                            ChamberView(chamber_pk, chamber_code, chamber_name), membership)


def _account_of(row: Sequence[Any], registration: RegistrationView | None = None) -> AccountView:
    (pk, kind, username, name, email, phone, status, notified_at, activation_expires_at, chamber_id, registration_id,
     generated_by_id) = row[:12]
    return AccountView(pk, kind, username, name, email, phone, status, notified_at, activation_expires_at, chamber_id,
                       registration_id, generated_by_id, registration)


def _accounts_with_registrations(now: ColumnElement[Any]) -> Select[Any]:
    """Accounts, each with its registration (chamber, membership) when it has one: one statement."""
    return (
        select(*ACCOUNT_COLUMNS, *REGISTRATION_COLUMNS, membership_now(REGISTRATIONS.c.id, now))
        .select_from(ACCOUNTS)
        .outerjoin(REGISTRATIONS, REGISTRATIONS.c.id == ACCOUNTS.c.registration_id)
        .outerjoin(CHAMBERS, CHAMBERS.c.id == REGISTRATIONS.c.chamber_id)
    )


def _account_with_registration(row: Sequence[Any]) -> AccountView:
    registration = _registration_of(row, 12) if row[12] is not None else None
    return _account_of(row, registration)


# Built once, with bind parameters: building a statement and its cache key costs more than
# running it on SQLite, and a statement object keeps the key it computed.
NOW: BindParameter[dt.datetime] = bindparam("now")
IDS: BindParameter[list[int]] = bindparam("ids", expanding=True)
REGISTRATIONS_BY_ID = _registrations(NOW).where(REGISTRATIONS.c.id.in_(IDS))
ACCOUNTS_BY_ID = _accounts_with_registrations(NOW).where(ACCOUNTS.c.id.in_(IDS))
_LIVE_SUBS = and_(ACCOUNTS.c.kind == "SUB", ACCOUNTS.c.deleted_at.is_(None))
SUBS_OF_SIGNER = (_accounts_with_registrations(NOW)
                  .where(ACCOUNTS.c.generated_by_id == bindparam("signer_id"), _LIVE_SUBS).order_by(ACCOUNTS.c.id))
ACTIVE_SUBS_OF_REGISTRATION = (
    _accounts_with_registrations(NOW)
    .where(ACCOUNTS.c.registration_id == bindparam("registration_id"), ACCOUNTS.c.status == "ACTIVE", _LIVE_SUBS)
    .order_by(ACCOUNTS.c.id))
CHAMBER_BY_ID = select(CHAMBERS.c.id, CHAMBERS.c.code, CHAMBERS.c.name).where(CHAMBERS.c.id == bindparam("chamber_id"))

# The viewer by its session token's hash: the session's facts (id, last seen, absolute
# expiry, end), the registration's withdrawal, the account as a view (ACCOUNT_COLUMNS, then
# its registration: REGISTRATION_COLUMNS and the membership now), then the account's other
# columns (ACCOUNT_REST) for the ORM row use cases are handed (``Viewer.account``).
ACCOUNT_REST = tuple(c for c in ACCOUNTS.c if c.key not in {a.key for a in ACCOUNT_COLUMNS})
VIEWER_BY_TOKEN = (
    select(SESSIONS.c.id, SESSIONS.c.last_seen_at, SESSIONS.c.absolute_expires_at, SESSIONS.c.ended_at,
           REGISTRATIONS.c.withdrawn_at, *ACCOUNT_COLUMNS, *REGISTRATION_COLUMNS,
           membership_now(REGISTRATIONS.c.id, NOW), *ACCOUNT_REST)
    .select_from(SESSIONS)
    .join(ACCOUNTS, ACCOUNTS.c.id == SESSIONS.c.account_id)
    .outerjoin(REGISTRATIONS, REGISTRATIONS.c.id == ACCOUNTS.c.registration_id)
    .outerjoin(CHAMBERS, CHAMBERS.c.id == REGISTRATIONS.c.chamber_id)
    .where(SESSIONS.c.token_hash == bindparam("token_hash"))
)
# The viewer by an API key's hash: the same row as VIEWER_BY_TOKEN, the key's facts (id, last
# used, expiry, revocation) in the session's place.
VIEWER_BY_KEY = (
    select(API_KEYS.c.id, API_KEYS.c.last_used_at, API_KEYS.c.expires_at, API_KEYS.c.revoked_at,
           REGISTRATIONS.c.withdrawn_at, *ACCOUNT_COLUMNS, *REGISTRATION_COLUMNS,
           membership_now(REGISTRATIONS.c.id, NOW), *ACCOUNT_REST)
    .select_from(API_KEYS)
    .join(ACCOUNTS, ACCOUNTS.c.id == API_KEYS.c.account_id)
    .outerjoin(REGISTRATIONS, REGISTRATIONS.c.id == ACCOUNTS.c.registration_id)
    .outerjoin(CHAMBERS, CHAMBERS.c.id == REGISTRATIONS.c.chamber_id)
    .where(API_KEYS.c.secret_hash == bindparam("secret_hash"))
)
VIEWER_ACCOUNT_AT = 5  # where the account's view begins in a VIEWER_BY_TOKEN (or VIEWER_BY_KEY) row
VIEWER_REST_AT = VIEWER_ACCOUNT_AT + len(ACCOUNT_COLUMNS) + len(REGISTRATION_COLUMNS) + 1


def viewer_account(row: Sequence[Any]) -> AccountView:
    """The account's view (its registration in it) of a VIEWER_BY_TOKEN row."""
    account = row[VIEWER_ACCOUNT_AT:VIEWER_REST_AT]
    return _account_with_registration(account)


def viewer_record(row: Sequence[Any]) -> dict[str, Any]:
    """Every column of the account of a VIEWER_BY_TOKEN row, by attribute name (for the ORM row)."""
    found = {c.key: v for c, v in zip(ACCOUNT_COLUMNS, row[VIEWER_ACCOUNT_AT:], strict=False)}
    found.update((c.key, v) for c, v in zip(ACCOUNT_REST, row[VIEWER_REST_AT:], strict=True))
    return found


# --------------------------------------------------------------------------- set-based reads


async def registrations_by_id(unit: AsyncSession, ids: Iterable[int], now: dt.datetime) -> dict[int, RegistrationView]:
    """The registrations with these ids (chamber and membership included), in one statement."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await unit.execute(REGISTRATIONS_BY_ID, {"now": now, "ids": wanted})
    return {view.id: view for view in map(_registration_of, rows)}


async def accounts_by_id(unit: AsyncSession, ids: Iterable[int], now: dt.datetime) -> dict[int, AccountView]:
    """The accounts with these ids, each with its registration, in one statement."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await unit.execute(ACCOUNTS_BY_ID, {"now": now, "ids": wanted})
    return {view.id: view for view in map(_account_with_registration, rows)}


# --------------------------------------------------------------------------- request reads (ctx.rows)


async def sub_accounts_of_signer(ctx: Context, signer_id: int) -> list[AccountView]:
    """The live sub-IDs a signer generated (each with its registration), in one statement."""
    rows = await ctx.rows(SUBS_OF_SIGNER, {"signer_id": signer_id, "now": ctx.clock.now()})
    return [_account_with_registration(row) for row in rows]


async def active_sub_accounts_of(ctx: Context, registration_id: int | None) -> list[AccountView]:
    """The activated live sub-IDs of a registration (each with its registration), in one statement."""
    rows = await ctx.rows(ACTIVE_SUBS_OF_REGISTRATION, {"registration_id": registration_id, "now": ctx.clock.now()})
    return [_account_with_registration(row) for row in rows]


async def accounts(ctx: Context, ids: Iterable[int]) -> dict[int, AccountView]:
    """Accounts by id (each with its registration) in the request's read unit: one statement."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await ctx.rows(ACCOUNTS_BY_ID, {"now": ctx.clock.now(), "ids": wanted})
    return {view.id: view for view in map(_account_with_registration, rows)}


async def registrations(ctx: Context, ids: Iterable[int]) -> dict[int, RegistrationView]:
    """Registrations by id (chamber and membership included) in the request's read unit: one statement."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await ctx.rows(REGISTRATIONS_BY_ID, {"now": ctx.clock.now(), "ids": wanted})
    return {view.id: view for view in map(_registration_of, rows)}


# --------------------------------------------------------------------------- on demand (DataLoaders)


async def _load_registrations(ctx: Context, keys: Sequence[int]) -> list[RegistrationView | None]:
    found = await registrations(ctx, keys)
    return [found.get(k) for k in keys]


async def _load_accounts(ctx: Context, keys: Sequence[int]) -> list[AccountView | None]:
    found = await accounts(ctx, keys)
    return [found.get(k) for k in keys]


async def registration(ctx: Context, registration_id: int) -> RegistrationView | None:
    """One registration, batched with the others asked for in the same tick."""
    return await loaders.loader(ctx, "registration", _load_registrations).load(registration_id)


async def account(ctx: Context, account_id: int) -> AccountView | None:
    """One account (with its registration), batched with the others asked for in the same tick."""
    return await loaders.loader(ctx, "account", _load_accounts).load(account_id)


async def chamber(ctx: Context, chamber_id: int) -> ChamberView | None:
    rows = await ctx.rows(CHAMBER_BY_ID, {"chamber_id": chamber_id})
    return ChamberView(*rows[0]) if rows else None
