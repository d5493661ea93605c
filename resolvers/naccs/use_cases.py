"""NACCS support system: user-code additions and digital-certificate reissues
on the business calendar of the rules.

* Passwords of new user IDs exist only inside their viewing window — from approval to the
  end of the N-th business day after the start date (limits.yaml) — Fernet-encrypted with
  a key outside the database; the `naccs-password-purge` job destroys them afterwards, so
  a dump taken later holds nothing to decrypt.
* Reissues are processed by the `naccs-reissue` job on the morning of the desired date.
* Notices (新着情報) are written in the same transaction as the event they report.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import string
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import NaccsApplication, NaccsNotice, NaccsOffice, NaccsTerminal, NaccsUserId
from resolvers.adapters.mail import queue_mail
from resolvers.core import validation
from resolvers.core.context import Context, Services
from resolvers.core.counters import next_number
from resolvers.core.errors import ErrorCode, Forbidden, UserFailure, UserFailures
from resolvers.core.messages import Words
from resolvers.core.sealing import fernet
from resolvers.core.transitions import transition
from resolvers.identity.actor import Viewer, audit, authorize, require_viewer
from resolvers.naccs import messages as words
from resolvers.naccs.names import (
    IN_REVIEW_STATES,
    NaccsApplicationKind,
    NaccsApplicationState,
    NoticeCategory,
    ProcessingMethod,
    ReissueReason,
)
from rules import calendar, mail
from rules.limits import limit
from rules.permissions import is_allowed
from rules.policy import PolicySet

NOTICES_SHOWN = 10
_KATAKANA = re.compile(r"^[\u30A1-\u30FA\u30FC\u3000]+$")
_DIGITS = re.compile(r"^[0-9]{10,11}$")


# --------------------------------------------------------------------------- contact


@dataclass
class Contact:
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    department: str
    title: str
    phone: str
    fax: str | None
    email: str
    email_confirmation: str


def _full_width(value: str) -> bool:
    return all(unicodedata.east_asian_width(ch) in ("F", "W") for ch in value)


def check_contact(c: Contact) -> tuple[dict[str, Any], list[UserFailure]]:
    """Field by field, as the seed's form (one error per bad field)."""
    problems: list[UserFailure] = []
    base = ["input", "contact"]

    def need(value: str | None, key: str, label: Words, ok: Callable[[str], object], hint: Words, limit_: int = 40) -> None:
        if value is None or not value.strip():
            problems.append(UserFailure(ErrorCode.REQUIRED, [*base, key], label=label))
        elif len(value.strip()) > limit_ or not ok(value.strip()):
            problems.append(UserFailure(ErrorCode.INVALID, [*base, key], label=words.WITH_HINT.format(label=label, hint=hint)))

    need(c.family_name, "familyName", words.FAMILY_NAME, _full_width, words.FULL_WIDTH)
    need(c.given_name, "givenName", words.GIVEN_NAME, _full_width, words.FULL_WIDTH)
    need(c.family_name_kana, "familyNameKana", words.FAMILY_NAME_KANA, _KATAKANA.match, words.FULL_WIDTH_KATAKANA)
    need(c.given_name_kana, "givenNameKana", words.GIVEN_NAME_KANA, _KATAKANA.match, words.FULL_WIDTH_KATAKANA)
    need(c.department, "department", words.DEPARTMENT, _full_width, words.FULL_WIDTH, 60)
    need(c.title, "title", words.TITLE, _full_width, words.FULL_WIDTH, 60)
    need(c.phone, "phone", words.PHONE, _DIGITS.match, words.DIGITS_NO_HYPHEN)
    if c.fax is not None and c.fax.strip():
        need(c.fax, "fax", words.FAX, _DIGITS.match, words.DIGITS_NO_HYPHEN)
    email = validation.email(c.email, [*base, "email"], words.EMAIL)
    if isinstance(email, UserFailure):
        problems.append(email)
    elif (c.email_confirmation or "").strip().lower() != c.email.strip().lower():
        problems.append(UserFailure(ErrorCode.INVALID, [*base, "emailConfirmation"], label=words.EMAIL_CONFIRMATION_MISMATCH))
    return {k: (v.strip() if isinstance(v, str) else v) for k, v in asdict(c).items() if k != "email_confirmation"}, problems


