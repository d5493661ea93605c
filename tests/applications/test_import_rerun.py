"""Issue 20: ``tradecert applications import --submit`` run again (after a crash, or after the
coupons it lacked were bought) submits the rest and reports the lines an earlier run
submitted as already submitted — exit 0 once every line is submitted. An application the
chamber put on hold meanwhile is not submitted again behind the chamber's back. A real
process against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from persistence.models import Application as ApplicationRow
from tests.applications.test_bulk import HEADER, run_import
from tests.coupons.test_ledger import buy, registration_id

CARDS_AND_A_COUPON = HEADER + "".join(f"INVOICE,US,機械,CARD-{i},加古川自然食品株式会社,CARD,,,,,,,,,,,\n" for i in range(2)) \
    + "INVOICE,US,機械,COUPON-1,加古川自然食品株式会社,COUPON,,,,,,,,,,,\n"


async def states(db) -> list[str]:
    async with db.read() as session:
        return list((await session.scalars(select(ApplicationRow.state).order_by(ApplicationRow.id))).all())


async def test_a_second_run_reports_what_the_first_submitted_as_already_submitted(migrated, tmp_path):
    target, db = migrated
    path = tmp_path / "cards.csv"
    path.write_text(CARDS_AND_A_COUPON, encoding="utf-8")
    first = await asyncio.to_thread(run_import, target, path, "--as", "signer-2701000002", "--submit", "--language", "en")
    assert first.returncode == 3, first.stderr  # the coupon one: no coupons yet
    assert await states(db) == ["SUBMITTED", "SUBMITTED", "DRAFT"]

    await buy(db, await registration_id(db), "bought", "SINGLE", 1, dt.date(2026, 4, 1), 1210)
    again = await asyncio.to_thread(run_import, target, path, "--as", "signer-2701000002", "--submit", "--language", "en")
    assert again.returncode == 0, (again.stdout, again.stderr)
    assert "line 2: CARD-0 already submitted, receipt 000000001" in again.stdout
    assert "line 3: CARD-1 already submitted, receipt 000000002" in again.stdout
    assert "line 4: COUPON-1 submitted, receipt 000000003" in again.stdout
    assert "not submitted" not in again.stdout + again.stderr
    assert again.stdout.splitlines()[-1] == "submitted 1, already submitted 2"
    assert await states(db) == ["SUBMITTED", "SUBMITTED", "SUBMITTED"]

    done = await asyncio.to_thread(run_import, target, path, "--as", "signer-2701000002", "--submit")
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "submitted 0, already submitted 3"


async def test_an_application_put_on_hold_meanwhile_is_not_submitted_again(migrated, tmp_path):
    target, db = migrated
    path = tmp_path / "cards.csv"
    path.write_text(HEADER + "INVOICE,US,機械,CARD-0,加古川自然食品株式会社,CARD,,,,,,,,,,,\n", encoding="utf-8")
    first = await asyncio.to_thread(run_import, target, path, "--as", "signer-2701000002", "--submit", "--language", "en")
    assert first.returncode == 0, first.stderr
    async with db.write() as session:  # the chamber holds it (its reason is beside the point here)
        app = await session.scalar(select(ApplicationRow))
        assert app is not None
        app.state = "ON_HOLD"
    again = await asyncio.to_thread(run_import, target, path, "--as", "signer-2701000002", "--submit", "--language", "en")
    assert again.returncode == 3
    assert "line 2: CARD-0 not submitted again: on hold" in again.stderr.replace("\n", " ")
    assert await states(db) == ["ON_HOLD"]
