"""Reads of applications for the schema: the 発給申請状況一覧 page and single applications,
as plain frozen views with every relation the page shows already in them.

A page costs a fixed number of set-based statements in the request's read unit, whatever
its size: the rows with the total (one statement), their creators and signers with those
accounts' registrations (one), and the applicant and agent registrations not among those
(one, usually skipped: the creator's registration is the applicant's). Registrations come
with their chamber and the membership in force now (resolvers/identity/queries.py).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, and_, bindparam, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Application, ApplicationGoods, TradeRegistration
from resolvers.core import loaders
from resolvers.core.context import Context
from resolvers.core.paging import DEFAULT_PAGE, MAX_PAGE
from resolvers.identity import queries as identity
from resolvers.identity.actor import Viewer, require_viewer
from resolvers.identity.queries import AccountView, RegistrationView
from rules.permissions import is_allowed

APPLICATIONS = Application.__table__
GOODS = ApplicationGoods.__table__


@dataclass(frozen=True, slots=True)
class GoodsLineView:
    description: str
    quantity: str
    hs_code: str
    origin_country: str


@dataclass(frozen=True, slots=True)
class ApplicationView:
    """An application with its applicant and agent registrations, creator and signer."""

    id: int
    state: str
    type: str
    signature_kind: str | None
    destination_country: str
    goods_category: str
    invoice_number: str
    exporter_name: str
    consignee: str | None
    transport: str | None
    person_in_charge: str | None
    fee_payment: str
    receipt_number: str | None
    fee: int | None
    fee_rules_version: str | None
    submitted_at: dt.datetime | None
    approved_at: dt.datetime | None
    issued_at: dt.datetime | None
    hold_reason: str | None
    certificate_number: str | None
    access_code: str | None
    content_hash: str | None
    registration: RegistrationView
    agent: RegistrationView | None
    created_by: AccountView
    signer: AccountView


@dataclass(frozen=True, slots=True)
class ApplicationPage:
    applications: list[ApplicationView]
    total: int
    has_more: bool


@dataclass(frozen=True, slots=True)
class Filter:
    """発給申請状況一覧の検索条件 (dates: Tokyo submission dates, inclusive)."""

    type: str | None = None
    state: str | None = None
    submitted_from: dt.date | None = None
    submitted_to: dt.date | None = None
    receipt_number: str | None = None
    invoice_number: str | None = None
    person_in_charge: str | None = None


_a = APPLICATIONS.c
COLUMNS = (
    _a.id, _a.state, _a.type, _a.signature_kind, _a.destination_country, _a.goods_category, _a.invoice_number,
    _a.exporter_name, _a.consignee, _a.transport, _a.person_in_charge, _a.fee_payment, _a.receipt_number, _a.fee,
    _a.fee_rules_version, _a.submitted_at, _a.approved_at, _a.issued_at, _a.hold_reason, _a.certificate_number,
    _a.access_code, _a.content_hash,
    _a.registration_id, _a.agent_registration_id, _a.created_by_id, _a.signer_id,
)
_OWN = len(COLUMNS) - 4  # the columns of the view itself; the four ids of its relations follow
_view: Callable[..., ApplicationView] = ApplicationView  # fields in the order of COLUMNS, then the relations


def _relations(ctx: Context, who: Viewer) -> tuple[bool, bool, bool]:
    """Which relations let ``who`` see an application (permissions.yaml): its own registration's,
    those it created, those of its chamber (chamber staff) — the same relations as
    ``use_cases.relations`` and ``use_cases.visibility_scope`` decide single applications by."""
    policy, today = ctx.services.rules.current, ctx.clock.today()

    def allows(relation: str) -> bool:
        return is_allowed(policy, today, who.actor, "application.view", {relation})

    return (allows("own_registration") and who.registration_id is not None, allows("created_by_me"),
            allows("same_chamber") and who.kind == "CHAMBER_STAFF")


def _viewer_params(who: Viewer) -> dict[str, Any]:
    return {"viewer_registration_id": who.registration_id, "viewer_id": who.id, "viewer_chamber_id": who.chamber_id}


def _visible(relations: tuple[bool, bool, bool]) -> ColumnElement[bool]:
    own, mine, chamber = relations
    conditions: list[ColumnElement[bool]] = []
    if own:
        conditions.append(_a.registration_id == bindparam("viewer_registration_id"))
    if mine:
        conditions.append(_a.created_by_id == bindparam("viewer_id"))
    if chamber:
        registrations = TradeRegistration.__table__.c
        conditions.append(_a.registration_id.in_(
            select(registrations.id).where(registrations.chamber_id == bindparam("viewer_chamber_id"))))
    return or_(*conditions) if conditions else and_(false())


_FILTERS: dict[str, Callable[[], ColumnElement[bool]]] = {
    "type": lambda: _a.type == bindparam("type"),
    "state": lambda: _a.state == bindparam("state"),
    "submitted_from": lambda: _a.submitted_on >= bindparam("submitted_from"),
    "submitted_to": lambda: _a.submitted_on <= bindparam("submitted_to"),
    "receipt_number": lambda: _a.receipt_number == bindparam("receipt_number"),
    "invoice_number": lambda: _a.invoice_number == bindparam("invoice_number"),
    "person_in_charge": lambda: _a.person_in_charge.contains(bindparam("person_in_charge"), escape="/"),
}


def _filter_params(flt: Filter) -> dict[str, Any]:
    """The filter's values by name, only those given (trimmed; LIKE wildcards escaped)."""
    found: dict[str, Any] = {}
    for name in _FILTERS:
        value = getattr(flt, name)
        if value:
            found[name] = value.strip() if isinstance(value, str) else value
    if "person_in_charge" in found:
        found["person_in_charge"] = (found["person_in_charge"].replace("/", "//").replace("%", "/%")
                                     .replace("_", "/_"))
    return found


