"""The rules history: every rules version a server served, with its files, kept forever.

A coupon lot or an application fee names the rules version it was priced under; so that
version's content must never change after the fact. Every version a server loads is
recorded once in ``rules_versions`` (its content hash, the time it went live, the text of
each file), and ``rewrites`` compares files about to be served with that history: a row
of a version whose ``effective_from`` has come (a Tokyo date) may not be edited in place
once it went live — a new version with a later ``effective_from`` says the same thing
without rewriting what was charged. Versions dated in the future may still be edited.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.db import Database, dialect_insert
from persistence.models import RulesCorrection, RulesVersion
from resolvers.core.clock import Clock
from resolvers.core.context import Context
from resolvers.core.paging import DEFAULT_PAGE, MAX_PAGE
from resolvers.identity.actor import authorize, require_viewer
from rules.policy import (
    TABLES,
    Cell,
    PolicySet,
    Problem,
    RulesInvalid,
    fingerprint_of,
    load_policy,
    policy_files,
    read_yaml,
)

log = logging.getLogger("tradecert.rules")


@dataclass(frozen=True)
class StoredVersion:
    """A rules version as it went live: its hash, when, and its files' text by file name."""

    id: int
    version: str
    went_live_at: dt.datetime
    files: dict[str, str]

    @property
    def file_names(self) -> list[str]:
        return sorted(self.files)


def _stored(row: RulesVersion) -> StoredVersion:
    files = json.loads(row.files)
    return StoredVersion(row.id, row.version, row.went_live_at, {str(k): str(v) for k, v in files.items()})


def files_of(policy: PolicySet) -> dict[str, str] | None:
    """The text of the files ``policy`` was loaded from, by file name; None when they have
    changed on disk since (their hash is no longer the policy's version)."""
    raw = {path.name: path.read_bytes() for path in policy_files(policy.directory)}
    if fingerprint_of(raw) != policy.version:
        return None
    return {name: data.decode("utf-8") for name, data in raw.items()}


async def record_version(db: Database, policy: PolicySet, clock: Clock,
                         files: Mapping[str, str] | None = None) -> None:
    """Record ``policy`` as live from now, unless it already went live (then nothing changes:
    a version keeps the time it first went live). Concurrent workers may all call this.
    ``files``: its files' text as read when it was loaded (``files_of``), else read now."""
    files = files if files is not None else files_of(policy)
    if files is None:  # edited again since it was loaded: the next reload records what is on disk
        log.warning("rules version %s not recorded: its files changed since they were loaded", policy.version)
        return
    async with db.write() as session:
        await session.execute(
            dialect_insert(session)(RulesVersion)
            .values(version=policy.version, went_live_at=clock.now(), files=json.dumps(dict(files), ensure_ascii=False))
            .on_conflict_do_nothing(index_elements=["version"])
        )


async def versions(db: Database, first: int | None = None,
                   before_id: int | None = None) -> tuple[list[StoredVersion], int, bool]:
    """(versions, total, more): ``first`` versions (default 20, 1–100) newest first, with an
    id below ``before_id`` when given (the cursor of the last one seen)."""
    first = DEFAULT_PAGE if first is None else first
    if not 1 <= first <= MAX_PAGE:
        raise ValueError(f"page size {first} outside 1–{MAX_PAGE}")
    async with db.read() as session:
        total = await session.scalar(select(func.count()).select_from(RulesVersion))
        query = select(RulesVersion)
        if before_id is not None:
            query = query.where(RulesVersion.id < before_id)
        rows = (await session.scalars(query.order_by(RulesVersion.id.desc()).limit(first + 1))).all()
    return [_stored(r) for r in rows[:first]], total or 0, len(rows) > first


async def all_versions(db: Database) -> list[StoredVersion]:
    """Every version that went live, newest first."""
    async with db.read() as session:
        rows = (await session.scalars(select(RulesVersion).order_by(RulesVersion.id.desc()))).all()
    return [_stored(r) for r in rows]


