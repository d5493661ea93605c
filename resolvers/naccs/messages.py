"""Words of the NACCS support system a user reads: mails, 新着情報 notices, reissue
reasons and field labels. Templates take named ``{placeholders}``; dates come formatted."""

from __future__ import annotations

from typing import Final

from resolvers.core import messages as core_words
from resolvers.core.messages import Words
from resolvers.naccs.names import NaccsApplicationKind, NaccsApplicationState, ReissueReason

DATE: Final = "%Y年%m月%d日"  # dates in mails

REISSUE_REASONS: Final[dict[ReissueReason, str]] = {
    ReissueReason.EXPIRED: "有効期限切れ",
    ReissueReason.TERMINAL_REPLACEMENT: "端末の入替",
    ReissueReason.OTHER: "その他",
}

# what an application is, in mails and notices; and on the application form (PDF)
KIND_NAMES: Final[dict[NaccsApplicationKind, str]] = {
    NaccsApplicationKind.USER_CODE_ADDITION: "利用申込(利用者コード追加)",
    NaccsApplicationKind.CERTIFICATE_REISSUE: "電子証明書の再発行申込",
}
FORM_KIND_NAMES: Final[dict[NaccsApplicationKind, str]] = {
    NaccsApplicationKind.USER_CODE_ADDITION: "利用申込(変更申込) — 利用者コードの追加",
    NaccsApplicationKind.CERTIFICATE_REISSUE: "電子証明書の再発行申込",
}

# --------------------------------------------------------------------------- mails

# Subjects and bodies are policy: rules/mail_templates.yaml (naccs.<kind>.received, naccs.clarification,
# naccs.approved, naccs.reissued); the code fills in {what} (KIND_NAMES) and the dates (DATE).

# --------------------------------------------------------------------------- notices (新着情報)

NOTICE_RECEIVED: Final = "{what}を受け付けました (受付番号 {receipt_number})"
NOTICE_UPDATED: Final = "申込内容を修正しました (受付番号 {receipt_number})"
NOTICE_WITHDRAWN: Final = "申込を取り下げました (受付番号 {receipt_number})"
NOTICE_CLARIFICATION: Final = "申込内容の確認依頼があります (受付番号 {receipt_number})"
NOTICE_APPROVED: Final = "利用者コードを追加しました (受付番号 {receipt_number}, 利用開始日 {start_date})"
NOTICE_REISSUED: Final = "電子証明書を再発行しました ({terminals}; 受付番号 {receipt_number})"

# --------------------------------------------------------------------------- field labels

WITH_HINT: Final = Words("{label}({hint})", "{label} ({hint})")  # a label and what the value must look like
FAMILY_NAME: Final = Words("氏名(姓)", "Family name")
GIVEN_NAME: Final = Words("氏名(名)", "Given name")
FAMILY_NAME_KANA: Final = Words("フリガナ(姓)", "Family name in katakana")
GIVEN_NAME_KANA: Final = Words("フリガナ(名)", "Given name in katakana")
DEPARTMENT: Final = Words("部署", "Department")
TITLE: Final = Words("役職", "Title")
PHONE: Final = core_words.PHONE
FAX: Final = Words("FAX番号", "Fax number")
EMAIL: Final = core_words.EMAIL
FULL_WIDTH: Final = Words("全角", "full-width characters")
FULL_WIDTH_KATAKANA: Final = Words("全角カタカナ", "full-width katakana")
DIGITS_NO_HYPHEN: Final = Words("半角数字、ハイフンなし", "half-width digits, no hyphens")
EMAIL_CONFIRMATION_MISMATCH: Final = Words("確認用E-mail(E-mailと一致しません。同じアドレスを入力してください)",
                                          "E-mail confirmation (the two e-mail addresses differ; enter the same address twice)")

USER_CODES: Final = Words("利用者コード", "User codes")
USER_CODES_NOT_FOR_THIS: Final = Words("利用者コード(この申込には不要)", "User codes (not needed for this application)")
INDUSTRIES: Final = Words("業種", "Industries")
INDUSTRY_NOT_LISTED: Final = Words("業種(規定の一覧から)", "Industries (from the listed ones)")
PROCESSING_METHOD: Final = Words("処理方式(netNACCS / NACCS)", "Processing method (netNACCS / NACCS)")
SYSTEM_CATEGORY: Final = Words("システム設定区分", "System setting category")
IDENTIFICATION_COUNT: Final = Words("識別番号数(1〜20)", "Number of identification numbers (1 to 20)")
STATISTICS: Final = Words("管理統計資料(0〜100)", "Management statistics (0 to 100)")
FREE_STATISTICS: Final = Words("管理統計資料(無料: 通関業・自社通関・輸出入者・船会社・船舶代理店のみ)",
                              "Management statistics (free only for customs brokers, own-customs filers, importers/exporters, shipping companies and agents)")
APPLICATION_REASON: Final = Words("申込理由", "Reason for the application")
CLARIFICATION: Final = Words("確認事項", "Points to clarify")
REISSUE_REASON: Final = Words("再発行理由", "Reason for the reissue")
TERMINALS: Final = Words("論理端末", "Logical terminals")
TERMINAL_TWICE: Final = Words("論理端末(重複)", "Logical terminals (listed twice)")

# --------------------------------------------------------------------------- states (INVALID_STATE's {state})

STATE_NAMES: Final[dict[str, Words]] = {  # by NaccsApplicationState
    NaccsApplicationState.SUBMITTED: Words("受付", "submitted"),
    NaccsApplicationState.CLARIFICATION_REQUESTED: Words("確認依頼中", "clarification requested"),
    NaccsApplicationState.APPROVED: Words("確認完了", "approved"),
    NaccsApplicationState.COMPLETED: Words("完了", "completed"),
    NaccsApplicationState.WITHDRAWN: Words("取下げ", "withdrawn"),
}
NOT_A_USER_CODE_APPLICATION: Final = Words("電子証明書の再発行申込(審査するのは利用者コード追加の申込のみ)",
                                           "a certificate reissue (only user-code applications are reviewed)")
