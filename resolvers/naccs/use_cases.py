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
import os
import re
import secrets
import string
import threading
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import select, update

from persistence.models import NaccsApplication, NaccsNotice, NaccsOffice, NaccsTerminal, NaccsUserId
from resolvers.adapters.mail import queue_mail
from resolvers.core import validation
from resolvers.core.clock import tokyo_date
from resolvers.core.context import Context, Services
from resolvers.core.counters import next_number
from resolvers.core.errors import Forbidden, UserFailure, UserFailures
from resolvers.core.transitions import transition
from resolvers.identity.accounts import Viewer, audit, authorize, require_viewer
from rules import calendar
from rules.limits import limit

REASONS = {"EXPIRED": "有効期限切れ", "TERMINAL_REPLACEMENT": "端末の入替", "OTHER": "その他"}
CATEGORIES = ("利用申込", "システム設定", "利用料金", "証明書発行")
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


def check_contact(c: Contact) -> tuple[dict, list[UserFailure]]:
    """Field by field, as the seed's form (one error per bad field)."""
    problems: list[UserFailure] = []
    base = ["input", "contact"]

    def need(value: str | None, key: str, label: str, ok, hint: str, limit_: int = 40):
        if value is None or not value.strip():
            problems.append(UserFailure("REQUIRED", [*base, key], label=label))
        elif len(value.strip()) > limit_ or not ok(value.strip()):
            problems.append(UserFailure("INVALID", [*base, key], label=f"{label}({hint})"))

    need(c.family_name, "familyName", "氏名(姓)", _full_width, "全角")
    need(c.given_name, "givenName", "氏名(名)", _full_width, "全角")
    need(c.family_name_kana, "familyNameKana", "フリガナ(姓)", _KATAKANA.match, "全角カタカナ")
    need(c.given_name_kana, "givenNameKana", "フリガナ(名)", _KATAKANA.match, "全角カタカナ")
    need(c.department, "department", "部署", _full_width, "全角", 60)
    need(c.title, "title", "役職", _full_width, "全角", 60)
    need(c.phone, "phone", "電話番号", _DIGITS.match, "半角数字、ハイフンなし")
    if c.fax is not None and c.fax.strip():
        need(c.fax, "fax", "FAX番号", _DIGITS.match, "半角数字、ハイフンなし")
    email = validation.email(c.email, [*base, "email"], "E-mail")
    if isinstance(email, UserFailure):
        problems.append(email)
    elif (c.email_confirmation or "").strip().lower() != c.email.strip().lower():
        problems.append(UserFailure("INVALID", [*base, "emailConfirmation"], label="E-mail(確認用と一致しません)"))
    return {k: (v.strip() if isinstance(v, str) else v) for k, v in asdict(c).items() if k != "email_confirmation"}, problems


# --------------------------------------------------------------------------- office and views


async def office_of(ctx: Context, who: Viewer) -> NaccsOffice:
    await authorize(ctx, who, "naccs.apply", {"own_office"})
    async with ctx.services.db.read() as session:
        office = await session.scalar(select(NaccsOffice).where(NaccsOffice.account_id == who.account.id))
    if office is None:
        raise Forbidden()
    return office


async def viewer_office(ctx: Context) -> NaccsOffice | None:
    who = await require_viewer(ctx)
    if who.account.kind != "NACCS_OFFICE":
        return None
    return await office_of(ctx, who)


async def office_details(ctx: Context, office_id: int):
    async with ctx.services.db.read() as session:
        user_ids = (await session.scalars(select(NaccsUserId).where(NaccsUserId.office_id == office_id)
                                          .order_by(NaccsUserId.user_code, NaccsUserId.identification_number))).all()
        terminals = (await session.scalars(select(NaccsTerminal).where(NaccsTerminal.office_id == office_id)
                                           .order_by(NaccsTerminal.name))).all()
        notices = (await session.scalars(select(NaccsNotice).where(NaccsNotice.office_id == office_id)
                                         .order_by(NaccsNotice.id.desc()).limit(NOTICES_SHOWN))).all()
        apps = (await session.scalars(select(NaccsApplication).where(NaccsApplication.office_id == office_id)
                                      .order_by(NaccsApplication.id.desc()))).all()
    return list(user_ids), list(terminals), list(notices), list(apps)


