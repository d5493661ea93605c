"""Coupons (docs/api.md): the account, its history, and the chamber's operations.
Purchases (startCouponPurchase …) arrive with the bank-transfer and card work."""

from __future__ import annotations

import datetime as dt
from enum import Enum

import strawberry

from persistence import models
from resolvers.core.context import Context
from resolvers.coupons import accounts as coupons
from resolvers.identity import accounts as identity
from resolvers.payments import card as payments
from schema.errors import UserError, run_mutation
from schema.fees import Membership
from schema.identity import NODE_TYPES, Account, Node, TradeRegistration, from_global_id, to_global_id
from schema.inputs import MAX_LIST_ITEMS, at_most
from schema.paging import PageInfo, encode_cursor, page_info, page_window


@strawberry.enum(description="PURCHASE 購入 · USE 使用 · RETURN 返却(保留) · CHAMBER_OPERATION 商工会議所操作 · REFUND 返金.")
class CouponEntryKind(Enum):
    PURCHASE = "PURCHASE"
    USE = "USE"
    RETURN = "RETURN"
    CHAMBER_OPERATION = "CHAMBER_OPERATION"
    REFUND = "REFUND"


@strawberry.type(description="A row of クーポン履歴.")
class CouponEntry:
    kind: CouponEntryKind
    at: dt.datetime
    confirmed: bool
    coupons: int = strawberry.field(description="The change: positive in, negative out.")
    balance_after: int | None
    note: str | None
    receipt_number: str | None
    _actor_id: strawberry.Private[int | None]
    _purchase_id: strawberry.Private[int | None] = None

    @strawberry.field
    async def actor(self, info: strawberry.Info[Context]) -> Account | None:
        row = await identity.account_by_id(info.context, self._actor_id) if self._actor_id else None
        return Account.of(row) if row else None

    @strawberry.field(description="The order a PURCHASE entry came from.")
    async def purchase(self, info: strawberry.Info[Context]) -> CouponPurchase | None:
        row = await coupons.purchase_by_id(info.context, self._purchase_id) if self._purchase_id else None
        return CouponPurchase.of(row) if row else None


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
    def of(cls, view: coupons.AccountView) -> CouponAccount:
        return cls(registration=TradeRegistration.of(view.registration), balance=view.balance, pending=view.pending,
                   _registration_id=view.registration.id)

    @strawberry.field(description="Newest first.")
    async def purchases(self, info: strawberry.Info[Context], first: int | None = 20, after: str | None = None) -> CouponPurchaseConnection:
        size, before = page_window("CouponPurchase", first, after)
        rows, total, more = await coupons.purchases_of(info.context, self._registration_id, size, before)
        edges = [CouponPurchaseEdge(cursor=encode_cursor("CouponPurchase", r.id), node=CouponPurchase.of(r)) for r in rows]
        return CouponPurchaseConnection(edges=edges, total_count=total, page_info=page_info(edges, more))

    @strawberry.field(description="Newest first.")
    async def history(self, info: strawberry.Info[Context], first: int | None = 20, after: str | None = None) -> CouponEntryConnection:
        size, before = page_window("CouponEntry", first, after)
        rows, total, more = await coupons.history(info.context, self._registration_id, size, before)
        edges = [CouponEntryEdge(cursor=encode_cursor("CouponEntry", r.id), node=CouponEntry(
            kind=CouponEntryKind(r.kind), at=r.at, confirmed=r.confirmed, coupons=r.coupons, balance_after=r.balance_after,
            note=r.note, receipt_number=r.receipt_number, _actor_id=r.actor_id, _purchase_id=r.purchase_id)) for r in rows]
        return CouponEntryConnection(edges=edges, total_count=total, page_info=page_info(edges, more))


@strawberry.type(description="Money the chamber owes back (membership change, withdrawal, over/under payment).")
class Refund(Node):
    amount: int
    reason: str
    created_at: dt.datetime
    paid_at: dt.datetime | None
    _registration_id: strawberry.Private[int]

    @classmethod
    def of(cls, row: models.Refund) -> Refund:
        return cls(id=to_global_id("Refund", row.id), amount=row.amount, reason=row.reason, created_at=row.created_at,
                   paid_at=row.paid_at, _registration_id=row.registration_id)

    @strawberry.field
    async def registration(self, info: strawberry.Info[Context]) -> TradeRegistration:
        return TradeRegistration.of(await identity.registration_of(info.context, self._registration_id))


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


@strawberry.type
class CouponsQuery:
    @strawberry.field(description="The viewer's applicant registration; chamber staff name one.")
    async def coupon_account(self, info: strawberry.Info[Context], registration_number: str | None = None) -> CouponAccount:
        return CouponAccount.of(await coupons.coupon_account(info.context, registration_number))

    @strawberry.field(description="Chamber staff: refunds owed by the chamber; `paid` filters.")
    async def refunds(self, info: strawberry.Info[Context], paid: bool | None = None) -> list[Refund]:
        return [Refund.of(r) for r in await coupons.list_refunds(info.context, paid)]