# --------------------------------------------------------------------------- office and views


async def office_of(ctx: Context, who: Viewer) -> NaccsOffice:
    await authorize(ctx, who, "naccs.apply", {"own_office"})
    async with ctx.services.db.read() as session:
        office = await session.scalar(select(NaccsOffice).where(NaccsOffice.account_id == who.account.id))
    if office is None:
        raise Forbidden()
    return office


def certificate_dates(services: Services, issued_on: dt.date) -> tuple[dt.date, dt.date]:
    """(expiresOn, renewableFrom): valid N months from issue (through the day before the
    same date N months on), renewable from M days before expiry (limits.yaml)."""
    policy = services.rules.current
    months = limit(policy, issued_on, "terminal_certificate_valid_months")
    year, month = divmod(issued_on.month - 1 + months, 12)
    day = min(issued_on.day, [31, 29 if (issued_on.year + year) % 4 == 0 else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month])
    expires = dt.date(issued_on.year + year, month + 1, day) - dt.timedelta(days=1)
    return expires, expires - dt.timedelta(days=limit(policy, issued_on, "terminal_certificate_renewable_days"))


def _notice(session: AsyncSession, office_id: int, now: dt.datetime, category: NoticeCategory, message: str) -> None:
    session.add(NaccsNotice(office_id=office_id, at=now, category=category, message=message))


async def _receipt(session: AsyncSession) -> str:
    return f"{1_200_000 + await next_number(session, 'naccs-receipt')}A"  # like the seed's 1200001A


# --------------------------------------------------------------------------- passwords


def new_password() -> str:
    alphabet = string.ascii_letters + string.digits
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(12))
        if any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
            return value


def password_window_end(services: Services, start_date: dt.date) -> dt.date:
    n = limit(services.rules.current, start_date, "naccs_password_view_business_days")
    return calendar.add_business_days(services.rules.current, start_date, n)


async def purge_passwords(services: Services) -> str:
    """Job `naccs-password-purge`: destroy passwords whose window has closed."""
    today, now = services.clock.today(), services.clock.now()
    async with services.db.write() as session:
        expired = select(NaccsApplication.id).where(NaccsApplication.password_viewable_until < today)
        done = (await session.scalars(
            update(NaccsUserId).where(NaccsUserId.application_id.in_(expired), NaccsUserId.password_encrypted.is_not(None))
            .values(password_encrypted=None, password_destroyed_at=now).returning(NaccsUserId.id))).all()
    return f"{len(done)} password(s) destroyed"


# --------------------------------------------------------------------------- user-code additions


@dataclass
class UserCodeInput:
    category: str
    industries: list[str]
    processing_method: str
    single_sign_on: bool
    identification_count: int | None = None
    statistics_paid: int | None = None
    statistics_free: int | None = None


