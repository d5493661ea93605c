"""Benchmark: coupon consumption on PostgreSQL with several concurrent workers, as a
ratio against pgbench's built-in TPC-B-like transaction on the same server, in the same run.

    .venv/bin/python bench/consume.py [--clients 4] [--seconds 10] [--registrations 8]

Each of our transactions is a real `ledger.debit` (entry with a unique key, guarded
balance update, lot update, allocation row) in its own unit of work; clients spread over
several registrations, as applications from many exporters would. pgbench runs
`-c CLIENTS -j 2 -T SECONDS` in a scratch database it initialises itself.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402
from sqlalchemy import select  # noqa: E402

from persistence import migrate  # noqa: E402
from persistence.db import Database  # noqa: E402
from persistence.models import TradeRegistration  # noqa: E402
from resolvers import ledger  # noqa: E402
from resolvers.errors import UserFailure  # noqa: E402
from tradecert.clock import TOKYO, FixedClock  # noqa: E402
from tradecert.demo import seed_demo  # noqa: E402

DSN = "postgresql://postgres@127.0.0.1:5432"
NOW = dt.datetime(2026, 4, 1, 10, tzinfo=TOKYO)


def pgbench_tps(clients: int, seconds: int) -> float:
    database = f"bench_{uuid.uuid4().hex[:8]}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", database], check=True)
    try:
        subprocess.run(["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-i", "-s", "4", "-q", database],
                       check=True, capture_output=True)
        out = subprocess.run(["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-c", str(clients), "-j", "2",
                              "-T", str(seconds), database], check=True, capture_output=True, text=True).stdout
        return float(re.search(r"tps = ([0-9.]+)", out).group(1))
    finally:
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", database], check=True)


async def ours_tps(clients: int, seconds: int, registrations: int) -> float:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(f"{DSN}/test")
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    db = Database(f"postgresql+asyncpg://postgres@127.0.0.1:5432/test", schema=schema)
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
            ids = (await session.scalars(select(TradeRegistration.id).where(TradeRegistration.name.like("bench %")))).all()
        for rid in ids:
            async with db.write() as session:
                await ledger.credit(session, registration_id=rid, coupons=1_000_000, kind="CHAMBER_OPERATION",
                                    key=f"bench-credit-{rid}", now=NOW, acquired_on=NOW.date(), rules_version="bench")
        done = 0
        deadline = time.perf_counter() + seconds

        async def client(n: int) -> None:
            nonlocal done
            i = 0
            while time.perf_counter() < deadline:
                rid = ids[(n + i) % len(ids)]
                try:
                    async with db.write() as session:
                        await ledger.debit(session, registration_id=rid, coupons=1, kind="USE",
                                           key=f"bench-{n}-{i}", now=NOW)
                    done += 1
                except UserFailure:
                    pass
                i += 1

        started = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        elapsed = time.perf_counter() - started
        async with db.read() as session:
            assert await ledger.audit_ledger(session) == []
        return done / elapsed
    finally:
        await db.dispose()
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--registrations", type=int, default=8)
    args = parser.parse_args()
    baseline = pgbench_tps(args.clients, args.seconds)
    ours = asyncio.run(ours_tps(args.clients, args.seconds, args.registrations))
    print(f"pgbench TPC-B-like, {args.clients} clients            : {baseline:8.0f} tps  (baseline 1.00)")
    print(f"ledger.debit (one coupon), {args.clients} clients, {args.registrations} registrations: "
          f"{ours:8.0f} tps  ({ours / baseline:.2f} of baseline)")


if __name__ == "__main__":
    main()
