"""Counts and periods from rules/limits.yaml.

Every limit has a bound in rules/schema/rules.schema.json (``rules check`` and every load
refuse a value outside it). ``limit`` checks it again at use: a value that reached the
server some other way (a stored version loaded again, a release with looser bounds) must
give a clear refusal naming the row, never a date past year 9999 and a 500."""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import cast

from rules.policy import SCHEMA_PATH, PolicySet, RowRef


class LimitOutOfRange(ValueError):
    """A limit in force breaks its bound; ``row`` is the rules row that holds it."""

    def __init__(self, row: RowRef, name: str, value: int, most: int) -> None:
        self.row = row
        self.name = name
        self.value = value
        self.most = most
        super().__init__(f"{row.file} version {row.version} (effective_from {row.effective_from}) row {row.row} "
                         f"(limit={name}): value {value} is outside its bound 1–{most}")


@functools.cache
def bounds() -> dict[str, int]:
    """limit → its maximum, as rules.schema.json declares it (the general one, under "",
    for a limit without its own)."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    for block in schema["allOf"]:
        if block["if"]["properties"]["table"].get("const") != "limits":
            continue
        items = block["then"]["properties"]["versions"]["items"]["properties"]["rows"]["items"]
        general = cast(int, items["properties"]["value"]["maximum"])
        found = {"": general, **{str(name): general for name in items["properties"]["limit"]["enum"]}}
        for rule in items.get("allOf", []):
            found[str(rule["if"]["properties"]["limit"]["const"])] = cast(int, rule["then"]["properties"]["value"]["maximum"])
        return found
    raise LookupError("rules.schema.json declares no limits table")


def limit(policy: PolicySet, on: dt.date, name: str) -> int:
    row = policy.lookup_one("limits", on, limit=name)
    value = row.integer("value")
    most = bounds().get(name, bounds()[""])
    if not 1 <= value <= most:
        raise LimitOutOfRange(row, name, value, most)
    return value
