"""The lock-order checker (persistence/locks.py) accepts the order the use cases take and
refuses what could wait in a circle. No database: the checker reads only what the session
noted, so each case is the sequence of levels a use case takes, as the code takes it."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from persistence import locks


def _session() -> Session:
    return Session()


def test_submit_withdraw_and_hold_lock_the_application_then_write_the_coupon_account():
    session = _session()
    locks.note(session, "registration", [7])
    locks.note(session, "application", [41])
    locks.require_registration(session, 7, "a coupon debit")  # the ledger writes the balance, then the lots
    assert locks.holds(session, "coupon_account", 7)


def test_a_registration_is_never_locked_after_another_level():
    session = _session()
    locks.note(session, "registration", [1])
    locks.require_registration(session, 1, "a coupon credit")
    with pytest.raises(locks.LockOrderViolation):
        locks.note(session, "registration", [2])


def test_a_coupon_account_is_written_only_under_its_registration_lock():
    session = _session()
    locks.note(session, "registration", [1])
    with pytest.raises(locks.LockOrderViolation):
        locks.note(session, "coupon_account", [2])
    with pytest.raises(locks.LockOrderViolation):
        locks.require_registration(session, 2, "a coupon debit")


def test_withdrawal_from_the_chamber_goes_back_to_the_coupon_account_after_orders_and_card_payments():
    """退会: applications, the balance (a submitted one's coupon), the order, its pending
    count again, the card payments, and the refund's erasure of the balance last."""
    session = _session()
    locks.note(session, "registration", [3])
    locks.note(session, "application", [10, 11])
    locks.require_registration(session, 3, "a coupon return")
    locks.note(session, "purchase", [5])
    locks.require_registration(session, 3, "an order's cancellation")
    locks.note(session, "card_payment", [8])
    locks.note(session, "card_payment", [9])
    locks.require_registration(session, 3, "a coupon refund")
    locks.note(session, "record")


def test_a_card_settlement_credits_the_coupons_after_recording_the_notification():
    session = _session()
    locks.note(session, "registration", [3])
    locks.note(session, "purchase", [5])
    locks.note(session, "card_payment", [8])
    locks.note(session, "record")
    locks.require_registration(session, 3, "a coupon credit")
    locks.note(session, "counter")  # the statement numbers, last


def test_reconciliation_locks_every_registration_then_their_accounts_and_orders_in_id_order():
    session = _session()
    locks.note(session, "registration", [2, 9])
    locks.note(session, "coupon_account", [2, 9])
    locks.note(session, "purchase", [4, 6])
    locks.note(session, "record")
    with pytest.raises(locks.LockOrderViolation):
        locks.note(session, "coupon_account", [1])  # not held: its registration is not locked


def test_rows_of_one_level_are_taken_in_id_order_even_after_another_level():
    session = _session()
    locks.note(session, "registration", [1, 2])
    locks.note(session, "coupon_account", [2])
    locks.note(session, "application", [30])
    with pytest.raises(locks.LockOrderViolation):
        locks.note(session, "coupon_account", [1])


def test_nothing_but_counters_is_locked_after_a_counter():
    session = _session()
    locks.note(session, "registration", [1])
    locks.note(session, "counter")
    for level in ("coupon_account", "application", "purchase", "card_payment", "record"):
        with pytest.raises(locks.LockOrderViolation):
            locks.note(session, level, [1])
    with pytest.raises(locks.LockOrderViolation):
        locks.require_registration(session, 1, "a coupon credit")
    locks.note(session, "counter")
