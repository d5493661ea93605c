"""Coupon accounts, their history, orders and refunds as the API shows them: read functions
that return plain frozen views, never ORM rows.

A list is loaded with its relations in a fixed number of set-based statements (SQLAlchemy
Core selects of columns, no identity map): the page, its total, then one statement per
relation the page shows (lines, virtual accounts, card sessions, buyers …), whatever the
page size. The one rare relation — the order a history entry came from — is batched per
request (``purchase_loader``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from persistence.models import (
    CardPayment,
    CouponAccount,
    CouponEntry,
    CouponPurchase,
    CouponPurchaseLine,
    Refund,
    TradeRegistration,
    VirtualAccount,
)
from resolvers.core.context import Context
from resolvers.core.errors import ErrorCode, Forbidden, UserFailure
from resolvers.core.paging import DEFAULT_PAGE, MAX_PAGE
from resolvers.coupons import messages as words
from resolvers.coupons.names import PurchaseMethod, PurchaseStatus
from resolvers.identity import queries as identity
from resolvers.identity.actor import Viewer, authorize, require_viewer, viewer
from resolvers.identity.names import AccountKind
from resolvers.identity.queries import AccountView, RegistrationView
from resolvers.payments.names import CardPaymentStatus

T = TypeVar("T")

REFUNDS_LISTED = 500  # the chamber's refund list: newest first, a bound, not policy

_entries = CouponEntry.__table__
_purchases = CouponPurchase.__table__
_lines = CouponPurchaseLine.__table__
_virtual_accounts = VirtualAccount.__table__
_card_payments = CardPayment.__table__
_refunds = Refund.__table__
_registrations = TradeRegistration.__table__
_coupon_accounts = CouponAccount.__table__


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a newest-first list: its items, the total and whether more follow."""

    items: tuple[T, ...]
    total: int
    more: bool


@dataclass(frozen=True)
class CouponAccountView:
    registration: RegistrationView
    balance: int  # クーポン残数
    pending: int  # クーポン購入手続中


@dataclass(frozen=True)
class CouponEntryView:
    id: int
    kind: str
    at: dt.datetime
    confirmed: bool
    coupons: int
    balance_after: int | None
    note: str | None
    receipt_number: str | None
    actor: AccountView | None
    purchase_id: int | None  # the order a PURCHASE entry came from (purchase_loader)


@dataclass(frozen=True)
class PurchaseLineView:
    product_code: str
    quantity: int
    unit_price: int
    coupons: int
    amount: int


@dataclass(frozen=True)
class VirtualAccountView:
    bank_code: str
    bank_name: str
    branch_code: str
    branch_name: str
    account_number: str
    holder: str
    valid_until: dt.date


@dataclass(frozen=True)
class PurchaseView:
    id: int
    order_number: str
    status: str
    method: str
    membership: str
    coupons: int
    amount: int
    ordered_at: dt.datetime
    expires_at: dt.datetime | None
    paid_at: dt.datetime | None
    deposited_amount: int | None
    refund_due: int | None
    cancel_reason: str | None
    registration_id: int
    buyer: AccountView
    lines: tuple[PurchaseLineView, ...]
    virtual_account: VirtualAccountView | None
    payment_url: str | None  # card orders awaiting payment: the gateway's page while its session is open
    paid_by_viewer: bool  # card orders once issued: the viewer is the account that paid


@dataclass(frozen=True)
class RefundView:
    id: int
    registration: RegistrationView
    amount: int
    reason: str
    created_at: dt.datetime
    paid_at: dt.datetime | None
    rules_versions: tuple[str, ...] = ()  # the versions its lots were priced under


# --------------------------------------------------------------------------- who may see an account


def coupon_relation(who: Viewer, registration_id: int, chamber_id: int) -> set[str]:
    """How the viewer relates to a registration's coupons (permissions.yaml decides from it)."""
    found = set()
    if who.account.registration_id == registration_id:
        found.add("own_registration")
    if who.account.chamber_id == chamber_id:
        found.add("same_chamber")
    return found or {"none"}


