"""Words of coupon accounts a user or chamber staff reads: refund and cancellation
reasons, and field labels. Templates take named ``{placeholders}``."""

from __future__ import annotations

from typing import Final

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
