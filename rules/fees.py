"""Fees: where every yen amount is decided. Values come from the rule files; this module
only asks the questions (through ``PolicySet.lookup``, i.e. durable_rules) and does the
arithmetic the files describe (tax part, refunds).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rules.policy import PolicySet, RowRef


@dataclass(frozen=True)
class Amount:
    """A yen amount (None: not offered) and the rule row that produced it."""

    value: int | None
    rule: RowRef


@dataclass(frozen=True)
class CouponProduct:
    code: str
    name: str
    coupons: int
    price: int
    face_value: int
    tax: int
    rule: RowRef


def application_fee(policy: PolicySet, on: dt.date, membership: str) -> Amount:
    """The fee of one application submitted on ``on`` (Tokyo date) by a registration
    with ``membership`` at that moment."""
    row = policy.lookup_one("application_fees", on, membership=membership)
    return Amount(row.integer("amount"), row)


def registration_fee(policy: PolicySet, on: dt.date, kind: str, membership: str) -> Amount:
    row = policy.lookup_one("registration_fees", on, kind=kind, membership=membership)
    return Amount(row.optional_integer("amount"), row)  # null: not offered


def tax_rule(policy: PolicySet, on: dt.date) -> RowRef:
    return policy.lookup_one("tax", on)


def tax_part(policy: PolicySet, on: dt.date, price: int) -> int:
    """The consumption tax contained in a tax-included ``price`` (rate and rounding from tax.yaml)."""
    rule = tax_rule(policy, on)
    rate = rule.integer("rate_percent")
    rounding = rule.text("rounding")
    numerator, denominator = price * rate, 100 + rate
    if rounding == "floor":
        return numerator // denominator
    if rounding == "ceil":
        return -(-numerator // denominator)
    return (2 * numerator + denominator) // (2 * denominator)  # half_up


def coupon_products(policy: PolicySet, on: dt.date, membership: str) -> list[CouponProduct]:
    """What a registration with ``membership`` may buy on ``on``, smallest first."""
    rows = policy.lookup("coupon_products", on, membership=membership)
    products = [
        CouponProduct(
            code=r.text("code"),
            name=r.text("name"),
            coupons=r.integer("coupons"),
            price=r.integer("price"),
            face_value=r.integer("face_value"),
            tax=tax_part(policy, on, r.integer("price")),
            rule=r,
        )
        for r in rows
    ]
    return sorted(products, key=lambda p: (p.coupons, p.code))


def coupon_product(policy: PolicySet, on: dt.date, membership: str, code: str) -> CouponProduct | None:
    return next((p for p in coupon_products(policy, on, membership) if p.code == code), None)


def pack_refund_deduction(policy: PolicySet, on: dt.date, product: str) -> Amount:
    row = policy.lookup_one("pack_refund_deductions", on, product=product)
    return Amount(row.integer("deduction"), row)


def lot_refund(policy: PolicySet, bought_on: dt.date, membership: str, product: str, unused: int) -> int:
    """Refund for ``unused`` coupons of a lot bought on ``bought_on`` (membership change or
    withdrawal): each coupon at the SINGLE price of the lot's own rules version; every
    multi-coupon pack that still has unused coupons also gives back its discount, each
    pack never below zero. A lot of one purchase line holds ``quantity`` packs of the
    product's ``coupons`` (coupon_products.yaml) and is used oldest coupon first, so only
    the first pack left can be partly used: ⌈unused / coupons⌉ packs remain
    (eco-coupon-purchase-2022: each 30-pack refund is reduced by 1件)."""
    if unused <= 0:
        return 0
    single = coupon_product(policy, bought_on, membership, "SINGLE")
    bought = coupon_product(policy, bought_on, membership, product)
    if single is None or bought is None:
        raise LookupError(f"no {product}/SINGLE product for {membership} on {bought_on}")
    if bought.coupons <= 1:
        return unused * single.price
    deduction = pack_refund_deduction(policy, bought_on, product).value or 0
    whole, partial = divmod(unused, bought.coupons)
    refund = whole * max(bought.coupons * single.price - deduction, 0)
    if partial:
        refund += max(partial * single.price - deduction, 0)
    return refund


def refund_transfer_cost(policy: PolicySet, on: dt.date, refund: int) -> Amount:
    row = policy.lookup_one("refund_transfer_costs", on, refund=max(refund, 0))
    return Amount(row.integer("cost"), row)


def refund_after_costs(policy: PolicySet, on: dt.date, refund: int) -> int:
    """What the chamber pays back of an over/under-payment, after transfer costs."""
    if refund <= 0:
        return 0
    return max(refund - (refund_transfer_cost(policy, on, refund).value or 0), 0)
