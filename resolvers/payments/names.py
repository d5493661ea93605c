"""The states of a card payment, what it pays for, and what a gateway notification did."""

from __future__ import annotations

from enum import StrEnum


class CardPaymentStatus(StrEnum):
    """card_payments.status: settled once, from OPEN (a conditional UPDATE)."""

    OPEN = "OPEN"
    PAID = "PAID"
    DECLINED = "DECLINED"  # only payments closed before issue 12: a declined card now leaves the payment open
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"


class PaymentPurpose(StrEnum):
    """What a paid card payment settles (tradecert/composition.py wires each to its handlers)."""

    COUPON_PURCHASE = "COUPON_PURCHASE"  # a coupon order (クーポン購入)
    APPLICATIONS = "APPLICATIONS"  # a cart of approved applications (発給手数料)


class NotificationOutcome(StrEnum):
    """What a signed gateway notification did (card_notifications.outcome; the HTTP answer)."""

    RECEIVED = "received"  # recorded, not yet applied (within the unit of work only)
    PAID = "paid"
    DECLINED = "declined"  # a card the gateway refused: recorded, the payment stays open for another card
    EXPIRED = "expired"
    REFUND_DUE = "refund_due"  # money for something we can no longer deliver
    DUPLICATE = "duplicate"
    REJECTED = "rejected"  # signed, but not an event we can apply
    UNKNOWN_REFERENCE = "unknown_reference"
    NOT_OPEN = "not_open"
    IGNORED = "ignored"
