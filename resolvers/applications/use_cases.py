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
from dataclasses import dataclass, field, fields

import pycountry
from sqlalchemy import and_, or_, select, update

from persistence import locks
from persistence.models import Account, Application, ApplicationGoods, Chamber, CouponEntry, TradeRegistration
from resolvers.adapters.mail import queue_mail
from resolvers.applications import certificates
from resolvers.core import validation
from resolvers.core.clock import tokyo_date
from resolvers.core.context import Context
from resolvers.core.counters import next_number
from resolvers.core.errors import Forbidden, UserFailure, UserFailures
from resolvers.core.transitions import transition
from resolvers.coupons import ledger
from resolvers.identity.accounts import Viewer, audit, authorize, membership_at, require_viewer
from rules import fees

TYPES = ("ORIGIN_JAPANESE", "ORIGIN_FOREIGN", "INVOICE", "SIGNATURE")
TYPE_NAMES = {"ORIGIN_JAPANESE": "原産地証明書(日本産)", "ORIGIN_FOREIGN": "原産地証明書(外国産)",
              "INVOICE": "インボイス証明", "SIGNATURE": "サイン証明"}
EDITABLE = ("DRAFT", "ON_HOLD")
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


def country(value: str | None, path: list[str], label: str) -> UserFailure | str:
    """An ISO 3166-1 alpha-2 code (upper-cased)."""
    if value is None or not value.strip():
        return UserFailure("REQUIRED", path, label=label)
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        return UserFailure("INVALID", path, label=f"{label}(ISO 3166 国コード 2文字)")
    return code


def _check(data: ApplicationData, creating: bool) -> tuple[dict, list[GoodsInput] | None, list[UserFailure]]:
    """Clean values and every problem at once (each with its input path)."""
    values: dict = {}
    problems: list[UserFailure] = []

    def keep(name: str, result):
        if isinstance(result, UserFailure):
            problems.append(result)
        else:
            values[name] = result

    if data.type is not None:
        keep("type", data.type if data.type in TYPES else UserFailure("INVALID", ["input", "type"], label="証明書種別"))
    if data.destination_country is not None or creating:
        keep("destination_country", country(data.destination_country, ["input", "destinationCountry"], "仕向地"))
    if data.goods_category is not None or creating:
        keep("goods_category", validation.text(data.goods_category, ["input", "goodsCategory"], 100, "主要品目"))
    if data.invoice_number is not None or creating:
        keep("invoice_number", validation.text(data.invoice_number, ["input", "invoiceNumber"], 50, "インボイス番号"))
    if data.exporter_name is not None or creating:
        keep("exporter_name", validation.text(data.exporter_name, ["input", "exporterName"], 200, "輸出者名"))
    if data.fee_payment is not None:
        keep("fee_payment", data.fee_payment if data.fee_payment in ("CARD", "COUPON")
             else UserFailure("INVALID", ["input", "feePayment"], label="支払方法"))
    for name, path, limit_, label in (("signature_kind", "signatureKind", 40, "サイン証明の種類"),
                                       ("consignee", "consignee", 300, "荷受人"), ("transport", "transport", 300, "輸送手段"),
                                       ("person_in_charge", "personInCharge", 100, "担当者")):
        raw = getattr(data, name)
        if raw is not None:
            keep(name, validation.text(raw, ["input", path], limit_, label, required=False))
    goods = None
    if data.goods is not None:
        goods = []
        if len(data.goods) > MAX_GOODS:
            problems.append(UserFailure("INVALID", ["input", "goods"], label=f"品目({MAX_GOODS}行まで)"))
        for i, line in enumerate(data.goods[:MAX_GOODS]):
            base = ["input", "goods", str(i)]
            desc = validation.text(line.description, [*base, "description"], 500, "品名")
            qty = validation.text(line.quantity, [*base, "quantity"], 60, "数量")
            hs = (line.hs_code or "").strip()
            if not HS_CODE.match(hs):
                problems.append(UserFailure("INVALID", [*base, "hsCode"], label="HSコード(6〜10桁)"))
            origin = country(line.origin_country, [*base, "originCountry"], "原産国")
            for result in (desc, qty, origin):
                if isinstance(result, UserFailure):
                    problems.append(result)
            goods.append(GoodsInput(desc, qty, hs.replace(".", ""), origin))
    return values, goods, problems


