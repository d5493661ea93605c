"""Benchmark: coupon consumption on PostgreSQL with several concurrent workers, as a
ratio against pgbench's built-in TPC-B-like transaction on the same server, in the same run.

    .venv/bin/python bench/consume.py [--workers 2] [--clients 8] [--seconds 10] [--registrations 8]

Several worker processes (as `tradecert serve --workers N` would run), each with asyncio
clients. Each of our transactions is a real `ledger.debit` (entry with a unique key, guarded
balance update, lot update, allocation row) in its own unit of work; clients spread over
several registrations, as applications from many exporters would. pgbench runs
`-c CLIENTS -j 2 -T SECONDS` in a scratch database it initialises itself.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from bench.pg import pgbench_tps
from persistence import (
    locks,
    migrate,
)
from persistence.db import Database
from persistence.models import CouponEntry, TradeRegistration
from resolvers.core.clock import TOKYO, FixedClock
from resolvers.core.errors import UserFailure
from resolvers.coupons import ledger
from tradecert.demo import seed_demo

DSN = "postgresql://postgres@127.0.0.1:5432"
NOW = dt.datetime(2026, 4, 1, 10, tzinfo=TOKYO)
STOCK = 1_000_000  # coupons per registration before the run


async def _prepare(schema: str, registrations: int) -> list[int]:
    db = Database(f"{DSN.replace('postgresql', 'postgresql+asyncpg')}/test", schema=schema)
    try:
        await migrate.upgrade(db.engine)
        await seed_demo(db, FixedClock(NOW))
        async with db.write() as session:
            demo = await session.scalar(select(TradeRegistration).where(TradeRegistration.number == "2701000002"))
            for i in range(registrations):
                session.add(TradeRegistration(number=f"27019{i:05d}", chamber_id=demo.chamber_id, kind="APPLICANT",
                                              name=f"bench {i}", valid_from=NOW.date(), allows_bank_transfer=True,
                                              allows_card=True, created_at=NOW))
        async with db.read() as session:
            ids = list((await session.scalars(select(TradeRegistration.id).where(TradeRegistration.name.like("bench %")))).all())
        for rid in ids:
            async with db.write() as session:
                await locks.registration(session, rid)
                await ledger.credit(session, registration_id=rid, coupons=STOCK, kind="CHAMBER_OPERATION",
                                    key=f"bench-credit-{rid}", now=NOW, acquired_on=NOW.date(), rules_version="bench")
        return ids
    finally:
        await db.dispose()


async def _worker(schema: str, ids: list[int], worker: int, clients: int, seconds: float) -> tuple[int, int]:
    """One process: ``clients`` asyncio clients debiting one coupon per transaction; (done, refused)."""
    db = Database(f"{DSN.replace('postgresql', 'postgresql+asyncpg')}/test", schema=schema)
    done = refused = 0
    deadline = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal done, refused
        i = 0
        while time.perf_counter() < deadline:
            rid = ids[(n + i) % len(ids)]
            try:
                async with db.write() as session:
                    await locks.registration(session, rid)
                    await ledger.debit(session, registration_id=rid, coupons=1, kind="USE",
                                       key=f"bench-{worker}-{n}-{i}", now=NOW)
                done += 1
            except UserFailure:  # INSUFFICIENT_COUPONS: the balance ran out (never oversold)
                refused += 1
            i += 1

    try:
        await asyncio.gather(*(client(n) for n in range(clients)))
    finally:
        await db.dispose()
    return done, refused


def _run_worker(args) -> tuple[int, int]:
    return asyncio.run(_worker(*args))


async def _check(schema: str, ids: list[int]) -> tuple[list[str], int]:
    db = Database(f"{DSN.replace('postgresql', 'postgresql+asyncpg')}/test", schema=schema)
    try:
        async with db.read() as session:
            problems = await ledger.audit_ledger(session)
            used = await session.scalar(select(func.count()).select_from(CouponEntry).where(CouponEntry.kind == "USE"))
        return problems, used
    finally:
        await db.dispose()


def ours_tps(workers: int, clients: int, seconds: int, registrations: int) -> tuple[float, int, int]:
    """(transactions per second, debits done, oversold coupons) with ``workers`` processes."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-d", "test", "-c", f'CREATE SCHEMA "{schema}"'], check=True)
    try:
        ids = asyncio.run(_prepare(schema, registrations))
        per_worker = max(1, clients // workers)
        started = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            results = pool.map(_run_worker, [(schema, ids, w, per_worker, seconds) for w in range(workers)])
        elapsed = time.perf_counter() - started
        done = sum(r[0] for r in results)
        problems, used = asyncio.run(_check(schema, ids))
        if problems:
            raise SystemExit(f"ledger audit failed: {problems[:5]}")
        oversold = max(0, used - STOCK * len(ids)) + abs(used - done)
        return done / elapsed, done, oversold
    finally:
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-d", "test", "-v", "ON_ERROR_STOP=1", "-c", "SET client_min_messages = warning; " +
                        f'DROP SCHEMA "{schema}" CASCADE'], check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2, help="processes (this machine has 2 cores)")
    parser.add_argument("--clients", type=int, default=8, help="clients in all, spread over the workers")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--registrations", type=int, default=8)
    args = parser.parse_args()
    baseline = pgbench_tps(args.clients, args.seconds)
    ours, done, oversold = ours_tps(args.workers, args.clients, args.seconds, args.registrations)
    print(f"pgbench TPC-B-like, {args.clients} clients, -j 2: {baseline:8.0f} tps  (baseline 1.00)")
    print(f"ledger.debit (one coupon), {args.workers} processes x {args.clients // args.workers} clients, "
          f"{args.registrations} registrations: {ours:8.0f} tps  ({ours / baseline:.2f} of baseline); "
          f"{done} debits, oversold {oversold}, ledger audit clean")


if __name__ == "__main__":
    main()
