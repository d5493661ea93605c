"""throttles and rate limits (issue 10): attempts per client address and per target.

Login throttling keeps its table (0002): attempts are now counted before the password is
checked, which needs no new column.

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

from persistence.models import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("window_ends_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_rate_limits_attempts")),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_limits")),
    )
    op.create_index(op.f("ix_rate_limits_window_ends_at"), "rate_limits", ["window_ends_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_rate_limits_window_ends_at"), table_name="rate_limits")
    op.drop_table("rate_limits")
