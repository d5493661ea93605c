"""Fees as the API shows them: one rules snapshot per schedule, answered by rules/fees.py."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from resolvers.core.context import Context
from rules import fees
from rules.policy import PolicySet, RowRef


@dataclass(frozen=True)
class FeeScheduleView:
    """The schedule in force on a Tokyo date, bound to one rules version for the whole query."""

    on: dt.date
    policy: PolicySet

    @property
    def rules_version(self) -> str:
        return self.policy.version

    def application_fee(self, membership: str) -> fees.Amount:
        return fees.application_fee(self.policy, self.on, membership)

    def registration_fee(self, kind: str, membership: str) -> fees.Amount:
        return fees.registration_fee(self.policy, self.on, kind, membership)

    def coupon_products(self, membership: str) -> list[fees.CouponProduct]:
        return fees.coupon_products(self.policy, self.on, membership)

    def tax_rule(self) -> RowRef:
        return fees.tax_rule(self.policy, self.on)


def fee_schedule(ctx: Context, on: dt.date | None) -> FeeScheduleView:
    """``on`` defaults to today in Asia/Tokyo, asked of the clock now."""
    return FeeScheduleView(on=on if on is not None else ctx.clock.today(), policy=ctx.services.rules.current)
