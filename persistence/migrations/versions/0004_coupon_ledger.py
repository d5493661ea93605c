"""Coupon ledger: accounts (guarded balance), lots, entries, entry-lot allocations, refunds.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

from persistence.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coupon_accounts",
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("balance", sa.Integer(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_coupon_accounts_balance")),
        sa.CheckConstraint("pending >= 0", name=op.f("ck_coupon_accounts_pending")),
        sa.ForeignKeyConstraint(["registration_id"], ["trade_registrations.id"], name=op.f("fk_coupon_accounts_registration_id_trade_registrations")),
        sa.PrimaryKeyConstraint("registration_id", name=op.f("pk_coupon_accounts")),
    )
    op.create_table(
        "coupon_lots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("product_code", sa.String(32), nullable=True),
        sa.Column("membership", sa.String(16), nullable=True),
        sa.Column("unit_price", sa.Integer(), nullable=True),
        sa.Column("coupons", sa.Integer(), nullable=False),
        sa.Column("coupons_left", sa.Integer(), nullable=False),
        sa.Column("acquired_on", sa.Date(), nullable=False),
        sa.Column("rules_version", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("coupons_left >= 0 AND coupons_left <= coupons", name=op.f("ck_coupon_lots_left")),
        sa.CheckConstraint("coupons > 0", name=op.f("ck_coupon_lots_coupons")),
        sa.ForeignKeyConstraint(["registration_id"], ["trade_registrations.id"], name=op.f("fk_coupon_lots_registration_id_trade_registrations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_lots")),
    )
    op.create_index(op.f("ix_coupon_lots_registration_id"), "coupon_lots", ["registration_id"])
    op.create_table(
        "coupon_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("coupons", sa.Integer(), nullable=False),
        sa.Column("balance_after", sa.Integer(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("receipt_number", sa.String(16), nullable=True),
        sa.Column("external_key", sa.String(128), nullable=False),
        sa.CheckConstraint("kind IN ('PURCHASE', 'USE', 'RETURN', 'CHAMBER_OPERATION', 'REFUND')", name=op.f("ck_coupon_entries_kind")),
        sa.CheckConstraint("balance_after IS NULL OR balance_after >= 0", name=op.f("ck_coupon_entries_balance_after")),
        sa.ForeignKeyConstraint(["registration_id"], ["trade_registrations.id"], name=op.f("fk_coupon_entries_registration_id_trade_registrations")),
        sa.ForeignKeyConstraint(["actor_id"], ["accounts.id"], name=op.f("fk_coupon_entries_actor_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_entries")),
        sa.UniqueConstraint("external_key", name=op.f("uq_coupon_entries_external_key")),
    )
    op.create_index(op.f("ix_coupon_entries_registration_id"), "coupon_entries", ["registration_id"])
    op.create_table(
        "coupon_entry_lots",
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("coupons", sa.Integer(), nullable=False),
        sa.CheckConstraint("coupons <> 0", name=op.f("ck_coupon_entry_lots_coupons")),
        sa.ForeignKeyConstraint(["entry_id"], ["coupon_entries.id"], name=op.f("fk_coupon_entry_lots_entry_id_coupon_entries")),
        sa.ForeignKeyConstraint(["lot_id"], ["coupon_lots.id"], name=op.f("fk_coupon_entry_lots_lot_id_coupon_lots")),
        sa.PrimaryKeyConstraint("entry_id", "lot_id", name=op.f("pk_coupon_entry_lots")),
    )
    op.create_table(
        "refunds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("paid_at", UTCDateTime(), nullable=True),
        sa.Column("external_key", sa.String(128), nullable=False),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_refunds_amount")),
        sa.ForeignKeyConstraint(["registration_id"], ["trade_registrations.id"], name=op.f("fk_refunds_registration_id_trade_registrations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("external_key", name=op.f("uq_refunds_external_key")),
    )
    op.create_index(op.f("ix_refunds_registration_id"), "refunds", ["registration_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_refunds_registration_id"), table_name="refunds")
    op.drop_table("refunds")
    op.drop_table("coupon_entry_lots")
    op.drop_index(op.f("ix_coupon_entries_registration_id"), table_name="coupon_entries")
    op.drop_table("coupon_entries")
    op.drop_index(op.f("ix_coupon_lots_registration_id"), table_name="coupon_lots")
    op.drop_table("coupon_lots")
    op.drop_table("coupon_accounts")
