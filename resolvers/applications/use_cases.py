"""Applications (発給申請; the seeds): create, update, copy, submit, withdraw; chamber staff
hold and approve; coupons consumed and returned in the same transaction as the state
change; issue with a certificate number and an access code.

Every transition is one conditional ``UPDATE applications … WHERE id = … AND state IN (…)
RETURNING`` inside the transaction that also moves the coupons, so a double click or two
racing reviewers cannot consume, return or issue twice: the loser gets no row back and
its transaction (with any ledger entry it wrote) rolls back. Ledger keys name the
application and the submission count (``use:app:<id>:<n>`` / ``return:app:<id>:<n>``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import pycountry
from sqlalchemy import ColumnElement, delete, false, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from persistence import locks
from persistence.models import Account, Application, ApplicationGoods, Chamber, TradeRegistration
from resolvers.adapters.mail import queue_mail
from resolvers.applications import certificates
from resolvers.applications import messages as words
from resolvers.applications.names import (
    EDITABLE_STATES,
    OPEN_STATES,
    ORIGIN_TYPES,
    ApplicationState,
    CertificateType,
    FeePayment,
)
from resolvers.core import validation
from resolvers.core.clock import tokyo_date
from resolvers.core.context import Context, Services
from resolvers.core.counters import next_number, next_receipt_number
from resolvers.core.errors import ErrorCode, Forbidden, UserFailure, UserFailures
from resolvers.core.messages import Label
from resolvers.core.transitions import transition
from resolvers.coupons import ledger
from resolvers.coupons.names import CouponEntryKind
from resolvers.identity.accounts import membership_at
from resolvers.identity.actor import Viewer, audit, authorize, require_viewer
from resolvers.identity.names import AccountKind, RegistrationKind
from resolvers.webhooks.names import WebhookEvent
from resolvers.webhooks.use_cases import emit_application
from rules import fees, mail

MAX_GOODS = 50
HS_CODE = re.compile(r"^\d{4}(\.?\d{2}){1,3}$")  # 4-digit heading, then 6 (HS), 8 or 10 digits (national)


@dataclass
class GoodsInput:
    description: str
    quantity: str
    hs_code: str
    origin_country: str


@dataclass
class ApplicationData:
    """The editable content; None on update means "unchanged"."""

    type: str | None = None
    destination_country: str | None = None
    goods_category: str | None = None
    invoice_number: str | None = None
    exporter_name: str | None = None
    fee_payment: str | None = None
    signature_kind: str | None = None
    consignee: str | None = None
    transport: str | None = None
    person_in_charge: str | None = None
    goods: list[GoodsInput] | None = field(default=None)


# --------------------------------------------------------------------------- checks


def country(value: str | None, path: list[str], label: Label) -> UserFailure | str:
    """An ISO 3166-1 alpha-2 code (upper-cased)."""
    if value is None or not value.strip():
        return UserFailure(ErrorCode.REQUIRED, path, label=label)
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        return UserFailure(ErrorCode.INVALID, path, label=words.COUNTRY_CODE.format(label=label))
    return code


# the optional text fields: (attribute, input field, most characters, label)
_OPTIONAL_TEXTS = (("signature_kind", "signatureKind", 40, words.SIGNATURE_KIND),
                   ("consignee", "consignee", 300, words.CONSIGNEE), ("transport", "transport", 300, words.TRANSPORT),
                   ("person_in_charge", "personInCharge", 100, words.PERSON_IN_CHARGE))


def _check(data: ApplicationData, creating: bool) -> tuple[dict[str, Any], list[GoodsInput] | None, list[UserFailure]]:
    """Clean values and every problem at once (each with its input path)."""
    values: dict[str, Any] = {}
    problems: list[UserFailure] = []

    def keep(name: str, result: UserFailure | str | None) -> None:
        if isinstance(result, UserFailure):
            problems.append(result)
        else:
            values[name] = result

    if data.type is not None:
        keep("type", CertificateType(data.type) if data.type in tuple(CertificateType)
             else UserFailure(ErrorCode.INVALID, ["input", "type"], label=words.CERTIFICATE_TYPE))
    if data.destination_country is not None or creating:
        keep("destination_country", country(data.destination_country, ["input", "destinationCountry"], words.DESTINATION_COUNTRY))
    if data.goods_category is not None or creating:
        keep("goods_category", validation.text(data.goods_category, ["input", "goodsCategory"], 100, words.GOODS_CATEGORY))
    if data.invoice_number is not None or creating:
        keep("invoice_number", validation.text(data.invoice_number, ["input", "invoiceNumber"], 50, words.INVOICE_NUMBER))
    if data.exporter_name is not None or creating:
        keep("exporter_name", validation.text(data.exporter_name, ["input", "exporterName"], 200, words.EXPORTER_NAME))
    if data.fee_payment is not None:
        keep("fee_payment", FeePayment(data.fee_payment) if data.fee_payment in tuple(FeePayment)
             else UserFailure(ErrorCode.INVALID, ["input", "feePayment"], label=words.FEE_PAYMENT))
    for name, path, limit_, label in _OPTIONAL_TEXTS:
        raw = getattr(data, name)
        if raw is not None:
            keep(name, validation.text(raw, ["input", path], limit_, label, required=False))
    goods = None
    if data.goods is not None:
        goods = []
        if len(data.goods) > MAX_GOODS:
            problems.append(UserFailure(ErrorCode.INVALID, ["input", "goods"], label=words.GOODS_AT_MOST.format(limit=MAX_GOODS)))
        for i, line in enumerate(data.goods[:MAX_GOODS]):
            base = ["input", "goods", str(i)]
            desc = validation.text(line.description, [*base, "description"], 500, words.GOODS_DESCRIPTION)
            qty = validation.text(line.quantity, [*base, "quantity"], 60, words.GOODS_QUANTITY)
            hs = (line.hs_code or "").strip()
            if not HS_CODE.match(hs):
                problems.append(UserFailure(ErrorCode.INVALID, [*base, "hsCode"], label=words.HS_CODE))
            origin = country(line.origin_country, [*base, "originCountry"], words.ORIGIN_COUNTRY)
            for result in (desc, qty, origin):
                if isinstance(result, UserFailure):
                    problems.append(result)
            if isinstance(desc, str) and isinstance(qty, str) and isinstance(origin, str):
                goods.append(GoodsInput(desc, qty, hs.replace(".", ""), origin))
    return values, goods, problems


def _complete(app: Application, goods: list[ApplicationGoods]) -> list[UserFailure]:
    """What a submission needs beyond well-formed fields."""
    problems = []
    if app.type == CertificateType.SIGNATURE and not app.signature_kind:
        problems.append(UserFailure(ErrorCode.REQUIRED, ["input", "signatureKind"], label=words.SIGNATURE_KIND))
    if app.type in ORIGIN_TYPES:
        if not goods:
            problems.append(UserFailure(ErrorCode.REQUIRED, ["input", "goods"], label=words.GOODS))
        if not app.consignee:
            problems.append(UserFailure(ErrorCode.REQUIRED, ["input", "consignee"], label=words.CONSIGNEE))
        if not app.transport:
            problems.append(UserFailure(ErrorCode.REQUIRED, ["input", "transport"], label=words.TRANSPORT))
    if app.type == CertificateType.ORIGIN_JAPANESE and any(g.origin_country != "JP" for g in goods):
        problems.append(UserFailure(ErrorCode.INVALID, ["input", "goods"], label=words.ORIGIN_JAPAN_ONLY))
    return problems


# --------------------------------------------------------------------------- who may see what


def relations(who: Viewer, app: Application, chamber_id: int | None) -> set[str]:
    """How one application (its registration in ``chamber_id``) relates to ``who``;
    permissions.yaml decides what each relation allows."""
    found = set()
    if who.account.registration_id == app.registration_id:
        found.add("own_registration")
    if app.created_by_id == who.account.id:
        found.add("created_by_me")
    if who.account.kind == AccountKind.CHAMBER_STAFF and chamber_id == who.account.chamber_id:
        found.add("same_chamber")
    return found or {"none"}


def relation_conditions(who: Viewer) -> dict[str, ColumnElement[bool]]:
    """Every relation an application can stand in to ``who``, each as the SQL condition of
    the applications in it: the set-based twin of :func:`relations`."""
    found: dict[str, ColumnElement[bool]] = {}
    if who.account.registration_id is not None:
        found["own_registration"] = Application.registration_id == who.account.registration_id
    found["created_by_me"] = Application.created_by_id == who.account.id
    if who.account.kind == AccountKind.CHAMBER_STAFF:
        found["same_chamber"] = Application.registration_id.in_(
            select(TradeRegistration.id).where(TradeRegistration.chamber_id == who.account.chamber_id))
    return found


def visibility_scope(who: Viewer, policy_allows: Callable[[set[str]], bool]) -> ColumnElement[bool]:
    """The SQL condition for the applications in a relation to ``who`` that
    ``policy_allows`` (an action of permissions.yaml asked one relation at a time)."""
    conditions = [condition for relation, condition in relation_conditions(who).items() if policy_allows({relation})]
    return or_(*conditions) if conditions else false()


async def application_to_view(ctx: Context, who: Viewer, app_id: int) -> Application:
    """The application ``who`` may view, read-only, with the same answers as :func:`_locked`:
    NOT_FOUND for one the viewer may not see (the certificate PDF)."""
    async with ctx.services.db.read() as session:
        app, chamber_id = await _with_chamber(session, app_id)
    await _authorize(ctx, who, app, chamber_id, "application.view")
    return app


async def _with_chamber(session: AsyncSession, app_id: int) -> tuple[Application, int]:
    """The application and its registration's chamber (NOT_FOUND when there is none)."""
    row = (await session.execute(
        select(Application, TradeRegistration.chamber_id)
        .join(TradeRegistration, TradeRegistration.id == Application.registration_id)
        .where(Application.id == app_id))).first()
    if row is None:
        raise UserFailure(ErrorCode.NOT_FOUND, ["input", "applicationId"])
    return row[0], row[1]


