"""Coupon purchases by card through the sandbox gateway's hosted page, over real HTTP, on
SQLite and PostgreSQL: approve, bad input, the 5-minute session, signed and idempotent
notifications, late charges refunded, the payer-only 利用明細, mail on issue (declined
cards: test_card_declines.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading

import httpx
from sqlalchemy import func, select, update

from persistence.models import CardPayment, CouponEntry, CouponPurchase, Refund, SandboxGatewaySession, TradeRegistration
from resolvers.adapters.gateway import SIGNATURE_HEADER, brand_of, check_card, luhn_ok, sign
from tests.conftest import pdf_text
from tests.coupons.test_purchases import ACCOUNT, start
from tests.identity.test_subaccounts import as_user

PURCHASE = """query($id: ID!) { node(id: $id) { ... on CouponPurchase { status paymentUrl paidAt cancelReason
  cardStatementPdfUrl depositedAmount } } }"""
HISTORY = "{ couponAccount { balance pending history { edges { node { kind coupons purchase { orderNumber } } } } } }"
GOOD = {"card_number": "4111111111111111", "expiry_month": "12", "expiry_year": "2027", "holder": "ICHIRO NISSHO"}
DECLINED = {**GOOD, "card_number": "4000000000000002"}


def card_start(live, headers, lines=None, key=None):
    result = start(live, headers, lines=lines or [{"productCode": "SINGLE", "quantity": 2}], method="CARD", key=key)
    assert result["errors"] == [], result
    return result["purchase"]


def purchase_node(live, headers, purchase_id):
    return live.graphql(PURCHASE, {"id": purchase_id}, headers=headers).json()["data"]["node"]


def pay(url, card):
    return httpx.post(url, data=card, timeout=30)


async def test_a_card_order_is_paid_on_the_hosted_page_and_issued_at_once(live, migrated, tmp_path):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    purchase = card_start(live, signer, lines=[{"productCode": "SINGLE", "quantity": 1}, {"productCode": "PACK30", "quantity": 1}])
    assert purchase["virtualAccount"] is None
    assert purchase["expiresAt"] == "2026-04-01T10:05:00+09:00"  # 5 minutes (limits.yaml), in Tokyo time
    node = purchase_node(live, signer, purchase["id"])
    url = node["paymentUrl"]
    assert url.startswith(live.url + "/sandbox-gateway/pay/") and node["cardStatementPdfUrl"] is None
    page = httpx.get(url)
    assert page.status_code == 200 and "36,300円" in page.text and 'name="card_number"' in page.text
    assert live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]["pending"] == 31

    done = pay(url, GOOD)
    assert done.status_code == 200 and 'data-code="PAID"' in done.text
    node = purchase_node(live, signer, purchase["id"])
    assert node["status"] == "ISSUED" and node["paymentUrl"] is None and node["depositedAmount"] == 36300
    account = live.graphql(HISTORY, headers=signer).json()["data"]["couponAccount"]
    assert (account["balance"], account["pending"]) == (31, 0)
    assert sorted(e["node"]["coupons"] for e in account["history"]["edges"]) == [1, 30]
    assert all(e["node"]["purchase"]["orderNumber"] == purchase["orderNumber"] for e in account["history"]["edges"])
    async with db.read() as session:
        payment = await session.scalar(select(CardPayment))
    assert (payment.status, payment.brand, payment.last4) == ("PAID", "VISA", "1111")
    assert payment.payment_number == "20260401-2701000002-00001"

    # the mail on issue goes out over SMTP
    assert (await live.run_job("mail-delivery")).status == "ok"
    issued = [m for m in live.smtp.messages if "クーポン発行" in m["Subject"]]
    assert issued and issued[-1]["To"] == "zeiss@kakogawa.example" and "31 枚" in issued[-1].get_content()

    # 利用明細: only the account that paid sees the link and the PDF
    pdf_url = node["cardStatementPdfUrl"]
    assert pdf_url.endswith("/card-statement.pdf")
    other = as_user(live, "signer2-2701000002")
    assert purchase_node(live, other, purchase["id"])["cardStatementPdfUrl"] is None
    assert httpx.get(pdf_url, headers=other).status_code == 404
    assert httpx.get(pdf_url, headers=as_user(live, "staff-2701")).status_code == 404
    assert httpx.get(pdf_url).status_code == 401
    response = httpx.get(pdf_url, headers=signer)
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    text = pdf_text(tmp_path, response.content, "statement.pdf")
    for expected in ("利用明細", "日本商工会議所", "T5010005003975", "一括", "36,300円", "内 消費税額(10%)", "3,300円",
                     "大阪商工会議所", purchase["orderNumber"], "20260401-2701000002-00001", "****1111"):
        assert expected in text, expected


async def test_bad_card_input_is_shown_per_field_and_changes_nothing(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    purchase = card_start(live, signer)
    url = purchase_node(live, signer, purchase["id"])["paymentUrl"]
    cases = [
        ({"card_number": "4111-1111-1111-1111"}, "card_number"),  # hyphens
        ({"card_number": "4111111111111"}, "card_number"),  # 13 digits
        ({"card_number": "4111111111111112"}, "card_number"),  # check digit
        ({"card_number": "9111111111111111"}, "card_number"),  # no brand
        ({"expiry_month": "13"}, "expiry_month"),
        ({"expiry_month": "3", "expiry_year": "2026"}, "expiry_year"),  # expired (today is 2026-04-01)
        ({"holder": "日商 一郎"}, "holder"),
        ({"holder": ""}, "holder"),
    ]
    for change, field in cases:
        response = pay(url, {**GOOD, **change})
        assert response.status_code == 422 and f'data-field="{field}"' in response.text, (change, response.text[-600:])
        assert GOOD["card_number"] not in response.text
    assert purchase_node(live, signer, purchase["id"])["status"] == "AWAITING_PAYMENT"
    async with db.read() as session:
        assert (await session.scalar(select(SandboxGatewaySession.status))) == "OPEN"
    assert pay(url, GOOD).status_code == 200  # the session is still usable


def test_card_checks():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert brand_of("5555555555554444") == "Mastercard" and brand_of("3530111333300000") == "JCB"
    assert brand_of("378282246310005") == "American Express" and brand_of("30569309025904") == "Diners Club"
    assert brand_of("4111111111111") is None
    _values, errors = check_card({**GOOD, "card_number": "4111 1111 1111 1111"}, dt.date(2026, 4, 1))
    assert errors == {}  # spaces as printed on the card are fine


async def test_the_session_expires_five_minutes_after_it_starts(live, migrated):
    signer = as_user(live, "signer-2701000002")
    purchase = card_start(live, signer)
    url = purchase_node(live, signer, purchase["id"])["paymentUrl"]
    live.clock.advance(dt.timedelta(minutes=4, seconds=59))
    assert httpx.get(url).status_code == 200
    live.clock.advance(dt.timedelta(seconds=2))  # 5:01 after the start
    assert purchase_node(live, signer, purchase["id"])["paymentUrl"] is None
    late = pay(url, GOOD)
    assert late.status_code == 410 and 'data-code="SESSION_EXPIRED"' in late.text
    assert (await live.run_job("card-session-expiry")).message == "1 card session(s) expired"
    node = purchase_node(live, signer, purchase["id"])
    assert node["status"] == "CANCELLED" and "有効期限切れ" in node["cancelReason"]
    account = live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]
    assert (account["balance"], account["pending"]) == (0, 0)


async def test_an_expired_session_does_not_block_a_new_order_before_the_job_runs(live, migrated):
    signer = as_user(live, "signer-2701000002")
    first = card_start(live, signer)
    live.clock.advance(dt.timedelta(minutes=6))
    second = card_start(live, signer)
    assert purchase_node(live, signer, first["id"])["status"] == "CANCELLED"
    assert purchase_node(live, signer, second["id"])["status"] == "AWAITING_PAYMENT"


async def _notification(db) -> bytes:
    async with db.read() as session:
        return (await session.scalar(select(SandboxGatewaySession.notification))).encode()


def _post_notification(live, body: bytes, secret: str | None = None) -> httpx.Response:
    signature = sign(secret or live.services.settings.payment_secret, body, live.clock.now())
    return httpx.post(f"{live.url}/payments/notify", content=body,
                      headers={SIGNATURE_HEADER: signature, "content-type": "application/json"})


async def test_notifications_are_verified_and_replays_change_nothing(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    purchase = card_start(live, signer)
    assert pay(purchase_node(live, signer, purchase["id"])["paymentUrl"], GOOD).status_code == 200
    body = await _notification(db)
    assert _post_notification(live, body, secret="not-the-secret").status_code == 400
    unsigned = httpx.post(f"{live.url}/payments/notify", content=body, headers={"content-type": "application/json"})
    assert unsigned.status_code == 400

    # the provider retries the same event, many times at once: applied once
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def replay():
        barrier.wait()
        outcomes.append(_post_notification(live, body).json()["outcome"])

    threads = [threading.Thread(target=replay) for _ in range(6)]
    await asyncio.to_thread(lambda: ([t.start() for t in threads], [t.join() for t in threads]))
    assert outcomes == ["duplicate"] * 6
    account = live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]
    assert account["balance"] == 2
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(CouponEntry)) == 1

    # a second, different charge for a payment already paid is owed back, never applied
    event = json.loads(body)
    event.update(id="evt_second", chargeId="ch_second")
    assert _post_notification(live, json.dumps(event).encode()).json()["outcome"] == "refund_due"
    assert live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]["balance"] == 2
    async with db.read() as session:
        refund = await session.scalar(select(Refund))
    assert refund.amount == 2420 and "ch_second" in refund.reason


async def test_racing_first_deliveries_settle_once(live, migrated):
    """The gateway's first delivery and retries with different event ids race: one settles."""
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    purchase = card_start(live, signer)
    async with db.read() as session:
        reference = await session.scalar(select(CardPayment.reference))
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def deliver(i):
        event = {"id": f"evt_race_{i}", "type": "charge.succeeded", "reference": reference, "amount": 2420,
                 "chargeId": "ch_race", "brand": "VISA", "last4": "1111", "at": live.clock.now().isoformat()}
        barrier.wait()
        outcomes.append(_post_notification(live, json.dumps(event).encode()).json()["outcome"])

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(6)]
    await asyncio.to_thread(lambda: ([t.start() for t in threads], [t.join() for t in threads]))
    assert sorted(outcomes) == ["duplicate"] * 5 + ["paid"], outcomes
    assert live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]["balance"] == 2
    assert purchase_node(live, signer, purchase["id"])["status"] == "ISSUED"


