"""API keys (issue 14): named credentials a signer or sub-ID makes for its own systems.

A key is ``tck_`` + 32 random bytes (URL-safe), shown once by ``createApiKey``; the database
keeps its SHA-256 and a visible prefix (``tck_`` + 8 characters) to tell keys apart. A key
acts as its account under the same permission rules (resolvers/identity/actor.py
authenticates it and counts its requests); what only a person may do refuses it
(``actor.require_person``). Keys are revoked, never deleted: audit rows name them.

Who may do what is rules/permissions.yaml (``api_key.create`` / ``api_key.view`` /
``api_key.revoke``); this module works out how a key stands to the actor — ``self`` (the
actor's own key), ``own_registration`` (a key of the actor's registration) — and asks.
Deleting a sub-ID, withdrawing a registration and every password change or reset revoke the
keys of the accounts concerned, in their own transaction (``revoke_keys_of``, from
resolvers/identity/key_revocation.py).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update

from persistence.models import Account, ApiKey, Session
from resolvers.core import validation
from resolvers.core.context import Context
from resolvers.core.errors import ErrorCode, Forbidden, Unauthenticated, UserFailure, UserFailures
from resolvers.identity import messages, queries
from resolvers.identity.actor import API_KEY_PREFIX, Viewer, audit, authorize, hash_token, require_person, require_viewer
from resolvers.identity.names import AccountStatus
from resolvers.identity.queries import AccountView
from rules.limits import limit
from rules.permissions import is_allowed

NAME_MAX = 100  # a label such as "ERP (production)"; the column holds 100
VISIBLE = 8  # characters of the secret after "tck_" shown as its prefix: enough to tell keys apart
SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class ApiKeyView:
    """An API key as the API shows it (never its secret nor its hash), with its account."""

    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    account: AccountView


@dataclass(frozen=True)
class NewApiKey:
    """A key just made: its id and the secret, which exists nowhere else after this answer."""

    id: int
    secret: str


def relations(who: Viewer, account_id: int, registration_id: int | None) -> set[str]:
    """How a key (of ``account_id``, made in ``registration_id``) stands to ``who``."""
    found: set[str] = set()
    if account_id == who.id:
        found.add("self")
    if registration_id is not None and registration_id == who.registration_id:
        found.add("own_registration")
    return found or {"none"}


# --------------------------------------------------------------------------- create


async def create_api_key(ctx: Context, name: str, expires_at: dt.datetime | None) -> NewApiKey:
    """A new key for the viewer itself. At most ``api_keys_per_account`` live keys (rules/
    limits.yaml; revoked and expired ones do not count), decided in the unit that adds it,
    under the account row's lock, so two parallel creations cannot both pass the count; under
    that lock the asking session must still be live (a password change ends it, and the
    change's own revocation would not see a key made after it)."""
    who = await require_viewer(ctx)
    require_person(who, messages.CREATE_API_KEYS)
    await authorize(ctx, who, "api_key.create", {"none"})
    now = ctx.clock.now()
    checked_name = validation.text(name, ["input", "name"], NAME_MAX, messages.API_KEY_NAME)
    problems = [checked_name] if isinstance(checked_name, UserFailure) else []
    if expires_at is not None and expires_at <= now:
        problems.append(UserFailure(ErrorCode.INVALID, ["input", "expiresAt"], label=messages.API_KEY_EXPIRY))
    if problems:
        raise UserFailures(problems)
    assert isinstance(checked_name, str)  # failures raised above
    most = limit(ctx.services.rules.current, ctx.clock.today(), "api_keys_per_account")
    secret = API_KEY_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    async with ctx.services.db.write() as tx:
        account = await tx.scalar(select(Account).where(Account.id == who.id).with_for_update(key_share=True)
                                  .execution_options(populate_existing=True))
        if account is None or account.deleted_at is not None or account.status != AccountStatus.ACTIVE:
            raise Unauthenticated()  # deleted while this request ran: its session (or key) ends with it
        # a password change or reset that committed while this request ran ended the session
        # that asks (it locks the account row first): a key made now would outlive the change
        if who.session_id is not None and await tx.scalar(select(Session.id).where(
                Session.id == who.session_id, Session.ended_at.is_(None))) is None:
            raise Unauthenticated()
        live = await tx.scalar(select(func.count()).select_from(ApiKey).where(
            ApiKey.account_id == account.id, ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now))) or 0
        if live >= most:
            raise UserFailure(ErrorCode.TOO_MANY_ITEMS, None, label=messages.LIVE_API_KEYS, limit=most)
        key = ApiKey(account_id=account.id, registration_id=account.registration_id, name=checked_name,
                     prefix=secret[:len(API_KEY_PREFIX) + VISIBLE], secret_hash=hash_token(secret), created_at=now,
                     expires_at=expires_at)
        tx.add(key)
        await tx.flush()
        audit(tx, ctx, who.account, "api_key.create", target=f"ApiKey:{key.id}", detail=f"{key.prefix} {checked_name}"[:2000])
    return NewApiKey(key.id, secret)


