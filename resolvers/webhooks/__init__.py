"""Webhooks: signed POSTs to a registration's own endpoints when its applications and coupon
orders change (an outbox written with the change, delivered by the ``webhook-delivery`` job)."""
