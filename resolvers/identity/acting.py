"""Acting as an account from the command line (``tradecert applications import --as``).

Chamber staff run the CLI on the server for an exporter they help by hand: the use cases
run as that exporter's account, so the same permission rules, the same checks and the same
audit rows apply as when the account files over the API. The account is found by its login
name — with the chamber code for eCO IDs when the name is taken in more than one chamber —
under the conditions a login session has: active, not deleted, its registration not
withdrawn. No session is made; the CLI's context carries the viewer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import inspect, select

from persistence.models import Account, Chamber, TradeRegistration
from resolvers.core.context import Context, Services
from resolvers.identity import queries
from resolvers.identity.actor import Viewer
from resolvers.identity.names import AccountStatus


class NoSuchAccount(LookupError):
    """The login name names no account that may act now, or more than one."""


@dataclass(frozen=True)
class Acting:
    viewer: Viewer
    chamber_code: str | None


async def acting_as(services: Services, username: str, chamber_code: str | None = None) -> Acting:
    """The viewer for ``username`` (a login name; ``chamber_code`` tells apart eCO IDs of the
    same name in two chambers)."""
    now = services.clock.now()
    async with services.db.read() as session:
        query = (select(Account, Chamber.code, TradeRegistration.withdrawn_at)
                 .outerjoin(Chamber, Chamber.id == Account.chamber_id)
                 .outerjoin(TradeRegistration, TradeRegistration.id == Account.registration_id)
                 .where(Account.username == username.strip()))
        if chamber_code:
            query = query.where(Chamber.code == chamber_code.strip())
        found = (await session.execute(query)).all()
        if not found:
            raise NoSuchAccount(f"no account with the login name {username!r}"
                                + (f" in chamber {chamber_code}" if chamber_code else ""))
        if len(found) > 1:
            codes = ", ".join(sorted(code or "NACCS" for _a, code, _w in found))
            raise NoSuchAccount(f"{username!r} is a login name in more than one chamber ({codes}): add --chamber CODE")
        account, code, withdrawn_at = found[0]
        if account.status != AccountStatus.ACTIVE or account.deleted_at is not None or withdrawn_at is not None:
            raise NoSuchAccount(f"{username!r} may not act now (not active, deleted, or its registration withdrawn)")
        view = (await queries.accounts_by_id(session, [account.id], now))[account.id]
        record = {attribute.key: getattr(account, attribute.key) for attribute in inspect(Account).column_attrs}
    # session_id 0: no login session stands behind it (nothing of a session is ever ended or touched from the CLI)
    return Acting(Viewer(view=view, session_id=0, _record=record), code)


def context_as(services: Services, acting: Acting) -> Context:
    """A context whose viewer is ``acting``'s account (``actor.viewer`` answers the cached one)."""
    ctx = Context(services=services, request_id="cli")
    ctx.loaders["viewer"] = acting.viewer
    return ctx
