"""Corrections of a rules version in force (issue 20): who replaced which version, when and why.

``rules_corrections`` is append-only, beside ``rules_versions`` (which keeps every version,
the wrong one too: records priced under it name it). From a correction's time the history
guard compares the files with the correcting version's, not with the wrong one's.

Revision ID: 0027
Revises: 0026
"""
import sqlalchemy as sa
from alembic import op

from persistence.models import UTCDateTime

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rules_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("corrects", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("corrected_by", sa.String(100), nullable=False),
        sa.Column("corrected_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rules_corrections")),
    )


def downgrade() -> None:
    op.drop_table("rules_corrections")
