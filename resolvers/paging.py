"""Newest-first pages over a table with an integer id (Relay connections)."""

from __future__ import annotations

from sqlalchemy import func, select

from resolvers.context import Context

MAX_PAGE = 100


async def newest_first(ctx: Context, model, scope, first: int | None, before_id: int | None) -> tuple[list, int, bool]:
    """(rows, total, has more) for ``first`` rows of ``model`` matching ``scope`` with id below ``before_id``."""
    first = max(1, min(first if first is not None else 20, MAX_PAGE))  # API.md: 1–100, default 20
    async with ctx.services.db.read() as session:
        total = await session.scalar(select(func.count()).select_from(model).where(scope))
        query = select(model).where(scope)
        if before_id is not None:
            query = query.where(model.id < before_id)
        rows = (await session.scalars(query.order_by(model.id.desc()).limit(first + 1))).all()
    return list(rows[:first]), total, len(rows) > first