def _complete(app: Application, goods: list[ApplicationGoods]) -> list[UserFailure]:
    """What a submission needs beyond well-formed fields."""
    problems = []
    if app.type == "SIGNATURE" and not app.signature_kind:
        problems.append(UserFailure("REQUIRED", ["input", "signatureKind"], label="サイン証明の種類"))
    if app.type in ("ORIGIN_JAPANESE", "ORIGIN_FOREIGN"):
        if not goods:
            problems.append(UserFailure("REQUIRED", ["input", "goods"], label="品目"))
        if not app.consignee:
            problems.append(UserFailure("REQUIRED", ["input", "consignee"], label="荷受人"))
        if not app.transport:
            problems.append(UserFailure("REQUIRED", ["input", "transport"], label="輸送手段"))
    if app.type == "ORIGIN_JAPANESE" and any(g.origin_country != "JP" for g in goods):
        problems.append(UserFailure("INVALID", ["input", "goods"], label="原産国(日本産はJP)"))
    return problems


# --------------------------------------------------------------------------- who may see what


def relations(who: Viewer, app: Application, chamber_id: int | None) -> set[str]:
    found = set()
    if who.account.registration_id == app.registration_id:
        found.add("own_registration")
    if app.created_by_id == who.account.id:
        found.add("created_by_me")
    if who.account.kind == "CHAMBER_STAFF" and chamber_id == who.account.chamber_id:
        found.add("same_chamber")
    return found or {"none"}


async def _load(ctx: Context, who: Viewer, app_id: int, action: str) -> Application:
    """Read-only look-up with the same answers as :func:`_locked` (queries, copy)."""
    async with ctx.services.db.read() as session:
        app, chamber_id = await _with_chamber(session, app_id)
    await _authorize(ctx, who, app, chamber_id, action)
    return app


async def _with_chamber(session, app_id: int) -> tuple[Application, int]:
    """The application and its registration's chamber (NOT_FOUND when there is none)."""
    row = (await session.execute(
        select(Application, TradeRegistration.chamber_id)
        .join(TradeRegistration, TradeRegistration.id == Application.registration_id)
        .where(Application.id == app_id))).first()
    if row is None:
        raise UserFailure("NOT_FOUND", ["input", "applicationId"])
    return row[0], row[1]


async def _authorize(ctx: Context, who: Viewer, app: Application, chamber_id: int, action: str) -> None:
    try:
        await authorize(ctx, who, "application.view", relations(who, app, chamber_id))
    except Forbidden:
        raise UserFailure("NOT_FOUND", ["input", "applicationId"]) from None  # not even its existence
    await authorize(ctx, who, action, relations(who, app, chamber_id))


async def _locked(tx, ctx: Context, who: Viewer, app_id: int, action: str) -> tuple[Application, TradeRegistration]:
    """Inside the use case's write unit: lock the application's registration, then the
    application (the documented lock order), and authorize from the rows now held. The
    registration id never changes, so reading it first without a lock is safe."""
    registration_id = await tx.scalar(select(Application.registration_id).where(Application.id == app_id))
    if registration_id is None:
        raise UserFailure("NOT_FOUND", ["input", "applicationId"])
    registration = await locks.registration(tx, registration_id)
    app = await locks.application(tx, app_id)
    await _authorize(ctx, who, app, registration.chamber_id, action)
    return app, registration


def visibility_scope(who: Viewer, policy_allows) -> object:
    """The SQL condition for the applications ``who`` may see (the same relations as above)."""
    conditions = []
    if policy_allows({"own_registration"}) and who.account.registration_id is not None:
        conditions.append(Application.registration_id == who.account.registration_id)
    if policy_allows({"created_by_me"}):
        conditions.append(Application.created_by_id == who.account.id)
    if policy_allows({"same_chamber"}) and who.account.kind == "CHAMBER_STAFF":
        conditions.append(Application.registration_id.in_(
            select(TradeRegistration.id).where(TradeRegistration.chamber_id == who.account.chamber_id)))
    return or_(*conditions) if conditions else and_(False)


# --------------------------------------------------------------------------- use cases


async def create_application(ctx: Context, data: ApplicationData) -> Application:
    who = await require_viewer(ctx)
    if who.account.registration_id is None:
        raise Forbidden()
    await authorize(ctx, who, "application.create", {"own_registration"})
    if data.type is None:
        raise UserFailure("REQUIRED", ["input", "type"], label="証明書種別")
    if data.fee_payment is None:
        raise UserFailure("REQUIRED", ["input", "feePayment"], label="支払方法")
    values, goods, problems = _check(data, creating=True)
    if problems:
        raise UserFailures(problems)
    async with ctx.services.db.write() as tx:
        app_id = await _create(tx, ctx, who, values, goods or [])
    return await get(ctx, app_id)


