"""Limits on guessing: attempts per client address and per target, counted in the database.

Public operations that check a secret — ``verifyCertificate`` and ``/verify`` (certificate
number + access code), ``activateSubAccount`` (link token + password) — count every call as
one attempt, so 30 aliases in one request are 30 attempts. An attempt is counted before the
secret is checked, by one conditional upsert per subject in a short committed transaction,
so parallel requests and several worker processes share one count. Windows are fixed: the
first attempt opens a window of ``rate_limit_window_seconds``; over the limit the answer is
TOO_MANY_REQUESTS with the seconds until the window ends.

The client address is the socket peer. Only when the peer is one of
``TRADECERT_TRUSTED_PROXIES`` is ``X-Forwarded-For`` read, from the right: the first hop
that is not a trusted proxy is the client (hops further left are whatever the client sent).
IPv6 clients are counted per /64, the block one subscriber usually holds.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import math
from dataclasses import dataclass

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from starlette.requests import HTTPConnection

from persistence.db import Database
from persistence.models import RateLimit
from resolvers.core.errors import ErrorCode, UserFailure
from resolvers.core.settings import Settings

PRUNE_BATCH = 500  # expired windows deleted when a new window opens


class RateLimited(UserFailure):
    """Over a limit: TOO_MANY_REQUESTS, retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int, field: list[str] | None = None):
        super().__init__(ErrorCode.TOO_MANY_REQUESTS, field, seconds=retry_after)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limit:
    name: str  # "verify:address", "verify:certificate", …
    attempts: int
    window: dt.timedelta


@dataclass(frozen=True)
class Charge:
    """One attempt against ``limit`` for ``subject`` (an address, or a target's text)."""

    limit: Limit
    subject: str
    hashed: bool = True  # targets are hashed (tokens must not be stored; any text fits)

    @property
    def key(self) -> str:
        subject = hashlib.sha256(self.subject.encode("utf-8", "surrogatepass")).hexdigest() if self.hashed else self.subject
        return f"{self.limit.name}:{subject}"[:128]


def verify_limits(settings: Settings) -> tuple[Limit, Limit]:
    window = dt.timedelta(seconds=settings.rate_limit_window_seconds)
    return (Limit("verify:address", settings.verify_limit_per_address, window),
            Limit("verify:certificate", settings.verify_limit_per_certificate, window))


def activation_limits(settings: Settings) -> tuple[Limit, Limit]:
    window = dt.timedelta(seconds=settings.rate_limit_window_seconds)
    return (Limit("activate:address", settings.activation_limit_per_address, window),
            Limit("activate:token", settings.activation_limit_per_token, window))


def address_charge(limit: Limit, address: str) -> Charge:
    return Charge(limit, address, hashed=False)


async def spend(db: Database, now: dt.datetime, charges: list[Charge], field: list[str] | None = None) -> None:
    """Count one attempt for each charge, in order, in one short transaction; raise
    RateLimited at the first one over its limit (later ones are then not counted)."""
    insert = sqlite.insert if db.is_sqlite else postgresql.insert
    table = RateLimit.__table__
    refused: int | None = None
    opened = False
    async with db.write() as session:
        for charge in charges:
            fresh = insert(RateLimit).values(key=charge.key, attempts=1, window_ends_at=now + charge.limit.window)
            expired = table.c.window_ends_at <= now
            upsert = fresh.on_conflict_do_update(
                index_elements=[table.c.key],
                set_={"attempts": case((expired, 1), else_=table.c.attempts + 1),
                      "window_ends_at": case((expired, fresh.excluded.window_ends_at), else_=table.c.window_ends_at)},
            ).returning(table.c.attempts, table.c.window_ends_at)
            attempts, ends_at = (await session.execute(upsert)).one()
            opened = opened or attempts == 1
            if attempts > charge.limit.attempts:
                refused = max(1, math.ceil((ends_at - now).total_seconds()))
                break
    if opened:
        await _prune(db, now)
    if refused is not None:
        raise RateLimited(refused, field)


async def _prune(db: Database, now: dt.datetime) -> None:
    """Delete a batch of ended windows. SKIP LOCKED: never waits for a row a counting
    transaction holds, so pruning cannot deadlock with counting (SQLite serialises)."""
    ended = select(RateLimit.key).where(RateLimit.window_ends_at <= now).limit(PRUNE_BATCH).with_for_update(skip_locked=True)
    async with db.write() as session:
        await session.execute(delete(RateLimit).where(RateLimit.key.in_(ended)))


# --------------------------------------------------------------------------- client address


@functools.lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in trusted)


def _ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text:
        return None
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _bucket(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def client_address(request: HTTPConnection | None, settings: Settings) -> str:
    """Who is asking, for rate limits: see the module docstring."""
    client = request.client if request is not None else None
    address = _ip(client.host if client else None)
    if request is None or address is None:
        return "unknown"
    trusted = _networks(settings.trusted_proxies)
    if not any(address in network for network in trusted):
        return _bucket(address)
    hops = [hop for value in request.headers.getlist("x-forwarded-for") for hop in value.split(",")]
    for hop in reversed(hops):
        found = _ip(hop)
        if found is None:  # not an address: count it as the proxy that passed it on
            break
        address = found
        if not any(address in network for network in trusted):
            break
    return _bucket(address)
