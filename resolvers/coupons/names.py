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


class CouponMail(StrEnum):
    """The kinds of mail to a coupon buyer (mail_outbox.kind)."""

    ORDER = "coupon.order"  # クーポン購入のお知らせ (お振込のご案内)
    ISSUED = "coupon.issued"  # クーポン発行のお知らせ


class DepositOutcome(StrEnum):
    """What became of a bank deposit (bank_deposits.outcome; resolvers/coupons/reconciliation.py)."""

    ISSUED = "issued"  # 入金額一致: coupons issued
    ISSUED_OVER = "issued_over"  # 入金額超過: coupons issued, the excess less costs owed back
    SHORT = "short"  # 入金額不足: the order cancelled, the deposit less costs owed back
    REFUNDED = "refunded"  # 使用済み・期限切れ口座への入金: owed back whole, less costs