async def test_a_charge_after_the_order_was_cancelled_is_owed_back(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    purchase = card_start(live, signer)
    url = purchase_node(live, signer, purchase["id"])["paymentUrl"]
    cancel = "mutation($id: ID!) { cancelCouponPurchase(input: {purchaseId: $id}) { purchase { status } errors { code } } }"
    assert live.graphql(cancel, {"id": purchase["id"]}, headers=signer).json()["data"]["cancelCouponPurchase"]["errors"] == []
    assert pay(url, GOOD).status_code == 410  # the hosted page closed with the order
    async with db.read() as session:
        payment = await session.scalar(select(CardPayment))
    assert payment.status == "CANCELLED"
    event = {"id": "evt_late", "type": "charge.succeeded", "reference": payment.reference, "amount": payment.amount,
             "chargeId": "ch_late", "brand": "VISA", "last4": "1111", "at": live.clock.now().isoformat()}
    assert _post_notification(live, json.dumps(event).encode()).json()["outcome"] == "refund_due"
    account = live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]
    assert (account["balance"], account["pending"]) == (0, 0)
    async with db.read() as session:
        assert (await session.scalar(select(Refund.amount))) == 2420


async def test_card_needs_the_registration_to_allow_it(live, migrated):
    _target, db = migrated
    async with db.write() as session:
        await session.execute(update(TradeRegistration).where(TradeRegistration.number == "2701000003").values(allows_card=False))
    result = start(live, as_user(live, "signer-2701000003"), lines=[{"productCode": "SINGLE", "quantity": 1}], method="CARD")
    assert result["errors"][0]["code"] == "METHOD_NOT_ALLOWED"
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(CouponPurchase)) == 0
        assert await session.scalar(select(func.count()).select_from(SandboxGatewaySession)) == 0


async def test_an_unacknowledged_event_is_sent_again_and_changes_nothing_twice(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    purchase = card_start(live, signer)
    assert pay(purchase_node(live, signer, purchase["id"])["paymentUrl"], GOOD).status_code == 200
    async with db.write() as session:  # as if the merchant had not answered the first delivery
        await session.execute(update(SandboxGatewaySession).values(delivered_at=None))
    assert (await live.run_job("card-notification-redelivery")).message == "1 notification(s) redelivered"
    assert (await live.run_job("card-notification-redelivery")).message == "0 notification(s) redelivered"
    assert live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]["balance"] == 2
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(CouponEntry)) == 1
