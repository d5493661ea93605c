"""Issue 20: a refund deducts a pack's discount once for every pack that still has unused
coupons — not once per purchase line — whichever way the lot came in (bank transfer, card)
and whichever way it goes (membership change, 退会). Over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from persistence import locks
from resolvers.coupons import ledger
from tests.coupons.test_coupons_api import SET_MEMBERSHIP
from tests.coupons.test_ledger import registration_id
from tests.coupons.test_purchases import CHECK, deposit, start
from tests.identity.test_subaccounts import as_user
from tests.payments.test_card_payments import GOOD, card_start, pay, purchase_node

SINGLE, DEDUCTION = 1210, 1210  # eco-payment-2026: 1枚 1,210円; a pack is sold one coupon cheaper
WITHDRAW = """mutation($n: String!) { withdrawTradeRegistration(input: {registrationNumber: $n, reason: "廃業"}) {
  refunds { amount } errors { code field } } }"""


async def test_two_packs_bought_in_one_line_by_transfer_refund_two_deductions_on_a_membership_change(live):
    signer = as_user(live, "signer-2701000002")
    staff = as_user(live, "staff-2701")
    purchase = start(live, signer, lines=[{"productCode": "SINGLE", "quantity": 1},
                                          {"productCode": "PACK30", "quantity": 2}])["purchase"]
    assert purchase["amount"] == 71_390  # 1,210 + 2 × 35,090
    deposit(live, staff, purchase["virtualAccount"]["accountNumber"], 71_390, "INQ-PACKS")
    checked = live.graphql(CHECK, {"id": purchase["id"]}, headers=staff).json()["data"]["checkPurchasePayment"]
    assert checked["purchase"]["status"] == "ISSUED"

    changed = live.graphql(SET_MEMBERSHIP, {"n": "2701000002", "m": "NON_MEMBER"}, headers=staff).json()["data"]["setMembership"]
    assert changed["errors"] == []
    # the single, and 2 × (30 × 1,210 − 1,210) = 70,180 for the two packs (not 72,600 − 1,210 = 71,390)
    assert [r["amount"] for r in changed["refunds"]] == [SINGLE + 70_180]
    assert (await live.run_job("ledger-audit")).status == "ok"


async def test_a_partly_used_three_pack_card_lot_deducts_for_the_two_packs_left_on_withdrawal(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    staff = as_user(live, "staff-2701")
    purchase = card_start(live, signer, lines=[{"productCode": "PACK30", "quantity": 3}])
    assert pay(purchase_node(live, signer, purchase["id"])["paymentUrl"], GOOD).status_code == 200
    assert purchase_node(live, signer, purchase["id"])["status"] == "ISSUED"
    reg = await registration_id(db)
    async with db.write() as session:  # 31 used, oldest first: the first pack is gone, the second has 29 left
        await locks.registration(session, reg)
        await ledger.debit(session, registration_id=reg, coupons=31, kind="USE", key="use:31", now=live.clock.now())

    done = live.graphql(WITHDRAW, {"n": "2701000002"}, headers=staff).json()["data"]["withdrawTradeRegistration"]
    assert done["errors"] == []
    # 59 unused in 2 packs: 59 × 1,210 − 2 × 1,210 = 68,970 (one deduction would give 70,180)
    assert [r["amount"] for r in done["refunds"]] == [59 * SINGLE - 2 * DEDUCTION]
    assert (await live.run_job("ledger-audit")).status == "ok"
