"""Per-request DataLoaders: the nested fields of a page (registration, agent, createdBy,
signer, their membership and chamber) cost one query per kind, not one per row."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import select
from strawberry.dataloader import DataLoader

from persistence.models import Account, Chamber, RegistrationMembership, TradeRegistration
from resolvers.core.context import Context


def _loader(ctx: Context, name: str, batch: Callable[[Context, Sequence[int]], Awaitable[list]]) -> DataLoader:
    key = f"loader:{name}"
    if key not in ctx.loaders:
        ctx.loaders[key] = DataLoader(load_fn=lambda keys: batch(ctx, keys))
    return ctx.loaders[key]


async def _by_id(ctx: Context, model, keys: Sequence[int]) -> list:
    async with ctx.services.db.read() as session:
        rows = {row.id: row for row in (await session.scalars(select(model).where(model.id.in_(set(keys))))).all()}
    return [rows.get(k) for k in keys]


async def _accounts(ctx: Context, keys: Sequence[int]) -> list:
    return await _by_id(ctx, Account, keys)


async def _registrations(ctx: Context, keys: Sequence[int]) -> list:
    return await _by_id(ctx, TradeRegistration, keys)


async def _chambers(ctx: Context, keys: Sequence[int]) -> list:
    return await _by_id(ctx, Chamber, keys)


async def _memberships(ctx: Context, keys: Sequence[int]) -> list:
    """The membership in force now of each registration (the newest period covering now)."""
    now = ctx.clock.now()
    async with ctx.services.db.read() as session:
        rows = (await session.execute(
            select(RegistrationMembership.registration_id, RegistrationMembership.membership)
            .where(RegistrationMembership.registration_id.in_(set(keys)), RegistrationMembership.valid_from <= now,
                   (RegistrationMembership.valid_until.is_(None)) | (RegistrationMembership.valid_until > now))
            .order_by(RegistrationMembership.valid_from))).all()
    found = {rid: membership for rid, membership in rows}  # ascending: the newest wins
    return [found.get(k) for k in keys]


def account(ctx: Context, account_id: int) -> Awaitable[Account | None]:
    return _loader(ctx, "account", _accounts).load(account_id)


def registration(ctx: Context, registration_id: int) -> Awaitable[TradeRegistration | None]:
    return _loader(ctx, "registration", _registrations).load(registration_id)


def chamber(ctx: Context, chamber_id: int) -> Awaitable[Chamber | None]:
    return _loader(ctx, "chamber", _chambers).load(chamber_id)


def membership(ctx: Context, registration_id: int) -> Awaitable[str | None]:
    return _loader(ctx, "membership", _memberships).load(registration_id)