async def _authorize(ctx: Context, who: Viewer, app: Application, chamber_id: int, action: str) -> None:
    try:
        await authorize(ctx, who, "application.view", relations(who, app, chamber_id))
    except Forbidden:
        raise UserFailure(ErrorCode.NOT_FOUND, ["input", "applicationId"]) from None  # not even its existence
    await authorize(ctx, who, action, relations(who, app, chamber_id))


async def _locked(tx: AsyncSession, ctx: Context, who: Viewer, app_id: int, action: str) -> tuple[Application, TradeRegistration]:
    """Inside the use case's write unit: lock the application's registration, then the
    application (the documented lock order), and authorize from the rows now held. The
    registration id never changes, so reading it first without a lock is safe."""
    registration_id = await tx.scalar(select(Application.registration_id).where(Application.id == app_id))
    registration = await locks.registration(tx, registration_id) if registration_id is not None else None
    app = await locks.application(tx, app_id) if registration is not None else None
    if registration is None or app is None:
        raise UserFailure(ErrorCode.NOT_FOUND, ["input", "applicationId"])
    await _authorize(ctx, who, app, registration.chamber_id, action)
    return app, registration


# --------------------------------------------------------------------------- use cases
#
# Each use case answers the id of the application it changed (or created): the schema reads
# the application again after the write, in its own read unit.


