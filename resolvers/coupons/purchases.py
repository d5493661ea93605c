"""Coupon purchases by bank transfer (the seeds: eco-coupon-purchase-2022) and by card
(the hosted page and its notifications: resolvers/payments.py).

start → a one-time virtual account and a mail with its details → the buyer transfers →
deposits arrive (bank statement import or by hand) → reconciliation: exact → coupons;
more → coupons, and the excess less transfer costs is owed back; less → nothing issued,
the order is cancelled and the deposit less costs is owed back; a deposit to a used or
expired account is owed back, never applied. Unpaid orders are cancelled after the
validity in limits.yaml. Every step is guarded in the database: one order in progress per
registration (partial unique index), a deposit is processed once (claimed by a
conditional UPDATE), coupons are issued once (ledger keys).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from persistence import locks
from persistence.models import (
    CardPayment,
    CouponAccount,
    CouponPurchase,
    CouponPurchaseLine,
    TradeRegistration,
    VirtualAccount,
)
from resolvers.adapters.bank import MAX_DEPOSIT, MAX_DEPOSIT_ID, MAX_PAYER_NAME, Bank, DepositInput, SandboxBank
from resolvers.adapters.gateway import gateway_of
from resolvers.adapters.mail import queue_mail
from resolvers.core import messages as core_words
from resolvers.core import validation
from resolvers.core.context import Context, Services
from resolvers.core.errors import ErrorCode, Forbidden, UserFailure, UserFailures
from resolvers.coupons import ledger, reconciliation
from resolvers.coupons import messages as words
from resolvers.coupons.names import CouponEntryKind, CouponMail, PurchaseMethod, PurchaseStatus
from resolvers.identity.accounts import membership_at
from resolvers.identity.actor import Viewer, audit, authorize, require_viewer
from resolvers.identity.names import Membership
from resolvers.payments import card as payments
from resolvers.payments.names import CardPaymentStatus, PaymentPurpose
from resolvers.webhooks.names import WebhookEvent
from resolvers.webhooks.use_cases import emit_purchases
from rules import fees, mail
from rules.fees import CouponProduct
from rules.limits import limit
from rules.policy import PolicySet

MAX_QUANTITY = 1000  # per line: a typo guard (an absurd order), not policy
MAX_LINES = 10  # lines of one order: there are two products; a bound for hostile input


def bank_of(services: Services) -> Bank:
    return services.bank or SandboxBank()


@dataclass(frozen=True)
class LineInput:
    product_code: str
    quantity: int


Priced = Sequence[tuple[LineInput, CouponProduct]]  # the order's lines with the products they buy


# --------------------------------------------------------------------------- start / cancel


def _fingerprint(lines: list[LineInput], method: PurchaseMethod, notify_email: str | None) -> str:
    """What a request asked for, for the idempotency key's "same request?" question."""
    canonical = json.dumps({"lines": [[line.product_code, line.quantity] for line in lines], "method": method,
                            "notifyEmail": (notify_email or "").strip().lower()}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _same_request(earlier: CouponPurchase, fingerprint: str) -> CouponPurchase:
    """A key seen before: the first result for the same request, IDEMPOTENCY_KEY_REUSED otherwise."""
    if earlier.idempotency_fingerprint not in (None, fingerprint):
        raise UserFailure(ErrorCode.IDEMPOTENCY_KEY_REUSED, ["input", "idempotencyKey"])
    return earlier


async def _purchase_by_key(session: AsyncSession, buyer_id: int, key: str) -> CouponPurchase | None:
    found: CouponPurchase | None = await session.scalar(select(CouponPurchase).where(
        CouponPurchase.buyer_id == buyer_id, CouponPurchase.idempotency_key == key))
    return found


async def start_coupon_purchase(ctx: Context, lines: list[LineInput], method: PurchaseMethod, notify_email: str | None,
                                idempotency_key: str | None) -> CouponPurchase:
    """Order coupons. The input is checked first; a card order then opens the hosted page
    (a network call, outside any transaction); one unit of work decides the rest under
    the lock order — the registration (which serialises this registration's orders, so a
    retry with the same key waits for the first and gets its result), then the order."""
    who = await require_viewer(ctx)
    if who.account.registration_id is None:
        raise Forbidden()
    await authorize(ctx, who, "coupon.purchase", {"own_registration"})
    fingerprint = _fingerprint(lines, method, notify_email)
    if idempotency_key is not None:
        if not 1 <= len(idempotency_key) <= 128 or "\x00" in idempotency_key:
            raise UserFailure(ErrorCode.INVALID, ["input", "idempotencyKey"], label=words.IDEMPOTENCY_KEY)
        async with ctx.services.db.read() as session:  # the fast path for a retry; decided again below
            earlier = await _purchase_by_key(session, who.account.id, idempotency_key)
        if earlier is not None:
            return _same_request(earlier, fingerprint)
    policy = ctx.services.rules.current
    today, now = ctx.clock.today(), ctx.clock.now()
    async with ctx.services.db.read() as session:
        registration = await session.get(TradeRegistration, who.account.registration_id)
        if registration is None:
            raise Forbidden()
        membership = await membership_at(session, registration.id, now)

    problems: list[UserFailure] = []
    if not lines:
        problems.append(UserFailure(ErrorCode.REQUIRED, ["input", "lines"], label=words.PURCHASE_LINES))
    if len(lines) > MAX_LINES:
        problems.append(UserFailure(ErrorCode.TOO_MANY_ITEMS, ["input", "lines"], label=words.PURCHASE_LINES, limit=MAX_LINES))
    priced: list[tuple[LineInput, CouponProduct]] = []
    seen: set[str] = set()
    for i, line in enumerate(lines[:MAX_LINES]):
        # no membership in force: nothing is offered
        product = fees.coupon_product(policy, today, membership, line.product_code) if membership else None
        if product is None:
            problems.append(UserFailure(ErrorCode.PRODUCT_NOT_OFFERED, ["input", "lines", str(i), "productCode"]))
        elif line.product_code in seen:
            problems.append(UserFailure(ErrorCode.INVALID, ["input", "lines", str(i), "productCode"], label=words.PRODUCT_REPEATED))
        if not 1 <= line.quantity <= MAX_QUANTITY:
            problems.append(UserFailure(ErrorCode.INVALID, ["input", "lines", str(i), "quantity"],
                                        label=core_words.RANGE_HINT.format(label=words.QUANTITY, low=1, high=MAX_QUANTITY)))
        seen.add(line.product_code)
        if product is not None:
            priced.append((line, product))
    if not (registration.allows_card if method == PurchaseMethod.CARD else registration.allows_bank_transfer):
        problems.append(UserFailure(ErrorCode.METHOD_NOT_ALLOWED, ["input", "method"]))
    email = validation.email(notify_email, ["input", "notifyEmail"]) if notify_email else who.account.email
    if isinstance(email, UserFailure):
        problems.append(email)
        email = None
    if problems:
        raise UserFailures(problems)
    if membership is None:  # every line was refused above
        raise UserFailure(ErrorCode.PRODUCT_NOT_OFFERED, ["input", "lines"])

    coupons = sum(line.quantity * product.coupons for line, product in priced)
    amount = sum(line.quantity * product.price for line, product in priced)
    valid_days = limit(policy, today, "bank_transfer_valid_days")
    expires_at = now + dt.timedelta(days=valid_days)
    card: CardPayment | None = None
    cancel_card: Callable[[], Awaitable[None]] | None = None
    if method == PurchaseMethod.CARD:  # the hosted page first (a provider is a network call), then our rows in one transaction
        await payments.expire_payments(ctx.services, registration.id)
        expires_at = now + dt.timedelta(minutes=payments.session_minutes(ctx.services))
        card, cancel_card = await payments.open_payment(
            ctx.services, purpose=PaymentPurpose.COUPON_PURCHASE, registration_id=registration.id, payer_id=who.account.id,
            amount=amount, description=words.CARD_DESCRIPTION.format(coupons=coupons), expires_at=expires_at)
        card.idempotency_fingerprint = fingerprint
    earlier = None
    try:
        async with ctx.services.db.write() as tx:
            locked = await locks.registration(tx, registration.id)
            if locked is None:
                raise Forbidden()
            registration = locked
            if idempotency_key is not None:
                earlier = await _purchase_by_key(tx, who.account.id, idempotency_key)
            if earlier is None:
                if registration.withdrawn_at is not None:
                    raise UserFailure(ErrorCode.INVALID_STATE, ["input"], state=words.REGISTRATION_WITHDRAWN)
                if membership != await membership_at(tx, registration.id, now):  # changed since the prices were read
                    raise UserFailure(ErrorCode.INVALID_STATE, ["input"], state=words.MEMBERSHIP_CHANGED)
                in_progress = await tx.scalar(select(CouponPurchase.id).where(
                    CouponPurchase.registration_id == registration.id, CouponPurchase.status == PurchaseStatus.AWAITING_PAYMENT))
                if in_progress is not None:
                    raise UserFailure(ErrorCode.PURCHASE_IN_PROGRESS, ["input"])
                purchase = await _place_order(tx, ctx, who, registration, membership, priced, method, email, coupons,
                                              amount, expires_at, idempotency_key, fingerprint, card, valid_days)
    except BaseException:
        if cancel_card is not None:
            await cancel_card()
        raise
    if earlier is not None:
        if cancel_card is not None:
            await cancel_card()
        return _same_request(earlier, fingerprint)
    return purchase


async def _place_order(tx: AsyncSession, ctx: Context, who: Viewer, registration: TradeRegistration,
                       membership: Membership, priced: Priced, method: PurchaseMethod, email: str | None, coupons: int, amount: int, expires_at: dt.datetime, idempotency_key: str | None,
                       fingerprint: str, card: CardPayment | None, valid_days: int) -> CouponPurchase:
    policy, today, now = ctx.services.rules.current, ctx.clock.today(), ctx.clock.now()
    serial = (await tx.scalar(select(func.count()).select_from(CouponPurchase)
                              .where(CouponPurchase.registration_id == registration.id)) or 0) + 1
    purchase = CouponPurchase(
        order_number=f"{today:%Y%m%d}{registration.number}{serial:05d}", registration_id=registration.id,
        buyer_id=who.account.id, method=method, membership=membership, status=PurchaseStatus.AWAITING_PAYMENT,
        coupons=coupons, amount=amount, ordered_at=now, ordered_on=today, rules_version=policy.version,
        expires_at=expires_at, notify_email=email, idempotency_key=idempotency_key,
        idempotency_fingerprint=fingerprint if idempotency_key else None,
    )
    tx.add(purchase)
    await tx.flush()
    for line, product in priced:
        tx.add(CouponPurchaseLine(
            purchase_id=purchase.id, product_code=product.code, quantity=line.quantity, unit_price=product.price,
            coupons=line.quantity * product.coupons, amount=line.quantity * product.price))
    await ledger.ensure_account(tx, registration.id, now)
    await tx.execute(update(CouponAccount).where(CouponAccount.registration_id == registration.id)
                     .values(pending=CouponAccount.pending + coupons, updated_at=now))
    if card is not None:
        card.purchase_id = purchase.id
        await payments.number_payment(tx, card, today, registration.number)
        tx.add(card)
    else:
        account = await bank_of(ctx.services).open_virtual_account(tx, purchase.id, today + dt.timedelta(days=valid_days))
        if email:  # an account without an address is told by the transfer request (振込依頼書) alone
            order = _order_mail(policy, today, purchase, registration, account, priced)
            queue_mail(tx, now, CouponMail.ORDER, email, order.subject, order.body, account_id=who.account.id)
    audit(tx, ctx, who.account, "coupon.purchase", target=f"CouponPurchase:{purchase.id}",
          detail=f"{purchase.order_number} {coupons} coupons {amount} yen")
    return purchase


def _order_mail(policy: PolicySet, today: dt.date, purchase: CouponPurchase, registration: TradeRegistration,
                account: VirtualAccount, priced: Priced) -> mail.Mail:
    """The transfer request mail (coupon.order and a coupon.order_line per product, mail_templates.yaml)."""
    lines = "\n".join(mail.render(policy, today, "coupon.order_line",
                                  {"name": p.name, "price": f"{p.price:,}", "quantity": line.quantity}).body
                      for line, p in priced)
    return mail.render(policy, today, "coupon.order", {
        "company": registration.name, "order_number": purchase.order_number, "lines": lines, "amount": f"{purchase.amount:,}",
        "bank_name": account.bank_name, "bank_code": account.bank_code, "branch_name": account.branch_name,
        "branch_code": account.branch_code, "account_number": account.account_number, "holder": account.holder,
        "valid_until": f"{account.valid_until:{words.MAIL_DATE}}"})


async def cancel_coupon_purchase(ctx: Context, purchase_id: int) -> CouponPurchase:
    """The buyer cancels its own pending order (registration → order → card payment)."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "coupon.purchase", {"own_registration"})
    now = ctx.clock.now()
    async with ctx.services.db.write() as tx:
        owner = (await tx.execute(select(CouponPurchase.registration_id, CouponPurchase.buyer_id)
                                  .where(CouponPurchase.id == purchase_id))).first()
        if owner is None or owner.buyer_id != who.account.id:
            raise UserFailure(ErrorCode.NOT_FOUND, ["input", "purchaseId"])
        await locks.registration(tx, owner.registration_id)
        [purchase] = await locks.purchases(tx, [purchase_id])
        card_id = await tx.scalar(select(CardPayment.id).where(CardPayment.purchase_id == purchase.id))
        card = await locks.card_payment(tx, card_id) if card_id is not None else None
        if not await cancel_in_session(tx, purchase, now, words.CANCELLED_BY_BUYER):
            state = words.PURCHASE_STATE_NAMES.get(purchase.status, purchase.status)
            raise UserFailure(ErrorCode.INVALID_STATE, ["input", "purchaseId"], state=state)
        if card is not None and card.status == CardPaymentStatus.OPEN:  # the order is already cancelled: only the payment row closes here
            await tx.execute(update(CardPayment).where(CardPayment.id == card.id).values(status=CardPaymentStatus.CANCELLED, closed_at=now))
        else:
            card = None
        audit(tx, ctx, who.account, "coupon.purchase.cancel", target=f"CouponPurchase:{purchase.id}")
    if card is not None:
        await gateway_of(ctx.services).cancel_session(ctx.services, card.gateway_session)
    return await get_purchase(ctx, purchase_id)


async def cancel_in_session(session: AsyncSession, purchase: CouponPurchase, now: dt.datetime, reason: str) -> bool:
    """Cancel an order awaiting payment, in the caller's unit (which holds its registration's lock)."""
    locks.require_registration(session, purchase.registration_id, "an order's cancellation")
    cancelled = await session.scalar(
        update(CouponPurchase).where(CouponPurchase.id == purchase.id, CouponPurchase.status == PurchaseStatus.AWAITING_PAYMENT)
        .values(status=PurchaseStatus.CANCELLED, cancelled_at=now, cancel_reason=reason).returning(CouponPurchase.id)
    )
    if cancelled is None:
        return False
    await session.execute(update(CouponAccount).where(CouponAccount.registration_id == purchase.registration_id)
                          .values(pending=CouponAccount.pending - purchase.coupons, updated_at=now))
    await emit_purchases(session, WebhookEvent.COUPON_PURCHASE_CANCELLED, [purchase.id], now)
    return True


async def get_purchase(ctx: Context, purchase_id: int) -> CouponPurchase:
    async with ctx.services.db.read() as session:
        purchase = await session.get(CouponPurchase, purchase_id)
    if purchase is None:
        raise UserFailure(ErrorCode.NOT_FOUND, ["input", "purchaseId"])
    return purchase


# --------------------------------------------------------------------------- deposits

_ACCOUNT_NUMBER = re.compile(r"[0-9]{7}")


@dataclass(frozen=True)
class DepositSource:
    """Where deposits come from. A statement file carries its SHA-256: a line without a bank
    id is keyed by file and line, so importing the same file again records nothing twice,
    while two identical lines are two deposits. A person's entry has no digest: a line
    without a bank id is always a new deposit (give ``depositId`` to make a retry safe)."""

    label: str
    digest: str | None = None

    @classmethod
    def file(cls, name: str, data: bytes) -> DepositSource:
        digest = hashlib.sha256(data).hexdigest()
        return cls(f"{name[-150:]} (sha256 {digest[:16]})", digest)


@dataclass(frozen=True)
class StoredDeposits:
    recorded: list[int]  # positions in the input recorded now
    already: list[tuple[int, str]]  # positions recorded before (the same key and deposit), with where they came from
    repeats: list[tuple[int, int]]  # (position, earlier position): a bank id repeated within one file, both recorded


_NOT_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # Unicode categories Cc and Cs


def _is_text(value: str) -> bool:
    """No control characters (NUL …) and no lone surrogates: text PostgreSQL stores and a person reads."""
    return _NOT_TEXT.search(value) is None


def _checked(deposits: list[DepositInput]) -> tuple[list[DepositInput], list[UserFailure]]:
    """The deposits with blank optional fields as None, and a UserFailure for every bad field."""
    problems: list[UserFailure] = []
    clean: list[DepositInput] = []
    for i, d in enumerate(deposits):
        def field(name: str, i: int = i) -> list[str]:
            return ["input", "deposits", str(i), name]

        payer = (d.payer_name or "").strip() or None
        deposit_id = (d.deposit_id or "").strip() or None
        if not _ACCOUNT_NUMBER.fullmatch(d.account_number or ""):
            problems.append(UserFailure(ErrorCode.INVALID, field("accountNumber"), label=words.ACCOUNT_NUMBER))
        if not 1 <= d.amount <= MAX_DEPOSIT:
            problems.append(UserFailure(ErrorCode.INVALID, field("amount"),
                                        label=core_words.RANGE_HINT.format(label=words.AMOUNT, low=1, high=f"{MAX_DEPOSIT:,}")))
        if payer is not None and not _is_text(payer):
            problems.append(UserFailure(ErrorCode.INVALID, field("payerName"), label=core_words.CONTROL_CHARACTER_HINT.format(label=words.PAYER_NAME)))
        elif payer is not None and len(payer) > MAX_PAYER_NAME:
            problems.append(UserFailure(ErrorCode.TOO_LONG, field("payerName"), label=words.PAYER_NAME, limit=MAX_PAYER_NAME))
        if deposit_id is not None and not _is_text(deposit_id):
            problems.append(UserFailure(ErrorCode.INVALID, field("depositId"), label=core_words.CONTROL_CHARACTER_HINT.format(label=words.DEPOSIT_ID)))
        elif deposit_id is not None and len(deposit_id) > MAX_DEPOSIT_ID:
            problems.append(UserFailure(ErrorCode.TOO_LONG, field("depositId"), label=words.DEPOSIT_ID, limit=MAX_DEPOSIT_ID))
        unchanged = payer == d.payer_name and deposit_id == d.deposit_id  # a statement's lines mostly are
        clean.append(d if unchanged else replace(d, payer_name=payer, deposit_id=deposit_id))
    return clean, problems


def _keys(deposits: list[DepositInput], source: DepositSource) -> tuple[list[str | None], list[tuple[int, int]], list[UserFailure]]:
    """One unique key per line: ``bank:<id>`` when the bank gives an id, else file + line,
    else a new key. A bank id repeated within one file is money the bank reported twice:
    both are recorded (``#2`` …) and the repeat is reported; in a person's entry it is a
    mistake to fix, refused (its key is None)."""
    keys: list[str | None] = []
    repeats: list[tuple[int, int]] = []
    problems: list[UserFailure] = []
    first: dict[str, int] = {}
    times: dict[str, int] = {}
    for i, d in enumerate(deposits):
        if d.deposit_id is None:
            keys.append(f"file:{source.digest}:{d.line}" if source.digest else f"entry:{uuid.uuid4().hex}")
            continue
        times[d.deposit_id] = times.get(d.deposit_id, 0) + 1
        if times[d.deposit_id] == 1:
            first[d.deposit_id] = i
            keys.append(f"bank:{d.deposit_id}")
        elif source.digest is None:
            keys.append(None)
            problems.append(UserFailure(ErrorCode.INVALID, ["input", "deposits", str(i), "depositId"],
                                        label=words.DEPOSIT_ID_REPEATED.format(first=first[d.deposit_id] + 1)))
        else:
            keys.append(f"bank:{d.deposit_id}#{times[d.deposit_id]}")
            repeats.append((i, first[d.deposit_id]))
    return keys, repeats, problems


async def store_deposits(tx: AsyncSession, deposits: list[DepositInput], source: DepositSource, now: dt.datetime,
                         chamber_id: int | None = None) -> StoredDeposits:
    """Record deposits in the caller's unit of work: all of them, or none (UserFailures).

    Every line is money received and is recorded, except a replay: a key already recorded
    for the same account, amount and date. The same bank id for another deposit is
    refused. With ``chamber_id`` (chamber staff) an account of another chamber is
    NOT_FOUND exactly like an unknown one. Decided from rows read inside ``tx``.

    The lines are bulk-loaded into a staging table and checked and recorded set-based
    (resolvers/coupons/reconciliation.py): a statement of 100,000 lines is a handful of
    statements, and no statement carries a parameter per line."""
    deposits, problems = _checked(deposits)
    keys, repeats, repeated = _keys(deposits, source)
    flawed = {int(p.field[2]) for p in problems if p.field}
    # a line with a problem is staged only to check its account: nothing of it is recorded
    await reconciliation.stage_lines(tx, [
        (i, keys[i], d.account_number, d.amount, d.deposited_on, d.payer_name, d.line)
        if i not in flawed and keys[i] is not None else (i, None, d.account_number, None, None, None, None)
        for i, d in enumerate(deposits) if _ACCOUNT_NUMBER.fullmatch(d.account_number or "")])
    problems += repeated + [UserFailure(ErrorCode.NOT_FOUND, ["input", "deposits", str(i), "accountNumber"])
                            for i in await reconciliation.unknown_accounts(tx, chamber_id)]
    if problems:  # every problem at once; nothing was written
        raise UserFailures(problems)
    # recorded before (or by a concurrent import that committed first): the same deposit, or a clash
    earlier = await reconciliation.record_staged(tx, source.label, now)  # deposits are records (level 7)
    already: list[tuple[int, str]] = []
    if earlier:
        if None in earlier.values():
            earlier.update(await reconciliation.earlier_deposits(tx, {i for i, row in earlier.items() if row is None}))
        clashes = []
        for i in sorted(earlier):
            row, d = earlier[i], deposits[i]
            where = f"{row.source or 'an earlier entry'}" + (f" line {row.source_line}" if row.source_line else "")
            if (row.account_number, row.amount, row.deposited_on) != (d.account_number, d.amount, d.deposited_on):
                clashes.append(UserFailure(ErrorCode.INVALID, ["input", "deposits", str(i), "depositId"],
                                           label=words.DEPOSIT_ID_TAKEN, earlier=where))
            else:
                already.append((i, where))
        if clashes:
            raise UserFailures(clashes)
    return StoredDeposits(recorded=[i for i in range(len(deposits)) if i not in earlier], already=already, repeats=repeats)


async def import_deposits(services: Services, deposits: list[DepositInput], source: DepositSource) -> StoredDeposits:
    """`tradecert bank import`: record a statement's deposits in one unit of work (any chamber's)."""
    async with services.db.write() as tx:
        return await store_deposits(tx, deposits, source, services.clock.now())


@dataclass(frozen=True)
class RecordedDeposits:
    orders: list[CouponPurchase]
    already_recorded: list[int]  # positions of deposits recorded before (nothing changed for them)


async def record_bank_deposits(ctx: Context, deposits: list[DepositInput]) -> RecordedDeposits:
    """Chamber staff: record deposits of this chamber's orders, all or none, in one unit of work."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "payment.check", {"same_chamber"})
    if not deposits:
        raise UserFailure(ErrorCode.REQUIRED, ["input", "deposits"], label=words.DEPOSITS)
    async with ctx.services.db.write() as tx:
        stored = await store_deposits(tx, deposits, DepositSource(f"recordBankDeposits by {who.account.username}"),
                                      ctx.clock.now(), chamber_id=who.account.chamber_id)
        audit(tx, ctx, who.account, "payment.record_deposits",
              detail=f"{len(stored.recorded)} deposit(s) recorded, {len(stored.already)} recorded before")
        paid = await reconciliation.staged_orders(tx)  # the orders the deposits belong to
        orders = list((await tx.scalars(select(CouponPurchase).where(CouponPurchase.id.in_(paid))
                                        .order_by(CouponPurchase.id))).all())
    return RecordedDeposits(orders, [i for i, _ in stored.already])


