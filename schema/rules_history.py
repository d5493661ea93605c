"""Rules history (chamber staff): every rules version that went live, newest first."""

from __future__ import annotations

import datetime as dt

import strawberry

from resolvers.core.context import Context
from resolvers.fees import rules_history
from schema.paging import PageInfo, encode_cursor, page_info, page_window


@strawberry.type(description="A rules version as it went live: the hash of its files and when a server first served it.")
class RulesVersion:
    version: str = strawberry.field(description="Hash of the rule files' content (as FeeSchedule.rulesVersion).")
    live_from: dt.datetime = strawberry.field(description="When a server first served this version (Asia/Tokyo).")
    files: list[str] = strawberry.field(description="The rule files of this version, by name.")


@strawberry.type(description="A rules version in force that turned out wrong, replaced at once by a correcting one "
                               "(`tradecert rules correct`). Records priced under the wrong version keep it.")
class RulesCorrection:
    version: str = strawberry.field(description="The correcting rules version, served from correctedAt.")
    corrects: list[str] = strawberry.field(description="The rules versions it replaced (still in rulesVersions).")
    reason: str = strawberry.field(description="Why, as recorded.")
    corrected_by: str = strawberry.field(description="Who decided it, as recorded.")
    corrected_at: dt.datetime = strawberry.field(description="When it was recorded; each server serves it from its "
                                                             "next reload.")


@strawberry.type
class RulesVersionEdge:
    cursor: str
    node: RulesVersion


@strawberry.type
class RulesVersionConnection:
    edges: list[RulesVersionEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class RulesHistoryQuery:
    @strawberry.field(description="Chamber staff: every rules version that went live, newest first. A version's "
                                  "rows that have taken effect never change; a change is a new version.")
    async def rules_versions(self, info: strawberry.Info[Context], first: int | None = None,
                             after: str | None = None) -> RulesVersionConnection:
        size, before = page_window("RulesVersion", first, after)
        found, total, more = await rules_history.rules_versions(info.context, size, before)
        edges = [
            RulesVersionEdge(cursor=encode_cursor("RulesVersion", v.id),
                             node=RulesVersion(version=v.version, live_from=v.went_live_at, files=v.file_names))
            for v in found
        ]
        return RulesVersionConnection(edges=edges, page_info=page_info(edges, more), total_count=total)

    @strawberry.field(description="Chamber staff: every correction of a rules version in force, newest first "
                                  "(at most 100).")
    async def rules_corrections(self, info: strawberry.Info[Context]) -> list[RulesCorrection]:
        found = await rules_history.rules_corrections(info.context)
        return [RulesCorrection(version=c.version, corrects=list(c.corrects), reason=c.reason, corrected_by=c.by,
                                corrected_at=c.at) for c in found]
