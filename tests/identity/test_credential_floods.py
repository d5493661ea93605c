"""A flood of parallel requests with one credential never holds the database's connections
hostage (a security review found 16 parallel requests with one API key stalled the whole
server for 30 s: each request held its read connection while it waited for a second one to
count the key). Over HTTP, on SQLite and PostgreSQL (pool of 5 + 10 connections): 40 parallel
requests with one API key, and 40 with one session whose last-seen time is due to be
written, all answer at once — a key's over its limit with TOO_MANY_REQUESTS, never an
internal error — and another user is served meanwhile."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.identity.test_api_keys import ME, make_key
from tests.identity.test_identity_sessions import bearer
from tests.identity.test_subaccounts import as_user

PARALLEL = 40


def flood(live, headers: dict) -> list[dict]:
    def one(_: int) -> dict:
        with httpx.Client(base_url=live.url, timeout=20) as client:  # a stall would time out here
            return client.post("/graphql", json={"query": ME}, headers=headers).json()
    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(one, range(PARALLEL)))


def codes(answers: list[dict]) -> set[str | None]:
    return {(a.get("errors") or [{}])[0].get("extensions", {}).get("code") for a in answers}


async def test_a_flood_with_one_api_key_answers_every_request_and_others_are_served(live):
    signer = as_user(live, "signer-2701000002")
    secret = make_key(live, signer)["secret"]
    answers = flood(live, bearer(secret))
    passed = [a for a in answers if (a.get("data") or {}).get("me")]
    assert codes(answers) <= {None, "TOO_MANY_REQUESTS"}, answers
    assert len(passed) == min(PARALLEL, 120)  # the limit (limits.yaml) is above the flood
    other = as_user(live, "signer-2701000003")
    assert live.graphql(ME, headers=other).json()["data"]["me"]["username"] == "signer-2701000003"


async def test_a_flood_with_one_idle_session_answers_every_request(live):
    signer = as_user(live, "signer-2701000002")
    live.clock.set(live.clock.now() + dt.timedelta(minutes=5))  # every request finds last-seen due
    answers = flood(live, signer)
    assert codes(answers) == {None}, answers
    assert all(a["data"]["me"]["username"] == "signer-2701000002" for a in answers)


async def test_an_instant_beyond_the_calendar_is_bad_input_not_a_stored_poison(live):
    """`9999-12-31T23:59:59-12:00` overflowed on its way to UTC (an internal error); a year-9999
    UTC instant was stored and then broke every read of the key in Tokyo time."""
    from tests.identity.test_api_keys import CREATE_KEY, KEYS

    signer = as_user(live, "signer-2701000002")
    for value in ("9999-12-31T23:59:59-12:00", "9999-12-31T20:00:00+00:00", "0001-01-01T00:00:00+09:00"):
        for language in ("en", "ja"):
            body = live.graphql(CREATE_KEY, {"name": "x", "expiresAt": value},
                                headers={**signer, "Accept-Language": language}).json()
            [error] = body["errors"]
            assert error["extensions"]["code"] == "BAD_USER_INPUT", body
            assert ("1900" in error["message"] and "2999" in error["message"]), error["message"]
        literal = live.graphql(CREATE_KEY.replace("$expiresAt: DateTime", "").replace("expiresAt: $expiresAt", f'expiresAt: "{value}"'),
                               {"name": "x"}, headers=signer).json()
        assert literal["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", literal
    assert live.graphql(KEYS, headers=signer).json()["data"]["apiKeys"] == []


def test_a_key_counts_only_in_the_authorization_header(live):
    signer = as_user(live, "signer-2701000002")
    secret = make_key(live, signer)["secret"]
    with httpx.Client(base_url=live.url, cookies={"tradecert_session": secret}) as client:
        assert client.post("/graphql", json={"query": ME}).json()["data"]["me"] is None
    assert live.graphql(ME, headers=bearer(secret)).json()["data"]["me"]["username"] == "signer-2701000002"
