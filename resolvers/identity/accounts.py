"""Account use cases: password change, the viewer's own account and sub-IDs, membership.

Who the request acts as, permission checks and audit rows are resolvers/identity/actor.py;
login, logout and the session cookie resolvers/identity/sessions.py.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Account, RegistrationMembership, Session
from resolvers.core.context import Context
from resolvers.core.errors import ErrorCode, Forbidden, UserFailure
from resolvers.identity import key_revocation, messages, queries
from resolvers.identity.actor import Viewer, audit, authorize, require_person, require_viewer, viewer
from resolvers.identity.key_revocation import revoke_keys_with_password
from resolvers.identity.names import Membership, SessionEnd
from resolvers.identity.passwords import PASSWORD_MAX, PASSWORD_MIN, hash_password, password_is_acceptable, verify_password
from resolvers.identity.queries import AccountView
from resolvers.identity.sessions import new_session, set_cookie
from rules.permissions import is_allowed


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
        token = await new_session(session, ctx, who.account.id, now)
        audit(session, ctx, who.account, "account.change_own_password", target=f"Account:{who.account.id}",
              detail=key_revocation.audit_detail(keys))
    set_cookie(ctx, token)
    ctx.loaders.pop("viewer", None)
    return token


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
