"""The scheduler under faults, on SQLite and PostgreSQL: a failing database does not stop
it (it logs, backs off, goes on), /readyz?jobs and /metrics name a job that is overdue,
and a nightly run killed with SIGKILL is redone once its lease expires — once."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from persistence.models import BankDeposit, CouponPurchase, JobLease, Refund
from resolvers.core.clock import TOKYO, FixedClock
from resolvers.core.context import Services
from resolvers.core.settings import Settings
from resolvers.coupons.reconciliation import CHUNK
from rules.runtime import RulesRuntime
from tests.conftest import RULES_DIR, settings_for, start_server, tokyo
from tradecert import jobs
from tradecert.composition import build_services

TRADECERT = str(Path(sys.executable).parent / "tradecert")


def services_for(db, clock) -> Services:
    return build_services(settings=Settings.from_env({}), db=db, rules=RulesRuntime(RULES_DIR), clock=clock)


async def lease_of(db, name: str) -> JobLease | None:
    async with db.read() as session:
        return await session.scalar(select(JobLease).where(JobLease.name == name))


async def eventually(check, seconds: float = 30, what: str = "condition"):
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def rename(db, old: str, new: str) -> None:
    async with db.write() as session:
        await session.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


# --------------------------------------------------------------------------- item 7


async def test_the_scheduler_survives_a_failing_database_and_readyz_names_the_overdue_job(migrated, rules_copy, caplog):
    target, db = migrated
    caplog.set_level(logging.INFO, logger="tradecert.jobs")
    clock = FixedClock(tokyo(2026, 4, 1, 12, 0))
    server = await asyncio.to_thread(start_server, settings_for(target.url, rules_copy), clock, target.schema)
    scheduler = asyncio.create_task(jobs.run_schedule(services_for(db, clock), tick=0.02))
    try:
        async def card_expiry_ran():
            lease = await lease_of(db, "card-session-expiry")
            return lease is not None and lease.last_finished_at is not None

        await eventually(card_expiry_ran, what="the first run of card-session-expiry")
        await rename(db, "job_leases", "job_leases_away")  # every job's lease is now out of reach
        clock.advance(dt.timedelta(minutes=4))  # card-session-expiry (every 30 s, lease 2 min) misses its runs
        await asyncio.sleep(0.5)
        for _ in range(3):  # further tries, each after its back-off
            clock.advance(dt.timedelta(seconds=40))
            await asyncio.sleep(0.3)
        assert not scheduler.done(), f"the scheduler stopped: {scheduler.exception()!r}"
        failures = [r for r in caplog.records if r.name == "tradecert.jobs" and r.levelno >= logging.ERROR
                    and "card-session-expiry" in r.getMessage()]
        assert len(failures) >= 2, [r.getMessage() for r in caplog.records]
        assert all(r.exc_info for r in failures)  # logged with the traceback
        assert "job_leases" in "".join(str(r.exc_info[1]) for r in failures)

        await rename(db, "job_leases_away", "job_leases")  # the database is back; the clock stands still
        with server.client() as client:
            overdue = client.get("/readyz", params={"jobs": ""})
            plain = client.get("/readyz")
            metrics = client.get("/metrics").text
        assert overdue.status_code == 503
        body = overdue.json()
        assert "card-session-expiry" in body["overdueJobs"]
        assert body["jobs"]["card-session-expiry"]["overdue"] is True
        assert body["jobs"]["card-session-expiry"]["lastSuccess"] == "2026-04-01T12:00:00+09:00"
        assert plain.status_code == 200 and "card-session-expiry" in plain.json()["overdueJobs"]
        assert 'tradecert_job_overdue{job="card-session-expiry"} 1.0' in metrics
        assert 'tradecert_job_last_success_timestamp_seconds{job="card-session-expiry"}' in metrics

        waited = {"since": time.monotonic()}

        async def recovered():
            if time.monotonic() - waited["since"] > 1:  # past any back-off (a first try may still fail)
                clock.advance(dt.timedelta(minutes=6))
                waited["since"] = time.monotonic()
            with server.client() as client:
                answer = client.get("/readyz", params={"jobs": ""})
            return answer if answer.status_code == 200 else None

        answer = await eventually(recovered, what="the scheduler to recover")
        assert answer.json()["overdueJobs"] == [] and answer.json()["jobs"]["card-session-expiry"]["overdue"] is False
        with server.client() as client:
            assert 'tradecert_job_overdue{job="card-session-expiry"} 0.0' in client.get("/metrics").text
        assert not scheduler.done()
    finally:
        await stop(scheduler)
        await asyncio.to_thread(server.stop)


async def test_a_failed_daily_run_is_retried_after_its_lease_not_at_every_tick(migrated):
    _target, db = migrated
    clock = FixedClock(tokyo(2026, 4, 1, 2, 0))
    services = services_for(db, clock)
    tries = []

    async def flaky(_services):
        tries.append(clock.now())
        if len(tries) == 1:
            raise RuntimeError("bank file not there yet")
        return "done"

    job = jobs.Job("test-nightly", "", flaky, every=dt.timedelta(hours=24), lease=dt.timedelta(minutes=10),
                   daily_at=dt.time(2, 0))
    assert await jobs.daily_due(services, job, clock.now())
    assert (await jobs.run_job(services, job, unless_done_since=tokyo(2026, 4, 1, 2, 0))).status == "failed"
    clock.advance(dt.timedelta(minutes=5))
    assert not await jobs.daily_due(services, job, clock.now())  # not hammered at every tick
    clock.advance(dt.timedelta(minutes=6))
    assert await jobs.daily_due(services, job, clock.now())  # a failed run is not the day's run
    assert (await jobs.run_job(services, job, unless_done_since=tokyo(2026, 4, 1, 2, 0))).status == "ok"
    clock.set(tokyo(2026, 4, 1, 23, 0))
    assert not await jobs.daily_due(services, job, clock.now())
    assert len(tries) == 2


# --------------------------------------------------------------------------- item 8


def _require_faketime() -> str:
    found = shutil.which("faketime")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("faketime (libfaketime) is not installed; .ci/run installs it")
        pytest.skip("faketime (libfaketime) is not installed: apt-get install faketime")
    return found


DEPOSITS = 6 * CHUNK  # enough chunks that the run is still going when it is killed


async def test_a_nightly_run_killed_mid_way_is_redone_after_its_lease_and_only_once(live, migrated, tmp_path):
    from resolvers.coupons.ledger import audit_ledger
    from tests.coupons.test_purchases import start
    from tests.identity.test_subaccounts import as_user

    faketime = _require_faketime()
    target, db = migrated
    order = start(live, as_user(live, "signer-2701000002"))["purchase"]
    account = order["virtualAccount"]["accountNumber"]
    lines = ["account_number,amount,deposited_on,payer_name,deposit_id", f"{account},71390,2026-04-02,ｶｺｶﾞﾜ,d-0"]
    lines += [f"{account},1000,2026-04-02,ｶｺｶﾞﾜ,d-{i}" for i in range(1, DEPOSITS)]  # paid again: owed back
    statement = tmp_path / "statement.csv"
    statement.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {**os.environ, "TRADECERT_DATABASE_URL": target.url, "TRADECERT_DATABASE_SCHEMA": target.schema or "",
           "TRADECERT_RULES_DIR": str(live.rules_dir), "COLUMNS": "200", "TZ": "UTC"}
    imported = subprocess.run([TRADECERT, "bank", "import", "--no-reconcile", str(statement)], env=env,
                              capture_output=True, text=True, timeout=300)
    assert imported.returncode == 0, imported.stderr

    async def processed() -> int:
        async with db.read() as session:
            return await session.scalar(select(func.count()).select_from(BankDeposit).where(BankDeposit.processed_at.is_not(None)))

    # 02:00 in Tokyo on 2026-04-02: the nightly run starts, and is killed once its first chunks are in
    nightly = subprocess.Popen([faketime, "-f", "@2026-04-01 17:00:00", TRADECERT, "jobs", "run", "bank-reconciliation"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)  # faketime forks: kill its process group
    try:
        async def mid_run():
            assert nightly.poll() is None, f"the run ended before it was killed: {nightly.communicate()[0]}"
            return await processed() > 0

        await eventually(mid_run, seconds=120, what="the nightly run's first chunk")
    finally:
        os.killpg(nightly.pid, signal.SIGKILL)
        nightly.wait()
    killed_at = await processed()
    lease = await lease_of(db, "bank-reconciliation")
    assert CHUNK <= killed_at < DEPOSITS and lease.leased_until is not None  # killed mid-run, lease left behind
    crashed_start = lease.last_started_at
    assert crashed_start.astimezone(TOKYO).date() == dt.date(2026, 4, 2)

    clock = FixedClock(tokyo(2026, 4, 2, 2, 5))
    scheduler = asyncio.create_task(jobs.run_schedule(services_for(db, clock), tick=0.02))
    try:
        await asyncio.sleep(0.5)
        assert (await lease_of(db, "bank-reconciliation")).last_started_at == crashed_start  # its lease still holds

        clock.set(tokyo(2026, 4, 2, 2, 11))  # the lease has expired: the next tick runs it again

        async def redone():
            lease = await lease_of(db, "bank-reconciliation")
            return lease.last_status == "ok" and lease.last_started_at == clock.now()

        try:
            await eventually(redone, seconds=60, what="the nightly run to be redone")
        except AssertionError:
            lease = await lease_of(db, "bank-reconciliation")
            raise AssertionError(f"not redone: {lease.__dict__}, processed {await processed()}, "
                                 f"scheduler {scheduler}") from None
        for later in (tokyo(2026, 4, 2, 2, 40), tokyo(2026, 4, 2, 12, 0), tokyo(2026, 4, 2, 23, 59)):
            clock.set(later)
            await asyncio.sleep(0.3)
            lease = await lease_of(db, "bank-reconciliation")
            assert lease.last_started_at == tokyo(2026, 4, 2, 2, 11)  # done for the day: not again
        clock.set(tokyo(2026, 4, 3, 2, 0))

        async def next_night():
            return (await lease_of(db, "bank-reconciliation")).last_started_at == tokyo(2026, 4, 3, 2, 0)

        await eventually(next_night, what="the next night's run")
    finally:
        await stop(scheduler)
    assert await processed() == DEPOSITS
    async with db.read() as session:
        status = await session.scalar(select(CouponPurchase.status).where(CouponPurchase.order_number == order["orderNumber"]))
        refunds = await session.scalar(select(func.count()).select_from(Refund))
        problems = await audit_ledger(session)
    assert status == "ISSUED" and refunds == DEPOSITS - 1 and problems == []  # exactly once, nothing stuck