@strawberry.type
class CouponsMutation:
    @strawberry.mutation(description="Chamber staff: add or remove coupons by hand, with a reason (CHAMBER_OPERATION).")
    async def adjust_coupons(self, info: strawberry.Info[Context], input: AdjustCouponsInput) -> AdjustCouponsPayload:
        return await run_mutation(
            info, lambda: coupons.adjust_coupons(info.context, input.registration_number, input.coupons, input.reason),
            ok=lambda view: AdjustCouponsPayload(account=CouponAccount.of(view), errors=[]),
            failed=lambda errors: AdjustCouponsPayload(account=None, errors=errors),
        )

    @strawberry.mutation(description="Chamber staff: member ⇄ non-member; unused coupons are erased and refunded per lot.")
    async def set_membership(self, info: strawberry.Info[Context], input: SetMembershipInput) -> SetMembershipPayload:
        return await run_mutation(
            info, lambda: coupons.set_membership(info.context, input.registration_number, input.membership.value),
            ok=lambda done: SetMembershipPayload(registration=TradeRegistration.of(done[0]), refunds=[Refund.of(r) for r in done[1]], errors=[]),
            failed=lambda errors: SetMembershipPayload(registration=None, refunds=[], errors=errors),
        )

    @strawberry.mutation(description="Chamber staff: 退会 — unused coupons refunded per lot, validity ends, IDs can no longer log in.")
    async def withdraw_trade_registration(self, info: strawberry.Info[Context], input: WithdrawTradeRegistrationInput) -> WithdrawTradeRegistrationPayload:
        return await run_mutation(
            info, lambda: coupons.withdraw_registration(info.context, input.registration_number, input.reason),
            ok=lambda done: WithdrawTradeRegistrationPayload(registration=TradeRegistration.of(done[0]), refunds=[Refund.of(r) for r in done[1]], errors=[]),
            failed=lambda errors: WithdrawTradeRegistrationPayload(registration=None, refunds=[], errors=errors),
        )

    @strawberry.mutation(description="Chamber staff: record that a refund was paid out.")
    async def mark_refund_paid(self, info: strawberry.Info[Context], input: MarkRefundPaidInput) -> MarkRefundPaidPayload:
        decoded = from_global_id(input.refund_id)
        refund_pk = decoded[1] if decoded and decoded[0] == "Refund" else -1
        return await run_mutation(
            info, lambda: coupons.mark_refund_paid(info.context, refund_pk),
            ok=lambda refund: MarkRefundPaidPayload(refund=Refund.of(refund), errors=[]),
            failed=lambda errors: MarkRefundPaidPayload(refund=None, errors=errors),
        )


# --------------------------------------------------------------------------- purchases

from resolvers.coupons import purchases  # noqa: E402
from schema.fees import PurchaseMethod  # noqa: E402


@strawberry.enum(description="AWAITING_PAYMENT 購入手続中 · ISSUED 発行済 · CANCELLED 取消.")
class PurchaseStatus(Enum):
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    ISSUED = "ISSUED"
    CANCELLED = "CANCELLED"


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
    _pk: strawberry.Private[int]
    _buyer_id: strawberry.Private[int]

    @classmethod
    def of(cls, row: models.CouponPurchase) -> CouponPurchase:
        return cls(
            id=to_global_id("CouponPurchase", row.id), order_number=row.order_number, status=PurchaseStatus(row.status),
            method=PurchaseMethod(row.method), membership=Membership(row.membership), coupons=row.coupons,
            amount=row.amount, ordered_at=row.ordered_at, expires_at=row.expires_at, paid_at=row.paid_at,
            deposited_amount=row.deposited_amount, refund_due=row.refund_due, cancel_reason=row.cancel_reason,
            _pk=row.id, _buyer_id=row.buyer_id,
        )

    @strawberry.field(description="振込依頼書 (PDF), for bank-transfer orders; same session and permissions as the order.")
    def transfer_request_pdf_url(self, info: strawberry.Info[Context]) -> str | None:
        if self.method != PurchaseMethod.BANK_TRANSFER:
            return None
        return f"{info.context.services.settings.public_url}/documents/purchases/{self.id}/transfer-request.pdf"

    @strawberry.field(description="Card orders: the payment gateway's hosted page while its session is open (5 minutes).")
    async def payment_url(self, info: strawberry.Info[Context]) -> str | None:
        if self.method != PurchaseMethod.CARD or self.status != PurchaseStatus.AWAITING_PAYMENT:
            return None
        payment = await payments.payment_of_purchase(info.context.services, self._pk)
        open_ = payment is not None and payment.status == "OPEN" and info.context.clock.now() <= payment.expires_at
        return payment.payment_url if open_ else None

    @strawberry.field(description="Card orders once paid: 利用明細 (PDF) — only for the account that paid.")
    async def card_statement_pdf_url(self, info: strawberry.Info[Context]) -> str | None:
        if self.method != PurchaseMethod.CARD or self.status != PurchaseStatus.ISSUED:
            return None
        payment = await payments.payment_of_purchase(info.context.services, self._pk)
        viewer = await identity.viewer(info.context)
        if payment is None or viewer is None or payment.payer_id != viewer.account.id:
            return None
        return f"{info.context.services.settings.public_url}/documents/purchases/{self.id}/card-statement.pdf"

    @strawberry.field
    async def lines(self, info: strawberry.Info[Context]) -> list[CouponPurchaseLine]:
        rows = await coupons.purchase_lines(info.context, self._pk)
        return [CouponPurchaseLine(product_code=r.product_code, quantity=r.quantity, unit_price=r.unit_price,
                                   coupons=r.coupons, amount=r.amount) for r in rows]

    @strawberry.field
    async def virtual_account(self, info: strawberry.Info[Context]) -> VirtualAccount | None:
        row = await coupons.virtual_account(info.context, self._pk)
        if row is None:
            return None
        return VirtualAccount(bank_code=row.bank_code, bank_name=row.bank_name, branch_code=row.branch_code,
                              branch_name=row.branch_name, account_number=row.account_number, holder=row.holder,
                              valid_until=row.valid_until)

    @strawberry.field
    async def buyer(self, info: strawberry.Info[Context]) -> Account:
        return Account.of(await identity.account_by_id(info.context, self._buyer_id))


