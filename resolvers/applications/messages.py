"""Words of certificate applications a user reads: the certificate types' names (PDFs, the
verification page), the mails to the person in charge, the reasons written on coupon
ledger entries, and field labels. Templates take named ``{placeholders}``."""

from __future__ import annotations

from typing import Final

from resolvers.applications.names import ApplicationState, CertificateType
from resolvers.core.messages import Words

CERTIFICATE_TYPE_NAMES: Final[dict[CertificateType, str]] = {
    CertificateType.ORIGIN_JAPANESE: "原産地証明書(日本産)",
    CertificateType.ORIGIN_FOREIGN: "原産地証明書(外国産)",
    CertificateType.INVOICE: "インボイス証明",
    CertificateType.SIGNATURE: "サイン証明",
}

# --------------------------------------------------------------------------- mails (to the creator)

# Subjects and bodies are policy: rules/mail_templates.yaml (application.hold, application.approved,
# application.issued), rendered by use_cases._mail.

# --------------------------------------------------------------------------- coupon ledger notes

SUBMITTED_NOTE: Final = "発給申請"  # a coupon used
WITHDRAWN_NOTE: Final = "申請取下げ"  # a coupon returned
HELD_NOTE: Final = "保留"  # a coupon returned

# --------------------------------------------------------------------------- field labels

CERTIFICATE_TYPE: Final = Words("証明書種別", "Certificate type")
CERTIFICATE_TYPE_FIXED: Final = Words("申請済み: 証明書種別は変更不可", "submitted once: the certificate type is fixed")
FEE_PAYMENT: Final = Words("支払方法", "Payment method")
FEE_PAYMENT_FIXED: Final = Words("申請済み: 支払方法は変更不可", "submitted once: the payment method is fixed")
DESTINATION_COUNTRY: Final = Words("仕向地", "Destination country")
COUNTRY_CODE: Final = Words("{label}(ISO 3166 国コード 2文字)",
                           "{label} (ISO 3166 two-letter country code)")  # a country label and what the value must look like
GOODS_CATEGORY: Final = Words("主要品目", "Main goods category")
INVOICE_NUMBER: Final = Words("インボイス番号", "Invoice number")
EXPORTER_NAME: Final = Words("輸出者名", "Exporter name")
SIGNATURE_KIND: Final = Words("サイン証明の種類", "Kind of signature certificate")
CONSIGNEE: Final = Words("荷受人", "Consignee")
TRANSPORT: Final = Words("輸送手段", "Means of transport")
PERSON_IN_CHARGE: Final = Words("担当者", "Person in charge")
GOODS: Final = Words("品目", "Goods")
GOODS_AT_MOST: Final = Words("品目({limit}行まで)", "Goods (at most {limit} lines)")
GOODS_DESCRIPTION: Final = Words("品名", "Description of goods")
GOODS_QUANTITY: Final = Words("数量", "Quantity")
HS_CODE: Final = Words("HSコード(6〜10桁)", "HS code (6 to 10 digits)")
ORIGIN_COUNTRY: Final = Words("原産国", "Country of origin")
ORIGIN_JAPAN_ONLY: Final = Words("原産国(日本産はJP)", "Country of origin (JP for Japanese goods)")
HOLD_REASON: Final = Words("保留理由", "Reason for the hold")

# --------------------------------------------------------------------------- states (INVALID_STATE's {state})

STATE_NAMES: Final[dict[str, Words]] = {  # by ApplicationState
    ApplicationState.DRAFT: Words("下書き", "draft"),
    ApplicationState.SUBMITTED: Words("申請中", "submitted"),
    ApplicationState.ON_HOLD: Words("保留", "on hold"),
    ApplicationState.APPROVED: Words("承認済", "approved"),
    ApplicationState.ISSUED: Words("交付済", "issued"),
    ApplicationState.WITHDRAWN: Words("取下げ", "withdrawn"),
}
REGISTRATION_WITHDRAWN: Final = Words("貿易登録が退会済み", "the trade registration has withdrawn")
NO_MEMBERSHIP: Final = Words("会員区分が未設定", "no membership in force")

# --------------------------------------------------------------------------- bulk filing (createApplications, submitApplications)

APPLICATIONS: Final = Words("申請", "Applications")
APPLICATION_IDS: Final = Words("申請ID", "Application ids")
APPLICATION_ID_REPEATED: Final = Words("申請ID(同じIDは1回まで)", "Application id (each id at most once)")
IDEMPOTENCY_KEY: Final = Words("冪等キー(1〜128文字)", "Idempotency key (1 to 128 characters)")

# --------------------------------------------------------------------------- the CSV import (tradecert applications import)

CSV_UNKNOWN_COLUMN: Final = Words("不明な列です。列名は docs/applications-import.md の表のとおりにしてください",
                                  "unknown column; name the columns as docs/applications-import.md lists them")
CSV_REPEATED_COLUMN: Final = Words("同じ列名が2回あります", "this column name appears twice")
CSV_MISSING_COLUMN: Final = Words("必須の列「{column}」がありません", "the required column {column} is missing")
CSV_EXTRA_CELLS: Final = Words("見出しより多くのセルがあります", "more cells than the header has columns")
CSV_NOT_TEXT: Final = Words("UTF-8でもShift_JIS(cp932)でも読めないファイルです({position}バイト目)",
                            "neither UTF-8 nor Shift_JIS (cp932) (byte {position})")
CSV_NOT_ENCODING: Final = Words("{encoding}として読めません({position}バイト目)", "not {encoding} (byte {position})")
CSV_NO_HEADER: Final = Words("見出しの行がありません", "there is no header line")
CSV_NOT_UTF8_AUTO: Final = Words("UTF-8ではありません({position}バイト目)。Shift_JISのファイルなら --encoding cp932 を指定してください",
                                 "not UTF-8 (byte {position}); if the file is Shift_JIS, use --encoding cp932")
CSV_CELL_TOO_LONG: Final = Words("{limit:,}文字を超えるセルがあります", "a cell is longer than {limit:,} characters")
CSV_QUOTE_NOT_CLOSED: Final = Words("ここで始まる引用符(\")が閉じられていません", "a quote opened here is never closed")
CSV_TEXT_AFTER_QUOTE: Final = Words("引用符(\")で囲まれたセルの閉じ引用符の後に文字があります",
                                    "a quoted cell goes on after its closing quote")
CSV_NOT_CSV: Final = Words("CSVとして読めません({detail})", "not valid CSV ({detail})")
CSV_TOO_WIDE: Final = Words("{count:,}列あります。様式の列は最大{most}列です", "{count:,} columns; the layout has at most {most}")
