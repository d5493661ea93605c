"""The kinds and states of coupons: ledger entries and purchases (schema/enums.py shows them)."""

from __future__ import annotations

from enum import StrEnum


class CouponEntryKind(StrEnum):
    PURCHASE = "PURCHASE"  # 購入
    USE = "USE"  # 使用
    RETURN = "RETURN"  # 返却 (保留)
    CHAMBER_OPERATION = "CHAMBER_OPERATION"  # 商工会議所操作
    REFUND = "REFUND"  # 返金


class PurchaseStatus(StrEnum):
    """A coupon order (coupon_purchases.status)."""

    AWAITING_PAYMENT = "AWAITING_PAYMENT"  # 購入手続中
    ISSUED = "ISSUED"  # 発行済
    CANCELLED = "CANCELLED"  # 取消


class PurchaseMethod(StrEnum):
    BANK_TRANSFER = "BANK_TRANSFER"  # 銀行振込
    CARD = "CARD"  # クレジットカード