async def stored_version(db: Database, version: str) -> StoredVersion | None:
    async with db.read() as session:
        return await stored_version_in(session, version)


async def stored_version_in(session: AsyncSession, version: str) -> StoredVersion | None:
    """``stored_version`` in an open unit of work (a refund reads it beside the lots)."""
    row = await session.scalar(select(RulesVersion).where(RulesVersion.version == version))
    return _stored(row) if row is not None else None


# Past versions loaded again, most recently used last. A version is the hash of its files,
# so a loaded one never goes stale; loading validates and compiles every table (and
# registers its rulesets with durable_rules for good), so it is done once per version and
# only a few are kept.
_KEPT = 8
_loaded: OrderedDict[str, PolicySet] = OrderedDict()


def _policy_from(found: StoredVersion) -> PolicySet:
    policy = _loaded.get(found.version)
    if policy is None:
        with tempfile.TemporaryDirectory(prefix=f"rules-{found.version}-") as tmp:
            for name, text in found.files.items():
                (Path(tmp) / Path(name).name).write_bytes(text.encode("utf-8"))
            # rulesets are named table@version, so this registers beside the live rules
            policy = load_policy(Path(tmp), bounded=False)  # it went live under the bounds of its release
        _loaded[found.version] = policy
        while len(_loaded) > _KEPT:
            _loaded.popitem(last=False)
    _loaded.move_to_end(found.version)
    return policy


async def policy_of_version(db: Database, version: str) -> PolicySet | None:
    """The rules exactly as version ``version`` had them; None when that version never went
    live here. Raises ``RulesInvalid`` when this release no longer accepts those files."""
    found = await stored_version(db, version)
    return _policy_from(found) if found is not None else None


async def policy_of_record(session: AsyncSession, version: str | None, current: PolicySet) -> PolicySet:
    """The rules a later computation for a record priced under ``version`` uses (a refund of a
    coupon lot, a statement printed again): that version exactly as it went live, whatever the
    files say now. ``current`` when ``version`` is the current one, when the record names none
    or one that never went live here (a record from before the history: the current files'
    rows in force on the record's date are the best there is), or when this release no longer
    accepts its files (logged)."""
    if version is None or version == current.version:
        return current
    found = await stored_version_in(session, version)
    if found is None:
        return current
    try:
        return _policy_from(found)
    except RulesInvalid as invalid:
        log.warning("rules version %s no longer loads (%s); using the current files (%s)",
                    version, invalid, current.version)
        return current


# --------------------------------------------------------------------------- the guard


@dataclass(frozen=True)
class _Frozen:
    rules_version: str  # the recorded version whose text is kept
    went_live_at: dt.datetime
    rows: list[dict[str, Cell]]


def _versions_in(text: str) -> dict[str, list[dict[str, Cell]]]:
    """effective_from → rows of a stored rule file (it validated when it went live)."""
    doc = read_yaml(text)
    found: dict[str, list[dict[str, Cell]]] = {}
    if isinstance(doc, dict) and isinstance(doc.get("versions"), list):
        for v in doc["versions"]:
            if isinstance(v, dict) and isinstance(v.get("rows"), list):
                found[str(v.get("effective_from"))] = [dict(r) for r in v["rows"] if isinstance(r, dict)]
    return found


def _label(file: str, row: Mapping[str, Cell]) -> str:
    spec = TABLES.get(Path(file).stem)
    keys = [k for k in (*(spec.match if spec else ()), *(spec.identity if spec else ())) if k in row]
    keys = list(dict.fromkeys(keys))
    if spec:
        keys += [lo for _q, lo, _hi in spec.ranges if lo in row]
    return " (" + ", ".join(f"{k}={_cell(row[k])}" for k in keys) + ")" if keys else ""


def _cell(value: Cell) -> str:
    return "(empty)" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _row_text(row: Mapping[str, Cell]) -> str:
    return ", ".join(f"{k}: {_cell(v)}" for k, v in row.items())


