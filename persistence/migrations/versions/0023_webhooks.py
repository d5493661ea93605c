"""Webhooks (issue 14): a registration's endpoints and the outbox of their deliveries.

``webhook_endpoints`` keeps the URL, the events (comma-separated names) and the signing
secret, sealed with the Fernet keys of ``TRADECERT_NACCS_KEY_FILE`` (it must be read back to
sign; the key stays outside the database). ``webhook_deliveries`` is the outbox: a row is
written in the transaction of the change it reports, with the exact body to send, and the
``webhook-delivery`` job works it off (status, attempts, the next attempt, a per-row lease
so two hosts never send one delivery at once). A redelivery is a new row naming the first.

Revision ID: 0023
Revises: 0022
"""
import sqlalchemy as sa
from alembic import op

from persistence.models import UTCDateTime

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

EVENTS = ("'application.submitted', 'application.on_hold', 'application.approved', 'application.issued', "
          "'coupon_purchase.issued', 'coupon_purchase.cancelled'")


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", sa.String(400), nullable=False),
        sa.Column("secret_sealed", sa.String(400), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("disabled_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["registration_id"], ["trade_registrations.id"],
                                name=op.f("fk_webhook_endpoints_registration_id_trade_registrations")),
        sa.ForeignKeyConstraint(["created_by_id"], ["accounts.id"], name=op.f("fk_webhook_endpoints_created_by_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index(op.f("ix_webhook_endpoints_registration_id"), "webhook_endpoints", ["registration_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(2000), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("redelivery_of_id", sa.Integer(), nullable=True),
        sa.Column("lease_holder", sa.String(64), nullable=True),
        sa.Column("leased_until", UTCDateTime(), nullable=True),
        sa.CheckConstraint("status IN ('PENDING', 'DELIVERED', 'RETRYING', 'FAILED')", name=op.f("ck_webhook_deliveries_status")),
        sa.CheckConstraint(f"event IN ({EVENTS})", name=op.f("ck_webhook_deliveries_event")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_webhook_deliveries_attempts")),
        sa.CheckConstraint("status NOT IN ('PENDING', 'RETRYING') OR next_attempt_at IS NOT NULL",
                           name=op.f("ck_webhook_deliveries_open_has_next")),
        sa.ForeignKeyConstraint(["endpoint_id"], ["webhook_endpoints.id"],
                                name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints")),
        sa.ForeignKeyConstraint(["redelivery_of_id"], ["webhook_deliveries.id"],
                                name=op.f("fk_webhook_deliveries_redelivery_of_id_webhook_deliveries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    # the delivery log of an endpoint, newest first
    op.create_index("ix_webhook_deliveries_endpoint", "webhook_deliveries", ["endpoint_id", "id"])
    # the job's "due" query: open deliveries by their next attempt
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["next_attempt_at"],
        sqlite_where=sa.text("status IN ('PENDING', 'RETRYING')"),
        postgresql_where=sa.text("status IN ('PENDING', 'RETRYING')"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_endpoint", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index(op.f("ix_webhook_endpoints_registration_id"), table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