def certificate_dates(services: Services, issued_on: dt.date) -> tuple[dt.date, dt.date]:
    """(expiresOn, renewableFrom): valid N months from issue (through the day before the
    same date N months on), renewable from M days before expiry (limits.yaml)."""
    policy = services.rules.current
    months = limit(policy, issued_on, "terminal_certificate_valid_months")
    year, month = divmod(issued_on.month - 1 + months, 12)
    day = min(issued_on.day, [31, 29 if (issued_on.year + year) % 4 == 0 else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month])
    expires = dt.date(issued_on.year + year, month + 1, day) - dt.timedelta(days=1)
    return expires, expires - dt.timedelta(days=limit(policy, issued_on, "terminal_certificate_renewable_days"))


def _notice(session, office_id: int, now: dt.datetime, category: str, message: str) -> None:
    assert category in CATEGORIES, category
    session.add(NaccsNotice(office_id=office_id, at=now, category=category, message=message))


async def _receipt(session) -> str:
    return f"{1_200_000 + await next_number(session, 'naccs-receipt')}A"  # like the seed's 1200001A


# --------------------------------------------------------------------------- passwords


_key_lock = threading.Lock()


def _fernet(services: Services) -> Fernet:
    path = Path(services.settings.naccs_key_file)
    with _key_lock:
        if not path.exists():
            if services.settings.environment == "production":
                raise RuntimeError(f"NACCS password key {path} is missing (TRADECERT_NACCS_KEY_FILE)")
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(Fernet.generate_key())
            except FileExistsError:
                pass
        return Fernet(path.read_bytes().strip())


def new_password() -> str:
    alphabet = string.ascii_letters + string.digits
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(12))
        if any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
            return value


def password_window_end(services: Services, start_date: dt.date) -> dt.date:
    n = limit(services.rules.current, start_date, "naccs_password_view_business_days")
    return calendar.add_business_days(services.rules.current, start_date, n)


def password_of(services: Services, row: NaccsUserId, app: NaccsApplication) -> str | None:
    """The issued password, only inside its window (and only while it still exists)."""
    if row.password_encrypted is None or app.password_viewable_until is None:
        return None
    if services.clock.today() > app.password_viewable_until or app.approved_at is None:
        return None
    return _fernet(services).decrypt(row.password_encrypted.encode()).decode()


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


def _check_user_codes(services: Services, codes: list[UserCodeInput]) -> tuple[list[dict], list[UserFailure]]:
    policy, today = services.rules.current, services.clock.today()
    known = {r.values["industry"]: r.values["free_statistics"] for r in policy.lookup("naccs_industries", today)}
    problems: list[UserFailure] = []
    most = limit(policy, today, "naccs_user_codes_per_application")
    if not codes:
        problems.append(UserFailure("REQUIRED", ["input", "userCodes"], label="利用者コード"))
    if len(codes) > most:
        return [], [UserFailure("TOO_MANY_ITEMS", ["input", "userCodes"], label="利用者コード", limit=most)]
    clean = []
    for i, code in enumerate(codes):
        base = ["input", "userCodes", str(i)]
        if not code.industries:
            problems.append(UserFailure("REQUIRED", [*base, "industries"], label="業種"))
        if len(code.industries) > len(known):  # each industry of the rules at most once
            problems.append(UserFailure("TOO_MANY_ITEMS", [*base, "industries"], label="業種", limit=len(known)))
        for j, industry in enumerate(code.industries[:len(known)]):
            if industry not in known:
                problems.append(UserFailure("INVALID", [*base, "industries", str(j)], label="業種(規定の一覧から)"))
        if code.processing_method not in ("netNACCS", "NACCS"):
            problems.append(UserFailure("INVALID", [*base, "processingMethod"], label="処理方式(netNACCS / NACCS)"))
        category = validation.text(code.category, [*base, "category"], 60, "システム設定区分")
        if isinstance(category, UserFailure):
            problems.append(category)
        count = code.identification_count if code.identification_count is not None else 1
        if not 1 <= count <= 20:
            problems.append(UserFailure("INVALID", [*base, "identificationCount"], label="識別番号数(1〜20)"))
        for key, value in (("statisticsPaid", code.statistics_paid), ("statisticsFree", code.statistics_free)):
            if value is not None and not 0 <= value <= 100:
                problems.append(UserFailure("INVALID", [*base, key], label="管理統計資料(0〜100)"))
        if (code.statistics_free or 0) > 0 and not all(known.get(ind, False) for ind in code.industries):
            problems.append(UserFailure("INVALID", [*base, "statisticsFree"],
                                        label="管理統計資料(無料: 通関業・自社通関・輸出入者・船会社・船舶代理店のみ)"))
        clean.append({"category": code.category, "industries": list(dict.fromkeys(code.industries)),
                      "processingMethod": code.processing_method, "singleSignOn": code.single_sign_on,
                      "identificationCount": count, "statisticsPaid": code.statistics_paid or 0,
                      "statisticsFree": code.statistics_free or 0})
    return clean, problems


