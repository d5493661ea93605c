"""Bulk filing (issue 14): ``createApplications`` (all or none) and ``submitApplications``
(one outcome per id), for exporters' systems and the CSV import.

createApplications checks every row with the checks of ``createApplication`` and answers
every problem of every row, each ``field`` moved under ``["input", "applications", i]``;
with none, one transaction creates them all (``use_cases.create_many``). Permission is
asked once: the rows are all the viewer's own drafts.

submitApplications runs the single submission (``use_cases._submit``) per id, each in its
own transaction: a refused id (INSUFFICIENT_COUPONS, INVALID_STATE, …) writes nothing and
the next id goes on. So coupons are consumed exactly for the ids that went through — the
ledger debit of each submission is what consumes one.

Idempotency keys (``bulk_requests``, per account and kind of call) mean what they mean for
money elsewhere: the same key with the same input answers the first answer and writes
nothing twice; with other input, IDEMPOTENCY_KEY_REUSED. A created batch records its key
and its applications in its one transaction. A submission records each id's outcome
(``bulk_request_items``) in the transaction of that id's submission, so a retry after a
crash or a timeout answers the recorded outcomes and carries on with the ids that have
none; the (request, position) key makes a position's outcome exactly one, even when two
retries of one key run at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence import locks
from persistence.db import dialect_insert
from persistence.models import Application, BulkRequest, BulkRequestItem
from resolvers.applications import messages as words
from resolvers.applications import use_cases
from resolvers.applications.names import ApplicationState
from resolvers.core.context import Context
from resolvers.core.errors import ErrorCode, Forbidden, UserFailure, UserFailures
from resolvers.core.messages import Label
from resolvers.identity.actor import Viewer, authorize, require_viewer
from rules.limits import limit

CREATE, SUBMIT = "CREATE", "SUBMIT"  # bulk_requests.kind
MAX_KEY = 128


@dataclass(frozen=True)
class Refusal:
    """Why one id was not submitted: a UserError with its message in both languages, so a
    replay answers it word for word from what was recorded."""

    code: ErrorCode
    field: list[str]
    ja: str
    en: str

    @classmethod
    def of(cls, failure: UserFailure, base: list[str]) -> Refusal:
        return cls(failure.code, moved(failure.field, base), failure.message("ja"), failure.message("en"))

    def message(self, language: str) -> str:
        return self.en if language == "en" else self.ja


@dataclass(frozen=True)
class Outcome:
    """One id of ``submitApplications``: submitted (``application_id``) or refused."""

    position: int
    application_id: int | None
    refusals: tuple[Refusal, ...] = ()


class _Taken(Exception):
    """Another run of the same key recorded this position first: roll this submission back."""


def moved(field: list[str] | None, base: list[str]) -> list[str]:
    """A single mutation's input path under one position of a bulk input:
    ``["input", "goods", "0"]`` → ``[*base, "goods", "0"]``; ``["input", "applicationId"]``
    (the id itself) → ``base``."""
    rest = (field or ["input"])[1:]
    return base if rest in ([], ["applicationId"]) else [*base, *rest]


def _failures(failure: UserFailure | UserFailures) -> list[UserFailure]:
    return failure.failures if isinstance(failure, UserFailures) else [failure]


def _fingerprint(payload: object) -> str:
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _bounded(ctx: Context, count: int, field: list[str], label: Label) -> None:
    most = limit(ctx.services.rules.current, ctx.clock.today(), "bulk_applications_max")
    if count == 0:
        raise UserFailure(ErrorCode.REQUIRED, field, label=label)
    if count > most:
        raise UserFailure(ErrorCode.TOO_MANY_ITEMS, field, label=label, limit=most)


def _check_key(key: str | None) -> None:
    if key is not None and (not 1 <= len(key) <= MAX_KEY or "\x00" in key):
        raise UserFailure(ErrorCode.INVALID, ["input", "idempotencyKey"], label=words.IDEMPOTENCY_KEY)


async def _request(session: AsyncSession, who: Viewer, kind: str, key: str) -> BulkRequest | None:
    found: BulkRequest | None = await session.scalar(select(BulkRequest).where(
        BulkRequest.account_id == who.id, BulkRequest.kind == kind, BulkRequest.key == key))
    return found


def _same(request: BulkRequest, fingerprint: str) -> BulkRequest:
    if request.fingerprint != fingerprint:
        raise UserFailure(ErrorCode.IDEMPOTENCY_KEY_REUSED, ["input", "idempotencyKey"])
    return request


async def _items(session: AsyncSession, request_id: int) -> list[BulkRequestItem]:
    return list((await session.scalars(select(BulkRequestItem).where(BulkRequestItem.request_id == request_id)
                                       .order_by(BulkRequestItem.position))).all())


# --------------------------------------------------------------------------- createApplications


def check_rows(rows: Sequence[use_cases.ApplicationData], base: Sequence[str] = ("input", "applications"),
               ) -> tuple[list[tuple[dict[str, Any], list[use_cases.GoodsInput]]], list[UserFailure]]:
    """Every row checked as ``createApplication`` checks its input: the clean drafts, and
    every problem of every row with its field under ``[*base, i]``."""
    drafts: list[tuple[dict[str, Any], list[use_cases.GoodsInput]]] = []
    problems: list[UserFailure] = []
    for i, data in enumerate(rows):
        at = [*base, str(i)]
        if data.type is None:
            problems.append(UserFailure(ErrorCode.REQUIRED, [*at, "type"], label=words.CERTIFICATE_TYPE))
        if data.fee_payment is None:
            problems.append(UserFailure(ErrorCode.REQUIRED, [*at, "feePayment"], label=words.FEE_PAYMENT))
        values, goods, found = use_cases._check(data, creating=True)
        problems.extend(UserFailure(f.code, moved(f.field, at), **f.params) for f in found)
        drafts.append((values, goods or []))
    return drafts, problems


async def create_applications(ctx: Context, rows: Sequence[use_cases.ApplicationData],
                              idempotency_key: str | None = None) -> list[int]:
    """All the rows as new drafts of the viewer, in one transaction, or nothing (every
    problem of every row raised at once). The ids, in the order of the rows."""
    who = await require_viewer(ctx)
    if who.account.registration_id is None:
        raise Forbidden()
    await authorize(ctx, who, "application.create", {"own_registration"})
    _bounded(ctx, len(rows), ["input", "applications"], words.APPLICATIONS)
    _check_key(idempotency_key)
    fingerprint = _fingerprint([dataclasses.asdict(row) for row in rows])
    if idempotency_key is not None:  # a retry's fast path; decided again under the lock below
        async with ctx.services.db.read() as session:
            earlier = await _request(session, who, CREATE, idempotency_key)
            if earlier is not None:
                return [item.application_id for item in await _items(session, _same(earlier, fingerprint).id)
                        if item.application_id is not None]
    drafts, problems = check_rows(rows)
    if problems:
        raise UserFailures(problems)
    async with ctx.services.db.write() as tx:
        if idempotency_key is not None:
            # the registration's lock serialises a retry racing the first call: it waits, then finds it
            await locks.registration(tx, who.account.registration_id)
            earlier = await _request(tx, who, CREATE, idempotency_key)
            if earlier is not None:
                return [item.application_id for item in await _items(tx, _same(earlier, fingerprint).id)
                        if item.application_id is not None]
        ids = await use_cases.create_many(tx, ctx, who, drafts)
        if idempotency_key is not None:
            now = ctx.clock.now()
            request = BulkRequest(account_id=who.id, kind=CREATE, key=idempotency_key, fingerprint=fingerprint,
                                  created_at=now)
            tx.add(request)
            await tx.flush()
            tx.add_all(BulkRequestItem(request_id=request.id, position=i, application_id=app_id, recorded_at=now)
                       for i, app_id in enumerate(ids))
    return ids


# --------------------------------------------------------------------------- submitApplications


async def submit_applications(ctx: Context, ids: Sequence[str], pks: Sequence[int],
                              idempotency_key: str | None = None) -> list[Outcome]:
    """Submit each id (``pks[i]`` is what ``ids[i]`` names, -1 for nothing) in its own
    transaction; one outcome per id, in input order."""
    who = await require_viewer(ctx)
    # may the viewer submit applications at all (its own, or those it created)? Else FORBIDDEN once,
    # not one NOT_FOUND per id
    await authorize(ctx, who, "application.edit", {"own_registration", "created_by_me"})
    _bounded(ctx, len(ids), ["input", "applicationIds"], words.APPLICATION_IDS)
    # a repeat is the same application, however its id is spelt ("…MQ", "…MQ=", "Application:01"
    # encoded): compared by the row id it decodes to. An id naming nothing (pk -1) is compared as
    # written, so two different bad ids each keep their own NOT_FOUND.
    seen: set[int | str] = set()
    repeated = []
    for i, (raw, pk) in enumerate(zip(ids, pks, strict=True)):
        same: int | str = pk if pk >= 0 else raw
        if same in seen:
            repeated.append(UserFailure(ErrorCode.INVALID, ["input", "applicationIds", str(i)],
                                        label=words.APPLICATION_ID_REPEATED))
        seen.add(same)
    if repeated:
        raise UserFailures(repeated)
    _check_key(idempotency_key)
    request_id: int | None = None
    recorded: dict[int, Outcome] = {}
    if idempotency_key is not None:
        request_id, recorded = await _submit_request(ctx, who, idempotency_key, _fingerprint(list(ids)))
    outcomes = []
    for i, pk in enumerate(pks):
        found = recorded.get(i)
        outcomes.append(found if found is not None else await _submit_one(ctx, who, request_id, i, pk))
    return outcomes


async def _submit_request(ctx: Context, who: Viewer, key: str, fingerprint: str) -> tuple[int, dict[int, Outcome]]:
    """The key's request row (made now, or by an earlier run of the same input) and the
    outcomes recorded under it so far. Two runs of one key agree through the unique
    (account, kind, key): ``INSERT … ON CONFLICT DO NOTHING``, then read."""
    async with ctx.services.db.write() as tx:
        insert = dialect_insert(tx)
        await tx.execute(insert(BulkRequest).values(
            account_id=who.id, kind=SUBMIT, key=key, fingerprint=fingerprint, created_at=ctx.clock.now(),
        ).on_conflict_do_nothing(index_elements=["account_id", "kind", "key"]))
        request = await _request(tx, who, SUBMIT, key)
        assert request is not None  # inserted, or there already
        _same(request, fingerprint)
        return request.id, {item.position: _outcome(item) for item in await _items(tx, request.id)}


def _outcome(item: BulkRequestItem) -> Outcome:
    refusals = tuple(Refusal(ErrorCode[e["code"]], list(e["field"]), e["ja"], e["en"])
                     for e in json.loads(item.errors or "[]"))
    return Outcome(item.position, item.application_id if not refusals else None, refusals)


async def _record(tx: AsyncSession, request_id: int, outcome: Outcome, now: dt.datetime) -> bool:
    """Write one position's outcome unless one is there (then False)."""
    insert = dialect_insert(tx)
    errors = json.dumps([{"code": r.code.value, "field": r.field, "ja": r.ja, "en": r.en} for r in outcome.refusals],
                        ensure_ascii=False) if outcome.refusals else None
    written = await tx.scalar(insert(BulkRequestItem).values(
        request_id=request_id, position=outcome.position, application_id=outcome.application_id,
        outcome=outcome.refusals[0].code.value if outcome.refusals else None, errors=errors, recorded_at=now,
    ).on_conflict_do_nothing(index_elements=["request_id", "position"]).returning(BulkRequestItem.position))
    return written is not None