async def coupon_account(ctx: Context, registration_number: str | None) -> CouponAccountView:
    """The viewer's applicant registration (signers and sub-IDs share its balance), or —
    for chamber staff — the registration they name. Unknown and another chamber's
    registrations are the same NOT_FOUND; accounts without coupons are FORBIDDEN."""
    who = await require_viewer(ctx)
    number = registration_number.strip() if registration_number else None
    if number is None:
        if who.account.registration_id is None:
            if who.account.kind == AccountKind.CHAMBER_STAFF:
                raise UserFailure(ErrorCode.REQUIRED, ["registrationNumber"], label=words.REGISTRATION_NUMBER)
            raise Forbidden()
    elif len(number) > 20:
        raise UserFailure(ErrorCode.NOT_FOUND, ["registrationNumber"])
    wanted = (_registrations.c.number == number if number is not None
              else _registrations.c.id == who.account.registration_id)
    async with ctx.read() as unit:
        row = (await unit.execute(
            select(_registrations.c.id, _registrations.c.chamber_id, _coupon_accounts.c.balance, _coupon_accounts.c.pending)
            .select_from(_registrations.outerjoin(_coupon_accounts,
                                                  _coupon_accounts.c.registration_id == _registrations.c.id))
            .where(wanted))).first()
    if row is None:  # only a named number can be missing: the viewer's own registration exists
        raise UserFailure(ErrorCode.NOT_FOUND, ["registrationNumber"])
    try:
        await authorize(ctx, who, "coupon.view", coupon_relation(who, row.id, row.chamber_id))
    except Forbidden:
        if number is not None and who.account.kind == AccountKind.CHAMBER_STAFF:  # another chamber's: not even its existence
            raise UserFailure(ErrorCode.NOT_FOUND, ["registrationNumber"]) from None
        raise
    async with ctx.read() as unit:  # after the decision: nothing is read for a registration the viewer may not see
        registration = (await identity.registrations_by_id(unit, [row.id], ctx.clock.now()))[row.id]
    return CouponAccountView(registration, row.balance or 0, row.pending or 0)


# --------------------------------------------------------------------------- history


def _checked_size(first: int | None) -> int:
    first = DEFAULT_PAGE if first is None else first
    if not 1 <= first <= MAX_PAGE:  # never clamp silently: the edge answers BAD_USER_INPUT before this
        raise ValueError(f"page size {first} outside 1–{MAX_PAGE}")
    return first


async def _newest_first(session: AsyncSession, columns: Sequence[Any], id_column: Any, scope: ColumnElement[bool],
                        first: int | None, before_id: int | None) -> tuple[list[Row[Any]], int, bool]:
    """Two statements: the total of ``scope`` and up to ``first`` rows below ``before_id``."""
    size = _checked_size(first)
    total = await session.scalar(select(func.count()).select_from(id_column.table).where(scope))
    query = select(*columns).where(scope)
    if before_id is not None:
        query = query.where(id_column < before_id)
    rows = list((await session.execute(query.order_by(id_column.desc()).limit(size + 1))).all())
    return rows[:size], total or 0, len(rows) > size


async def history(ctx: Context, registration_id: int, first: int | None, before_id: int | None) -> Page[CouponEntryView]:
    """クーポン履歴 of a registration whose account the viewer was allowed to open, newest
    first, with the account behind each entry: three statements."""
    e = _entries.c
    async with ctx.read() as unit:
        rows, total, more = await _newest_first(
            unit, (e.id, e.kind, e.at, e.confirmed, e.coupons, e.balance_after, e.note, e.receipt_number, e.actor_id,
                   e.purchase_id), e.id, e.registration_id == registration_id, first, before_id)
        actors = await identity.accounts_by_id(unit, {r.actor_id for r in rows if r.actor_id is not None}, ctx.clock.now())
    return Page(tuple(CouponEntryView(r.id, r.kind, r.at, r.confirmed, r.coupons, r.balance_after, r.note, r.receipt_number,
                                      actors.get(r.actor_id) if r.actor_id is not None else None, r.purchase_id)
                      for r in rows), total, more)


