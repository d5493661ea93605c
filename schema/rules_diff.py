"""Rules history (chamber staff): what changed in the rule files between two points."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from resolvers.core.context import Context
from resolvers.core.errors import UserFailure
from resolvers.fees import rules_diff as diff_resolvers
from rules.diff import ChangeKind
from rules.diff import RuleChange as RuleChangeView
from schema.inputs import query_failure

strawberry.enum(ChangeKind, name="RuleChangeKind",
                description="A row only the later point has (ADDED), only the earlier (REMOVED), or both, differently (CHANGED).")


@strawberry.type(description="One row of a rule table that differs between two points, in the words of the table.")
class RuleChange:
    table: str = strawberry.field(description="The table (its file is <table>.yaml), e.g. application_fees.")
    effective_from: dt.date = strawberry.field(description="The version the row belongs to (for two dates: the one in force on `to`).")
    kind: ChangeKind
    row: str = strawberry.field(description="The row's key columns, e.g. \"membership=MEMBER\"; \"row 1\" in a table without keys.")
    before: str | None = strawberry.field(description="The row's other cells before, e.g. \"amount=<old>\"; null when ADDED.")
    after: str | None = strawberry.field(description="The row's other cells after; null when REMOVED.")

    @classmethod
    def of(cls, change: RuleChangeView) -> RuleChange:
        return cls(table=change.table, effective_from=change.effective_from, kind=change.kind, row=change.row,
                   before=change.before, after=change.after)


@strawberry.type
class RulesDiffQuery:
    @strawberry.field(description=(
        "Chamber staff: rule rows added, removed and changed from `from` to `to` (each a rules version hash or a "
        "Date; `to` defaults to today, Asia/Tokyo). Two dates compare the rows in force on each; otherwise every "
        "version of the two rule sets is compared."))
    async def rules_diff(
        self, info: strawberry.Info[Context],
        from_: Annotated[str, strawberry.argument(name="from", description="A rules version or a Date (YYYY-MM-DD).")],
        to: Annotated[str | None, strawberry.argument(description="A rules version or a Date; default today.")] = None,
    ) -> list[RuleChange]:
        try:
            changes = await diff_resolvers.rules_diff(info.context, from_, to)
        except UserFailure as failure:
            raise query_failure(failure, info.context.language) from None
        return [RuleChange.of(c) for c in changes]
