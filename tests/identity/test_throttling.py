"""Login throttling under real concurrency (issue 10, item 5): an attempt is counted before
its password is checked, so parallel requests — in one process or in several workers — get
at most ``login_lock_after`` password checks for one login name, then TOO_MANY_ATTEMPTS."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from persistence.models import LoginThrottle
from tests.conftest import PG_BASE, create_pg_schema, drop_pg_schema, require_postgres
from tests.identity.test_identity_sessions import LOGIN, PASSWORD
from tests.tradecert.test_serve_process import serve_two_workers, stop

WRONG = "wrong-password-1"
LIMIT = 5  # Settings.login_lock_after (docs/decisions.md "Throttling")


def body(username: str, password: str, chamber: str | None = "2701") -> dict:
    return {"query": LOGIN, "variables": {"c": chamber, "u": username, "p": password}}


def burst(url: str, bodies: list[dict], started: threading.Event | None = None) -> list[dict]:
    """Every body in its own thread and connection, released together by a barrier."""
    barrier = threading.Barrier(len(bodies))

    def one(payload: dict) -> dict:
        with httpx.Client(base_url=url, timeout=120) as client:
            barrier.wait()
            if started is not None:
                started.set()
            return client.post("/graphql", json=payload).json()["data"]["login"]

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(one, bodies))


def codes(answers: list[dict]) -> list[str]:
    return ["OK" if not a["errors"] else a["errors"][0]["code"] for a in answers]


def checked(answers: list[dict]) -> int:
    """Answers that could only come from checking the password."""
    return sum(1 for c in codes(answers) if c in ("OK", "INVALID_CREDENTIALS"))


async def test_forty_concurrent_wrong_passwords_get_at_most_the_limit_checked(live, migrated):
    _target, db = migrated
    answers = await asyncio.to_thread(burst, live.url, [body("signer2-2701000002", WRONG)] * 40)
    assert codes(answers).count("INVALID_CREDENTIALS") == LIMIT
    assert codes(answers).count("TOO_MANY_ATTEMPTS") == 40 - LIMIT
    async with db.read() as session:
        throttle = await session.get(LoginThrottle, "2701|signer2-2701000002")
    assert throttle.failures == LIMIT and throttle.locked_until is not None


async def test_the_right_password_in_a_burst_of_wrong_ones_does_not_get_in_once_the_limit_is_hit(live, migrated):
    _target, db = migrated
    # 39 wrong passwords and the right one, all at once. The right one gets in only if it
    # is counted among the first LIMIT attempts (as it would alone); a success clears the
    # count, so the attempts counted after it get their own LIMIT. Otherwise it is refused
    # with the rest, and at most LIMIT passwords are checked in all.
    answers = await asyncio.to_thread(burst, live.url, [body("signer2-2701000002", WRONG)] * 39 + [body("signer2-2701000002", PASSWORD)])
    if "OK" in codes(answers):
        assert checked(answers) <= 2 * LIMIT, codes(answers)
    else:
        assert checked(answers) <= LIMIT, codes(answers)

    # a second name: the right password comes while the wrong ones are still being checked
    wrong_answers: list[dict] = []
    started = threading.Event()
    runner = threading.Thread(target=lambda: wrong_answers.extend(
        burst(live.url, [body("signer-2701000003", WRONG)] * 39, started)))
    runner.start()
    await asyncio.to_thread(started.wait, 30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the limit is taken (checks may still be running)
        async with db.read() as session:
            throttle = await session.get(LoginThrottle, "2701|signer-2701000003")
        if throttle is not None and throttle.locked_until is not None:
            break
        await asyncio.sleep(0.005)
    right = await asyncio.to_thread(lambda: live.graphql(LOGIN, {"c": "2701", "u": "signer-2701000003", "p": PASSWORD}).json())
    await asyncio.to_thread(runner.join, 120)
    assert right["data"]["login"]["token"] is None
    assert right["data"]["login"]["errors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    assert checked(wrong_answers) == LIMIT, codes(wrong_answers)


async def test_a_success_clears_the_count_and_unknown_ids_are_throttled_alike(live, migrated):
    _target, db = migrated
    for _ in range(LIMIT - 1):
        assert codes([live.graphql(LOGIN, body("signer2-2701000002", WRONG)["variables"]).json()["data"]["login"]]) == ["INVALID_CREDENTIALS"]
    assert live.graphql(LOGIN, body("signer2-2701000002", PASSWORD)["variables"]).json()["data"]["login"]["errors"] == []
    async with db.read() as session:
        assert await session.get(LoginThrottle, "2701|signer2-2701000002") is None
    ghost = await asyncio.to_thread(burst, live.url, [body("ghost-2701", WRONG)] * 20)
    assert codes(ghost).count("INVALID_CREDENTIALS") == LIMIT


def test_two_worker_processes_on_postgresql_check_at_most_the_limit(tmp_path):
    require_postgres()
    schema = asyncio.run(create_pg_schema())
    process, base = serve_two_workers(tmp_path, {
        "TRADECERT_DATABASE_URL": PG_BASE, "TRADECERT_DATABASE_SCHEMA": schema, "TRADECERT_RUN_JOBS": "0",
        "TRADECERT_RULES_POLL_SECONDS": "0", "TRADECERT_LOG_LEVEL": "WARNING"})
    try:
        answers = burst(base, [body("signer2-2701000002", WRONG)] * 100)
    finally:
        stop(process)
        asyncio.run(drop_pg_schema(schema))
    assert codes(answers).count("INVALID_CREDENTIALS") == LIMIT, codes(answers)
    assert codes(answers).count("TOO_MANY_ATTEMPTS") == 100 - LIMIT
