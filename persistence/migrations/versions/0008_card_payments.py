"""Card payments: our sessions at the gateway, accepted notifications, the sandbox gateway's state.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

from persistence.models import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "card_payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(48), nullable=False),
        sa.Column("payment_number", sa.String(40), nullable=False),
        sa.Column("purpose", sa.String(24), nullable=False),
        sa.Column("purchase_id", sa.Integer(), nullable=True),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("payer_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("gateway_session", sa.String(64), nullable=False),
        sa.Column("payment_url", sa.String(400), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("charge_id", sa.String(64), nullable=True),
        sa.Column("brand", sa.String(24), nullable=True),
        sa.Column("last4", sa.String(4), nullable=True),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.CheckConstraint("status IN ('OPEN', 'PAID', 'DECLINED', 'EXPIRED', 'CANCELLED')", name=op.f("ck_card_payments_status")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_card_payments_amount")),
        sa.ForeignKeyConstraint(["purchase_id"], ["coupon_purchases.id"], name=op.f("fk_card_payments_purchase_id_coupon_purchases")),
        sa.ForeignKeyConstraint(["registration_id"], ["trade_registrations.id"], name=op.f("fk_card_payments_registration_id_trade_registrations")),
        sa.ForeignKeyConstraint(["payer_id"], ["accounts.id"], name=op.f("fk_card_payments_payer_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_payments")),
        sa.UniqueConstraint("reference", name=op.f("uq_card_payments_reference")),
        sa.UniqueConstraint("payment_number", name=op.f("uq_card_payments_payment_number")),
        sa.UniqueConstraint("purchase_id", name=op.f("uq_card_payments_purchase_id")),
        sa.UniqueConstraint("gateway_session", name=op.f("uq_card_payments_gateway_session")),
        sa.UniqueConstraint("charge_id", name=op.f("uq_card_payments_charge_id")),
    )
    op.create_index(op.f("ix_card_payments_registration_id"), "card_payments", ["registration_id"])
    op.create_index(op.f("ix_card_payments_payer_id"), "card_payments", ["payer_id"])
    op.create_index("uq_card_payments_idempotency", "card_payments", ["payer_id", "idempotency_key"], unique=True,
                    sqlite_where=sa.text("idempotency_key IS NOT NULL"), postgresql_where=sa.text("idempotency_key IS NOT NULL"))
    op.create_table(
        "card_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(48), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_notifications")),
        sa.UniqueConstraint("event_id", name=op.f("uq_card_notifications_event_id")),
    )
    op.create_index(op.f("ix_card_notifications_reference"), "card_notifications", ["reference"])
    op.create_table(
        "sandbox_gateway_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("merchant_reference", sa.String(48), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("charge_id", sa.String(64), nullable=True),
        sa.Column("brand", sa.String(24), nullable=True),
        sa.Column("last4", sa.String(4), nullable=True),
        sa.Column("holder", sa.String(60), nullable=True),
        sa.Column("paid_at", UTCDateTime(), nullable=True),
        sa.Column("notification", sa.String(2000), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("status IN ('OPEN', 'PAID', 'DECLINED', 'EXPIRED')", name=op.f("ck_sandbox_gateway_sessions_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_gateway_sessions")),
        sa.UniqueConstraint("merchant_reference", name=op.f("uq_sandbox_gateway_sessions_merchant_reference")),
        sa.UniqueConstraint("charge_id", name=op.f("uq_sandbox_gateway_sessions_charge_id")),
    )


def downgrade() -> None:
    op.drop_table("sandbox_gateway_sessions")
    op.drop_index(op.f("ix_card_notifications_reference"), table_name="card_notifications")
    op.drop_table("card_notifications")
    op.drop_index("uq_card_payments_idempotency", table_name="card_payments")
    op.drop_index(op.f("ix_card_payments_payer_id"), table_name="card_payments")
    op.drop_index(op.f("ix_card_payments_registration_id"), table_name="card_payments")
    op.drop_table("card_payments")