# --------------------------------------------------------------------------- revoke


async def revoke_api_key(ctx: Context, key_id: int) -> int:
    """Revoke one key: the actor's own, or (an applicant's admin) any of its registration's.
    Decided from the key row held in the unit. Revoking a revoked key changes nothing and
    answers the key as it is (a retry of a revocation is not an error).

    An actor that may revoke no key at all (staff, a NACCS ID) is FORBIDDEN before any
    lookup, whatever the id; for any other, a key it may not revoke is NOT_FOUND, the answer
    of a key that does not exist, so the answer tells nothing of other registrations' keys."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "api_key.revoke", {"self", "own_registration"})
    now = ctx.clock.now()
    async with ctx.services.db.write() as tx:
        key = await tx.scalar(select(ApiKey).where(ApiKey.id == key_id).with_for_update(key_share=True)
                              .execution_options(populate_existing=True))
        if key is None or not is_allowed(ctx.services.rules.current, ctx.clock.today(), who.actor, "api_key.revoke",
                                         relations(who, key.account_id, key.registration_id)):
            raise UserFailure(ErrorCode.NOT_FOUND, ["input", "apiKeyId"])
        if key.revoked_at is None:
            await tx.execute(update(ApiKey).where(ApiKey.id == key.id).values(revoked_at=now, revoked_by_id=who.id))
            audit(tx, ctx, who.account, "api_key.revoke", target=f"ApiKey:{key.id}", detail=key.prefix)
    return key_id


# --------------------------------------------------------------------------- reads

KEYS = queries.API_KEYS
KEY_COLUMNS = (KEYS.c.id, KEYS.c.name, KEYS.c.prefix, KEYS.c.created_at, KEYS.c.expires_at, KEYS.c.last_used_at,
               KEYS.c.revoked_at, KEYS.c.account_id, KEYS.c.registration_id)
_ALL = select(*KEY_COLUMNS).order_by(KEYS.c.id)
KEYS_OF_ACCOUNT = _ALL.where(KEYS.c.account_id == bindparam("account_id"))
KEYS_OF_REGISTRATION = _ALL.where(KEYS.c.registration_id == bindparam("registration_id"))
KEYS_BY_ID = _ALL.where(KEYS.c.id.in_(bindparam("ids", expanding=True)))


async def _views(ctx: Context, rows: Iterable[Sequence[Any]]) -> list[ApiKeyView]:
    """Views of key rows (KEY_COLUMNS), their accounts read in one more statement."""
    found = list(rows)
    accounts = await queries.accounts(ctx, {row[7] for row in found})
    return [ApiKeyView(pk, name, prefix, created, expires, used, revoked, accounts[account_id])
            for pk, name, prefix, created, expires, used, revoked, account_id, _ in found]


async def list_api_keys(ctx: Context) -> list[ApiKeyView]:
    """The viewer's own keys; for an applicant's admin, every key of its registration —
    revoked and expired ones included (their times say so). Two statements."""
    who = await require_viewer(ctx)
    policy, today = ctx.services.rules.current, ctx.clock.today()
    own = is_allowed(policy, today, who.actor, "api_key.view", {"self"})
    registration = (who.registration_id is not None
                    and is_allowed(policy, today, who.actor, "api_key.view", {"own_registration"}))
    if not (own or registration):
        raise Forbidden()
    rows = await ctx.rows(KEYS_OF_REGISTRATION, {"registration_id": who.registration_id}) if registration else []
    if own:
        seen = {row[0] for row in rows}
        rows += [row for row in await ctx.rows(KEYS_OF_ACCOUNT, {"account_id": who.id}) if row[0] not in seen]
    return await _views(ctx, sorted(rows, key=lambda row: row[0]))


async def api_keys_by_id(ctx: Context, ids: Iterable[int]) -> dict[int, ApiKeyView]:
    """Keys by id with their accounts, unchecked: a mutation's payload, read again after it."""
    rows = await ctx.rows(KEYS_BY_ID, {"ids": list(set(ids))})
    return {view.id: view for view in await _views(ctx, rows)}


async def visible_api_key(ctx: Context, key_id: int) -> ApiKeyView | None:
    """Query.node on a key: the key when ``api_key.view`` allows it, else None."""
    who = await require_viewer(ctx)
    rows = await ctx.rows(KEYS_BY_ID, {"ids": [key_id]})
    if not rows or not is_allowed(ctx.services.rules.current, ctx.clock.today(), who.actor, "api_key.view",
                                  relations(who, rows[0][7], rows[0][8])):
        return None
    return (await _views(ctx, rows))[0]
