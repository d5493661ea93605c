"""Words of card payments a user (or chamber staff) reads: why a payment closed, the refund
reason, what the gateway's page shows the charge is for, and field labels."""

from __future__ import annotations

from typing import Final

from resolvers.core.messages import Words

EXPIRED: Final = "カード決済の有効期限切れ"
# a charge we cannot apply is owed back (refunds.reason)
CHARGE_REFUND: Final = "カード決済の取消・返金 (決済番号 {payment_number}, charge {charge_id})"

# the description the hosted payment page shows
APPLICATION_FEES: Final = "貿易関係証明発給システム {count}申請分手数料"

# field labels (the {label} of an error message)
APPLICATIONS: Final = Words("申請", "Applications")
CART: Final = Words("カート", "Cart")
CART_TO_PAY: Final = Words("カート(決済する申請)", "Cart (the applications to pay)")
IDEMPOTENCY_KEY: Final = Words("idempotencyKey(1〜128文字)", "idempotencyKey (1 to 128 characters)")
MONTH: Final = Words("年月(YYYY-MM)", "Month (YYYY-MM)")

# states (INVALID_STATE's {state})
CART_CHANGED: Final = Words("カートの内容が変わりました(別の決済または変更が先に行われました)",
                            "the cart changed (another payment or a change came first)")
