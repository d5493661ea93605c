"""A refund names the rules versions it was computed under (issue 13).

A refund of coupon lots is computed per lot under the lot's own rules version (kept in
``rules_versions``); ``refunds.rules_version`` records which versions that was
(comma-separated when the lots came under several). Nullable: refunds recorded before this
migration, and refunds of chamber additions only, name none.

Revision ID: 0020
Revises: 0019
"""
import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("rules_version", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refunds") as batch:
        batch.drop_column("rules_version")
