"""TEMPORARY (model helper's reproduction; deleted after use)."""
from sqlalchemy import select

from persistence.models import CouponAccount, Refund, TradeRegistration
from tests.test_applications import HOLD, act, create
from tests.test_purchases import deposit, start
from tests.test_subaccounts import as_user

LEAVE = """mutation($n: String!) { withdrawTradeRegistration(input: {registrationNumber: $n}) { refunds { amount reason } errors { code } } }"""


async def test_a_coupon_given_back_after_withdrawal_is_stranded(live, migrated):
    _target, db = migrated
    signer, staff = as_user(live, "signer-2701000003"), as_user(live, "staff-2701")
    order = start(live, signer, lines=[{"productCode": "SINGLE", "quantity": 2}])["purchase"]
    assert deposit(live, staff, order["virtualAccount"]["accountNumber"], order["amount"], "d-1")["errors"] == []
    assert (await live.run_job("bank-reconciliation")).status == "ok"
    app = create(live, signer)["application"]
    assert act(live, signer, "submitApplication", app["id"])["application"]["state"] == "SUBMITTED"
    left = live.graphql(LEAVE, {"n": "2701000003"}, headers=staff).json()["data"]["withdrawTradeRegistration"]
    print("withdrawal:", left)
    held = live.graphql(HOLD, {"id": app["id"], "r": "確認"}, headers=staff).json()["data"]["holdApplication"]
    print("hold after withdrawal:", held["errors"], held["application"] and held["application"]["state"])
    async with db.read() as session:
        reg = await session.scalar(select(TradeRegistration).where(TradeRegistration.number == "2701000003"))
        balance = await session.scalar(select(CouponAccount.balance).where(CouponAccount.registration_id == reg.id))
        refunds = [(r.amount, r.reason) for r in (await session.scalars(select(Refund).where(Refund.registration_id == reg.id))).all()]
    print("balance after:", balance, "refunds:", refunds, "order amount:", order["amount"])
    assert balance == 0, "a coupon paid for sits in a withdrawn registration: neither usable nor refunded"


async def test_a_card_order_cancelled_by_withdrawal_can_still_be_paid(live, migrated):
    from tests.test_card_payments import GOOD, pay
    _target, db = migrated
    signer, staff = as_user(live, "signer-2701000003"), as_user(live, "staff-2701")
    START = """mutation { startCouponPurchase(input: {lines: [{productCode: "SINGLE", quantity: 2}], method: CARD}) {
      purchase { id paymentUrl } errors { code } } }"""
    order = live.graphql(START, headers=signer).json()["data"]["startCouponPurchase"]["purchase"]
    left = live.graphql(LEAVE, {"n": "2701000003"}, headers=staff).json()["data"]["withdrawTradeRegistration"]
    print("withdrawal:", left)
    page = pay(order["paymentUrl"], GOOD)
    print("pay after withdrawal:", page.status_code, "PAID" in page.text)
    async with db.read() as session:
        from persistence.models import CardPayment, CouponPurchase
        p = await session.scalar(select(CouponPurchase))
        c = await session.scalar(select(CardPayment))
        refunds = [(r.amount, r.reason) for r in (await session.scalars(select(Refund))).all()]
    print("order", p.status, "card", c.status, "refunds", refunds)
    assert page.status_code != 200
