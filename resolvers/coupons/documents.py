"""The 振込依頼書 of a bank-transfer coupon order: who may download it and what it says
(resolvers/adapters/pdf.py draws it)."""

from __future__ import annotations

from sqlalchemy import select

from persistence.models import CouponPurchase, CouponPurchaseLine, TradeRegistration, VirtualAccount
from resolvers.adapters import pdf
from resolvers.core.context import Context
from resolvers.core.errors import Forbidden
from resolvers.coupons.names import PurchaseMethod
from resolvers.identity.actor import authorize, require_viewer
from rules import fees


async def purchase_transfer_request(ctx: Context, purchase_id: int) -> bytes:
    who = await require_viewer(ctx)
    async with ctx.services.db.read() as session:
        purchase = await session.get(CouponPurchase, purchase_id)
        if purchase is None or purchase.method != PurchaseMethod.BANK_TRANSFER:
            raise Forbidden()
        registration = await session.get(TradeRegistration, purchase.registration_id)
        account = await session.scalar(select(VirtualAccount).where(VirtualAccount.purchase_id == purchase.id))
        if registration is None or account is None:
            raise Forbidden()
        rows = (await session.scalars(select(CouponPurchaseLine).where(CouponPurchaseLine.purchase_id == purchase.id)
                                      .order_by(CouponPurchaseLine.id))).all()
    relations: set[str] = set()
    if who.account.registration_id == registration.id:
        relations.add("own_registration")
    if who.account.chamber_id == registration.chamber_id:
        relations.add("same_chamber")
    await authorize(ctx, who, "coupon.view", relations or {"none"})
    policy = ctx.services.rules.current
    names = {p.code: p.name for p in fees.coupon_products(policy, purchase.ordered_on, purchase.membership)}
    settings = ctx.services.settings
    return pdf.transfer_request_pdf(
        issuer=settings.invoice_issuer, registration_number_t=settings.invoice_registration_number,
        printed_on=ctx.clock.today(), data=pdf.TransferRequestData(
            order_number=purchase.order_number, registration_number=registration.number, company=registration.name,
            ordered_on=purchase.ordered_on,
            lines=[(names.get(r.product_code, r.product_code), r.unit_price, r.quantity) for r in rows],
            amount=purchase.amount, tax=fees.tax_part(policy, purchase.ordered_on, purchase.amount),
            bank_name=account.bank_name, bank_code=account.bank_code, branch_name=account.branch_name,
            branch_code=account.branch_code, account_number=account.account_number, holder=account.holder,
            valid_until=account.valid_until),
    )
