"""Newest-first pages over a table with an integer id (Relay connections)."""

from __future__ import annotations

from sqlalchemy import func, select

from resolvers.core.context import Context

DEFAULT_PAGE = 20
MAX_PAGE = 100  # docs/api.md: `first` is 1–100, default 20; schema/paging.py refuses anything else


async def newest_first(ctx: Context, model, scope, first: int | None, before_id: int | None) -> tuple[list, int, bool]:
    """(rows, total, has more) for ``first`` rows of ``model`` matching ``scope`` with id below ``before_id``."""
    first = DEFAULT_PAGE if first is None else first
    if not 1 <= first <= MAX_PAGE:  # never clamp silently: the edge answers BAD_USER_INPUT before this
        raise ValueError(f"page size {first} outside 1–{MAX_PAGE}")
    async with ctx.services.db.read() as session:
        total = await session.scalar(select(func.count()).select_from(model).where(scope))
        query = select(model).where(scope)
        if before_id is not None:
            query = query.where(model.id < before_id)
        rows = (await session.scalars(query.order_by(model.id.desc()).limit(first + 1))).all()
    return list(rows[:first]), total, len(rows) > first