async def create_application(ctx: Context, data: ApplicationData) -> int:
    who = await require_viewer(ctx)
    if who.account.registration_id is None:
        raise Forbidden()
    await authorize(ctx, who, "application.create", {"own_registration"})
    if data.type is None:
        raise UserFailure(ErrorCode.REQUIRED, ["input", "type"], label=words.CERTIFICATE_TYPE)
    if data.fee_payment is None:
        raise UserFailure(ErrorCode.REQUIRED, ["input", "feePayment"], label=words.FEE_PAYMENT)
    values, goods, problems = _check(data, creating=True)
    if problems:
        raise UserFailures(problems)
    async with ctx.services.db.write() as tx:
        app_id = await _create(tx, ctx, who, values, goods or [])
    return app_id


async def _create(tx: AsyncSession, ctx: Context, who: Viewer, values: dict[str, Any], goods: list[GoodsInput]) -> int:
    [app_id] = await create_many(tx, ctx, who, [(values, goods)])
    return app_id


async def create_many(tx: AsyncSession, ctx: Context, who: Viewer,
                      drafts: Sequence[tuple[dict[str, Any], list[GoodsInput]]]) -> list[int]:
    """New drafts of ``who`` (checked values and goods lines), ids in the order given: the
    applications in one flush (one multi-row INSERT … RETURNING), then every goods line in
    one executemany — the cost of 100 drafts is a few statements, not 200 (bench/bulk.py)."""
    now = ctx.clock.now()
    agent_id = None
    sub = who.account.kind == AccountKind.SUB
    if sub and who.account.target_registration_id:
        target = await tx.get(TradeRegistration, who.account.target_registration_id)
        agent_id = target.id if target is not None and target.kind == RegistrationKind.AGENT else None
    apps = [Application(
        registration_id=who.account.registration_id, agent_registration_id=agent_id, created_by_id=who.account.id,
        signer_id=who.account.generated_by_id if sub else who.account.id,
        state=ApplicationState.DRAFT, coupon_uses=0, created_at=now, updated_at=now, **values) for values, _ in drafts]
    tx.add_all(apps)
    await tx.flush()
    lines = [{"application_id": app.id, "position": i, "description": line.description, "quantity": line.quantity,
              "hs_code": line.hs_code, "origin_country": line.origin_country}
             for app, (_, goods) in zip(apps, drafts, strict=True) for i, line in enumerate(goods, start=1)]
    if lines:
        await tx.execute(insert(ApplicationGoods), lines)
    for app in apps:
        audit(tx, ctx, who.account, "application.create", target=f"Application:{app.id}")
    return [app.id for app in apps]


