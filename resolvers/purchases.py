"""Coupon purchases by bank transfer (SPEC A6; eco-coupon-purchase-2022).

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
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from persistence.models import (
    Account, BankDeposit, CouponAccount, CouponPurchase, CouponPurchaseLine, Refund, TradeRegistration, VirtualAccount,
)
from resolvers import ledger, validation
from resolvers.bank import Bank, SandboxBank
from resolvers.context import Context, Services
from resolvers.errors import Forbidden, UserFailure, UserFailures
from resolvers.identity import audit, authorize, membership_now, require_viewer
from resolvers.mail import queue_mail
from rules import fees
from rules.limits import limit

MAX_QUANTITY = 1000  # per line: a typo guard (an absurd order), not policy
MAX_DEPOSIT = 10_000_000_000  # Zengin amounts are N(10)


def bank_of(services: Services) -> Bank:
    return getattr(services, "bank", None) or SandboxBank()


@dataclass(frozen=True)
class LineInput:
    product_code: str
    quantity: int


# --------------------------------------------------------------------------- start / cancel


async def start_coupon_purchase(ctx: Context, lines: list[LineInput], method: str, notify_email: str | None,
                                idempotency_key: str | None) -> CouponPurchase:
    who = await require_viewer(ctx)
    if who.account.registration_id is None:
        raise Forbidden()
    await authorize(ctx, who, "coupon.purchase", {"own_registration"})
    if idempotency_key:
        if len(idempotency_key) > 128:
            raise UserFailure("INVALID", ["input", "idempotencyKey"], label="idempotencyKey")
        async with ctx.services.db.read() as session:
            earlier = await session.scalar(select(CouponPurchase).where(
                CouponPurchase.buyer_id == who.account.id, CouponPurchase.idempotency_key == idempotency_key))
        if earlier is not None:
            return earlier  # the same request again: the first result, nothing done again
    policy = ctx.services.rules.current
    today, now = ctx.clock.today(), ctx.clock.now()
    async with ctx.services.db.read() as session:
        registration = await session.get(TradeRegistration, who.account.registration_id)
    membership = await membership_now(ctx, registration.id)

    problems: list[UserFailure] = []
    if not lines:
        problems.append(UserFailure("REQUIRED", ["input", "lines"], label="購入内容"))
    priced = []
    seen: set[str] = set()
    for i, line in enumerate(lines):
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
    if method == "CARD":
        problems.append(UserFailure("METHOD_NOT_ALLOWED", ["input", "method"]))  # card purchases: not built yet
    elif method == "BANK_TRANSFER" and not registration.allows_bank_transfer:
        problems.append(UserFailure("METHOD_NOT_ALLOWED", ["input", "method"]))
    email = validation.email(notify_email, ["input", "notifyEmail"]) if notify_email else who.account.email
    if isinstance(email, UserFailure):
        problems.append(email)
    if problems:
        raise UserFailures(problems)

    coupons = sum(line.quantity * product.coupons for line, product in priced)
    amount = sum(line.quantity * product.price for line, product in priced)
    valid_days = limit(policy, today, "bank_transfer_valid_days")
    try:
        async with ctx.services.db.write() as session:
            in_progress = await session.scalar(select(CouponPurchase.id).where(
                CouponPurchase.registration_id == registration.id, CouponPurchase.status == "AWAITING_PAYMENT"))
            if in_progress is not None:
                raise UserFailure("PURCHASE_IN_PROGRESS", ["input"])
            serial = (await session.scalar(select(func.count()).select_from(CouponPurchase)
                                            .where(CouponPurchase.registration_id == registration.id))) + 1
            purchase = CouponPurchase(
                order_number=f"{today:%Y%m%d}{registration.number}{serial:05d}", registration_id=registration.id,
                buyer_id=who.account.id, method=method, membership=membership, status="AWAITING_PAYMENT",
                coupons=coupons, amount=amount, ordered_at=now, ordered_on=today, rules_version=policy.version,
                expires_at=now + dt.timedelta(days=valid_days), notify_email=email, idempotency_key=idempotency_key,
            )
            session.add(purchase)
            await session.flush()
            for line, product in priced:
                session.add(CouponPurchaseLine(
                    purchase_id=purchase.id, product_code=product.code, quantity=line.quantity, unit_price=product.price,
                    coupons=line.quantity * product.coupons, amount=line.quantity * product.price))
            await ledger.ensure_account(session, registration.id, now)
            await session.execute(update(CouponAccount).where(CouponAccount.registration_id == registration.id)
                                  .values(pending=CouponAccount.pending + coupons, updated_at=now))
            account = await bank_of(ctx.services).open_virtual_account(session, purchase.id, today + dt.timedelta(days=valid_days))
            queue_mail(session, now, "coupon.order", email, "【貿易関係証明発給システム】クーポン購入のお知らせ（お振込のご案内）",
                       _order_mail(purchase, registration, account, priced), account_id=who.account.id)
            audit(session, ctx, who.account, "coupon.purchase", target=f"CouponPurchase:{purchase.id}",
                  detail=f"{purchase.order_number} {coupons} coupons {amount} yen")
    except IntegrityError:
        # a concurrent order won the partial unique index (or the same idempotency key)
        if idempotency_key:
            async with ctx.services.db.read() as session:
                earlier = await session.scalar(select(CouponPurchase).where(
                    CouponPurchase.buyer_id == who.account.id, CouponPurchase.idempotency_key == idempotency_key))
            if earlier is not None:
                return earlier
        raise UserFailure("PURCHASE_IN_PROGRESS", ["input"]) from None
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
    """The buyer cancels its own pending order."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "coupon.purchase", {"own_registration"})
    now = ctx.clock.now()
    async with ctx.services.db.write() as session:
        purchase = await session.get(CouponPurchase, purchase_id)
        if purchase is None or purchase.buyer_id != who.account.id:
            raise UserFailure("NOT_FOUND", ["input", "purchaseId"])
        if not await _cancel(session, purchase, now, "購入者による取消"):
            raise UserFailure("INVALID_STATE", ["input", "purchaseId"])
        audit(session, ctx, who.account, "coupon.purchase.cancel", target=f"CouponPurchase:{purchase.id}")
    return await get_purchase(ctx, purchase_id)


