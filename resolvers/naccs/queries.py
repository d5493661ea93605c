"""The NACCS office page and the center's review queue as the API shows them: read
functions returning plain frozen views, never ORM rows.

An office is read in one unit with a fixed number of set-based statements (the office, its
user IDs, terminals, latest notices, applications, and the IDs those applications issued);
a list of applications costs one statement for the applications and one for every ID they
issued, whatever its length.

Issued passwords stay sealed (Fernet-encrypted) in the views and are sealed only while
their viewing window is open; ``reveal_password`` opens one when a client asks for it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import NaccsApplication, NaccsNotice, NaccsOffice, NaccsTerminal, NaccsUserId
from resolvers.core.context import Context, Services
from resolvers.core.errors import Forbidden
from resolvers.core.sealing import fernet
from resolvers.identity.actor import Viewer, authorize, require_viewer
from resolvers.naccs import use_cases as naccs
from resolvers.naccs.names import IN_REVIEW_STATES, NaccsApplicationKind
from rules.permissions import is_allowed

_offices = NaccsOffice.__table__
_applications = NaccsApplication.__table__
_user_ids = NaccsUserId.__table__
_terminals = NaccsTerminal.__table__
_notices = NaccsNotice.__table__



@dataclass(frozen=True)
class UserIdView:
    """利用者ID: user code (5) + identification number (3)."""

    user_code: str
    identification_number: str
    industries: tuple[str, ...]

    @property
    def user_id(self) -> str:
        return self.user_code + self.identification_number

    @property
    def net_naccs(self) -> bool:  # an alphabetic identification number is a netNACCS ID
        return self.identification_number[0].isalpha()


@dataclass(frozen=True)
class IssuedIdView:
    """A user ID an approval issued (ID通知), its password sealed while its window is open."""

    user_code: str
    identification_number: str
    industries: tuple[str, ...]
    sealed_password: str | None = field(repr=False)

    @property
    def user_id(self) -> str:
        return self.user_code + self.identification_number


@dataclass(frozen=True)
class TerminalView:
    """論理端末 and the dates of its digital certificate (limits.yaml)."""

    name: str
    area: str
    equipment: str
    issued_on: dt.date
    expires_on: dt.date
    renewable_from: dt.date


@dataclass(frozen=True)
class NoticeView:
    at: dt.datetime
    category: str
    message: str


@dataclass(frozen=True)
class ApplicationView:
    id: int
    receipt_number: str
    kind: str
    state: str
    desired_date: dt.date
    start_date: dt.date | None
    clarification: str | None
    reason: str
    password_viewable_until: dt.date | None
    terminal_names: tuple[str, ...]  # certificate reissues: the selected terminals
    approved_at: dt.datetime | None
    issued_ids: tuple[IssuedIdView, ...]  # user-code additions once approved


@dataclass(frozen=True)
class OfficeView:
    id: int
    name: str
    user_ids: tuple[UserIdView, ...]
    terminals: tuple[TerminalView, ...]
    notices: tuple[NoticeView, ...]  # the latest NOTICES_SHOWN, newest first
    applications: tuple[ApplicationView, ...]  # newest first


def reveal_password(services: Services, sealed: str) -> str:
    """The plain password of a sealed one (the key lives outside the database)."""
    return fernet(services).decrypt(sealed.encode()).decode()


# --------------------------------------------------------------------------- applications

_APPLICATION_COLUMNS = (
    _applications.c.id, _applications.c.office_id, _applications.c.receipt_number, _applications.c.kind,
    _applications.c.state, _applications.c.desired_date, _applications.c.start_date, _applications.c.clarification,
    _applications.c.reason, _applications.c.password_viewable_until, _applications.c.details,
    _applications.c.approved_at,
)


def _window_open(services: Services, app: Row[Any]) -> bool:
    """Passwords are shown from approval to the end of their window (and only while they exist)."""
    until = app.password_viewable_until
    return app.approved_at is not None and until is not None and services.clock.today() <= until


async def _application_views(ctx: Context, session: AsyncSession, rows: Sequence[Row[Any]]) -> list[ApplicationView]:
    """The applications with the IDs they issued: one statement for every approved one."""
    approved = [r.id for r in rows if r.kind == NaccsApplicationKind.USER_CODE_ADDITION and r.approved_at is not None]
    issued: dict[int, list[Row[Any]]] = {i: [] for i in approved}
    if approved:
        u = _user_ids.c
        for row in (await session.execute(
                select(u.application_id, u.user_code, u.identification_number, u.industries, u.password_encrypted)
                .where(u.application_id.in_(approved)).order_by(u.user_code, u.identification_number))).all():
            issued[row.application_id].append(row)
    found = []
    for r in rows:
        window = _window_open(ctx.services, r)
        ids = tuple(IssuedIdView(i.user_code, i.identification_number, tuple(json.loads(i.industries)),
                                 i.password_encrypted if window else None) for i in issued.get(r.id, ()))
        found.append(ApplicationView(
            r.id, r.receipt_number, r.kind, r.state, r.desired_date, r.start_date, r.clarification, r.reason,
            r.password_viewable_until, tuple(json.loads(r.details).get("terminals", [])), r.approved_at, ids))
    return found


async def application(ctx: Context, app_id: int) -> ApplicationView | None:
    """An application by id, for a result the use case already authorized (a mutation's payload)."""
    async with ctx.read() as session:
        rows = (await session.execute(select(*_APPLICATION_COLUMNS).where(_applications.c.id == app_id))).all()
        views = await _application_views(ctx, session, rows)
    return views[0] if views else None


def may_view(ctx: Context, who: Viewer, office_account_id: int | None) -> bool:
    """naccs.view in permissions.yaml: the office that filed it (own_office), the center (any)."""
    relation = "own_office" if office_account_id == who.account.id else "none"
    return is_allowed(ctx.services.rules.current, ctx.clock.today(), who.actor, "naccs.view", {relation})


async def visible_application(ctx: Context, app_id: int) -> ApplicationView | None:
    """An application when the viewer is the NACCS center or the office that filed it; else None."""
    who = await require_viewer(ctx)
    async with ctx.read() as session:
        row = (await session.execute(
            select(*_APPLICATION_COLUMNS, _offices.c.account_id)
            .join(_offices, _offices.c.id == _applications.c.office_id)
            .where(_applications.c.id == app_id))).first()
        if row is None or not may_view(ctx, who, row.account_id):
            return None
        [view] = await _application_views(ctx, session, [row])
    return view


async def review_queue(ctx: Context) -> list[ApplicationView]:
    """NACCS center: user-code applications waiting for review, oldest first. Reissues need
    no approval (the `naccs-reissue` job completes them on the desired morning): not here."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "naccs.review", {"none"})
    async with ctx.read() as session:
        rows = (await session.execute(select(*_APPLICATION_COLUMNS).where(_applications.c.state.in_(IN_REVIEW_STATES),
                                             _applications.c.kind == NaccsApplicationKind.USER_CODE_ADDITION)
                                      .order_by(_applications.c.id))).all()
        return await _application_views(ctx, session, rows)


# --------------------------------------------------------------------------- the office


async def viewer_office(ctx: Context) -> OfficeView | None:
    """The viewer's office with everything its page shows; None for accounts other than
    NACCS offices (an office account without an office is FORBIDDEN)."""
    who = await require_viewer(ctx)
    if not is_allowed(ctx.services.rules.current, ctx.clock.today(), who.actor, "naccs.apply", {"own_office"}):
        return None
    services = ctx.services
    async with ctx.read() as session:
        office = (await session.execute(select(_offices.c.id, _offices.c.name)
                                        .where(_offices.c.account_id == who.account.id))).first()
        if office is None:
            raise Forbidden()
        u, t, n = _user_ids.c, _terminals.c, _notices.c
        user_ids = (await session.execute(
            select(u.user_code, u.identification_number, u.industries).where(u.office_id == office.id)
            .order_by(u.user_code, u.identification_number))).all()
        terminals = (await session.execute(
            select(t.name, t.area, t.equipment, t.issued_on).where(t.office_id == office.id).order_by(t.name))).all()
        notices = (await session.execute(
            select(n.at, n.category, n.message).where(n.office_id == office.id)
            .order_by(n.id.desc()).limit(naccs.NOTICES_SHOWN))).all()
        apps = (await session.execute(select(*_APPLICATION_COLUMNS).where(_applications.c.office_id == office.id)
                                      .order_by(_applications.c.id.desc()))).all()
        applications = await _application_views(ctx, session, apps)
    return OfficeView(
        office.id, office.name,
        tuple(UserIdView(r.user_code, r.identification_number, tuple(json.loads(r.industries))) for r in user_ids),
        tuple(TerminalView(r.name, r.area, r.equipment, r.issued_on, *naccs.certificate_dates(services, r.issued_on))
              for r in terminals),
        tuple(NoticeView(r.at, r.category, r.message) for r in notices),
        tuple(applications),
    )
