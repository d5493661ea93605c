"""Issue 10, items 1–3 and 10: use cases decide inside their one transaction, under the one
lock order, on SQLite and PostgreSQL, over real HTTP with real concurrency.

Each test reproduces what an attacker or a busy chamber did to the earlier code (a
corrupted ledger, a lost coupon, deadlocks, idempotency keys that lied) and checks the
invariants of ``tests/invariants.py`` afterwards."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from persistence import locks
from tests.applications.test_applications import ACTION, HOLD, create, give_coupons
from tests.coupons.test_coupons_api import SET_MEMBERSHIP
from tests.identity.test_subaccounts import as_user
from tests.invariants import money_problems

SUBMIT = ACTION.format(name="submitApplication", fields="state")
WITHDRAW = ACTION.format(name="withdrawApplication", fields="state")
HOLD_Q = HOLD


def _post(live, query, variables, headers):
    response = live.graphql(query, variables, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body  # no top-level error: never INTERNAL_SERVER_ERROR, never a deadlock
    return body["data"]


def _all_at_once(calls):
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def _codes(payload) -> list[str]:
    return [e["code"] for e in payload["errors"]]


async def _submitted_applications(live, signer, n):
    ids = []
    for _ in range(n):
        created = create(live, signer)
        assert created["errors"] == [], created
        ids.append(created["application"]["id"])
    results = await asyncio.to_thread(_all_at_once, [lambda i=i: _post(live, SUBMIT, {"id": i}, signer) for i in ids])
    assert all(r["submitApplication"]["errors"] == [] for r in results), results
    return ids


async def test_holds_racing_a_membership_change_keep_the_ledger_whole(live, migrated):
    """Item 1 (and 3): 20 holds and 10 resubmissions race a membership toggle, 4 rounds.
    The refund reads the lots only after the registration's lock, so it never writes over
    a coupon a hold gave back; use and give-back take locks in one order, so no deadlock."""
    _target, db = migrated
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    give_coupons(live, 40)
    ids = await _submitted_applications(live, signer, 30)
    memberships = ["NON_MEMBER", "MEMBER", "NON_MEMBER", "MEMBER"]
    for round_, membership in enumerate(memberships):
        live.clock.advance(dt.timedelta(minutes=1))
        give_coupons(live, 20)
        holding, resubmitting = ids[:20], ids[20:]
        calls = [lambda i=i, round_=round_: _post(live, HOLD_Q, {"id": i, "r": f"round {round_}"}, staff)["holdApplication"]
                 for i in holding]
        calls += [lambda i=i: _post(live, SUBMIT, {"id": i}, signer)["submitApplication"] for i in resubmitting]
        calls.append(lambda m=membership: _post(live, SET_MEMBERSHIP, {"n": "2701000002", "m": m}, staff)["setMembership"])
        results = await asyncio.to_thread(_all_at_once, calls)
        for payload in results:  # a resubmission may find no coupon (the toggle refunded them): that is a UserError
            assert set(_codes(payload)) <= {"INSUFFICIENT_COUPONS", "INVALID_STATE"}, payload
        assert await money_problems(db) == [], f"round {round_}"
        # the next round: what was held is submitted again (and vice versa)
        give_coupons(live, 30)
        again = await asyncio.to_thread(_all_at_once, [lambda i=i: _post(live, SUBMIT, {"id": i}, signer) for i in ids])
        assert all(set(_codes(r["submitApplication"])) <= {"INVALID_STATE"} for r in again), again
        ids = ids[10:] + ids[:10]
    assert await money_problems(db) == []


async def test_withdrawal_racing_a_resubmission_never_keeps_a_coupon(live, migrated):
    """Item 2: a held application is withdrawn by one signer while another resubmits it.
    Whichever wins, a WITHDRAWN application holds no coupon."""
    _target, db = migrated
    signer, signer2, staff = (as_user(live, u) for u in ("signer-2701000002", "signer2-2701000002", "staff-2701"))
    give_coupons(live, 60)
    ids = await _submitted_applications(live, signer, 20)
    held = await asyncio.to_thread(_all_at_once, [lambda i=i: _post(live, HOLD_Q, {"id": i, "r": "確認"}, staff) for i in ids])
    assert all(h["holdApplication"]["errors"] == [] for h in held)
    calls = []
    for i in ids:
        calls.append(lambda i=i: _post(live, WITHDRAW, {"id": i}, signer)["withdrawApplication"])
        calls.append(lambda i=i: _post(live, SUBMIT, {"id": i}, signer2)["submitApplication"])
    results = await asyncio.to_thread(_all_at_once, calls)
    assert all(set(_codes(r)) <= {"INVALID_STATE"} for r in results), results
    assert await money_problems(db) == []


async def test_the_lock_order_is_enforced_in_code(migrated):
    """Going back up the documented order is a bug the helpers refuse at once, on both
    databases — and a ledger change without its registration's lock is refused too."""
    from resolvers.coupons import ledger
    from tests.conftest import tokyo

    _target, db = migrated
    async with db.write() as tx:
        await locks.registration(tx, 1)
        await locks.applications(tx, [])
        with pytest.raises(locks.LockOrderViolation):
            await locks.registration(tx, 2)
    with pytest.raises(locks.LockOrderViolation):
        async with db.write() as tx:
            await ledger.credit(tx, registration_id=1, coupons=1, kind="CHAMBER_OPERATION", key="k", now=tokyo(2026, 4, 1),
                                acquired_on=tokyo(2026, 4, 1).date(), rules_version="v")


