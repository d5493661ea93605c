"""Newest-first pages over a table with an integer id (Relay connections)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select

from resolvers.core.context import Context

DEFAULT_PAGE = 20
MAX_PAGE = 100  # docs/api.md: `first` is 1–100, default 20; schema/paging.py refuses anything else

M = TypeVar("M")


async def newest_first(ctx: Context, model: type[M], scope: ColumnElement[bool], first: int | None,
                       before_id: int | None) -> tuple[list[M], int, bool]:
    """(rows, total, has more) for ``first`` rows of ``model`` matching ``scope`` with id below
    ``before_id``, read in the request's read unit."""
    first = DEFAULT_PAGE if first is None else first
    if not 1 <= first <= MAX_PAGE:  # never clamp silently: the edge answers BAD_USER_INPUT before this
        raise ValueError(f"page size {first} outside 1–{MAX_PAGE}")
    pk: Any = model.id  # type: ignore[attr-defined]  # every paged model has an integer id
    async with ctx.read() as session:
        total = await session.scalar(select(func.count()).select_from(model).where(scope))
        query = select(model).where(scope)
        if before_id is not None:
            query = query.where(pk < before_id)
        rows = (await session.scalars(query.order_by(pk.desc()).limit(first + 1))).all()
    return list(rows[:first]), total or 0, len(rows) > first
