"""Coupon accounts and the chamber's operations over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from persistence import locks
from persistence.models import CouponEntry
from resolvers.coupons import ledger
from tests.coupons.test_ledger import buy, registration_id
from tests.identity.test_subaccounts import as_user

ADJUST = """mutation($n: String!, $c: Int!, $r: String!) { adjustCoupons(input: {registrationNumber: $n, coupons: $c, reason: $r}) {
  account { balance pending registration { number } } errors { code field } } }"""
ACCOUNT = """query($n: String) { couponAccount(registrationNumber: $n) { balance pending registration { number }
  history(first: 10) { totalCount edges { node { kind coupons balanceAfter note actor { username } } } } } }"""
SET_MEMBERSHIP = """mutation($n: String!, $m: Membership!) { setMembership(input: {registrationNumber: $n, membership: $m}) {
  registration { number membership } refunds { id amount reason paidAt registration { number } } errors { code field } } }"""


def test_chamber_staff_add_and_remove_coupons_with_a_reason(live):
    staff = as_user(live, "staff-2701")
    added = live.graphql(ADJUST, {"n": "2701000002", "c": 5, "r": "システム障害のお詫び"}, headers=staff).json()["data"]["adjustCoupons"]
    assert added == {"account": {"balance": 5, "pending": 0, "registration": {"number": "2701000002"}}, "errors": []}
    removed = live.graphql(ADJUST, {"n": "2701000002", "c": -2, "r": "誤付与の訂正"}, headers=staff).json()["data"]["adjustCoupons"]
    assert removed["account"]["balance"] == 3
    signer = as_user(live, "signer-2701000002")
    seen = live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]
    assert seen["balance"] == 3 and seen["history"]["totalCount"] == 2
    assert [(e["node"]["kind"], e["node"]["coupons"], e["node"]["balanceAfter"], e["node"]["actor"]["username"])
            for e in seen["history"]["edges"]] == [("CHAMBER_OPERATION", -2, 3, "staff-2701"), ("CHAMBER_OPERATION", 5, 5, "staff-2701")]


async def test_bad_adjustments_get_user_errors_and_write_nothing(live, migrated):
    _target, db = migrated
    staff = as_user(live, "staff-2701")
    cases = [
        ({"n": "2701000002", "c": 0, "r": "x"}, [("INVALID", ["input", "coupons"])]),
        ({"n": "2701000002", "c": 10_000_000, "r": "x"}, [("INVALID", ["input", "coupons"])]),
        ({"n": "2701000002", "c": 1, "r": " "}, [("REQUIRED", ["input", "reason"])]),
        ({"n": "2701000099", "c": 1, "r": "x"}, [("NOT_FOUND", ["input", "registrationNumber"])]),
        ({"n": "2701000004", "c": 1, "r": "x"}, [("INVALID", ["input", "registrationNumber"])]),  # agents hold no coupons
        ({"n": "2701000002", "c": -1, "r": "x"}, [("INSUFFICIENT_COUPONS", ["input", "coupons"])]),
    ]
    for variables, expected in cases:
        errors = live.graphql(ADJUST, variables, headers=staff).json()["data"]["adjustCoupons"]["errors"]
        assert [(e["code"], e["field"]) for e in errors] == expected, variables
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(CouponEntry)) == 0


def test_who_sees_and_changes_coupon_accounts(live):
    def code(response):
        return response.json()["errors"][0]["extensions"]["code"]

    admin = as_user(live, "admin-2701000002")
    signer = as_user(live, "signer-2701000002")
    other = as_user(live, "signer-2701000003")
    assert code(live.graphql(ACCOUNT, headers=admin)) == "FORBIDDEN"  # the admin ID handles no coupons
    assert code(live.graphql(ACCOUNT, {"n": "2701000002"}, headers=other)) == "FORBIDDEN"
    assert code(live.graphql(ADJUST, {"n": "2701000002", "c": 5, "r": "x"}, headers=signer)) == "FORBIDDEN"
    assert live.graphql(ACCOUNT, {"n": "2701000002"}, headers=as_user(live, "staff-2701")).json()["data"]["couponAccount"]["balance"] == 0


async def test_a_membership_change_refunds_unused_coupons_per_lot_and_staff_mark_it_paid(live, migrated):
    _target, db = migrated
    reg = await registration_id(db)
    await buy(db, reg, "old-pack", "PACK30", 30, dt.date(2026, 3, 15), 31900)
    await buy(db, reg, "new-pack", "PACK30", 30, dt.date(2026, 4, 1), 35090)
    async with db.write() as session:
        await locks.registration(session, reg)
        await ledger.debit(session, registration_id=reg, coupons=35, kind="USE", key="use:bulk", now=live.clock.now())
    staff = as_user(live, "staff-2701")
    changed = live.graphql(SET_MEMBERSHIP, {"n": "2701000002", "m": "NON_MEMBER"}, headers=staff).json()["data"]["setMembership"]
    assert changed["errors"] == [] and changed["registration"] == {"number": "2701000002", "membership": "NON_MEMBER"}
    [refund] = changed["refunds"]
    assert refund["amount"] == 25 * 1210 - 1210  # the old pack was used up first; 25 of the new pack remain
    assert refund["paidAt"] is None and refund["registration"]["number"] == "2701000002"
    signer = as_user(live, "signer-2701000002")
    assert live.graphql(ACCOUNT, headers=signer).json()["data"]["couponAccount"]["balance"] == 0
    fees = live.graphql('{ feeSchedule { applicationFee(membership: NON_MEMBER) } }').json()
    assert fees["data"]["feeSchedule"]["applicationFee"] == 3630
    same = live.graphql(SET_MEMBERSHIP, {"n": "2701000002", "m": "NON_MEMBER"}, headers=staff).json()["data"]["setMembership"]
    assert same["errors"] == [] and same["refunds"] == []
    unpaid = live.graphql("{ refunds(paid: false) { id amount rulesVersions rulesVersion } }", headers=staff).json()["data"]["refunds"]
    # the lots name a version that never went live here ("test"): refunded under the rules in force
    current = live.services.rules.current.version
    assert unpaid == [{"id": refund["id"], "amount": refund["amount"], "rulesVersions": [current], "rulesVersion": current}]
    mark = """mutation($id: ID!) { markRefundPaid(input: {refundId: $id}) { refund { paidAt } errors { code } } }"""
    assert live.graphql(mark, {"id": refund["id"]}, headers=staff).json()["data"]["markRefundPaid"]["refund"]["paidAt"]
    assert live.graphql(mark, {"id": refund["id"]}, headers=staff).json()["data"]["markRefundPaid"]["errors"] == [{"code": "INVALID_STATE"}]
    assert live.graphql("{ refunds(paid: false) { id } }", headers=staff).json()["data"]["refunds"] == []
    outcome = await live.run_job("ledger-audit")
    assert outcome.status == "ok", outcome


async def test_withdrawal_refunds_unused_coupons_and_ends_the_registrations_logins(live, migrated):
    from tests.coupons.test_purchases import start
    from tests.identity.test_identity_sessions import login

    _target, db = migrated
    reg = await registration_id(db)
    await buy(db, reg, "new-pack", "PACK30", 30, dt.date(2026, 4, 1), 35090)
    signer = as_user(live, "signer-2701000002")
    order = start(live, signer, lines=[{"productCode": "SINGLE", "quantity": 1}])["purchase"]
    staff = as_user(live, "staff-2701")
    withdraw = """mutation($n: String!) { withdrawTradeRegistration(input: {registrationNumber: $n, reason: "廃業"}) {
      registration { number validUntil } refunds { amount reason } errors { code field } } }"""
    done = live.graphql(withdraw, {"n": "2701000002"}, headers=staff).json()["data"]["withdrawTradeRegistration"]
    assert done["errors"] == [] and done["registration"] == {"number": "2701000002", "validUntil": "2026-04-01"}
    assert [r["amount"] for r in done["refunds"]] == [30 * 1210 - 1210] and "退会" in done["refunds"][0]["reason"]
    assert live.graphql("{ me { username } }", headers=signer).json()["data"]["me"] is None  # sessions ended
    assert login(live, "signer-2701000002")["errors"][0]["code"] == "INVALID_CREDENTIALS"  # and no new ones
    again = live.graphql(withdraw, {"n": "2701000002"}, headers=staff).json()["data"]["withdrawTradeRegistration"]
    assert again["errors"] == [{"code": "INVALID_STATE", "field": ["input", "registrationNumber"]}]
    seen = live.graphql('{ couponAccount(registrationNumber: "2701000002") { balance pending purchases { edges { node { orderNumber status cancelReason } } } } }',
                        headers=staff).json()["data"]["couponAccount"]
    assert (seen["balance"], seen["pending"]) == (0, 0)
    assert seen["purchases"]["edges"][0]["node"] == {"orderNumber": order["orderNumber"], "status": "CANCELLED", "cancelReason": "退会による取消"}
    assert live.graphql(withdraw, {"n": "2701000003"}, headers=as_user(live, "signer-2701000003")).json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await live.run_job("ledger-audit")).status == "ok"