async def _cancel(session, purchase: CouponPurchase, now: dt.datetime, reason: str) -> bool:
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


@dataclass(frozen=True)
class DepositInput:
    account_number: str
    amount: int
    deposited_on: dt.date
    payer_name: str | None = None
    deposit_id: str | None = None  # the bank's inquiry number; replays with it change nothing


def deposit_key(d: DepositInput) -> str:
    if d.deposit_id:
        return f"bank:{d.deposit_id}"
    digest = hashlib.sha256(f"{d.account_number}|{d.amount}|{d.deposited_on}|{d.payer_name or ''}".encode()).hexdigest()
    return f"content:{digest[:40]}"


async def store_deposits(services: Services, deposits: list[DepositInput]) -> tuple[list[UserFailure], list[int]]:
    """Check every deposit, then record all of them or none: (problems, purchase ids)."""
    problems: list[UserFailure] = []
    numbers = {d.account_number for d in deposits}
    async with services.db.read() as session:
        known = dict((await session.execute(
            select(VirtualAccount.account_number, VirtualAccount.purchase_id).where(VirtualAccount.account_number.in_(numbers))
        )).all()) if numbers else {}
    for i, d in enumerate(deposits):
        if not (len(d.account_number) == 7 and d.account_number.isdigit()):
            problems.append(UserFailure("INVALID", ["input", "deposits", str(i), "accountNumber"], label="口座番号(7桁)"))
        elif d.account_number not in known:
            problems.append(UserFailure("NOT_FOUND", ["input", "deposits", str(i), "accountNumber"]))
        if not 1 <= d.amount < MAX_DEPOSIT:
            problems.append(UserFailure("INVALID", ["input", "deposits", str(i), "amount"], label="金額"))
        if d.payer_name is not None and len(d.payer_name) > 120:
            problems.append(UserFailure("INVALID", ["input", "deposits", str(i), "payerName"], label="振込依頼人名"))
    if problems:
        return problems, []
    now = services.clock.now()
    async with services.db.write() as session:
        insert = sqlite.insert if services.db.is_sqlite else postgresql.insert
        for d in deposits:
            await session.execute(insert(BankDeposit).values(
                deposit_key=deposit_key(d), account_number=d.account_number, amount=d.amount, deposited_on=d.deposited_on,
                payer_name=d.payer_name, recorded_at=now).on_conflict_do_nothing(index_elements=["deposit_key"]))
    return [], sorted({known[d.account_number] for d in deposits})


