"""Coupons (docs/api.md): the account, its history, the chamber's operations and purchases.

Types are built from the views of resolvers/coupons/queries.py and hold plain attributes:
a page loads every relation it shows in its connection resolver, so graphql-core resolves
them without a task or an await. The order a history entry came from — a rare field — is
the one relation loaded on demand (batched per request)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

import strawberry

from resolvers.adapters.bank import DepositInput
from resolvers.core.context import Context
from resolvers.coupons import accounts as coupons
from resolvers.coupons import messages as coupon_words
from resolvers.coupons import purchases, queries
from resolvers.identity import names
from resolvers.identity import queries as identity
from schema.enums import CouponEntryKind, PurchaseStatus
from schema.errors import UserError, run_mutation
from schema.fees import Membership, PurchaseMethod
from schema.identity import Account, Node, NodeLoader, TradeRegistration, from_global_id, to_global_id
from schema.inputs import MAX_LIST_ITEMS, at_most
from schema.paging import PageInfo, encode_cursor, page_info, page_window


class HasId(Protocol):
    """What the schema reads of a use case's result: the id of the row it changed."""

    @property
    def id(self) -> int: ...


@strawberry.type
class CouponPurchaseLine:
    product_code: str
    quantity: int
    unit_price: int
    coupons: int
    amount: int


@strawberry.type(description="The one-time account of a bank-transfer order (never reused).")
class VirtualAccount:
    bank_code: str
    bank_name: str
    branch_code: str
    branch_name: str
    account_number: str
    holder: str
    valid_until: dt.date


@strawberry.type(description="A coupon order.")
class CouponPurchase(Node):
    order_number: str
    status: PurchaseStatus
    method: PurchaseMethod
    membership: Membership
    coupons: int
    amount: int
    ordered_at: dt.datetime
    expires_at: dt.datetime | None
    paid_at: dt.datetime | None
    deposited_amount: int | None
    refund_due: int | None
    cancel_reason: str | None
    transfer_request_pdf_url: str | None = strawberry.field(
        description="振込依頼書 (PDF), for bank-transfer orders; same session and permissions as the order.")
    payment_url: str | None = strawberry.field(
        description="Card orders: the payment gateway's hosted page while its session is open (5 minutes).")
    card_statement_pdf_url: str | None = strawberry.field(
        description="Card orders once paid: 利用明細 (PDF) — only for the account that paid.")
    lines: list[CouponPurchaseLine]
    virtual_account: VirtualAccount | None
    buyer: Account

    @classmethod
    def from_view(cls, view: queries.PurchaseView, ctx: Context) -> CouponPurchase:
        gid = to_global_id("CouponPurchase", view.id)
        transfer = view.method == PurchaseMethod.BANK_TRANSFER.value
        documents = f"{ctx.services.settings.public_url}/documents/purchases/{gid}"
        va = view.virtual_account
        return cls(
            id=gid, order_number=view.order_number, status=PurchaseStatus(view.status),
            method=PurchaseMethod(view.method), membership=Membership(view.membership), coupons=view.coupons,
            amount=view.amount, ordered_at=view.ordered_at, expires_at=view.expires_at, paid_at=view.paid_at,
            deposited_amount=view.deposited_amount, refund_due=view.refund_due, cancel_reason=view.cancel_reason,
            transfer_request_pdf_url=f"{documents}/transfer-request.pdf" if transfer else None,
            payment_url=view.payment_url if view.method == PurchaseMethod.CARD.value else None,
            card_statement_pdf_url=f"{documents}/card-statement.pdf" if view.paid_by_viewer else None,
            lines=[CouponPurchaseLine(product_code=line.product_code, quantity=line.quantity, unit_price=line.unit_price,
                                      coupons=line.coupons, amount=line.amount) for line in view.lines],
            virtual_account=VirtualAccount(
                bank_code=va.bank_code, bank_name=va.bank_name, branch_code=va.branch_code, branch_name=va.branch_name,
                account_number=va.account_number, holder=va.holder, valid_until=va.valid_until) if va else None,
            buyer=Account.from_view(view.buyer),
        )


