"""The bank, behind an interface. Production plugs in the real bank's virtual-account
service; this repository ships only ``SandboxBank``, which behaves like one: it hands out
one-time 7-digit accounts (bank 0310, like the seed's), never reusing a number. Deposits
come back as bank statements (`tradecert bank import`, Zengin or CSV) or by hand
(`recordBankDeposits`). No real bank is ever contacted from here.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import VirtualAccount


class Bank(Protocol):
    async def open_virtual_account(self, session: AsyncSession, purchase_id: int, valid_until: dt.date) -> VirtualAccount:
        """A new account number for one order, valid until the given date, never reused."""


class SandboxBank:
    """One-time virtual accounts like the seed's (ジ-エム-アオジ ネット (0310), 支店 アジサイ (502))."""

    bank_code = "0310"
    bank_name = "サンドボックス銀行"
    branch_code = "502"
    branch_name = "アジサイ"
    holder = "ｼﾖｳｺｳｶｲｷﾞｼﾖ ｸ-ﾎﾟﾝ"

    async def open_virtual_account(self, session: AsyncSession, purchase_id: int, valid_until: dt.date) -> VirtualAccount:
        for _ in range(20):
            number = f"{secrets.randbelow(10_000_000):07d}"
            taken = await session.scalar(select(VirtualAccount.id).where(VirtualAccount.account_number == number))
            if taken is None:  # the unique constraint still decides under a race
                account = VirtualAccount(
                    purchase_id=purchase_id, bank_code=self.bank_code, bank_name=self.bank_name,
                    branch_code=self.branch_code, branch_name=self.branch_name, account_number=number,
                    holder=self.holder, valid_until=valid_until,
                )
                session.add(account)
                await session.flush()
                return account
        raise RuntimeError("no free virtual account number")


# --------------------------------------------------------------------------- deposits, as a bank reports them

MAX_DEPOSIT = 2_147_483_647  # the amount columns are 32-bit integers (a Zengin 金額 is N(10): refused above this)
MAX_DEPOSIT_ID = 64  # the bank's id of a deposit; a Zengin id built from the notice is 32 characters
MAX_PAYER_NAME = 120  # the column; a Zengin 振込依頼人名 is 48 half-width characters


@dataclass(frozen=True)
class DepositInput:
    account_number: str
    amount: int
    deposited_on: dt.date
    payer_name: str | None = None
    deposit_id: str | None = None  # the bank's id (照会番号 …): the same id again is a replay, never a second deposit
    line: int | None = None  # the statement file's line (record) it was read from
