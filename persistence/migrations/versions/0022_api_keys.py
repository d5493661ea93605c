"""API keys (issue 14): named, hashed credentials of a signer or sub-ID for its own systems.

A key is shown once (``tck_`` + 43 URL-safe characters); the database keeps its SHA-256
(unique: the lookup on every request) and a visible prefix to tell keys apart. A key is
never deleted — revoked, with who revoked it — so the audit rows that name it
(``audit_log.api_key_id``) stay resolvable. ``registration_id`` is the account's
registration when the key was made: the admin's listing of its registration's keys.

Revision ID: 0022
Revises: 0021
"""
import sqlalchemy as sa
from alembic import op

from persistence.models import UTCDateTime

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("expires_at IS NULL OR expires_at > created_at", name=op.f("ck_api_keys_expiry")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_api_keys_account_id_accounts")),
        sa.ForeignKeyConstraint(["registration_id"], ["trade_registrations.id"],
                                name=op.f("fk_api_keys_registration_id_trade_registrations")),
        sa.ForeignKeyConstraint(["revoked_by_id"], ["accounts.id"], name=op.f("fk_api_keys_revoked_by_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_api_keys_secret_hash")),
    )
    op.create_index(op.f("ix_api_keys_account_id"), "api_keys", ["account_id"])
    op.create_index(op.f("ix_api_keys_registration_id"), "api_keys", ["registration_id"])
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("api_key_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_audit_log_api_key_id_api_keys"), "api_keys", ["api_key_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint(op.f("fk_audit_log_api_key_id_api_keys"), type_="foreignkey")
        batch.drop_column("api_key_id")
    op.drop_index(op.f("ix_api_keys_registration_id"), table_name="api_keys")
    op.drop_index(op.f("ix_api_keys_account_id"), table_name="api_keys")
    op.drop_table("api_keys")