def _check_date(services: Services, value: dt.date, path: list[str]) -> UserFailure | None:
    """A business day, from the next business day on (NOT_BUSINESS_DAY / DATE_TOO_EARLY)."""
    policy, today = services.rules.current, services.clock.today()
    if not calendar.is_business_day(policy, value):
        return UserFailure("NOT_BUSINESS_DAY", path)
    if value < calendar.next_business_day(policy, today):
        return UserFailure("DATE_TOO_EARLY", path)
    return None


async def submit_user_codes(ctx: Context, desired: dt.date, reason: str, contact: Contact,
                            codes: list[UserCodeInput]) -> NaccsApplication:
    who = await require_viewer(ctx)
    office = await office_of(ctx, who)
    contact_values, problems = check_contact(contact)
    clean, code_problems = _check_user_codes(ctx.services, codes)
    problems += code_problems
    checked_reason = validation.text(reason, ["input", "reason"], 1000, "申込理由")
    if isinstance(checked_reason, UserFailure):
        problems.append(checked_reason)
    date_problem = _check_date(ctx.services, desired, ["input", "desiredStartDate"])
    if date_problem:
        problems.append(date_problem)
    if problems:
        raise UserFailures(problems)
    return await _create(ctx, who, office, "USER_CODE_ADDITION", desired, checked_reason, contact_values, {"userCodes": clean},
                         "利用申込を受け付けました")


async def _create(ctx: Context, who: Viewer, office: NaccsOffice, kind: str, desired: dt.date, reason: str,
                  contact: dict, details: dict, subject: str) -> NaccsApplication:
    now = ctx.clock.now()
    async with ctx.services.db.write() as session:
        app = NaccsApplication(
            office_id=office.id, kind=kind, state="SUBMITTED", receipt_number=await _receipt(session),
            desired_date=desired, reason=reason, contact=json.dumps(contact, ensure_ascii=False),
            details=json.dumps(details, ensure_ascii=False), created_by_id=who.account.id, submitted_at=now, updated_at=now)
        session.add(app)
        await session.flush()
        what = "利用申込(利用者コード追加)" if kind == "USER_CODE_ADDITION" else "電子証明書の再発行申込"
        body = (f"{office.name} {contact['family_name']} 様\n\n{what}を受け付けました。\n受付番号: {app.receipt_number}\n"
                f"希望日: {desired:%Y年%m月%d日}\n")
        for address in dict.fromkeys([contact["email"], office.contact_email]):
            queue_mail(session, now, f"naccs.{kind.lower()}.received", address, f"【NACCS】{subject}(受付完了)", body,
                       account_id=who.account.id)
        _notice(session, office.id, now, "利用申込" if kind == "USER_CODE_ADDITION" else "証明書発行",
                f"{what}を受け付けました (受付番号 {app.receipt_number})")
        audit(session, ctx, who.account, f"naccs.{kind.lower()}.submit", target=f"NaccsApplication:{app.id}")
    return await get(ctx, app.id)


