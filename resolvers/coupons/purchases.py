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
import unicodedata
import uuid
from dataclasses import dataclass, replace

from sqlalchemy import bindparam, func, insert, select, update

from persistence import locks
from persistence.models import (
    Account,
    BankDeposit,
    CardPayment,
    CouponAccount,
    CouponEntry,
    CouponEntryLot,
    CouponLot,
    CouponPurchase,
    CouponPurchaseLine,
    OutboxMail,
    Refund,
    TradeRegistration,
    VirtualAccount,
)
from resolvers.adapters.bank import Bank, SandboxBank
from resolvers.adapters.mail import queue_mail
from resolvers.core import validation
from resolvers.core.context import Context, Services
from resolvers.core.errors import Forbidden, UserFailure, UserFailures
from resolvers.coupons import ledger
from resolvers.identity.accounts import audit, authorize, membership_at, require_viewer
from resolvers.payments import card as payments
from rules import fees
from rules.limits import limit

MAX_QUANTITY = 1000  # per line: a typo guard (an absurd order), not policy
MAX_LINES = 10  # lines of one order: there are two products; a bound for hostile input


def bank_of(services: Services) -> Bank:
    return services.bank or SandboxBank()


@dataclass(frozen=True)
class LineInput:
    product_code: str
    quantity: int


# --------------------------------------------------------------------------- start / cancel


