"""The rules history (issue 13): every rules version a server served, with its files.

``rules_versions`` is append-only: a row is written the first time any server loads a
version (``INSERT … ON CONFLICT DO NOTHING`` on the content hash, so concurrent workers
agree) and never changed; ``tradecert rules check`` and the server's reload compare the
files with it and refuse an in-place edit of a version that has taken effect.

Revision ID: 0019
Revises: 0018
"""
import sqlalchemy as sa
from alembic import op

from persistence.models import UTCDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rules_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("went_live_at", UTCDateTime(), nullable=False),
        sa.Column("files", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rules_versions")),
        sa.UniqueConstraint("version", name=op.f("uq_rules_versions_version")),
    )


def downgrade() -> None:
    op.drop_table("rules_versions")
