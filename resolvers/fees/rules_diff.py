"""What changed in the rules between two points, for chamber staff and for `tradecert rules diff`.

A point is a Tokyo date (the rows in force that day, in the files this server serves) or a
rules version (its content hash: the files this server serves now, or any version the
rules history kept). Two dates compare the rows in force; anything else compares every
version of the two file sets (rules/diff.py).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from resolvers.core import messages
from resolvers.core.context import Context
from resolvers.core.errors import ErrorCode, UserFailure
from resolvers.core.messages import Words
from resolvers.core.validation import iso_date
from resolvers.fees.rules_history import policy_of_version
from resolvers.identity.actor import authorize, require_viewer
from rules.diff import RuleChange, diff
from rules.policy import PolicySet, RulesInvalid

VERSION_SHAPE: Final = re.compile(r"[0-9a-f]{12}")  # rules/policy.py fingerprint(): 12 hex digits
MAX_ECHO: Final = 40  # characters of a bad value shown back

# The words of a point that is neither (they fill INVALID's {label}: "…の値が正しくありません。")
NOT_A_POINT: Final = Words(
    "{label}(ルールの版(12桁の英数字)またはYYYY-MM-DD形式の日付を指定してください。「{value}」はどちらでもありません)",
    "{label} (give a rules version, 12 characters, or a date as YYYY-MM-DD; '{value}' is neither)",
)
UNKNOWN_VERSION: Final = Words(
    "{label}(ルールの版「{value}」は記録にありません。rulesVersionsに表示される版を指定してください)",
    "{label} (rules version '{value}' is not in the rules history; give one that rulesVersions lists)",
)
UNREADABLE_VERSION: Final = Words(
    "{label}(ルールの版「{value}」のファイルは現在のリリースでは読めません: {problem})",
    "{label} (the files of rules version '{value}' no longer validate in this release: {problem})",
)
NOT_A_DAY: Final = Words("{label}({problem}。値: {value})", "{label} ({problem}; value: {value})")

StoredPolicy = Callable[[str], Awaitable[PolicySet | None]]


@dataclass(frozen=True)
class RulesPoint:
    """One end of a diff: a rule set, and the date its rows are read on (None: every version)."""

    policy: PolicySet
    on: dt.date | None


async def rules_point(text: str, field: str, current: PolicySet, stored: StoredPolicy) -> RulesPoint:
    """``text`` as a date or a rules version; UserFailure(INVALID) at ``field`` when neither."""
    day = iso_date(text)
    if isinstance(day, dt.date):
        return RulesPoint(current, day)
    shown = text[:MAX_ECHO]
    if day is messages.DATE_DOES_NOT_EXIST:  # shaped as a date, but the calendar has no such day
        raise UserFailure(ErrorCode.INVALID, [field], label=NOT_A_DAY.format(label=field, problem=day, value=shown))
    if text == current.version:
        return RulesPoint(current, None)
    if VERSION_SHAPE.fullmatch(text):
        try:
            policy = await stored(text)
        except RulesInvalid as exc:  # an old version this release's checks no longer accept
            problem = str(exc.problems[0]) if exc.problems else ""
            raise UserFailure(ErrorCode.INVALID, [field],
                              label=UNREADABLE_VERSION.format(label=field, value=shown, problem=problem)) from None
        if policy is None:
            raise UserFailure(ErrorCode.INVALID, [field], label=UNKNOWN_VERSION.format(label=field, value=shown))
        return RulesPoint(policy, None)
    raise UserFailure(ErrorCode.INVALID, [field], label=NOT_A_POINT.format(label=field, value=shown))


def between(start: RulesPoint, end: RulesPoint) -> list[RuleChange]:
    return diff(start.policy, start.on, end.policy, end.on)


async def rules_diff(ctx: Context, start: str, end: str | None) -> list[RuleChange]:
    """Chamber staff: the rows added, removed and changed from ``start`` to ``end`` (default:
    today in Tokyo), per table and version."""
    who = await require_viewer(ctx)
    await authorize(ctx, who, "rules.diff", {"none"})
    current = ctx.services.rules.current

    async def stored(version: str) -> PolicySet | None:
        return await policy_of_version(ctx.services.db, version)

    first = await rules_point(start, "from", current, stored)
    last = await rules_point(end, "to", current, stored) if end is not None else RulesPoint(current, ctx.clock.today())
    return between(first, last)
