"""Words of card payments a user (or chamber staff) reads: why a payment closed, the refund
reason, what the gateway's page shows the charge is for, and field labels."""

from __future__ import annotations

from typing import Final

DECLINED: Final = "カード決済が承認されませんでした"
EXPIRED: Final = "カード決済の有効期限切れ"
# a charge we cannot apply is owed back (refunds.reason)
CHARGE_REFUND: Final = "カード決済の取消・返金 (決済番号 {payment_number}, charge {charge_id})"

# the description the hosted payment page shows
APPLICATION_FEES: Final = "貿易関係証明発給システム {count}申請分手数料"

# field labels (the {label} of an error message)
APPLICATIONS: Final = "申請"
CART: Final = "カート"
CART_TO_PAY: Final = "カート(決済する申請)"
MONTH: Final = "年月(YYYY-MM)"