START = """mutation($lines: [CouponPurchaseLineInput!]!, $key: String, $method: PurchaseMethod!) {
  startCouponPurchase(input: {lines: $lines, method: $method, idempotencyKey: $key}) {
    purchase { id orderNumber coupons } errors { code field } } }"""


async def test_an_idempotency_key_answers_only_the_same_request(live, migrated):
    """Item 10: a key reused with another input is IDEMPOTENCY_KEY_REUSED (as Stripe does);
    concurrent retries with one key all get the first result, never PURCHASE_IN_PROGRESS."""
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    one = {"lines": [{"productCode": "SINGLE", "quantity": 2}], "key": "order-2026-04-01-a", "method": "BANK_TRANSFER"}
    retries = await asyncio.to_thread(_all_at_once, [lambda: _post(live, START, one, signer)["startCouponPurchase"]] * 8)
    assert all(r["errors"] == [] for r in retries), retries
    assert len({json.dumps(r["purchase"], sort_keys=True) for r in retries}) == 1
    other = {**one, "lines": [{"productCode": "SINGLE", "quantity": 3}]}
    refused = _post(live, START, other, signer)["startCouponPurchase"]
    assert refused == {"purchase": None, "errors": [{"code": "IDEMPOTENCY_KEY_REUSED", "field": ["input", "idempotencyKey"]}]}
    card = {**one, "method": "CARD"}
    assert _codes(_post(live, START, card, signer)["startCouponPurchase"]) == ["IDEMPOTENCY_KEY_REUSED"]
    assert await money_problems(db) == []


async def test_signed_notifications_that_cannot_apply_are_recorded_as_rejected(live, migrated):
    """Item 12: a negative or absurd amount, an over-long charge id, a NUL, a non-text
    field — signed, so the provider would retry a 5xx for ever: acknowledged as rejected,
    recorded once, nothing applied."""
    from sqlalchemy import func, select

    from persistence.models import CardNotification, CardPayment, CouponEntry
    from tests.payments.test_card_payments import _post_notification, card_start

    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    card_start(live, signer)
    async with db.read() as session:
        payment = await session.scalar(select(CardPayment))
    good = {"id": "evt_x", "type": "charge.succeeded", "reference": payment.reference, "amount": payment.amount,
            "chargeId": "ch_x", "brand": "VISA", "last4": "1111"}
    hostile = [{"amount": -2420}, {"amount": 10**30}, {"amount": 2420.5}, {"amount": "2420"}, {"chargeId": "c" * 500},
               {"chargeId": "ch\u0000x"}, {"reference": ["x"]}, {"id": "e" * 300}, {"id": None}, {"brand": {"a": 1}}]
    for i, change in enumerate(hostile):
        event = {**good, "id": f"evt_hostile_{i}", **change}
        response = _post_notification(live, json.dumps(event).encode())
        assert (response.status_code, response.json()["outcome"]) == (200, "rejected"), change
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(CardNotification)
                                    .where(CardNotification.outcome == "rejected")) == len(hostile)
        assert await session.scalar(select(func.count()).select_from(CouponEntry)) == 0
        assert (await session.scalar(select(CardPayment.status))) == "OPEN"
    assert await money_problems(db) == []


