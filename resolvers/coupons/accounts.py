"""The chamber's operations on coupon accounts: adjustments, membership changes, refunds
paid out, and withdrawal (退会). Each is one unit of work under the registration's lock and
answers what it changed by id; the accounts as users see them are read in
resolvers/coupons/queries.py, purchases live in resolvers/coupons/purchases.py."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from persistence import locks
from persistence.models import (
    Account,
    Application,
    CardPayment,
    CouponPurchase,
    Refund,
    RegistrationMembership,
    Session,
    TradeRegistration,
)
from resolvers.adapters.gateway import gateway_of
from resolvers.applications.names import ENDED_BY_WITHDRAWAL, ApplicationState
from resolvers.applications.use_cases import give_back_coupon
from resolvers.core import validation
from resolvers.core.context import Context
from resolvers.core.errors import ErrorCode, Forbidden, UserFailure, UserFailures
from resolvers.coupons import ledger
from resolvers.coupons import messages as words
from resolvers.coupons.names import CouponEntryKind, PurchaseStatus
from resolvers.coupons.purchases import cancel_in_session
from resolvers.coupons.queries import coupon_relation
from resolvers.identity.accounts import membership_at
from resolvers.identity.actor import Viewer, audit, authorize, require_viewer
from resolvers.identity.key_revocation import revoke_keys_of
from resolvers.identity.names import AccountKind, Membership, RegistrationKind, SessionEnd
from resolvers.payments.names import CardPaymentStatus

MAX_ADJUSTMENT = 10_000  # a typo guard, not policy: no real adjustment comes near it


async def _locked_registration(tx: AsyncSession, ctx: Context, who: Viewer, number: str, field: list[str], action: str) -> TradeRegistration:
    """Inside the use case's write unit: find the registration by number, lock it (level 1
    of the lock order) and authorize from the row held."""
    registration_id = await tx.scalar(select(TradeRegistration.id).where(TradeRegistration.number == number.strip()))
    registration = await locks.registration(tx, registration_id) if registration_id is not None else None
    if registration is None:
        raise UserFailure(ErrorCode.NOT_FOUND, field)
    try:
        await authorize(ctx, who, "coupon.view", coupon_relation(who, registration.id, registration.chamber_id))
    except Forbidden:
        if who.account.kind == AccountKind.CHAMBER_STAFF:  # another chamber's: not even its existence
            raise UserFailure(ErrorCode.NOT_FOUND, field) from None
        raise
    await authorize(ctx, who, action, coupon_relation(who, registration.id, registration.chamber_id))
    return registration


async def adjust_coupons(ctx: Context, registration_number: str, coupons: int, reason: str) -> None:
    """Chamber staff add or remove coupons by hand (CHAMBER_OPERATION), with a reason."""
    who = await require_viewer(ctx)
    checked_reason = validation.text(reason, ["input", "reason"], 500, words.REASON)
    now = ctx.clock.now()
    key = f"adjust:{uuid.uuid4().hex}"
    async with ctx.services.db.write() as tx:
        registration = await _locked_registration(tx, ctx, who, registration_number, ["input", "registrationNumber"],
                                                  "coupon.adjust")
        problems = [checked_reason] if isinstance(checked_reason, UserFailure) else []
        if coupons == 0 or abs(coupons) > MAX_ADJUSTMENT:
            problems.append(UserFailure(ErrorCode.INVALID, ["input", "coupons"], label=words.ADJUSTMENT.format(limit=MAX_ADJUSTMENT)))
        if registration.kind != RegistrationKind.APPLICANT:
            problems.append(UserFailure(ErrorCode.INVALID, ["input", "registrationNumber"], label=words.APPLICANT_REGISTRATION_NUMBER))
        if registration.withdrawn_at is not None:
            problems.append(UserFailure(ErrorCode.INVALID_STATE, ["input", "registrationNumber"], state=words.REGISTRATION_WITHDRAWN))
        if problems:
            raise UserFailures(problems)
        assert isinstance(checked_reason, str)  # a failure was raised above
        if coupons > 0:
            await ledger.credit(tx, registration_id=registration.id, coupons=coupons, kind=CouponEntryKind.CHAMBER_OPERATION,
                                key=key, now=now, acquired_on=ctx.clock.today(),
                                rules_version=ctx.services.rules.current.version, actor_id=who.account.id, note=checked_reason)
        else:
            await ledger.debit(tx, registration_id=registration.id, coupons=-coupons, kind=CouponEntryKind.CHAMBER_OPERATION,
                               key=key, now=now, actor_id=who.account.id, note=checked_reason, field=["input", "coupons"])
        audit(tx, ctx, who.account, "coupon.adjust", target=f"TradeRegistration:{registration.id}",
              detail=f"{coupons:+d}: {checked_reason}")


async def set_membership(ctx: Context, registration_number: str,
                         membership: Membership) -> tuple[TradeRegistration, list[Refund]]:
    """Chamber staff change member ⇄ non-member: the history gets a new period, and the
    unused coupons are erased and refunded per lot; an order awaiting payment (priced at the
    old status) is cancelled and its card session closed. The same status again
    changes nothing. Decided under the registration's lock, so a hold or a submission of
    the same registration runs wholly before or wholly after it."""
    who = await require_viewer(ctx)
    now = ctx.clock.now()
    refunds: list[Refund] = []
    closed_sessions: list[str] = []
    async with ctx.services.db.write() as tx:
        registration = await _locked_registration(tx, ctx, who, registration_number, ["input", "registrationNumber"],
                                                  "coupon.adjust")
        if await membership_at(tx, registration.id, now) == membership:
            return registration, []
        closed = await tx.scalar(
            update(RegistrationMembership)
            .where(RegistrationMembership.registration_id == registration.id, RegistrationMembership.valid_until.is_(None),
                   RegistrationMembership.membership != membership, RegistrationMembership.valid_from < now)
            .values(valid_until=now).returning(RegistrationMembership.id)
        )
        if closed is None:  # the open period began at this very instant: a period cannot be empty
            raise UserFailure(ErrorCode.INVALID_STATE, ["input", "membership"], state=words.MEMBERSHIP_JUST_CHANGED)
        tx.add(RegistrationMembership(registration_id=registration.id, membership=membership, valid_from=now))
        # an order awaiting payment is priced at the old status: paid later, it would issue the
        # coupons this change erases and refunds (outside testing of issue 20) — it ends, as on 退会
        pending = await tx.scalar(select(CouponPurchase).where(
            CouponPurchase.registration_id == registration.id, CouponPurchase.status == PurchaseStatus.AWAITING_PAYMENT))
        if pending is not None:
            [pending] = await locks.purchases(tx, [pending.id])
            card_id = await tx.scalar(select(CardPayment.id).where(CardPayment.purchase_id == pending.id,
                                                                   CardPayment.status == CardPaymentStatus.OPEN))
            card = await locks.card_payment(tx, card_id) if card_id is not None else None
            await cancel_in_session(tx, pending, now, words.MEMBERSHIP_CHANGE_CANCELS_PURCHASE)
            if card is not None and card.status == CardPaymentStatus.OPEN:  # a charge that still arrives is owed back
                await tx.execute(update(CardPayment).where(CardPayment.id == card.id)
                                 .values(status=CardPaymentStatus.CANCELLED, closed_at=now))
                closed_sessions.append(card.gateway_session)
        refund, _ = await ledger.erase_and_refund(
            tx, ctx.services.rules.current, registration_id=registration.id, key=f"membership:{closed}",
            now=now, reason=words.MEMBERSHIP_CHANGE_REFUND.format(membership=membership), actor_id=who.account.id,
        )
        if refund is not None:
            refunds.append(refund)
        audit(tx, ctx, who.account, "registration.set_membership", target=f"TradeRegistration:{registration.id}",
              detail=f"{membership}; refund {refund.amount if refund else 0}")
    for gateway_session in closed_sessions:  # after the commit: the provider is a network call
        await gateway_of(ctx.services).cancel_session(ctx.services, gateway_session)
    return registration, refunds


async def mark_refund_paid(ctx: Context, refund_id: int) -> int:
    who = await require_viewer(ctx)
    await authorize(ctx, who, "coupon.adjust", {"same_chamber"})
    now = ctx.clock.now()
    async with ctx.services.db.write() as session:
        refund = await session.get(Refund, refund_id)
        registration = await session.get(TradeRegistration, refund.registration_id) if refund else None
        if refund is None or registration is None or registration.chamber_id != who.account.chamber_id:
            raise UserFailure(ErrorCode.NOT_FOUND, ["input", "refundId"])
        marked = await session.scalar(
            update(Refund).where(Refund.id == refund_id, Refund.paid_at.is_(None)).values(paid_at=now).returning(Refund.id)
        )
        if marked is None:
            raise UserFailure(ErrorCode.INVALID_STATE, ["input", "refundId"], state=words.REFUND_PAID)
        audit(session, ctx, who.account, "refund.paid", target=f"Refund:{refund_id}")
    return refund_id


async def withdraw_registration(ctx: Context, registration_number: str, reason: str | None) -> tuple[TradeRegistration, list[Refund]]:
    """退会: open applications and approved ones never paid are withdrawn (a submitted one's
    coupon comes back), unused
    coupons are erased and refunded per lot (as on a membership change), an order
    awaiting payment is cancelled and every open card session closed (a late charge is
    owed back), the validity ends today, and every session of the registration's IDs
    ends and every API key of them is revoked; its IDs can no longer log in. History stays.
    One unit of work under the registration's lock."""
    who = await require_viewer(ctx)
    checked_reason = validation.text(reason, ["input", "reason"], 500, words.REASON, required=False)
    now, today = ctx.clock.now(), ctx.clock.today()
    refunds: list[Refund] = []
    closed_sessions: list[str] = []
    async with ctx.services.db.write() as tx:
        registration = await _locked_registration(tx, ctx, who, registration_number, ["input", "registrationNumber"],
                                                  "registration.withdraw")
        if isinstance(checked_reason, UserFailure):
            raise checked_reason
        if registration.withdrawn_at is not None:
            raise UserFailure(ErrorCode.INVALID_STATE, ["input", "registrationNumber"], state=words.REGISTRATION_WITHDRAWN)
        await tx.execute(update(TradeRegistration).where(TradeRegistration.id == registration.id)
                         .values(withdrawn_at=now, valid_until=today))
        # its open applications end with it: a submitted one gives its coupon back first, so
        # the refund below pays for it (nobody can use or withdraw it any more); an approved
        # one never paid ends too (issue 20), else it stayed APPROVED for good, payable by nobody
        open_ids = (await tx.scalars(select(Application.id).where(
            Application.registration_id == registration.id,
            Application.state.in_(ENDED_BY_WITHDRAWAL) | Application.checkout_payment_id.is_not(None)))).all()
        for app in await locks.applications(tx, open_ids):
            if app.state in ENDED_BY_WITHDRAWAL:
                if app.state in (ApplicationState.SUBMITTED, ApplicationState.APPROVED):  # a card one holds none
                    await give_back_coupon(tx, app, now, who.account.id, words.WITHDRAWAL_WITHDRAWS_APPLICATION)
                await tx.execute(update(Application).where(Application.id == app.id)
                                 .values(state=ApplicationState.WITHDRAWN, updated_at=now))
        pending = await tx.scalar(select(CouponPurchase).where(
            CouponPurchase.registration_id == registration.id, CouponPurchase.status == PurchaseStatus.AWAITING_PAYMENT))
        if pending is not None:
            [pending] = await locks.purchases(tx, [pending.id])
            await cancel_in_session(tx, pending, now, words.WITHDRAWAL_CANCELS_PURCHASE)
        # open card sessions (an order's, a checkout's) close: a charge that still arrives is owed back
        open_payments = (await tx.scalars(select(CardPayment.id).where(
            CardPayment.registration_id == registration.id, CardPayment.status == CardPaymentStatus.OPEN)
            .order_by(CardPayment.id))).all()
        for payment_id in open_payments:
            payment = await locks.card_payment(tx, payment_id)
            if payment is None:
                continue
            await tx.execute(update(CardPayment).where(CardPayment.id == payment_id)
                             .values(status=CardPaymentStatus.CANCELLED, closed_at=now))
            await tx.execute(update(Application).where(Application.checkout_payment_id == payment_id)
                             .values(checkout_payment_id=None, updated_at=now))
            closed_sessions.append(payment.gateway_session)
        refund, _ = await ledger.erase_and_refund(
            tx, ctx.services.rules.current, registration_id=registration.id, key=f"withdrawal:{registration.id}",
            now=now, reason=(words.WITHDRAWAL_REFUND_WITH_REASON.format(reason=checked_reason) if checked_reason
                             else words.WITHDRAWAL_REFUND),
            actor_id=who.account.id,
        )
        if refund is not None:
            refunds.append(refund)
        members = select(Account.id).where(Account.registration_id == registration.id)
        await tx.execute(update(Session).where(Session.account_id.in_(members), Session.ended_at.is_(None))
                         .values(ended_at=now, end_reason=SessionEnd.WITHDRAWN))
        await revoke_keys_of(tx, members, now, who.account.id)  # and every API key of its IDs
        audit(tx, ctx, who.account, "registration.withdraw", target=f"TradeRegistration:{registration.id}",
              detail=f"refund {refund.amount if refund else 0}" + (f"; {checked_reason}" if checked_reason else ""))
    for gateway_session in closed_sessions:  # after the commit: the provider is a network call
        await gateway_of(ctx.services).cancel_session(ctx.services, gateway_session)
    return registration, refunds
