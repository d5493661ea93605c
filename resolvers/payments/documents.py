"""利用明細 of card payments (eco-payment-2026 §5): who may download which statement and what it
says (resolvers/adapters/pdf.py draws it)."""

from __future__ import annotations

from sqlalchemy import select

from persistence.models import CardPayment, CardStatement, Chamber, CouponPurchase, TradeRegistration
from resolvers.adapters import pdf
from resolvers.applications.messages import CERTIFICATE_TYPE_NAMES
from resolvers.applications.names import CertificateType
from resolvers.core.clock import tokyo_date
from resolvers.core.context import Context
from resolvers.core.errors import Forbidden
from resolvers.fees import rules_history
from resolvers.identity.actor import require_viewer
from resolvers.payments.checkout import statement_of
from resolvers.payments.names import CardPaymentStatus
from resolvers.payments.queries import statement_tax


async def purchase_card_statement(ctx: Context, purchase_id: int) -> bytes:
    """The 利用明細 of a card coupon order: only the account that paid may see it."""
    who = await require_viewer(ctx)
    async with ctx.services.db.read() as session:
        payment = await session.scalar(select(CardPayment).where(CardPayment.purchase_id == purchase_id,
                                                                 CardPayment.status == CardPaymentStatus.PAID))
        if payment is None or payment.payer_id != who.account.id:
            raise Forbidden()
        purchase = await session.get(CouponPurchase, purchase_id)
        registration = await session.get(TradeRegistration, purchase.registration_id) if purchase else None
        chamber = await session.get(Chamber, registration.chamber_id) if registration else None
        number = await session.scalar(select(CardStatement.number).where(  # 発行番号, given as it settled
            CardStatement.card_payment_id == payment.id, CardStatement.card_payment_item_id.is_(None)))
        # reprinted under the rules the order was priced by, whatever the files say now
        policy = await rules_history.policy_of_record(session, purchase.rules_version if purchase else None,
                                                      ctx.services.rules.current)
    if purchase is None or purchase.paid_at is None or registration is None or chamber is None or number is None:
        raise Forbidden()
    paid_on = tokyo_date(purchase.paid_at)
    settings = ctx.services.settings
    return pdf.card_statement_pdf(
        issuer=settings.invoice_issuer, registration_number_t=settings.invoice_registration_number,
        printed_on=ctx.clock.today(), data=pdf.CardStatementData(
            statement_number=number,
            registration_number=registration.number, company=registration.name, chamber=chamber.name,
            content=f"クーポン購入 ({purchase.coupons}枚)", details=[("注文番号", purchase.order_number)],
            paid_on=paid_on, amount=payment.amount,
            tax=statement_tax(policy, purchase.ordered_on, payment.amount),
            payment_number=payment.payment_number, card=f"{payment.brand or ''} ****{payment.last4 or ''}"))


async def application_card_statement(ctx: Context, app_id: int) -> bytes:
    """One application's 利用明細 (eco-payment-2026 §5): only the account that paid."""
    statement = await statement_of(ctx, app_id)
    app, registration, payment = statement.application, statement.registration, statement.payment
    async with ctx.services.db.read() as session:
        chamber = await session.get(Chamber, registration.chamber_id)
        # the rules that fixed the fee at the first submission, whatever the files say now
        policy = await rules_history.policy_of_record(session, app.rules_version, ctx.services.rules.current)
    if chamber is None or app.submitted_on is None:
        raise Forbidden()
    settings = ctx.services.settings
    content = CERTIFICATE_TYPE_NAMES[CertificateType(app.type)] + (f"({app.signature_kind})" if app.signature_kind else "")
    return pdf.card_statement_pdf(
        issuer=settings.invoice_issuer, registration_number_t=settings.invoice_registration_number,
        printed_on=ctx.clock.today(), data=pdf.CardStatementData(
            statement_number=statement.number, registration_number=registration.number, company=registration.name,
            chamber=chamber.name, content=content,
            details=[("証明書番号", app.certificate_number or ""), ("インボイス番号", app.invoice_number)],
            paid_on=tokyo_date(statement.paid_at), amount=statement.amount,
            tax=statement_tax(policy, app.submitted_on, statement.amount),
            payment_number=payment.payment_number, card=f"{payment.brand or ''} ****{payment.last4 or ''}"))
