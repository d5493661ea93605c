"""Coupon purchases, lines, one-time virtual accounts, bank deposits.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

from persistence.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coupon_purchases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_number", sa.String(32), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("buyer_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("membership", sa.String(16), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("coupons", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("ordered_at", UTCDateTime(), nullable=False),
        sa.Column("ordered_on", sa.Date(), nullable=False),
        sa.Column("rules_version", sa.String(32), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("paid_at", UTCDateTime(), nullable=True),
        sa.Column("cancelled_at", UTCDateTime(), nullable=True),
        sa.Column("cancel_reason", sa.String(200), nullable=True),
        sa.Column("deposited_amount", sa.Integer(), nullable=True),
        sa.Column("refund_due", sa.Integer(), nullable=True),
        sa.Column("notify_email", sa.String(254), nullable=True),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.CheckConstraint("status IN ('AWAITING_PAYMENT', 'ISSUED', 'CANCELLED')", name=op.f("ck_coupon_purchases_status")),
        sa.CheckConstraint("method IN ('BANK_TRANSFER', 'CARD')", name=op.f("ck_coupon_purchases_method")),
        sa.CheckConstraint("coupons > 0 AND amount > 0", name=op.f("ck_coupon_purchases_positive")),
        sa.ForeignKeyConstraint(["registration_id"], ["trade_registrations.id"], name=op.f("fk_coupon_purchases_registration_id_trade_registrations")),
        sa.ForeignKeyConstraint(["buyer_id"], ["accounts.id"], name=op.f("fk_coupon_purchases_buyer_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_purchases")),
        sa.UniqueConstraint("order_number", name=op.f("uq_coupon_purchases_order_number")),
    )
    op.create_index(op.f("ix_coupon_purchases_registration_id"), "coupon_purchases", ["registration_id"])
    op.create_index("uq_coupon_purchases_in_progress", "coupon_purchases", ["registration_id"], unique=True,
                    sqlite_where=sa.text("status = 'AWAITING_PAYMENT'"), postgresql_where=sa.text("status = 'AWAITING_PAYMENT'"))
    op.create_index("uq_coupon_purchases_idempotency", "coupon_purchases", ["buyer_id", "idempotency_key"], unique=True,
                    sqlite_where=sa.text("idempotency_key IS NOT NULL"), postgresql_where=sa.text("idempotency_key IS NOT NULL"))
    op.create_table(
        "coupon_purchase_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purchase_id", sa.Integer(), nullable=False),
        sa.Column("product_code", sa.String(32), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Integer(), nullable=False),
        sa.Column("coupons", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_coupon_purchase_lines_quantity")),
        sa.ForeignKeyConstraint(["purchase_id"], ["coupon_purchases.id"], name=op.f("fk_coupon_purchase_lines_purchase_id_coupon_purchases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_purchase_lines")),
    )
    op.create_index(op.f("ix_coupon_purchase_lines_purchase_id"), "coupon_purchase_lines", ["purchase_id"])
    op.create_table(
        "virtual_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purchase_id", sa.Integer(), nullable=False),
        sa.Column("bank_code", sa.String(4), nullable=False),
        sa.Column("bank_name", sa.String(60), nullable=False),
        sa.Column("branch_code", sa.String(3), nullable=False),
        sa.Column("branch_name", sa.String(60), nullable=False),
        sa.Column("account_number", sa.String(7), nullable=False),
        sa.Column("holder", sa.String(60), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["purchase_id"], ["coupon_purchases.id"], name=op.f("fk_virtual_accounts_purchase_id_coupon_purchases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_virtual_accounts")),
        sa.UniqueConstraint("purchase_id", name=op.f("uq_virtual_accounts_purchase_id")),
        sa.UniqueConstraint("account_number", name=op.f("uq_virtual_accounts_account_number")),
    )
    op.create_table(
        "bank_deposits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deposit_key", sa.String(128), nullable=False),
        sa.Column("account_number", sa.String(7), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("deposited_on", sa.Date(), nullable=False),
        sa.Column("payer_name", sa.String(120), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("purchase_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["purchase_id"], ["coupon_purchases.id"], name=op.f("fk_bank_deposits_purchase_id_coupon_purchases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_deposits")),
        sa.UniqueConstraint("deposit_key", name=op.f("uq_bank_deposits_deposit_key")),
    )
    op.create_index(op.f("ix_bank_deposits_account_number"), "bank_deposits", ["account_number"])


def downgrade() -> None:
    op.drop_index(op.f("ix_bank_deposits_account_number"), table_name="bank_deposits")
    op.drop_table("bank_deposits")
    op.drop_table("virtual_accounts")
    op.drop_index(op.f("ix_coupon_purchase_lines_purchase_id"), table_name="coupon_purchase_lines")
    op.drop_table("coupon_purchase_lines")
    op.drop_index("uq_coupon_purchases_idempotency", table_name="coupon_purchases")
    op.drop_index("uq_coupon_purchases_in_progress", table_name="coupon_purchases")
    op.drop_index(op.f("ix_coupon_purchases_registration_id"), table_name="coupon_purchases")
    op.drop_table("coupon_purchases")