# --------------------------------------------------------------------------- reconciliation
# The set-based statements are in resolvers/coupons/reconciliation.py; here, the units of work.


async def _apply(tx: AsyncSession, services: Services, which: ColumnElement[bool]) -> dict[str, int]:
    now = services.clock.now()
    counts = await reconciliation.apply_deposits(tx, services.rules.current, services.clock.today(), now, which)
    if counts:  # the orders this unit issued or cancelled, reported in it
        issued, cancelled = await reconciliation.decided_orders(tx)
        await emit_purchases(tx, WebhookEvent.COUPON_PURCHASE_ISSUED, issued, now)
        await emit_purchases(tx, WebhookEvent.COUPON_PURCHASE_CANCELLED, cancelled, now)
    return counts


async def reconcile(services: Services, progress: Callable[[int, int], object] | None = None) -> dict[str, int]:
    """Apply every unprocessed deposit once, a chunk of ``reconciliation.CHUNK`` per unit of
    work; returns counts by outcome. ``progress(done, total)`` is called after each chunk.
    The list read here is only a work list: each chunk claims its deposits again under its
    locks, so a run killed mid-way loses at most the chunk it was writing, which the next
    run applies."""
    async with services.db.read() as session:
        ids = (await session.scalars(reconciliation.unprocessed_ids())).all()
    counts: dict[str, int] = {}
    for start in range(0, len(ids), reconciliation.CHUNK):
        chunk = ids[start:start + reconciliation.CHUNK]
        async with services.db.write() as tx:
            applied = await _apply(tx, services, reconciliation.in_range(chunk[0], chunk[-1]))
        for outcome, n in applied.items():
            counts[outcome] = counts.get(outcome, 0) + n
        if progress is not None:
            progress(start + len(chunk), len(ids))
    return counts


