"""DateTimes go out in Tokyo time (+09:00) and name the instant the database holds, on
SQLite (which keeps no offset) and PostgreSQL alike; as input any offset is accepted."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from persistence.models import CouponPurchase
from schema import sdl
from schema.scalars import parse_datetime, serialize_datetime
from tests.identity.test_subaccounts import as_user

START = """mutation { startCouponPurchase(input: {lines: [{productCode: "SINGLE", quantity: 1}], method: CARD}) {
  purchase { id orderedAt expiresAt } errors { code } } }"""
NODE = "query($id: ID!) { node(id: $id) { ... on CouponPurchase { orderedAt expiresAt paidAt } } }"


async def test_a_timestamp_reads_back_as_the_stored_instant_in_tokyo_time(live, migrated):
    _target, db = migrated
    live.clock.set(dt.datetime(2026, 4, 1, 16, 30, 15, 250000, tzinfo=dt.UTC))  # 01:30 on 2 April in Tokyo
    signer = as_user(live, "signer-2701000002")
    started = live.graphql(START, headers=signer).json()["data"]["startCouponPurchase"]
    assert started["errors"] == []
    purchase = started["purchase"]
    assert purchase["orderedAt"] == "2026-04-02T01:30:15.250000+09:00"
    assert purchase["expiresAt"] == "2026-04-02T01:35:15.250000+09:00"  # the card page's 5 minutes
    read = live.graphql(NODE, {"id": purchase["id"]}, headers=signer).json()["data"]["node"]
    assert read == {"orderedAt": purchase["orderedAt"], "expiresAt": purchase["expiresAt"], "paidAt": None}
    async with db.read() as session:
        row = await session.scalar(select(CouponPurchase).where(CouponPurchase.ordered_at.is_not(None))
                                   .order_by(CouponPurchase.id.desc()).limit(1))
    assert row is not None
    assert dt.datetime.fromisoformat(read["orderedAt"]) == row.ordered_at == dt.datetime(2026, 4, 1, 16, 30, 15, 250000, tzinfo=dt.UTC)
    assert dt.datetime.fromisoformat(read["expiresAt"]) == row.expires_at


def test_any_instant_is_written_with_the_tokyo_offset():
    assert serialize_datetime(dt.datetime(2026, 11, 24, 1, 15, tzinfo=dt.UTC)) == "2026-11-24T10:15:00+09:00"
    new_york = dt.timezone(dt.timedelta(hours=-5))
    assert serialize_datetime(dt.datetime(2026, 11, 23, 20, 15, tzinfo=new_york)) == "2026-11-24T10:15:00+09:00"
    # naive values come from the database, which stores UTC
    assert serialize_datetime(dt.datetime(2026, 11, 24, 1, 15)) == "2026-11-24T10:15:00+09:00"  # noqa: DTZ001


@pytest.mark.parametrize("text", ["2026-11-24T10:15:00+09:00", "2026-11-24T01:15:00Z", "2026-11-24T01:15:00+00:00",
                                  "2026-11-23T20:15:00-05:00"])
def test_an_input_instant_may_carry_any_offset(text):
    assert parse_datetime(text) == dt.datetime(2026, 11, 24, 1, 15, tzinfo=dt.UTC)


@pytest.mark.parametrize("value", ["2026-11-24T10:15:00", "yesterday", 20261124, None])
def test_an_input_without_an_instant_is_refused(value):
    with pytest.raises(ValueError):
        parse_datetime(value)


def test_the_schema_says_datetimes_are_in_tokyo_time():
    text = sdl()
    description = text[:text.index("scalar DateTime")].rsplit('"""', 2)[-2]
    assert "+09:00" in description and "Asia/Tokyo" in description
