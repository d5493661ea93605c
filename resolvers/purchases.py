"""Coupon purchases by bank transfer (SPEC A6; eco-coupon-purchase-2022) and by card
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
from dataclasses import dataclass

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from persistence.models import (
    Account, BankDeposit, CardPayment, CouponAccount, CouponEntry, CouponEntryLot, CouponLot, CouponPurchase, CouponPurchaseLine,
    OutboxMail, Refund, TradeRegistration, VirtualAccount,
)
from resolvers import ledger, payments, validation
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
                expires_at=expires_at, notify_email=email, idempotency_key=idempotency_key,
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
            if card is not None:
                card.purchase_id = purchase.id
                await payments.number_payment(session, card, today, registration.number)
                session.add(card)
            else:
                account = await bank_of(ctx.services).open_virtual_account(session, purchase.id, today + dt.timedelta(days=valid_days))
                queue_mail(session, now, "coupon.order", email, "【貿易関係証明発給システム】クーポン購入のお知らせ（お振込のご案内）",
                           _order_mail(purchase, registration, account, priced), account_id=who.account.id)
            audit(session, ctx, who.account, "coupon.purchase", target=f"CouponPurchase:{purchase.id}",
                  detail=f"{purchase.order_number} {coupons} coupons {amount} yen")
    except BaseException as exc:
        if cancel_card is not None:
            await cancel_card()
        if not isinstance(exc, IntegrityError):
            raise
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
        if not await cancel_in_session(session, purchase, now, "購入者による取消"):
            raise UserFailure("INVALID_STATE", ["input", "purchaseId"])
        card = await session.scalar(select(CardPayment).where(CardPayment.purchase_id == purchase.id,
                                                              CardPayment.status == "OPEN"))
        if card is not None:  # the order is already cancelled: only the payment row closes here
            await session.execute(update(CardPayment).where(CardPayment.id == card.id, CardPayment.status == "OPEN")
                                  .values(status="CANCELLED", closed_at=now))
        audit(session, ctx, who.account, "coupon.purchase.cancel", target=f"CouponPurchase:{purchase.id}")
    if card is not None:
        await payments.gateway_of(ctx.services).cancel_session(ctx.services, card.gateway_session)
    return await get_purchase(ctx, purchase_id)


async def cancel_in_session(session, purchase: CouponPurchase, now: dt.datetime, reason: str) -> bool:
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
    rows = [{"deposit_key": deposit_key(d), "account_number": d.account_number, "amount": d.amount,
             "deposited_on": d.deposited_on, "payer_name": d.payer_name, "recorded_at": now} for d in deposits]
    dialect_insert = sqlite.insert if services.db.is_sqlite else postgresql.insert
    async with services.db.write() as session:  # one executemany; a deposit seen before is skipped
        await session.execute(dialect_insert(BankDeposit).on_conflict_do_nothing(index_elements=["deposit_key"]), rows)
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


CHUNK = 1000  # deposits per reconciliation transaction


async def reconcile(services: Services, account_number: str | None = None, progress=None) -> dict[str, int]:
    """Apply every unprocessed deposit (or those of one account) once, in chunks; returns
    counts by outcome. ``progress(done, total)`` is called after each chunk."""
    query = select(BankDeposit.id).where(BankDeposit.processed_at.is_(None)).order_by(BankDeposit.id)
    if account_number is not None:
        query = query.where(BankDeposit.account_number == account_number)
    async with services.db.read() as session:
        ids = (await session.scalars(query)).all()
    counts: dict[str, int] = {}
    for start in range(0, len(ids), CHUNK):
        for outcome, n in (await _reconcile_chunk(services, ids[start:start + CHUNK])).items():
            counts[outcome] = counts.get(outcome, 0) + n
        if progress is not None:
            progress(min(start + CHUNK, len(ids)), len(ids))
    return counts


async def _reconcile_chunk(services: Services, deposit_ids: list[int]) -> dict[str, int]:
    """One transaction for a chunk of deposits, with a fixed number of statements:

    claim the deposits (a conditional UPDATE: a deposit another reconciler claimed is
    skipped), lock and load their accounts, orders, lines and coupon balances, decide
    each deposit in order (exact → issue; more → issue and owe back the excess less
    costs; less → cancel and owe back the deposit less costs; used or expired account →
    owe back), then write with bulk statements. Ledger keys stay per order line, so a
    replay can never issue twice. ``with_for_update`` locks rows on PostgreSQL; on SQLite
    SQLAlchemy drops it, and the write unit's BEGIN IMMEDIATE holds the database lock.
    """
    policy = services.rules.current
    now, today = services.clock.now(), services.clock.today()
    counts: dict[str, int] = {}
    async with services.db.write() as session:
        claimed = (await session.execute(
            update(BankDeposit).where(BankDeposit.id.in_(deposit_ids), BankDeposit.processed_at.is_(None))
            .values(processed_at=now)
            .returning(BankDeposit.id, BankDeposit.account_number, BankDeposit.amount, BankDeposit.deposited_on)
        )).all()
        if not claimed:
            return counts
        claimed.sort(key=lambda d: d.id)
        # plain rows, not ORM objects: a chunk loads thousands of them
        accounts = {a.account_number: a for a in (await session.execute(
            select(VirtualAccount.account_number, VirtualAccount.purchase_id, VirtualAccount.valid_until)
            .where(VirtualAccount.account_number.in_({d.account_number for d in claimed})))).all()}
        orders = {p.id: p for p in (await session.execute(
            select(CouponPurchase.id, CouponPurchase.registration_id, CouponPurchase.buyer_id, CouponPurchase.status,
                   CouponPurchase.amount, CouponPurchase.coupons, CouponPurchase.order_number, CouponPurchase.membership,
                   CouponPurchase.ordered_on, CouponPurchase.rules_version, CouponPurchase.refund_due,
                   CouponPurchase.notify_email)
            .where(CouponPurchase.id.in_({a.purchase_id for a in accounts.values()}))
            .order_by(CouponPurchase.id).with_for_update())).all()}
        lines: dict[int, list] = {}
        for line in (await session.execute(
                select(CouponPurchaseLine.id, CouponPurchaseLine.purchase_id, CouponPurchaseLine.product_code,
                       CouponPurchaseLine.unit_price, CouponPurchaseLine.coupons)
                .where(CouponPurchaseLine.purchase_id.in_(orders)).order_by(CouponPurchaseLine.id))).all():
            lines.setdefault(line.purchase_id, []).append(line)
        balances = {a.registration_id: {"rid": a.registration_id, "balance": a.balance, "pending": a.pending}
                    for a in (await session.execute(
                        select(CouponAccount.registration_id, CouponAccount.balance, CouponAccount.pending)
                        .where(CouponAccount.registration_id.in_({p.registration_id for p in orders.values()}))
                        .order_by(CouponAccount.registration_id).with_for_update())).all()}
        buyers = dict((await session.execute(select(Account.id, Account.email).where(
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
            entry_ids = await ledger.allocate_ids(session, CouponEntry, len(entries))
            lot_ids = await ledger.allocate_ids(session, CouponLot, len(lots))
            await session.execute(insert(CouponEntry.__table__), [{**row, "id": i} for row, i in zip(entries, entry_ids)])
            await session.execute(insert(CouponLot.__table__), [{**row, "id": i} for row, i in zip(lots, lot_ids)])
            await session.execute(insert(CouponEntryLot.__table__), [
                {"entry_id": e, "lot_id": lot, "coupons": row["coupons"]} for e, lot, row in zip(entry_ids, lot_ids, entries)])
        # Core executemany updates (one statement each, many parameter sets)
        accounts_table, purchases_table, deposits_table = CouponAccount.__table__, CouponPurchase.__table__, BankDeposit.__table__
        await session.execute(
            accounts_table.update().where(accounts_table.c.registration_id == bindparam("rid"))
            .values(balance=bindparam("balance"), pending=bindparam("pending"), updated_at=now),
            list(balances.values()))
        changed = [c for c in order_changes.values() if len(c) > 1]
        for columns in {tuple(sorted(c)) for c in changed}:  # one UPDATE per set of changed columns
            rows = [{("pid" if k == "id" else k): v for k, v in c.items()} for c in changed if tuple(sorted(c)) == columns]
            await session.execute(
                purchases_table.update().where(purchases_table.c.id == bindparam("pid"))
                .values({k: bindparam(k) for k in columns if k != "id"}), rows)
        if refunds:
            await session.execute(insert(Refund.__table__), refunds)
        if mails:
            await session.execute(insert(OutboxMail.__table__), mails)
        await session.execute(
            deposits_table.update().where(deposits_table.c.id == bindparam("did"))
            .values(outcome=bindparam("outcome"), purchase_id=bindparam("order")),
            [{"did": o["id"], "outcome": o["outcome"], "order": o["purchase_id"]} for o in outcomes])
    return counts


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
        due = (await session.scalars(select(CouponPurchase).where(  # card orders expire with their card session
            CouponPurchase.status == "AWAITING_PAYMENT", CouponPurchase.method == "BANK_TRANSFER",
            CouponPurchase.expires_at < now))).all()
    cancelled = 0
    for purchase in due:
        async with services.db.write() as session:
            cancelled += await cancel_in_session(session, purchase, now, "入金期限切れ")
    return f"{cancelled} unpaid order(s) cancelled"


async def reconcile_job(services: Services) -> str:
    counts = await reconcile(services)
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no new deposits"
