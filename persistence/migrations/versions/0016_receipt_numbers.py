"""Receipt numbers from a sequence (issue 11): no counter row every submission locks.

PostgreSQL draws from ``receipt_numbers_id_seq`` (the id sequence of the new table, which
stays empty there); SQLite inserts into the table (AUTOINCREMENT). Both continue after the
last number the ``receipt`` counter handed out, and that counter row goes.

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "receipt_numbers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipt_numbers")),
        sqlite_autoincrement=True,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT setval('receipt_numbers_id_seq', value) FROM counters WHERE name = 'receipt' AND value > 0")
    else:
        op.execute("INSERT INTO sqlite_sequence (name, seq) SELECT 'receipt_numbers', value FROM counters WHERE name = 'receipt'")
    op.execute("DELETE FROM counters WHERE name = 'receipt'")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("INSERT INTO counters (name, value) SELECT 'receipt', last_value FROM receipt_numbers_id_seq WHERE is_called")
    else:
        op.execute("INSERT INTO counters (name, value) SELECT 'receipt', seq FROM sqlite_sequence WHERE name = 'receipt_numbers'")
    op.drop_table("receipt_numbers")