@functools.lru_cache(maxsize=256)
def _page_statements(relations: tuple[bool, bool, bool], filters: tuple[str, ...],
                     after: bool) -> tuple[Select[Any], Select[Any]]:
    """(page with its total, total alone) for this shape of request, built once: the values
    are bind parameters."""
    matching = and_(_visible(relations), *(_FILTERS[name]() for name in filters))
    total = select(func.count()).select_from(APPLICATIONS).where(matching)
    page = select(*COLUMNS, total.scalar_subquery()).where(matching)
    if after:
        page = page.where(_a.id < bindparam("before_id"))
    return page.order_by(_a.id.desc()).limit(bindparam("size", type_=Integer)), total


@functools.lru_cache(maxsize=16)
def _one_statement(relations: tuple[bool, bool, bool] | None) -> Select[Any]:
    """One application by id; when ``relations`` are given, only if they let the viewer see it."""
    condition = _a.id == bindparam("application_id")
    if relations is not None:
        condition = and_(condition, _visible(relations))
    return select(*COLUMNS).where(condition)


def _assembled(rows: Sequence[Sequence[Any]], accounts: dict[int, AccountView],
               registrations: dict[int, RegistrationView]) -> list[ApplicationView]:
    views = []
    for row in rows:
        registration_id, agent_id, created_by_id, signer_id = row[_OWN:_OWN + 4]
        views.append(_view(
            *row[:_OWN], registrations[registration_id], registrations[agent_id] if agent_id is not None else None,
            accounts[created_by_id], accounts[signer_id]))
    return views


def _people(rows: Sequence[Sequence[Any]]) -> set[int]:
    """The creators and signers of application rows (COLUMNS)."""
    return {pk for row in rows for pk in row[_OWN + 2:_OWN + 4]}


def _registrations_wanted(rows: Sequence[Sequence[Any]], accounts: dict[int, AccountView],
                          ) -> tuple[dict[int, RegistrationView], set[int]]:
    """The registrations the accounts brought, and the applicant/agent ones still to read."""
    found = {a.registration.id: a.registration for a in accounts.values() if a.registration is not None}
    return found, {pk for row in rows for pk in row[_OWN:_OWN + 2] if pk is not None} - found.keys()