async def _own(ctx: Context, app_id: int) -> tuple[Viewer, NaccsOffice, NaccsApplication]:
    who = await require_viewer(ctx)
    office = await office_of(ctx, who)
    async with ctx.services.db.read() as session:
        app = await session.get(NaccsApplication, app_id)
    if app is None or app.office_id != office.id:
        raise UserFailure("NOT_FOUND", ["input", "applicationId"])
    return who, office, app


async def update_application(ctx: Context, app_id: int, desired: dt.date | None, reason: str | None,
                             contact: Contact | None, codes: list[UserCodeInput] | None) -> NaccsApplication:
    """The office answers a clarification request: corrected content, back to SUBMITTED."""
    who, office, app = await _own(ctx, app_id)
    values: dict = {}
    problems: list[UserFailure] = []
    if contact is not None:
        contact_values, contact_problems = check_contact(contact)
        problems += contact_problems
        values["contact"] = json.dumps(contact_values, ensure_ascii=False)
    if codes is not None:
        if app.kind != "USER_CODE_ADDITION":
            problems.append(UserFailure("INVALID", ["input", "userCodes"], label="利用者コード(この申込には不要)"))
        clean, code_problems = _check_user_codes(ctx.services, codes)
        problems += code_problems
        values["details"] = json.dumps({"userCodes": clean}, ensure_ascii=False)
    if reason is not None:
        checked = validation.text(reason, ["input", "reason"], 1000, "申込理由")
        problems += [checked] if isinstance(checked, UserFailure) else []
        values["reason"] = checked
    if desired is not None:
        problem = _check_date(ctx.services, desired, ["input", "desiredDate"])
        problems += [problem] if problem else []
        values["desired_date"] = desired
    if problems:
        raise UserFailures(problems)
    now = ctx.clock.now()
    async with ctx.services.db.write() as session:
        await transition(session, NaccsApplication, app_id, ("CLARIFICATION_REQUESTED",),
                         {"state": "SUBMITTED", "updated_at": now, **values})
        _notice(session, office.id, now, "利用申込", f"申込内容を修正しました (受付番号 {app.receipt_number})")
        audit(session, ctx, who.account, "naccs.application.update", target=f"NaccsApplication:{app_id}")
    return await get(ctx, app_id)


async def withdraw(ctx: Context, app_id: int) -> NaccsApplication:
    who, office, app = await _own(ctx, app_id)
    now = ctx.clock.now()
    async with ctx.services.db.write() as session:
        await transition(session, NaccsApplication, app_id, ("SUBMITTED", "CLARIFICATION_REQUESTED"),
                         {"state": "WITHDRAWN", "updated_at": now})
        _notice(session, office.id, now, "利用申込", f"申込を取り下げました (受付番号 {app.receipt_number})")
        audit(session, ctx, who.account, "naccs.application.withdraw", target=f"NaccsApplication:{app_id}")
    return await get(ctx, app_id)


# --------------------------------------------------------------------------- the NACCS center


async def _for_review(ctx: Context, app_id: int) -> tuple[Viewer, NaccsApplication]:
    who = await require_viewer(ctx)
    await authorize(ctx, who, "naccs.review", {"none"})
    async with ctx.services.db.read() as session:
        app = await session.get(NaccsApplication, app_id)
    if app is None:
        raise UserFailure("NOT_FOUND", ["input", "applicationId"])
    return who, app


async def request_clarification(ctx: Context, app_id: int, message: str) -> NaccsApplication:
    who, app = await _for_review(ctx, app_id)
    checked = validation.text(message, ["input", "message"], 2000, "確認事項")
    if isinstance(checked, UserFailure):
        raise checked
    now = ctx.clock.now()
    async with ctx.services.db.write() as session:
        await transition(session, NaccsApplication, app_id, ("SUBMITTED",),
                         {"state": "CLARIFICATION_REQUESTED", "clarification": checked, "updated_at": now})
        contact = json.loads(app.contact)
        queue_mail(session, now, "naccs.clarification", contact["email"], "【NACCS】申込内容の確認のお願い",
                   f"受付番号 {app.receipt_number} について確認事項があります。\n{checked}\n修正または取下げをお願いします。\n")
        _notice(session, app.office_id, now, "利用申込", f"申込内容の確認依頼があります (受付番号 {app.receipt_number})")
        audit(session, ctx, who.account, "naccs.review.clarify", target=f"NaccsApplication:{app_id}")
    return await get(ctx, app_id)


