"""発行番号 of card statements (利用明細), issue 12: a coupon order's statement and an
application's never share a number — given as the payment settles, from one counter per
chamber and day, and guarded by one unique column. On SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from persistence import migrate
from persistence.models import CardPaymentItem, CardStatement
from tests.conftest import pdf_text
from tests.identity.test_subaccounts import as_user
from tests.payments.test_card_checkout import ADD, STATEMENTS, approved_card_application, checkout
from tests.payments.test_card_payments import GOOD, card_start, pay, purchase_node


async def _statement_numbers(db) -> dict[int | None, str]:
    """card payment item id (None: a coupon order's) → number."""
    async with db.read() as session:
        return dict((await session.execute(select(CardStatement.card_payment_item_id, CardStatement.number))).all())


async def test_a_coupon_statement_and_an_application_statement_never_share_a_number(live, migrated, tmp_path):
    _target, db = migrated
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    # card payment 1 (a coupon order) and card payment item 1 (an application) of one registration on
    # one day: "date + registration + id" gave both 20260401270100000200001
    purchase = card_start(live, signer)
    assert pay(purchase_node(live, signer, purchase["id"])["paymentUrl"], GOOD).status_code == 200
    apps = [approved_card_application(live, signer, staff, invoiceNumber=f"STMT-{i}") for i in (1, 2)]
    live.graphql(ADD, {"ids": apps}, headers=signer)
    assert pay(checkout(live, signer)["paymentUrl"], GOOD).status_code == 200

    numbers = await _statement_numbers(db)
    coupon = numbers[None]
    assert coupon == "20260401270100001"  # paid date, chamber 2701, the chamber's first of the day
    listed = live.graphql(STATEMENTS, {"m": "2026-04"}, headers=signer).json()["data"]["cardStatements"]
    assert sorted(s["statementNumber"] for s in listed) == ["20260401270100002", "20260401270100003"]
    assert sorted(numbers.values()) == ["20260401270100001", "20260401270100002", "20260401270100003"]
    pdf = httpx.get(purchase_node(live, signer, purchase["id"])["cardStatementPdfUrl"], headers=signer)
    assert f"発行番号: {coupon}" in pdf_text(tmp_path, pdf.content, "coupon-statement.pdf")

    # the database itself refuses a number given before, whatever the kind
    async with db.read() as session:
        item = await session.scalar(select(CardPaymentItem).order_by(CardPaymentItem.id))
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            session.add(CardStatement(number=coupon, card_payment_id=item.card_payment_id))


async def test_statements_paid_before_keep_their_printed_numbers_and_a_collision_is_resolved(live, migrated):
    """Migration 0018 numbers the statements already paid as they were shown; where an
    application's and a coupon order's collided, the coupon order's takes ``-2``."""
    _target, db = migrated
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    purchase = card_start(live, signer)
    assert pay(purchase_node(live, signer, purchase["id"])["paymentUrl"], GOOD).status_code == 200
    app = approved_card_application(live, signer, staff)
    live.graphql(ADD, {"ids": [app]}, headers=signer)
    assert pay(checkout(live, signer)["paymentUrl"], GOOD).status_code == 200

    await migrate.downgrade(db.engine, "0017")
    await migrate.upgrade(db.engine)
    assert await _statement_numbers(db) == {1: "20260401270100000200001", None: "20260401270100000200001-2"}
    listed = live.graphql(STATEMENTS, {"m": "2026-04"}, headers=signer).json()["data"]["cardStatements"]
    assert [s["statementNumber"] for s in listed] == ["20260401270100000200001"]
