"""Issue 20: 退会 (withdrawTradeRegistration) withdraws the registration's approved card
applications that were never paid — waiting in no checkout or in an open one — with the rest,
in the same transaction. Over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from persistence.models import Application, CardPayment
from tests.identity.test_subaccounts import as_user
from tests.payments.test_card_checkout import ADD, approved_card_application, checkout, node

WITHDRAW = """mutation($n: String!) { withdrawTradeRegistration(input: {registrationNumber: $n, reason: "廃業"}) {
  errors { code field } } }"""


async def test_withdrawal_withdraws_approved_unpaid_card_applications(live, migrated):
    _target, db = migrated
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    waiting = approved_card_application(live, signer, staff, invoiceNumber="CARD-WAIT")
    in_checkout = approved_card_application(live, signer, staff, invoiceNumber="CARD-CHECKOUT")
    other = approved_card_application(live, as_user(live, "signer-2701000003"), staff, invoiceNumber="CARD-OTHER")
    assert live.graphql(ADD, {"ids": [in_checkout]}, headers=signer).json()["data"]["addToCardCart"]["errors"] == []
    assert checkout(live, signer)["errors"] == []

    done = live.graphql(WITHDRAW, {"n": "2701000002"}, headers=staff).json()["data"]["withdrawTradeRegistration"]
    assert done["errors"] == []
    assert node(live, staff, waiting)["state"] == "WITHDRAWN"
    assert node(live, staff, in_checkout)["state"] == "WITHDRAWN"
    assert node(live, staff, other)["state"] == "APPROVED"  # another registration's stays payable
    async with db.read() as session:
        held = (await session.scalars(select(Application.checkout_payment_id).where(
            Application.invoice_number.in_(["CARD-WAIT", "CARD-CHECKOUT"])))).all()
        payment = await session.scalar(select(CardPayment))
    assert held == [None, None] and payment is not None and payment.status == "CANCELLED"