def _identifications(net: bool, taken: set[str]):
    """Next free identification numbers: alphabetic for netNACCS (A0A, A0B, …), numeric otherwise."""
    if net:
        candidates = (f"{a}{d}{b}" for a in string.ascii_uppercase for d in string.digits for b in string.ascii_uppercase)
    else:
        candidates = (f"{n:03d}" for n in range(1, 1000))
    for candidate in candidates:
        if candidate not in taken:
            taken.add(candidate)
            yield candidate


async def approve_user_codes(ctx: Context, app_id: int, start_date: dt.date) -> NaccsApplication:
    """Approval with a fixed start date (may differ from the desired one): new user IDs are
    assigned and their passwords generated, viewable until the end of the window."""
    who, app = await _for_review(ctx, app_id)
    if app.kind != "USER_CODE_ADDITION":
        raise UserFailure("INVALID_STATE", ["input", "applicationId"])
    policy = ctx.services.rules.current
    if not calendar.is_business_day(policy, start_date):
        raise UserFailure("NOT_BUSINESS_DAY", ["input", "startDate"])
    if start_date < ctx.clock.today():
        raise UserFailure("DATE_TOO_EARLY", ["input", "startDate"])
    now = ctx.clock.now()
    viewable_until = password_window_end(ctx.services, start_date)
    fernet = _fernet(ctx.services)
    async with ctx.services.db.write() as session:
        await transition(session, NaccsApplication, app_id, ("SUBMITTED",),
                         {"state": "APPROVED", "start_date": start_date, "approved_at": now, "updated_at": now,
                          "password_viewable_until": viewable_until})
        existing = (await session.execute(select(NaccsUserId.user_code, NaccsUserId.identification_number))).all()
        codes_taken = {c for c, _ in existing}
        for code in json.loads(app.details)["userCodes"]:
            user_code = await _new_user_code(session, codes_taken)
            taken: set[str] = set()
            net = code["processingMethod"] == "netNACCS"
            numbers = _identifications(net, taken)
            groups = ([code["industries"]] * code["identificationCount"] if code["singleSignOn"]
                      else [[industry] for industry in code["industries"]])
            for industries in groups:
                session.add(NaccsUserId(
                    office_id=app.office_id, user_code=user_code, identification_number=next(numbers),
                    industries=json.dumps(industries, ensure_ascii=False), single_sign_on=code["singleSignOn"],
                    application_id=app.id, password_encrypted=fernet.encrypt(new_password().encode()).decode(),
                    created_at=now))
        contact = json.loads(app.contact)
        queue_mail(session, now, "naccs.approved", contact["email"], "【NACCS】利用申込確認完了のお知らせ",
                   f"受付番号 {app.receipt_number} の利用申込の確認が完了しました。\n利用開始日: {start_date:%Y年%m月%d日}\n"
                   f"ID通知(パスワード)は {viewable_until:%Y年%m月%d日} まで閲覧できます。\n")
        _notice(session, app.office_id, now, "システム設定",
                f"利用者コードを追加しました (受付番号 {app.receipt_number}, 利用開始日 {start_date:%Y-%m-%d})")
        audit(session, ctx, who.account, "naccs.review.approve", target=f"NaccsApplication:{app_id}")
    return await get(ctx, app_id)


