"""Migrations, constraints and transaction semantics on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from persistence import migrate
from persistence.models import Account, Base, Chamber, RegistrationMembership, TradeRegistration
from resolvers.core.clock import FixedClock
from tests.conftest import tokyo
from tradecert.demo import seed_demo


async def test_the_migration_chain_runs_up_down_and_up_again(db_target):
    db = db_target.database()
    try:
        await migrate.upgrade(db.engine)
        assert await migrate.current_revision(db.engine) == migrate.head_revision()
        await migrate.downgrade(db.engine, "base")
        assert not await migrate.has_tables(db.engine) or await migrate.current_revision(db.engine) is None
        await migrate.upgrade(db.engine)
        assert await migrate.current_revision(db.engine) == migrate.head_revision()
    finally:
        await db.dispose()


async def test_the_models_match_the_migrations(db_target):
    db = db_target.database()
    try:
        await migrate.upgrade(db.engine)
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata)
            )
        assert diff == []
    finally:
        await db.dispose()


async def test_demo_seed_is_idempotent(migrated):
    _target, db = migrated
    report = await seed_demo(db, FixedClock(tokyo(2026, 4, 1, 9)))
    assert report.created == 0
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Account)) == 9
        assert await session.scalar(select(func.count()).select_from(TradeRegistration)) == 3
        kinds = dict((await session.execute(select(TradeRegistration.number, TradeRegistration.kind))).all())
    assert kinds == {"2701000002": "APPLICANT", "2701000003": "APPLICANT", "2701000004": "AGENT"}


async def test_a_registration_has_at_most_one_open_membership_period(migrated):
    _target, db = migrated
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            reg = await session.scalar(select(TradeRegistration).where(TradeRegistration.number == "2701000002"))
            session.add(RegistrationMembership(registration_id=reg.id, membership="NON_MEMBER",
                                               valid_from=tokyo(2026, 5, 1, 0, 0)))
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(RegistrationMembership)) == 3  # nothing written


@pytest.mark.parametrize(
    "values",
    [
        {"kind": "SUPERUSER"},  # unknown kind
        {"kind": "SIGNER", "registration_id": None},  # a signer belongs to a registration
        {"kind": "NACCS_OFFICE", "chamber": True},  # NACCS accounts have no chamber
        {"status": "BLOCKED"},
    ],
)
async def test_account_constraints_are_enforced_by_the_database(migrated, values):
    _target, db = migrated
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            chamber = await session.scalar(select(Chamber))
            reg = await session.scalar(select(TradeRegistration))
            kind = values.get("kind", "SIGNER")
            eco = kind not in ("NACCS_OFFICE",) or values.get("chamber")
            session.add(Account(
                kind=kind, username="x-constraint", chamber_id=chamber.id if eco else None,
                registration_id=values.get("registration_id", reg.id) if kind in ("SIGNER", "SUPERUSER") else None,
                name="x", status=values.get("status", "ACTIVE"), created_at=now, updated_at=now,
            ))


async def test_usernames_are_unique_within_a_chamber(migrated):
    _target, db = migrated
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            chamber = await session.scalar(select(Chamber))
            reg = await session.scalar(select(TradeRegistration))
            session.add(Account(kind="SIGNER", username="signer-2701000002", chamber_id=chamber.id,
                                registration_id=reg.id, name="dup", status="ACTIVE", created_at=now, updated_at=now))


async def test_timestamps_come_back_timezone_aware(migrated):
    _target, db = migrated
    async with db.read() as session:
        created = await session.scalar(select(Account.created_at).limit(1))
    assert created.tzinfo is not None and created == tokyo(2026, 3, 1, 9, 0)


async def test_sqlite_write_units_take_the_write_lock_before_their_first_statement(tmp_path):
    from persistence.db import Database

    path = tmp_path / "lock.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate.upgrade(db.engine)
        async with db.write() as session:
            await session.execute(text("SELECT 1"))  # a read only — yet the write lock is held
            other = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
            finally:
                other.close()
    finally:
        await db.dispose()


async def test_sqlite_read_units_see_one_snapshot_from_their_first_read(tmp_path):
    from persistence.db import Database

    path = tmp_path / "snap.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate.upgrade(db.engine)
        await seed_demo(db, FixedClock(tokyo(2026, 3, 1, 9)))
        async with db.read() as session:
            before = await session.scalar(select(func.count()).select_from(Chamber))
            writer = sqlite3.connect(path, isolation_level=None)
            writer.execute("INSERT INTO chambers (code, name) VALUES ('1301', '東京商工会議所')")
            writer.close()
            assert await session.scalar(select(func.count()).select_from(Chamber)) == before
        async with db.read() as session:
            assert await session.scalar(select(func.count()).select_from(Chamber)) == before + 1
    finally:
        await db.dispose()
