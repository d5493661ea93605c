"""Sub-ID notification and activation, mail outbox, signer-limit reason.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

from persistence.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("notified_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("activation_expires_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("activated_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("target_registration_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("limit_reason", sa.String(500), nullable=True))
        batch.create_foreign_key(
            op.f("fk_accounts_target_registration_id_trade_registrations"), "trade_registrations",
            ["target_registration_id"], ["id"],
        )
    op.create_table(
        "activation_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_activation_tokens_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activation_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_activation_tokens_token_hash")),
    )
    op.create_index(op.f("ix_activation_tokens_account_id"), "activation_tokens", ["account_id"])
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("to_address", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(400), nullable=False),
        sa.Column("body", sa.String(20000), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(2000), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("status IN ('PENDING', 'SENT', 'FAILED')", name=op.f("ck_mail_outbox_status")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_mail_outbox_attempts")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_mail_outbox_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
    )
    op.create_index(
        "ix_mail_outbox_pending", "mail_outbox", ["next_attempt_at"],
        sqlite_where=sa.text("status = 'PENDING'"), postgresql_where=sa.text("status = 'PENDING'"),
    )


def downgrade() -> None:
    op.drop_index("ix_mail_outbox_pending", table_name="mail_outbox")
    op.drop_table("mail_outbox")
    op.drop_index(op.f("ix_activation_tokens_account_id"), table_name="activation_tokens")
    op.drop_table("activation_tokens")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_constraint(op.f("fk_accounts_target_registration_id_trade_registrations"), type_="foreignkey")
        batch.drop_column("limit_reason")
        batch.drop_column("target_registration_id")
        batch.drop_column("activated_at")
        batch.drop_column("activation_expires_at")
        batch.drop_column("notified_at")