async def _new_user_code(session, taken: set[str]) -> str:
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
                         terminal_names: list[str]) -> NaccsApplication:
    who = await require_viewer(ctx)
    office = await office_of(ctx, who)
    contact_values, problems = check_contact(contact)
    if reason not in REASONS:
        problems.append(UserFailure("INVALID", ["input", "reason"], label="再発行理由"))
    date_problem = _check_date(ctx.services, desired, ["input", "desiredDate"])
    if date_problem:
        problems.append(date_problem)
    async with ctx.services.db.read() as session:
        mine = set((await session.scalars(select(NaccsTerminal.name).where(NaccsTerminal.office_id == office.id))).all())
    most = limit(ctx.services.rules.current, ctx.services.clock.today(), "naccs_terminals_per_reissue")
    if not terminal_names:
        problems.append(UserFailure("REQUIRED", ["input", "terminalNames"], label="論理端末"))
    elif len(terminal_names) > most:
        problems.append(UserFailure("TOO_MANY_ITEMS", ["input", "terminalNames"], label="論理端末", limit=most))
    else:
        for i, name in enumerate(terminal_names):
            if name not in mine:
                problems.append(UserFailure("NOT_FOUND", ["input", "terminalNames", str(i)]))
            elif name in terminal_names[:i]:  # each terminal once: a reissue renews it once
                problems.append(UserFailure("INVALID", ["input", "terminalNames", str(i)], label="論理端末(重複)"))
    if problems:
        raise UserFailures(problems)
    return await _create(ctx, who, office, "CERTIFICATE_REISSUE", desired, REASONS[reason], contact_values,
                         {"terminals": list(dict.fromkeys(terminal_names)), "reasonCode": reason}, "電子証明書再発行申込")


async def process_reissues(services: Services) -> str:
    """Job `naccs-reissue` (mornings): reissues due today renew exactly their terminals."""
    today, now = services.clock.today(), services.clock.now()
    async with services.db.read() as session:
        due = (await session.scalars(select(NaccsApplication).where(
            NaccsApplication.kind == "CERTIFICATE_REISSUE", NaccsApplication.state == "SUBMITTED",
            NaccsApplication.desired_date <= today))).all()
    done = 0
    for app in due:
        async with services.db.write() as session:
            completed = await session.scalar(
                update(NaccsApplication).where(NaccsApplication.id == app.id, NaccsApplication.state == "SUBMITTED")
                .values(state="COMPLETED", completed_at=now, start_date=today, updated_at=now).returning(NaccsApplication.id))
            if completed is None:
                continue
            names = json.loads(app.details)["terminals"]
            await session.execute(update(NaccsTerminal).where(NaccsTerminal.office_id == app.office_id,
                                                              NaccsTerminal.name.in_(names)).values(issued_on=today))
            contact = json.loads(app.contact)
            queue_mail(session, now, "naccs.reissued", contact["email"], "【NACCS】電子証明書再発行完了のお知らせ",
                       f"受付番号 {app.receipt_number} の電子証明書を再発行しました。\n対象端末: {', '.join(names)}\n"
                       "NACCS掲示板から新しい電子証明書をダウンロードしてください。\n")
            _notice(session, app.office_id, now, "証明書発行",
                    f"電子証明書を再発行しました ({', '.join(names)}; 受付番号 {app.receipt_number})")
            done += 1
    return f"{done} reissue(s) processed"


async def get(ctx: Context, app_id: int) -> NaccsApplication:
    async with ctx.services.db.read() as session:
        return await session.get(NaccsApplication, app_id)


async def issued_ids(ctx: Context, app_id: int) -> list[NaccsUserId]:
    async with ctx.services.db.read() as session:
        return list((await session.scalars(select(NaccsUserId).where(NaccsUserId.application_id == app_id)
                                           .order_by(NaccsUserId.user_code, NaccsUserId.identification_number))).all())


async def visible_application(ctx: Context, app_id: int) -> NaccsApplication | None:
    who = await require_viewer(ctx)
    async with ctx.services.db.read() as session:
        app = await session.get(NaccsApplication, app_id)
        office = await session.get(NaccsOffice, app.office_id) if app else None
    if app is None:
        return None
    if who.account.kind == "NACCS_CENTER":
        return app
    if office is not None and office.account_id == who.account.id:
        return app
    return None


async def center_queue(ctx: Context) -> list[NaccsApplication]:
    who = await require_viewer(ctx)
    await authorize(ctx, who, "naccs.review", {"none"})
    async with ctx.services.db.read() as session:
        return list((await session.scalars(select(NaccsApplication).where(
            NaccsApplication.state.in_(("SUBMITTED", "CLARIFICATION_REQUESTED"))).order_by(NaccsApplication.id))).all())


def submitted_on(app: NaccsApplication) -> dt.date:
    return tokyo_date(app.submitted_at)

