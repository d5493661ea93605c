"""Set-based reconciliation (issue 11, P5): two indexes.

* ``coupon_entry_lots (lot_id)``: SQLite checks a parent's children when a multi-row
  ``INSERT … SELECT`` adds parents, so inserting a chunk's lots scanned every allocation
  once per lot without it; a lot's allocations are looked up by lot anyway.
* ``bank_deposits (id) WHERE processed_at IS NULL``: the reconciliation's work list (the
  deposits not yet applied) without reading every deposit ever recorded.

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

UNPROCESSED = sa.text("processed_at IS NULL")


def upgrade() -> None:
    op.create_index("ix_coupon_entry_lots_lot_id", "coupon_entry_lots", ["lot_id"])
    op.create_index("ix_bank_deposits_unprocessed", "bank_deposits", ["id"], sqlite_where=UNPROCESSED,
                    postgresql_where=UNPROCESSED)


def downgrade() -> None:
    op.drop_index("ix_bank_deposits_unprocessed", table_name="bank_deposits")
    op.drop_index("ix_coupon_entry_lots_lot_id", table_name="coupon_entry_lots")