async def _purchase_node(info: strawberry.Info[Context], pk: int) -> CouponPurchase | None:
    view = await queries.visible_purchase(info.context, pk)
    return CouponPurchase.from_view(view, info.context) if view else None


NODES: dict[str, NodeLoader] = {"CouponPurchase": _purchase_node}  # wired into Node lookup by schema/__init__.py


@strawberry.type
class CouponPurchaseEdge:
    cursor: str
    node: CouponPurchase


@strawberry.type
class CouponPurchaseConnection:
    edges: list[CouponPurchaseEdge]
    page_info: PageInfo
    total_count: int


async def _purchase_on_demand(ctx: Context, purchase_id: int) -> CouponPurchase | None:
    view = await queries.purchase_loader(ctx).load(purchase_id)
    return CouponPurchase.from_view(view, ctx) if view else None


@strawberry.type(description="A row of クーポン履歴.")
class CouponEntry:
    kind: CouponEntryKind
    at: dt.datetime
    confirmed: bool
    coupons: int = strawberry.field(description="The change: positive in, negative out.")
    balance_after: int | None
    note: str | None
    receipt_number: str | None
    actor: Account | None
    _purchase_id: strawberry.Private[int | None] = None

    @strawberry.field(description="The order a PURCHASE entry came from.")
    def purchase(self, info: strawberry.Info[Context]) -> CouponPurchase | None:
        if self._purchase_id is None:
            return None
        # a rare field: an awaitable graphql-core awaits, batched with the page's other entries
        return cast(CouponPurchase | None, _purchase_on_demand(info.context, self._purchase_id))


@strawberry.type
class CouponEntryEdge:
    cursor: str
    node: CouponEntry


