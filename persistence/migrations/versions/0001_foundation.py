"""Foundation: chambers, trade registrations with membership history, accounts, job leases.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from persistence.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chambers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(4), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.CheckConstraint("length(code) = 4", name=op.f("ck_chambers_code_length")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chambers")),
        sa.UniqueConstraint("code", name=op.f("uq_chambers_code")),
    )
    op.create_table(
        "trade_registrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(10), nullable=False),
        sa.Column("chamber_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("contact_email", sa.String(254), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("allows_bank_transfer", sa.Boolean(), nullable=False),
        sa.Column("allows_card", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('APPLICANT', 'AGENT')", name=op.f("ck_trade_registrations_kind")),
        sa.CheckConstraint("length(number) = 10", name=op.f("ck_trade_registrations_number_length")),
        sa.CheckConstraint("valid_until IS NULL OR valid_until >= valid_from", name=op.f("ck_trade_registrations_validity")),
        sa.ForeignKeyConstraint(["chamber_id"], ["chambers.id"], name=op.f("fk_trade_registrations_chamber_id_chambers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trade_registrations")),
        sa.UniqueConstraint("number", name=op.f("uq_trade_registrations_number")),
    )
    op.create_index(op.f("ix_trade_registrations_chamber_id"), "trade_registrations", ["chamber_id"])
    op.create_table(
        "registration_memberships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("membership", sa.String(16), nullable=False),
        sa.Column("valid_from", UTCDateTime(), nullable=False),
        sa.Column("valid_until", UTCDateTime(), nullable=True),
        sa.CheckConstraint("membership IN ('MEMBER', 'NON_MEMBER')", name=op.f("ck_registration_memberships_membership")),
        sa.CheckConstraint("valid_until IS NULL OR valid_until > valid_from", name=op.f("ck_registration_memberships_period")),
        sa.ForeignKeyConstraint(["registration_id"], ["trade_registrations.id"], name=op.f("fk_registration_memberships_registration_id_trade_registrations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_memberships")),
    )
    op.create_index(op.f("ix_registration_memberships_registration_id"), "registration_memberships", ["registration_id"])
    op.create_index(
        "uq_registration_memberships_open", "registration_memberships", ["registration_id"], unique=True,
        sqlite_where=sa.text("valid_until IS NULL"), postgresql_where=sa.text("valid_until IS NULL"),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("chamber_id", sa.Integer(), nullable=True),
        sa.Column("registration_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("generated_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('ADMIN', 'SIGNER', 'SUB', 'CHAMBER_STAFF', 'NACCS_OFFICE', 'NACCS_CENTER')",
            name=op.f("ck_accounts_kind"),
        ),
        sa.CheckConstraint("status IN ('CREATED', 'NOTIFIED', 'ACTIVE', 'DELETED')", name=op.f("ck_accounts_status")),
        sa.CheckConstraint(
            "(kind IN ('ADMIN', 'SIGNER', 'SUB') AND registration_id IS NOT NULL AND chamber_id IS NOT NULL)"
            " OR (kind = 'CHAMBER_STAFF' AND registration_id IS NULL AND chamber_id IS NOT NULL)"
            " OR (kind IN ('NACCS_OFFICE', 'NACCS_CENTER') AND registration_id IS NULL AND chamber_id IS NULL)",
            name=op.f("ck_accounts_belongs"),
        ),
        sa.CheckConstraint("kind = 'SUB' OR generated_by_id IS NULL", name=op.f("ck_accounts_generated_only_sub")),
        sa.ForeignKeyConstraint(["chamber_id"], ["chambers.id"], name=op.f("fk_accounts_chamber_id_chambers")),
        sa.ForeignKeyConstraint(["registration_id"], ["trade_registrations.id"], name=op.f("fk_accounts_registration_id_trade_registrations")),
        sa.ForeignKeyConstraint(["generated_by_id"], ["accounts.id"], name=op.f("fk_accounts_generated_by_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_index(op.f("ix_accounts_registration_id"), "accounts", ["registration_id"])
    op.create_index(
        "uq_accounts_chamber_username", "accounts", ["chamber_id", "username"], unique=True,
        sqlite_where=sa.text("chamber_id IS NOT NULL"), postgresql_where=sa.text("chamber_id IS NOT NULL"),
    )
    op.create_index(
        "uq_accounts_naccs_username", "accounts", ["username"], unique=True,
        sqlite_where=sa.text("chamber_id IS NULL"), postgresql_where=sa.text("chamber_id IS NULL"),
    )
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=True),
        sa.Column("leased_until", UTCDateTime(), nullable=True),
        sa.Column("last_started_at", UTCDateTime(), nullable=True),
        sa.Column("last_finished_at", UTCDateTime(), nullable=True),
        sa.Column("last_status", sa.String(16), nullable=True),
        sa.Column("last_message", sa.String(2000), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_leases")),
    )


def downgrade() -> None:
    op.drop_table("job_leases")
    op.drop_index("uq_accounts_naccs_username", table_name="accounts")
    op.drop_index("uq_accounts_chamber_username", table_name="accounts")
    op.drop_index(op.f("ix_accounts_registration_id"), table_name="accounts")
    op.drop_table("accounts")
    op.drop_index("uq_registration_memberships_open", table_name="registration_memberships")
    op.drop_index(op.f("ix_registration_memberships_registration_id"), table_name="registration_memberships")
    op.drop_table("registration_memberships")
    op.drop_index(op.f("ix_trade_registrations_chamber_id"), table_name="trade_registrations")
    op.drop_table("trade_registrations")
    op.drop_table("chambers")
