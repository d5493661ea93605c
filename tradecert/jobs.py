"""The job runner: named jobs, run once now (`tradecert jobs run`) or on a schedule by `serve`.

A job runs only while its host holds the job's lease — taken by a conditional
``UPDATE … WHERE leased_until IS NULL OR leased_until < now RETURNING`` — so several
hosts may run the same schedule without running a job twice at once. Real jobs arrive
with later issues (bank reconciliation, expiries, mail delivery, NACCS reissues).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Awaitable, Callable

from sqlalchemy import or_, update
from sqlalchemy.dialects import postgresql, sqlite

from persistence.models import JobLease
from resolvers.context import Services

log = logging.getLogger("tradecert.jobs")


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    run: Callable[[Services], Awaitable[str]]  # returns a one-line summary
    every: dt.timedelta  # how often `serve` runs it
    lease: dt.timedelta = dt.timedelta(minutes=10)
    daily_at: dt.time | None = None  # instead of `every`: once a day from this Asia/Tokyo time on


JOBS: dict[str, Job] = {}


def register(job: Job) -> Job:
    if job.name in JOBS:
        raise ValueError(f"job {job.name} already registered")
    JOBS[job.name] = job
    return job


@dataclass(frozen=True)
class JobOutcome:
    name: str
    status: str  # "ok", "failed", "skipped" (another host holds the lease)
    message: str


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def _acquire(services: Services, job: Job, holder: str) -> bool:
    now = services.clock.now()
    async with services.db.write() as session:
        dialect_insert = sqlite.insert if services.db.is_sqlite else postgresql.insert
        await session.execute(dialect_insert(JobLease).values(name=job.name).on_conflict_do_nothing())
        taken = await session.execute(
            update(JobLease)
            .where(JobLease.name == job.name, or_(JobLease.leased_until.is_(None), JobLease.leased_until < now))
            .values(holder=holder, leased_until=now + job.lease, last_started_at=now)
            .returning(JobLease.name)
        )
        return taken.first() is not None


async def _release(services: Services, job: Job, holder: str, status: str, message: str) -> None:
    async with services.db.write() as session:
        await session.execute(
            update(JobLease)
            .where(JobLease.name == job.name, JobLease.holder == holder)
            .values(leased_until=None, last_finished_at=services.clock.now(), last_status=status, last_message=message[:2000])
        )


async def run_job(services: Services, job: Job) -> JobOutcome:
    holder = holder_id()
    if not await _acquire(services, job, holder):
        return JobOutcome(job.name, "skipped", "another host is running it")
    try:
        message = await job.run(services)
        status = "ok"
    except Exception as exc:
        log.exception("job %s failed", job.name)
        message, status = f"{type(exc).__name__}: {exc}", "failed"
    await _release(services, job, holder, status, message)
    return JobOutcome(job.name, status, message)


async def run_jobs(services: Services, names: list[str] | None = None) -> list[JobOutcome]:
    unknown = [n for n in names or [] if n not in JOBS]
    if unknown:
        raise KeyError(f"unknown job(s): {', '.join(unknown)}; known: {', '.join(JOBS) or 'none yet'}")
    return [await run_job(services, JOBS[n]) for n in (names or list(JOBS))]


# --------------------------------------------------------------------------- the jobs

from resolvers.mail import deliver_pending  # noqa: E402


async def ledger_audit(services: Services) -> str:
    """Entries sum to every balance and lots hold it; a disagreement fails the job."""
    from resolvers.ledger import audit_ledger

    async with services.db.read() as session:
        problems = await audit_ledger(session)
    if problems:
        raise RuntimeError("; ".join(problems[:20]))
    return "every balance agrees with its entries and lots"

register(Job("mail-delivery", "send queued mails over SMTP, retrying with backoff", deliver_pending,
             every=dt.timedelta(seconds=15), lease=dt.timedelta(minutes=5)))
from resolvers.purchases import expire_unpaid, reconcile_job  # noqa: E402

register(Job("bank-reconciliation", "match recorded bank deposits to coupon orders (nightly)", reconcile_job,
             every=dt.timedelta(hours=24), daily_at=dt.time(2, 0)))
register(Job("purchase-expiry", "cancel coupon orders unpaid past their validity", expire_unpaid,
             every=dt.timedelta(hours=1)))
from resolvers.payments import expiry_job, redelivery_job  # noqa: E402

register(Job("card-session-expiry", "close card payment sessions past their time and cancel their orders", expiry_job,
             every=dt.timedelta(seconds=30), lease=dt.timedelta(minutes=2)))
register(Job("card-notification-redelivery", "sandbox gateway: send unacknowledged payment events again",
             redelivery_job, every=dt.timedelta(minutes=1), lease=dt.timedelta(minutes=2)))
from resolvers.naccs import process_reissues, purge_passwords  # noqa: E402

register(Job("naccs-reissue", "NACCS: process digital-certificate reissues due today (mornings)", process_reissues,
             every=dt.timedelta(hours=24), daily_at=dt.time(6, 0)))
register(Job("naccs-password-purge", "NACCS: destroy issued passwords whose viewing window has closed", purge_passwords,
             every=dt.timedelta(hours=1)))
register(Job("ledger-audit", "check that coupon entries and lots sum to every balance", ledger_audit,
             every=dt.timedelta(hours=1)))


async def daily_due(services: Services, job: Job, now: dt.datetime) -> bool:
    """A daily job is due once its Tokyo time has come today and no host started it since
    (the lease row remembers the last start, so a restart or a second host does not repeat it)."""
    from sqlalchemy import select

    from tradecert.clock import TOKYO

    local = now.astimezone(TOKYO)
    today_at = dt.datetime.combine(local.date(), job.daily_at, TOKYO)
    if local < today_at:
        return False
    async with services.db.read() as session:
        started = await session.scalar(select(JobLease.last_started_at).where(JobLease.name == job.name))
    return started is None or started < today_at


async def _run_scheduled(services: Services, job: Job) -> None:
    try:
        await run_job(services, job)
    except Exception:  # a broken job must not stop the others
        log.exception("scheduled job %s failed", job.name)


async def run_schedule(services: Services, tick: float = 5.0) -> None:
    """`serve`'s scheduler: run each job when its interval has passed, or once a day from
    its Tokyo time (leases keep several hosts from running one job at once)."""
    import asyncio

    last: dict[str, dt.datetime] = {}
    while True:
        now = services.clock.now()
        for job in list(JOBS.values()):
            if job.daily_at is not None:
                if await daily_due(services, job, now):
                    await _run_scheduled(services, job)
                continue
            if job.name not in last or now - last[job.name] >= job.every:
                last[job.name] = now
                await _run_scheduled(services, job)
        await asyncio.sleep(tick)