async def _purchase_node(info: strawberry.Info[Context], pk: int) -> CouponPurchase | None:
    row = await coupons.visible_purchase(info.context, pk)
    return CouponPurchase.of(row) if row else None


NODE_TYPES["CouponPurchase"] = _purchase_node


@strawberry.type
class CouponPurchaseEdge:
    cursor: str
    node: CouponPurchase


@strawberry.type
class CouponPurchaseConnection:
    edges: list[CouponPurchaseEdge]
    page_info: PageInfo
    total_count: int


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


@strawberry.type
class PurchasesMutation:
    @strawberry.mutation(description="Signer or sub-ID: order coupons (one order in progress per registration).")
    async def start_coupon_purchase(self, info: strawberry.Info[Context], input: StartCouponPurchaseInput) -> StartCouponPurchasePayload:
        async def call():
            at_most(input.lines, MAX_LIST_ITEMS, ["input", "lines"], "購入内容")
            lines = [purchases.LineInput(line.product_code, line.quantity) for line in input.lines]
            return await purchases.start_coupon_purchase(info.context, lines, input.method.value, input.notify_email,
                                                         input.idempotency_key)
        return await run_mutation(
            info, call,
            ok=lambda row: StartCouponPurchasePayload(purchase=CouponPurchase.of(row), errors=[]),
            failed=lambda errors: StartCouponPurchasePayload(purchase=None, errors=errors),
        )

    @strawberry.mutation(description="The buyer cancels its pending order.")
    async def cancel_coupon_purchase(self, info: strawberry.Info[Context], input: CancelCouponPurchaseInput) -> CancelCouponPurchasePayload:
        return await run_mutation(
            info, lambda: purchases.cancel_coupon_purchase(info.context, _purchase_pk(input.purchase_id)),
            ok=lambda row: CancelCouponPurchasePayload(purchase=CouponPurchase.of(row), errors=[]),
            failed=lambda errors: CancelCouponPurchasePayload(purchase=None, errors=errors),
        )

    @strawberry.mutation(description="Chamber staff: record deposits to this chamber's orders (all or none); matching happens in reconciliation.")
    async def record_bank_deposits(self, info: strawberry.Info[Context], input: RecordBankDepositsInput) -> RecordBankDepositsPayload:
        async def call():
            at_most(input.deposits, MAX_LIST_ITEMS, ["input", "deposits"], "入金")
            deposits = [purchases.DepositInput(d.account_number.strip(), d.amount, d.deposited_on, d.payer_name, d.deposit_id)
                        for d in input.deposits]
            return await purchases.record_bank_deposits(info.context, deposits)
        return await run_mutation(
            info, call,
            ok=lambda done: RecordBankDepositsPayload(matched=[CouponPurchase.of(r) for r in done.orders],
                                                      already_recorded=done.already_recorded, errors=[]),
            failed=lambda errors: RecordBankDepositsPayload(matched=[], already_recorded=[], errors=errors),
        )

    @strawberry.mutation(description="Chamber staff: match this order's deposits now (same-day issue).")
    async def check_purchase_payment(self, info: strawberry.Info[Context], input: CheckPurchasePaymentInput) -> CheckPurchasePaymentPayload:
        return await run_mutation(
            info, lambda: purchases.check_purchase_payment(info.context, _purchase_pk(input.purchase_id)),
            ok=lambda row: CheckPurchasePaymentPayload(purchase=CouponPurchase.of(row), errors=[]),
            failed=lambda errors: CheckPurchasePaymentPayload(purchase=None, errors=errors),
        )
