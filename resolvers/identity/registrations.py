"""Trade registrations: chamber staff create them (the admin ID comes with
them) and add signers; a registration's admin renews it. Chamber staff read the audit log."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from persistence.models import Account, AuditEntry, Chamber, RegistrationMembership, TradeRegistration
from resolvers.core import validation
from resolvers.core.context import Context
from resolvers.core.errors import ErrorCode, Forbidden, UserFailure, UserFailures
from resolvers.core.paging import newest_first
from resolvers.identity import messages
from resolvers.identity.actor import audit, authorize, require_viewer
from resolvers.identity.names import AccountKind, AccountStatus, Membership, RegistrationKind
from resolvers.identity.passwords import PASSWORD_MAX, PASSWORD_MIN, hash_password, password_is_acceptable
from rules.limits import limit


def add_months(day: dt.date, months: int) -> dt.date:
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


@dataclass(frozen=True)
class NewRegistration:
    kind: RegistrationKind
    name: str
    membership: Membership
    contact_email: str
    bank_transfer: bool
    card: bool
    admin_name: str
    admin_email: str
    admin_password: str


async def create_trade_registration(ctx: Context, data: NewRegistration) -> tuple[TradeRegistration, Account]:
    who = await require_viewer(ctx)
    await authorize(ctx, who, "registration.create", {"same_chamber"})
    name = validation.text(data.name, ["input", "name"], 200, messages.REGISTRATION_NAME)
    contact = validation.email(data.contact_email, ["input", "contactEmail"], messages.CONTACT_EMAIL)
    admin_name = validation.text(data.admin_name, ["input", "adminName"], 200, messages.ADMIN_NAME)
    admin_email = validation.email(data.admin_email, ["input", "adminEmail"], messages.ADMIN_EMAIL)
    problems = [r for r in (name, contact, admin_name, admin_email) if isinstance(r, UserFailure)]
    if not password_is_acceptable(data.admin_password, None):
        problems.append(UserFailure(ErrorCode.PASSWORD_TOO_WEAK, ["input", "adminPassword"], min=PASSWORD_MIN, max=PASSWORD_MAX))
    if problems:
        raise UserFailures(problems)
    password_hash = await hash_password(data.admin_password)
    now = ctx.clock.now()
    today = ctx.clock.today()
    term = limit(ctx.services.rules.current, today, "registration_term_months")
    for _ in range(5):  # the unique number decides between two concurrent creations
        try:
            async with ctx.services.db.write() as session:
                chamber = await session.get(Chamber, who.account.chamber_id)
                if chamber is None:
                    raise Forbidden()
                highest = await session.scalar(
                    select(func.max(TradeRegistration.number)).where(TradeRegistration.chamber_id == chamber.id)
                )
                serial = int(highest[4:]) + 1 if highest else 1
                registration = TradeRegistration(
                    number=f"{chamber.code}{serial:06d}", chamber_id=chamber.id, kind=data.kind, name=name,
                    contact_email=contact, valid_from=today, valid_until=add_months(today, term) - dt.timedelta(days=1),
                    allows_bank_transfer=data.bank_transfer, allows_card=data.card, created_at=now,
                )
                session.add(registration)
                await session.flush()
                session.add(RegistrationMembership(registration_id=registration.id, membership=data.membership, valid_from=now))
                admin = Account(
                    kind=AccountKind.ADMIN, username=f"admin-{registration.number}", chamber_id=chamber.id,
                    registration_id=registration.id, name=admin_name, email=admin_email,
                    password_hash=password_hash, status=AccountStatus.ACTIVE, created_at=now, updated_at=now,
                )
                session.add(admin)
                await session.flush()
                audit(session, ctx, who.account, "registration.create", target=f"TradeRegistration:{registration.id}")
            return registration, admin
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a registration number")


async def _registration_in_my_chamber(ctx: Context, number: str, chamber_id: int | None) -> TradeRegistration:
    async with ctx.services.db.read() as session:
        registration = await session.scalar(select(TradeRegistration).where(TradeRegistration.number == number.strip()))
    if registration is None or registration.chamber_id != chamber_id:
        raise UserFailure(ErrorCode.NOT_FOUND, ["input", "registrationNumber"])
    return registration


async def add_signer(ctx: Context, registration_number: str, name: str, email: str, password: str,
                     username: str | None, reason: str | None) -> Account:
    """At most the limit of signers per registration (limits.yaml) unless staff give a reason."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "signer.add", {"same_chamber"})
    registration = await _registration_in_my_chamber(ctx, registration_number, who.account.chamber_id)
    checked_name = validation.text(name, ["input", "name"], 200, messages.PERSON_NAME)
    checked_email = validation.email(email, ["input", "email"])
    checked_reason = validation.text(reason, ["input", "reason"], 500, messages.REASON, required=False)
    checked_username = validation.text(username, ["input", "username"], 64, messages.USERNAME, required=False)
    problems = [r for r in (checked_name, checked_email, checked_reason, checked_username) if isinstance(r, UserFailure)]
    if not password_is_acceptable(password, checked_username if isinstance(checked_username, str) else None):
        problems.append(UserFailure(ErrorCode.PASSWORD_TOO_WEAK, ["input", "password"], min=PASSWORD_MIN, max=PASSWORD_MAX))
    if problems:
        raise UserFailures(problems)
    assert not isinstance(checked_reason, UserFailure) and not isinstance(checked_username, UserFailure)  # raised above
    password_hash = await hash_password(password)
    most = limit(ctx.services.rules.current, ctx.clock.today(), "signers_per_registration")
    now = ctx.clock.now()
    try:
        async with ctx.services.db.write() as session:
            # Touch the registration row first: on PostgreSQL this locks it, so two additions
            # cannot both count 14 and both add (SQLite's BEGIN IMMEDIATE serialises already).
            await session.execute(
                update(TradeRegistration).where(TradeRegistration.id == registration.id).values(name=TradeRegistration.name)
            )
            signers = await session.scalar(
                select(func.count()).select_from(Account)
                .where(Account.registration_id == registration.id, Account.kind == AccountKind.SIGNER, Account.deleted_at.is_(None))
            ) or 0
            if signers >= most and not checked_reason:
                raise UserFailure(ErrorCode.SIGNER_LIMIT, ["input", "reason"], limit=most)
            account = Account(
                kind=AccountKind.SIGNER, username=checked_username or f"signer{signers + 1}-{registration.number}",
                chamber_id=registration.chamber_id, registration_id=registration.id, name=checked_name,
                email=checked_email, password_hash=password_hash, status=AccountStatus.ACTIVE, created_at=now, updated_at=now,
                limit_reason=checked_reason if signers >= most else None,
            )
            session.add(account)
            await session.flush()
            audit(session, ctx, who.account, "signer.add", target=f"Account:{account.id}", detail=checked_reason)
    except IntegrityError:
        raise UserFailure(ErrorCode.INVALID, ["input", "username"], label=messages.USERNAME_TAKEN) from None
    return account


async def renew_trade_registration(ctx: Context) -> TradeRegistration:
    """The admin renews its registration: the validity is extended by the term in
    limits.yaml, from its current end (or from today when it has already ended)."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "registration.renew", {"own_registration"})
    today = ctx.clock.today()
    term = limit(ctx.services.rules.current, today, "registration_term_months")
    async with ctx.services.db.write() as session:
        registration = await session.get(TradeRegistration, who.account.registration_id or 0)
        if registration is None:
            raise Forbidden()
        start = max(registration.valid_until + dt.timedelta(days=1), today) if registration.valid_until else today
        registration.valid_until = add_months(start, term) - dt.timedelta(days=1)
        audit(session, ctx, who.account, "registration.renew", target=f"TradeRegistration:{registration.id}",
              detail=f"valid until {registration.valid_until}")
    return registration


async def audit_log(ctx: Context, first: int, before_id: int | None) -> tuple[list[AuditEntry], int, bool]:
    """The chamber's audit trail, newest first: (entries, total, more)."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "audit.view", {"same_chamber"})
    return await newest_first(ctx, AuditEntry, AuditEntry.chamber_id == who.account.chamber_id, first, before_id)