# --------------------------------------------------------------------------- orders

_PURCHASE_COLUMNS = (
    _purchases.c.id, _purchases.c.order_number, _purchases.c.status, _purchases.c.method, _purchases.c.membership,
    _purchases.c.coupons, _purchases.c.amount, _purchases.c.ordered_at, _purchases.c.expires_at, _purchases.c.paid_at,
    _purchases.c.deposited_amount, _purchases.c.refund_due, _purchases.c.cancel_reason, _purchases.c.registration_id,
    _purchases.c.buyer_id,
)


async def _purchase_views(ctx: Context, unit: AsyncSession, who: Viewer | None,
                          rows: Sequence[Row[Any]]) -> list[PurchaseView]:
    """Orders with their lines, virtual accounts, card sessions and buyers: one statement per
    relation the rows need (none for no rows; no card statement without card orders)."""
    if not rows:
        return []
    ids = [r.id for r in rows]
    lines: dict[int, list[PurchaseLineView]] = {i: [] for i in ids}
    for line in (await unit.execute(
            select(_lines.c.purchase_id, _lines.c.product_code, _lines.c.quantity, _lines.c.unit_price, _lines.c.coupons,
                   _lines.c.amount).where(_lines.c.purchase_id.in_(ids)).order_by(_lines.c.id))).all():
        lines[line.purchase_id].append(PurchaseLineView(line.product_code, line.quantity, line.unit_price, line.coupons,
                                                        line.amount))
    accounts: dict[int, VirtualAccountView] = {}
    transfers = [r.id for r in rows if r.method == PurchaseMethod.BANK_TRANSFER]
    if transfers:
        v = _virtual_accounts.c
        for a in (await unit.execute(
                select(v.purchase_id, v.bank_code, v.bank_name, v.branch_code, v.branch_name, v.account_number, v.holder,
                       v.valid_until).where(v.purchase_id.in_(transfers)))).all():
            accounts[a.purchase_id] = VirtualAccountView(a.bank_code, a.bank_name, a.branch_code, a.branch_name,
                                                         a.account_number, a.holder, a.valid_until)
    payments: dict[int, Row[Any]] = {}
    cards = [r.id for r in rows
             if r.method == PurchaseMethod.CARD and r.status in (PurchaseStatus.AWAITING_PAYMENT, PurchaseStatus.ISSUED)]
    if cards:
        c = _card_payments.c
        payments = {p.purchase_id: p for p in (await unit.execute(
            select(c.purchase_id, c.status, c.expires_at, c.payment_url, c.payer_id)
            .where(c.purchase_id.in_(cards)))).all()}
    now = ctx.clock.now()
    buyers = await identity.accounts_by_id(unit, {r.buyer_id for r in rows}, now)
    found = []
    for r in rows:
        payment = payments.get(r.id)
        payment_url = (payment.payment_url if payment is not None and r.status == PurchaseStatus.AWAITING_PAYMENT
                       and payment.status == CardPaymentStatus.OPEN and now <= payment.expires_at else None)
        paid_by_viewer = (payment is not None and r.status == PurchaseStatus.ISSUED and who is not None
                          and payment.payer_id == who.account.id)
        found.append(PurchaseView(
            r.id, r.order_number, r.status, r.method, r.membership, r.coupons, r.amount, r.ordered_at, r.expires_at,
            r.paid_at, r.deposited_amount, r.refund_due, r.cancel_reason, r.registration_id, buyers[r.buyer_id],
            tuple(lines[r.id]), accounts.get(r.id), payment_url, paid_by_viewer))
    return found


async def purchases_of(ctx: Context, registration_id: int, first: int | None, before_id: int | None) -> Page[PurchaseView]:
    """Orders of a registration whose account the viewer was allowed to open, newest first."""
    who = await viewer(ctx)
    async with ctx.read() as unit:
        rows, total, more = await _newest_first(unit, _PURCHASE_COLUMNS, _purchases.c.id,
                                                _purchases.c.registration_id == registration_id, first, before_id)
        views = await _purchase_views(ctx, unit, who, rows)
    return Page(tuple(views), total, more)


