"""Fees as the API shows them: one rules snapshot per schedule, answered by rules/fees.py.

A schedule is the same for everyone who asks about the same Tokyo date under the same
rules version, so it is kept per (rules version, date) and every answer in it per
question (membership, kind): the first request asks the rules, the next ones read the
answer. A rules reload changes the version, which empties the cache.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field

from resolvers.core.context import Context
from resolvers.identity.names import Membership, RegistrationKind
from rules import fees
from rules.policy import PolicySet, RowRef


@dataclass(frozen=True)
class FeeScheduleView:
    """The schedule in force on a Tokyo date, from one rules version for the whole query.

    Each answer is asked of the rules once and then kept (the rules answer the same
    question the same way within one version)."""

    on: dt.date
    policy: PolicySet
    _application_fees: dict[str, fees.Amount] = field(default_factory=dict, repr=False, compare=False)
    _registration_fees: dict[tuple[str, str], fees.Amount] = field(default_factory=dict, repr=False, compare=False)
    _coupon_products: dict[str, tuple[fees.CouponProduct, ...]] = field(default_factory=dict, repr=False, compare=False)
    _tax: list[RowRef] = field(default_factory=list, repr=False, compare=False)

    @property
    def rules_version(self) -> str:
        return self.policy.version

    def application_fee(self, membership: Membership) -> fees.Amount:
        hit = self._application_fees.get(membership)
        if hit is None:
            hit = self._application_fees[membership] = fees.application_fee(self.policy, self.on, membership)
        return hit

    def registration_fee(self, kind: RegistrationKind, membership: Membership) -> fees.Amount:
        hit = self._registration_fees.get((kind, membership))
        if hit is None:
            hit = self._registration_fees[kind, membership] = fees.registration_fee(self.policy, self.on, kind, membership)
        return hit

    def coupon_products(self, membership: Membership) -> tuple[fees.CouponProduct, ...]:
        hit = self._coupon_products.get(membership)
        if hit is None:
            hit = self._coupon_products[membership] = tuple(fees.coupon_products(self.policy, self.on, membership))
        return hit

    def tax_rule(self) -> RowRef:
        if not self._tax:
            self._tax.append(fees.tax_rule(self.policy, self.on))
        return self._tax[0]


class ScheduleCache:
    """Schedules of one rules version by date; another version starts afresh. Dates are
    chosen by clients, so at most ``limit`` are kept (then the cache starts over)."""

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._policy: PolicySet | None = None
        self._views: dict[dt.date, FeeScheduleView] = {}

    def get(self, policy: PolicySet, on: dt.date) -> FeeScheduleView:
        hit = self._views.get(on)
        if hit is not None and hit.policy is policy:
            return hit
        with self._lock:
            if self._policy is not policy:  # a reload (or another server's rules): never mix versions
                self._policy, self._views = policy, {}
            elif len(self._views) >= self.limit:
                self._views = {}
            return self._views.setdefault(on, FeeScheduleView(on=on, policy=policy))

    def __len__(self) -> int:
        return len(self._views)

    def clear(self) -> None:
        with self._lock:
            self._policy, self._views = None, {}


SCHEDULES = ScheduleCache()


def fee_schedule(ctx: Context, on: dt.date | None) -> FeeScheduleView:
    """``on`` defaults to today in Asia/Tokyo, asked of the clock now."""
    return SCHEDULES.get(ctx.services.rules.current, on if on is not None else ctx.clock.today())
