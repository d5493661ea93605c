"""Ledger entries name the purchase they came from (CouponEntry.purchase).

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("coupon_entries") as batch:
        batch.add_column(sa.Column("purchase_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_coupon_entries_purchase_id_coupon_purchases"), "coupon_purchases",
                                 ["purchase_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("coupon_entries") as batch:
        batch.drop_constraint(op.f("fk_coupon_entries_purchase_id_coupon_purchases"), type_="foreignkey")
        batch.drop_column("purchase_id")