async def record_bank_deposits(ctx: Context, deposits: list[DepositInput]) -> list[CouponPurchase]:
    who = await require_viewer(ctx)
    await authorize(ctx, who, "payment.check", {"same_chamber"})
    if not deposits:
        raise UserFailure("REQUIRED", ["input", "deposits"], label="入金")
    problems, purchase_ids = await store_deposits(ctx.services, deposits)
    if problems:
        raise UserFailures(problems)
    async with ctx.services.db.write() as session:
        audit(session, ctx, who.account, "payment.record_deposits", detail=f"{len(deposits)} deposit(s)")
    async with ctx.services.db.read() as session:
        return list((await session.scalars(select(CouponPurchase).where(CouponPurchase.id.in_(purchase_ids)))).all())


# --------------------------------------------------------------------------- reconciliation


async def reconcile(services: Services, account_number: str | None = None, progress=None) -> dict[str, int]:
    """Apply every unprocessed deposit (or those of one account) once; returns counts by
    outcome. ``progress(done, total)`` is called as deposits are applied."""
    query = select(BankDeposit.id).where(BankDeposit.processed_at.is_(None)).order_by(BankDeposit.id)
    if account_number is not None:
        query = query.where(BankDeposit.account_number == account_number)
    async with services.db.read() as session:
        ids = (await session.scalars(query)).all()
    counts: dict[str, int] = {}
    for done, deposit_id in enumerate(ids, start=1):
        outcome = await _apply_deposit(services, deposit_id)
        if outcome:
            counts[outcome] = counts.get(outcome, 0) + 1
        if progress is not None:
            progress(done, len(ids))
    return counts


async def _apply_deposit(services: Services, deposit_id: int) -> str | None:
    policy = services.rules.current
    now, today = services.clock.now(), services.clock.today()
    async with services.db.write() as session:
        claimed = await session.scalar(
            update(BankDeposit).where(BankDeposit.id == deposit_id, BankDeposit.processed_at.is_(None))
            .values(processed_at=now).returning(BankDeposit.id)
        )
        if claimed is None:
            return None  # another reconciler took it
        deposit = await session.get(BankDeposit, deposit_id)
        account = await session.scalar(select(VirtualAccount).where(VirtualAccount.account_number == deposit.account_number))
        purchase = await session.get(CouponPurchase, account.purchase_id)
        usable = purchase.status == "AWAITING_PAYMENT" and deposit.deposited_on <= account.valid_until
        if not usable:  # a used or expired account: owed back, never applied
            outcome = "refunded"
            await _refund(session, policy, today, purchase, deposit, deposit.amount, "使用済み・期限切れ口座への入金の返金", now)
        elif deposit.amount < purchase.amount:
            outcome = "short"
            await _cancel(session, purchase, now, "入金額不足")
            await session.execute(update(CouponPurchase).where(CouponPurchase.id == purchase.id)
                                  .values(deposited_amount=deposit.amount))
            await _refund(session, policy, today, purchase, deposit, deposit.amount, "入金額不足のため取消・返金", now)
        else:
            outcome = "issued" if deposit.amount == purchase.amount else "issued_over"
            await _issue(session, purchase, deposit, now, today)
            if deposit.amount > purchase.amount:
                await _refund(session, policy, today, purchase, deposit, deposit.amount - purchase.amount, "入金額超過分の返金", now)
        await session.execute(update(BankDeposit).where(BankDeposit.id == deposit.id)
                              .values(outcome=outcome, purchase_id=purchase.id))
    return outcome


