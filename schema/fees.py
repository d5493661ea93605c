"""Fees (public): the fee schedule in force on a date, each amount able to explain itself."""

from __future__ import annotations

import datetime as dt
from enum import Enum

import strawberry

from resolvers.fees import schedule as fee_resolvers
from rules.policy import RowRef


@strawberry.enum(description="会員 MEMBER / 非会員 NON_MEMBER: the status at a moment decides prices.")
class Membership(Enum):
    MEMBER = "MEMBER"  # 会員
    NON_MEMBER = "NON_MEMBER"  # 非会員


@strawberry.enum(description="申請者 APPLICANT / 代行業者 AGENT.")
class RegistrationKind(Enum):
    APPLICANT = "APPLICANT"  # 申請者
    AGENT = "AGENT"  # 代行業者


@strawberry.enum(description="銀行振込 BANK_TRANSFER / クレジットカード CARD.")
class PurchaseMethod(Enum):
    BANK_TRANSFER = "BANK_TRANSFER"  # 銀行振込
    CARD = "CARD"  # クレジットカード


@strawberry.type(description="The rule row that produced an amount: which file, version and row, and why.")
class RuleReference:
    file: str = strawberry.field(description="Rule file under the rules directory, e.g. application_fees.yaml.")
    table: str
    version: int = strawberry.field(description="1-based position of the version in the file.")
    row: int = strawberry.field(description="1-based position of the row within its version.")
    effective_from: dt.date
    effective_until: dt.date | None = strawberry.field(description="Last day in force; null when open-ended.")
    source: str | None = strawberry.field(description="Where the decision comes from (the seed or circular).")
    note: str | None
    rules_version: str

    @classmethod
    def of(cls, row: RowRef, rules_version: str) -> RuleReference:
        return cls(
            file=row.file, table=row.table, version=row.version, row=row.row,
            effective_from=row.effective_from, effective_until=row.effective_until,
            source=row.source, note=row.note, rules_version=rules_version,
        )


@strawberry.type(description="A coupon product on sale. Prices include consumption tax.")
class CouponProduct:
    code: str = strawberry.field(description="SINGLE (1 coupon) or PACK30 (30 coupons).")
    name: str
    coupons: int
    price: int
    face_value: int = strawberry.field(description="coupons × the single price (額面).")
    tax: int = strawberry.field(description="Consumption tax contained in the price.")
    rule: RuleReference


@strawberry.type(description="The fees in force on one Asia/Tokyo date, from one rules version.")
class FeeSchedule:
    view: strawberry.Private[fee_resolvers.FeeScheduleView]

    @strawberry.field
    def on(self) -> dt.date:
        return self.view.on

    @strawberry.field(description="Hash of the rule files' content that produced this schedule.")
    def rules_version(self) -> str:
        return self.view.rules_version

    @strawberry.field(description="Fee of one application (tax included).")
    def application_fee(self, membership: Membership) -> int:
        return self.view.application_fee(membership.value).value

    @strawberry.field(description="Why applicationFee is what it is.")
    def application_fee_rule(self, membership: Membership) -> RuleReference:
        return RuleReference.of(self.view.application_fee(membership.value).rule, self.view.rules_version)

    @strawberry.field(description="Only what a registration with that status may buy.")
    def coupon_products(self, membership: Membership) -> list[CouponProduct]:
        return [
            CouponProduct(
                code=p.code, name=p.name, coupons=p.coupons, price=p.price, face_value=p.face_value, tax=p.tax,
                rule=RuleReference.of(p.rule, self.view.rules_version),
            )
            for p in self.view.coupon_products(membership.value)
        ]

    @strawberry.field(description="Trade registration fee (tax included); null: not offered.")
    def registration_fee(self, kind: RegistrationKind, membership: Membership) -> int | None:
        return self.view.registration_fee(kind.value, membership.value).value

    @strawberry.field(description="Why registrationFee is what it is.")
    def registration_fee_rule(self, kind: RegistrationKind, membership: Membership) -> RuleReference:
        return RuleReference.of(self.view.registration_fee(kind.value, membership.value).rule, self.view.rules_version)

    @strawberry.field(description="Consumption tax rate in percent; every price includes it.")
    def tax_rate_percent(self) -> int:
        return self.view.tax_rule().values["rate_percent"]

    @strawberry.field
    def tax_rule(self) -> RuleReference:
        return RuleReference.of(self.view.tax_rule(), self.view.rules_version)


@strawberry.type
class FeesQuery:
    @strawberry.field(description="The fee schedule in force on `on` (default: today, Asia/Tokyo).")
    def fee_schedule(self, info: strawberry.Info, on: dt.date | None = None) -> FeeSchedule:
        return FeeSchedule(view=fee_resolvers.fee_schedule(info.context, on))
