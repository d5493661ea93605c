"""The one way a stateful row (an application, a NACCS application) changes state."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from resolvers.core.errors import UserFailure


async def transition(session, model, pk: int, from_states: tuple[str, ...], values: dict[str, Any], *,
                     where: tuple = (), returning: tuple = ()) -> Any:
    """``UPDATE model SET values WHERE id = pk AND state IN from_states [AND where…] RETURNING …``.

    A row in another state — or one another click, reviewer or worker changed first — gets
    INVALID_STATE, and the caller's transaction (with anything it wrote before) rolls back.
    Returns the RETURNING row (``returning`` columns; the id when none are named)."""
    row = (await session.execute(
        update(model).where(model.id == pk, model.state.in_(from_states), *where)
        .values(**values).returning(*(returning or (model.id,))))).first()
    if row is None:
        raise UserFailure("INVALID_STATE", ["input", "applicationId"])
    return row
