"""The one way a stateful row (an application, a NACCS application) changes state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Application, NaccsApplication
from resolvers.core.errors import ErrorCode, UserFailure
from resolvers.core.messages import Words


async def transition(session: AsyncSession, model: type[Application] | type[NaccsApplication], pk: int,
                     from_states: tuple[str, ...], values: dict[str, Any], *, state_names: Mapping[str, Words],
                     where: tuple[ColumnElement[bool], ...] = (), returning: tuple[Any, ...] = ()) -> Row[Any]:
    """``UPDATE model SET values WHERE id = pk AND state IN from_states [AND where…] RETURNING …``.

    A row in another state — or one another click, reviewer or worker changed first — gets
    INVALID_STATE naming the state it is in (``state_names``: the domain's words for its
    states), and the caller's transaction (with anything it wrote before) rolls back. Returns the RETURNING row (``returning`` columns; the id when none are named)."""
    row = (await session.execute(
        update(model).where(model.id == pk, model.state.in_(from_states), *where)
        .values(**values).returning(*(returning or (model.id,))))).first()
    if row is None:
        state = await session.scalar(select(model.state).where(model.id == pk))
        name = state_names.get(state, state) if state is not None else None
        raise UserFailure(ErrorCode.INVALID_STATE, ["input", "applicationId"], state=name or "-")
    return row
