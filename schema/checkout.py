"""Card payment of approved applications (docs/api.md): cart, checkout, statements.

Types are built from the views of resolvers/payments/queries.py (amounts and the tax part
of a statement are decided there) and hold plain attributes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

import strawberry

from resolvers.core.context import Context
from resolvers.core.errors import UserFailure
from resolvers.payments import checkout, queries
from resolvers.payments import messages as payment_words
from resolvers.payments.names import CardPaymentStatus
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


_FAILURES: dict[str, ErrorCode] = {CardPaymentStatus.EXPIRED: ErrorCode.SESSION_EXPIRED,
                                   CardPaymentStatus.DECLINED: ErrorCode.PAYMENT_DECLINED}


@strawberry.type(description="Approved card applications the viewer may pay, and those it chose.")
class CardCart:
    payable: list[Application]
    items: list[Application]
    total: int
    last_checkout: CardCheckout | None

    @classmethod
    def from_view(cls, cart: queries.CartView) -> CardCart:
        last = cart.last_checkout
        return cls(payable=[Application.from_view(a) for a in cart.payable],
                   items=[Application.from_view(a) for a in cart.items], total=cart.total,
                   last_checkout=CardCheckout(payment_number=last.payment_number, status=last.status, amount=last.amount,
                                              expires_at=last.expires_at, failure=_FAILURES.get(last.status))
                   if last else None)


@strawberry.type(description="クレジットカード利用明細: one per application, only for the account that paid.")
class CardStatement:
    statement_number: str
    application: Application
    amount: int
    tax: int
    paid_at: dt.datetime
    pdf_url: str

    @classmethod
    def from_view(cls, view: queries.StatementView, ctx: Context) -> CardStatement:
        app = Application.from_view(view.application)
        url = f"{ctx.services.settings.public_url}/documents/applications/{app.id}/card-statement.pdf"
        return cls(statement_number=view.number, application=app, amount=view.amount, tax=view.tax,
                   paid_at=view.paid_at, pdf_url=url)


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


def _ids(values: list[strawberry.ID]) -> list[int]:
    found = []
    for value in values:
        decoded = from_global_id(value)
        found.append(decoded[1] if decoded and decoded[0] == "Application" else -1)
    return found


async def _cart_after(info: strawberry.Info[Context], call: Callable[[], Awaitable[object]]) -> queries.CartView:
    """Run a use case changing the cart; answer the cart as read after it (inside run_mutation)."""
    await call()
    return await queries.card_cart(info.context)


@strawberry.type
class CheckoutQuery:
    @strawberry.field(description="クレジット決済: payable approved card applications and the viewer's cart.")
    async def card_cart(self, info: strawberry.Info[Context]) -> CardCart:
        return CardCart.from_view(await queries.card_cart(info.context))

    @strawberry.field(description="クレジット利用明細 of a month (\"2026-04\", Tokyo): what the viewer itself paid.")
    async def card_statements(self, info: strawberry.Info[Context], month: str) -> list[CardStatement]:
        try:
            views = await queries.card_statements(info.context, month)
        except UserFailure as failure:
            raise query_failure(failure, info.context.language) from None
        return [CardStatement.from_view(s, info.context) for s in views]


@strawberry.type
class CheckoutMutation:
    @strawberry.mutation(description="カートに追加.")
    async def add_to_card_cart(self, info: strawberry.Info[Context], input: AddToCardCartInput) -> AddToCardCartPayload:
        async def call() -> queries.CartView:
            at_most(input.application_ids, MAX_LIST_ITEMS, ["input", "applicationIds"], payment_words.APPLICATIONS)
            return await _cart_after(info, lambda: checkout.add_to_cart(info.context, _ids(input.application_ids)))
        return await run_mutation(info, call,
                                  ok=lambda cart: AddToCardCartPayload(cart=CardCart.from_view(cart), errors=[]),
                                  failed=lambda errors: AddToCardCartPayload(cart=None, errors=errors))

    @strawberry.mutation(description="カートから削除.")
    async def remove_from_card_cart(self, info: strawberry.Info[Context], input: RemoveFromCardCartInput) -> RemoveFromCardCartPayload:
        async def call() -> queries.CartView:
            at_most(input.application_ids, MAX_LIST_ITEMS, ["input", "applicationIds"], payment_words.APPLICATIONS)
            return await _cart_after(info, lambda: checkout.remove_from_cart(info.context, _ids(input.application_ids)))
        return await run_mutation(info, call,
                                  ok=lambda cart: RemoveFromCardCartPayload(cart=CardCart.from_view(cart), errors=[]),
                                  failed=lambda errors: RemoveFromCardCartPayload(cart=None, errors=errors))

    @strawberry.mutation(description="決済する: the cart's applications in one card payment at the gateway (5 minutes).")
    async def start_card_checkout(self, info: strawberry.Info[Context], input: StartCardCheckoutInput) -> StartCardCheckoutPayload:
        return await run_mutation(
            info, lambda: checkout.start_card_checkout(info.context, input.idempotency_key),
            ok=lambda c: StartCardCheckoutPayload(payment_url=c.payment_url, expires_at=c.expires_at, amount=c.amount, errors=[]),
            failed=lambda errors: StartCardCheckoutPayload(errors=errors))