def _check_user_codes(services: Services, codes: list[UserCodeInput]) -> tuple[list[dict[str, Any]], list[UserFailure]]:
    policy, today = services.rules.current, services.clock.today()
    known = {r.values["industry"]: r.values["free_statistics"] for r in policy.lookup("naccs_industries", today)}
    problems: list[UserFailure] = []
    most = limit(policy, today, "naccs_user_codes_per_application")
    if not codes:
        problems.append(UserFailure(ErrorCode.REQUIRED, ["input", "userCodes"], label=words.USER_CODES))
    if len(codes) > most:
        return [], [UserFailure(ErrorCode.TOO_MANY_ITEMS, ["input", "userCodes"], label=words.USER_CODES, limit=most)]
    clean = []
    for i, code in enumerate(codes):
        base = ["input", "userCodes", str(i)]
        if not code.industries:
            problems.append(UserFailure(ErrorCode.REQUIRED, [*base, "industries"], label=words.INDUSTRIES))
        if len(code.industries) > len(known):  # each industry of the rules at most once
            problems.append(UserFailure(ErrorCode.TOO_MANY_ITEMS, [*base, "industries"], label=words.INDUSTRIES, limit=len(known)))
        for j, industry in enumerate(code.industries[:len(known)]):
            if industry not in known:
                problems.append(UserFailure(ErrorCode.INVALID, [*base, "industries", str(j)], label=words.INDUSTRY_NOT_LISTED))
        if code.processing_method not in tuple(ProcessingMethod):
            problems.append(UserFailure(ErrorCode.INVALID, [*base, "processingMethod"], label=words.PROCESSING_METHOD))
        category = validation.text(code.category, [*base, "category"], 60, words.SYSTEM_CATEGORY)
        if isinstance(category, UserFailure):
            problems.append(category)
        count = code.identification_count if code.identification_count is not None else 1
        if not 1 <= count <= 20:
            problems.append(UserFailure(ErrorCode.INVALID, [*base, "identificationCount"], label=words.IDENTIFICATION_COUNT))
        for key, value in (("statisticsPaid", code.statistics_paid), ("statisticsFree", code.statistics_free)):
            if value is not None and not 0 <= value <= 100:
                problems.append(UserFailure(ErrorCode.INVALID, [*base, key], label=words.STATISTICS))
        if (code.statistics_free or 0) > 0 and not all(known.get(ind, False) for ind in code.industries):
            problems.append(UserFailure(ErrorCode.INVALID, [*base, "statisticsFree"], label=words.FREE_STATISTICS))
        clean.append({"category": code.category, "industries": list(dict.fromkeys(code.industries)),
                      "processingMethod": code.processing_method, "singleSignOn": code.single_sign_on,
                      "identificationCount": count, "statisticsPaid": code.statistics_paid or 0,
                      "statisticsFree": code.statistics_free or 0})
    return clean, problems


def _closed_because(policy: PolicySet, day: dt.date) -> Words:
    """Why ``day`` is closed, for NOT_BUSINESS_DAY: a weekend day, a holiday or the closure's
    name from rules/business_calendar.yaml (a dated closure names itself)."""
    reason = calendar.closed_reason(policy, day)
    return Words(*reason) if reason is not None else Words("休業日", "a closed day")


def _check_date(services: Services, value: dt.date, path: list[str]) -> UserFailure | None:
    """A business day, from the next business day on (NOT_BUSINESS_DAY / DATE_TOO_EARLY)."""
    policy, today = services.rules.current, services.clock.today()
    earliest = calendar.next_business_day(policy, today)
    if not calendar.is_business_day(policy, value):
        return UserFailure(ErrorCode.NOT_BUSINESS_DAY, path, date=value, reason=_closed_because(policy, value),
                           next=max(calendar.next_business_day(policy, value), earliest))
    if value < earliest:
        return UserFailure(ErrorCode.DATE_TOO_EARLY, path, date=value, earliest=earliest)
    return None


async def submit_user_codes(ctx: Context, desired: dt.date, reason: str, contact: Contact,
                            codes: list[UserCodeInput]) -> int:
    who = await require_viewer(ctx)
    office = await office_of(ctx, who)
    contact_values, problems = check_contact(contact)
    clean, code_problems = _check_user_codes(ctx.services, codes)
    problems += code_problems
    checked_reason = validation.text(reason, ["input", "reason"], 1000, words.APPLICATION_REASON)
    if isinstance(checked_reason, UserFailure):
        problems.append(checked_reason)
    date_problem = _check_date(ctx.services, desired, ["input", "desiredStartDate"])
    if date_problem:
        problems.append(date_problem)
    if problems:
        raise UserFailures(problems)
    assert isinstance(checked_reason, str)  # a failure was raised above
    return await _create(ctx, who, office, NaccsApplicationKind.USER_CODE_ADDITION, desired, checked_reason, contact_values,
                         {"userCodes": clean})


