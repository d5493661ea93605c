"""What must hold of the money after any interleaving of use cases (the regression tests
and the concurrent model test check these after every run)."""

from __future__ import annotations

import re
from collections import defaultdict

from sqlalchemy import func, select

from persistence.models import (
    Application,
    CardPayment,
    CouponAccount,
    CouponEntry,
    CouponLot,
    CouponPurchase,
    Refund,
)
from resolvers.coupons import ledger

_APP_KEY = re.compile(r"^(use|return):app:(\d+):(\d+)$")


async def money_problems(db) -> list[str]:
    """Every invariant of issue 10, as a list of problems (empty: all hold).

    * ledger-audit is clean: entries = balance = lots, per registration;
    * the pending count of each account equals its orders awaiting payment;
    * an application holds a coupon (net of its use/return entries) exactly while it is
      SUBMITTED, APPROVED or ISSUED by coupon — never WITHDRAWN, DRAFT or ON_HOLD;
    * every paid card payment is issued (an ISSUED order / issued applications) or owed
      back as a refund."""
    async with db.read() as session:
        problems = list(await ledger.audit_ledger(session))
        pending = dict((await session.execute(select(CouponAccount.registration_id, CouponAccount.pending))).all())
        waiting = dict((await session.execute(
            select(CouponPurchase.registration_id, func.sum(CouponPurchase.coupons))
            .where(CouponPurchase.status == "AWAITING_PAYMENT").group_by(CouponPurchase.registration_id))).all())
        for registration_id, value in pending.items():
            if value != (waiting.get(registration_id) or 0):
                problems.append(f"registration {registration_id}: pending {value}, orders awaiting {waiting.get(registration_id) or 0}")
        held: dict[int, int] = defaultdict(int)
        for key, coupons in (await session.execute(
                select(CouponEntry.external_key, CouponEntry.coupons).where(CouponEntry.external_key.like("%:app:%")))).all():
            match = _APP_KEY.match(key)
            if match:
                held[int(match.group(2))] -= coupons
        for app_id, state, payment in (await session.execute(
                select(Application.id, Application.state, Application.fee_payment))).all():
            want = 1 if payment == "COUPON" and state in ("SUBMITTED", "APPROVED", "ISSUED") else 0
            if held.get(app_id, 0) != want:
                problems.append(f"application {app_id} ({state}, {payment}) holds {held.get(app_id, 0)} coupon(s)")
        refund_keys = set((await session.scalars(select(Refund.external_key))).all())
        for payment in (await session.scalars(select(CardPayment).where(CardPayment.charge_id.is_not(None)))).all():
            owed = f"charge:{payment.charge_id}" in refund_keys
            if payment.status == "PAID":
                if payment.purpose == "COUPON_PURCHASE":
                    status = await session.scalar(select(CouponPurchase.status).where(CouponPurchase.id == payment.purchase_id))
                    if status != "ISSUED" and not owed:
                        problems.append(f"card payment {payment.id} paid, order {status}, no refund")
                else:
                    issued = await session.scalar(select(func.count()).select_from(Application).where(
                        Application.paid_by_id == payment.payer_id, Application.state == "ISSUED"))
                    if not issued and not owed:
                        problems.append(f"card payment {payment.id} paid, nothing issued, no refund")
            elif not owed:
                problems.append(f"card payment {payment.id} charged ({payment.status}) but no refund owed")
        negative = await session.scalar(select(func.count()).select_from(CouponLot).where(CouponLot.coupons_left < 0))
        if negative:
            problems.append(f"{negative} lot(s) below zero")
    return problems
