"""Guessing limits (issue 10, item 11) over real HTTP on SQLite and PostgreSQL: certificate
verification and sub-ID activation are limited per client address and per target, every
alias counts, and access codes are long enough that guessing is hopeless anyway."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select, update
from starlette.requests import Request

from persistence.models import Application as ApplicationRow
from persistence.models import RateLimit
from resolvers.core.clock import FixedClock
from resolvers.core.ratelimit import client_address
from resolvers.core.settings import Settings
from tests.applications.test_applications import act, create, give_coupons
from tests.conftest import settings_for, start_server, tokyo
from tests.identity.test_subaccounts import ACTIVATE, SUB_PASSWORD, as_user, create_sub, mailed_token, notify

VERIFY = """query($n: String!, $c: String!) { verifyCertificate(number: $n, accessCode: $c) { valid exporterName } }"""
WINDOW = dt.timedelta(seconds=600)  # Settings.rate_limit_window_seconds
CROCKFORD = "[0-9A-HJKMNP-TV-Z]"


def aliased(guesses: list[tuple[str, str]]) -> str:
    fields = " ".join(f'v{i}: verifyCertificate(number: "{n}", accessCode: "{c}") {{ valid }}' for i, (n, c) in enumerate(guesses))
    return "{ " + fields + " }"


def post_all(url: str, requests: list[tuple[dict, dict]]) -> list[httpx.Response]:
    """Each (body, headers) in its own thread and connection, released together."""
    barrier = threading.Barrier(len(requests))

    def one(request: tuple[dict, dict]) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=120) as client:
            barrier.wait()
            return client.post("/graphql", json=request[0], headers=request[1])

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(one, requests))


def issued_certificate(server) -> dict:
    signer, staff = as_user(server, "signer-2701000002"), as_user(server, "staff-2701")
    give_coupons(server, 1)
    app_id = create(server, signer)["application"]["id"]
    act(server, signer, "submitApplication", app_id)
    issued = act(server, staff, "approveApplication", app_id)["application"]
    assert issued["state"] == "ISSUED", issued
    return issued


@pytest.fixture
async def behind_proxy(migrated, rules_copy, smtp):
    """A server that believes X-Forwarded-For from 127.0.0.1, as behind a reverse proxy there."""
    target, _db = migrated
    clock = FixedClock(tokyo(2026, 4, 1, 10, 0))
    settings = settings_for(target.url, rules_copy, smtp_url=smtp.url, trusted_proxies=("127.0.0.1/32",))
    server = await asyncio.to_thread(start_server, settings, clock, target.schema)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


# --------------------------------------------------------------------------- verification


def guess_batch(prefix: str) -> str:
    """30 aliases (the most a request may hold) on sequential numbers, as an attacker would."""
    return aliased([(f"{prefix}{n:04d}", "0000AAAA") for n in range(30)])


def refused(body: dict) -> bool:
    """A refused alias nulls the whole answer (the field is non-null) with its error."""
    return body["data"] is None and body["errors"][0]["extensions"]["code"] == "TOO_MANY_REQUESTS"


def test_every_alias_counts_and_an_address_is_refused_over_its_limit(live):
    first, second = (live.graphql(guess_batch(f"27012600001{i}")).json() for i in range(2))
    assert "errors" not in first and "errors" not in second and len(first["data"]) == 30
    third = live.graphql(VERIFY, {"n": "270126000000001", "c": "0000AAAA"}).json()  # attempt 61 of Settings.verify_limit_per_address
    assert refused(third)
    assert re.fullmatch(r"試行回数が多すぎます。\d+秒後に再度お試しください。", third["errors"][0]["message"])
    english = live.graphql(VERIFY, {"n": "270126000000001", "c": "0000AAAA"}, headers={"Accept-Language": "en"}).json()
    assert english["errors"][0]["message"].startswith("Too many attempts. Try again in")
    # the public page shares the limiter
    page = httpx.get(f"{live.url}/verify", params={"number": "270126000000001", "code": "0000AAAA"})
    assert page.status_code == 429 and 'data-code="TOO_MANY_REQUESTS"' in page.text
    assert 0 < int(page.headers["retry-after"]) <= WINDOW.total_seconds()
    # the window ends: answered again
    live.clock.advance(WINDOW)
    assert live.graphql(VERIFY, {"n": "270126000000001", "c": "0000AAAA"}).json()["data"]["verifyCertificate"]["valid"] is False


async def test_concurrent_guesses_from_one_address_get_exactly_the_limit_answered(live):
    requests = [({"query": VERIFY, "variables": {"n": f"2701260000{n:05d}", "c": "0000AAAA"}}, {}) for n in range(90)]
    bodies = [r.json() for r in await asyncio.to_thread(post_all, live.url, requests)]
    assert sum(1 for b in bodies if refused(b)) == 30 and sum(1 for b in bodies if "errors" not in b) == 60


async def test_ended_windows_are_pruned_when_a_new_one_opens(live, migrated):
    _target, db = migrated
    for n in range(5):
        live.graphql(VERIFY, {"n": f"27012600000000{n}", "c": "0000AAAA"})
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(RateLimit)) == 6  # the address and 5 numbers
    live.clock.advance(WINDOW)
    live.graphql(VERIFY, {"n": "270126000000009", "c": "0000AAAA"})
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(RateLimit)) == 2


def test_a_forged_x_forwarded_for_does_not_escape_the_address_limit(live):
    for i in range(2):
        assert "errors" not in live.graphql(guess_batch(f"27012600002{i}"), headers={"X-Forwarded-For": f"198.51.100.{i}"}).json()
    assert refused(live.graphql(VERIFY, {"n": "270126000000001", "c": "0000AAAA"}, headers={"X-Forwarded-For": "198.51.100.9"}).json())


async def test_guesses_on_one_certificate_from_many_addresses_are_refused_over_its_limit(behind_proxy):
    server = behind_proxy
    issued = await asyncio.to_thread(issued_certificate, server)
    number = issued["certificateNumber"]
    # 40 addresses, one guess each: the per-address limit is far away, the number's is not
    requests = [({"query": VERIFY, "variables": {"n": number, "c": f"{n:04X}AAAA"}}, {"X-Forwarded-For": f"203.0.113.{n}"})
                for n in range(40)]
    bodies = [r.json() for r in await asyncio.to_thread(post_all, server.url, requests)]
    codes = [b["errors"][0]["extensions"]["code"] if b.get("errors") else "ANSWERED" for b in bodies]
    assert codes.count("ANSWERED") == 30 and codes.count("TOO_MANY_REQUESTS") == 10  # verify_limit_per_certificate
    # even the right code is refused for that number now; another number is not
    right = server.graphql(VERIFY, {"n": number, "c": issued["accessCode"]}, headers={"X-Forwarded-For": "192.0.2.1"}).json()
    assert right["errors"][0]["extensions"]["code"] == "TOO_MANY_REQUESTS"
    other = server.graphql(VERIFY, {"n": "270126000000999", "c": "0000AAAA"}, headers={"X-Forwarded-For": "192.0.2.1"}).json()
    assert other["data"]["verifyCertificate"]["valid"] is False
    server.clock.advance(WINDOW)
    again = server.graphql(VERIFY, {"n": number, "c": issued["accessCode"]}, headers={"X-Forwarded-For": "192.0.2.1"}).json()
    assert again["data"]["verifyCertificate"] == {"valid": True, "exporterName": "加古川自然食品株式会社"}


def test_behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client(behind_proxy):
    server = behind_proxy
    # the client prepends whatever it likes; the proxy appends the address it saw
    for i in range(2):
        assert "errors" not in server.graphql(guess_batch(f"27012600003{i}"), headers={"X-Forwarded-For": f"10.9.8.{i}, 203.0.113.77"}).json()
    assert refused(server.graphql(VERIFY, {"n": "270126000000001", "c": "0000AAAA"}, headers={"X-Forwarded-For": "10.9.8.9, 203.0.113.77"}).json())
    assert "errors" not in server.graphql(VERIFY, {"n": "270126000000001", "c": "0000AAAA"}, headers={"X-Forwarded-For": "203.0.113.78"}).json()


async def test_access_codes_are_sixteen_crockford_characters_and_old_codes_still_verify(live, migrated):
    _target, db = migrated
    issued = await asyncio.to_thread(issued_certificate, live)
    code, number = issued["accessCode"], issued["certificateNumber"]
    assert re.fullmatch(rf"{CROCKFORD}{{4}}(-{CROCKFORD}{{4}}){{3}}", code), code  # 80 bits, grouped for people
    async with db.read() as session:
        stored = await session.scalar(select(ApplicationRow.access_code).where(ApplicationRow.certificate_number == number))
    assert stored == code.replace("-", "")
    full_width = code.lower().translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789abcdefghjkmnpqrstvwxyz-"})
    for typed in (code, code.replace("-", ""), code.lower(), f"  {code.replace('-', ' ')} ", full_width,
                  code.replace("0", "O").replace("1", "l")):
        assert live.graphql(VERIFY, {"n": number, "c": typed}).json()["data"]["verifyCertificate"]["valid"], typed
    for wrong in (code[:-1] + ("0" if code[-1] != "0" else "1"), code[:9], "", "Ü" * 16):
        assert live.graphql(VERIFY, {"n": number, "c": wrong}).json()["data"]["verifyCertificate"]["valid"] is False, wrong

    # a certificate issued before: 8 hex characters
    async with db.write() as session:
        await session.execute(update(ApplicationRow).where(ApplicationRow.certificate_number == number).values(access_code="1A2B3C4D"))
    for typed in ("1A2B3C4D", "1a2b3c4d", "IA2B-3C4D"):
        assert live.graphql(VERIFY, {"n": number, "c": typed}).json()["data"]["verifyCertificate"]["valid"], typed
    assert live.graphql(VERIFY, {"n": number, "c": "1A2B3C4E"}).json()["data"]["verifyCertificate"]["valid"] is False
    page = httpx.get(f"{live.url}/verify", params={"number": number, "code": "1a2b-3c4d"})
    assert page.status_code == 200 and 'data-valid="true"' in page.text


# --------------------------------------------------------------------------- activation


async def test_a_leaked_link_gets_at_most_the_token_limit_of_password_guesses(live):
    signer = as_user(live, "signer-2701000002")
    sub = create_sub(live, signer)
    notify(live, signer, sub["id"])
    token, _ = await mailed_token(live)
    wrong = {"query": ACTIVATE, "variables": {"t": token, "u": sub["username"], "p": "guess-pass-0001"}}
    bodies = [r.json()["data"]["activateSubAccount"] for r in await asyncio.to_thread(post_all, live.url, [(wrong, {})] * 60)]
    codes = [b["errors"][0]["code"] for b in bodies]
    assert codes.count("INVALID_CREDENTIALS") == 10 and codes.count("TOO_MANY_REQUESTS") == 50  # activation_limit_per_token
    right = live.graphql(ACTIVATE, {"t": token, "u": sub["username"], "p": SUB_PASSWORD}).json()["data"]["activateSubAccount"]
    assert right == {"account": None, "errors": [{"code": "TOO_MANY_REQUESTS", "field": ["input", "token"]}]}
    live.clock.advance(WINDOW)
    done = live.graphql(ACTIVATE, {"t": token, "u": sub["username"], "p": SUB_PASSWORD}).json()["data"]["activateSubAccount"]
    assert done["errors"] == [] and done["account"]["status"] == "ACTIVE"


def test_an_address_guessing_links_is_refused_over_its_limit(live):
    tries = [{"query": ACTIVATE, "variables": {"t": f"guessed-token-{n}", "u": "x", "p": "y"}} for n in range(35)]
    bodies = [r.json()["data"]["activateSubAccount"] for r in post_all(live.url, [(t, {}) for t in tries])]
    codes = [b["errors"][0]["code"] for b in bodies]
    assert codes.count("TOKEN_INVALID") == 30 and codes.count("TOO_MANY_REQUESTS") == 5  # activation_limit_per_address


# --------------------------------------------------------------------------- settings and addresses


def test_limits_are_security_settings_from_the_environment():
    env = {"TRADECERT_VERIFY_LIMIT_PER_ADDRESS": "7", "TRADECERT_VERIFY_LIMIT_PER_CERTIFICATE": "3",
           "TRADECERT_ACTIVATION_LIMIT_PER_ADDRESS": "9", "TRADECERT_ACTIVATION_LIMIT_PER_TOKEN": "2",
           "TRADECERT_RATE_LIMIT_WINDOW_SECONDS": "60", "TRADECERT_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16,::1"}
    settings = Settings.from_env(env)
    assert (settings.verify_limit_per_address, settings.verify_limit_per_certificate, settings.activation_limit_per_address,
            settings.activation_limit_per_token, settings.rate_limit_window_seconds) == (7, 3, 9, 2, 60)
    assert settings.trusted_proxies == ("10.0.0.1/32", "192.168.0.0/16", "::1/128")
    with pytest.raises(ValueError, match=r"TRADECERT_TRUSTED_PROXIES: 'proxy\.local'"):
        Settings.from_env({"TRADECERT_TRUSTED_PROXIES": "proxy.local"})
    defaults = Settings.from_env({})
    assert defaults.trusted_proxies == () and defaults.verify_limit_per_address == 60


def _request(peer: str, forwarded: list[str]) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "client": (peer, 50000)})


@pytest.mark.parametrize("peer, forwarded, trusted, expected", [
    ("203.0.113.5", ["1.2.3.4"], (), "203.0.113.5"),  # nobody trusted: the socket peer
    ("10.0.0.1", ["1.2.3.4"], (), "10.0.0.1"),
    ("203.0.113.5", ["1.2.3.4"], ("10.0.0.0/8",), "203.0.113.5"),  # an untrusted peer's header is ignored
    ("10.0.0.1", ["6.6.6.6, 1.2.3.4"], ("10.0.0.0/8",), "1.2.3.4"),  # right-most untrusted hop
    ("10.0.0.1", ["6.6.6.6", "1.2.3.4, 10.0.0.2"], ("10.0.0.0/8",), "1.2.3.4"),  # several headers, a chain of proxies
    ("10.0.0.1", ["10.0.0.3, 10.0.0.2"], ("10.0.0.0/8",), "10.0.0.3"),  # all trusted: the left-most
    ("10.0.0.1", ["1.2.3.4, not-an-ip"], ("10.0.0.0/8",), "10.0.0.1"),  # garbage: counted as the proxy
    ("10.0.0.1", [], ("10.0.0.0/8",), "10.0.0.1"),
    ("10.0.0.1", ["[2001:db8:1:2::7]:443"], ("10.0.0.0/8",), "2001:db8:1:2::/64"),  # IPv6 per /64
    ("2001:db8:1:2:aaaa::1", [], (), "2001:db8:1:2::/64"),
    ("::ffff:198.51.100.9", [], (), "198.51.100.9"),
])
def test_the_client_address_is_the_peer_or_the_right_most_untrusted_forwarded_hop(peer, forwarded, trusted, expected):
    settings = Settings.from_env({}).with_(trusted_proxies=trusted)
    assert client_address(_request(peer, forwarded), settings) == expected