def _fingerprint(lines: list[LineInput], method: str, notify_email: str | None) -> str:
    """What a request asked for, for the idempotency key's "same request?" question."""
    canonical = json.dumps({"lines": [[line.product_code, line.quantity] for line in lines], "method": method,
                            "notifyEmail": (notify_email or "").strip().lower()}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _same_request(earlier: CouponPurchase, fingerprint: str) -> CouponPurchase:
    """A key seen before: the first result for the same request, IDEMPOTENCY_KEY_REUSED otherwise."""
    if earlier.idempotency_fingerprint not in (None, fingerprint):
        raise UserFailure("IDEMPOTENCY_KEY_REUSED", ["input", "idempotencyKey"])
    return earlier


async def _purchase_by_key(session, buyer_id: int, key: str) -> CouponPurchase | None:
    return await session.scalar(select(CouponPurchase).where(
        CouponPurchase.buyer_id == buyer_id, CouponPurchase.idempotency_key == key))


async def start_coupon_purchase(ctx: Context, lines: list[LineInput], method: str, notify_email: str | None,
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
            raise UserFailure("INVALID", ["input", "idempotencyKey"], label="idempotencyKey")
        async with ctx.services.db.read() as session:  # the fast path for a retry; decided again below
            earlier = await _purchase_by_key(session, who.account.id, idempotency_key)
        if earlier is not None:
            return _same_request(earlier, fingerprint)
    policy = ctx.services.rules.current
    today, now = ctx.clock.today(), ctx.clock.now()
    async with ctx.services.db.read() as session:
        registration = await session.get(TradeRegistration, who.account.registration_id)
        membership = await membership_at(session, registration.id, now)

    problems: list[UserFailure] = []
    if not lines:
        problems.append(UserFailure("REQUIRED", ["input", "lines"], label="購入内容"))
    if len(lines) > MAX_LINES:
        problems.append(UserFailure("TOO_MANY_ITEMS", ["input", "lines"], label="購入内容", limit=MAX_LINES))
    priced = []
    seen: set[str] = set()
    for i, line in enumerate(lines[:MAX_LINES]):
        product = fees.coupon_product(policy, today, membership, line.product_code)
        if product is None:
            problems.append(UserFailure("PRODUCT_NOT_OFFERED", ["input", "lines", str(i), "productCode"]))
        elif line.product_code in seen:
            problems.append(UserFailure("INVALID", ["input", "lines", str(i), "productCode"], label="商品(重複)"))
        if not 1 <= line.quantity <= MAX_QUANTITY:
            problems.append(UserFailure("INVALID", ["input", "lines", str(i), "quantity"], label="数量"))
        seen.add(line.product_code)
        if product is not None:
            priced.append((line, product))
    if not (registration.allows_card if method == "CARD" else registration.allows_bank_transfer):
        problems.append(UserFailure("METHOD_NOT_ALLOWED", ["input", "method"]))
    email = validation.email(notify_email, ["input", "notifyEmail"]) if notify_email else who.account.email
    if isinstance(email, UserFailure):
        problems.append(email)
    if problems:
        raise UserFailures(problems)

    coupons = sum(line.quantity * product.coupons for line, product in priced)
    amount = sum(line.quantity * product.price for line, product in priced)
    valid_days = limit(policy, today, "bank_transfer_valid_days")
    expires_at = now + dt.timedelta(days=valid_days)
    card = cancel_card = None
    if method == "CARD":  # the hosted page first (a provider is a network call), then our rows in one transaction
        await payments.expire_payments(ctx.services, registration.id)
        expires_at = now + dt.timedelta(minutes=payments.session_minutes(ctx.services))
        card, cancel_card = await payments.open_payment(
            ctx.services, purpose="COUPON_PURCHASE", registration_id=registration.id, payer_id=who.account.id,
            amount=amount, description=f"貿易関係証明発給システム クーポン購入 ({coupons}枚)", expires_at=expires_at)
        card.idempotency_fingerprint = fingerprint
    earlier = None
    try:
        async with ctx.services.db.write() as tx:
            registration = await locks.registration(tx, registration.id)
            if idempotency_key is not None:
                earlier = await _purchase_by_key(tx, who.account.id, idempotency_key)
            if earlier is None:
                if registration.withdrawn_at is not None:
                    raise UserFailure("INVALID_STATE", ["input"])
                if membership != await membership_at(tx, registration.id, now):  # changed since the prices were read
                    raise UserFailure("INVALID_STATE", ["input"])
                in_progress = await tx.scalar(select(CouponPurchase.id).where(
                    CouponPurchase.registration_id == registration.id, CouponPurchase.status == "AWAITING_PAYMENT"))
                if in_progress is not None:
                    raise UserFailure("PURCHASE_IN_PROGRESS", ["input"])
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


async def _place_order(tx, ctx: Context, who, registration: TradeRegistration, membership: str, priced, method: str,
                       email: str, coupons: int, amount: int, expires_at: dt.datetime, idempotency_key: str | None,
                       fingerprint: str, card: CardPayment | None, valid_days: int) -> CouponPurchase:
    policy, today, now = ctx.services.rules.current, ctx.clock.today(), ctx.clock.now()
    serial = (await tx.scalar(select(func.count()).select_from(CouponPurchase)
                              .where(CouponPurchase.registration_id == registration.id))) + 1
    purchase = CouponPurchase(
        order_number=f"{today:%Y%m%d}{registration.number}{serial:05d}", registration_id=registration.id,
        buyer_id=who.account.id, method=method, membership=membership, status="AWAITING_PAYMENT",
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
        queue_mail(tx, now, "coupon.order", email, "【貿易関係証明発給システム】クーポン購入のお知らせ（お振込のご案内）",
                   _order_mail(purchase, registration, account, priced), account_id=who.account.id)
    audit(tx, ctx, who.account, "coupon.purchase", target=f"CouponPurchase:{purchase.id}",
          detail=f"{purchase.order_number} {coupons} coupons {amount} yen")
    return purchase


def _order_mail(purchase: CouponPurchase, registration: TradeRegistration, account: VirtualAccount, priced) -> str:
    lines = "\n".join(f"  {p.name} {p.price:,}円 × {line.quantity}" for line, p in priced)
    return (
        f"{registration.name} 様\n\nクーポンのご注文を承りました。下記口座へお振込みください。\n\n"
        f"注文番号: {purchase.order_number}\n購入内容:\n{lines}\nお振込金額: {purchase.amount:,}円\n\n"
        f"振込先銀行: {account.bank_name} ({account.bank_code})\n支店: {account.branch_name} ({account.branch_code})\n"
        f"口座種別: 普通\n口座番号: {account.account_number}\n名義: {account.holder}\n"
        f"振込口座有効期限: {account.valid_until:%Y年%m月%d日}\n\n"
        "※振込手数料はご購入者の負担となります。入金額が購入額と異なる場合の返金は、振込手数料等の諸経費を除いた金額となります。\n"
    )


async def cancel_coupon_purchase(ctx: Context, purchase_id: int) -> CouponPurchase:
    """The buyer cancels its own pending order (registration → order → card payment)."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "coupon.purchase", {"own_registration"})
    now = ctx.clock.now()
    async with ctx.services.db.write() as tx:
        owner = (await tx.execute(select(CouponPurchase.registration_id, CouponPurchase.buyer_id)
                                  .where(CouponPurchase.id == purchase_id))).first()
        if owner is None or owner.buyer_id != who.account.id:
            raise UserFailure("NOT_FOUND", ["input", "purchaseId"])
        await locks.registration(tx, owner.registration_id)
        [purchase] = await locks.purchases(tx, [purchase_id])
        card_id = await tx.scalar(select(CardPayment.id).where(CardPayment.purchase_id == purchase.id))
        card = await locks.card_payment(tx, card_id) if card_id is not None else None
        if not await cancel_in_session(tx, purchase, now, "購入者による取消"):
            raise UserFailure("INVALID_STATE", ["input", "purchaseId"])
        if card is not None and card.status == "OPEN":  # the order is already cancelled: only the payment row closes here
            await tx.execute(update(CardPayment).where(CardPayment.id == card.id).values(status="CANCELLED", closed_at=now))
        else:
            card = None
        audit(tx, ctx, who.account, "coupon.purchase.cancel", target=f"CouponPurchase:{purchase.id}")
    if card is not None:
        await payments.gateway_of(ctx.services).cancel_session(ctx.services, card.gateway_session)
    return await get_purchase(ctx, purchase_id)


async def cancel_in_session(session, purchase: CouponPurchase, now: dt.datetime, reason: str) -> bool:
    """Cancel an order awaiting payment, in the caller's unit (which holds its registration's lock)."""
    locks.require_registration(session, purchase.registration_id, "an order's cancellation")
    cancelled = await session.scalar(
        update(CouponPurchase).where(CouponPurchase.id == purchase.id, CouponPurchase.status == "AWAITING_PAYMENT")
        .values(status="CANCELLED", cancelled_at=now, cancel_reason=reason).returning(CouponPurchase.id)
    )
    if cancelled is None:
        return False
    await session.execute(update(CouponAccount).where(CouponAccount.registration_id == purchase.registration_id)
                          .values(pending=CouponAccount.pending - purchase.coupons, updated_at=now))
    return True


async def get_purchase(ctx: Context, purchase_id: int) -> CouponPurchase:
    async with ctx.services.db.read() as session:
        return await session.get(CouponPurchase, purchase_id)


# --------------------------------------------------------------------------- deposits

MAX_DEPOSIT = 2_147_483_647  # the amount columns are 32-bit integers (a Zengin 金額 is N(10): refused above this)
MAX_DEPOSIT_ID = 64  # the bank's id of a deposit; a Zengin id built from the notice is 32 characters
MAX_PAYER_NAME = 120  # the column; a Zengin 振込依頼人名 is 48 half-width characters
_ACCOUNT_NUMBER = re.compile(r"[0-9]{7}")


@dataclass(frozen=True)
class DepositInput:
    account_number: str
    amount: int
    deposited_on: dt.date
    payer_name: str | None = None
    deposit_id: str | None = None  # the bank's id (照会番号 …): the same id again is a replay, never a second deposit
    line: int | None = None  # the statement file's line (record) it was read from


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
    purchase_ids: list[int]  # the orders the deposits belong to


def _is_text(value: str) -> bool:
    """No control characters (NUL …) and no lone surrogates: text PostgreSQL stores and a person reads."""
    return not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value)


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
            problems.append(UserFailure("INVALID", field("accountNumber"), label="口座番号(7桁)"))
        if not 1 <= d.amount <= MAX_DEPOSIT:
            problems.append(UserFailure("INVALID", field("amount"), label="金額"))
        if payer is not None and not _is_text(payer):
            problems.append(UserFailure("INVALID", field("payerName"), label="振込依頼人名"))
        elif payer is not None and len(payer) > MAX_PAYER_NAME:
            problems.append(UserFailure("TOO_LONG", field("payerName"), label="振込依頼人名", limit=MAX_PAYER_NAME))
        if deposit_id is not None and not _is_text(deposit_id):
            problems.append(UserFailure("INVALID", field("depositId"), label="入金ID(照会番号)"))
        elif deposit_id is not None and len(deposit_id) > MAX_DEPOSIT_ID:
            problems.append(UserFailure("TOO_LONG", field("depositId"), label="入金ID(照会番号)", limit=MAX_DEPOSIT_ID))
        clean.append(replace(d, payer_name=payer, deposit_id=deposit_id))
    return clean, problems


def _keys(deposits: list[DepositInput], source: DepositSource) -> tuple[list[str], list[tuple[int, int]], list[UserFailure]]:
    """One unique key per line: ``bank:<id>`` when the bank gives an id, else file + line,
    else a new key. A bank id repeated within one file is money the bank reported twice:
    both are recorded (``#2`` …) and the repeat is reported; in a person's entry it is a
    mistake to fix, refused."""
    keys: list[str] = []
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
            problems.append(UserFailure("INVALID", ["input", "deposits", str(i), "depositId"],
                                        label=f"入金ID(照会番号)が{first[d.deposit_id] + 1}件目と重複"))
        else:
            keys.append(f"bank:{d.deposit_id}#{times[d.deposit_id]}")
            repeats.append((i, first[d.deposit_id]))
    return keys, repeats, problems


async def store_deposits(tx, deposits: list[DepositInput], source: DepositSource, now: dt.datetime,
                         chamber_id: int | None = None) -> StoredDeposits:
    """Record deposits in the caller's unit of work: all of them, or none (UserFailures).

    Every line is money received and is recorded, except a replay: a key already recorded
    for the same account, amount and date. The same bank id for another deposit is
    refused. With ``chamber_id`` (chamber staff) an account of another chamber is
    NOT_FOUND exactly like an unknown one. Decided from rows read inside ``tx``."""
    deposits, problems = _checked(deposits)
    keys, repeats, repeated = _keys(deposits, source)
    owners = {row.account_number: row for row in (await tx.execute(
        select(VirtualAccount.account_number, VirtualAccount.purchase_id, TradeRegistration.chamber_id)
        .join(CouponPurchase, CouponPurchase.id == VirtualAccount.purchase_id)
        .join(TradeRegistration, TradeRegistration.id == CouponPurchase.registration_id)
        .where(VirtualAccount.account_number.in_(
            {d.account_number for d in deposits if _ACCOUNT_NUMBER.fullmatch(d.account_number or "")})))).all()}
    if chamber_id is not None:
        owners = {number: row for number, row in owners.items() if row.chamber_id == chamber_id}
    problems += repeated + [UserFailure("NOT_FOUND", ["input", "deposits", str(i), "accountNumber"])
                            for i, d in enumerate(deposits)
                            if d.account_number not in owners and _ACCOUNT_NUMBER.fullmatch(d.account_number or "")]
    if problems:  # every problem at once; nothing was written
        raise UserFailures(problems)
    locks.note(tx, "record")  # deposits are records (level 7): nothing of a higher level is taken here
    table = BankDeposit.__table__
    inserted = set((await tx.scalars(
        ledger.dialect_insert(tx)(table).on_conflict_do_nothing(index_elements=["deposit_key"]).returning(table.c.deposit_key),
        [{"deposit_key": key, "account_number": d.account_number, "amount": d.amount, "deposited_on": d.deposited_on,
          "payer_name": d.payer_name, "recorded_at": now, "source": source.label, "source_line": d.line}
         for key, d in zip(keys, deposits)])).all())
    taken = [i for i, key in enumerate(keys) if key not in inserted]
    already: list[tuple[int, str]] = []
    if taken:  # recorded before (or by a concurrent import that committed first): the same deposit, or a clash
        earlier = {row.deposit_key: row for row in (await tx.execute(
            select(table.c.deposit_key, table.c.account_number, table.c.amount, table.c.deposited_on, table.c.source,
                   table.c.source_line)
            .where(table.c.deposit_key.in_({keys[i] for i in taken})))).all()}
        clashes = []
        for i in taken:
            row, d = earlier[keys[i]], deposits[i]
            where = f"{row.source or 'an earlier entry'}" + (f" line {row.source_line}" if row.source_line else "")
            if (row.account_number, row.amount, row.deposited_on) != (d.account_number, d.amount, d.deposited_on):
                clashes.append(UserFailure("INVALID", ["input", "deposits", str(i), "depositId"],
                                           label="入金ID(照会番号)(別の入金として記録済み)", earlier=where))
            else:
                already.append((i, where))
        if clashes:
            raise UserFailures(clashes)
    return StoredDeposits(recorded=[i for i, key in enumerate(keys) if key in inserted], already=already, repeats=repeats,
                          purchase_ids=sorted({owners[d.account_number].purchase_id for d in deposits}))


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
        raise UserFailure("REQUIRED", ["input", "deposits"], label="入金")
    async with ctx.services.db.write() as tx:
        stored = await store_deposits(tx, deposits, DepositSource(f"recordBankDeposits by {who.account.username}"),
                                      ctx.clock.now(), chamber_id=who.account.chamber_id)
        audit(tx, ctx, who.account, "payment.record_deposits",
              detail=f"{len(stored.recorded)} deposit(s) recorded, {len(stored.already)} recorded before")
        orders = list((await tx.scalars(select(CouponPurchase).where(CouponPurchase.id.in_(stored.purchase_ids))
                                        .order_by(CouponPurchase.id))).all())
    return RecordedDeposits(orders, [i for i, _ in stored.already])


# --------------------------------------------------------------------------- reconciliation


CHUNK = 1000  # deposits per reconciliation transaction


async def reconcile(services: Services, progress=None) -> dict[str, int]:
    """Apply every unprocessed deposit once, a chunk per unit of work; returns counts by
    outcome. ``progress(done, total)`` is called after each chunk. The list read here is
    only a work list: each chunk claims its deposits again under its locks."""
    async with services.db.read() as session:
        ids = (await session.scalars(
            select(BankDeposit.id).where(BankDeposit.processed_at.is_(None)).order_by(BankDeposit.id))).all()
    counts: dict[str, int] = {}
    for start in range(0, len(ids), CHUNK):
        async with services.db.write() as tx:
            chunk = await apply_deposits(tx, services, ids[start:start + CHUNK])
        for outcome, n in chunk.items():
            counts[outcome] = counts.get(outcome, 0) + n
        if progress is not None:
            progress(min(start + CHUNK, len(ids)), len(ids))
    return counts


async def _unprocessed_deposits(tx, purchase_id: int) -> list[int]:
    return list((await tx.scalars(
        select(BankDeposit.id).join(VirtualAccount, VirtualAccount.account_number == BankDeposit.account_number)
        .where(VirtualAccount.purchase_id == purchase_id, BankDeposit.processed_at.is_(None))
        .order_by(BankDeposit.id))).all())


async def apply_deposits(tx, services: Services, deposit_ids: list[int]) -> dict[str, int]:
    """Apply deposits in the caller's unit of work, with a fixed number of statements.

    Locks follow the one order (persistence/locks.py): the deposits' registrations, their
    coupon accounts, their orders, then the deposits themselves, claimed by a conditional
    UPDATE (one another reconciler claimed is skipped). Each deposit is then decided in
    order from the rows read under those locks — exact → issue; more → issue and owe back
    the excess less costs; less → cancel and owe back the deposit less costs; an order no
    longer awaiting payment (paid, cancelled) or an expired account → owe back the whole
    deposit less costs — so every yen received is issued or owed back. The writes are
    bulk statements; ledger keys stay per order line, so a replay can never issue twice.
    """
    policy = services.rules.current
    now, today = services.clock.now(), services.clock.today()
    counts: dict[str, int] = {}
    # what the deposits belong to: an account's order and its registration never change (read without locks)
    targets = (await tx.execute(
        select(BankDeposit.id, VirtualAccount.purchase_id, CouponPurchase.registration_id)
        .join(VirtualAccount, VirtualAccount.account_number == BankDeposit.account_number)
        .join(CouponPurchase, CouponPurchase.id == VirtualAccount.purchase_id)
        .where(BankDeposit.id.in_(deposit_ids), BankDeposit.processed_at.is_(None)))).all()
    if not targets:
        return counts
    registration_ids = sorted({t.registration_id for t in targets})
    await locks.registrations(tx, registration_ids)  # 1
    locks.note(tx, "coupon_account", registration_ids)  # 2
    # plain rows, not ORM objects: a chunk loads thousands of them
    balances = {a.registration_id: {"rid": a.registration_id, "balance": a.balance, "pending": a.pending}
                for a in (await tx.execute(
                    select(CouponAccount.registration_id, CouponAccount.balance, CouponAccount.pending)
                    .where(CouponAccount.registration_id.in_(registration_ids))
                    .order_by(CouponAccount.registration_id).with_for_update(key_share=True))).all()}
    orders = {p.id: p for p in await locks.purchases(tx, {t.purchase_id for t in targets})}  # 5
    claim = sorted(t.id for t in targets)
    locks.note(tx, "record", claim)  # 7
    claimed = sorted((await tx.execute(
        update(BankDeposit).where(BankDeposit.id.in_(claim), BankDeposit.processed_at.is_(None))
        .values(processed_at=now)
        .returning(BankDeposit.id, BankDeposit.account_number, BankDeposit.amount, BankDeposit.deposited_on)
    )).all(), key=lambda d: d.id)
    if not claimed:
        return counts
    accounts = {a.account_number: a for a in (await tx.execute(
        select(VirtualAccount.account_number, VirtualAccount.purchase_id, VirtualAccount.valid_until)
        .where(VirtualAccount.account_number.in_({d.account_number for d in claimed})))).all()}
    lines: dict[int, list] = {}
    for line in (await tx.execute(
            select(CouponPurchaseLine.id, CouponPurchaseLine.purchase_id, CouponPurchaseLine.product_code,
                   CouponPurchaseLine.unit_price, CouponPurchaseLine.coupons)
            .where(CouponPurchaseLine.purchase_id.in_(orders)).order_by(CouponPurchaseLine.id))).all():
        lines.setdefault(line.purchase_id, []).append(line)
    buyers = dict((await tx.execute(select(Account.id, Account.email).where(
        Account.id.in_({p.buyer_id for p in orders.values()})))).all())

    order_changes: dict[int, dict] = {}
    entries, lots, refunds, mails, outcomes = [], [], [], [], []
    for deposit in claimed:
        account = accounts[deposit.account_number]
        order = orders[account.purchase_id]
        change = order_changes.setdefault(order.id, {"id": order.id})
        status = change.get("status", order.status)
        balance = balances[order.registration_id]
        if status != "AWAITING_PAYMENT" or deposit.deposited_on > account.valid_until:
            outcome, owed, reason = "refunded", deposit.amount, "使用済み・期限切れ口座への入金の返金"
        elif deposit.amount < order.amount:
            outcome, owed, reason = "short", deposit.amount, "入金額不足のため取消・返金"
            change.update(status="CANCELLED", cancelled_at=now, cancel_reason="入金額不足", deposited_amount=deposit.amount)
            balance["pending"] -= order.coupons
        else:
            outcome = "issued" if deposit.amount == order.amount else "issued_over"
            owed, reason = deposit.amount - order.amount, "入金額超過分の返金"
            change.update(status="ISSUED", paid_at=now, deposited_amount=deposit.amount)
            balance["pending"] -= order.coupons
            for line in lines[order.id]:
                balance["balance"] += line.coupons
                entries.append({"registration_id": order.registration_id, "kind": "PURCHASE", "coupons": line.coupons,
                                "balance_after": balance["balance"], "at": now, "confirmed": True,
                                "actor_id": order.buyer_id, "note": f"注文番号 {order.order_number}",
                                "external_key": f"purchase:{order.id}:line:{line.id}", "purchase_id": order.id})
                lots.append({"registration_id": order.registration_id, "product_code": line.product_code,
                             "membership": order.membership, "unit_price": line.unit_price, "coupons": line.coupons,
                             "coupons_left": line.coupons, "acquired_on": order.ordered_on,
                             "rules_version": order.rules_version, "created_at": now})
            mails.append({"created_at": now, "kind": "coupon.issued",
                          "to_address": order.notify_email or buyers.get(order.buyer_id) or "",
                          "subject": "【貿易関係証明発給システム】クーポン発行のお知らせ",
                          "body": f"注文番号 {order.order_number} のご入金を確認し、クーポン {order.coupons} 枚を発行しました。\n",
                          "status": "PENDING", "attempts": 0, "next_attempt_at": now, "account_id": order.buyer_id})
        if owed > 0:
            due = fees.refund_after_costs(policy, today, owed)
            refunds.append({"registration_id": order.registration_id, "amount": due, "created_at": now,
                            "reason": f"{reason} (注文番号 {order.order_number})", "external_key": f"deposit:{deposit.id}"})
            change["refund_due"] = (change.get("refund_due", order.refund_due) or 0) + due
        outcomes.append({"id": deposit.id, "outcome": outcome, "purchase_id": order.id})
        counts[outcome] = counts.get(outcome, 0) + 1

    if entries:
        entry_ids = await ledger.allocate_ids(tx, CouponEntry, len(entries))
        lot_ids = await ledger.allocate_ids(tx, CouponLot, len(lots))
        await tx.execute(insert(CouponEntry.__table__), [{**row, "id": i} for row, i in zip(entries, entry_ids)])
        await tx.execute(insert(CouponLot.__table__), [{**row, "id": i} for row, i in zip(lots, lot_ids)])
        await tx.execute(insert(CouponEntryLot.__table__), [
            {"entry_id": e, "lot_id": lot, "coupons": row["coupons"]} for e, lot, row in zip(entry_ids, lot_ids, entries)])
    # Core executemany updates (one statement each, many parameter sets)
    accounts_table, purchases_table, deposits_table = CouponAccount.__table__, CouponPurchase.__table__, BankDeposit.__table__
    await tx.execute(
        accounts_table.update().where(accounts_table.c.registration_id == bindparam("rid"))
        .values(balance=bindparam("balance"), pending=bindparam("pending"), updated_at=now),
        list(balances.values()))
    changed = [c for c in order_changes.values() if len(c) > 1]
    for columns in {tuple(sorted(c)) for c in changed}:  # one UPDATE per set of changed columns
        rows = [{("pid" if k == "id" else k): v for k, v in c.items()} for c in changed if tuple(sorted(c)) == columns]
        await tx.execute(
            purchases_table.update().where(purchases_table.c.id == bindparam("pid"))
            .values({k: bindparam(k) for k in columns if k != "id"}), rows)
    if refunds:
        await tx.execute(insert(Refund.__table__), refunds)
    if mails:
        await tx.execute(insert(OutboxMail.__table__), mails)
    await tx.execute(
        deposits_table.update().where(deposits_table.c.id == bindparam("did"))
        .values(outcome=bindparam("outcome"), purchase_id=bindparam("order")),
        [{"did": o["id"], "outcome": o["outcome"], "order": o["purchase_id"]} for o in outcomes])
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
            raise UserFailure("NOT_FOUND", ["input", "purchaseId"])
        await locks.registration(tx, owner.registration_id)
        await apply_deposits(tx, ctx.services, await _unprocessed_deposits(tx, purchase_id))
        audit(tx, ctx, who.account, "payment.check", target=f"CouponPurchase:{purchase_id}")
        return await tx.get(CouponPurchase, purchase_id, populate_existing=True)


async def expire_unpaid(services: Services) -> str:
    """Cancel orders whose payment window has passed (job `purchase-expiry`). Each order in
    its own unit, decided again under its registration's lock; a deposit already recorded
    for it is applied first, so money that came in time is never answered by a cancellation."""
    now = services.clock.now()
    async with services.db.read() as session:
        due = (await session.scalars(select(CouponPurchase).where(  # card orders expire with their card session
            CouponPurchase.status == "AWAITING_PAYMENT", CouponPurchase.method == "BANK_TRANSFER",
            CouponPurchase.expires_at < now))).all()
    cancelled = 0
    for candidate in due:
        async with services.db.write() as tx:
            await locks.registration(tx, candidate.registration_id)
            pending = await _unprocessed_deposits(tx, candidate.id)
            if pending:  # apply_deposits locks the order (and its account) in the documented order
                await apply_deposits(tx, services, pending)
                purchase = await tx.get(CouponPurchase, candidate.id, populate_existing=True)
            else:
                [purchase] = await locks.purchases(tx, [candidate.id])
            if purchase.status == "AWAITING_PAYMENT" and purchase.expires_at < now:
                cancelled += await cancel_in_session(tx, purchase, now, "入金期限切れ")
    return f"{cancelled} unpaid order(s) cancelled"


async def reconcile_job(services: Services) -> str:
    counts = await reconcile(services)
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no new deposits"


# --------------------------------------------------------------------------- paid by card
# The COUPON_PURCHASE purpose of a card payment (wired in tradecert/composition.py).

async def card_paid(session, services: Services, payment: CardPayment, now: dt.datetime) -> bool:
    """Issue the order's coupons at once (ledger keys per line, as for bank transfers)."""
    issued = await session.scalar(
        update(CouponPurchase).where(CouponPurchase.id == payment.purchase_id, CouponPurchase.status == "AWAITING_PAYMENT")
        .values(status="ISSUED", paid_at=now, deposited_amount=payment.amount).returning(CouponPurchase.id))
    if issued is None:
        return False
    purchase = await session.get(CouponPurchase, payment.purchase_id)
    lines = (await session.scalars(select(CouponPurchaseLine).where(CouponPurchaseLine.purchase_id == purchase.id)
                                   .order_by(CouponPurchaseLine.id))).all()
    for line in lines:
        await ledger.credit(
            session, registration_id=purchase.registration_id, coupons=line.coupons, kind="PURCHASE",
            key=f"purchase:{purchase.id}:line:{line.id}", now=now, acquired_on=purchase.ordered_on,
            rules_version=purchase.rules_version, product_code=line.product_code, membership=purchase.membership,
            unit_price=line.unit_price, actor_id=purchase.buyer_id, note=f"注文番号 {purchase.order_number}",
            purchase_id=purchase.id)
    await session.execute(update(CouponAccount).where(CouponAccount.registration_id == purchase.registration_id)
                          .values(pending=CouponAccount.pending - purchase.coupons, updated_at=now))
    if purchase.notify_email:
        queue_mail(session, now, "coupon.issued", purchase.notify_email,
                   "【貿易関係証明発給システム】クーポン発行のお知らせ",
                   f"注文番号 {purchase.order_number} のクレジットカード決済 ({payment.amount:,}円, 決済番号 "
                   f"{payment.payment_number}) を確認し、クーポン {purchase.coupons} 枚を発行しました。\n",
                   account_id=purchase.buyer_id)
    return True


async def card_failed(session, services: Services, payment: CardPayment, now: dt.datetime, reason: str) -> None:
    purchase = await session.get(CouponPurchase, payment.purchase_id)
    await cancel_in_session(session, purchase, now, reason)


async def lock_for_card(session, payment_id: int) -> None:
    purchase_id = await session.scalar(select(CardPayment.purchase_id).where(CardPayment.id == payment_id))
    await locks.purchases(session, [purchase_id] if purchase_id else [])
