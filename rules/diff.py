"""What changed between two rule sets, row by row, in the words of the tables.

``diff(a, a_on, b, b_on)`` compares two points:

* both dates given — the rows *in force* on ``a_on`` (in ``a``'s files) against those in
  force on ``b_on`` (in ``b``'s files): between 2026-03-31 and 2026-04-01 on the same
  files, exactly the rows of the 2026-04-01 revision. Each change carries the
  ``effective_from`` of the version in force on ``b_on``.
* otherwise — every version of ``a``'s files against the version of ``b``'s files with
  the same ``effective_from``: a version only ``b`` has shows as ADDED rows, one only ``a``
  has as REMOVED rows, a row edited in place as CHANGED.

A row is known by its table's key columns (``TableSpec``: match, identity and range
bounds), shown as its label (``membership=MEMBER, code=PACK30``); a table without key
columns (tax) labels its rows by position (``row 1``). For a CHANGED row ``before`` and
``after`` are the cells that differ (``amount=<old>`` → ``amount=<new>``; a cell left out
reads ``null``); an ADDED or REMOVED row shows all its other cells, or the label itself
for a row that is all key (a permission row). Pure: no files, no clock, no database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from rules.policy import Cell, PolicySet, Row, Table, TableSpec, Version, in_force


class ChangeKind(StrEnum):
    ADDED = "ADDED"
    REMOVED = "REMOVED"
    CHANGED = "CHANGED"


@dataclass(frozen=True)
class RuleChange:
    table: str
    file: str
    effective_from: dt.date
    kind: ChangeKind
    row: str  # the row's key columns, e.g. "membership=MEMBER"
    before: str | None  # None: the row was added
    after: str | None  # None: the row was removed


def key_fields(spec: TableSpec) -> tuple[str, ...]:
    """The columns that tell a table's rows apart, in the order the table declares them."""
    bounds = tuple(f for _q, lo, hi in spec.ranges for f in (lo, hi))
    return tuple(dict.fromkeys(spec.match + spec.identity + bounds))


def cell_text(value: Cell) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _cells(row: Row, names: list[str]) -> str:
    return ", ".join(f"{name}={cell_text(row.get(name))}" for name in names)


def _label(row: Row, keys: tuple[str, ...]) -> str:
    return _cells(row, [k for k in keys if row.get(k) is not None])


def _value_text(row: Row, keys: tuple[str, ...]) -> str:
    rest = [name for name in row if name not in keys]
    return _cells(row, rest) if rest else _label(row, keys)


def _keyed(rows: tuple[Row, ...], keys: tuple[str, ...]) -> dict[str, Row]:
    """Rows by label; rows of a keyless table (or, never after validation, rows sharing a
    label) are told apart by their position."""
    found: dict[str, Row] = {}
    for position, row in enumerate(rows, start=1):
        label = _label(row, keys) if keys else f"row {position}"
        if label in found:
            label = f"{label} (row {position})"
        found[label] = row
    return found


def _rows(
    table: str, file: str, effective_from: dt.date, keys: tuple[str, ...], old: tuple[Row, ...], new: tuple[Row, ...]
) -> list[RuleChange]:
    before, after = _keyed(old, keys), _keyed(new, keys)
    changes: list[RuleChange] = []
    for label, row in after.items():
        was = before.get(label)
        if was is None:
            changes.append(RuleChange(table, file, effective_from, ChangeKind.ADDED, label, None, _value_text(row, keys)))
        elif dict(was) != dict(row):
            differ = [n for n in dict.fromkeys([*was, *row]) if n not in keys and was.get(n) != row.get(n)]
            changes.append(RuleChange(table, file, effective_from, ChangeKind.CHANGED, label,
                                      _cells(was, differ), _cells(row, differ)))
    for label, row in before.items():
        if label not in after:
            changes.append(RuleChange(table, file, effective_from, ChangeKind.REMOVED, label, _value_text(row, keys), None))
    return changes


def _table_names(a: PolicySet, b: PolicySet) -> list[str]:
    return list(dict.fromkeys([*b.tables, *a.tables]))


def _between_dates(name: str, old: Table | None, a_on: dt.date, new: Table | None, b_on: dt.date) -> list[RuleChange]:
    either = new or old
    if either is None:
        return []
    va = in_force(old.versions, a_on) if old else None
    vb = in_force(new.versions, b_on) if new else None
    day = vb.effective_from if vb else va.effective_from if va else b_on
    return _rows(name, either.file, day, key_fields(either.spec), va.rows if va else (), vb.rows if vb else ())


def _between_files(name: str, old: Table | None, new: Table | None) -> list[RuleChange]:
    either = new or old
    if either is None:
        return []
    keys = key_fields(either.spec)
    old_versions: dict[dt.date, Version] = {v.effective_from: v for v in (old.versions if old else [])}
    new_versions: dict[dt.date, Version] = {v.effective_from: v for v in (new.versions if new else [])}
    changes: list[RuleChange] = []
    for day in sorted(old_versions.keys() | new_versions.keys()):
        va, vb = old_versions.get(day), new_versions.get(day)
        changes += _rows(name, either.file, day, keys, va.rows if va else (), vb.rows if vb else ())
    return changes


def diff(a: PolicySet, a_on: dt.date | None, b: PolicySet, b_on: dt.date | None) -> list[RuleChange]:
    """Rows added, removed and changed from ``a`` (on ``a_on``) to ``b`` (on ``b_on``), per
    table (b's order) and version; see the module's docstring for the two modes."""
    changes: list[RuleChange] = []
    for name in _table_names(a, b):
        old, new = a.tables.get(name), b.tables.get(name)
        if a_on is not None and b_on is not None:
            changes += _between_dates(name, old, a_on, new, b_on)
        else:
            changes += _between_files(name, old, new)
    return changes


def last_revision(policy: PolicySet, on: dt.date) -> dt.date | None:
    """The latest date on or before ``on`` on which a version replaced an earlier one (in
    any table); None when every table is still on its first version."""
    dates = [v.effective_from for t in policy.tables.values() for v in t.versions[1:] if v.effective_from <= on]
    return max(dates, default=None)