_NOTICE_CATEGORY = {NaccsApplicationKind.USER_CODE_ADDITION: NoticeCategory.APPLICATION,
                    NaccsApplicationKind.CERTIFICATE_REISSUE: NoticeCategory.CERTIFICATE}


async def _create(ctx: Context, who: Viewer, office: NaccsOffice, kind: NaccsApplicationKind, desired: dt.date, reason: str,
                  contact: dict[str, Any], details: dict[str, Any]) -> int:
    now = ctx.clock.now()
    async with ctx.services.db.write() as session:
        app = NaccsApplication(
            office_id=office.id, kind=kind, state=NaccsApplicationState.SUBMITTED, receipt_number=await _receipt(session),
            desired_date=desired, reason=reason, contact=json.dumps(contact, ensure_ascii=False),
            details=json.dumps(details, ensure_ascii=False), created_by_id=who.account.id, submitted_at=now, updated_at=now)
        session.add(app)
        await session.flush()
        what = words.KIND_NAMES[kind]
        received = mail.render(ctx.services.rules.current, ctx.clock.today(), f"naccs.{kind.lower()}.received", {
            "office": office.name, "family_name": contact["family_name"], "what": what,
            "receipt_number": app.receipt_number, "desired": f"{desired:{words.DATE}}"})
        for address in dict.fromkeys([contact["email"], office.contact_email]):
            queue_mail(session, now, f"naccs.{kind.lower()}.received", address, received.subject, received.body,
                       account_id=who.account.id)
        _notice(session, office.id, now, _NOTICE_CATEGORY[kind],
                words.NOTICE_RECEIVED.format(what=what, receipt_number=app.receipt_number))
        audit(session, ctx, who.account, f"naccs.{kind.lower()}.submit", target=f"NaccsApplication:{app.id}")
    return app.id


async def _owned(session: AsyncSession, office: NaccsOffice, app_id: int) -> NaccsApplication:
    """The office's application, read inside the caller's write unit (one transaction per use case)."""
    app = await session.get(NaccsApplication, app_id)
    if app is None or app.office_id != office.id:
        raise UserFailure(ErrorCode.NOT_FOUND, ["input", "applicationId"])
    return app


async def update_application(ctx: Context, app_id: int, desired: dt.date | None, reason: str | None,
                             contact: Contact | None, codes: list[UserCodeInput] | None) -> int:
    """The office answers a clarification request: corrected content, back to SUBMITTED."""
    who = await require_viewer(ctx)
    office = await office_of(ctx, who)
    now = ctx.clock.now()
    async with ctx.services.db.write() as session:
        app = await _owned(session, office, app_id)
        values = _corrections(ctx, app, desired, reason, contact, codes)
        await transition(session, NaccsApplication, app_id, (NaccsApplicationState.CLARIFICATION_REQUESTED,),
                         {"state": NaccsApplicationState.SUBMITTED, "updated_at": now, **values},
                         state_names=words.STATE_NAMES)
        _notice(session, office.id, now, NoticeCategory.APPLICATION, words.NOTICE_UPDATED.format(receipt_number=app.receipt_number))
        audit(session, ctx, who.account, "naccs.application.update", target=f"NaccsApplication:{app_id}")
    return app_id


def _corrections(ctx: Context, app: NaccsApplication, desired: dt.date | None, reason: str | None,
                 contact: Contact | None, codes: list[UserCodeInput] | None) -> dict[str, Any]:
    """The checked columns of an office's correction; every problem at once."""
    values: dict[str, Any] = {}
    problems: list[UserFailure] = []
    if contact is not None:
        contact_values, contact_problems = check_contact(contact)
        problems += contact_problems
        values["contact"] = json.dumps(contact_values, ensure_ascii=False)
    if codes is not None:
        if app.kind != NaccsApplicationKind.USER_CODE_ADDITION:
            problems.append(UserFailure(ErrorCode.INVALID, ["input", "userCodes"], label=words.USER_CODES_NOT_FOR_THIS))
        clean, code_problems = _check_user_codes(ctx.services, codes)
        problems += code_problems
        values["details"] = json.dumps({"userCodes": clean}, ensure_ascii=False)
    if reason is not None:
        checked = validation.text(reason, ["input", "reason"], 1000, words.APPLICATION_REASON)
        problems += [checked] if isinstance(checked, UserFailure) else []
        values["reason"] = checked
    if desired is not None:
        problem = _check_date(ctx.services, desired, ["input", "desiredDate"])
        problems += [problem] if problem else []
        values["desired_date"] = desired
    if problems:
        raise UserFailures(problems)
    return values