def _changes(file: str, old: list[dict[str, Cell]], new: Sequence[Mapping[str, Cell]]) -> Iterable[tuple[str, str]]:
    """(where, what) for each row that differs, by position."""
    for i in range(max(len(old), len(new))):
        before = old[i] if i < len(old) else None
        after = dict(new[i]) if i < len(new) else None
        if before == after:
            continue
        if before is None and after is not None:
            yield f"row {i + 1}{_label(file, after)}", f"added ({_row_text(after)})"
        elif after is None and before is not None:
            yield f"row {i + 1}{_label(file, before)}", f"removed (was {_row_text(before)})"
        elif before is not None and after is not None:
            fields = list(dict.fromkeys([*before, *after]))
            moved = [f"{f} {_cell(before.get(f))} → {_cell(after.get(f))}" for f in fields if before.get(f) != after.get(f)]
            yield f"row {i + 1}{_label(file, before)}", ", ".join(moved)


@dataclass(frozen=True)
class Correction:
    """A rules version in force replaced by a correcting one (``tradecert rules correct``):
    from ``at``, ``version`` (in the history) stands for ``corrects``, decided by ``by``."""

    id: int
    version: str
    corrects: tuple[str, ...]
    reason: str
    by: str
    at: dt.datetime


def _correction(row: RulesCorrection) -> Correction:
    return Correction(row.id, row.version, tuple(row.corrects.split(",")), row.reason, row.corrected_by,
                      row.corrected_at)


async def corrections_in(session: AsyncSession) -> list[Correction]:
    """Every correction, newest first."""
    rows = (await session.scalars(select(RulesCorrection).order_by(RulesCorrection.id.desc()))).all()
    return [_correction(r) for r in rows]


async def all_corrections(db: Database) -> list[Correction]:
    async with db.read() as session:
        return await corrections_in(session)


def _references(history: Sequence[StoredVersion], corrections: Sequence[Correction]) -> list[StoredVersion]:
    """The texts the files are held to, newest first: the versions that went live, back to
    the newest correction, which stands as its correcting version's text at its own time
    (what went live before it was either corrected by it or is still in its files)."""
    if not corrections:
        return list(history)
    newest = max(corrections, key=lambda c: (c.at, c.id))
    by_version = {s.version: s for s in history}
    correcting = by_version.get(newest.version)
    if correcting is None:  # recorded together; a history without it is not ours to judge
        return list(history)
    later = [s for s in history if s.went_live_at > newest.at and s.version != newest.version]
    return [*later, StoredVersion(correcting.id, correcting.version, newest.at, correcting.files)]


def rewrites(history: Sequence[StoredVersion], policy: PolicySet, today: dt.date,
             corrections: Sequence[Correction] = ()) -> list[Problem]:
    """Every in-place change ``policy`` makes to a version that went live and whose
    ``effective_from`` is ``today`` or earlier. ``history`` newest first; each version is
    compared with the newest text that went live for it (earlier texts were edits allowed
    while it still lay in the future), back to the newest of ``corrections``."""
    return [problem for problem, _version in _rewrites(history, policy, today, corrections)]


def _rewrites(history: Sequence[StoredVersion], policy: PolicySet, today: dt.date,
              corrections: Sequence[Correction]) -> list[tuple[Problem, str]]:
    """``rewrites``, each problem with the recorded version whose text it changes."""
    frozen: dict[tuple[str, str], _Frozen] = {}
    for stored in _references(history, corrections):
        for file, text in stored.files.items():
            for effective_from, rows in _versions_in(text).items():
                frozen.setdefault((file, effective_from), _Frozen(stored.version, stored.went_live_at, rows))
    current = {
        table.file: {v.effective_from.isoformat(): v.rows for v in table.versions} for table in policy.tables.values()
    }
    problems: list[tuple[Problem, str]] = []
    for (file, effective_from), kept in sorted(frozen.items()):
        try:
            day = dt.date.fromisoformat(effective_from)
        except ValueError:
            continue
        if day > today:
            continue  # not in force yet: still open to edits
        advice = (f"version {effective_from} has been in force since {day} (rules {kept.rules_version} went live with it); "
                  "add a new version with a later effective_from instead, or, if it is wrong, record these files as its "
                  "correction: tradecert rules correct --reason … --by …")
        where = f"version (effective_from {effective_from})"
        served = current.get(file, {}).get(effective_from)
        if served is None:
            problems.append((Problem(file, where, f"version removed; {advice}"), kept.rules_version))
            continue
        for row, what in _changes(file, kept.rows, served):
            problems.append((Problem(file, f"{where}, {row}", f"{what}; {advice}"), kept.rules_version))
    return problems


