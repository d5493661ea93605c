"""The card cart, the last checkout and the card statements as the API shows them: read
functions returning plain frozen views, never ORM rows.

A cart is two statements in the request's read unit plus the application views' own (at
most two, resolvers/applications/queries.py): the payable applications with a flag for the
viewer's cart, and the viewer's last checkout. A month of statements is one statement plus
the application views'. The tax part of a statement is decided here, from rules/tax.yaml
(``statement_tax``), not in the schema.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, exists, select

from persistence.models import CardCartItem, CardPayment, CardPaymentItem, CardStatement
from resolvers.applications import queries as applications
from resolvers.applications.queries import ApplicationView
from resolvers.core.clock import TOKYO, tokyo_date
from resolvers.core.context import Context
from resolvers.core.errors import Forbidden
from resolvers.fees import rules_history
from resolvers.identity.actor import require_viewer
from resolvers.payments import checkout
from resolvers.payments.names import CardPaymentStatus, PaymentPurpose
from rules import fees
from rules.policy import PolicySet

_cart_items = CardCartItem.__table__
_payments = CardPayment.__table__
_payment_items = CardPaymentItem.__table__
_statements = CardStatement.__table__


@dataclass(frozen=True, slots=True)
class CardCheckoutView:
    """The viewer's most recent card checkout of applications."""

    payment_number: str
    status: str
    amount: int
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class CartView:
    """Approved card applications the viewer may pay, those it chose, and its last checkout."""

    payable: tuple[ApplicationView, ...]
    items: tuple[ApplicationView, ...]
    last_checkout: CardCheckoutView | None

    @property
    def total(self) -> int:
        return sum(a.fee or 0 for a in self.items)


@dataclass(frozen=True, slots=True)
class StatementView:
    """クレジットカード利用明細 of one application: only for the account that paid."""

    number: str
    application: ApplicationView
    amount: int
    tax: int  # the consumption tax contained in amount (rules/tax.yaml)
    paid_at: dt.datetime


def statement_tax(policy: PolicySet, submitted_on: dt.date, amount: int) -> int:
    """The consumption tax contained in a card statement's amount: the rate and rounding of
    rules/tax.yaml in force on the Tokyo date the application was first submitted (the date
    that fixed its fee)."""
    return fees.tax_part(policy, submitted_on, amount)


async def card_cart(ctx: Context) -> CartView:
    """クレジット決済: the approved card applications the viewer may pay (permissions.yaml
    ``application.pay``, decided by ``checkout.payable_scope``) and the ones in its cart."""
    who = await require_viewer(ctx)
    if who.account.registration_id is None:
        raise Forbidden()
    c, p = _cart_items.c, _payments.c
    in_cart = exists().where(c.account_id == who.account.id, c.application_id == applications.APPLICATIONS.c.id)
    now = ctx.clock.now()
    async with ctx.read() as unit:
        rows = (await unit.execute(
            select(*applications.COLUMNS, in_cart.label("in_cart"))
            .where(checkout.payable_scope(ctx, who)).order_by(applications.APPLICATIONS.c.id))).all()
        payable = await applications._views(unit, rows, now)
        last = (await unit.execute(
            select(p.payment_number, p.status, p.amount, p.expires_at)
            .where(p.payer_id == who.account.id, p.purpose == PaymentPurpose.APPLICATIONS)
            .order_by(p.id.desc()).limit(1))).first()
    items = tuple(view for view, row in zip(payable, rows) if row.in_cart)
    return CartView(tuple(payable), items,
                    CardCheckoutView(last.payment_number, last.status, last.amount, last.expires_at) if last else None)


async def card_statements(ctx: Context, month: str) -> list[StatementView]:
    """クレジット利用明細 of one Tokyo month ("2026-04"): only what the viewer itself paid,
    newest first. INVALID (``month``) for anything but a month."""
    who = await require_viewer(ctx)
    first, nxt = checkout.month_bounds(month)
    start, end = dt.datetime.combine(first, dt.time(), TOKYO), dt.datetime.combine(nxt, dt.time(), TOKYO)
    p, i, a, s = _payments.c, _payment_items.c, applications.APPLICATIONS.c, _statements.c
    async with ctx.read() as unit:
        rows = (await unit.execute(
            select(*applications.COLUMNS, s.number.label("statement_number"), i.amount.label("item_amount"),
                   p.closed_at.label("closed_at"), a.submitted_on.label("submitted_on"),
                   a.rules_version.label("fee_rules_hash"))
            .select_from(_payment_items.join(_payments, p.id == i.card_payment_id)
                         .join(_statements, s.card_payment_item_id == i.id)
                         .join(applications.APPLICATIONS, a.id == i.application_id))
            .where(p.payer_id == who.account.id, p.status == CardPaymentStatus.PAID,
                   and_(p.closed_at >= start, p.closed_at < end))
            .order_by(p.closed_at.desc(), i.id.desc()))).all()
        views = await applications._views(unit, rows, ctx.clock.now())
        current = ctx.services.rules.current  # each statement under the rules that fixed its fee
        policies = {version: await rules_history.policy_of_record(unit, version, current)
                    for version in {row.fee_rules_hash for row in rows}}
    found = []
    for view, row in zip(views, rows):
        paid_on = tokyo_date(row.closed_at)
        found.append(StatementView(
            row.statement_number, view, row.item_amount,
            statement_tax(policies[row.fee_rules_hash], row.submitted_on or paid_on, row.item_amount), row.closed_at))
    return found