async def withdraw(ctx: Context, app_id: int) -> int:
    who = await require_viewer(ctx)
    office = await office_of(ctx, who)
    now = ctx.clock.now()
    async with ctx.services.db.write() as session:
        app = await _owned(session, office, app_id)
        await transition(session, NaccsApplication, app_id, IN_REVIEW_STATES,
                         {"state": NaccsApplicationState.WITHDRAWN, "updated_at": now},
                         state_names=words.STATE_NAMES)
        _notice(session, office.id, now, NoticeCategory.APPLICATION, words.NOTICE_WITHDRAWN.format(receipt_number=app.receipt_number))
        audit(session, ctx, who.account, "naccs.application.withdraw", target=f"NaccsApplication:{app_id}")
    return app_id


# --------------------------------------------------------------------------- the NACCS center


async def _reviewer(ctx: Context) -> Viewer:
    who = await require_viewer(ctx)
    await authorize(ctx, who, "naccs.review", {"none"})
    return who


async def _for_review(session: AsyncSession, app_id: int) -> NaccsApplication:
    """The application under review, read inside the caller's write unit."""
    app = await session.get(NaccsApplication, app_id)
    if app is None:
        raise UserFailure(ErrorCode.NOT_FOUND, ["input", "applicationId"])
    return app


async def request_clarification(ctx: Context, app_id: int, message: str) -> int:
    who = await _reviewer(ctx)
    checked = validation.text(message, ["input", "message"], 2000, words.CLARIFICATION)
    if isinstance(checked, UserFailure):
        raise checked
    now = ctx.clock.now()
    async with ctx.services.db.write() as session:
        app = await _for_review(session, app_id)
        if app.kind != NaccsApplicationKind.USER_CODE_ADDITION:  # a reissue is not reviewed: the job completes it
            raise UserFailure(ErrorCode.INVALID_STATE, ["input", "applicationId"], state=words.NOT_A_USER_CODE_APPLICATION)
        # the contact as of the row this UPDATE changed (an office correction may have come in since the read)
        updated = await transition(session, NaccsApplication, app_id, (NaccsApplicationState.SUBMITTED,),
                                   {"state": NaccsApplicationState.CLARIFICATION_REQUESTED, "clarification": checked,
                                    "updated_at": now}, state_names=words.STATE_NAMES, returning=(NaccsApplication.contact,))
        contact = json.loads(updated.contact)
        asked = mail.render(ctx.services.rules.current, ctx.clock.today(), "naccs.clarification",
                            {"receipt_number": app.receipt_number, "message": checked})
        queue_mail(session, now, "naccs.clarification", contact["email"], asked.subject, asked.body)
        _notice(session, app.office_id, now, NoticeCategory.APPLICATION,
                words.NOTICE_CLARIFICATION.format(receipt_number=app.receipt_number))
        audit(session, ctx, who.account, "naccs.review.clarify", target=f"NaccsApplication:{app_id}")
    return app_id


def _identifications(net: bool, taken: set[str]) -> Iterator[str]:
    """Next free identification numbers: alphabetic for netNACCS (A0A, A0B, …), numeric otherwise."""
    if net:
        candidates = (f"{a}{d}{b}" for a in string.ascii_uppercase for d in string.digits for b in string.ascii_uppercase)
    else:
        candidates = (f"{n:03d}" for n in range(1, 1000))
    for candidate in candidates:
        if candidate not in taken:
            taken.add(candidate)
            yield candidate


