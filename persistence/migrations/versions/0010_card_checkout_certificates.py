"""Card checkout of approved applications (cart, payment items) and signed certificates.

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

from persistence.models import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "card_cart_items",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_card_cart_items_account_id_accounts")),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"], name=op.f("fk_card_cart_items_application_id_applications")),
        sa.PrimaryKeyConstraint("account_id", "application_id", name=op.f("pk_card_cart_items")),
    )
    op.create_table(
        "card_payment_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_payment_id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_card_payment_items_amount")),
        sa.ForeignKeyConstraint(["card_payment_id"], ["card_payments.id"], name=op.f("fk_card_payment_items_card_payment_id_card_payments")),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"], name=op.f("fk_card_payment_items_application_id_applications")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_payment_items")),
    )
    op.create_index(op.f("ix_card_payment_items_card_payment_id"), "card_payment_items", ["card_payment_id"])
    op.create_index(op.f("ix_card_payment_items_application_id"), "card_payment_items", ["application_id"])
    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("checkout_payment_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("content_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("signature", sa.String(128), nullable=True))
        batch.add_column(sa.Column("key_id", sa.String(32), nullable=True))
        batch.create_foreign_key(op.f("fk_applications_checkout_payment_id_card_payments"), "card_payments",
                                 ["checkout_payment_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("applications") as batch:
        batch.drop_constraint(op.f("fk_applications_checkout_payment_id_card_payments"), type_="foreignkey")
        for column in ("key_id", "signature", "content_hash", "checkout_payment_id"):
            batch.drop_column(column)
    op.drop_index(op.f("ix_card_payment_items_application_id"), table_name="card_payment_items")
    op.drop_index(op.f("ix_card_payment_items_card_payment_id"), table_name="card_payment_items")
    op.drop_table("card_payment_items")
    op.drop_table("card_cart_items")