def _add_goods(session: AsyncSession, app_id: int, goods: list[GoodsInput]) -> None:
    for i, line in enumerate(goods, start=1):
        session.add(ApplicationGoods(application_id=app_id, position=i, description=line.description,
                                     quantity=line.quantity, hs_code=line.hs_code, origin_country=line.origin_country))


async def update_application(ctx: Context, app_id: int, data: ApplicationData) -> int:
    """DRAFT or ON_HOLD only. The payment method is fixed once submitted."""
    who = await require_viewer(ctx)
    values, goods, problems = _check(data, creating=False)
    now = ctx.clock.now()
    async with ctx.services.db.write() as tx:
        app, _ = await _locked(tx, ctx, who, app_id, "application.edit")
        if app.receipt_number is not None and "fee_payment" in values and values["fee_payment"] != app.fee_payment:
            problems.append(UserFailure(ErrorCode.INVALID_STATE, ["input", "feePayment"], state=words.FEE_PAYMENT_FIXED))
        if app.receipt_number is not None and "type" in values and values["type"] != app.type:
            problems.append(UserFailure(ErrorCode.INVALID_STATE, ["input", "type"], state=words.CERTIFICATE_TYPE_FIXED))
        if problems:
            raise UserFailures(problems)
        await transition(tx, Application, app_id, EDITABLE_STATES, {"updated_at": now, **values},
                         state_names=words.STATE_NAMES)
        if goods is not None:
            await tx.execute(delete(ApplicationGoods).where(ApplicationGoods.application_id == app_id))
            _add_goods(tx, app_id, goods)
        audit(tx, ctx, who.account, "application.update", target=f"Application:{app_id}")
    return app_id


async def copy_application(ctx: Context, app_id: int) -> int:
    """複写: a new draft with the content (not the state, numbers or fee) of one the viewer may see."""
    who = await require_viewer(ctx)
    if who.account.registration_id is None:
        raise Forbidden()
    async with ctx.services.db.write() as tx:
        source, chamber_id = await _with_chamber(tx, app_id)
        await _authorize(ctx, who, source, chamber_id, "application.create")
        await authorize(ctx, who, "application.create", {"own_registration"})
        lines = (await tx.scalars(select(ApplicationGoods).where(ApplicationGoods.application_id == app_id)
                                  .order_by(ApplicationGoods.position))).all()
        content = {f.name: getattr(source, f.name) for f in fields(ApplicationData) if f.name != "goods"}
        new_id = await _create(tx, ctx, who, content,
                               [GoodsInput(g.description, g.quantity, g.hs_code, g.origin_country) for g in lines])
    return new_id


async def submit_application(ctx: Context, app_id: int) -> int:
    """発給申請. First submission: receipt number, fee fixed by the rules of this Tokyo date
    for the registration's membership now. Coupon applications consume one coupon in the
    same transaction (INSUFFICIENT_COUPONS leaves everything as it was).

    One unit of work: registration lock → application lock → completeness, membership and
    fee from the rows held → coupon (one statement on PostgreSQL, which also draws a first
    submission's receipt number from its sequence, so a refused debit draws none) → state."""
    return await _submit(ctx, await require_viewer(ctx), app_id)