async def _recorded(ctx: Context, request_id: int, position: int) -> Outcome:
    async with ctx.services.db.read() as session:
        item = await session.get_one(BulkRequestItem, (request_id, position))
    return _outcome(item)


async def _submit_one(ctx: Context, who: Viewer, request_id: int | None, position: int, pk: int) -> Outcome:
    """One id, in its own transaction (``use_cases._submit``); under a key its outcome is
    recorded in that same transaction, or — when refused, nothing having been written — in
    a short one of its own."""
    base = ["input", "applicationIds", str(position)]
    done = Outcome(position, pk)

    async def record(tx: AsyncSession) -> None:
        if request_id is not None and not await _record(tx, request_id, done, ctx.clock.now()):
            raise _Taken()

    try:
        await use_cases._submit(ctx, who, pk, record)
        return done
    except _Taken:
        assert request_id is not None
        return await _recorded(ctx, request_id, position)
    except Forbidden:  # one it may see but not submit: as one it may not see (the rules allow none today)
        refused = Outcome(position, None, (Refusal.of(UserFailure(ErrorCode.NOT_FOUND, ["input", "applicationId"]), base),))
    except (UserFailure, UserFailures) as failure:
        refused = Outcome(position, None, tuple(Refusal.of(f, base) for f in _failures(failure)))
    if request_id is None:
        return refused
    async with ctx.services.db.write() as tx:
        if await _record(tx, request_id, refused, ctx.clock.now()):
            return refused
    return await _recorded(ctx, request_id, position)


async def drafts_among(ctx: Context, ids: Sequence[int]) -> list[int]:
    """Which of ``ids`` (the viewer's, just imported or found again) are still drafts, in
    the order given: what a re-run of an import submits (one statement). The submission
    decides again under each application's lock."""
    async with ctx.services.db.read() as session:
        drafts = set((await session.scalars(select(Application.id).where(
            Application.id.in_(ids), Application.state == ApplicationState.DRAFT))).all())
    return [i for i in ids if i in drafts]

