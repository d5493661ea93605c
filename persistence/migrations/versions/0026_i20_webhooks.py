"""Webhook endpoints that keep failing (issue 20): ``failing_since`` (the first failed attempt
since the endpoint last answered 2xx, NULL while it answers) and ``suspended_at`` /
``suspended_reason`` (tradecert stopped sending: failing for ``webhook_disable_after_days``
or answered 410 Gone; an admin re-enables it with ``enableWebhookEndpoint``).

Revision ID: 0026
Revises: 0024
"""
import sqlalchemy as sa
from alembic import op

from persistence.models import UTCDateTime

revision = "0026"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("failing_since", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("suspended_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("suspended_reason", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("suspended_reason")
        batch.drop_column("suspended_at")
        batch.drop_column("failing_since")