async def approve_user_codes(ctx: Context, app_id: int, start_date: dt.date) -> int:
    """Approval with a fixed start date (may differ from the desired one): new user IDs are
    assigned and their passwords generated, viewable until the end of the window."""
    who = await _reviewer(ctx)
    policy = ctx.services.rules.current
    today = ctx.clock.today()
    # from today on: today itself when it is a business day
    earliest = today if calendar.is_business_day(policy, today) else calendar.next_business_day(policy, today)
    if not calendar.is_business_day(policy, start_date):
        raise UserFailure(ErrorCode.NOT_BUSINESS_DAY, ["input", "startDate"], date=start_date,
                          reason=_closed_because(policy, start_date),
                          next=max(calendar.next_business_day(policy, start_date), earliest))
    if start_date < today:
        raise UserFailure(ErrorCode.DATE_TOO_EARLY, ["input", "startDate"], date=start_date, earliest=earliest)
    now = ctx.clock.now()
    viewable_until = password_window_end(ctx.services, start_date)
    sealer = fernet(ctx.services)
    async with ctx.services.db.write() as session:
        app = await _for_review(session, app_id)
        if app.kind != NaccsApplicationKind.USER_CODE_ADDITION:
            raise UserFailure(ErrorCode.INVALID_STATE, ["input", "applicationId"], state=words.NOT_A_USER_CODE_APPLICATION)
        # what is approved is the content of the row this UPDATE changed, not of the read before it
        approved = await transition(session, NaccsApplication, app_id, (NaccsApplicationState.SUBMITTED,),
                                    {"state": NaccsApplicationState.APPROVED, "start_date": start_date, "approved_at": now,
                                     "updated_at": now, "password_viewable_until": viewable_until},
                                    state_names=words.STATE_NAMES, returning=(NaccsApplication.details, NaccsApplication.contact))
        existing = (await session.execute(select(NaccsUserId.user_code, NaccsUserId.identification_number))).all()
        codes_taken = {c for c, _ in existing}
        for code in json.loads(approved.details)["userCodes"]:
            user_code = await _new_user_code(session, codes_taken)
            taken: set[str] = set()
            net = code["processingMethod"] == ProcessingMethod.NET_NACCS
            numbers = _identifications(net, taken)
            groups = ([code["industries"]] * code["identificationCount"] if code["singleSignOn"]
                      else [[industry] for industry in code["industries"]])
            for industries in groups:
                session.add(NaccsUserId(
                    office_id=app.office_id, user_code=user_code, identification_number=next(numbers),
                    industries=json.dumps(industries, ensure_ascii=False), single_sign_on=code["singleSignOn"],
                    application_id=app.id, password_encrypted=sealer.encrypt(new_password().encode()).decode(),
                    created_at=now))
        contact = json.loads(approved.contact)
        approved_mail = mail.render(ctx.services.rules.current, ctx.clock.today(), "naccs.approved", {
            "receipt_number": app.receipt_number, "start_date": f"{start_date:{words.DATE}}",
            "viewable_until": f"{viewable_until:{words.DATE}}"})
        queue_mail(session, now, "naccs.approved", contact["email"], approved_mail.subject, approved_mail.body)
        _notice(session, app.office_id, now, NoticeCategory.SYSTEM_SETTINGS,
                words.NOTICE_APPROVED.format(receipt_number=app.receipt_number, start_date=f"{start_date:%Y-%m-%d}"))
        audit(session, ctx, who.account, "naccs.review.approve", target=f"NaccsApplication:{app_id}")
    return app_id


async def _new_user_code(session: AsyncSession, taken: set[str]) -> str:
    """A new 5-character user code: a digit and four letters (like 1ANAC), never used before."""
    while True:
        n = await next_number(session, "naccs-user-code")
        letters = ""
        for _ in range(4):
            n, r = divmod(n, 26)
            letters = string.ascii_uppercase[r] + letters
        code = f"2{letters}"
        if code not in taken:
            taken.add(code)
            return code


# --------------------------------------------------------------------------- reissues