async def check_purchase_payment(ctx: Context, purchase_id: int) -> CouponPurchase:
    """Chamber staff: apply this order's deposits now (手動で決済状況を確認する), in one unit
    of work. Another chamber's order is NOT_FOUND, like an unknown one."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "payment.check", {"same_chamber"})
    async with ctx.services.db.write() as tx:
        owner = (await tx.execute(
            select(CouponPurchase.registration_id, TradeRegistration.chamber_id)
            .join(TradeRegistration, TradeRegistration.id == CouponPurchase.registration_id)
            .where(CouponPurchase.id == purchase_id))).first()
        if owner is None or owner.chamber_id != who.account.chamber_id:
            raise UserFailure(ErrorCode.NOT_FOUND, ["input", "purchaseId"])
        await locks.registration(tx, owner.registration_id)
        await _apply(tx, ctx.services, reconciliation.of_order(purchase_id))
        audit(tx, ctx, who.account, "payment.check", target=f"CouponPurchase:{purchase_id}")
        purchase = await tx.get(CouponPurchase, purchase_id, populate_existing=True)
    if purchase is None:  # an order is never deleted
        raise UserFailure(ErrorCode.NOT_FOUND, ["input", "purchaseId"])
    return purchase


async def expire_unpaid(services: Services) -> str:
    """Cancel orders whose payment window has passed (job `purchase-expiry`). Each order in
    its own unit, decided again under its registration's lock; a deposit already recorded
    for it is applied first, so money that came in time is never answered by a cancellation."""
    now = services.clock.now()
    async with services.db.read() as session:
        due = (await session.scalars(select(CouponPurchase).where(  # card orders expire with their card session
            CouponPurchase.status == PurchaseStatus.AWAITING_PAYMENT, CouponPurchase.method == PurchaseMethod.BANK_TRANSFER,
            CouponPurchase.expires_at < now))).all()
    cancelled = 0
    for candidate in due:
        async with services.db.write() as tx:
            await locks.registration(tx, candidate.registration_id)
            purchase: CouponPurchase | None
            if await _apply(tx, services, reconciliation.of_order(candidate.id)):  # locks the account and the order, in order
                purchase = await tx.get(CouponPurchase, candidate.id, populate_existing=True)
            else:
                [purchase] = await locks.purchases(tx, [candidate.id])
            if (purchase is not None and purchase.status == PurchaseStatus.AWAITING_PAYMENT
                    and purchase.expires_at is not None and purchase.expires_at < now):
                cancelled += await cancel_in_session(tx, purchase, now, words.PAYMENT_WINDOW_PASSED)
    return f"{cancelled} unpaid order(s) cancelled"


async def reconcile_job(services: Services) -> str:
    counts = await reconcile(services)
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no new deposits"


# --------------------------------------------------------------------------- paid by card
# The COUPON_PURCHASE purpose of a card payment (wired in tradecert/composition.py).

async def card_paid(session: AsyncSession, services: Services, payment: CardPayment, now: dt.datetime) -> bool:
    """Issue the order's coupons at once (ledger keys per line, as for bank transfers)."""
    issued = await session.scalar(
        update(CouponPurchase).where(CouponPurchase.id == payment.purchase_id, CouponPurchase.status == PurchaseStatus.AWAITING_PAYMENT)
        .values(status=PurchaseStatus.ISSUED, paid_at=now, deposited_amount=payment.amount).returning(CouponPurchase.id))
    if issued is None:
        return False
    purchase = await session.get(CouponPurchase, issued)
    if purchase is None:  # just updated in this unit
        return False
    lines = (await session.scalars(select(CouponPurchaseLine).where(CouponPurchaseLine.purchase_id == purchase.id)
                                   .order_by(CouponPurchaseLine.id))).all()
    for line in lines:
        await ledger.credit(
            session, registration_id=purchase.registration_id, coupons=line.coupons, kind=CouponEntryKind.PURCHASE,
            key=f"purchase:{purchase.id}:line:{line.id}", now=now, acquired_on=purchase.ordered_on,
            rules_version=purchase.rules_version, product_code=line.product_code, membership=purchase.membership,
            unit_price=line.unit_price, actor_id=purchase.buyer_id, note=words.ORDER_NOTE.format(order_number=purchase.order_number),
            purchase_id=purchase.id)
    await session.execute(update(CouponAccount).where(CouponAccount.registration_id == purchase.registration_id)
                          .values(pending=CouponAccount.pending - purchase.coupons, updated_at=now))
    await emit_purchases(session, WebhookEvent.COUPON_PURCHASE_ISSUED, [purchase.id], now)
    if purchase.notify_email:
        issued_mail = mail.render(services.rules.current, services.clock.today(), "coupon.issued_by_card", {
            "order_number": purchase.order_number, "amount": f"{payment.amount:,}",
            "payment_number": payment.payment_number, "coupons": purchase.coupons})
        queue_mail(session, now, CouponMail.ISSUED, purchase.notify_email, issued_mail.subject, issued_mail.body,
                   account_id=purchase.buyer_id)
    return True


async def card_failed(session: AsyncSession, services: Services, payment: CardPayment, now: dt.datetime,
                      reason: str) -> None:
    purchase = await session.get(CouponPurchase, payment.purchase_id) if payment.purchase_id is not None else None
    if purchase is not None:
        await cancel_in_session(session, purchase, now, reason)


async def lock_for_card(session: AsyncSession, payment_id: int) -> None:
    purchase_id = await session.scalar(select(CardPayment.purchase_id).where(CardPayment.id == payment_id))
    await locks.purchases(session, [purchase_id] if purchase_id else [])
