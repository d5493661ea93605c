"""Withdrawal from the chamber (退会).

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

from persistence.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trade_registrations") as batch:
        batch.add_column(sa.Column("withdrawn_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trade_registrations") as batch:
        batch.drop_column("withdrawn_at")
