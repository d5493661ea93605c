"""Card payment of approved applications (docs/api.md): cart, checkout, statements."""

from __future__ import annotations

import datetime as dt

import strawberry

from resolvers.core.context import Context
from resolvers.payments import checkout
from schema.applications import Application
from schema.errors import ErrorCode, UserError, run_mutation
from schema.identity import from_global_id
from schema.inputs import MAX_LIST_ITEMS, at_most, query_failure


@strawberry.type(description="The viewer's most recent card checkout, so a client can tell why it ended.")
class CardCheckout:
    payment_number: str
    status: str = strawberry.field(description="OPEN, PAID, DECLINED, EXPIRED or CANCELLED.")
    amount: int
    expires_at: dt.datetime
    failure: ErrorCode | None = strawberry.field(description="SESSION_EXPIRED or PAYMENT_DECLINED when it failed.")


@strawberry.type(description="Approved card applications the viewer may pay, and those it chose.")
class CardCart:
    payable: list[Application]
    items: list[Application]
    total: int

    @classmethod
    def of(cls, cart: checkout.Cart) -> CardCart:
        return cls(payable=[Application.of(a) for a in cart.payable], items=[Application.of(a) for a in cart.items],
                   total=cart.total)

    @strawberry.field
    async def last_checkout(self, info: strawberry.Info[Context]) -> CardCheckout | None:
        row = await checkout.last_checkout(info.context)
        if row is None:
            return None
        failure = {"EXPIRED": ErrorCode.SESSION_EXPIRED, "DECLINED": ErrorCode.PAYMENT_DECLINED}.get(row.status)
        return CardCheckout(payment_number=row.payment_number, status=row.status, amount=row.amount,
                            expires_at=row.expires_at, failure=failure)


@strawberry.type(description="クレジットカード利用明細: one per application, only for the account that paid.")
class CardStatement:
    statement_number: str
    application: Application
    amount: int
    tax: int
    paid_at: dt.datetime
    pdf_url: str


def _statement(info, s: checkout.Statement) -> CardStatement:
    from rules import fees

    tax = fees.tax_part(info.context.services.rules.current, s.application.submitted_on, s.amount)
    app = Application.of(s.application)
    url = f"{info.context.services.settings.public_url}/documents/applications/{app.id}/card-statement.pdf"
    return CardStatement(statement_number=s.number, application=app, amount=s.amount, tax=tax, paid_at=s.paid_at, pdf_url=url)


@strawberry.input
class AddToCardCartInput:
    application_ids: list[strawberry.ID]


@strawberry.input
class RemoveFromCardCartInput:
    application_ids: list[strawberry.ID]


@strawberry.type
class AddToCardCartPayload:
    cart: CardCart | None
    errors: list[UserError]


@strawberry.type
class RemoveFromCardCartPayload:
    cart: CardCart | None
    errors: list[UserError]


@strawberry.input
class StartCardCheckoutInput:
    idempotency_key: str | None = strawberry.field(default=None, description="A repeat with the same key returns the first checkout.")


@strawberry.type
class StartCardCheckoutPayload:
    payment_url: str | None = None
    expires_at: dt.datetime | None = None
    amount: int | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


def _ids(values: list[str]) -> list[int]:
    found = []
    for value in values:
        decoded = from_global_id(value)
        found.append(decoded[1] if decoded and decoded[0] == "Application" else -1)
    return found


@strawberry.type
class CheckoutQuery:
    @strawberry.field(description="クレジット決済: payable approved card applications and the viewer's cart.")
    async def card_cart(self, info: strawberry.Info[Context]) -> CardCart:
        return CardCart.of(await checkout.card_cart(info.context))

    @strawberry.field(description="クレジット利用明細 of a month (\"2026-04\", Tokyo): what the viewer itself paid.")
    async def card_statements(self, info: strawberry.Info[Context], month: str) -> list[CardStatement]:
        from resolvers.core.errors import UserFailure

        try:
            rows = await checkout.card_statements(info.context, month)
        except UserFailure as failure:
            raise query_failure(failure, info.context.language) from None
        return [_statement(info, s) for s in rows]


@strawberry.type
class CheckoutMutation:
    @strawberry.mutation(description="カートに追加.")
    async def add_to_card_cart(self, info: strawberry.Info[Context], input: AddToCardCartInput) -> AddToCardCartPayload:
        async def call():
            at_most(input.application_ids, MAX_LIST_ITEMS, ["input", "applicationIds"], "申請")
            return await checkout.add_to_cart(info.context, _ids(input.application_ids))
        return await run_mutation(info, call,
                                  ok=lambda cart: AddToCardCartPayload(cart=CardCart.of(cart), errors=[]),
                                  failed=lambda errors: AddToCardCartPayload(cart=None, errors=errors))

    @strawberry.mutation(description="カートから削除.")
    async def remove_from_card_cart(self, info: strawberry.Info[Context], input: RemoveFromCardCartInput) -> RemoveFromCardCartPayload:
        async def call():
            at_most(input.application_ids, MAX_LIST_ITEMS, ["input", "applicationIds"], "申請")
            return await checkout.remove_from_cart(info.context, _ids(input.application_ids))
        return await run_mutation(info, call,
                                  ok=lambda cart: RemoveFromCardCartPayload(cart=CardCart.of(cart), errors=[]),
                                  failed=lambda errors: RemoveFromCardCartPayload(cart=None, errors=errors))

    @strawberry.mutation(description="決済する: the cart's applications in one card payment at the gateway (5 minutes).")
    async def start_card_checkout(self, info: strawberry.Info[Context], input: StartCardCheckoutInput) -> StartCardCheckoutPayload:
        return await run_mutation(
            info, lambda: checkout.start_card_checkout(info.context, input.idempotency_key),
            ok=lambda c: StartCardCheckoutPayload(payment_url=c.payment_url, expires_at=c.expires_at, amount=c.amount, errors=[]),
            failed=lambda errors: StartCardCheckoutPayload(errors=errors))