@strawberry.type
class CouponEntryConnection:
    edges: list[CouponEntryEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type(description="The coupons of an applicant registration, shared by its signers and sub-IDs.")
class CouponAccount:
    registration: TradeRegistration
    balance: int = strawberry.field(description="クーポン残数: usable now.")
    pending: int = strawberry.field(description="クーポン購入手続中: bought, awaiting payment.")
    _registration_id: strawberry.Private[int]

    @classmethod
    def from_view(cls, view: queries.CouponAccountView) -> CouponAccount:
        return cls(registration=TradeRegistration.from_view(view.registration), balance=view.balance, pending=view.pending,
                   _registration_id=view.registration.id)

    @strawberry.field(description="Newest first.")
    async def purchases(self, info: strawberry.Info[Context], first: int | None = 20, after: str | None = None) -> CouponPurchaseConnection:
        size, before = page_window("CouponPurchase", first, after)
        page = await queries.purchases_of(info.context, self._registration_id, size, before)
        edges = [CouponPurchaseEdge(cursor=encode_cursor("CouponPurchase", p.id),
                                    node=CouponPurchase.from_view(p, info.context)) for p in page.items]
        return CouponPurchaseConnection(edges=edges, total_count=page.total, page_info=page_info(edges, page.more))

    @strawberry.field(description="Newest first.")
    async def history(self, info: strawberry.Info[Context], first: int | None = 20, after: str | None = None) -> CouponEntryConnection:
        size, before = page_window("CouponEntry", first, after)
        page = await queries.history(info.context, self._registration_id, size, before)
        edges = [CouponEntryEdge(cursor=encode_cursor("CouponEntry", e.id), node=CouponEntry(
            kind=CouponEntryKind(e.kind), at=e.at, confirmed=e.confirmed, coupons=e.coupons, balance_after=e.balance_after,
            note=e.note, receipt_number=e.receipt_number, actor=Account.from_view(e.actor) if e.actor else None,
            _purchase_id=e.purchase_id)) for e in page.items]
        return CouponEntryConnection(edges=edges, total_count=page.total, page_info=page_info(edges, page.more))


@strawberry.type(description="Money the chamber owes back (membership change, withdrawal, over/under payment).")
class Refund(Node):
    amount: int
    reason: str
    created_at: dt.datetime
    paid_at: dt.datetime | None
    registration: TradeRegistration
    rules_versions: list[str] = strawberry.field(description=(
        "The rules versions (see `rulesVersions`) the refunded coupon lots were priced under: each lot is "
        "refunded under its own version. Empty for refunds of chamber additions only, and for refunds "
        "recorded before versions were kept."))

    @strawberry.field(description="The first of `rulesVersions`, or null when there is none.")
    def rules_version(self) -> str | None:
        return self.rules_versions[0] if self.rules_versions else None

    @classmethod
    def from_view(cls, view: queries.RefundView) -> Refund:
        return cls(id=to_global_id("Refund", view.id), amount=view.amount, reason=view.reason, created_at=view.created_at,
                   paid_at=view.paid_at, registration=TradeRegistration.from_view(view.registration),
                   rules_versions=list(view.rules_versions))


@strawberry.input
class AdjustCouponsInput:
    registration_number: str
    coupons: int = strawberry.field(description="Positive adds, negative removes.")
    reason: str


@strawberry.type
class AdjustCouponsPayload:
    account: CouponAccount | None
    errors: list[UserError]


@strawberry.input
class SetMembershipInput:
    registration_number: str
    membership: Membership


@strawberry.type
class SetMembershipPayload:
    registration: TradeRegistration | None
    refunds: list[Refund]
    errors: list[UserError]


@strawberry.input
class MarkRefundPaidInput:
    refund_id: strawberry.ID


@strawberry.type
class MarkRefundPaidPayload:
    refund: Refund | None
    errors: list[UserError]


@strawberry.input
class WithdrawTradeRegistrationInput:
    registration_number: str
    reason: str | None = None


@strawberry.type
class WithdrawTradeRegistrationPayload:
    registration: TradeRegistration | None
    refunds: list[Refund]
    errors: list[UserError]


async def _registration(ctx: Context, registration_id: int) -> TradeRegistration:
    async with ctx.read() as unit:
        view = (await identity.registrations_by_id(unit, [registration_id], ctx.clock.now()))[registration_id]
    return TradeRegistration.from_view(view)


async def _registration_and_refunds(info: strawberry.Info[Context], call: Callable[[], Awaitable[tuple[HasId, list[Any]]]],
                                    ) -> tuple[TradeRegistration, list[Refund]]:
    """A use case answering (registration, refunds): both mapped from views read again by id
    (inside run_mutation: after the write)."""
    registration, refunds = await call()
    return (await _registration(info.context, registration.id),
            [Refund.from_view(r) for r in await queries.refunds_by_ids(info.context, [r.id for r in refunds])])


@strawberry.type
class CouponsQuery:
    @strawberry.field(description="The viewer's applicant registration; chamber staff name one.")
    async def coupon_account(self, info: strawberry.Info[Context], registration_number: str | None = None) -> CouponAccount:
        return CouponAccount.from_view(await queries.coupon_account(info.context, registration_number))

    @strawberry.field(description="Chamber staff: refunds owed by the chamber; `paid` filters.")
    async def refunds(self, info: strawberry.Info[Context], paid: bool | None = None) -> list[Refund]:
        return [Refund.from_view(r) for r in await queries.list_refunds(info.context, paid)]


@strawberry.type
class CouponsMutation:
    @strawberry.mutation(description="Chamber staff: add or remove coupons by hand, with a reason (CHAMBER_OPERATION).")
    async def adjust_coupons(self, info: strawberry.Info[Context], input: AdjustCouponsInput) -> AdjustCouponsPayload:
        async def call() -> queries.CouponAccountView:
            await coupons.adjust_coupons(info.context, input.registration_number, input.coupons, input.reason)
            return await queries.coupon_account(info.context, input.registration_number)
        return await run_mutation(
            info, call,
            ok=lambda view: AdjustCouponsPayload(account=CouponAccount.from_view(view), errors=[]),
            failed=lambda errors: AdjustCouponsPayload(account=None, errors=errors),
        )

    @strawberry.mutation(description="Chamber staff: member ⇄ non-member; unused coupons are erased and refunded per lot, an order awaiting payment is cancelled.")
    async def set_membership(self, info: strawberry.Info[Context], input: SetMembershipInput) -> SetMembershipPayload:
        return await run_mutation(
            info, lambda: _registration_and_refunds(info, lambda: coupons.set_membership(
                info.context, input.registration_number, names.Membership(input.membership.value))),
            ok=lambda done: SetMembershipPayload(registration=done[0], refunds=done[1], errors=[]),
            failed=lambda errors: SetMembershipPayload(registration=None, refunds=[], errors=errors),
        )

    @strawberry.mutation(description="Chamber staff: 退会 — unused coupons refunded per lot, validity ends, IDs can no longer log in.")
    async def withdraw_trade_registration(self, info: strawberry.Info[Context], input: WithdrawTradeRegistrationInput) -> WithdrawTradeRegistrationPayload:
        return await run_mutation(
            info, lambda: _registration_and_refunds(info, lambda: coupons.withdraw_registration(
                info.context, input.registration_number, input.reason)),
            ok=lambda done: WithdrawTradeRegistrationPayload(registration=done[0], refunds=done[1], errors=[]),
            failed=lambda errors: WithdrawTradeRegistrationPayload(registration=None, refunds=[], errors=errors),
        )

    @strawberry.mutation(description="Chamber staff: record that a refund was paid out.")
    async def mark_refund_paid(self, info: strawberry.Info[Context], input: MarkRefundPaidInput) -> MarkRefundPaidPayload:
        decoded = from_global_id(input.refund_id)
        refund_pk = decoded[1] if decoded and decoded[0] == "Refund" else -1

        async def call() -> list[queries.RefundView]:
            refund = await coupons.mark_refund_paid(info.context, refund_pk)
            return await queries.refunds_by_ids(info.context, [refund])
        return await run_mutation(
            info, call,
            ok=lambda views: MarkRefundPaidPayload(refund=Refund.from_view(views[0]) if views else None, errors=[]),
            failed=lambda errors: MarkRefundPaidPayload(refund=None, errors=errors),
        )


# --------------------------------------------------------------------------- purchases


@strawberry.input
class CouponPurchaseLineInput:
    product_code: str
    quantity: int


@strawberry.input
class StartCouponPurchaseInput:
    lines: list[CouponPurchaseLineInput]
    method: PurchaseMethod
    notify_email: str | None = None
    idempotency_key: str | None = strawberry.field(default=None, description="A repeat with the same key returns the first result.")


@strawberry.type
class StartCouponPurchasePayload:
    purchase: CouponPurchase | None
    errors: list[UserError]


@strawberry.input
class CancelCouponPurchaseInput:
    purchase_id: strawberry.ID


@strawberry.type
class CancelCouponPurchasePayload:
    purchase: CouponPurchase | None
    errors: list[UserError]


@strawberry.input
class BankDepositInput:
    account_number: str
    amount: int
    deposited_on: dt.date
    payer_name: str | None = None
    deposit_id: str | None = strawberry.field(default=None, description=(
        "The bank's id of this deposit (照会番号, ≤ 64 characters): the same id again with the same account, amount "
        "and date is a replay and changes nothing; with another deposit it is refused. Without it every entry is "
        "a new deposit."))


@strawberry.input
class RecordBankDepositsInput:
    deposits: list[BankDepositInput]


@strawberry.type
class RecordBankDepositsPayload:
    matched: list[CouponPurchase] = strawberry.field(description="The orders the deposits belong to (applied by the reconciliation job or checkPurchasePayment).")
    already_recorded: list[int] = strawberry.field(description="Positions (from 0) of deposits whose depositId was recorded before for the same deposit: nothing changed for them.")
    errors: list[UserError]


@strawberry.input
class CheckPurchasePaymentInput:
    purchase_id: strawberry.ID


@strawberry.type
class CheckPurchasePaymentPayload:
    purchase: CouponPurchase | None
    errors: list[UserError]


def _purchase_pk(value: str) -> int:
    decoded = from_global_id(value)
    return decoded[1] if decoded and decoded[0] == "CouponPurchase" else -1


async def _purchase_after(info: strawberry.Info[Context], call: Callable[[], Awaitable[HasId]]) -> CouponPurchase | None:
    """Run a use case answering an order; map that order, read again by id (a plain view;
    inside run_mutation: after the write)."""
    changed = await call()
    view = await queries.purchase(info.context, changed.id)
    return CouponPurchase.from_view(view, info.context) if view else None


@strawberry.type
class PurchasesMutation:
    @strawberry.mutation(description="Signer or sub-ID: order coupons (one order in progress per registration).")
    async def start_coupon_purchase(self, info: strawberry.Info[Context], input: StartCouponPurchaseInput) -> StartCouponPurchasePayload:
        async def call() -> HasId:
            at_most(input.lines, MAX_LIST_ITEMS, ["input", "lines"], coupon_words.PURCHASE_LINES)
            lines = [purchases.LineInput(line.product_code, line.quantity) for line in input.lines]
            return await purchases.start_coupon_purchase(info.context, lines, input.method, input.notify_email,
                                                         input.idempotency_key)
        return await run_mutation(
            info, lambda: _purchase_after(info, call),
            ok=lambda purchase: StartCouponPurchasePayload(purchase=purchase, errors=[]),
            failed=lambda errors: StartCouponPurchasePayload(purchase=None, errors=errors),
        )

    @strawberry.mutation(description="The buyer cancels its pending order.")
    async def cancel_coupon_purchase(self, info: strawberry.Info[Context], input: CancelCouponPurchaseInput) -> CancelCouponPurchasePayload:
        return await run_mutation(
            info, lambda: _purchase_after(info, lambda: purchases.cancel_coupon_purchase(
                info.context, _purchase_pk(input.purchase_id))),
            ok=lambda purchase: CancelCouponPurchasePayload(purchase=purchase, errors=[]),
            failed=lambda errors: CancelCouponPurchasePayload(purchase=None, errors=errors),
        )

    @strawberry.mutation(description="Chamber staff: record deposits to this chamber's orders (all or none); matching happens in reconciliation.")
    async def record_bank_deposits(self, info: strawberry.Info[Context], input: RecordBankDepositsInput) -> RecordBankDepositsPayload:
        async def call() -> tuple[list[CouponPurchase], list[int]]:
            at_most(input.deposits, MAX_LIST_ITEMS, ["input", "deposits"], coupon_words.DEPOSITS)
            deposits = [DepositInput(d.account_number.strip(), d.amount, d.deposited_on, d.payer_name, d.deposit_id)
                        for d in input.deposits]
            done = await purchases.record_bank_deposits(info.context, deposits)
            found = await queries.purchases_by_ids(info.context, [o.id for o in done.orders])
            return [CouponPurchase.from_view(found[pk], info.context) for pk in sorted(found)], done.already_recorded
        return await run_mutation(
            info, call,
            ok=lambda done: RecordBankDepositsPayload(matched=done[0], already_recorded=done[1], errors=[]),
            failed=lambda errors: RecordBankDepositsPayload(matched=[], already_recorded=[], errors=errors),
        )

    @strawberry.mutation(description="Chamber staff: match this order's deposits now (same-day issue).")
    async def check_purchase_payment(self, info: strawberry.Info[Context], input: CheckPurchasePaymentInput) -> CheckPurchasePaymentPayload:
        return await run_mutation(
            info, lambda: _purchase_after(info, lambda: purchases.check_purchase_payment(
                info.context, _purchase_pk(input.purchase_id))),
            ok=lambda purchase: CheckPurchasePaymentPayload(purchase=purchase, errors=[]),
            failed=lambda errors: CheckPurchasePaymentPayload(purchase=None, errors=errors),
        )
