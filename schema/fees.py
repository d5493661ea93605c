"""Fees (public): the fee schedule in force on a date, each amount able to explain itself."""

from __future__ import annotations

import datetime as dt

import strawberry

from resolvers.fees import schedule as fee_resolvers
from rules import fees
from rules.policy import RowRef

# re-exported: other schema modules import these from here (the one definition is schema/enums.py)
from schema.enums import Membership as Membership
from schema.enums import PurchaseMethod as PurchaseMethod
from schema.enums import RegistrationKind as RegistrationKind


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
    source: strawberry.Private[RowRef]
    rules_version: strawberry.Private[str]

    @strawberry.field
    def rule(self) -> RuleReference:
        return RuleReference.of(self.source, self.rules_version)

    @classmethod
    def of(cls, product: fees.CouponProduct, rules_version: str) -> CouponProduct:
        return cls(code=product.code, name=product.name, coupons=product.coupons, price=product.price,
                   face_value=product.face_value, tax=product.tax, source=product.rule, rules_version=rules_version)


@strawberry.type(description="The fees in force on one Asia/Tokyo date, from one rules version.")
class FeeSchedule:
    """Plain values and synchronous fields over a cached schedule (resolvers/fees/schedule.py):
    after the first request for a date, answering is reading dictionaries."""

    on: dt.date
    rules_version: str = strawberry.field(description="Hash of the rule files' content that produced this schedule.")
    view: strawberry.Private[fee_resolvers.FeeScheduleView]

    @strawberry.field(description="Fee of one application (tax included).")
    def application_fee(self, membership: Membership) -> int:
        value = self.view.application_fee(membership).value
        if value is None:  # validation requires an amount on every application fee row
            raise LookupError(f"no application fee for {membership} on {self.on}")
        return value

    @strawberry.field(description="Why applicationFee is what it is.")
    def application_fee_rule(self, membership: Membership) -> RuleReference:
        return RuleReference.of(self.view.application_fee(membership).rule, self.rules_version)

    @strawberry.field(description="Only what a registration with that status may buy.")
    def coupon_products(self, membership: Membership) -> list[CouponProduct]:
        return [CouponProduct.of(p, self.rules_version) for p in self.view.coupon_products(membership)]

    @strawberry.field(description="Trade registration fee (tax included); null: not offered.")
    def registration_fee(self, kind: RegistrationKind, membership: Membership) -> int | None:
        return self.view.registration_fee(kind, membership).value

    @strawberry.field(description="Why registrationFee is what it is.")
    def registration_fee_rule(self, kind: RegistrationKind, membership: Membership) -> RuleReference:
        return RuleReference.of(self.view.registration_fee(kind, membership).rule, self.rules_version)

    @strawberry.field(description="Consumption tax rate in percent; every price includes it.")
    def tax_rate_percent(self) -> int:
        return self.view.tax_rule().integer("rate_percent")

    @strawberry.field
    def tax_rule(self) -> RuleReference:
        return RuleReference.of(self.view.tax_rule(), self.rules_version)


@strawberry.type
class FeesQuery:
    @strawberry.field(description="The fee schedule in force on `on` (default: today, Asia/Tokyo).")
    def fee_schedule(self, info: strawberry.Info, on: dt.date | None = None) -> FeeSchedule:
        view = fee_resolvers.fee_schedule(info.context, on)
        return FeeSchedule(on=view.on, rules_version=view.rules_version, view=view)
