"""The scheduler's lanes, on SQLite and PostgreSQL: a job stuck in its own lane (a webhook run
waiting on a slow receiver) does not hold up the jobs of the main lane, and the composition
gives ``webhook-delivery`` — the one job that waits on servers registrations choose — a lane
of its own."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time

from resolvers.core.clock import FixedClock
from resolvers.core.context import Services
from resolvers.core.settings import Settings
from rules.runtime import RulesRuntime
from tests.conftest import RULES_DIR, tokyo
from tradecert import jobs
from tradecert.composition import JOBS, build_services


async def test_a_job_stuck_in_its_own_lane_does_not_hold_up_the_main_lane(migrated):
    _target, db = migrated
    services: Services = build_services(settings=Settings.from_env({}), db=db, rules=RulesRuntime(RULES_DIR),
                                        clock=FixedClock(tokyo(2026, 4, 1, 12, 0)))
    never = asyncio.Event()
    quick_runs: list[int] = []

    async def stuck(_services: Services) -> str:
        await never.wait()
        return "never"

    async def quick(_services: Services) -> str:
        quick_runs.append(1)
        return "ok"

    every = dt.timedelta(seconds=0)  # due at every tick
    services.jobs = {  # the stuck job first: in one lane, it would keep the quick one from ever running
        "stuck": jobs.Job("stuck", "waits forever", stuck, every=every, lane="outbound"),
        "quick": jobs.Job("quick", "returns at once", quick, every=every),
    }
    scheduler = asyncio.create_task(jobs.run_schedule(services, tick=0.02))
    try:
        deadline = time.monotonic() + 30
        while len(quick_runs) < 3:
            assert not scheduler.done(), f"the scheduler stopped: {scheduler.exception()!r}"
            assert time.monotonic() < deadline, "the main lane did not run while the other lane was stuck"
            await asyncio.sleep(0.02)
    finally:
        scheduler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scheduler


def test_webhook_delivery_has_a_lane_of_its_own():
    lane = JOBS["webhook-delivery"].lane
    assert [name for name, job in JOBS.items() if job.lane == lane] == ["webhook-delivery"]
    assert {job.lane for name, job in JOBS.items() if name != "webhook-delivery"} == {"main"}
