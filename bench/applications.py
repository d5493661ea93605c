"""Benchmarks for applications, each against a baseline measured in the same run.

    .venv/bin/python bench/applications.py [--seconds 6] [--workers 2] [--clients 8]

1. ``applications(first: 20)`` with nested registration / createdBy / signer, read from the
   database (SQLite file, a real session token, DataLoaders) through the production
   schema, against a strawberry schema that returns a cached in-memory list of 20 objects
   of the same shape (same parser/validation caches). Interleaved rounds, median ratio.
2. ``submitApplication`` with coupons on PostgreSQL, several worker processes, against
   ``pgbench -N`` (TPC-B without the branch/teller updates) on the same server. Each
   submission is the real use case (conditional state UPDATE, receipt counter, fee from the
   rules, ledger debit, audit row) in one transaction. The registration holds fewer coupons
   than there are drafts, so the run also shows 0 oversell.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import strawberry
from sqlalchemy import func, select
from strawberry.extensions import ParserCache, ValidationCache

from bench.pg import pgbench_tps
from persistence import locks, migrate
from persistence.db import Database
from persistence.models import Account, Application, CouponAccount, RegistrationMembership, TradeRegistration
from resolvers.applications import use_cases as applications
from resolvers.core.clock import TOKYO, FixedClock
from resolvers.core.context import Context, Services
from resolvers.core.errors import UserFailure
from resolvers.core.settings import PROJECT_DIR, Settings
from resolvers.coupons import ledger
from resolvers.identity.accounts import Viewer, login
from rules.runtime import RulesRuntime
from schema import build_schema
from tradecert.composition import build_services
from tradecert.demo import DEMO_PASSWORD, seed_demo

NOW = dt.datetime(2026, 4, 1, 10, tzinfo=TOKYO)
PAGE = """{ applications(first: 20) { totalCount edges { node { receiptNumber state invoiceNumber fee
  registration { number name } createdBy { username name } signer { username } } } } }"""
DRAFT = applications.ApplicationData(
    type="INVOICE", destination_country="US", goods_category="一般機械", invoice_number="BENCH", exporter_name="bench",
    fee_payment="COUPON")


# --------------------------------------------------------------------------- 1. the page


@strawberry.type
class MemRegistration:
    number: str
    name: str


@strawberry.type
class MemAccount:
    username: str
    name: str


@strawberry.type
class MemApplication:
    receipt_number: str
    state: str
    invoice_number: str
    fee: int
    registration: MemRegistration
    created_by: MemAccount
    signer: MemAccount


@strawberry.type
class MemEdge:
    node: MemApplication


@strawberry.type
class MemConnection:
    total_count: int
    edges: list[MemEdge]


CACHED = MemConnection(total_count=20, edges=[MemEdge(node=MemApplication(
    receipt_number=f"{i:09d}", state="SUBMITTED", invoice_number=f"INV-{i}", fee=1210,
    registration=MemRegistration(number="2701000002", name="加古川自然食品"),
    created_by=MemAccount(username="signer-2701000002", name="ツァイス"),
    signer=MemAccount(username="signer-2701000002", name="ツァイス"))) for i in range(20)])


@strawberry.type
class MemQuery:
    @strawberry.field
    def applications(self, first: int = 20) -> MemConnection:
        return CACHED


async def page_ratio(seconds: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({"TRADECERT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db",
                                      "TRADECERT_RULES_DIR": str(PROJECT_DIR / "rules")})
        clock = FixedClock(NOW)
        db = Database(settings.database_url)
        services = build_services(settings=settings, db=db, rules=RulesRuntime(settings.rules_dir), clock=clock)
        await migrate.upgrade(db.engine)
        await seed_demo(db, clock)
        token = (await login(Context(services=services), "2701", "signer-2701000002", DEMO_PASSWORD)).token
        request = SimpleNamespace(headers={"authorization": f"Bearer {token}"}, cookies={})
        viewer_ctx = Context(services=services, request=request)
        for i in range(20):
            await applications.create_application(viewer_ctx, DRAFT)
        ours = build_schema(settings)
        bare = strawberry.Schema(query=MemQuery, extensions=[lambda: ParserCache(maxsize=64), lambda: ValidationCache(maxsize=64)])

        async def rate(schema, make_context, span: float) -> float:
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < span:
                for _ in range(10):
                    result = await schema.execute(PAGE, context_value=make_context())
                    assert not result.errors, result.errors
                count += 10
            return count / (time.perf_counter() - started)

        fresh = lambda: Context(services=services, request=request)  # noqa: E731 - a new request each time
        await rate(ours, fresh, 0.5)
        await rate(bare, lambda: None, 0.5)
        rounds, ratios, rates = 9, [], []
        for _ in range(rounds):
            base = await rate(bare, lambda: None, seconds / rounds / 2)
            mine = await rate(ours, fresh, seconds / rounds / 2)
            ratios.append(mine / base)
            rates.append((base, mine))
        await db.dispose()
    return statistics.median(ratios), statistics.median(r[1] for r in rates)


# --------------------------------------------------------------------------- 2. submissions on PostgreSQL

DSN = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-d", "test", "-v", "ON_ERROR_STOP=1", "-c",
                    "SET client_min_messages = warning; " + sql], check=True)


def _services(schema: str) -> Services:
    settings = Settings.from_env({"TRADECERT_DATABASE_URL": DSN, "TRADECERT_DATABASE_SCHEMA": schema,
                                  "TRADECERT_RULES_DIR": str(PROJECT_DIR / "rules")})
    return build_services(settings=settings, db=Database(DSN, schema=schema), rules=RulesRuntime(settings.rules_dir),
                    clock=FixedClock(NOW))


async def _prepare(schema: str, drafts: int, coupons: int, registrations: int) -> list[tuple[int, int]]:
    """Drafts spread over ``registrations`` applicants (one signer each), each holding its
    share of ``coupons``; returns (application id, signer id) pairs."""
    services = _services(schema)
    await migrate.upgrade(services.db.engine)
    await seed_demo(services.db, services.clock)
    async with services.db.write() as session:
        demo = await session.scalar(select(Account).where(Account.username == "signer-2701000002"))
        signers = [demo]
        for i in range(1, registrations):
            reg = TradeRegistration(number=f"27018{i:05d}", chamber_id=demo.chamber_id, kind="APPLICANT", name=f"bench {i}",
                                    valid_from=NOW.date(), allows_bank_transfer=True, allows_card=True, created_at=NOW)
            session.add(reg)
            await session.flush()
            session.add(RegistrationMembership(registration_id=reg.id, membership="MEMBER", valid_from=NOW - dt.timedelta(days=1)))
            signer = Account(kind="SIGNER", username=f"bench-signer-{i}", chamber_id=demo.chamber_id, registration_id=reg.id,
                             name="bench signer", status="ACTIVE", created_at=NOW, updated_at=NOW)
            session.add(signer)
            await session.flush()
            signers.append(signer)
    for n, signer in enumerate(signers):
        async with services.db.write() as session:
            await locks.registration(session, signer.registration_id)
            await ledger.credit(session, registration_id=signer.registration_id, coupons=coupons // len(signers),
                                kind="CHAMBER_OPERATION", key=f"bench-credit-{n}", now=NOW, acquired_on=NOW.date(),
                                rules_version="bench")
    pairs = []
    for i in range(drafts):
        signer = signers[i % len(signers)]
        ctx = Context(services=services)
        ctx.loaders["viewer"] = Viewer(signer, 0, "APPLICANT")
        pairs.append(((await applications.create_application(ctx, DRAFT)).id, signer.id))
    await services.db.dispose()
    return pairs


async def _worker(schema: str, pairs: list[tuple[int, int]], clients: int, seconds: float) -> tuple[int, int]:
    services = _services(schema)
    async with services.db.read() as session:
        signers = {a.id: a for a in (await session.scalars(select(Account).where(
            Account.id.in_({signer for _app, signer in pairs})))).all()}
    done = refused = 0
    deadline = time.perf_counter() + seconds
    queue = list(pairs)

    async def client() -> None:
        nonlocal done, refused
        while queue and time.perf_counter() < deadline:
            app_id, signer_id = queue.pop()
            ctx = Context(services=services)
            ctx.loaders["viewer"] = Viewer(signers[signer_id], 0, "APPLICANT")
            try:
                await applications.submit_application(ctx, app_id)
                done += 1
            except UserFailure:  # INSUFFICIENT_COUPONS once a balance is spent
                refused += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    await services.db.dispose()
    return done, refused


def _run_worker(args) -> tuple[int, int]:
    return asyncio.run(_worker(*args))


async def _outcome(schema: str) -> tuple[int, int, list[str]]:
    services = _services(schema)
    async with services.db.read() as session:
        submitted = await session.scalar(select(func.count()).select_from(Application).where(Application.state == "SUBMITTED"))
        balance = await session.scalar(select(func.sum(CouponAccount.balance)))
        problems = await ledger.audit_ledger(session)
    await services.db.dispose()
    return submitted, balance, problems


def submit_tps(workers: int, clients: int, seconds: int, drafts: int, coupons: int,
               registrations: int) -> tuple[float, int, int]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    psql(f'CREATE SCHEMA "{schema}"')
    try:
        ids = asyncio.run(_prepare(schema, drafts, coupons, registrations))
        coupons = coupons // registrations * registrations
        shares = [ids[w::workers] for w in range(workers)]
        started = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            results = pool.map(_run_worker, [(schema, share, max(1, clients // workers), seconds) for share in shares])
        elapsed = time.perf_counter() - started
        done = sum(r[0] for r in results)
        submitted, balance, problems = asyncio.run(_outcome(schema))
        if problems or submitted != done or submitted + balance != coupons:
            raise SystemExit(f"ledger disagrees: {problems[:3]} submitted={submitted} done={done} balance={balance}")
        return done / elapsed, done, max(0, submitted - coupons)
    finally:
        psql(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--drafts", type=int, default=1500)
    args = parser.parse_args()
    ratio, page_rate = asyncio.run(page_ratio(args.seconds))
    print(f"applications(first: 20) nested, from SQLite via DataLoaders: {page_rate:7.0f} pages/s, "
          f"{ratio:.2f} of a cached in-memory strawberry list of 20 (goal >= 0.6)")
    baseline = pgbench_tps(args.clients, args.seconds, "-N")
    coupons = args.drafts * 2 // 3
    print(f"pgbench -N, {args.clients} clients, -j 2           : {baseline:8.0f} tps (baseline 1.00)")
    for registrations in (1, 8):
        ours, done, oversold = submit_tps(args.workers, args.clients, args.seconds, args.drafts, coupons, registrations)
        print(f"submitApplication with coupons, {args.workers} processes x {args.clients // args.workers} clients, "
              f"{registrations} registration(s): {ours:8.0f} tps ({ours / baseline:.2f} of baseline); {done} submitted "
              f"against {coupons // registrations * registrations} coupons, oversold {oversold}, ledger audit clean")


if __name__ == "__main__":
    main()