ACCOUNT_OF = "query($n: String) { couponAccount(registrationNumber: $n) { balance registration { number } } }"


async def test_coupon_account_answers_every_kind_of_viewer_with_a_code(live, migrated):
    """Item 12: chamber staff without a number, NACCS accounts, an unknown or overlong
    number — each a top-level error with a code, never INTERNAL_SERVER_ERROR."""

    from tests.identity.test_identity_sessions import bearer, login

    def code_of(username, number=None):
        chamber = None if username.startswith("naccs") else "2701"
        headers = bearer(login(live, username, chamber=chamber)["token"])
        body = live.graphql(ACCOUNT_OF, {"n": number}, headers=headers).json()
        return body["errors"][0]["extensions"]["code"] if body.get("errors") else body["data"]["couponAccount"]

    assert code_of("staff-2701") == "REQUIRED"
    assert code_of("staff-2701", "2701999999") == "NOT_FOUND"
    assert code_of("staff-2701", "9" * 5000) == "NOT_FOUND"
    assert code_of("staff-2701", "2701000002") == {"balance": 0, "registration": {"number": "2701000002"}}
    assert code_of("naccs-demo") == "FORBIDDEN"
    assert code_of("naccs-center") == "FORBIDDEN"
    assert code_of("signer-2701000002", "2701000003") == "FORBIDDEN"


LEAVE = """mutation($n: String!) { withdrawTradeRegistration(input: {registrationNumber: $n, reason: "廃業"}) {
  refunds { amount } errors { code } } }"""


async def test_withdrawal_from_the_chamber_ends_open_applications_and_card_sessions(live, migrated):
    """Found by the concurrent model test: after 退会 a submitted application could still be
    held, giving its coupon back to a registration nobody can use or refund; and the card
    page of an order cancelled by 退会 still took the card. Now 退会 withdraws the open
    applications (the submitted one's coupon is refunded with the rest) and closes every
    open card session."""
    from sqlalchemy import select

    from persistence.models import CardPayment, CouponEntry
    from tests.payments.test_card_payments import GOOD, card_start, pay, purchase_node

    _target, db = migrated
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    give_coupons(live, 3)
    [submitted] = await _submitted_applications(live, signer, 1)
    draft = create(live, signer)["application"]["id"]
    purchase = card_start(live, signer)
    url = purchase_node(live, signer, purchase["id"])["paymentUrl"]

    left = _post(live, LEAVE, {"n": "2701000002"}, staff)["withdrawTradeRegistration"]
    assert left["errors"] == []
    hold = _post(live, HOLD_Q, {"id": submitted, "r": "退会後"}, staff)["holdApplication"]
    assert _codes(hold) == ["INVALID_STATE"]
    assert pay(url, GOOD).status_code == 410  # the hosted page closed with the order
    async with db.read() as session:
        assert (await session.scalar(select(CardPayment.status))) == "CANCELLED"
        erased = await session.scalar(select(CouponEntry.coupons).where(CouponEntry.kind == "REFUND"))
    assert erased == -3  # all three coupons, the submitted one's included (chamber additions refund 0 yen)
    from persistence.models import Application
    from schema.identity import from_global_id

    async with db.read() as session:
        states = {a.id: a.state for a in (await session.scalars(select(Application))).all()}
    assert states[from_global_id(submitted)[1]] == "WITHDRAWN" and states[from_global_id(draft)[1]] == "WITHDRAWN"
    assert await money_problems(db) == []
