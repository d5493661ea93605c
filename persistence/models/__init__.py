"""SQLAlchemy models, one module per domain. Constraints that guard correctness live in the
database (CHECK, partial unique indexes), so a bug above cannot write a state the domain forbids.

The Alembic migrations in persistence/migrations are the source of the schema; these
models mirror them (a test compares the two). Every module is imported here, so every
table is in ``Base.metadata`` and ``from persistence.models import X`` reaches every model."""

from persistence.models.applications import APPLICATION_STATES, Application, ApplicationGoods, BulkRequest, BulkRequestItem
from persistence.models.base import NAMING, Base, UTCDateTime
from persistence.models.coupons import (
    BankDeposit,
    CouponAccount,
    CouponEntry,
    CouponEntryLot,
    CouponLot,
    CouponPurchase,
    CouponPurchaseLine,
    Refund,
    VirtualAccount,
)
from persistence.models.identity import (
    Account,
    ActivationToken,
    ApiKey,
    Chamber,
    LoginThrottle,
    RegistrationMembership,
    Session,
    TradeRegistration,
)
from persistence.models.naccs import NaccsApplication, NaccsNotice, NaccsOffice, NaccsTerminal, NaccsUserId
from persistence.models.operations import AuditEntry, Counter, JobLease, OutboxMail, RateLimit, ReceiptNumber
from persistence.models.payments import (
    CardCartItem,
    CardNotification,
    CardPayment,
    CardPaymentItem,
    CardStatement,
    SandboxGatewayAttempt,
    SandboxGatewaySession,
)
from persistence.models.rules import RulesCorrection, RulesVersion
from persistence.models.webhooks import WEBHOOK_EVENTS, WebhookDelivery, WebhookEndpoint

__all__ = [
    "APPLICATION_STATES",
    "NAMING",
    "WEBHOOK_EVENTS",
    "Account",
    "ActivationToken",
    "ApiKey",
    "Application",
    "ApplicationGoods",
    "AuditEntry",
    "BankDeposit",
    "Base",
    "BulkRequest",
    "BulkRequestItem",
    "CardCartItem",
    "CardNotification",
    "CardPayment",
    "CardPaymentItem",
    "CardStatement",
    "Chamber",
    "Counter",
    "CouponAccount",
    "CouponEntry",
    "CouponEntryLot",
    "CouponLot",
    "CouponPurchase",
    "CouponPurchaseLine",
    "JobLease",
    "LoginThrottle",
    "NaccsApplication",
    "NaccsNotice",
    "NaccsOffice",
    "NaccsTerminal",
    "NaccsUserId",
    "OutboxMail",
    "RateLimit",
    "ReceiptNumber",
    "Refund",
    "RegistrationMembership",
    "RulesCorrection",
    "RulesVersion",
    "SandboxGatewayAttempt",
    "SandboxGatewaySession",
    "Session",
    "TradeRegistration",
    "UTCDateTime",
    "VirtualAccount",
    "WebhookDelivery",
    "WebhookEndpoint",
]
