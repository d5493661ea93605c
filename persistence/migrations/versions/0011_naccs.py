"""NACCS support system: offices, user IDs, logical terminals, applications, notices.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

from persistence.models import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "naccs_offices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("contact_name", sa.String(100), nullable=False),
        sa.Column("contact_email", sa.String(254), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_naccs_offices_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_naccs_offices")),
        sa.UniqueConstraint("account_id", name=op.f("uq_naccs_offices_account_id")),
    )
    op.create_table(
        "naccs_applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("receipt_number", sa.String(12), nullable=False),
        sa.Column("desired_date", sa.Date(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("contact", sa.String(2000), nullable=False),
        sa.Column("details", sa.String(8000), nullable=False),
        sa.Column("clarification", sa.String(2000), nullable=True),
        sa.Column("password_viewable_until", sa.Date(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("submitted_at", UTCDateTime(), nullable=False),
        sa.Column("approved_at", UTCDateTime(), nullable=True),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('USER_CODE_ADDITION', 'CERTIFICATE_REISSUE')", name=op.f("ck_naccs_applications_kind")),
        sa.CheckConstraint("state IN ('SUBMITTED', 'CLARIFICATION_REQUESTED', 'APPROVED', 'COMPLETED', 'WITHDRAWN')",
                           name=op.f("ck_naccs_applications_state")),
        sa.ForeignKeyConstraint(["office_id"], ["naccs_offices.id"], name=op.f("fk_naccs_applications_office_id_naccs_offices")),
        sa.ForeignKeyConstraint(["created_by_id"], ["accounts.id"], name=op.f("fk_naccs_applications_created_by_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_naccs_applications")),
        sa.UniqueConstraint("receipt_number", name=op.f("uq_naccs_applications_receipt_number")),
    )
    op.create_index(op.f("ix_naccs_applications_office_id"), "naccs_applications", ["office_id"])
    op.create_index(op.f("ix_naccs_applications_state"), "naccs_applications", ["state"])
    op.create_table(
        "naccs_user_ids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=False),
        sa.Column("user_code", sa.String(5), nullable=False),
        sa.Column("identification_number", sa.String(3), nullable=False),
        sa.Column("industries", sa.String(400), nullable=False),
        sa.Column("single_sign_on", sa.Boolean(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=True),
        sa.Column("password_encrypted", sa.String(400), nullable=True),
        sa.Column("password_destroyed_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["office_id"], ["naccs_offices.id"], name=op.f("fk_naccs_user_ids_office_id_naccs_offices")),
        sa.ForeignKeyConstraint(["application_id"], ["naccs_applications.id"], name=op.f("fk_naccs_user_ids_application_id_naccs_applications")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_naccs_user_ids")),
    )
    op.create_index(op.f("ix_naccs_user_ids_office_id"), "naccs_user_ids", ["office_id"])
    op.create_index("uq_naccs_user_ids_code", "naccs_user_ids", ["user_code", "identification_number"], unique=True)
    op.create_table(
        "naccs_terminals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(20), nullable=False),
        sa.Column("area", sa.String(10), nullable=False),
        sa.Column("equipment", sa.String(40), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["office_id"], ["naccs_offices.id"], name=op.f("fk_naccs_terminals_office_id_naccs_offices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_naccs_terminals")),
        sa.UniqueConstraint("name", name=op.f("uq_naccs_terminals_name")),
    )
    op.create_index(op.f("ix_naccs_terminals_office_id"), "naccs_terminals", ["office_id"])
    op.create_table(
        "naccs_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("category", sa.String(20), nullable=False),
        sa.Column("message", sa.String(1000), nullable=False),
        sa.ForeignKeyConstraint(["office_id"], ["naccs_offices.id"], name=op.f("fk_naccs_notices_office_id_naccs_offices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_naccs_notices")),
    )
    op.create_index(op.f("ix_naccs_notices_office_id"), "naccs_notices", ["office_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_naccs_notices_office_id"), table_name="naccs_notices")
    op.drop_table("naccs_notices")
    op.drop_index(op.f("ix_naccs_terminals_office_id"), table_name="naccs_terminals")
    op.drop_table("naccs_terminals")
    op.drop_index("uq_naccs_user_ids_code", table_name="naccs_user_ids")
    op.drop_index(op.f("ix_naccs_user_ids_office_id"), table_name="naccs_user_ids")
    op.drop_table("naccs_user_ids")
    op.drop_index(op.f("ix_naccs_applications_state"), table_name="naccs_applications")
    op.drop_index(op.f("ix_naccs_applications_office_id"), table_name="naccs_applications")
    op.drop_table("naccs_applications")
    op.drop_table("naccs_offices")
