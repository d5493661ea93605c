"""The API's states and kinds: the resolvers' StrEnums, each exposed to GraphQL once,
here, under its API name (docs/api.md). Schema modules import them from here, so a
state is one class from the database row to the GraphQL answer."""

from __future__ import annotations

import strawberry

from resolvers.applications.names import ApplicationState, CertificateType, FeePayment
from resolvers.coupons.names import CouponEntryKind, PurchaseMethod, PurchaseStatus
from resolvers.identity.names import AccountKind, AccountStatus, Membership, RegistrationKind
from resolvers.naccs.names import NaccsApplicationKind, NaccsApplicationState, ProcessingMethod, ReissueReason
from resolvers.webhooks.names import WebhookDeliveryStatus, WebhookEvent

__all__ = [
    "AccountKind", "AccountStatus", "ApplicationState", "CertificateType", "CouponEntryKind", "FeePayment",
    "Membership", "NaccsApplicationKind", "NaccsApplicationState", "ProcessingMethod", "PurchaseMethod", "PurchaseStatus",
    "RegistrationKind", "ReissueReason", "WebhookDeliveryStatus", "WebhookEvent",
]

# identity
strawberry.enum(AccountKind, name="AccountKind", description=(
    "管理者ID ADMIN · ユーザーID(署名者) SIGNER · サブID SUB · 商工会議所 CHAMBER_STAFF · NACCS 事業所/センター."))
strawberry.enum(AccountStatus, name="AccountStatus", description="CREATED 作成 · NOTIFIED 通知済 · ACTIVE 有効 · DELETED 削除.")
strawberry.enum(RegistrationKind, name="RegistrationKind", description="申請者 APPLICANT / 代行業者 AGENT.")
strawberry.enum(Membership, name="Membership",
                description="会員 MEMBER / 非会員 NON_MEMBER: the status at a moment decides prices.")

# coupons
strawberry.enum(PurchaseMethod, name="PurchaseMethod", description="銀行振込 BANK_TRANSFER / クレジットカード CARD.")
strawberry.enum(CouponEntryKind, name="CouponEntryKind", description=(
    "PURCHASE 購入 · USE 使用 · RETURN 返却(保留) · CHAMBER_OPERATION 商工会議所操作 · REFUND 返金."))
strawberry.enum(PurchaseStatus, name="PurchaseStatus", description="AWAITING_PAYMENT 購入手続中 · ISSUED 発行済 · CANCELLED 取消.")

# applications
strawberry.enum(ApplicationState, name="ApplicationState")
strawberry.enum(CertificateType, name="CertificateType", description="原産地証明書(日本産/外国産), インボイス証明, サイン証明.")
strawberry.enum(FeePayment, name="FeePayment", description="How the fee is paid; fixed at submission.")

# NACCS
strawberry.enum(NaccsApplicationKind, name="NaccsApplicationKind")
strawberry.enum(NaccsApplicationState, name="NaccsApplicationState")
strawberry.enum(ReissueReason, name="ReissueReason")
# named by value: the strings clients sent while the field was a String ("netNACCS") are the enum's names
strawberry.enum(ProcessingMethod, name="NaccsProcessingMethod", graphql_name_from="value", description=(
    "処理方式 of a new user code: netNACCS (netNACCS 端末; its IDs get alphabetic identification numbers, "
    "e.g. A0A) · NACCS (一般 NACCS; numeric identification numbers, e.g. 001)."))

# webhooks
strawberry.enum(WebhookEvent, name="WebhookEvent", description=(
    "What a webhook reports; the body's `event` is the lower-case dotted name (APPLICATION_ON_HOLD → "
    "application.on_hold)."))
strawberry.enum(WebhookDeliveryStatus, name="WebhookDeliveryStatus", description=(
    "PENDING 未送信 · DELIVERED 送信済 (2xx) · RETRYING 再試行待ち · FAILED 失敗 (retries over, or the destination refused)."))