async def _read_views(ctx: Context, rows: Sequence[Sequence[Any]]) -> list[ApplicationView]:
    """The views of application rows (COLUMNS): two more statements at most, for all of them."""
    accounts = await identity.accounts(ctx, _people(rows))
    registrations, missing = _registrations_wanted(rows, accounts)
    if missing:
        registrations.update(await identity.registrations(ctx, missing))
    return _assembled(rows, accounts, registrations)


async def _views(unit: AsyncSession, rows: Sequence[Sequence[Any]], now: dt.datetime) -> list[ApplicationView]:
    """The same, for a reader that holds the read unit's session (resolvers/payments/queries.py)."""
    accounts = await identity.accounts_by_id(unit, _people(rows), now)
    registrations, missing = _registrations_wanted(rows, accounts)
    if missing:
        registrations.update(await identity.registrations_by_id(unit, missing, now))
    return _assembled(rows, accounts, registrations)


async def application_page(ctx: Context, flt: Filter, first: int | None, before_id: int | None) -> ApplicationPage:
    """What the viewer may see matching ``flt``, newest first: ``first`` applications with id
    below ``before_id``, the total matching (whatever the cursor) and whether more follow."""
    first = DEFAULT_PAGE if first is None else first
    if not 1 <= first <= MAX_PAGE:  # never clamp silently: the edge answers BAD_USER_INPUT before this
        raise ValueError(f"page size {first} outside 1–{MAX_PAGE}")
    who = await require_viewer(ctx)
    values = _filter_params(flt)
    page, total = _page_statements(_relations(ctx, who), tuple(values), before_id is not None)
    params = {**_viewer_params(who), **values, "before_id": before_id, "size": first + 1}
    rows = await ctx.rows(page, params)
    if rows:
        count = rows[0][-1]
    else:  # past the end (or nothing at all): the total alone
        count = 0 if before_id is None else (await ctx.rows(total, params))[0][0]
    views = await _read_views(ctx, rows[:first])
    return ApplicationPage(views, int(count or 0), len(rows) > first)


async def visible_application(ctx: Context, application_id: int) -> ApplicationView | None:
    """The application if the viewer may see it (Query.node), else None — not even whether it exists."""
    who = await require_viewer(ctx)
    return await _one(ctx, _one_statement(_relations(ctx, who)), {**_viewer_params(who), "application_id": application_id})


async def application(ctx: Context, application_id: int) -> ApplicationView | None:
    """The application a use case just returned to the viewer (it decided who may see it)."""
    return await _one(ctx, _one_statement(None), {"application_id": application_id})


BY_IDS = select(*COLUMNS).where(_a.id.in_(bindparam("ids", expanding=True)))


async def applications_by_id(ctx: Context, ids: Sequence[int]) -> dict[int, ApplicationView]:
    """The applications a bulk use case just returned (it decided who may see them), by id:
    three statements for the lot, whatever their number."""
    if not ids:
        return {}
    return {view.id: view for view in await _read_views(ctx, await ctx.rows(BY_IDS, {"ids": list(set(ids))}))}


async def _one(ctx: Context, statement: Select[Any], params: dict[str, Any]) -> ApplicationView | None:
    views = await _read_views(ctx, await ctx.rows(statement, params))
    return views[0] if views else None


# --------------------------------------------------------------------------- goods (on demand)


_g = GOODS.c
GOODS_OF = (select(_g.application_id, _g.description, _g.quantity, _g.hs_code, _g.origin_country)
            .where(_g.application_id.in_(bindparam("ids", expanding=True))).order_by(_g.application_id, _g.position))


async def _load_goods(ctx: Context, keys: Sequence[int]) -> list[list[GoodsLineView]]:
    found: dict[int, list[GoodsLineView]] = {k: [] for k in keys}
    for application_id, *line in await ctx.rows(GOODS_OF, {"ids": list(set(keys))}):
        found[application_id].append(GoodsLineView(*line))
    return [found[k] for k in keys]


async def goods(ctx: Context, application_id: int) -> list[GoodsLineView]:
    """The goods lines of an application, batched with the others asked for in the same tick
    (a page does not preload them: the list shows none)."""
    return await loaders.loader(ctx, "goods", _load_goods).load(application_id)
