"""The rules history: every version a server served is kept, and the versions in force can
no longer be edited in place — by `tradecert rules check` nor by a running server."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from pathlib import Path

from persistence import migrate
from resolvers.core.clock import TOKYO, FixedClock
from resolvers.fees import rules_history
from rules.policy import load_policy
from tests.conftest import settings_for, start_server, tokyo
from tests.identity.test_identity_sessions import bearer, login
from tests.tradecert.test_cli import run

NEXT_YEAR = dt.datetime.now(TOKYO).year + 1  # `rules check` runs on the real date: "next year" stays in the future


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{path.name}: {old!r} not found"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def add_application_fee_version(rules: Path, year: int, member: int) -> None:
    path = rules / "application_fees.yaml"
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n") + f"""
  - effective_from: {year}-04-01
    source: "a revision decided in advance"
    rows:
      - membership: MEMBER
        amount: {member}
      - membership: NON_MEMBER
        amount: 3700
""", encoding="utf-8")


def cli_env(target, rules: Path) -> dict[str, str]:
    env = {"TRADECERT_DATABASE_URL": target.url, "TRADECERT_RULES_DIR": str(rules)}
    if target.schema:
        env["TRADECERT_DATABASE_SCHEMA"] = target.schema
    return env


async def migrated_db(target):
    db = target.database()
    await migrate.upgrade(db.engine)
    return db


# --------------------------------------------------------------------------- recording


async def test_a_version_is_recorded_once_even_by_workers_at_once(db_target, rules_copy):
    db = await migrated_db(db_target)
    try:
        policy = load_policy(rules_copy)
        clock = FixedClock(tokyo(2026, 4, 1, 9, 0))
        await asyncio.gather(*(rules_history.record_version(db, policy, clock) for _ in range(8)))
        clock.advance(dt.timedelta(hours=1))
        await rules_history.record_version(db, policy, clock)  # a restart: still the first time it went live
        found, total, more = await rules_history.versions(db)
        assert total == 1 and not more
        [version] = found
        assert version.version == policy.version and version.went_live_at == tokyo(2026, 4, 1, 9, 0)
        assert "application_fees.yaml" in version.files and len(version.files) == len(list(rules_copy.glob("*.yaml")))
    finally:
        await db.dispose()


async def test_a_stored_version_loads_as_it_was_after_the_files_changed(db_target, rules_copy):
    db = await migrated_db(db_target)
    try:
        first = load_policy(rules_copy)
        await rules_history.record_version(db, first, FixedClock(tokyo(2026, 4, 1, 9, 0)))
        edit(rules_copy / "application_fees.yaml", "amount: 1210", "amount: 1250")
        again = await rules_history.policy_of_version(db, first.version)
        assert again is not None and again.version == first.version
        [row] = again.lookup("application_fees", dt.date(2026, 4, 1), membership="MEMBER")
        assert row.integer("amount") == 1210
        assert await rules_history.policy_of_version(db, "000000000000") is None
    finally:
        await db.dispose()


# --------------------------------------------------------------------------- the guard


def test_a_comment_may_change_but_a_removed_version_in_force_may_not(rules_copy):
    clock = FixedClock(tokyo(2026, 4, 1, 10, 0))
    history = [rules_history.StoredVersion(1, load_policy(rules_copy).version, clock.now(), {
        p.name: p.read_text(encoding="utf-8") for p in rules_copy.glob("*.yaml")})]
    path = rules_copy / "application_fees.yaml"
    edit(path, "# 発給申請手数料", "# 発給申請手数料 (a comment edited)")
    assert rules_history.rewrites(history, load_policy(rules_copy), clock.today()) == []
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("  - effective_from: 2026-04-01")], encoding="utf-8")
    [problem] = rules_history.rewrites(history, load_policy(rules_copy), clock.today())
    assert str(problem).startswith("application_fees.yaml: version (effective_from 2026-04-01): version removed;")
    assert rules_history.rewrites(history, load_policy(rules_copy), dt.date(2026, 3, 31)) == []  # not yet in force


async def test_rules_check_refuses_an_in_place_edit_of_the_2026_04_01_application_fee(db_target, rules_copy):
    db = await migrated_db(db_target)
    try:
        await rules_history.record_version(db, load_policy(rules_copy), FixedClock(tokyo(2026, 4, 1, 9, 0)))
    finally:
        await db.dispose()
    ok = await asyncio.to_thread(run, "rules", "check", env=cli_env(db_target, rules_copy))
    assert ok.returncode == 0, ok.stderr
    assert "rules history consulted: 1 version(s) went live, none rewritten" in ok.stdout
    edit(rules_copy / "application_fees.yaml", "amount: 1210", "amount: 1250")
    refused = await asyncio.to_thread(run, "rules", "check", env=cli_env(db_target, rules_copy))
    assert refused.returncode == 1
    assert ("application_fees.yaml: version (effective_from 2026-04-01), row 1 (membership=MEMBER): amount 1210 → 1250; "
            "version 2026-04-01 has been in force since 2026-04-01") in refused.stderr
    assert "add a new version with a later effective_from instead" in refused.stderr


async def test_rules_check_accepts_an_edit_of_a_version_dated_next_year(db_target, rules_copy):
    add_application_fee_version(rules_copy, NEXT_YEAR, 1300)
    db = await migrated_db(db_target)
    try:
        await rules_history.record_version(db, load_policy(rules_copy), FixedClock(tokyo(2026, 4, 1, 9, 0)))
    finally:
        await db.dispose()
    edit(rules_copy / "application_fees.yaml", "amount: 1300", "amount: 1320")
    result = await asyncio.to_thread(run, "rules", "check", env=cli_env(db_target, rules_copy))
    assert result.returncode == 0, result.stderr
    assert "none rewritten" in result.stdout


def test_rules_check_without_a_database_says_the_history_was_not_consulted(tmp_path, rules_copy):
    env = {"TRADECERT_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}", "TRADECERT_RULES_DIR": str(rules_copy)}
    result = run("rules", "check", env=env)
    assert result.returncode == 0, result.stderr
    assert "rules OK" in result.stdout and "rules history not consulted: no database at" in result.stdout
    assert not (tmp_path / "none.db").exists()


async def test_rules_history_lists_versions_newest_first_in_80_columns(db_target, rules_copy):
    db = await migrated_db(db_target)
    try:
        clock = FixedClock(tokyo(2026, 3, 31, 18, 0))
        await rules_history.record_version(db, load_policy(rules_copy), clock)
        add_application_fee_version(rules_copy, NEXT_YEAR, 1300)
        clock.set(tokyo(2026, 4, 1, 9, 30))
        newer = load_policy(rules_copy)
        await rules_history.record_version(db, newer, clock)
    finally:
        await db.dispose()
    result = await asyncio.to_thread(run, "rules", "history", env={**cli_env(db_target, rules_copy), "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[1].startswith("2026-04-01 09:30") and newer.version in lines[1] and "(the files in rules/)" in lines[1]
    assert lines[2].startswith("2026-03-31 18:00")
    assert lines[-1] == "2 version(s)"


# --------------------------------------------------------------------------- a running server


VERSIONS = "{ rulesVersions(first: 10) { totalCount edges { node { version liveFrom files } } } }"


def fee_on(server, day: str) -> dict:
    query = "query($on: Date) { feeSchedule(on: $on) { rulesVersion applicationFee(membership: MEMBER) } }"
    return server.graphql(query, {"on": day}).json()["data"]["feeSchedule"]


def wait_for(read, predicate, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while True:
        current = read()
        if predicate(current) or time.monotonic() > deadline:
            return current
        time.sleep(0.1)


async def test_a_running_server_refuses_an_in_place_edit_and_keeps_serving_the_old_version(
        migrated, rules_copy, caplog):
    target, _db = migrated
    settings = settings_for(target.url, rules_copy).with_(rules_poll_seconds=0.1)
    server = await asyncio.to_thread(start_server, settings, FixedClock(tokyo(2026, 4, 1, 10, 0)), target.schema)
    path = rules_copy / "application_fees.yaml"
    original = path.read_text(encoding="utf-8")
    try:
        first = await asyncio.to_thread(fee_on, server, "2026-04-01")
        assert first["applicationFee"] == 1210
        with caplog.at_level(logging.ERROR, logger="tradecert.rules"):
            path.write_text(original.replace("amount: 1210", "amount: 1250"), encoding="utf-8")
            await asyncio.sleep(1.0)  # ten polls
            assert await asyncio.to_thread(fee_on, server, "2026-04-01") == first
        assert "rewrite rules already in force" in caplog.text
        assert any("amount 1210 → 1250" in p for r in caplog.records for p in getattr(r, "problems", []))

        # a version dated next year may be added, and edited until it takes effect
        path.write_text(original, encoding="utf-8")
        add_application_fee_version(rules_copy, 2027, 1300)
        added = await asyncio.to_thread(wait_for, lambda: fee_on(server, "2027-04-01"), lambda f: f["applicationFee"] == 1300)
        assert added["applicationFee"] == 1300
        edit(path, "amount: 1300", "amount: 1320")
        edited = await asyncio.to_thread(wait_for, lambda: fee_on(server, "2027-04-01"), lambda f: f["applicationFee"] == 1320)
        assert edited["applicationFee"] == 1320 and edited["rulesVersion"] != added["rulesVersion"]

        staff = bearer(login(server, "staff-2701")["token"])
        history = await asyncio.to_thread(  # recorded right after the swap: wait for the watcher's INSERT
            wait_for, lambda: server.graphql(VERSIONS, None, staff).json()["data"]["rulesVersions"],
            lambda h: h["totalCount"] == 3)
        # newest first; the refused files never went live
        assert [e["node"]["version"] for e in history["edges"]] == [
            edited["rulesVersion"], added["rulesVersion"], first["rulesVersion"]]
        assert "application_fees.yaml" in history["edges"][0]["node"]["files"]
        assert history["edges"][-1]["node"]["liveFrom"] == "2026-04-01T10:00:00+09:00"

        signer = bearer(login(server, "signer-2701000002")["token"])
        refused = (await asyncio.to_thread(server.graphql, VERSIONS, None, signer)).json()
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN" and refused["data"] is None
    finally:
        await asyncio.to_thread(server.stop)


async def test_rules_versions_pages_with_cursors(migrated, rules_copy):
    target, db = migrated
    clock = FixedClock(tokyo(2026, 4, 1, 10, 0))
    for amount in (1300, 1310, 1320):
        add_application_fee_version(rules_copy, 2030 + amount % 100 // 10, amount)
        await rules_history.record_version(db, load_policy(rules_copy), clock)
        clock.advance(dt.timedelta(minutes=1))
    server = await asyncio.to_thread(start_server, settings_for(target.url, rules_copy), clock, target.schema)
    try:
        staff = bearer(login(server, "staff-2701")["token"])
        query = "query($a: String) { rulesVersions(first: 2, after: $a) { totalCount pageInfo { hasNextPage endCursor } edges { node { liveFrom } } } }"
        page = (await asyncio.to_thread(server.graphql, query, {"a": None}, staff)).json()["data"]["rulesVersions"]
        assert page["totalCount"] == 3 and page["pageInfo"]["hasNextPage"]
        assert [e["node"]["liveFrom"] for e in page["edges"]] == ["2026-04-01T10:02:00+09:00", "2026-04-01T10:01:00+09:00"]
        rest = (await asyncio.to_thread(server.graphql, query, {"a": page["pageInfo"]["endCursor"]}, staff)).json()
        assert [e["node"]["liveFrom"] for e in rest["data"]["rulesVersions"]["edges"]] == ["2026-04-01T10:00:00+09:00"]
        bad = (await asyncio.to_thread(server.graphql, query, {"a": "nonsense"}, staff)).json()
        assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    finally:
        await asyncio.to_thread(server.stop)
