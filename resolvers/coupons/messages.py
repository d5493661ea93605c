"""Words of coupons a user or chamber staff reads: refund and cancellation reasons, ledger
notes, the mails to a buyer, and field labels. Templates take named ``{placeholders}``."""

from __future__ import annotations

from typing import Final

from resolvers.core.messages import Words
from resolvers.coupons.names import DepositOutcome, PurchaseStatus

# refunds.reason and the reasons written on what a change ends
MEMBERSHIP_CHANGE_REFUND: Final = "会員区分の変更に伴う未使用クーポンの返金 ({membership})"
WITHDRAWAL_REFUND: Final = "退会に伴う未使用クーポンの返金"
WITHDRAWAL_REFUND_WITH_REASON: Final = "退会に伴う未使用クーポンの返金 ({reason})"
WITHDRAWAL_WITHDRAWS_APPLICATION: Final = "退会による取下げ"
WITHDRAWAL_CANCELS_PURCHASE: Final = "退会による取消"
MEMBERSHIP_CHANGE_CANCELS_PURCHASE: Final = "会員区分の変更による取消"

# field labels (the {label} of an error message)
REGISTRATION_NUMBER: Final = Words("貿易登録番号", "Trade registration number")
APPLICANT_REGISTRATION_NUMBER: Final = Words("貿易登録番号(申請者)", "Trade registration number (of an applicant)")
REASON: Final = Words("理由", "Reason")
COUPONS: Final = Words("枚数", "Coupons")
ADJUSTMENT: Final = Words("枚数(0以外、±{limit}以内)", "Coupons (not 0, at most ±{limit})")
PURCHASE_LINES: Final = Words("購入内容", "Order lines")
PRODUCT_REPEATED: Final = Words("商品(重複)", "Product (listed twice; one line per product)")
QUANTITY: Final = Words("数量", "Quantity")
IDEMPOTENCY_KEY: Final = Words("idempotencyKey(1〜128文字)", "idempotencyKey (1 to 128 characters)")
DEPOSITS: Final = Words("入金", "Deposits")
ACCOUNT_NUMBER: Final = Words("口座番号(7桁)", "Account number (7 digits)")
AMOUNT: Final = Words("金額", "Amount")
PAYER_NAME: Final = Words("振込依頼人名", "Payer name")
DEPOSIT_ID: Final = Words("入金ID(照会番号)", "Deposit ID (reference number)")
DEPOSIT_ID_REPEATED: Final = Words("入金ID(照会番号)が{first}件目と重複",
                                  "Deposit ID (reference number), the same as in deposit {first}")
DEPOSIT_ID_TAKEN: Final = Words("入金ID(照会番号)(別の入金として記録済み)",
                               "Deposit ID (reference number), already recorded for another deposit")

# states (INVALID_STATE's {state})
PURCHASE_STATE_NAMES: Final[dict[str, Words]] = {  # by PurchaseStatus
    PurchaseStatus.AWAITING_PAYMENT: Words("購入手続中", "awaiting payment"),
    PurchaseStatus.ISSUED: Words("発行済", "issued"),
    PurchaseStatus.CANCELLED: Words("取消", "cancelled"),
}
REGISTRATION_WITHDRAWN: Final = Words("貿易登録が退会済み", "the trade registration has withdrawn")
REFUND_PAID: Final = Words("返金済み", "the refund is already paid")
MEMBERSHIP_JUST_CHANGED: Final = Words("会員区分を変更した直後", "the membership was changed at this very moment; try again")
MEMBERSHIP_CHANGED: Final = Words("会員区分が変更されました。料金を確認し直してください",
                                  "the membership changed; read the prices again")

# --------------------------------------------------------------------------- purchases

# why an order was cancelled (coupon_purchases.cancel_reason)
CANCELLED_BY_BUYER: Final = "購入者による取消"
PAYMENT_WINDOW_PASSED: Final = "入金期限切れ"
SHORT_PAYMENT: Final = "入金額不足"

# refunds.reason of a deposit owed back, by what became of it (reconciliation: rendered by the database)
REFUND_REASONS: Final[dict[DepositOutcome, str]] = {
    DepositOutcome.REFUNDED: "使用済み・期限切れ口座への入金の返金",
    DepositOutcome.SHORT: "入金額不足のため取消・返金",
    DepositOutcome.ISSUED_OVER: "入金額超過分の返金",
}
REFUND_REASON: Final = "{reason} (注文番号 {order_number})"

# the note of a ledger entry that issues an order's coupons
ORDER_NOTE: Final = "注文番号 {order_number}"

# what the card gateway's hosted page shows the charge is for
CARD_DESCRIPTION: Final = "貿易関係証明発給システム クーポン購入 ({coupons}枚)"

# --------------------------------------------------------------------------- mails (to the buyer)

# The mails' subjects and bodies are policy: rules/mail_templates.yaml (coupon.order, coupon.order_line,
# coupon.issued_by_transfer — rendered by the database, reconciliation._render — and coupon.issued_by_card).
MAIL_DATE: Final = "%Y年%m月%d日"  # a date a mail shows ({valid_until})
