"""bank deposit lines (issue 10): where each deposit was recorded from, and amounts > 0.

Every line of a statement is a deposit: the key is the bank's id when it gives one,
otherwise the file's SHA-256 and the line (so only a re-import of the same file is a
replay). ``source``/``source_line`` let a re-import name the line a deposit came from.

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bank_deposits") as batch:
        batch.add_column(sa.Column("source", sa.String(200), nullable=True))
        batch.add_column(sa.Column("source_line", sa.Integer(), nullable=True))
        batch.create_check_constraint(op.f("ck_bank_deposits_amount"), "amount > 0")


def downgrade() -> None:
    with op.batch_alter_table("bank_deposits") as batch:
        batch.drop_constraint(op.f("ck_bank_deposits_amount"), type_="check")
        batch.drop_column("source_line")
        batch.drop_column("source")
