"""A card statement printed again later uses the rules the record was priced under, kept in
the rules history — not what the files say by then (issue 13). Over HTTP, on SQLite and
PostgreSQL: an application paid by card, then a tax version decided that afternoon, in
force from the very day the fee was fixed."""

from __future__ import annotations

import httpx
from sqlalchemy import select, update

from persistence.models import Application, CardPayment
from tests.conftest import pdf_text
from tests.identity.test_subaccounts import as_user
from tests.payments.test_card_checkout import ADD, STATEMENTS, approved_card_application, checkout
from tests.payments.test_card_payments import GOOD, pay

EIGHT_PERCENT = """
  - effective_from: 2026-04-01
    source: "a tax revision decided on the day (test)"
    rows:
      - rate_percent: 8
        included: true
        rounding: floor
"""


async def test_a_statement_printed_again_keeps_the_tax_of_the_rules_that_fixed_the_fee(live, migrated, tmp_path):
    _, db = migrated
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    app_id = approved_card_application(live, signer, staff, invoiceNumber="TAX-1")
    assert live.graphql(ADD, {"ids": [app_id]}, headers=signer).json()["data"]["addToCardCart"]["errors"] == []
    started = checkout(live, signer)
    assert pay(started["paymentUrl"], GOOD).status_code == 200
    priced_under = live.services.rules.current.version
    async with db.read() as session:
        assert set((await session.scalars(select(Application.rules_version))).all()) - {None} == {priced_under}
        assert (await session.scalars(select(CardPayment.rules_version))).all() == [priced_under]

    tax = live.rules_dir / "tax.yaml"
    tax.write_text(tax.read_text(encoding="utf-8").rstrip("\n") + "\n" + EIGHT_PERCENT, encoding="utf-8")
    assert live.services.rules.reload().changed and live.services.rules.current.version != priced_under

    [statement] = live.graphql(STATEMENTS, {"m": "2026-04"}, headers=signer).json()["data"]["cardStatements"]
    assert (statement["amount"], statement["tax"]) == (1210, 110)  # 10 %, as when the fee was fixed
    text = pdf_text(tmp_path, httpx.get(statement["pdfUrl"], headers=signer).content, "statement.pdf")
    assert "110円" in text and "89円" not in text

    # a record from before the history names no version: the files in force on its date
    async with db.write() as session:
        await session.execute(update(Application).values(rules_version=None))
    [statement] = live.graphql(STATEMENTS, {"m": "2026-04"}, headers=signer).json()["data"]["cardStatements"]
    assert statement["tax"] == 89  # 1,210 × 8/108, floored


async def test_a_coupon_order_statement_printed_again_keeps_its_own_rules(live, tmp_path):
    from tests.payments.test_card_payments import card_start, purchase_node

    signer = as_user(live, "signer-2701000002")
    purchase = card_start(live, signer, lines=[{"productCode": "SINGLE", "quantity": 1}])
    assert pay(purchase_node(live, signer, purchase["id"])["paymentUrl"], GOOD).status_code == 200
    tax = live.rules_dir / "tax.yaml"
    tax.write_text(tax.read_text(encoding="utf-8").rstrip("\n") + "\n" + EIGHT_PERCENT, encoding="utf-8")
    assert live.services.rules.reload().changed
    url = purchase_node(live, signer, purchase["id"])["cardStatementPdfUrl"]
    text = pdf_text(tmp_path, httpx.get(url, headers=signer).content, "statement.pdf")
    assert "内 消費税額(10%)" in text and "110円" in text, text