async def _create(tx, ctx: Context, who: Viewer, values: dict, goods: list[GoodsInput]) -> int:
    now = ctx.clock.now()
    agent_id = None
    if who.account.kind == "SUB" and who.account.target_registration_id:
        target = await tx.get(TradeRegistration, who.account.target_registration_id)
        agent_id = target.id if target is not None and target.kind == "AGENT" else None
    app = Application(
        registration_id=who.account.registration_id, agent_registration_id=agent_id, created_by_id=who.account.id,
        signer_id=who.account.generated_by_id if who.account.kind == "SUB" else who.account.id,
        state="DRAFT", coupon_uses=0, created_at=now, updated_at=now, **values)
    tx.add(app)
    await tx.flush()
    _add_goods(tx, app.id, goods)
    audit(tx, ctx, who.account, "application.create", target=f"Application:{app.id}")
    return app.id


def _add_goods(session, app_id: int, goods: list[GoodsInput]) -> None:
    for i, line in enumerate(goods, start=1):
        session.add(ApplicationGoods(application_id=app_id, position=i, description=line.description,
                                     quantity=line.quantity, hs_code=line.hs_code, origin_country=line.origin_country))


async def update_application(ctx: Context, app_id: int, data: ApplicationData) -> Application:
    """DRAFT or ON_HOLD only. The payment method is fixed once submitted."""
    who = await require_viewer(ctx)
    values, goods, problems = _check(data, creating=False)
    now = ctx.clock.now()
    async with ctx.services.db.write() as tx:
        app, _ = await _locked(tx, ctx, who, app_id, "application.edit")
        if app.receipt_number is not None and "fee_payment" in values and values["fee_payment"] != app.fee_payment:
            problems.append(UserFailure("INVALID_STATE", ["input", "feePayment"], label="支払方法(申請後は変更不可)"))
        if app.receipt_number is not None and "type" in values and values["type"] != app.type:
            problems.append(UserFailure("INVALID_STATE", ["input", "type"], label="証明書種別(申請後は変更不可)"))
        if problems:
            raise UserFailures(problems)
        await transition(tx, Application, app_id, EDITABLE, {"updated_at": now, **values})
        if goods is not None:
            await tx.execute(ApplicationGoods.__table__.delete().where(ApplicationGoods.application_id == app_id))
            _add_goods(tx, app_id, goods)
        audit(tx, ctx, who.account, "application.update", target=f"Application:{app_id}")
    return await get(ctx, app_id)


async def copy_application(ctx: Context, app_id: int) -> Application:
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
    return await get(ctx, new_id)


async def submit_application(ctx: Context, app_id: int) -> Application:
    """発給申請. First submission: receipt number, fee fixed by the rules of this Tokyo date
    for the registration's membership now. Coupon applications consume one coupon in the
    same transaction (INSUFFICIENT_COUPONS leaves everything as it was).

    One unit of work: registration lock → application lock → completeness, membership and
    fee from the rows held → coupon → receipt number (counter, last) → state."""
    who = await require_viewer(ctx)
    policy, now, today = ctx.services.rules.current, ctx.clock.now(), ctx.clock.today()
    async with ctx.services.db.write() as tx:
        app, registration = await _locked(tx, ctx, who, app_id, "application.edit")
        if app.state not in EDITABLE or registration.withdrawn_at is not None:
            raise UserFailure("INVALID_STATE", ["input", "applicationId"])
        goods = (await tx.scalars(select(ApplicationGoods).where(ApplicationGoods.application_id == app_id))).all()
        problems = _complete(app, list(goods))
        if problems:
            raise UserFailures(problems)
        values: dict = {"state": "SUBMITTED", "submitted_at": now, "updated_at": now, "hold_reason": None}
        first = app.receipt_number is None
        if first:
            membership = await membership_at(tx, app.registration_id, now)
            fee = fees.application_fee(policy, today, membership)
            values.update(fee=fee.value, fee_rules_version=f"{fee.rule.table}@{fee.rule.effective_from}",
                          fee_membership=membership, submitted_on=today)
        coupon = app.fee_payment == "COUPON"
        uses = app.coupon_uses + (1 if coupon else 0)
        entry = None
        if coupon:  # its ledger key names this submission, so a replay finds it taken
            taken = await ledger.debit(tx, registration_id=app.registration_id, coupons=1, kind="USE",
                                       key=f"use:app:{app_id}:{uses}", now=now, actor_id=who.account.id,
                                       note="発給申請", receipt_number=app.receipt_number, field=["input", "applicationId"])
            if not taken.applied:
                raise UserFailure("INVALID_STATE", ["input", "applicationId"])
            entry = taken.entry_id
        if first:  # the counter last: its row lock is held only for the rest of this transaction
            values["receipt_number"] = f"{await next_number(tx, 'receipt'):09d}"
        row = await transition(tx, Application, app_id, EDITABLE, {"coupon_uses": uses, **values},
                               returning=(Application.receipt_number,))
        if entry is not None and first:
            await tx.execute(update(CouponEntry).where(CouponEntry.id == entry).values(receipt_number=row.receipt_number))
        audit(tx, ctx, who.account, "application.submit", target=f"Application:{app_id}", detail=row.receipt_number)
    return await get(ctx, app_id)


