"""`tradecert rules diff`: the changes of rules/diff.py as policy staff read them, at 80 columns.

Widths are counted as a Japanese terminal draws them (``columns``, tradecert/cli/text.py), so
a row's Japanese note wraps instead of running off.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from resolvers.fees.rules_diff import RulesPoint
from rules.diff import RuleChange, last_revision
from rules.policy import PolicySet
from tradecert.cli.text import columns

WIDTH = 80
_TOKENS = re.compile(r"\S+\s*")


def wrap(text: str, indent: str, hang: str, width: int = WIDTH) -> Iterator[str]:
    """``text`` in lines of at most ``width`` columns: the first after ``indent``, the rest
    (and the lines of a multi-line cell, such as a mail body) after ``hang``; broken at
    spaces, and inside a word only when the word alone is too wide."""
    for number, paragraph in enumerate(text.rstrip("\n").split("\n")):
        line = indent if number == 0 else hang
        for token in _TOKENS.findall(paragraph):
            if columns(line + token.rstrip()) > width and line.strip():
                yield line.rstrip()
                line = hang
            for ch in token:
                if columns(line + ch) > width and not ch.isspace():
                    yield line.rstrip()
                    line = hang
                line += ch
        yield line.rstrip()


def default_start(policy: PolicySet, end: dt.date) -> dt.date:
    """Without --from: the day before the last revision in force on ``end``, so the diff
    shows that revision (the day before ``end`` when no table was ever revised)."""
    revised = last_revision(policy, end)
    return (revised or end) - dt.timedelta(days=1)


def _point(point: RulesPoint) -> str:
    return f"{point.on}" if point.on is not None else f"version {point.policy.version}"


def render(start: RulesPoint, end: RulesPoint, changes: list[RuleChange]) -> Iterator[str]:
    if start.on is not None and end.on is not None:
        how = (f"the rows in force on each date (rules {end.policy.version})" if start.policy is end.policy
               else f"the rows in force on each date (rules {start.policy.version} and {end.policy.version})")
    else:
        how = "every version of each rule file, by effective_from"
    yield from wrap(f"Rules diff from {_point(start)} to {_point(end)}: {how}.", "", "  ")
    if not changes:
        yield "No rows differ."
        return
    tables = list(dict.fromkeys(c.table for c in changes))
    yield f"{len(changes)} row(s) differ in {len(tables)} table(s)."
    titles = {name: t.title for policy in (start.policy, end.policy) for name, t in policy.tables.items() if t.title}
    for table in tables:
        yield ""
        title = titles.get(table)
        rows = [c for c in changes if c.table == table]
        yield from wrap(f"{rows[0].file}" + (f": {title}" if title else ""), "", "  ")
        version: dt.date | None = None
        for change in rows:
            if change.effective_from != version:
                version = change.effective_from
                yield f"  version effective_from {version}"
            yield from wrap(f"{change.kind:<8} {change.row}", "    ", " " * 13)
            # a row that is all key (a permission) reads in full on its first line
            if change.before is not None and change.before != change.row:
                yield from wrap(f"before: {change.before}", " " * 13, " " * 21)
            if change.after is not None and change.after != change.row:
                yield from wrap(f"after:  {change.after}", " " * 13, " " * 21)
