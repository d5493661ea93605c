"""Words of the NACCS support system a user reads: mails, 新着情報 notices, reissue
reasons and field labels. Templates take named ``{placeholders}``; dates come formatted."""

from __future__ import annotations

from typing import Final

from resolvers.naccs.names import NaccsApplicationKind, ReissueReason

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

RECEIVED_SUBJECT: Final[dict[NaccsApplicationKind, str]] = {
    NaccsApplicationKind.USER_CODE_ADDITION: "【NACCS】利用申込を受け付けました(受付完了)",
    NaccsApplicationKind.CERTIFICATE_REISSUE: "【NACCS】電子証明書再発行申込(受付完了)",
}
RECEIVED_BODY: Final = "{office} {family_name} 様\n\n{what}を受け付けました。\n受付番号: {receipt_number}\n希望日: {desired}\n"

CLARIFICATION_SUBJECT: Final = "【NACCS】申込内容の確認のお願い"
CLARIFICATION_BODY: Final = "受付番号 {receipt_number} について確認事項があります。\n{message}\n修正または取下げをお願いします。\n"

APPROVED_SUBJECT: Final = "【NACCS】利用申込確認完了のお知らせ"
APPROVED_BODY: Final = ("受付番号 {receipt_number} の利用申込の確認が完了しました。\n利用開始日: {start_date}\n"
                        "ID通知(パスワード)は {viewable_until} まで閲覧できます。\n")

REISSUED_SUBJECT: Final = "【NACCS】電子証明書再発行完了のお知らせ"
REISSUED_BODY: Final = ("受付番号 {receipt_number} の電子証明書を再発行しました。\n対象端末: {terminals}\n"
                        "NACCS掲示板から新しい電子証明書をダウンロードしてください。\n")

# --------------------------------------------------------------------------- notices (新着情報)

NOTICE_RECEIVED: Final = "{what}を受け付けました (受付番号 {receipt_number})"
NOTICE_UPDATED: Final = "申込内容を修正しました (受付番号 {receipt_number})"
NOTICE_WITHDRAWN: Final = "申込を取り下げました (受付番号 {receipt_number})"
NOTICE_CLARIFICATION: Final = "申込内容の確認依頼があります (受付番号 {receipt_number})"
NOTICE_APPROVED: Final = "利用者コードを追加しました (受付番号 {receipt_number}, 利用開始日 {start_date})"
NOTICE_REISSUED: Final = "電子証明書を再発行しました ({terminals}; 受付番号 {receipt_number})"

# --------------------------------------------------------------------------- field labels

WITH_HINT: Final = "{label}({hint})"  # a label and what the value must look like
FAMILY_NAME: Final = "氏名(姓)"
GIVEN_NAME: Final = "氏名(名)"
FAMILY_NAME_KANA: Final = "フリガナ(姓)"
GIVEN_NAME_KANA: Final = "フリガナ(名)"
DEPARTMENT: Final = "部署"
TITLE: Final = "役職"
PHONE: Final = "電話番号"
FAX: Final = "FAX番号"
EMAIL: Final = "E-mail"
FULL_WIDTH: Final = "全角"
FULL_WIDTH_KATAKANA: Final = "全角カタカナ"
DIGITS_NO_HYPHEN: Final = "半角数字、ハイフンなし"
EMAIL_CONFIRMATION_MISMATCH: Final = "E-mail(確認用と一致しません)"

USER_CODES: Final = "利用者コード"
USER_CODES_NOT_FOR_THIS: Final = "利用者コード(この申込には不要)"
INDUSTRIES: Final = "業種"
INDUSTRY_NOT_LISTED: Final = "業種(規定の一覧から)"
PROCESSING_METHOD: Final = "処理方式(netNACCS / NACCS)"
SYSTEM_CATEGORY: Final = "システム設定区分"
IDENTIFICATION_COUNT: Final = "識別番号数(1〜20)"
STATISTICS: Final = "管理統計資料(0〜100)"
FREE_STATISTICS: Final = "管理統計資料(無料: 通関業・自社通関・輸出入者・船会社・船舶代理店のみ)"
APPLICATION_REASON: Final = "申込理由"
CLARIFICATION: Final = "確認事項"
REISSUE_REASON: Final = "再発行理由"
TERMINALS: Final = "論理端末"
TERMINAL_TWICE: Final = "論理端末(重複)"
