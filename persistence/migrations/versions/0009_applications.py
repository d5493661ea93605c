"""Applications (発給申請), their goods lines, and named counters.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

from persistence.models import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("agent_registration_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("signer_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("signature_kind", sa.String(40), nullable=True),
        sa.Column("destination_country", sa.String(2), nullable=False),
        sa.Column("goods_category", sa.String(100), nullable=False),
        sa.Column("invoice_number", sa.String(50), nullable=False),
        sa.Column("exporter_name", sa.String(200), nullable=False),
        sa.Column("consignee", sa.String(300), nullable=True),
        sa.Column("transport", sa.String(300), nullable=True),
        sa.Column("person_in_charge", sa.String(100), nullable=True),
        sa.Column("fee_payment", sa.String(8), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("receipt_number", sa.String(9), nullable=True),
        sa.Column("fee", sa.Integer(), nullable=True),
        sa.Column("fee_rules_version", sa.String(32), nullable=True),
        sa.Column("fee_membership", sa.String(16), nullable=True),
        sa.Column("submitted_at", UTCDateTime(), nullable=True),
        sa.Column("submitted_on", sa.Date(), nullable=True),
        sa.Column("coupon_uses", sa.Integer(), nullable=False),
        sa.Column("hold_reason", sa.String(1000), nullable=True),
        sa.Column("approved_at", UTCDateTime(), nullable=True),
        sa.Column("issued_at", UTCDateTime(), nullable=True),
        sa.Column("paid_by_id", sa.Integer(), nullable=True),
        sa.Column("certificate_number", sa.String(20), nullable=True),
        sa.Column("access_code", sa.String(16), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("state IN ('DRAFT', 'SUBMITTED', 'ON_HOLD', 'APPROVED', 'ISSUED', 'WITHDRAWN')", name=op.f("ck_applications_state")),
        sa.CheckConstraint("type IN ('ORIGIN_JAPANESE', 'ORIGIN_FOREIGN', 'INVOICE', 'SIGNATURE')", name=op.f("ck_applications_type")),
        sa.CheckConstraint("fee_payment IN ('CARD', 'COUPON')", name=op.f("ck_applications_fee_payment")),
        sa.CheckConstraint("state = 'DRAFT' OR receipt_number IS NOT NULL OR state = 'WITHDRAWN'", name=op.f("ck_applications_receipt")),
        sa.CheckConstraint("receipt_number IS NULL OR fee IS NOT NULL", name=op.f("ck_applications_fee_fixed")),
        sa.CheckConstraint("state <> 'ISSUED' OR certificate_number IS NOT NULL", name=op.f("ck_applications_issued_has_number")),
        sa.CheckConstraint("coupon_uses >= 0", name=op.f("ck_applications_coupon_uses")),
        sa.ForeignKeyConstraint(["registration_id"], ["trade_registrations.id"], name=op.f("fk_applications_registration_id_trade_registrations")),
        sa.ForeignKeyConstraint(["agent_registration_id"], ["trade_registrations.id"], name=op.f("fk_applications_agent_registration_id_trade_registrations")),
        sa.ForeignKeyConstraint(["created_by_id"], ["accounts.id"], name=op.f("fk_applications_created_by_id_accounts")),
        sa.ForeignKeyConstraint(["signer_id"], ["accounts.id"], name=op.f("fk_applications_signer_id_accounts")),
        sa.ForeignKeyConstraint(["paid_by_id"], ["accounts.id"], name=op.f("fk_applications_paid_by_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
        sa.UniqueConstraint("receipt_number", name=op.f("uq_applications_receipt_number")),
        sa.UniqueConstraint("certificate_number", name=op.f("uq_applications_certificate_number")),
    )
    op.create_index(op.f("ix_applications_registration_id"), "applications", ["registration_id"])
    op.create_index(op.f("ix_applications_created_by_id"), "applications", ["created_by_id"])
    op.create_index(op.f("ix_applications_invoice_number"), "applications", ["invoice_number"])
    op.create_index(op.f("ix_applications_state"), "applications", ["state"])
    op.create_table(
        "application_goods",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("quantity", sa.String(60), nullable=False),
        sa.Column("hs_code", sa.String(12), nullable=False),
        sa.Column("origin_country", sa.String(2), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"], name=op.f("fk_application_goods_application_id_applications")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_application_goods")),
    )
    op.create_index(op.f("ix_application_goods_application_id"), "application_goods", ["application_id"])
    op.create_table(
        "counters",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )


def downgrade() -> None:
    op.drop_table("counters")
    op.drop_index(op.f("ix_application_goods_application_id"), table_name="application_goods")
    op.drop_table("application_goods")
    for column in ("state", "invoice_number", "created_by_id", "registration_id"):
        op.drop_index(op.f(f"ix_applications_{column}"), table_name="applications")
    op.drop_table("applications")
