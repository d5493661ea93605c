"""The events a webhook endpoint subscribes to and the states of a delivery (schema/enums.py
shows them). Imports only ``enum``, so the use cases that emit events may import it."""

from __future__ import annotations

from enum import StrEnum


class WebhookEvent(StrEnum):
    """What happened, as the body's ``event`` names it (the GraphQL enum uses the member names)."""

    APPLICATION_SUBMITTED = "application.submitted"  # 発給申請
    APPLICATION_ON_HOLD = "application.on_hold"  # 保留
    APPLICATION_APPROVED = "application.approved"  # 承認
    APPLICATION_ISSUED = "application.issued"  # 交付
    COUPON_PURCHASE_ISSUED = "coupon_purchase.issued"  # クーポン発行
    COUPON_PURCHASE_CANCELLED = "coupon_purchase.cancelled"  # 購入取消


class WebhookDeliveryStatus(StrEnum):
    """webhook_deliveries.status."""

    PENDING = "PENDING"  # not tried yet (a new event, or a redelivery)
    DELIVERED = "DELIVERED"  # the receiver answered 2xx
    RETRYING = "RETRYING"  # failed at least once; tried again at next_attempt_at
    FAILED = "FAILED"  # gave up: the retry period passed, the destination is refused, or the endpoint was deleted


# the statuses the delivery job still works on
OPEN_STATUSES = (WebhookDeliveryStatus.PENDING, WebhookDeliveryStatus.RETRYING)
