"""Words of certificate applications a user reads: the certificate types' names (PDFs, the
verification page), the mails to the person in charge, the reasons written on coupon
ledger entries, and field labels. Templates take named ``{placeholders}``."""

from __future__ import annotations

from typing import Final

from resolvers.applications.names import CertificateType

CERTIFICATE_TYPE_NAMES: Final[dict[CertificateType, str]] = {
    CertificateType.ORIGIN_JAPANESE: "原産地証明書(日本産)",
    CertificateType.ORIGIN_FOREIGN: "原産地証明書(外国産)",
    CertificateType.INVOICE: "インボイス証明",
    CertificateType.SIGNATURE: "サイン証明",
}

# --------------------------------------------------------------------------- mails (to the creator)

HELD_SUBJECT: Final = "【貿易関係証明発給システム】申請保留のお知らせ"
HELD_BODY: Final = ("受付番号 {receipt_number} の申請は保留になりました。\n理由: {reason}\n"
                    "内容を修正して再申請してください。\n")

APPROVED_SUBJECT: Final = "【貿易関係証明発給システム】申請承認のお知らせ"
APPROVED_BODY: Final = "受付番号 {receipt_number} の申請が承認されました。クレジットカード決済後に交付されます。\n"

ISSUED_SUBJECT: Final = "【貿易関係証明発給システム】証明書交付のお知らせ"
ISSUED_BODY: Final = ("受付番号 {receipt_number} の証明書を交付しました。証明書番号 {certificate_number}\n"
                      "システムから証明書(PDF)を印刷してください。\n")

# --------------------------------------------------------------------------- coupon ledger notes

SUBMITTED_NOTE: Final = "発給申請"  # a coupon used
WITHDRAWN_NOTE: Final = "申請取下げ"  # a coupon returned
HELD_NOTE: Final = "保留"  # a coupon returned

# --------------------------------------------------------------------------- field labels

CERTIFICATE_TYPE: Final = "証明書種別"
CERTIFICATE_TYPE_FIXED: Final = "証明書種別(申請後は変更不可)"
FEE_PAYMENT: Final = "支払方法"
FEE_PAYMENT_FIXED: Final = "支払方法(申請後は変更不可)"
DESTINATION_COUNTRY: Final = "仕向地"
COUNTRY_CODE: Final = "{label}(ISO 3166 国コード 2文字)"  # a country label and what the value must look like
GOODS_CATEGORY: Final = "主要品目"
INVOICE_NUMBER: Final = "インボイス番号"
EXPORTER_NAME: Final = "輸出者名"
SIGNATURE_KIND: Final = "サイン証明の種類"
CONSIGNEE: Final = "荷受人"
TRANSPORT: Final = "輸送手段"
PERSON_IN_CHARGE: Final = "担当者"
GOODS: Final = "品目"
GOODS_AT_MOST: Final = "品目({limit}行まで)"
GOODS_DESCRIPTION: Final = "品名"
GOODS_QUANTITY: Final = "数量"
HS_CODE: Final = "HSコード(6〜10桁)"
ORIGIN_COUNTRY: Final = "原産国"
ORIGIN_JAPAN_ONLY: Final = "原産国(日本産はJP)"
HOLD_REASON: Final = "保留理由"
