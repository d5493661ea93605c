"""Card statement numbers unique across kinds; the sandbox gateway's attempt log (issue 12).

* ``card_statements``: the 発行番号 of every 利用明細 — one per paid application, one per
  paid coupon order — in one table with a unique number, so a coupon order's statement and
  an application's can no longer share one (both were "date + registration + an id", the
  ids from two tables). Statements already paid keep the number they were printed with;
  where an application's and a coupon order's collided, the coupon order's takes ``-2``.
* ``sandbox_gateway_attempts``: each card the sandbox tried to charge, declined or paid. A
  declined card no longer ends the hosted session, so a session may see several.

Revision ID: 0018
Revises: 0017
"""
import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

from persistence.models import UTCDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

TOKYO = ZoneInfo("Asia/Tokyo")
ORDER_ONLY = sa.text("card_payment_item_id IS NULL")


def upgrade() -> None:
    op.create_table(
        "card_statements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("card_payment_id", sa.Integer(), nullable=False),
        sa.Column("card_payment_item_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["card_payment_id"], ["card_payments.id"],
                                name=op.f("fk_card_statements_card_payment_id_card_payments")),
        sa.ForeignKeyConstraint(["card_payment_item_id"], ["card_payment_items.id"],
                                name=op.f("fk_card_statements_card_payment_item_id_card_payment_items")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_statements")),
        sa.UniqueConstraint("number", name=op.f("uq_card_statements_number")),
        sa.UniqueConstraint("card_payment_item_id", name=op.f("uq_card_statements_card_payment_item_id")),
    )
    op.create_index(op.f("ix_card_statements_card_payment_id"), "card_statements", ["card_payment_id"])
    op.create_index("uq_card_statements_order_payment", "card_statements", ["card_payment_id"], unique=True,
                    sqlite_where=ORDER_ONLY, postgresql_where=ORDER_ONLY)
    op.create_table(
        "sandbox_gateway_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("attempted_at", UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("decline_code", sa.String(32), nullable=True),
        sa.Column("brand", sa.String(24), nullable=True),
        sa.Column("last4", sa.String(4), nullable=False),
        sa.CheckConstraint("outcome IN ('PAID', 'DECLINED')", name=op.f("ck_sandbox_gateway_attempts_outcome")),
        sa.ForeignKeyConstraint(["session_id"], ["sandbox_gateway_sessions.id"],
                                name=op.f("fk_sandbox_gateway_attempts_session_id_sandbox_gateway_sessions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_gateway_attempts")),
    )
    op.create_index(op.f("ix_sandbox_gateway_attempts_session_id"), "sandbox_gateway_attempts", ["session_id"])
    _number_paid_statements()


def _number_paid_statements() -> None:
    """The numbers statements already paid were shown with (computed then from the row ids)."""
    bind = op.get_bind()
    payments = sa.table("card_payments", sa.column("id", sa.Integer()), sa.column("status", sa.String()),
                        sa.column("purchase_id", sa.Integer()), sa.column("registration_id", sa.Integer()),
                        sa.column("closed_at", UTCDateTime()))
    items = sa.table("card_payment_items", sa.column("id", sa.Integer()), sa.column("card_payment_id", sa.Integer()),
                     sa.column("application_id", sa.Integer()))
    applications = sa.table("applications", sa.column("id", sa.Integer()), sa.column("registration_id", sa.Integer()))
    purchases = sa.table("coupon_purchases", sa.column("id", sa.Integer()), sa.column("paid_at", UTCDateTime()))
    registrations = sa.table("trade_registrations", sa.column("id", sa.Integer()), sa.column("number", sa.String()))
    statements = sa.table("card_statements", sa.column("number", sa.String()), sa.column("card_payment_id", sa.Integer()),
                          sa.column("card_payment_item_id", sa.Integer()))

    def day(at: dt.datetime) -> str:
        return f"{at.astimezone(TOKYO):%Y%m%d}"

    rows: list[dict[str, object]] = []
    taken: set[str] = set()
    for item_id, payment_id, closed_at, number in bind.execute(
            sa.select(items.c.id, payments.c.id, payments.c.closed_at, registrations.c.number)
            .join(payments, payments.c.id == items.c.card_payment_id)
            .join(applications, applications.c.id == items.c.application_id)
            .join(registrations, registrations.c.id == applications.c.registration_id)
            .where(payments.c.status == "PAID", payments.c.closed_at.is_not(None)).order_by(items.c.id)):
        statement = f"{day(closed_at)}{number}{item_id:05d}"
        taken.add(statement)
        rows.append({"number": statement, "card_payment_id": payment_id, "card_payment_item_id": item_id})
    for payment_id, paid_at, number in bind.execute(
            sa.select(payments.c.id, purchases.c.paid_at, registrations.c.number)
            .join(purchases, purchases.c.id == payments.c.purchase_id)
            .join(registrations, registrations.c.id == payments.c.registration_id)
            .where(payments.c.status == "PAID", purchases.c.paid_at.is_not(None)).order_by(payments.c.id)):
        statement = f"{day(paid_at)}{number}{payment_id:05d}"
        if statement in taken:  # the collision this migration ends: the application's number stays
            statement += "-2"
        taken.add(statement)
        rows.append({"number": statement, "card_payment_id": payment_id, "card_payment_item_id": None})
    if rows:
        bind.execute(statements.insert(), rows)


def downgrade() -> None:
    op.drop_index(op.f("ix_sandbox_gateway_attempts_session_id"), table_name="sandbox_gateway_attempts")
    op.drop_table("sandbox_gateway_attempts")
    op.drop_index("uq_card_statements_order_payment", table_name="card_statements")
    op.drop_index(op.f("ix_card_statements_card_payment_id"), table_name="card_statements")
    op.drop_table("card_statements")