async def submit_reissue(ctx: Context, contact: Contact, desired: dt.date, reason: str,
                         terminal_names: list[str]) -> int:
    who = await require_viewer(ctx)
    office = await office_of(ctx, who)
    contact_values, problems = check_contact(contact)
    if reason not in tuple(ReissueReason):
        problems.append(UserFailure(ErrorCode.INVALID, ["input", "reason"], label=words.REISSUE_REASON))
    date_problem = _check_date(ctx.services, desired, ["input", "desiredDate"])
    if date_problem:
        problems.append(date_problem)
    async with ctx.services.db.read() as session:
        mine = set((await session.scalars(select(NaccsTerminal.name).where(NaccsTerminal.office_id == office.id))).all())
    most = limit(ctx.services.rules.current, ctx.services.clock.today(), "naccs_terminals_per_reissue")
    if not terminal_names:
        problems.append(UserFailure(ErrorCode.REQUIRED, ["input", "terminalNames"], label=words.TERMINALS))
    elif len(terminal_names) > most:
        problems.append(UserFailure(ErrorCode.TOO_MANY_ITEMS, ["input", "terminalNames"], label=words.TERMINALS, limit=most))
    else:
        for i, name in enumerate(terminal_names):
            if name not in mine:
                problems.append(UserFailure(ErrorCode.NOT_FOUND, ["input", "terminalNames", str(i)]))
            elif name in terminal_names[:i]:  # each terminal once: a reissue renews it once
                problems.append(UserFailure(ErrorCode.INVALID, ["input", "terminalNames", str(i)], label=words.TERMINAL_TWICE))
    if problems:
        raise UserFailures(problems)
    return await _create(ctx, who, office, NaccsApplicationKind.CERTIFICATE_REISSUE, desired,
                         words.REISSUE_REASONS[ReissueReason(reason)], contact_values,
                         {"terminals": list(dict.fromkeys(terminal_names)), "reasonCode": reason})


async def process_reissues(services: Services) -> str:
    """Job `naccs-reissue` (mornings): reissues due today renew exactly their terminals."""
    today, now = services.clock.today(), services.clock.now()
    async with services.db.read() as session:
        due = (await session.scalars(select(NaccsApplication).where(
            NaccsApplication.kind == NaccsApplicationKind.CERTIFICATE_REISSUE,
            NaccsApplication.state == NaccsApplicationState.SUBMITTED,
            NaccsApplication.desired_date <= today))).all()
    done = 0
    for app in due:
        async with services.db.write() as session:
            completed = await session.scalar(
                update(NaccsApplication).where(NaccsApplication.id == app.id,
                                               NaccsApplication.state == NaccsApplicationState.SUBMITTED)
                .values(state=NaccsApplicationState.COMPLETED, completed_at=now, start_date=today, updated_at=now).returning(NaccsApplication.id))
            if completed is None:
                continue
            names = json.loads(app.details)["terminals"]
            await session.execute(update(NaccsTerminal).where(NaccsTerminal.office_id == app.office_id,
                                                              NaccsTerminal.name.in_(names)).values(issued_on=today))
            contact = json.loads(app.contact)
            reissued = mail.render(services.rules.current, today, "naccs.reissued",
                                   {"receipt_number": app.receipt_number, "terminals": ", ".join(names)})
            queue_mail(session, now, "naccs.reissued", contact["email"], reissued.subject, reissued.body)
            _notice(session, app.office_id, now, NoticeCategory.CERTIFICATE,
                    words.NOTICE_REISSUED.format(terminals=", ".join(names), receipt_number=app.receipt_number))
            done += 1
    return f"{done} reissue(s) processed"


async def visible_application(ctx: Context, app_id: int) -> NaccsApplication | None:
    who = await require_viewer(ctx)
    async with ctx.services.db.read() as session:
        app = await session.get(NaccsApplication, app_id)
        office = await session.get(NaccsOffice, app.office_id) if app else None
    if app is None:
        return None
    relation = "own_office" if office is not None and office.account_id == who.account.id else "none"
    return app if is_allowed(ctx.services.rules.current, ctx.clock.today(), who.actor, "naccs.view", {relation}) else None
