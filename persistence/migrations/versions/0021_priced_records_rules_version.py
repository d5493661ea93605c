"""Every priced record names the rules version it was priced under (issue 13).

Coupon purchases and lots already keep it. A card payment now keeps the version in force when
it was started (its statement's tax is reprinted under it), and an application keeps the
version that fixed its fee at the first submission, next to ``fee_rules_version`` (the row
label, ``application_fees@2026-04-01``). Nullable: rows written before this migration name
none, and are reprinted under the rules of their own date, as before.

Revision ID: 0021
Revises: 0020
"""
import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("card_payments") as batch:
        batch.add_column(sa.Column("rules_version", sa.String(32), nullable=True))
    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("rules_version", sa.String(32), nullable=True))


def downgrade() -> None:
    # a plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35 has it): a batch copy of these tables
    # would drop a table other tables' foreign keys point at
    op.drop_column("applications", "rules_version")
    op.drop_column("card_payments", "rules_version")
