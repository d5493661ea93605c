"""Revoking an account's API keys inside the unit that ends its logins (issue 20).

A key never outlives a login (docs/decisions.md, API keys): whatever ends every session of
an account for a credential's sake — changing one's password, a reset by the admin or the
generating signer, a signer setting a sub-ID's password — revokes the account's live keys in
the same transaction, and the key's owner is told by mail (rules/mail_templates.yaml,
``api_key.revoked_password_changed`` / ``api_key.revoked_password_reset``). Deleting a sub-ID
and withdrawing a registration revoke keys too, without a mail (the account is gone).

A leaf of the identity package (``accounts`` imports it, so it imports no other module of
it): ``accounts``, ``subaccounts`` and the withdrawal (resolvers/coupons/accounts.py) call it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Account, ApiKey
from resolvers.adapters.mail import queue_mail
from resolvers.core.clock import TOKYO
from rules import mail
from rules.policy import PolicySet

PASSWORD_CHANGED = "api_key.revoked_password_changed"  # by the account itself
PASSWORD_RESET = "api_key.revoked_password_reset"  # by an admin or the generating signer
REVOKED_AT_FORMAT = "%Y-%m-%d %H:%M JST"


async def revoke_keys_of(tx: AsyncSession, accounts: Select[Any] | Sequence[int], now: dt.datetime,
                         by_id: int) -> list[tuple[str, str]]:
    """Inside the caller's unit: revoke every live key of ``accounts`` (ids, or a SELECT of
    ids); the (prefix, name) of each key revoked, in id order."""
    revoked = (await tx.execute(
        update(ApiKey).where(ApiKey.account_id.in_(accounts), ApiKey.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by_id=by_id).returning(ApiKey.id, ApiKey.prefix, ApiKey.name))).all()
    return [(prefix, name) for _id, prefix, name in sorted(revoked)]


async def revoke_keys_with_password(tx: AsyncSession, policy: PolicySet, today: dt.date, now: dt.datetime,
                                    account_id: int, by_id: int, template: str) -> int:
    """The account's password changed (``template`` says how): its live keys are revoked in
    the caller's unit and, if there were any, its address gets the mail (queued in the same
    unit: it goes only if the change commits). The number of keys revoked."""
    revoked = await revoke_keys_of(tx, [account_id], now, by_id)
    if not revoked:
        return 0
    owner = (await tx.execute(select(Account.username, Account.name, Account.email)
                              .where(Account.id == account_id))).first()
    if owner is not None and owner.email:
        keys = "\n".join(f"  {prefix}… {name}" for prefix, name in revoked)
        words = mail.render(policy, today, template, {
            "name": owner.name or owner.username, "username": owner.username, "keys": keys,
            "revoked_at": now.astimezone(TOKYO).strftime(REVOKED_AT_FORMAT)})
        queue_mail(tx, now, template, owner.email, words.subject, words.body, account_id=account_id)
    return len(revoked)


def audit_detail(revoked: int) -> str | None:
    """The audit row's note of the keys a password change revoked (none: no note)."""
    return f"{revoked} API key(s) revoked" if revoked else None
