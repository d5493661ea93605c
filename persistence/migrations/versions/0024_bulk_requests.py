"""Bulk filing (issue 14): the idempotency keys of ``createApplications`` and
``submitApplications`` and the outcome of each position.

``bulk_requests`` holds one row per (account, kind, key) with the SHA-256 of the input.
``bulk_request_items`` holds, per position, the application created or submitted
(``outcome`` NULL) or the code that refused it and its errors as JSON. A created batch
writes its request row, items and applications in one transaction; a submitted id writes
its item in the transaction of its own submission, so a replay after a crash answers
what was recorded and carries on with the positions that have none.

Revision ID: 0024
Revises: 0023
"""
import sqlalchemy as sa
from alembic import op

from persistence.models import UTCDateTime

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bulk_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('CREATE', 'SUBMIT')", name=op.f("ck_bulk_requests_kind")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_bulk_requests_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_requests")),
        sa.UniqueConstraint("account_id", "kind", "key", name=op.f("uq_bulk_requests_account_id")),
    )
    op.create_table(
        "bulk_request_items",
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("errors", sa.Text(), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["bulk_requests.id"],
                                name=op.f("fk_bulk_request_items_request_id_bulk_requests")),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"],
                                name=op.f("fk_bulk_request_items_application_id_applications")),
        sa.PrimaryKeyConstraint("request_id", "position", name=op.f("pk_bulk_request_items")),
    )


def downgrade() -> None:
    op.drop_table("bulk_request_items")
    op.drop_table("bulk_requests")
