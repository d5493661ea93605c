"""Coupon accounts as users see them, and the chamber's operations on them.
Purchases by bank transfer and card build on these and arrive separately."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update

from persistence import locks
from persistence.models import (
    CouponAccount,
    CouponEntry,
    CouponPurchase,
    CouponPurchaseLine,
    Refund,
    RegistrationMembership,
    TradeRegistration,
    VirtualAccount,
)
from resolvers.core import validation
from resolvers.core.context import Context
from resolvers.core.errors import Forbidden, UserFailure, UserFailures
from resolvers.core.paging import newest_first
from resolvers.coupons import ledger
from resolvers.identity.accounts import Viewer, audit, authorize, membership_at, require_viewer

MAX_ADJUSTMENT = 10_000  # a typo guard, not policy: no real adjustment comes near it


@dataclass(frozen=True)
class AccountView:
    registration: TradeRegistration
    balance: int
    pending: int


def _relation(who: Viewer, registration: TradeRegistration) -> set[str]:
    found = set()
    if who.account.registration_id == registration.id:
        found.add("own_registration")
    if who.account.chamber_id == registration.chamber_id:
        found.add("same_chamber")
    return found or {"none"}


async def coupon_account(ctx: Context, registration_number: str | None) -> AccountView:
    """The viewer's applicant registration (signers and sub-IDs share its balance), or —
    for chamber staff — the registration they name. Unknown and another chamber's
    registrations are the same NOT_FOUND; accounts without coupons are FORBIDDEN."""
    who = await require_viewer(ctx)
    async with ctx.services.db.read() as session:
        if registration_number:
            number = registration_number.strip()
            registration = (await session.scalar(select(TradeRegistration).where(TradeRegistration.number == number))
                            if len(number) <= 20 else None)
            if registration is None:
                raise UserFailure("NOT_FOUND", ["registrationNumber"])
            try:
                await authorize(ctx, who, "coupon.view", _relation(who, registration))
            except Forbidden:
                if who.account.kind == "CHAMBER_STAFF":
                    raise UserFailure("NOT_FOUND", ["registrationNumber"]) from None
                raise
        elif who.account.registration_id is None:
            if who.account.kind == "CHAMBER_STAFF":
                raise UserFailure("REQUIRED", ["registrationNumber"], label="貿易登録番号")
            raise Forbidden()
        else:
            registration = await session.get(TradeRegistration, who.account.registration_id)
            await authorize(ctx, who, "coupon.view", _relation(who, registration))
        account = await session.get(CouponAccount, registration.id)
    return AccountView(registration, account.balance if account else 0, account.pending if account else 0)


async def history(ctx: Context, registration_id: int, first: int, before_id: int | None) -> tuple[list[CouponEntry], int, bool]:
    return await newest_first(ctx, CouponEntry, CouponEntry.registration_id == registration_id, first, before_id)


async def _locked_registration(tx, ctx: Context, who: Viewer, number: str, field: list[str], action: str) -> TradeRegistration:
    """Inside the use case's write unit: find the registration by number, lock it (level 1
    of the lock order) and authorize from the row held."""
    registration_id = await tx.scalar(select(TradeRegistration.id).where(TradeRegistration.number == number.strip()))
    if registration_id is None:
        raise UserFailure("NOT_FOUND", field)
    registration = await locks.registration(tx, registration_id)
    try:
        await authorize(ctx, who, "coupon.view", _relation(who, registration))
    except Forbidden:
        if who.account.kind == "CHAMBER_STAFF":  # another chamber's: not even its existence
            raise UserFailure("NOT_FOUND", field) from None
        raise
    await authorize(ctx, who, action, _relation(who, registration))
    return registration


async def adjust_coupons(ctx: Context, registration_number: str, coupons: int, reason: str) -> AccountView:
    """Chamber staff add or remove coupons by hand (CHAMBER_OPERATION), with a reason."""
    who = await require_viewer(ctx)
    checked_reason = validation.text(reason, ["input", "reason"], 500, "理由")
    now = ctx.clock.now()
    key = f"adjust:{uuid.uuid4().hex}"
    async with ctx.services.db.write() as tx:
        registration = await _locked_registration(tx, ctx, who, registration_number, ["input", "registrationNumber"],
                                                  "coupon.adjust")
        problems = [checked_reason] if isinstance(checked_reason, UserFailure) else []
        if coupons == 0 or abs(coupons) > MAX_ADJUSTMENT:
            problems.append(UserFailure("INVALID", ["input", "coupons"], label="枚数"))
        if registration.kind != "APPLICANT":
            problems.append(UserFailure("INVALID", ["input", "registrationNumber"], label="貿易登録番号(申請者)"))
        if registration.withdrawn_at is not None:
            problems.append(UserFailure("INVALID_STATE", ["input", "registrationNumber"]))
        if problems:
            raise UserFailures(problems)
        if coupons > 0:
            await ledger.credit(tx, registration_id=registration.id, coupons=coupons, kind="CHAMBER_OPERATION",
                                key=key, now=now, acquired_on=ctx.clock.today(),
                                rules_version=ctx.services.rules.current.version, actor_id=who.account.id, note=checked_reason)
        else:
            await ledger.debit(tx, registration_id=registration.id, coupons=-coupons, kind="CHAMBER_OPERATION",
                               key=key, now=now, actor_id=who.account.id, note=checked_reason, field=["input", "coupons"])
        audit(tx, ctx, who.account, "coupon.adjust", target=f"TradeRegistration:{registration.id}",
              detail=f"{coupons:+d}: {checked_reason}")
    return await coupon_account(ctx, registration.number)


async def set_membership(ctx: Context, registration_number: str, membership: str) -> tuple[TradeRegistration, list[Refund]]:
    """Chamber staff change member ⇄ non-member: the history gets a new period, and the
    unused coupons are erased and refunded per lot. The same status again
    changes nothing. Decided under the registration's lock, so a hold or a submission of
    the same registration runs wholly before or wholly after it."""
    who = await require_viewer(ctx)
    now = ctx.clock.now()
    refunds: list[Refund] = []
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
            raise UserFailure("INVALID_STATE", ["input", "membership"])
        tx.add(RegistrationMembership(registration_id=registration.id, membership=membership, valid_from=now))
        refund, _ = await ledger.erase_and_refund(
            tx, ctx.services.rules.current, registration_id=registration.id, key=f"membership:{closed}",
            now=now, reason=f"会員区分の変更に伴う未使用クーポンの返金 ({membership})", actor_id=who.account.id,
        )
        if refund is not None:
            refunds.append(refund)
        audit(tx, ctx, who.account, "registration.set_membership", target=f"TradeRegistration:{registration.id}",
              detail=f"{membership}; refund {refund.amount if refund else 0}")
    return registration, refunds


async def list_refunds(ctx: Context, paid: bool | None) -> list[Refund]:
    who = await require_viewer(ctx)
    await authorize(ctx, who, "coupon.adjust", {"same_chamber"})
    query = (select(Refund).join(TradeRegistration, TradeRegistration.id == Refund.registration_id)
             .where(TradeRegistration.chamber_id == who.account.chamber_id))
    if paid is not None:
        query = query.where(Refund.paid_at.is_not(None) if paid else Refund.paid_at.is_(None))
    async with ctx.services.db.read() as session:
        return list((await session.scalars(query.order_by(Refund.id.desc()).limit(500))).all())


async def mark_refund_paid(ctx: Context, refund_id: int) -> Refund:
    who = await require_viewer(ctx)
    await authorize(ctx, who, "coupon.adjust", {"same_chamber"})
    now = ctx.clock.now()
    async with ctx.services.db.write() as session:
        refund = await session.get(Refund, refund_id)
        registration = await session.get(TradeRegistration, refund.registration_id) if refund else None
        if refund is None or registration.chamber_id != who.account.chamber_id:
            raise UserFailure("NOT_FOUND", ["input", "refundId"])
        marked = await session.scalar(
            update(Refund).where(Refund.id == refund_id, Refund.paid_at.is_(None)).values(paid_at=now).returning(Refund.id)
        )
        if marked is None:
            raise UserFailure("INVALID_STATE", ["input", "refundId"])
        audit(session, ctx, who.account, "refund.paid", target=f"Refund:{refund_id}")
    async with ctx.services.db.read() as session:
        return await session.get(Refund, refund_id)


async def purchases_of(ctx: Context, registration_id: int, first: int, before_id: int | None) -> tuple[list[CouponPurchase], int, bool]:
    """Orders of the registration whose account the viewer was allowed to open, newest first."""
    return await newest_first(ctx, CouponPurchase, CouponPurchase.registration_id == registration_id, first, before_id)


async def purchase_lines(ctx: Context, purchase_id: int) -> list[CouponPurchaseLine]:
    async with ctx.services.db.read() as session:
        return list((await session.scalars(select(CouponPurchaseLine).where(CouponPurchaseLine.purchase_id == purchase_id)
                                           .order_by(CouponPurchaseLine.id))).all())


async def virtual_account(ctx: Context, purchase_id: int) -> VirtualAccount | None:
    async with ctx.services.db.read() as session:
        return await session.scalar(select(VirtualAccount).where(VirtualAccount.purchase_id == purchase_id))


async def withdraw_registration(ctx: Context, registration_number: str, reason: str | None) -> tuple[TradeRegistration, list[Refund]]:
    """退会: open applications are withdrawn (a submitted one's coupon comes back), unused
    coupons are erased and refunded per lot (as on a membership change), an order
    awaiting payment is cancelled and every open card session closed (a late charge is
    owed back), the validity ends today, and every session of the registration's IDs
    ends; its IDs can no longer log in. History stays. One unit of work under the
    registration's lock."""
    from persistence.models import Account, Application, CardPayment, Session
    from resolvers.adapters.gateway import gateway_of
    from resolvers.applications.use_cases import give_back_coupon
    from resolvers.coupons.purchases import cancel_in_session

    who = await require_viewer(ctx)
    checked_reason = validation.text(reason, ["input", "reason"], 500, "理由", required=False)
    now, today = ctx.clock.now(), ctx.clock.today()
    refunds: list[Refund] = []
    closed_sessions: list[str] = []
    async with ctx.services.db.write() as tx:
        registration = await _locked_registration(tx, ctx, who, registration_number, ["input", "registrationNumber"],
                                                  "registration.withdraw")
        if isinstance(checked_reason, UserFailure):
            raise checked_reason
        if registration.withdrawn_at is not None:
            raise UserFailure("INVALID_STATE", ["input", "registrationNumber"])
        await tx.execute(update(TradeRegistration).where(TradeRegistration.id == registration.id)
                         .values(withdrawn_at=now, valid_until=today))
        # its open applications end with it: a submitted one gives its coupon back first, so
        # the refund below pays for it (nobody can use or withdraw it any more)
        open_ids = (await tx.scalars(select(Application.id).where(
            Application.registration_id == registration.id,
            Application.state.in_(("DRAFT", "SUBMITTED", "ON_HOLD")) | Application.checkout_payment_id.is_not(None)))).all()
        for app in await locks.applications(tx, open_ids):
            if app.state in ("DRAFT", "SUBMITTED", "ON_HOLD"):
                if app.state == "SUBMITTED":
                    await give_back_coupon(tx, app, now, who.account.id, "退会による取下げ")
                await tx.execute(update(Application).where(Application.id == app.id)
                                 .values(state="WITHDRAWN", updated_at=now))
        pending = await tx.scalar(select(CouponPurchase).where(
            CouponPurchase.registration_id == registration.id, CouponPurchase.status == "AWAITING_PAYMENT"))
        if pending is not None:
            [pending] = await locks.purchases(tx, [pending.id])
            await cancel_in_session(tx, pending, now, "退会による取消")
        # open card sessions (an order's, a checkout's) close: a charge that still arrives is owed back
        open_payments = (await tx.scalars(select(CardPayment.id).where(
            CardPayment.registration_id == registration.id, CardPayment.status == "OPEN").order_by(CardPayment.id))).all()
        for payment_id in open_payments:
            payment = await locks.card_payment(tx, payment_id)
            await tx.execute(update(CardPayment).where(CardPayment.id == payment_id).values(status="CANCELLED", closed_at=now))
            await tx.execute(update(Application).where(Application.checkout_payment_id == payment_id)
                             .values(checkout_payment_id=None, updated_at=now))
            closed_sessions.append(payment.gateway_session)
        refund, _ = await ledger.erase_and_refund(
            tx, ctx.services.rules.current, registration_id=registration.id, key=f"withdrawal:{registration.id}",
            now=now, reason="退会に伴う未使用クーポンの返金" + (f" ({checked_reason})" if checked_reason else ""),
            actor_id=who.account.id,
        )
        if refund is not None:
            refunds.append(refund)
        members = select(Account.id).where(Account.registration_id == registration.id)
        await tx.execute(update(Session).where(Session.account_id.in_(members), Session.ended_at.is_(None))
                         .values(ended_at=now, end_reason="withdrawn"))
        audit(tx, ctx, who.account, "registration.withdraw", target=f"TradeRegistration:{registration.id}",
              detail=f"refund {refund.amount if refund else 0}" + (f"; {checked_reason}" if checked_reason else ""))
    for gateway_session in closed_sessions:  # after the commit: the provider is a network call
        await gateway_of(ctx.services).cancel_session(ctx.services, gateway_session)
    async with ctx.services.db.read() as session:
        return await session.get(TradeRegistration, registration.id), refunds


async def visible_purchase(ctx: Context, purchase_id: int) -> CouponPurchase | None:
    """An order, when the viewer may see its registration's coupons (else None, as if absent)."""
    who = await require_viewer(ctx)
    async with ctx.services.db.read() as session:
        purchase = await session.get(CouponPurchase, purchase_id)
        registration = await session.get(TradeRegistration, purchase.registration_id) if purchase else None
    if purchase is None:
        return None
    try:
        await authorize(ctx, who, "coupon.view", _relation(who, registration))
    except Forbidden:
        return None
    return purchase


async def purchase_by_id(ctx: Context, purchase_id: int) -> CouponPurchase | None:
    async with ctx.services.db.read() as session:
        return await session.get(CouponPurchase, purchase_id)