async def give_back_coupon(session, app: Application, now: dt.datetime, actor_id: int, note: str) -> None:
    """The coupon of the current submission comes back (``app`` is the locked row)."""
    if app.fee_payment == "COUPON" and app.coupon_uses > 0:
        uses = app.coupon_uses
        await ledger.give_back(session, registration_id=app.registration_id, of_key=f"use:app:{app.id}:{uses}",
                               key=f"return:app:{app.id}:{uses}", now=now, actor_id=actor_id, note=note)


async def withdraw_application(ctx: Context, app_id: int) -> Application:
    """取下げ by the applicant: a submitted application's coupon comes back (a held one
    gave it back when it was held) — decided from the state held under the lock."""
    who = await require_viewer(ctx)
    now = ctx.clock.now()
    async with ctx.services.db.write() as tx:
        app, _ = await _locked(tx, ctx, who, app_id, "application.edit")
        was = app.state
        await transition(tx, Application, app_id, ("DRAFT", "SUBMITTED", "ON_HOLD"), {"state": "WITHDRAWN", "updated_at": now})
        if was == "SUBMITTED":
            await give_back_coupon(tx, app, now, who.account.id, "申請取下げ")
        audit(tx, ctx, who.account, "application.withdraw", target=f"Application:{app_id}")
    return await get(ctx, app_id)


async def hold_application(ctx: Context, app_id: int, reason: str) -> Application:
    """保留 by chamber staff, with a reason: the coupon comes back until resubmission."""
    who = await require_viewer(ctx)
    checked = validation.text(reason, ["input", "reason"], 1000, "保留理由")
    now = ctx.clock.now()
    async with ctx.services.db.write() as tx:
        app, _ = await _locked(tx, ctx, who, app_id, "application.review")
        if isinstance(checked, UserFailure):
            raise checked
        await transition(tx, Application, app_id, ("SUBMITTED",),
                         {"state": "ON_HOLD", "hold_reason": checked, "updated_at": now})
        await give_back_coupon(tx, app, now, who.account.id, "保留")
        await _mail(tx, app, now, "application.hold", "【貿易関係証明発給システム】申請保留のお知らせ",
                    f"受付番号 {app.receipt_number} の申請は保留になりました。\n理由: {checked}\n内容を修正して再申請してください。\n")
        audit(tx, ctx, who.account, "application.hold", target=f"Application:{app_id}", detail=checked)
    return await get(ctx, app_id)


async def approve_application(ctx: Context, app_id: int) -> Application:
    """承認 by chamber staff. Coupon applications are paid, so approval issues them; card
    applications wait for payment (cardCart)."""
    who = await require_viewer(ctx)
    now = ctx.clock.now()
    async with ctx.services.db.write() as tx:
        app, _ = await _locked(tx, ctx, who, app_id, "application.review")
        await transition(tx, Application, app_id, ("SUBMITTED",),
                         {"state": "APPROVED", "approved_at": now, "updated_at": now})
        if app.fee_payment == "COUPON":
            await issue(tx, ctx.services, app_id, now)
        else:
            await _mail(tx, app, now, "application.approved", "【貿易関係証明発給システム】申請承認のお知らせ",
                        f"受付番号 {app.receipt_number} の申請が承認されました。クレジットカード決済後に交付されます。\n")
        audit(tx, ctx, who.account, "application.approve", target=f"Application:{app_id}")
    return await get(ctx, app_id)


