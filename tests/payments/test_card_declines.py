"""A declined card on the sandbox's hosted page (issue 12): the page says why and takes
another card until the window closes; the order or the checkout stays open, and closes
only on a charge, a cancellation or the window's end. Over real HTTP, on SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json

import httpx
from sqlalchemy import func, select

from persistence.models import CardNotification, CardPayment, CouponEntry, SandboxGatewayAttempt
from tests.coupons.test_purchases import ACCOUNT
from tests.identity.test_subaccounts import as_user
from tests.invariants import money_problems
from tests.payments.test_card_checkout import ADD, CART, STATEMENTS, approved_card_application, checkout, node
from tests.payments.test_card_payments import (
    DECLINED,
    GOOD,
    _post_notification,
    card_start,
    pay,
    purchase_node,
)

NO_MONEY = {**GOOD, "card_number": "4000000000009995"}
CANCEL = "mutation($id: ID!) { cancelCouponPurchase(input: {purchaseId: $id}) { purchase { status } errors { code } } }"


def coupons(live, headers) -> tuple[int, int]:
    account = live.graphql(ACCOUNT, headers=headers).json()["data"]["couponAccount"]
    return account["balance"], account["pending"]


async def test_a_declined_card_then_a_good_one_in_the_same_session_pays_once(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    purchase = card_start(live, signer)
    url = purchase_node(live, signer, purchase["id"])["paymentUrl"]

    declined = pay(url, NO_MONEY)
    assert declined.status_code == 402
    assert 'data-code="PAYMENT_DECLINED"' in declined.text and 'data-reason="insufficient_funds"' in declined.text
    assert "ご利用可能額を超えています" in declined.text and "別のカードでお支払いいただけます" in declined.text
    # the form again, for another card: what was typed stays, the card number never comes back
    assert 'name="card_number"' in declined.text and 'value="ICHIRO NISSHO"' in declined.text
    assert NO_MONEY["card_number"] not in declined.text
    node_now = purchase_node(live, signer, purchase["id"])
    assert node_now["status"] == "AWAITING_PAYMENT" and node_now["paymentUrl"] == url
    assert coupons(live, signer) == (0, 2)
    assert httpx.get(url).status_code == 200

    again = pay(url, DECLINED)
    assert again.status_code == 402 and 'data-reason="card_declined"' in again.text
    done = pay(url, GOOD)
    assert done.status_code == 200 and 'data-code="PAID"' in done.text
    assert purchase_node(live, signer, purchase["id"])["status"] == "ISSUED"
    assert coupons(live, signer) == (2, 0)
    shown = pay(url, GOOD)  # the page now says it is paid; nothing is charged twice
    assert shown.status_code == 200 and "この決済は完了しています" in shown.text

    async with db.read() as session:
        attempts = (await session.execute(select(SandboxGatewayAttempt.outcome, SandboxGatewayAttempt.decline_code,
                                                 SandboxGatewayAttempt.last4).order_by(SandboxGatewayAttempt.id))).all()
        assert [tuple(a) for a in attempts] == [("DECLINED", "insufficient_funds", "9995"),
                                                ("DECLINED", "card_declined", "0002"), ("PAID", None, "1111")]
        assert (await session.scalars(select(CardNotification.kind))).all() == ["charge.succeeded"]
        assert (await session.scalar(select(CardPayment.status))) == "PAID"
        assert await session.scalar(select(func.count()).select_from(CouponEntry)) == 1
    assert await money_problems(db) == []


async def test_a_declined_card_then_the_buyers_cancellation_closes_the_order(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    purchase = card_start(live, signer)
    url = purchase_node(live, signer, purchase["id"])["paymentUrl"]
    assert pay(url, DECLINED).status_code == 402
    cancelled = live.graphql(CANCEL, {"id": purchase["id"]}, headers=signer).json()["data"]["cancelCouponPurchase"]
    assert cancelled == {"purchase": {"status": "CANCELLED"}, "errors": []}
    late = pay(url, GOOD)
    assert late.status_code == 410 and 'data-code="SESSION_CLOSED"' in late.text
    assert coupons(live, signer) == (0, 0)
    async with db.read() as session:
        assert (await session.scalar(select(CardPayment.status))) == "CANCELLED"
    assert card_start(live, signer)["status"] == "AWAITING_PAYMENT"  # the registration may order again
    assert await money_problems(db) == []


async def test_a_declined_card_then_the_window_end_cancels_the_order_by_the_job(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    purchase = card_start(live, signer)
    url = purchase_node(live, signer, purchase["id"])["paymentUrl"]
    assert pay(url, DECLINED).status_code == 402
    live.clock.advance(dt.timedelta(minutes=5, seconds=1))
    late = pay(url, GOOD)
    assert late.status_code == 410 and 'data-code="SESSION_EXPIRED"' in late.text
    assert (await live.run_job("card-session-expiry")).message == "1 card session(s) expired"
    node_now = purchase_node(live, signer, purchase["id"])
    assert node_now["status"] == "CANCELLED" and "有効期限切れ" in node_now["cancelReason"]
    assert coupons(live, signer) == (0, 0)
    assert await money_problems(db) == []


async def test_a_providers_declined_event_is_recorded_once_and_leaves_the_payment_open(live, migrated):
    """A provider that tells the merchant of each refused card (Stripe's payment_failed)."""
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    purchase = card_start(live, signer)
    async with db.read() as session:
        reference = await session.scalar(select(CardPayment.reference))
    event = json.dumps({"id": "evt_declined", "type": "charge.declined", "reference": reference, "amount": 2420,
                        "brand": "VISA", "last4": "0002", "at": live.clock.now().isoformat()}).encode()
    assert _post_notification(live, event).json()["outcome"] == "declined"
    assert _post_notification(live, event).json()["outcome"] == "duplicate"
    assert purchase_node(live, signer, purchase["id"])["status"] == "AWAITING_PAYMENT"
    assert pay(purchase_node(live, signer, purchase["id"])["paymentUrl"], GOOD).status_code == 200
    assert purchase_node(live, signer, purchase["id"])["status"] == "ISSUED"
    async with db.read() as session:
        outcomes = (await session.execute(select(CardNotification.kind, CardNotification.outcome)
                                          .order_by(CardNotification.id))).all()
    assert [tuple(o) for o in outcomes] == [("charge.declined", "declined"), ("charge.succeeded", "paid")]


def test_a_declined_checkout_keeps_its_applications_until_a_good_card_pays_them(live):
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    app = approved_card_application(live, signer, staff)
    live.graphql(ADD, {"ids": [app]}, headers=signer)
    url = checkout(live, signer)["paymentUrl"]
    assert pay(url, DECLINED).status_code == 402
    cart = live.graphql(CART, headers=signer).json()["data"]["cardCart"]
    assert cart["payable"] == [] and cart["lastCheckout"] == {"status": "OPEN", "failure": None, "amount": 1210}
    assert node(live, signer, app)["state"] == "APPROVED"
    assert pay(url, GOOD).status_code == 200
    assert node(live, signer, app)["state"] == "ISSUED"
    statements = live.graphql(STATEMENTS, {"m": "2026-04"}, headers=signer).json()["data"]["cardStatements"]
    assert [s["amount"] for s in statements] == [1210]


async def test_a_declined_checkout_lets_its_applications_go_when_the_window_ends(live):
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    app = approved_card_application(live, signer, staff)
    live.graphql(ADD, {"ids": [app]}, headers=signer)
    url = checkout(live, signer)["paymentUrl"]
    assert pay(url, DECLINED).status_code == 402
    live.clock.advance(dt.timedelta(minutes=6))
    assert (await live.run_job("card-session-expiry")).message == "1 card session(s) expired"
    signer = as_user(live, "signer-2701000002")
    cart = live.graphql(CART, headers=signer).json()["data"]["cardCart"]
    assert [a["id"] for a in cart["payable"]] == [app] and cart["lastCheckout"]["failure"] == "SESSION_EXPIRED"
    assert pay(url, GOOD).status_code == 410
