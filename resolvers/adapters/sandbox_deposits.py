"""The sandbox bank's deposit notice for a demo transfer (`tradecert bank sandbox-deposit`).

A real bank reports the buyer's transfer in its own statement; the sandbox bank has no
buyer, so this writes the 振込入金通知 (Zengin 01) the bank would send for one order:
its one-time account, the amount asked (or another, to try a short or an excess payment),
booked today (Tokyo), and the remitter (振込依頼人名) as a bank shows it — half-width
kana, capital letters and digits (the Zengin character set), small kana made large.
`tradecert bank import` then reads it like any bank's file. Never in production: its
deposits are money nobody sent.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass

from sqlalchemy import func, select

from persistence.models import BankDeposit, CouponPurchase, TradeRegistration, VirtualAccount
from resolvers.adapters.bank_files import write_zengin
from resolvers.core.context import Services

REMITTER_BYTES = 48  # 振込依頼人名: 48 half-width characters
_ASCII = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ ().-/,")
_SMALL = str.maketrans("ァィゥェォッャュョヮヵヶ", "アイウエオツヤユヨワカケ")
# the legal form as banks abbreviate it: ｶ)ﾆﾂｼﾖｳ before the name, ﾆﾂｼﾖｳ(ｶ after it
_LEGAL_FORMS = {"株式会社": "ｶ", "(株)": "ｶ", "有限会社": "ﾕ", "(有)": "ﾕ", "合同会社": "ﾄﾞ", "(同)": "ﾄﾞ"}


def _half_width_kana() -> dict[str, str]:
    """Full-width katakana → the half-width form a bank prints (ガ → ｶﾞ), from Unicode itself."""
    table: dict[str, str] = {}
    for code in range(0xFF66, 0xFF9E):  # ｦ … ﾝ
        half = chr(code)
        table.setdefault(unicodedata.normalize("NFKC", half), half)
        for mark in ("ﾞ", "ﾟ"):
            composed = unicodedata.normalize("NFKC", half + mark)
            if len(composed) == 1:
                table.setdefault(composed, half + mark)
    return table


_KANA = _half_width_kana()


class SandboxDepositRefused(ValueError):
    """The deposit cannot be written; the message is one line for the operator."""


def bank_characters(text: str) -> tuple[str, bool]:
    """``text`` as a bank prints a remitter name, and whether nothing was lost (a kanji has
    no reading without a dictionary: it is left out)."""
    text = unicodedata.normalize("NFKC", text).strip()
    for form, short in _LEGAL_FORMS.items():
        if text.startswith(form):
            text = f"{short}){text.removeprefix(form).lstrip()}"
        elif text.endswith(form):
            text = f"{text.removesuffix(form).rstrip()}({short}"
    shown, whole = [], True
    for ch in text.upper().translate(_SMALL):
        if "\u3041" <= ch <= "\u3096":  # hiragana → katakana
            ch = chr(ord(ch) + 0x60).translate(_SMALL)
        if ch in _ASCII:
            shown.append(ch)
        elif ch in ("ー", "−", "‐"):
            shown.append("-")
        elif ch in _KANA:
            shown.append(_KANA[ch])
        elif "\uff66" <= ch <= "\uff9f":
            shown.append(ch)
        else:
            whole = False
    return " ".join("".join(shown).split()), whole


def remitter_of(registration: TradeRegistration) -> str:
    """The registration number, then its name when a bank can print all of it (the number
    alone for a name in kanji: we keep no reading of it)."""
    name, whole = bank_characters(registration.name)
    return f"{registration.number} {name}"[:REMITTER_BYTES] if whole and name else registration.number


@dataclass(frozen=True)
class SandboxDeposit:
    order_number: str
    order_status: str
    account_number: str
    amount: int
    amount_due: int
    remitter: str
    booked_on: dt.date
    data: bytes  # the Zengin 振込入金通知 file


async def sandbox_deposit(services: Services, order_number: str, amount: int | None = None,
                          remitter: str | None = None, booked_on: dt.date | None = None) -> SandboxDeposit:
    """The file the sandbox bank sends for a transfer of ``amount`` (default: the amount
    due) to the order's one-time account, booked on ``booked_on`` (default: today, Tokyo);
    its 照会番号 follows the deposits recorded for that account, so a second transfer is a
    new deposit, never a repeat."""
    if services.settings.environment == "production":
        raise SandboxDepositRefused("production refuses sandbox deposits: its deposits are money nobody sent")
    async with services.db.read() as session:
        found = (await session.execute(
            select(CouponPurchase, VirtualAccount, TradeRegistration)
            .join(TradeRegistration, TradeRegistration.id == CouponPurchase.registration_id)
            .outerjoin(VirtualAccount, VirtualAccount.purchase_id == CouponPurchase.id)
            .where(CouponPurchase.order_number == order_number))).first()
        if found is None:
            raise SandboxDepositRefused(f"no coupon order {order_number!r}")
        purchase, account, registration = found
        if account is None:
            raise SandboxDepositRefused(f"order {order_number} is paid by {purchase.method}, not by bank transfer")
        recorded = await session.scalar(select(func.count()).select_from(BankDeposit)
                                        .where(BankDeposit.account_number == account.account_number)) or 0
    if amount is not None and not 1 <= amount <= 9_999_999_999:  # 金額 N(10)
        raise SandboxDepositRefused(f"--amount {amount}: a transfer is 1 to 9,999,999,999 yen")
    if remitter is None:
        name = remitter_of(registration)
    else:
        name, whole = bank_characters(remitter)
        if not whole or not name or len(name) > REMITTER_BYTES:
            raise SandboxDepositRefused(f"--payer {remitter!r}: a bank prints up to {REMITTER_BYTES} half-width kana, "
                                        "capital letters, digits and ().-/, (no kanji)")
    day = booked_on or services.clock.today()
    paid = purchase.amount if amount is None else amount
    data = write_zengin({account.account_number: [(recorded + 1, paid, day, name)]}, day,
                        bank_code=account.bank_code, branch_code=account.branch_code)
    return SandboxDeposit(purchase.order_number, purchase.status, account.account_number, paid, purchase.amount, name,
                          day, data)
