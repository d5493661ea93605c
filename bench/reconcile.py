"""Benchmark: recording and reconciling N bank deposits (each exactly paying one order),
at two sizes in the same run to show how it scales.

    .venv/bin/python bench/reconcile.py [--sizes 500,2000] [--database sqlite|postgresql]

Orders, lines and virtual accounts are bulk-inserted first (not measured); then the
deposits are recorded (`import_deposits`, all or none) and reconciled (`reconcile`: one
transaction per deposit, claimed by a conditional UPDATE, coupons credited to the ledger).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select

from persistence import migrate
from persistence.db import Database
from persistence.models import (
    Account,
    Chamber,
    CouponAccount,
    CouponPurchase,
    CouponPurchaseLine,
    TradeRegistration,
    VirtualAccount,
)
from resolvers.core.clock import TOKYO, FixedClock
from resolvers.core.settings import PROJECT_DIR, Settings
from resolvers.coupons.purchases import DepositInput, DepositSource, import_deposits, reconcile
from rules.runtime import RulesRuntime
from tradecert.composition import build_services
from tradecert.demo import seed_demo

NOW = dt.datetime(2026, 4, 1, 10, tzinfo=TOKYO)


async def prepare(db: Database, n: int, offset: int) -> list[DepositInput]:
    """n registrations, each with one order of one SINGLE awaiting payment."""
    async with db.write() as session:
        chamber = await session.scalar(select(Chamber))
        buyer = await session.scalar(select(Account.id).where(Account.username == "signer-2701000002"))
        regs = [{"number": f"27{offset + i + 10:08d}", "chamber_id": chamber.id, "kind": "APPLICANT", "name": f"bench {i}",
                 "valid_from": NOW.date(), "allows_bank_transfer": True, "allows_card": False, "created_at": NOW}
                for i in range(n)]
        await session.execute(insert(TradeRegistration), regs)
        ids = (await session.scalars(select(TradeRegistration.id).where(TradeRegistration.name.like("bench %"))
                                     .order_by(TradeRegistration.id.desc()).limit(n))).all()
        purchases = [{"order_number": f"B{offset + i:012d}", "registration_id": rid, "buyer_id": buyer, "method": "BANK_TRANSFER",
                      "membership": "MEMBER", "status": "AWAITING_PAYMENT", "coupons": 1, "amount": 1210,
                      "ordered_at": NOW, "ordered_on": NOW.date(), "rules_version": "bench", "expires_at": NOW + dt.timedelta(days=30)}
                     for i, rid in enumerate(ids)]
        await session.execute(insert(CouponPurchase), purchases)
        await session.execute(insert(CouponAccount), [
            {"registration_id": rid, "balance": 0, "pending": 1, "updated_at": NOW} for rid in ids])
        pids = (await session.scalars(select(CouponPurchase.id).where(CouponPurchase.order_number.like("B%"))
                                      .order_by(CouponPurchase.id.desc()).limit(n))).all()
        await session.execute(insert(CouponPurchaseLine), [
            {"purchase_id": pid, "product_code": "SINGLE", "quantity": 1, "unit_price": 1210, "coupons": 1, "amount": 1210} for pid in pids])
        accounts = [f"{(offset + i) % 10_000_000:07d}" for i in range(n)]
        await session.execute(insert(VirtualAccount), [
            {"purchase_id": pid, "bank_code": "0310", "bank_name": "bench", "branch_code": "502", "branch_name": "bench",
             "account_number": number, "holder": "bench", "valid_until": NOW.date() + dt.timedelta(days=30)}
            for pid, number in zip(pids, accounts)])
    return [DepositInput(number, 1210, NOW.date(), "ﾍﾞﾝﾁ", f"bench-{number}") for number in accounts]


async def measure(url: str, schema: str | None, sizes: list[int]) -> None:
    db = Database(url, schema=schema)
    await migrate.upgrade(db.engine)
    await seed_demo(db, FixedClock(NOW))
    settings = Settings.from_env({"TRADECERT_RULES_DIR": str(PROJECT_DIR / "rules")})
    services = build_services(settings=settings, db=db, rules=RulesRuntime(settings.rules_dir), clock=FixedClock(NOW))
    offset = 0
    for n in sizes:
        deposits = await prepare(db, n, offset)
        offset += n
        started = time.perf_counter()
        stored = await import_deposits(services, deposits, DepositSource("bench"))
        recorded = time.perf_counter()
        counts = await reconcile(services)
        done = time.perf_counter()
        assert len(stored.recorded) == n and counts == {"issued": n}, (stored, counts)
        per = (done - started) / n * 1e3
        print(f"{n:7d} deposits: record {recorded - started:6.2f} s, reconcile {done - recorded:6.2f} s, "
              f"{per:.2f} ms/deposit → 100,000 ≈ {per * 100:.0f} s")
    await db.dispose()


async def main(sizes: list[int], database: str) -> None:
    if database == "sqlite":
        url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp(prefix='tradecert-bench-')) / 'bench.db'}"
        await measure(url, None, sizes)
        return
    import asyncpg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        await measure("postgresql+asyncpg://postgres@127.0.0.1:5432/test", schema, sizes)
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="500,2000")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    asyncio.run(main([int(s) for s in args.sizes.split(",")], args.database))
