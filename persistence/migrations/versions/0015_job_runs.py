"""job runs (issue 10): a job's last *successful* finish, kept apart from its last start.

A daily job counts as done for the day only when a run finished ok; a run that crashed
(`kill -9`) left only its start behind and is redone once its lease expires.

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

from persistence.models import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_leases") as batch:
        batch.add_column(sa.Column("last_succeeded_at", UTCDateTime(), nullable=True))
    # the last finish of a job whose last run was ok is its last success
    op.execute("UPDATE job_leases SET last_succeeded_at = last_finished_at WHERE last_status = 'ok'")


def downgrade() -> None:
    with op.batch_alter_table("job_leases") as batch:
        batch.drop_column("last_succeeded_at")
