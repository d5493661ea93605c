"""Jobs run under a lease, so two hosts never run the same job at once."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from persistence.models import JobLease
from resolvers.context import Services
from rules.runtime import RulesRuntime
from tests.conftest import RULES_DIR, tokyo
from tradecert import jobs
from tradecert.clock import FixedClock
from tradecert.settings import Settings


def services_for(db, clock) -> Services:
    return Services(settings=Settings.from_env({}), db=db, rules=RulesRuntime(RULES_DIR), clock=clock)


async def test_a_job_runs_once_when_two_hosts_start_it_together(migrated):
    _target, db = migrated
    clock = FixedClock(tokyo(2026, 4, 1, 2, 0))
    runs = []
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(_services):
        runs.append(1)
        started.set()
        await release.wait()
        return "did it"

    job = jobs.Job("test-slow", "a slow job", slow, every=dt.timedelta(hours=1))
    first = asyncio.create_task(jobs.run_job(services_for(db, clock), job))
    await started.wait()
    second = await jobs.run_job(services_for(db, clock), job)  # "another host"
    release.set()
    outcome = await first
    assert (outcome.status, second.status) == ("ok", "skipped")
    assert runs == [1]
    again = await jobs.run_job(services_for(db, clock), job)  # lease released: runs again
    assert again.status == "ok" and runs == [1, 1]


async def test_a_failing_job_is_recorded_and_its_lease_released(migrated):
    _target, db = migrated
    clock = FixedClock(tokyo(2026, 4, 1, 2, 0))

    async def broken(_services):
        raise ValueError("no bank file")

    job = jobs.Job("test-broken", "fails", broken, every=dt.timedelta(hours=1))
    outcome = await jobs.run_job(services_for(db, clock), job)
    assert outcome.status == "failed" and "no bank file" in outcome.message
    async with db.read() as session:
        lease = await session.scalar(select(JobLease).where(JobLease.name == "test-broken"))
    assert lease.leased_until is None and lease.last_status == "failed"


async def test_an_expired_lease_of_a_crashed_host_is_taken_over(migrated):
    _target, db = migrated
    clock = FixedClock(tokyo(2026, 4, 1, 2, 0))

    async def quick(_services):
        return "ok"

    job = jobs.Job("test-crash", "", quick, every=dt.timedelta(hours=1), lease=dt.timedelta(minutes=5))
    async with db.write() as session:
        session.add(JobLease(name="test-crash", holder="dead-host", leased_until=clock.now() + dt.timedelta(minutes=5)))
    assert (await jobs.run_job(services_for(db, clock), job)).status == "skipped"
    clock.advance(dt.timedelta(minutes=6))
    assert (await jobs.run_job(services_for(db, clock), job)).status == "ok"


async def test_a_daily_job_runs_once_a_day_from_its_tokyo_time(migrated):
    _target, db = migrated
    clock = FixedClock(tokyo(2026, 4, 1, 1, 59))
    services = services_for(db, clock)
    job = jobs.JOBS["bank-reconciliation"]
    assert job.daily_at == dt.time(2, 0)
    assert not await jobs.daily_due(services, job, clock.now())
    clock.set(tokyo(2026, 4, 1, 2, 0))
    assert await jobs.daily_due(services, job, clock.now())
    assert (await jobs.run_job(services, job)).status == "ok"
    clock.set(tokyo(2026, 4, 1, 23, 0))
    assert not await jobs.daily_due(services, job, clock.now())  # done today, whichever host did it
    clock.set(tokyo(2026, 4, 2, 1, 0))
    assert not await jobs.daily_due(services, job, clock.now())
    clock.set(tokyo(2026, 4, 2, 9, 30))  # the server was down at 02:00: it catches up
    assert await jobs.daily_due(services, job, clock.now())
