"""Named counters (receipt, certificate and payment numbers) shared by both database kinds."""

from __future__ import annotations

from persistence import locks
from persistence.db import dialect_insert
from persistence.models import Counter


async def next_number(session, name: str) -> int:
    """The next value of a named counter, race-free on both databases: one upsert
    (``INSERT … ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value``)
    whose row lock holds until the caller's transaction ends, so a rolled-back
    submission gives its number back. Counters are the last level of the lock order."""
    locks.note(session, "counter")
    insert = dialect_insert(session)
    statement = insert(Counter).values(name=name, value=1)
    statement = statement.on_conflict_do_update(index_elements=["name"], set_={"value": Counter.value + 1})
    return await session.scalar(statement.returning(Counter.value))