async def purchases_by_ids(ctx: Context, ids: Iterable[int]) -> dict[int, PurchaseView]:
    """Orders by id, for a result the use case already authorized (a mutation's payload)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    who = await viewer(ctx)
    async with ctx.read() as unit:
        rows = (await unit.execute(select(*_PURCHASE_COLUMNS).where(_purchases.c.id.in_(wanted))
                                   .order_by(_purchases.c.id))).all()
        views = await _purchase_views(ctx, unit, who, rows)
    return {v.id: v for v in views}


async def purchase(ctx: Context, purchase_id: int) -> PurchaseView | None:
    return (await purchases_by_ids(ctx, [purchase_id])).get(purchase_id)


def purchase_loader(ctx: Context) -> DataLoader[int, PurchaseView | None]:
    """The order of a history entry (a rare field): every entry of the request in one batch."""
    key = "coupons:purchase"
    if key not in ctx.loaders:
        async def load(keys: list[int]) -> list[PurchaseView | None]:
            found = await purchases_by_ids(ctx, keys)
            return [found.get(k) for k in keys]
        ctx.loaders[key] = DataLoader(load_fn=load)
    loader: DataLoader[int, PurchaseView | None] = ctx.loaders[key]
    return loader


async def visible_purchase(ctx: Context, purchase_id: int) -> PurchaseView | None:
    """An order, when the viewer may see its registration's coupons (else None, as if absent)."""
    who = await require_viewer(ctx)
    async with ctx.read() as unit:
        row = (await unit.execute(
            select(*_PURCHASE_COLUMNS, _registrations.c.chamber_id)
            .join(_registrations, _registrations.c.id == _purchases.c.registration_id)
            .where(_purchases.c.id == purchase_id))).first()
    if row is None:
        return None
    try:
        await authorize(ctx, who, "coupon.view", coupon_relation(who, row.registration_id, row.chamber_id))
    except Forbidden:
        return None
    async with ctx.read() as unit:
        [view] = await _purchase_views(ctx, unit, who, [row])
    return view


# --------------------------------------------------------------------------- refunds

_REFUND_COLUMNS = (_refunds.c.id, _refunds.c.registration_id, _refunds.c.amount, _refunds.c.reason, _refunds.c.created_at,
                   _refunds.c.paid_at, _refunds.c.rules_version)


async def _refund_views(ctx: Context, unit: AsyncSession, rows: Sequence[Row[Any]]) -> list[RefundView]:
    registrations = await identity.registrations_by_id(unit, {r.registration_id for r in rows}, ctx.clock.now())
    return [RefundView(r.id, registrations[r.registration_id], r.amount, r.reason, r.created_at, r.paid_at,
                       tuple(r.rules_version.split(",")) if r.rules_version else ()) for r in rows]


async def list_refunds(ctx: Context, paid: bool | None) -> list[RefundView]:
    """Chamber staff: refunds the chamber owes (or owed), newest first, with their registrations."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "coupon.adjust", {"same_chamber"})
    query = (select(*_REFUND_COLUMNS).join(_registrations, _registrations.c.id == _refunds.c.registration_id)
             .where(_registrations.c.chamber_id == who.account.chamber_id))
    if paid is not None:
        query = query.where(_refunds.c.paid_at.is_not(None) if paid else _refunds.c.paid_at.is_(None))
    async with ctx.read() as unit:
        rows = (await unit.execute(query.order_by(_refunds.c.id.desc()).limit(REFUNDS_LISTED))).all()
        return await _refund_views(ctx, unit, rows)


async def refunds_by_ids(ctx: Context, ids: Iterable[int]) -> list[RefundView]:
    """Refunds by id, in id order, for a result the use case already authorized."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    async with ctx.read() as unit:
        rows = (await unit.execute(select(*_REFUND_COLUMNS).where(_refunds.c.id.in_(wanted))
                                   .order_by(_refunds.c.id))).all()
        return await _refund_views(ctx, unit, rows)