async def issue(session, services, app_id: int, now: dt.datetime, paid_by_id: int | None = None) -> bool:
    """APPROVED → ISSUED with a unique certificate number and an access code, in the
    caller's transaction, which holds the application's lock (and its registration's)."""
    chamber_code = await session.scalar(
        select(Chamber.code).join(TradeRegistration, TradeRegistration.chamber_id == Chamber.id)
        .join(Application, Application.registration_id == TradeRegistration.id).where(Application.id == app_id))
    today = tokyo_date(now)
    serial = await next_number(session, f"certificate:{chamber_code}:{today.year}")
    number = f"{chamber_code}{today:%y}{serial:09d}"  # chamber, year, serial: unique by construction
    app = await session.get(Application, app_id)
    content_hash, signature, kid = certificates.sign(services, await certificates.content_of(session, app, number, today))
    issued = await session.scalar(
        update(Application).where(Application.id == app_id, Application.state == "APPROVED")
        .values(state="ISSUED", issued_at=now, updated_at=now, certificate_number=number,
                access_code=certificates.new_access_code(), paid_by_id=paid_by_id, content_hash=content_hash,
                signature=signature, key_id=kid).returning(Application.id))
    if issued is None:
        return False
    await _mail(session, app, now, "application.issued", "【貿易関係証明発給システム】証明書交付のお知らせ",
                f"受付番号 {app.receipt_number} の証明書を交付しました。証明書番号 {number}\n"
                "システムから証明書(PDF)を印刷してください。\n")
    return True


async def _mail(session, app: Application, now: dt.datetime, kind: str, subject: str, body: str) -> None:
    """To the person in charge: the account that created the application."""
    creator = await session.get(Account, app.created_by_id)
    if creator is not None and creator.email:
        queue_mail(session, now, kind, creator.email, subject, body, account_id=creator.id)


# --------------------------------------------------------------------------- queries


async def get(ctx: Context, app_id: int) -> Application:
    async with ctx.services.db.read() as session:
        return await session.get(Application, app_id)


async def visible(ctx: Context, app_id: int) -> Application | None:
    who = await require_viewer(ctx)
    try:
        return await _load(ctx, who, app_id, "application.view")
    except (UserFailure, Forbidden):
        return None


@dataclass
class Filter:
    type: str | None = None
    state: str | None = None
    submitted_from: dt.date | None = None
    submitted_to: dt.date | None = None
    receipt_number: str | None = None
    invoice_number: str | None = None
    person_in_charge: str | None = None


async def list_applications(ctx: Context, flt: Filter, first: int | None, before_id: int | None):
    from resolvers.core.paging import newest_first
    from rules.permissions import is_allowed

    who = await require_viewer(ctx)
    policy, today = ctx.services.rules.current, ctx.clock.today()
    scope = visibility_scope(who, lambda rel: is_allowed(policy, today, who.actor, "application.view", rel))
    conditions = [scope]
    if flt.type:
        conditions.append(Application.type == flt.type)
    if flt.state:
        conditions.append(Application.state == flt.state)
    if flt.submitted_from:
        conditions.append(Application.submitted_on >= flt.submitted_from)
    if flt.submitted_to:
        conditions.append(Application.submitted_on <= flt.submitted_to)
    if flt.receipt_number:
        conditions.append(Application.receipt_number == flt.receipt_number.strip())
    if flt.invoice_number:
        conditions.append(Application.invoice_number == flt.invoice_number.strip())
    if flt.person_in_charge:
        conditions.append(Application.person_in_charge.contains(flt.person_in_charge.strip(), autoescape=True))
    return await newest_first(ctx, Application, and_(*conditions), first, before_id)


async def goods_of(ctx: Context, app_ids: list[int]) -> dict[int, list[ApplicationGoods]]:
    async with ctx.services.db.read() as session:
        rows = (await session.scalars(select(ApplicationGoods).where(ApplicationGoods.application_id.in_(app_ids))
                                      .order_by(ApplicationGoods.application_id, ApplicationGoods.position))).all()
    found: dict[int, list[ApplicationGoods]] = {i: [] for i in app_ids}
    for row in rows:
        found[row.application_id].append(row)
    return found
