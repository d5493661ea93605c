"""The composition root: the one place where the parts of tradecert are wired together.

Everything that is chosen rather than imported lives here, as plain function references:
what settles a card payment of each purpose, which jobs exist and how often they run,
which PDF each document address serves, where the sandbox gateway delivers its events.
Nothing registers itself on import and nothing is looked up by name. To add a job, a
payment purpose or a document, add a line here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from persistence.db import Database
from resolvers.adapters import mail
from resolvers.adapters.gateway import GatewayNotConfigured, PaymentGateway, gateway_for
from resolvers.applications import documents as application_documents
from resolvers.core.clock import Clock
from resolvers.core.context import Context, Services
from resolvers.core.settings import Settings
from resolvers.coupons import documents as coupon_documents
from resolvers.coupons import ledger, purchases
from resolvers.naccs import documents as naccs_documents
from resolvers.naccs import use_cases as naccs
from resolvers.payments import card, checkout
from resolvers.payments import documents as payment_documents
from resolvers.payments.names import PaymentPurpose
from resolvers.webhooks import delivery as webhooks
from rules.runtime import RulesRuntime
from tradecert.jobs import Job

# A card payment's purpose → what its settlement, failure and locks do.
PURPOSES: dict[str, card.Purpose] = {
    PaymentPurpose.COUPON_PURCHASE: card.Purpose(purchases.card_paid, purchases.card_failed, purchases.lock_for_card),
    PaymentPurpose.APPLICATIONS: card.Purpose(checkout.card_paid, checkout.card_failed, checkout.lock_for_card),
}

JOBS: dict[str, Job] = {job.name: job for job in (
    Job("mail-delivery", "send queued mails over SMTP, retrying with backoff", mail.deliver_pending,
        every=dt.timedelta(seconds=15), lease=dt.timedelta(minutes=5)),
    Job("webhook-delivery", "POST signed webhook events to registrations' endpoints, retrying with backoff",
        webhooks.deliver_due, every=dt.timedelta(seconds=5), lease=dt.timedelta(minutes=2), lane="webhooks"),
    Job("bank-reconciliation", "match recorded bank deposits to coupon orders (nightly)", purchases.reconcile_job,
        every=dt.timedelta(hours=24), daily_at=dt.time(2, 0)),
    Job("purchase-expiry", "cancel coupon orders unpaid past their validity", purchases.expire_unpaid,
        every=dt.timedelta(hours=1)),
    Job("card-session-expiry", "close card payment sessions past their time and cancel their orders",
        card.expiry_job, every=dt.timedelta(seconds=30), lease=dt.timedelta(minutes=2)),
    Job("card-notification-redelivery", "sandbox gateway: send unacknowledged payment events again",
        card.redelivery_job, every=dt.timedelta(minutes=1), lease=dt.timedelta(minutes=2)),
    Job("naccs-reissue", "NACCS: process digital-certificate reissues due today (mornings)", naccs.process_reissues,
        every=dt.timedelta(hours=24), daily_at=dt.time(6, 0)),
    Job("naccs-password-purge", "NACCS: destroy issued passwords whose viewing window has closed",
        naccs.purge_passwords, every=dt.timedelta(hours=1)),
    Job("ledger-audit", "check that coupon entries and lots sum to every balance", ledger.audit_job,
        every=dt.timedelta(hours=1)),
)}


@dataclass(frozen=True)
class Document:
    """A PDF served at ``path`` with the session and permissions of the object it belongs to."""

    path: str
    render: Callable[[Context, int], Awaitable[bytes]]
    filename: str  # the download's name, before "-{id}.pdf"
    type_name: str  # the GraphQL type whose global id the path carries
    key: str  # the path parameter holding that id


DOCUMENTS: tuple[Document, ...] = (
    Document("/documents/purchases/{purchase_id}/transfer-request.pdf", coupon_documents.purchase_transfer_request,
             "transfer-request", "CouponPurchase", "purchase_id"),
    Document("/documents/purchases/{purchase_id}/card-statement.pdf", payment_documents.purchase_card_statement,
             "card-statement", "CouponPurchase", "purchase_id"),
    Document("/documents/applications/{application_id}/certificate.pdf", application_documents.certificate,
             "certificate", "Application", "application_id"),
    Document("/documents/applications/{application_id}/card-statement.pdf", payment_documents.application_card_statement,
             "card-statement", "Application", "application_id"),
    Document("/documents/naccs/{application_id}/form.pdf", naccs_documents.application_form,
             "naccs-application", "NaccsApplication", "application_id"),
    Document("/documents/naccs/{application_id}/approval-notice.pdf", naccs_documents.approval_notice,
             "naccs-approval-notice", "NaccsApplication", "application_id"),
)


def _gateway(settings: Settings, plugged: PaymentGateway | None) -> PaymentGateway | None:
    """The card gateway, built once per process: the one plugged in, else the one
    TRADECERT_PAYMENT_GATEWAY names. A configuration that gives none leaves it unset: every
    card payment, `create_app` and `serve` still refuse it in one line (``gateway_of`` asks
    again), and a command that takes no card payment (`jobs run`, `bank import`) still runs."""
    if plugged is not None:
        return plugged
    try:
        return gateway_for(settings)
    except GatewayNotConfigured:
        return None


def build_services(settings: Settings, clock: Clock | None = None, db: Database | None = None,
                   rules: RulesRuntime | None = None, *, gateway: PaymentGateway | None = None,
                   bank: object | None = None) -> Services:
    """The long-lived collaborators of one process (or one test), wired."""
    return Services(
        settings=settings,
        db=db or Database(settings.database_url, schema=settings.database_schema),
        rules=rules or RulesRuntime(settings.rules_dir),
        clock=clock or Clock(),
        purposes=PURPOSES,
        jobs=JOBS,
        receive_notification=card.receive_notification,
        gateway=_gateway(settings, gateway),
        bank=bank,
    )