async def _submit(ctx: Context, who: Viewer, app_id: int,
                  record: Callable[[AsyncSession], Awaitable[None]] | None = None) -> int:
    """The body of :func:`submit_application`, shared with ``submitApplications`` (bulk.py),
    whose ``record`` writes the id's outcome in this same transaction."""
    policy, now, today = ctx.services.rules.current, ctx.clock.now(), ctx.clock.today()
    async with ctx.services.db.write() as tx:
        app, registration = await _locked(tx, ctx, who, app_id, "application.edit")
        if app.state not in EDITABLE_STATES or registration.withdrawn_at is not None:
            state = words.REGISTRATION_WITHDRAWN if app.state in EDITABLE_STATES else words.STATE_NAMES[app.state]
            raise UserFailure(ErrorCode.INVALID_STATE, ["input", "applicationId"], state=state)
        goods = [] if app.type not in ORIGIN_TYPES else list((await tx.scalars(
            select(ApplicationGoods).where(ApplicationGoods.application_id == app_id))).all())
        problems = _complete(app, goods)
        if problems:
            raise UserFailures(problems)
        values: dict[str, Any] = {"state": ApplicationState.SUBMITTED, "submitted_at": now, "updated_at": now,
                                  "hold_reason": None}
        receipt = app.receipt_number
        if receipt is None:  # the first submission
            membership = await membership_at(tx, app.registration_id, now)
            if membership is None:  # no membership period covers now: no fee can be fixed
                raise UserFailure(ErrorCode.INVALID_STATE, ["input", "applicationId"], state=words.NO_MEMBERSHIP)
            fee = fees.application_fee(policy, today, membership)
            values.update(fee=fee.value, fee_rules_version=f"{fee.rule.table}@{fee.rule.effective_from}",
                          rules_version=policy.version,
                          fee_membership=membership, submitted_on=today,
                          receipt_number=await next_receipt_number(tx))  # a number, or the sequence's next (PostgreSQL)
        coupon = app.fee_payment == FeePayment.COUPON
        uses = app.coupon_uses + (1 if coupon else 0)
        if coupon:  # its ledger key names this submission, so a replay finds it taken
            taken = await ledger.debit(tx, registration_id=app.registration_id, coupons=1, kind=CouponEntryKind.USE,
                                       key=f"use:app:{app_id}:{uses}", now=now, actor_id=who.account.id,
                                       note=words.SUBMITTED_NOTE, receipt_number=values.get("receipt_number", receipt),
                                       field=["input", "applicationId"])
            if not taken.applied:
                raise UserFailure(ErrorCode.INVALID_STATE, ["input", "applicationId"],
                                  state=words.STATE_NAMES[ApplicationState.SUBMITTED])
            if receipt is None:
                values["receipt_number"] = taken.receipt_number  # the number the entry drew
        submitted = await transition(tx, Application, app_id, EDITABLE_STATES, {"coupon_uses": uses, **values},
                                     state_names=words.STATE_NAMES, returning=(Application.receipt_number,))
        await emit_application(tx, WebhookEvent.APPLICATION_SUBMITTED, app_id, now)
        audit(tx, ctx, who.account, "application.submit", target=f"Application:{app_id}", detail=submitted.receipt_number)
        if record is not None:
            await record(tx)
    return app_id


async def give_back_coupon(session: AsyncSession, app: Application, now: dt.datetime, actor_id: int, note: str) -> None:
    """The coupon of the current submission comes back (``app`` is the locked row)."""
    if app.fee_payment == FeePayment.COUPON and app.coupon_uses > 0:
        uses = app.coupon_uses
        await ledger.give_back(session, registration_id=app.registration_id, of_key=f"use:app:{app.id}:{uses}",
                               key=f"return:app:{app.id}:{uses}", now=now, actor_id=actor_id, note=note)


async def withdraw_application(ctx: Context, app_id: int) -> int:
    """取下げ by the applicant: a submitted application's coupon comes back (a held one
    gave it back when it was held) — decided from the state held under the lock."""
    who = await require_viewer(ctx)
    now = ctx.clock.now()
    async with ctx.services.db.write() as tx:
        app, _ = await _locked(tx, ctx, who, app_id, "application.edit")
        was = app.state
        await transition(tx, Application, app_id, OPEN_STATES, {"state": ApplicationState.WITHDRAWN, "updated_at": now},
                         state_names=words.STATE_NAMES)
        if was == ApplicationState.SUBMITTED:
            await give_back_coupon(tx, app, now, who.account.id, words.WITHDRAWN_NOTE)
        audit(tx, ctx, who.account, "application.withdraw", target=f"Application:{app_id}")
    return app_id