async def history_rewrites(db: Database, policy: PolicySet, clock: Clock) -> list[Problem]:
    """``rewrites`` against the history stored in ``db``, on today's Tokyo date."""
    return rewrites(await all_versions(db), policy, clock.today(), await all_corrections(db))


def rewritten_versions(history: Sequence[StoredVersion], policy: PolicySet, today: dt.date,
                       corrections: Sequence[Correction] = ()) -> list[str]:
    """The recorded versions whose rows in force ``policy`` rewrites."""
    return list(dict.fromkeys(version for _problem, version in _rewrites(history, policy, today, corrections)))


class NothingToCorrect(ValueError):
    """The files rewrite no version in force: they go live on the next reload as they are."""


REASON_MOST, BY_MOST = 500, 100  # the columns' room; a reason is a sentence, not a document


async def record_correction(db: Database, policy: PolicySet, clock: Clock, reason: str, by: str,
                            files: Mapping[str, str] | None = None) -> Correction:
    """Record ``policy`` (validated files) as the correction of the versions in force whose
    rows it rewrites, from now, by ``by`` for ``reason``: one transaction appends the
    correcting version to the history (unless it went live before: the files restored to an
    earlier version) and the correction. Every server's next reload serves it; the wrong
    version stays in the history for the records that name it. Raises ``NothingToCorrect``
    when no version in force is rewritten, ``ValueError`` for an empty or long reason/name."""
    reason, by = reason.strip(), by.strip()
    if not reason or len(reason) > REASON_MOST:
        raise ValueError(f"--reason: say why, in 1–{REASON_MOST} characters")
    if not by or len(by) > BY_MOST:
        raise ValueError(f"--by: who decides the correction, in 1–{BY_MOST} characters")
    files = files if files is not None else files_of(policy)
    if files is None:
        raise ValueError("the rule files changed while they were checked; run the command again")
    now = clock.now()
    async with db.write() as session:
        history = [_stored(r) for r in (await session.scalars(select(RulesVersion).order_by(RulesVersion.id.desc()))).all()]
        corrections = await corrections_in(session)
        corrects = rewritten_versions(history, policy, clock.today(), corrections)
        if not corrects:
            raise NothingToCorrect("the files rewrite no version in force: they go live on the next reload as they are "
                                   "(`tradecert rules check` says so); nothing to correct")
        await session.execute(
            dialect_insert(session)(RulesVersion)
            .values(version=policy.version, went_live_at=now, files=json.dumps(dict(files), ensure_ascii=False))
            .on_conflict_do_nothing(index_elements=["version"])
        )
        row = RulesCorrection(version=policy.version, corrects=",".join(corrects), reason=reason, corrected_by=by,
                              corrected_at=now)
        session.add(row)
        await session.flush()
        correction = _correction(row)
    log.warning("rules version %s recorded as the correction of %s", policy.version, ",".join(corrects))
    return correction


# --------------------------------------------------------------------------- the API


async def rules_versions(ctx: Context, first: int, before_id: int | None) -> tuple[list[StoredVersion], int, bool]:
    """Chamber staff: the versions that went live, newest first: (versions, total, more)."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "rules.history", {"none"})  # the rules are every chamber's
    return await versions(ctx.services.db, first, before_id)


async def rules_corrections(ctx: Context) -> list[Correction]:
    """Chamber staff: the corrections, newest first (they are rare: the newest MAX_PAGE)."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "rules.history", {"none"})
    return (await all_corrections(ctx.services.db))[:MAX_PAGE]
