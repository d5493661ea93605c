"""The job runner: named jobs, run once now (`tradecert jobs run`) or on a schedule by `serve`.

A job runs only while its host holds the job's lease — taken by a conditional
``UPDATE … WHERE leased_until IS NULL OR leased_until < now RETURNING`` — so several
hosts may run the same schedule without running a job twice at once. The lease row also
remembers the last start, finish and *successful* finish: a daily job's day counts only
once a run finished ok, so a run killed mid-way is redone when its lease expires.

The scheduler survives any exception (logged with its traceback, retried with back-off),
and ``job_health`` tells /readyz and /metrics which job is overdue.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import Counter, Gauge
from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from persistence.models import JobLease
from resolvers.core.clock import TOKYO
from resolvers.core.context import Services

log = logging.getLogger("tradecert.jobs")

JOB_RUNS = Counter("tradecert_job_runs_total", "Job runs started by this process, by outcome", ["job", "outcome"])
SCHEDULER_ERRORS = Counter("tradecert_job_scheduler_errors_total",
                           "Exceptions the scheduler caught around a job (database unreachable, …)", ["job"])
# Set from the shared database at each scrape by the worker that answers it: under several
# workers (Prometheus multiprocess mode) the freshest value is the one to report.
JOB_LAST_SUCCESS = Gauge("tradecert_job_last_success_timestamp_seconds",
                         "When the job last finished ok on any host (Unix time; 0: never)", ["job"],
                         multiprocess_mode="mostrecent")
JOB_OVERDUE = Gauge("tradecert_job_overdue", "1 when the job has not succeeded within its allowance", ["job"],
                    multiprocess_mode="mostrecent")


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    run: Callable[[Services], Awaitable[str]]  # returns a one-line summary
    every: dt.timedelta  # how often `serve` runs it
    lease: dt.timedelta = dt.timedelta(minutes=10)
    daily_at: dt.time | None = None  # instead of `every`: once a day from this Asia/Tokyo time on
    # `serve` runs the jobs of one lane one after another and the lanes side by side: a job
    # that waits on servers a registration chose (webhooks) gets its own, so it never holds up the rest
    lane: str = "main"


@dataclass(frozen=True)
class JobOutcome:
    name: str
    status: str  # "ok", "failed", "skipped" (another host holds the lease)
    message: str


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def _acquire(services: Services, job: Job, holder: str, unless_done_since: dt.datetime | None) -> bool:
    """Take the lease if it is free (or expired). With ``unless_done_since``, only if no run
    finished ok since then — decided in the same UPDATE, so of two hosts that both saw a
    daily job due, the second finds it done."""
    now = services.clock.now()
    takeable = [JobLease.name == job.name, or_(JobLease.leased_until.is_(None), JobLease.leased_until < now)]
    if unless_done_since is not None:
        takeable.append(or_(JobLease.last_succeeded_at.is_(None), JobLease.last_succeeded_at < unless_done_since))
    async with services.db.write() as session:
        dialect_insert = sqlite.insert if services.db.is_sqlite else postgresql.insert
        await session.execute(dialect_insert(JobLease).values(name=job.name).on_conflict_do_nothing())
        taken = await session.execute(
            update(JobLease)
            .where(*takeable)
            .values(holder=holder, leased_until=now + job.lease, last_started_at=now)
            .returning(JobLease.name)
        )
        return taken.first() is not None


async def _release(services: Services, job: Job, holder: str, status: str, message: str) -> None:
    now = services.clock.now()
    succeeded = {"last_succeeded_at": now} if status == "ok" else {}
    async with services.db.write() as session:
        await session.execute(
            update(JobLease)
            .where(JobLease.name == job.name, JobLease.holder == holder)
            .values(leased_until=None, last_finished_at=now, last_status=status, last_message=message[:2000], **succeeded)
        )


async def run_job(services: Services, job: Job, unless_done_since: dt.datetime | None = None) -> JobOutcome:
    """Run ``job`` under its lease; "skipped" when another host holds it (or, with
    ``unless_done_since``, when a run already finished ok since then). A failure of the job
    itself is its outcome; a failure to take or give back the lease (the database) raises."""
    holder = holder_id()
    if not await _acquire(services, job, holder, unless_done_since):
        return JobOutcome(job.name, "skipped", "another host is running it or has done it")
    try:
        message = await job.run(services)
        status = "ok"
    except Exception as exc:
        log.exception("job %s failed", job.name)
        message, status = f"{type(exc).__name__}: {exc}", "failed"
    JOB_RUNS.labels(job.name, status).inc()
    await _release(services, job, holder, status, message)
    return JobOutcome(job.name, status, message)


async def run_jobs(services: Services, names: list[str] | None = None) -> list[JobOutcome]:
    known = services.jobs
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise KeyError(f"unknown job(s): {', '.join(unknown)}; known: {', '.join(known) or 'none yet'}")
    return [await run_job(services, known[n]) for n in (names or list(known))]


# --------------------------------------------------------------------------- the schedule

SCHEDULER_MAX_BACKOFF = dt.timedelta(minutes=5)  # retries after the scheduler's own failures double up to this


def fell_due_at(job: Job, now: dt.datetime) -> dt.datetime:
    """The latest instant at or before ``now`` at which a daily job fell due (its Tokyo time
    today, or yesterday's before that time)."""
    if job.daily_at is None:
        raise ValueError(f"job {job.name} runs every {job.every}, not daily")
    local = now.astimezone(TOKYO)
    at = dt.datetime.combine(local.date(), job.daily_at, TOKYO)
    return at if at <= local else at - dt.timedelta(days=1)


async def daily_due(services: Services, job: Job, now: dt.datetime) -> bool:
    """A daily job is due once its Tokyo time has come today and no run has *finished ok*
    since: a run killed mid-way (it left only its start behind) or one that failed is run
    again, though not before its lease has run out since that start — a crashed host's
    lease has expired by then, and a failing job is not retried at every tick."""
    if job.daily_at is None:
        raise ValueError(f"job {job.name} runs every {job.every}, not daily")
    local = now.astimezone(TOKYO)
    today_at = dt.datetime.combine(local.date(), job.daily_at, TOKYO)
    if local < today_at:
        return False
    async with services.db.read() as session:
        lease = (await session.execute(select(JobLease.last_started_at, JobLease.last_succeeded_at)
                                       .where(JobLease.name == job.name))).first()
    if lease is None:
        return True
    started, succeeded = lease
    if succeeded is not None and succeeded >= today_at:
        return False
    return started is None or started < today_at or started + job.lease <= now


class Scheduler:
    """What `serve` runs: each job on its interval, daily jobs from their Tokyo time.

    Any exception around a job — the database refusing a connection while it checks or
    takes a lease — is logged with its traceback and retried after a back-off (one tick,
    doubling up to ``SCHEDULER_MAX_BACKOFF``, never later than the job's interval); the
    other jobs go on. A job's own failure is its outcome: an interval job runs again on its
    interval, a daily one after its lease (``daily_due``).
    """

    def __init__(self, jobs: list[Job], tick: float):
        self.jobs = jobs
        self.tick = dt.timedelta(seconds=tick)
        self.next_at: dict[str, dt.datetime] = {}
        self.errors: dict[str, int] = {}  # consecutive exceptions per job

    async def run_due(self, services: Services) -> None:
        for job in self.jobs:
            now = services.clock.now()
            if job.name in self.next_at and now < self.next_at[job.name]:
                continue
            try:
                if job.daily_at is not None:
                    if await daily_due(services, job, now):
                        await run_job(services, job, unless_done_since=fell_due_at(job, now))
                else:
                    self.next_at[job.name] = now + job.every  # ok, failed or skipped: its next turn
                    await run_job(services, job)
            except Exception:  # never let one failure stop the schedule
                self._back_off(job, now)
            else:
                self.errors.pop(job.name, None)

    def _back_off(self, job: Job, now: dt.datetime) -> None:
        count = self.errors[job.name] = self.errors.get(job.name, 0) + 1
        delay = min(self.tick * 2 ** (count - 1), SCHEDULER_MAX_BACKOFF)
        if job.daily_at is None:
            delay = min(delay, job.every)
        self.next_at[job.name] = now + delay
        SCHEDULER_ERRORS.labels(job.name).inc()
        log.exception("scheduler: job %s could not be run (%d time(s) in a row); next try in %.0f s",
                      job.name, count, delay.total_seconds())


async def run_schedule(services: Services, tick: float = 5.0) -> None:
    """`serve`'s scheduler: one loop per lane (``Job.lane``), the lanes side by side (leases
    keep several hosts from running one job at once)."""
    lanes: dict[str, list[Job]] = {"main": []}
    for job in services.jobs.values():
        lanes.setdefault(job.lane, []).append(job)
    async with asyncio.TaskGroup() as group:
        for lane in lanes.values():
            group.create_task(_run_lane(services, Scheduler(lane, tick), tick))


async def _run_lane(services: Services, scheduler: Scheduler, tick: float) -> None:
    while True:
        try:
            await scheduler.run_due(services)
        except Exception:  # pragma: no cover - run_due catches per job; this is the last line
            log.exception("scheduler: tick failed")
        await asyncio.sleep(tick)


# --------------------------------------------------------------------------- health


@dataclass(frozen=True)
class JobHealth:
    name: str
    last_success: dt.datetime | None
    last_started: dt.datetime | None
    last_status: str | None  # of the last finished run: "ok" | "failed"
    overdue_after: dt.datetime

    def overdue(self, now: dt.datetime) -> bool:
        return now > self.overdue_after

    def as_json(self, now: dt.datetime) -> dict[str, object]:
        def iso(at: dt.datetime | None) -> str | None:
            return at.astimezone(TOKYO).isoformat() if at else None  # Tokyo time, like the API

        return {"lastSuccess": iso(self.last_success), "lastStarted": iso(self.last_started),
                "lastStatus": self.last_status, "overdueAfter": iso(self.overdue_after), "overdue": self.overdue(now)}


def overdue_after(job: Job, last_success: dt.datetime | None, watching_since: dt.datetime, now: dt.datetime) -> dt.datetime:
    """When a job becomes overdue. An interval job may miss one run and take its whole
    lease for the next: ``2 × every + lease`` after its last success. A daily job should
    have succeeded by its Tokyo time plus two leases (one crashed run and its redo).
    Time is counted from ``watching_since`` at the earliest (this process's start), so a
    fresh install or a restart after a holiday is not overdue before it had its chance."""
    if job.daily_at is None:
        return max(last_success or watching_since, watching_since) + 2 * job.every + job.lease
    fell_due = fell_due_at(job, now)
    if last_success is not None and last_success >= fell_due:
        return fell_due + dt.timedelta(days=1) + 2 * job.lease  # done: tomorrow's deadline
    return max(fell_due, watching_since) + 2 * job.lease


async def job_health(services: Services, watching_since: dt.datetime, jobs: list[Job] | None = None) -> list[JobHealth]:
    """Every job's last success (on any host: read from the lease rows) and when it is overdue."""
    now = services.clock.now()
    async with services.db.read() as session:
        rows = {row.name: row for row in (await session.execute(
            select(JobLease.name, JobLease.last_succeeded_at, JobLease.last_started_at, JobLease.last_status))).all()}
    health = []
    for job in (list(services.jobs.values()) if jobs is None else jobs):
        row = rows.get(job.name)
        success = row.last_succeeded_at if row else None
        health.append(JobHealth(job.name, success, row.last_started_at if row else None, row.last_status if row else None,
                                overdue_after(job, success, watching_since, now)))
    return health


def publish_health(health: list[JobHealth], now: dt.datetime) -> None:
    """Set the job gauges (at scrape time: every worker reports the shared database's view)."""
    for item in health:
        JOB_LAST_SUCCESS.labels(item.name).set(item.last_success.timestamp() if item.last_success else 0)
        JOB_OVERDUE.labels(item.name).set(1 if item.overdue(now) else 0)