async def hold_application(ctx: Context, app_id: int, reason: str) -> int:
    """保留 by chamber staff, with a reason: the coupon comes back until resubmission."""
    who = await require_viewer(ctx)
    checked = validation.text(reason, ["input", "reason"], 1000, words.HOLD_REASON)
    now = ctx.clock.now()
    async with ctx.services.db.write() as tx:
        app, _ = await _locked(tx, ctx, who, app_id, "application.review")
        if not isinstance(checked, str):  # required: never None
            raise checked or UserFailure(ErrorCode.REQUIRED, ["input", "reason"], label=words.HOLD_REASON)
        await transition(tx, Application, app_id, (ApplicationState.SUBMITTED,),
                         {"state": ApplicationState.ON_HOLD, "hold_reason": checked, "updated_at": now},
                         state_names=words.STATE_NAMES)
        await give_back_coupon(tx, app, now, who.account.id, words.HELD_NOTE)
        await emit_application(tx, WebhookEvent.APPLICATION_ON_HOLD, app_id, now)
        await _mail(tx, ctx.services, app, now, "application.hold", {"receipt_number": app.receipt_number, "reason": checked})
        audit(tx, ctx, who.account, "application.hold", target=f"Application:{app_id}", detail=checked)
    return app_id


async def approve_application(ctx: Context, app_id: int) -> int:
    """承認 by chamber staff. Coupon applications are paid, so approval issues them; card
    applications wait for payment (cardCart)."""
    who = await require_viewer(ctx)
    now = ctx.clock.now()
    async with ctx.services.db.write() as tx:
        app, _ = await _locked(tx, ctx, who, app_id, "application.review")
        await transition(tx, Application, app_id, (ApplicationState.SUBMITTED,),
                         {"state": ApplicationState.APPROVED, "approved_at": now, "updated_at": now},
                         state_names=words.STATE_NAMES)
        await emit_application(tx, WebhookEvent.APPLICATION_APPROVED, app_id, now)
        if app.fee_payment == FeePayment.COUPON:
            await issue(tx, ctx.services, app_id, now)
        else:
            await _mail(tx, ctx.services, app, now, "application.approved", {"receipt_number": app.receipt_number})
        audit(tx, ctx, who.account, "application.approve", target=f"Application:{app_id}")
    return app_id


async def issue(session: AsyncSession, services: Services, app_id: int, now: dt.datetime, paid_by_id: int | None = None) -> bool:
    """APPROVED → ISSUED with a unique certificate number and an access code, in the
    caller's transaction, which holds the application's lock (and its registration's)."""
    chamber_code = await session.scalar(
        select(Chamber.code).join(TradeRegistration, TradeRegistration.chamber_id == Chamber.id)
        .join(Application, Application.registration_id == TradeRegistration.id).where(Application.id == app_id))
    today = tokyo_date(now)
    serial = await next_number(session, f"certificate:{chamber_code}:{today.year}")
    number = f"{chamber_code}{today:%y}{serial:09d}"  # chamber, year, serial: unique by construction
    app = await session.get_one(Application, app_id)
    content_hash, signature, kid = certificates.sign(services, await certificates.content_of(session, app, number, today))
    issued = await session.scalar(
        update(Application).where(Application.id == app_id, Application.state == ApplicationState.APPROVED)
        .values(state=ApplicationState.ISSUED, issued_at=now, updated_at=now, certificate_number=number,
                access_code=certificates.new_access_code(), paid_by_id=paid_by_id, content_hash=content_hash,
                signature=signature, key_id=kid).returning(Application.id))
    if issued is None:
        return False
    await emit_application(session, WebhookEvent.APPLICATION_ISSUED, app_id, now)
    await _mail(session, services, app, now, "application.issued",
                {"receipt_number": app.receipt_number, "certificate_number": number})
    return True


async def _mail(session: AsyncSession, services: Services, app: Application, now: dt.datetime, kind: str,
                values: dict[str, object]) -> None:
    """To the person in charge: the account that created the application; the words are
    the template ``kind`` of rules/mail_templates.yaml."""
    creator = await session.get(Account, app.created_by_id)
    if creator is not None and creator.email:
        words_of = mail.render(services.rules.current, services.clock.today(), kind, values)
        queue_mail(session, now, kind, creator.email, words_of.subject, words_of.body, account_id=creator.id)
