"""Jobs run under a lease, so two hosts never run the same job at once."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from persistence.models import JobLease
from resolvers.core.clock import FixedClock
from resolvers.core.context import Services
from resolvers.core.settings import Settings
from rules.runtime import RulesRuntime
from tests.conftest import RULES_DIR, tokyo
from tradecert import jobs
from tradecert.composition import JOBS, build_services


def services_for(db, clock) -> Services:
    return build_services(settings=Settings.from_env({}), db=db, rules=RulesRuntime(RULES_DIR), clock=clock)


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
    job = JOBS["bank-reconciliation"]
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


async def test_a_daily_run_is_not_repeated_by_a_host_that_saw_it_due_before_it_finished(migrated):
    _target, db = migrated
    clock = FixedClock(tokyo(2026, 4, 1, 2, 0))
    services = services_for(db, clock)
    runs = []

    async def nightly(_services):
        runs.append(clock.now())
        return "done"

    job = jobs.Job("test-once", "", nightly, every=dt.timedelta(hours=24), daily_at=dt.time(2, 0))
    assert await jobs.daily_due(services, job, clock.now())  # both hosts see it due …
    assert (await jobs.run_job(services, job, unless_done_since=tokyo(2026, 4, 1, 2, 0))).status == "ok"
    clock.advance(dt.timedelta(seconds=5))
    late = await jobs.run_job(services, job, unless_done_since=tokyo(2026, 4, 1, 2, 0))  # … the second comes late
    assert late.status == "skipped" and len(runs) == 1


async def test_job_health_names_a_job_overdue_after_its_allowance(migrated):
    _target, db = migrated
    clock = FixedClock(tokyo(2026, 4, 1, 12, 0))
    services = services_for(db, clock)

    async def quick(_services):
        return "ok"

    every = jobs.Job("test-every", "", quick, every=dt.timedelta(minutes=1), lease=dt.timedelta(minutes=2))
    nightly = jobs.Job("test-nightly", "", quick, every=dt.timedelta(hours=24), lease=dt.timedelta(minutes=10),
                       daily_at=dt.time(2, 0))

    async def overdue(since=tokyo(2026, 4, 1, 12, 0)):
        health = await jobs.job_health(services, since, [every, nightly])
        return {item.name for item in health if item.overdue(clock.now())}

    assert await overdue() == set()  # never run, but this process has only just started
    clock.advance(dt.timedelta(minutes=5))
    assert await overdue() == {"test-every"}  # 2 × 1 min + 2 min after the start
    clock.advance(dt.timedelta(minutes=16))
    assert await overdue() == {"test-every", "test-nightly"}  # 02:00 (or, later, the start) + 2 × 10 min
    await jobs.run_job(services, every)
    await jobs.run_job(services, nightly)
    assert await overdue() == set()
    clock.advance(dt.timedelta(minutes=5))
    assert await overdue() == {"test-every"}
    clock.set(tokyo(2026, 4, 2, 2, 19))
    await jobs.run_job(services, every)
    assert await overdue() == set()  # the nightly run has until 02:20
    clock.set(tokyo(2026, 4, 2, 2, 21))
    await jobs.run_job(services, every)
    assert await overdue() == {"test-nightly"}
