"""Sub-ID lifecycle (the seeds: eco-sub-id.ja.txt): create → notify (mail with the
activation link, never the password) → activate within the hours of limits.yaml → manage.

Every check of *who* may act goes through ``authorize`` (rules/permissions.yaml); this
module works out how the target account relates to the actor and enforces the facts
the seed states about data (target eligibility, e-mail domain, the lock after notify).
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Account, ActivationToken, Chamber, Session, TradeRegistration
from resolvers.adapters.mail import queue_mail
from resolvers.core import ratelimit, validation
from resolvers.core.clock import TOKYO
from resolvers.core.context import Context
from resolvers.core.errors import ErrorCode, Forbidden, UserFailure, UserFailures
from resolvers.identity import key_revocation, messages
from resolvers.identity.accounts import sub_account_scopes
from resolvers.identity.actor import Viewer, audit, authorize, hash_token, require_person, require_viewer
from resolvers.identity.key_revocation import revoke_keys_of, revoke_keys_with_password
from resolvers.identity.names import AccountKind, AccountStatus, RegistrationKind, SessionEnd
from resolvers.identity.passwords import PASSWORD_MAX, PASSWORD_MIN, hash_password, password_is_acceptable, verify_password
from rules import mail
from rules.limits import limit
from rules.mail_names import fill
from rules.permissions import is_allowed

SUB_ID_LENGTH = 12  # eco-sub-id: e.g. GRdCyg4TeUUJ
_ALPHABET = string.ascii_letters + string.digits


def relations(actor: Account, target: Account) -> set[str]:
    """How ``target`` stands to ``actor`` (the facts permissions are decided on)."""
    found: set[str] = set()
    if target.id == actor.id:
        found.add("self")
    if target.generated_by_id is not None and target.generated_by_id == actor.id:
        found.add("generated_by_me")
    if target.registration_id is not None and target.registration_id == actor.registration_id:
        found.add("own_registration")
    if target.chamber_id is not None and target.chamber_id == actor.chamber_id:
        found.add("same_chamber")
    if target.kind == AccountKind.SUB and target.status != AccountStatus.ACTIVE:
        found &= {"self", "generated_by_me"}  # eco-sub-id: a sub-ID joins its organisation once activated
    return found or {"none"}


def _failures(*results: object) -> list[UserFailure]:
    return [r for r in results if isinstance(r, UserFailure)]


async def _load(ctx: Context, account_id: int) -> Account:
    async with ctx.services.db.read() as session:
        target = await session.get(Account, account_id)
    if target is None or target.kind != AccountKind.SUB or target.deleted_at is not None:
        raise UserFailure(ErrorCode.NOT_FOUND, ["input", "accountId"])
    return target


async def _end_sessions(session: AsyncSession, account_id: int, now: dt.datetime, reason: SessionEnd) -> None:
    await session.execute(
        update(Session).where(Session.account_id == account_id, Session.ended_at.is_(None)).values(ended_at=now, end_reason=reason)
    )


# --------------------------------------------------------------------------- create


async def create_sub_account(ctx: Context, name: str, password: str, email: str, phone: str | None) -> Account:
    who = await require_viewer(ctx)
    require_person(who, messages.MANAGE_SUB_IDS)
    await authorize(ctx, who, "subaccount.create", {"none"})
    checked_name = validation.person_name(name, ["input", "name"])
    checked_email = validation.email(email, ["input", "email"])
    checked_phone = validation.phone(phone, ["input", "phone"])
    problems = _failures(checked_name, checked_email, checked_phone)
    if len(password) > PASSWORD_MAX * 8 or not password_is_acceptable(password, None):
        problems.append(UserFailure(ErrorCode.PASSWORD_TOO_WEAK, ["input", "password"], min=PASSWORD_MIN, max=PASSWORD_MAX))
    if problems:
        raise UserFailures(problems)
    password_hash = await hash_password(password)
    now = ctx.clock.now()
    for _ in range(5):  # a 12-character id collides practically never; the unique index decides
        username = "".join(secrets.choice(_ALPHABET) for _ in range(SUB_ID_LENGTH))
        try:
            async with ctx.services.db.write() as session:
                account = Account(
                    kind=AccountKind.SUB, username=username, chamber_id=who.account.chamber_id,
                    registration_id=who.account.registration_id, name=checked_name, email=checked_email,
                    phone=checked_phone, password_hash=password_hash, status=AccountStatus.CREATED,
                    generated_by_id=who.account.id, created_at=now, updated_at=now,
                )
                session.add(account)
                await session.flush()
                audit(session, ctx, who.account, "subaccount.create", target=f"Account:{account.id}")
            return account
        except IntegrityError:
            continue
    raise RuntimeError("could not generate a unique sub-ID")


# --------------------------------------------------------------------------- notify


@dataclass(frozen=True)
class NotifyInput:
    account_id: int
    target_registration_number: str
    phone: str
    email: str
    subject: str | None = None
    body: str | None = None


async def notify_sub_account(ctx: Context, data: NotifyInput) -> Account:
    """Send (or send again) the activation mail. The target must be the signer's own
    registration or an agent registered with the same chamber; the address must share a
    domain with the signer's or the target contact person's; once notified, the address
    is locked."""
    who = await require_viewer(ctx)
    require_person(who, messages.MANAGE_SUB_IDS)
    target = await _load(ctx, data.account_id)
    await authorize(ctx, who, "subaccount.manage", relations(who.account, target))
    checked_phone = validation.phone(data.phone, ["input", "phone"], required=True)
    checked_email = validation.email(data.email, ["input", "email"])
    policy, today = ctx.services.rules.current, ctx.clock.today()
    notice = mail.template(policy, today, "subaccount.notice")  # the chamber's words (mail_templates.yaml)
    subject = validation.text(data.subject, ["input", "subject"], 200, messages.SUBJECT, required=False) or notice.text("subject")
    body = validation.text(data.body, ["input", "body"], 5000, messages.BODY, required=False) or notice.text("body")
    problems = _failures(checked_phone, checked_email, subject, body)
    if problems:
        raise UserFailures(problems)
    assert isinstance(checked_email, str) and isinstance(subject, str) and isinstance(body, str)  # failures raised above

    async with ctx.services.db.read() as session:
        registration = await session.scalar(
            select(TradeRegistration).where(TradeRegistration.number == data.target_registration_number.strip())
        )
        chamber = await session.get(Chamber, who.account.chamber_id)
    own = registration is not None and registration.id == who.account.registration_id
    agent_here = registration is not None and registration.kind == RegistrationKind.AGENT and registration.chamber_id == who.account.chamber_id
    if registration is None or chamber is None or not (own or agent_here):
        raise UserFailure(ErrorCode.TARGET_NOT_ELIGIBLE, ["input", "targetRegistrationNumber"])
    if target.notified_at is not None and target.email and target.email.lower() != checked_email.lower():
        raise UserFailure(ErrorCode.EMAIL_LOCKED, ["input", "email"])
    allowed_domains = {validation.domain_of(who.account.email), validation.domain_of(registration.contact_email)} - {None}
    if validation.domain_of(checked_email) not in allowed_domains:
        raise UserFailure(ErrorCode.EMAIL_DOMAIN_MISMATCH, ["input", "email"])

    now = ctx.clock.now()
    hours = limit(policy, today, "subaccount_activation_hours")  # eco-sub-id: URLの有効期限はメール送信後3日(72時間)
    expires = now + dt.timedelta(hours=hours)
    token = secrets.token_urlsafe(32)
    url = f"{ctx.services.settings.public_url}/activate?token={token}"
    values = {
        "company": registration.name, "agent_company": registration.name, "name": target.name,
        "activation_url": url, "chamber_code": chamber.code, "sub_id": target.username,
        "expires_at": expires.astimezone(TOKYO).strftime(messages.EXPIRES_AT_FORMAT),
        "signer_name": who.account.name, "activation_hours": str(hours),
    }
    subject, text_body = fill(subject, values), fill(body, values)
    if url not in text_body:  # the link, chamber code and sub-ID always reach the recipient
        text_body += "\n\n" + mail.render(policy, today, "subaccount.notice_essentials", values).body
    async with ctx.services.db.write() as session:
        # a new link replaces every earlier one
        await session.execute(
            update(ActivationToken).where(ActivationToken.account_id == target.id, ActivationToken.used_at.is_(None))
            .values(used_at=now)
        )
        session.add(ActivationToken(account_id=target.id, token_hash=hash_token(token), created_at=now, expires_at=expires))
        status = AccountStatus.ACTIVE if target.status == AccountStatus.ACTIVE else AccountStatus.NOTIFIED
        await session.execute(
            update(Account).where(Account.id == target.id).values(
                email=checked_email, phone=checked_phone, notified_at=now, activation_expires_at=expires,
                target_registration_id=registration.id, status=status, updated_at=now,
            )
        )
        queue_mail(session, now, "subaccount.notify", checked_email, subject, text_body, account_id=target.id)
        audit(session, ctx, who.account, "subaccount.notify", target=f"Account:{target.id}", detail=f"to {checked_email}")
    return await _load(ctx, target.id)


# --------------------------------------------------------------------------- activate


async def activate_sub_account(ctx: Context, token: str, username: str, password: str) -> Account:
    """Public: the link's token + sub-ID + the password the signer passed on. The token
    is consumed by a conditional UPDATE, so a link works once even when two activations race.

    Every call is an attempt against the limits per client address and per link
    (resolvers/ratelimit.py), counted before anything is checked: a leaked link cannot be
    used to guess the password, nor an address to guess links."""
    now = ctx.clock.now()
    settings = ctx.services.settings
    per_address, per_token = ratelimit.activation_limits(settings)
    charges = [ratelimit.address_charge(per_address, ratelimit.client_address(ctx.request, settings))]
    if token and len(token) <= 128:
        charges.append(ratelimit.Charge(per_token, token))  # stored hashed, like the link
    await ratelimit.spend(ctx.services.db, now, charges, ["input", "token"])
    if len(charges) == 1:
        raise UserFailure(ErrorCode.TOKEN_INVALID, ["input", "token"])
    async with ctx.services.db.read() as session:
        row = (
            await session.execute(
                select(ActivationToken, Account).join(Account, Account.id == ActivationToken.account_id)
                .where(ActivationToken.token_hash == hash_token(token))
            )
        ).first()
    if row is None or row[0].used_at is not None or row[1].deleted_at is not None:
        raise UserFailure(ErrorCode.TOKEN_INVALID, ["input", "token"])
    link, account = row
    if link.expires_at <= now:
        raise UserFailure(ErrorCode.TOKEN_EXPIRED, ["input", "token"])
    if username.strip() != account.username or not await verify_password(account.password_hash or "", password[:1024]):
        # the activation page has no chamber code field: its own words, the same code
        raise UserFailure.worded(ErrorCode.INVALID_CREDENTIALS, ["input", "password"], messages.SUB_ID_OR_PASSWORD_WRONG)
    async with ctx.services.db.write() as session:
        consumed = await session.scalar(
            update(ActivationToken)
            .where(ActivationToken.id == link.id, ActivationToken.used_at.is_(None), ActivationToken.expires_at > now)
            .values(used_at=now).returning(ActivationToken.id)
        )
        if consumed is None:
            raise UserFailure(ErrorCode.TOKEN_INVALID, ["input", "token"])
        await session.execute(
            update(Account).where(Account.id == account.id).values(status=AccountStatus.ACTIVE, activated_at=now, updated_at=now)
        )
        audit(session, ctx, account, "subaccount.activate", target=f"Account:{account.id}")
    return await _load(ctx, account.id)


# --------------------------------------------------------------------------- manage


async def update_sub_account(ctx: Context, account_id: int, name: str | None, password: str | None,
                             email: str | None, phone: str | None) -> Account:
    who = await require_viewer(ctx)
    require_person(who, messages.MANAGE_SUB_IDS)
    target = await _load(ctx, account_id)
    await authorize(ctx, who, "subaccount.manage", relations(who.account, target))
    changes: dict[str, object] = {}
    problems: list[UserFailure] = []
    if name is not None:
        checked_name = validation.person_name(name, ["input", "name"])
        problems += _failures(checked_name)
        changes["name"] = checked_name
    if email is not None:
        checked_email = validation.email(email, ["input", "email"])
        problems += _failures(checked_email)
        if (target.notified_at is not None and not isinstance(checked_email, UserFailure)
                and checked_email.lower() != (target.email or "").lower()):
            problems.append(UserFailure(ErrorCode.EMAIL_LOCKED, ["input", "email"]))
        changes["email"] = checked_email
    if phone is not None:
        checked_phone = validation.phone(phone, ["input", "phone"])
        problems += _failures(checked_phone)
        changes["phone"] = checked_phone
    if password is not None and not password_is_acceptable(password, target.username):
        problems.append(UserFailure(ErrorCode.PASSWORD_TOO_WEAK, ["input", "password"], min=PASSWORD_MIN, max=PASSWORD_MAX))
    if problems:
        raise UserFailures(problems)
    now = ctx.clock.now()
    if password is not None:
        changes["password_hash"] = await hash_password(password)
    keys = 0  # API keys revoked with a new password
    async with ctx.services.db.write() as session:
        if changes:
            await session.execute(update(Account).where(Account.id == target.id).values(**changes, updated_at=now))
        if password is not None:
            await _end_sessions(session, target.id, now, SessionEnd.PASSWORD_RESET)
            keys = await revoke_keys_with_password(session, ctx.services.rules.current, ctx.clock.today(), now,
                                                   target.id, who.id, key_revocation.PASSWORD_RESET)
        audit(session, ctx, who.account, "subaccount.update", target=f"Account:{target.id}",
              detail=",".join(sorted(k for k in changes if k != "password_hash")) + (",password" if password else "")
              + (f"; {key_revocation.audit_detail(keys)}" if keys else ""))
    return await _load(ctx, target.id)


async def delete_sub_account(ctx: Context, account_id: int) -> Account:
    """Soft delete: the sub-ID can no longer log in; what it did stays attributable.
    Decided from the account row held in the deleting unit of work; its API keys are revoked
    in it."""
    who = await require_viewer(ctx)
    require_person(who, messages.MANAGE_SUB_IDS)
    now = ctx.clock.now()
    async with ctx.services.db.write() as tx:
        target = await _lock_account(tx, account_id)
        if target is None or target.kind != AccountKind.SUB or target.deleted_at is not None:
            raise UserFailure(ErrorCode.NOT_FOUND, ["input", "accountId"])
        await authorize(ctx, who, "subaccount.manage", relations(who.account, target))
        await tx.execute(update(Account).where(Account.id == target.id).values(status=AccountStatus.DELETED, deleted_at=now, updated_at=now))
        await tx.execute(update(ActivationToken).where(ActivationToken.account_id == target.id, ActivationToken.used_at.is_(None)).values(used_at=now))
        await _end_sessions(tx, target.id, now, SessionEnd.DELETED)
        await revoke_keys_of(tx, [target.id], now, who.id)
        audit(tx, ctx, who.account, "subaccount.delete", target=f"Account:{target.id}")
    return await _reread(ctx, account_id)


async def reset_account_password(ctx: Context, account_id: int, new_password: str) -> Account:
    """By the applicant's admin (its signers and activated sub-IDs) or the generating
    signer (its sub-IDs) — whatever permissions.yaml says. All sessions and API keys of the
    account end (the owner is told by mail).

    The argon2 hash is computed before the unit of work (it takes tens of milliseconds and
    must not hold a write lock); the unit then locks the account and decides again from
    the row it holds, so a sub-ID deleted meanwhile is not given a password."""
    who = await require_viewer(ctx)
    require_person(who, messages.CHANGE_PASSWORDS)
    async with ctx.services.db.read() as session:
        target = await session.get(Account, account_id)
    target = await _may_reset(ctx, who, target)
    if not password_is_acceptable(new_password, target.username):
        raise UserFailure(ErrorCode.PASSWORD_TOO_WEAK, ["input", "newPassword"], min=PASSWORD_MIN, max=PASSWORD_MAX)
    new_hash = await hash_password(new_password)
    now = ctx.clock.now()
    async with ctx.services.db.write() as tx:
        held = await _may_reset(ctx, who, await _lock_account(tx, account_id))
        await tx.execute(update(Account).where(Account.id == held.id).values(password_hash=new_hash, updated_at=now))
        await _end_sessions(tx, held.id, now, SessionEnd.PASSWORD_RESET)
        keys = await revoke_keys_with_password(tx, ctx.services.rules.current, ctx.clock.today(), now, held.id, who.id,
                                               key_revocation.PASSWORD_RESET)
        audit(tx, ctx, who.account, "account.reset_password", target=f"Account:{held.id}",
              detail=key_revocation.audit_detail(keys))
    return await _reread(ctx, account_id)


async def _reread(ctx: Context, account_id: int) -> Account:
    """The account as committed (it is never removed: deletion is soft)."""
    async with ctx.services.db.read() as session:
        account = await session.get(Account, account_id)
    if account is None:
        raise UserFailure(ErrorCode.NOT_FOUND, ["input", "accountId"])
    return account


async def _may_reset(ctx: Context, who: Viewer, target: Account | None) -> Account:
    if target is None or target.deleted_at is not None or target.id == who.account.id:
        raise UserFailure(ErrorCode.NOT_FOUND, ["input", "accountId"])
    if target.kind not in (AccountKind.SIGNER, AccountKind.SUB):
        raise Forbidden()  # passwords of signers and sub-IDs only; an un-activated sub-ID: see relations()
    await authorize(ctx, who, "account.reset_password", relations(who.account, target))
    return target


async def _lock_account(tx: AsyncSession, account_id: int) -> Account | None:
    """The account row, locked for the rest of the unit (identity use cases touch no money,
    so accounts stand outside the money lock order: nothing that holds a money lock waits
    for an account row)."""
    account: Account | None = await tx.scalar(select(Account).where(Account.id == account_id)
                                              .with_for_update(key_share=True).execution_options(populate_existing=True))
    return account


async def list_sub_accounts(ctx: Context) -> list[Account]:
    """A signer: the sub-IDs it generated. An applicant's admin: every activated sub-ID of
    its registration. Anyone else: forbidden (permissions.yaml)."""
    who = await require_viewer(ctx)
    generated, registration = sub_account_scopes(ctx, who)
    scopes = [Account.generated_by_id == who.account.id] if generated else []
    if registration:
        scopes.append(and_(Account.registration_id == who.account.registration_id, Account.status == AccountStatus.ACTIVE))
    query = select(Account).where(or_(*scopes))
    async with ctx.services.db.read() as session:
        rows = (await session.scalars(query.where(Account.kind == AccountKind.SUB, Account.deleted_at.is_(None)).order_by(Account.id))).all()
    return list(rows)


def may_view(ctx: Context, who: Viewer, target: Account) -> bool:
    """Query.node on a sub-ID: the same rule as subAccounts (an admin sees activated ones only)."""
    if target.kind != AccountKind.SUB or target.deleted_at is not None:
        return False
    return is_allowed(ctx.services.rules.current, ctx.clock.today(), who.actor, "subaccount.view", relations(who.account, target))
