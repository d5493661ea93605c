"""Idempotency fingerprints (issue 10).

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # the request an idempotency key was first used with (IDEMPOTENCY_KEY_REUSED otherwise)
    with op.batch_alter_table("coupon_purchases") as batch:
        batch.add_column(sa.Column("idempotency_fingerprint", sa.String(64), nullable=True))
    with op.batch_alter_table("card_payments") as batch:
        batch.add_column(sa.Column("idempotency_fingerprint", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("card_payments") as batch:
        batch.drop_column("idempotency_fingerprint")
    with op.batch_alter_table("coupon_purchases") as batch:
        batch.drop_column("idempotency_fingerprint")
