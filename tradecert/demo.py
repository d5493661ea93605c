"""The demo data set (docs/api.md), loaded idempotently (`tradecert demo seed`).

Running it again changes nothing: every row is found by its natural key first.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.db import Database
from persistence.models import (
    Account,
    Chamber,
    NaccsOffice,
    NaccsTerminal,
    NaccsUserId,
    RegistrationMembership,
    TradeRegistration,
)
from resolvers.core.clock import TOKYO, Clock
from resolvers.identity.names import ECO_ACCOUNT_KINDS, AccountKind, AccountStatus, Membership, RegistrationKind
from resolvers.identity.passwords import hash_password

DEMO_PASSWORD = "demo-pass-2701"
CHAMBER = ("2701", "大阪商工会議所")

# number, kind, membership, name, methods (bank transfer, card), contact e-mail
REGISTRATIONS = [
    ("2701000002", RegistrationKind.APPLICANT, Membership.MEMBER, "加古川自然食品", (True, True), "kakogawa-admin@kakogawa.example"),
    ("2701000003", RegistrationKind.APPLICANT, Membership.NON_MEMBER, "日商テスト商事", (True, True), "admin@nissho-test.example"),
    ("2701000004", RegistrationKind.AGENT, Membership.MEMBER, "大阪フォワーディング", (False, False), "admin@osaka-fwd.example"),
]

# username, kind, registration number (None: none), name, e-mail
ACCOUNTS = [
    ("admin-2701000002", AccountKind.ADMIN, "2701000002", "加古川自然食品 管理者", "kakogawa-admin@kakogawa.example"),
    ("signer-2701000002", AccountKind.SIGNER, "2701000002", "カール・フリードリヒ・ツァイス", "zeiss@kakogawa.example"),
    ("signer2-2701000002", AccountKind.SIGNER, "2701000002", "手塚 治", "tezuka@kakogawa.example"),
    ("admin-2701000003", AccountKind.ADMIN, "2701000003", "日商テスト商事 管理者", "admin@nissho-test.example"),
    ("signer-2701000003", AccountKind.SIGNER, "2701000003", "日商 一郎", "ichiro@nissho-test.example"),
    ("admin-2701000004", AccountKind.ADMIN, "2701000004", "大阪フォワーディング 管理者", "admin@osaka-fwd.example"),
    ("staff-2701", AccountKind.CHAMBER_STAFF, None, "会議所 太郎", "staff@osaka.cci.example"),
    ("naccs-demo", AccountKind.NACCS_OFFICE, None, "―商事株式会社 ―事業所", "hanako@naccs-demo.example"),
    ("naccs-center", AccountKind.NACCS_CENTER, None, "審査 一郎", "review@naccs-center.example"),
]

# The demo NACCS office (docs/api.md): its user ID and logical terminals
NACCS_OFFICE = ("naccs-demo", "―商事株式会社 ―事業所", "通関 花子", "hanako@naccs-demo.example")
NACCS_USER_IDS = [("1ANAC", "A0A", ["通関業"])]
NACCS_TERMINALS = [("11110A", "海上", "netNACCS"), ("11110B", "海上", "netNACCS")]


def naccs_certificates_issued_on(today: dt.date) -> dt.date:
    """The demo terminals' certificates were issued on the first of the month three months
    before the seeding (a certificate is valid a year): about nine months of validity left
    whenever the demo is seeded. The tests seed on 2026-03-01 → issued 2025-12-01."""
    year, month = divmod(today.month - 1 - 3, 12)
    return dt.date(today.year + year, month + 1, 1)


# Demo registrations are valid from this date and have been members/non-members since then
# (a day in the past stays in the past: only the terminal certificates, which expire, move with the clock).
DEMO_SINCE = dt.date(2022, 4, 1)


@dataclass
class SeedReport:
    created: int = 0
    existing: int = 0


async def seed_demo(db: Database, clock: Clock) -> SeedReport:
    report = SeedReport()
    now = clock.now()
    password_hash = await hash_password(DEMO_PASSWORD)
    since = dt.datetime.combine(DEMO_SINCE, dt.time(0, 0), TOKYO)
    async with db.write() as session:
        chamber = await session.scalar(select(Chamber).where(Chamber.code == CHAMBER[0]))
        if chamber is None:
            chamber = Chamber(code=CHAMBER[0], name=CHAMBER[1])
            session.add(chamber)
            await session.flush()
            report.created += 1
        else:
            report.existing += 1
        registrations: dict[str, TradeRegistration] = {}
        for number, registration_kind, membership, name, (bank, card), contact in REGISTRATIONS:
            reg = await session.scalar(select(TradeRegistration).where(TradeRegistration.number == number))
            if reg is None:
                reg = TradeRegistration(
                    number=number, chamber_id=chamber.id, kind=registration_kind, name=name, contact_email=contact,
                    valid_from=DEMO_SINCE, valid_until=None, allows_bank_transfer=bank, allows_card=card,
                    created_at=now,
                )
                session.add(reg)
                await session.flush()
                session.add(RegistrationMembership(registration_id=reg.id, membership=membership, valid_from=since))
                report.created += 1
            else:
                report.existing += 1
            registrations[number] = reg
        for username, kind, reg_number, name, email in ACCOUNTS:
            eco = kind in ECO_ACCOUNT_KINDS
            query = select(Account).where(Account.username == username)
            query = query.where(Account.chamber_id == chamber.id) if eco else query.where(Account.chamber_id.is_(None))
            if await session.scalar(query) is not None:
                report.existing += 1
                continue
            session.add(
                Account(
                    kind=kind, username=username, chamber_id=chamber.id if eco else None,
                    registration_id=registrations[reg_number].id if reg_number else None,
                    name=name, email=email, password_hash=password_hash, status=AccountStatus.ACTIVE,
                    created_at=now, updated_at=now,
                )
            )
            report.created += 1
        await session.flush()
        await _seed_naccs(session, now, naccs_certificates_issued_on(clock.today()), report)
    return report


async def _seed_naccs(session: AsyncSession, now: dt.datetime, issued_on: dt.date, report: SeedReport) -> None:
    username, name, contact, email = NACCS_OFFICE
    account = await session.scalar(select(Account).where(Account.username == username, Account.chamber_id.is_(None)))
    if account is None:  # seeded with the other accounts just before
        raise LookupError(f"demo account {username} is missing")
    if await session.scalar(select(NaccsOffice).where(NaccsOffice.account_id == account.id)) is not None:
        report.existing += 1
        return
    office = NaccsOffice(account_id=account.id, name=name, contact_name=contact, contact_email=email, created_at=now)
    session.add(office)
    await session.flush()
    for user_code, identification, industries in NACCS_USER_IDS:
        session.add(NaccsUserId(office_id=office.id, user_code=user_code, identification_number=identification,
                                industries=json.dumps(industries, ensure_ascii=False), single_sign_on=False, created_at=now))
    for terminal, area, equipment in NACCS_TERMINALS:
        session.add(NaccsTerminal(office_id=office.id, name=terminal, area=area, equipment=equipment,
                                  issued_on=issued_on))
    report.created += 1
