"""Coupons (API.md "Coupons"): the account, its history, and the chamber's operations.
Purchases (startCouponPurchase …) arrive with the bank-transfer and card work."""

from __future__ import annotations

import base64
import datetime as dt
from enum import Enum
from typing import Optional

import strawberry

from persistence import models
from resolvers import coupons, identity
from resolvers.context import Context
from schema.errors import UserError, run_mutation
from schema.fees import Membership
from schema.identity import Account, Node, TradeRegistration, from_global_id, to_global_id
from schema.registrations import PageInfo


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
    balance_after: Optional[int]
    note: Optional[str]
    receipt_number: Optional[str]
    _actor_id: strawberry.Private[Optional[int]]

    @strawberry.field
    async def actor(self, info: strawberry.Info[Context]) -> Optional[Account]:
        row = await identity.account_by_id(info.context, self._actor_id) if self._actor_id else None
        return Account.of(row) if row else None


@strawberry.type
class CouponEntryEdge:
    cursor: str
    node: CouponEntry


@strawberry.type
class CouponEntryConnection:
    edges: list[CouponEntryEdge]
    page_info: PageInfo
    total_count: int


def _cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(f"CouponEntry:{pk}".encode()).decode()


def _after(cursor: Optional[str]) -> Optional[int]:
    if not cursor:
        return None
    try:
        kind, _, pk = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        return int(pk) if kind == "CouponEntry" else None
    except Exception:
        return None


@strawberry.type(description="The coupons of an applicant registration, shared by its signers and sub-IDs.")
class CouponAccount:
    registration: TradeRegistration
    balance: int = strawberry.field(description="クーポン残数: usable now.")
    pending: int = strawberry.field(description="クーポン購入手続中: bought, awaiting payment.")
    _registration_id: strawberry.Private[int]

    @classmethod
    def of(cls, view: coupons.AccountView) -> "CouponAccount":
        return cls(registration=TradeRegistration.of(view.registration), balance=view.balance, pending=view.pending,
                   _registration_id=view.registration.id)

    @strawberry.field(description="Newest first.")
    async def history(self, info: strawberry.Info[Context], first: int = 20, after: Optional[str] = None) -> CouponEntryConnection:
        rows, total, more = await coupons.history(info.context, self._registration_id, first, _after(after))
        edges = [CouponEntryEdge(cursor=_cursor(r.id), node=CouponEntry(
            kind=CouponEntryKind(r.kind), at=r.at, confirmed=r.confirmed, coupons=r.coupons, balance_after=r.balance_after,
            note=r.note, receipt_number=r.receipt_number, _actor_id=r.actor_id)) for r in rows]
        return CouponEntryConnection(edges=edges, total_count=total,
                                     page_info=PageInfo(has_next_page=more, end_cursor=edges[-1].cursor if edges else None))


@strawberry.type(description="Money the chamber owes back (membership change, withdrawal, over/under payment).")
class Refund(Node):
    amount: int
    reason: str
    created_at: dt.datetime
    paid_at: Optional[dt.datetime]
    _registration_id: strawberry.Private[int]

    @classmethod
    def of(cls, row: models.Refund) -> "Refund":
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
    account: Optional[CouponAccount]
    errors: list[UserError]


@strawberry.input
class SetMembershipInput:
    registration_number: str
    membership: Membership


@strawberry.type
class SetMembershipPayload:
    registration: Optional[TradeRegistration]
    refunds: list[Refund]
    errors: list[UserError]


@strawberry.input
class MarkRefundPaidInput:
    refund_id: strawberry.ID


@strawberry.type
class MarkRefundPaidPayload:
    refund: Optional[Refund]
    errors: list[UserError]


@strawberry.type
class CouponsQuery:
    @strawberry.field(description="The viewer's applicant registration; chamber staff name one.")
    async def coupon_account(self, info: strawberry.Info[Context], registration_number: Optional[str] = None) -> CouponAccount:
        return CouponAccount.of(await coupons.coupon_account(info.context, registration_number))

    @strawberry.field(description="Chamber staff: refunds owed by the chamber; `paid` filters.")
    async def refunds(self, info: strawberry.Info[Context], paid: Optional[bool] = None) -> list[Refund]:
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

    @strawberry.mutation(description="Chamber staff: record that a refund was paid out.")
    async def mark_refund_paid(self, info: strawberry.Info[Context], input: MarkRefundPaidInput) -> MarkRefundPaidPayload:
        decoded = from_global_id(input.refund_id)
        refund_pk = decoded[1] if decoded and decoded[0] == "Refund" else -1
        return await run_mutation(
            info, lambda: coupons.mark_refund_paid(info.context, refund_pk),
            ok=lambda refund: MarkRefundPaidPayload(refund=Refund.of(refund), errors=[]),
            failed=lambda errors: MarkRefundPaidPayload(refund=None, errors=errors),
        )
