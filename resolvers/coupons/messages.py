"""Words of coupons a user or chamber staff reads: refund and cancellation reasons, ledger
notes, the mails to a buyer, and field labels. Templates take named ``{placeholders}``."""

from __future__ import annotations

from typing import Final

from resolvers.coupons.names import DepositOutcome

# refunds.reason and the reasons written on what a change ends
MEMBERSHIP_CHANGE_REFUND: Final = "会員区分の変更に伴う未使用クーポンの返金 ({membership})"
WITHDRAWAL_REFUND: Final = "退会に伴う未使用クーポンの返金"
WITHDRAWAL_REFUND_WITH_REASON: Final = "退会に伴う未使用クーポンの返金 ({reason})"
WITHDRAWAL_WITHDRAWS_APPLICATION: Final = "退会による取下げ"
WITHDRAWAL_CANCELS_PURCHASE: Final = "退会による取消"

# field labels (the {label} of an error message)
REGISTRATION_NUMBER: Final = "貿易登録番号"
APPLICANT_REGISTRATION_NUMBER: Final = "貿易登録番号(申請者)"
REASON: Final = "理由"
COUPONS: Final = "枚数"
PURCHASE_LINES: Final = "購入内容"
PRODUCT_REPEATED: Final = "商品(重複)"
QUANTITY: Final = "数量"
IDEMPOTENCY_KEY: Final = "idempotencyKey"
DEPOSITS: Final = "入金"
ACCOUNT_NUMBER: Final = "口座番号(7桁)"
AMOUNT: Final = "金額"
PAYER_NAME: Final = "振込依頼人名"
DEPOSIT_ID: Final = "入金ID(照会番号)"
DEPOSIT_ID_REPEATED: Final = "入金ID(照会番号)が{first}件目と重複"
DEPOSIT_ID_TAKEN: Final = "入金ID(照会番号)(別の入金として記録済み)"

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

ORDER_SUBJECT: Final = "【貿易関係証明発給システム】クーポン購入のお知らせ（お振込のご案内）"
ORDER_LINE: Final = "  {name} {price:,}円 × {quantity}"
ORDER_BODY: Final = (
    "{company} 様\n\nクーポンのご注文を承りました。下記口座へお振込みください。\n\n"
    "注文番号: {order_number}\n購入内容:\n{lines}\nお振込金額: {amount:,}円\n\n"
    "振込先銀行: {bank_name} ({bank_code})\n支店: {branch_name} ({branch_code})\n"
    "口座種別: 普通\n口座番号: {account_number}\n名義: {holder}\n"
    "振込口座有効期限: {valid_until:%Y年%m月%d日}\n\n"
    "※振込手数料はご購入者の負担となります。入金額が購入額と異なる場合の返金は、振込手数料等の諸経費を除いた金額となります。\n"
)

ISSUED_SUBJECT: Final = "【貿易関係証明発給システム】クーポン発行のお知らせ"
# rendered by the database (reconciliation._render): plain {placeholders} only
ISSUED_BY_TRANSFER_BODY: Final = "注文番号 {order_number} のご入金を確認し、クーポン {coupons} 枚を発行しました。\n"
ISSUED_BY_CARD_BODY: Final = ("注文番号 {order_number} のクレジットカード決済 ({amount:,}円, 決済番号 "
                              "{payment_number}) を確認し、クーポン {coupons} 枚を発行しました。\n")
