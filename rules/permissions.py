"""Who may do what: every answer comes from rules/permissions.yaml through durable_rules.

The code names the *actions* it asks about (rules/actions.py) and works out how a resource relates
to the actor; which account kinds may do an action under which relation is policy.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rules.actions import ACTIONS  # the actions the code asks about (rules/actions.py)
from rules.policy import PolicySet, RowRef

RELATIONS = ("self", "own_registration", "generated_by_me", "created_by_me", "same_chamber", "own_office", "none")


@dataclass(frozen=True)
class Actor:
    """The facts about an acting account that permissions are decided on."""

    account_id: int
    kind: str  # ADMIN, SIGNER, SUB, CHAMBER_STAFF, NACCS_OFFICE, NACCS_CENTER
    registration_kind: str | None  # APPLICANT, AGENT, or None (staff, NACCS)


def permission_rule(policy: PolicySet, on: dt.date, actor: Actor, action: str, relations: set[str] | frozenset[str]) -> RowRef | None:
    """The permission row that allows ``actor`` to do ``action`` to a resource standing in
    ``relations`` to it (``{"none"}`` when there is no resource), or None: forbidden."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    for relation in sorted(relations or {"none"}):
        if relation not in RELATIONS:
            raise ValueError(f"unknown relation {relation!r}")
        rows = policy.lookup(
            "permissions", on, action=action, kind=actor.kind,
            registration=actor.registration_kind or "none", relation=relation,
        )
        if rows:
            return rows[0]
    return None


def is_allowed(policy: PolicySet, on: dt.date, actor: Actor, action: str, relations: set[str] | frozenset[str]) -> bool:
    return permission_rule(policy, on, actor, action, relations) is not None