async def _issue(session, purchase: CouponPurchase, deposit: BankDeposit, now: dt.datetime, today: dt.date) -> None:
    issued = await session.scalar(
        update(CouponPurchase).where(CouponPurchase.id == purchase.id, CouponPurchase.status == "AWAITING_PAYMENT")
        .values(status="ISSUED", paid_at=now, deposited_amount=deposit.amount).returning(CouponPurchase.id)
    )
    if issued is None:  # pragma: no cover - the deposit claim serialises this
        return
    lines = (await session.scalars(select(CouponPurchaseLine).where(CouponPurchaseLine.purchase_id == purchase.id))).all()
    for line in lines:
        await ledger.credit(
            session, registration_id=purchase.registration_id, coupons=line.coupons, kind="PURCHASE",
            key=f"purchase:{purchase.id}:line:{line.id}", now=now, acquired_on=purchase.ordered_on,
            rules_version=purchase.rules_version, product_code=line.product_code, membership=purchase.membership,
            unit_price=line.unit_price, actor_id=purchase.buyer_id, note=f"注文番号 {purchase.order_number}",
        )
    await session.execute(update(CouponAccount).where(CouponAccount.registration_id == purchase.registration_id)
                          .values(pending=CouponAccount.pending - purchase.coupons, updated_at=now))
    buyer = await session.get(Account, purchase.buyer_id)
    queue_mail(session, now, "coupon.issued", purchase.notify_email or buyer.email or "",
               "【貿易関係証明発給システム】クーポン発行のお知らせ",
               f"注文番号 {purchase.order_number} のご入金を確認し、クーポン {purchase.coupons} 枚を発行しました。\n",
               account_id=purchase.buyer_id)


async def _refund(session, policy, today: dt.date, purchase: CouponPurchase, deposit: BankDeposit, gross: int,
                  reason: str, now: dt.datetime) -> None:
    due = fees.refund_after_costs(policy, today, gross)
    session.add(Refund(registration_id=purchase.registration_id, amount=due, reason=f"{reason} (注文番号 {purchase.order_number})",
                       created_at=now, external_key=f"deposit:{deposit.id}"))
    await session.execute(update(CouponPurchase).where(CouponPurchase.id == purchase.id)
                          .values(refund_due=func.coalesce(CouponPurchase.refund_due, 0) + due))


async def check_purchase_payment(ctx: Context, purchase_id: int) -> CouponPurchase:
    """Chamber staff: match this order's deposits now (手動で決済状況を確認する)."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "payment.check", {"same_chamber"})
    async with ctx.services.db.read() as session:
        purchase = await session.get(CouponPurchase, purchase_id)
        registration = await session.get(TradeRegistration, purchase.registration_id) if purchase else None
        account = await session.scalar(select(VirtualAccount).where(VirtualAccount.purchase_id == purchase_id))
    if purchase is None or registration.chamber_id != who.account.chamber_id:
        raise UserFailure("NOT_FOUND", ["input", "purchaseId"])
    if account is not None:
        await reconcile(ctx.services, account.account_number)
    async with ctx.services.db.write() as session:
        audit(session, ctx, who.account, "payment.check", target=f"CouponPurchase:{purchase_id}")
    return await get_purchase(ctx, purchase_id)


async def expire_unpaid(services: Services) -> str:
    """Cancel orders whose payment window has passed (job `purchase-expiry`)."""
    now = services.clock.now()
    async with services.db.read() as session:
        due = (await session.scalars(select(CouponPurchase).where(
            CouponPurchase.status == "AWAITING_PAYMENT", CouponPurchase.expires_at < now))).all()
    cancelled = 0
    for purchase in due:
        async with services.db.write() as session:
            cancelled += await _cancel(session, purchase, now, "入金期限切れ")
    return f"{cancelled} unpaid order(s) cancelled"


async def reconcile_job(services: Services) -> str:
    counts = await reconcile(services)
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no new deposits"
