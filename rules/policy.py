"""Loading, validating and evaluating the policy rule files (rules/*.yaml).

A rule file is one table: versions with an ``effective_from`` Tokyo date, each holding
rows. The *shape* of each table (which fields a question matches on) is declared here in
``TABLES``; every value — yen, dates, products, deductions — lives in the YAML files.

``load_policy(directory)`` validates everything (JSON Schema, then cross-checks) and
returns a ``PolicySet`` whose tables are compiled into durable_rules rulesets; every
problem names the file, the version and row, and the value.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hashlib
import itertools
import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NotRequired, TypeAlias, TypedDict, cast

import jsonschema
import yaml

from rules.actions import ACTIONS  # the actions the code asks about
from rules.engine import JSON, Rule, RuleEngine, default_engine
from rules.mail_names import check_templates  # the mails the code sends and their placeholders
from rules.national_holidays import closed_by_nature  # dated calendar entries are checked against it

SCHEMA_PATH = Path(__file__).parent / "schema" / "rules.schema.json"
DEFAULT_RULES_DIR = Path(__file__).parent


@dataclass(frozen=True)
class TableSpec:
    """How a table is asked: ``match`` fields compared for equality with the question,
    ``ranges`` as (question field, row lower-bound field, row upper-bound field, inclusive),
    ``many`` when a question may return several rows, ``identity`` the fields that tell
    those rows apart."""

    name: str
    match: tuple[str, ...] = ()
    ranges: tuple[tuple[str, str, str], ...] = ()
    many: bool = False
    identity: tuple[str, ...] = ()
    complete: tuple[tuple[str, tuple[str, ...]], ...] = ()  # every version has a row for each combination
    wildcard: str | None = None  # a match field holding this value matches every question


MEMBERSHIPS = ("MEMBER", "NON_MEMBER")
REGISTRATION_KINDS = ("APPLICANT", "AGENT")

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec("application_fees", match=("membership",), complete=(("membership", MEMBERSHIPS),)),
        TableSpec("coupon_products", match=("membership",), many=True, identity=("code",)),
        TableSpec(
            "registration_fees",
            match=("kind", "membership"),
            complete=(("kind", REGISTRATION_KINDS), ("membership", MEMBERSHIPS)),
        ),
        TableSpec("tax"),
        TableSpec("pack_refund_deductions", match=("product",)),
        TableSpec("refund_transfer_costs", ranges=(("refund", "refund_from", "refund_to"),)),
        TableSpec(
            "limits",
            match=("limit",),
            complete=(("limit", ("signers_per_registration", "registration_term_months", "bank_transfer_valid_days",
                                        "card_session_minutes", "subaccount_activation_hours", "certificate_print_days",
                                        "terminal_certificate_valid_months", "terminal_certificate_renewable_days",
                                        "naccs_password_view_business_days")),),
        ),
        TableSpec("business_calendar", many=True, identity=("closure", "working_day", "date")),
        TableSpec("naccs_industries", many=True, identity=("industry",)),
        TableSpec("mail_templates", match=("template",)),  # rules/mail_names.py: the mails and their placeholders
        TableSpec(
            "permissions",
            match=("action", "kind", "registration", "relation"),
            many=True,
            identity=("action", "kind", "registration", "relation"),
            wildcard="any",
        ),
    )
}


# What one cell of a validated row holds (rules.schema.json allows no other types), and
# what a question asks with.
Cell: TypeAlias = str | int | bool | None
Row: TypeAlias = Mapping[str, Cell]
Question: TypeAlias = str | int


class VersionDoc(TypedDict):
    effective_from: str
    source: NotRequired[str]
    rows: list[dict[str, Cell]]


class RuleFileDoc(TypedDict):
    """A rule file as rules.schema.json admits it."""

    table: str
    hit_policy: str
    title: NotRequired[str]
    versions: list[VersionDoc]


# How a table's rows answer a question (the file's `hit_policy`). unique: at most one row
# matches any question — overlaps are refused, gaps in an enumerable domain too. first: the
# first matching row in file order answers — overlaps allowed, a row that can never be
# reached is refused. collect: every matching row applies (permissions: any row allows).
HIT_POLICIES = ("unique", "first", "collect")


def fitting_hit_policies(spec: TableSpec) -> tuple[str, ...]:
    """The hit policies the code can ask ``spec`` by: one answer, or every matching row."""
    return ("collect",) if spec.many else ("unique", "first")


def _int(row: Row, key: str) -> int:
    """A whole-number cell of a validated row (the schema has checked it)."""
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key} is {value!r}, not a whole number")
    return value


def _optional_int(row: Row, key: str) -> int | None:
    return None if row.get(key) is None else _int(row, key)


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    file: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.message}" if self.where else f"{self.file}: {self.message}"


class RulesInvalid(Exception):
    """The rule files do not validate; ``problems`` says where and why."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Version:
    number: int  # 1-based, in file order
    effective_from: dt.date
    effective_until: dt.date | None  # last day in force; None = open-ended
    source: str | None
    rows: tuple[Row, ...]


RowKey: TypeAlias = tuple[str, int, int]  # (table, version, row), both 1-based


@dataclass(frozen=True)
class RowRef:
    """A row that answered a question, with everything needed to explain the answer."""

    table: str
    file: str
    version: int
    row: int  # 1-based within its version
    effective_from: dt.date
    effective_until: dt.date | None
    source: str | None
    values: Row

    @property
    def note(self) -> str | None:
        return self.optional_text("note")

    @property
    def key(self) -> RowKey:
        """(table, version, row): which row of which version this is."""
        return (self.table, self.version, self.row)

    def _wrong(self, name: str, expected: str) -> TypeError:
        where = f"{self.file} version {self.version} row {self.row}"
        return TypeError(f"{where}: {name} is {self.values.get(name)!r}, not {expected}")

    def integer(self, name: str) -> int:
        """A whole-number cell (yen, a count); the schema guarantees the type."""
        value = self.values.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(name, "a whole number")
        return value

    def optional_integer(self, name: str) -> int | None:
        """A whole-number cell that may be left empty (null: not offered)."""
        return None if self.values.get(name) is None else self.integer(name)

    def text(self, name: str) -> str:
        value = self.values.get(name)
        if not isinstance(value, str):
            raise self._wrong(name, "text")
        return value

    def optional_text(self, name: str) -> str | None:
        return None if self.values.get(name) is None else self.text(name)

    def flag(self, name: str) -> bool:
        value = self.values.get(name)
        if not isinstance(value, bool):
            raise self._wrong(name, "true or false")
        return value


@dataclass
class Table:
    spec: TableSpec
    file: str
    title: str | None
    versions: list[Version]
    hit_policy: str = "unique"
    ruleset: str = ""
    _rows_by_id: dict[str, RowRef] = field(default_factory=dict)


class PolicyYamlLoader(yaml.SafeLoader):
    """YAML as policy staff mean it: dates stay the strings they typed (validated later),
    and only true/false are booleans — YAML 1.1 would read `on`, `no`, `yes` as booleans."""


PolicyYamlLoader.yaml_implicit_resolvers = {
    key: [
        (tag, regex)
        for tag, regex in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")
    ]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    PolicyYamlLoader.yaml_implicit_resolvers.setdefault(_first, []).append(
        ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"))
    )


def read_yaml(text: str) -> object:
    """A YAML document, not yet validated: its shape is known only after the schema check."""
    loaded: object = yaml.load(text, Loader=PolicyYamlLoader)
    return loaded


def policy_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.is_file())


def fingerprint(directory: Path) -> str:
    """The rules version: a hash of the policy files' names and content."""
    return fingerprint_of({path.name: path.read_bytes() for path in policy_files(directory)})


def fingerprint_of(files: Mapping[str, bytes]) -> str:
    """The rules version of files given by name (the rules history stores them so)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(files[name])
        digest.update(b"\0")
    return digest.hexdigest()[:12]


_schema_validator: jsonschema.Draft202012Validator | None = None


def _validator() -> jsonschema.Draft202012Validator:
    global _schema_validator
    if _schema_validator is None:
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
        _schema_validator = jsonschema.Draft202012Validator(schema)
    return _schema_validator


def _describe_path(doc: object, steps: Iterable[str | int]) -> str:
    """Words for a JSON path: 'version 2 (effective_from 2026-04-01), row 1 (membership=MEMBER), amount'."""
    parts: list[str] = []
    path = list(steps)
    node = doc
    i = 0
    while i < len(path):
        key = path[i]
        idx = path[i + 1] if i + 1 < len(path) else None
        if key == "versions" and isinstance(idx, int):
            node = node["versions"][idx] if isinstance(node, dict) else None
            eff = node.get("effective_from") if isinstance(node, dict) else None
            parts.append(f"version {idx + 1}" + (f" (effective_from {eff})" if eff is not None else ""))
            i += 2
            continue
        if key == "rows" and isinstance(idx, int):
            node = node["rows"][idx] if isinstance(node, dict) else None
            parts.append(f"row {idx + 1}" + _row_label(node))
            i += 2
            continue
        parts.append(str(key))
        node = node.get(key) if isinstance(node, dict) else None
        i += 1
    return ", ".join(parts)


def _row_label(row: object) -> str:
    if not isinstance(row, dict):
        return ""
    keys = [k for k in ("kind", "membership", "code", "product", "limit", "closure", "working_day") if k in row]
    return " (" + ", ".join(f"{k}={row[k]}" for k in keys) + ")" if keys else ""


def _read(path: Path, problems: list[Problem]) -> object:
    try:
        return read_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = exc.problem_mark if isinstance(exc, yaml.MarkedYAMLError) else None
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem if isinstance(exc, yaml.MarkedYAMLError) and exc.problem is not None else exc
        problems.append(Problem(path.name, where, f"not valid YAML: {problem}"))
    except UnicodeDecodeError as exc:
        problems.append(Problem(path.name, "", f"not UTF-8 text: {exc}"))
    return None


def _parse_versions(name: str, doc: RuleFileDoc, problems: list[Problem]) -> list[Version] | None:
    versions: list[Version] = []
    dates: list[dt.date] = []
    ok = True
    for i, raw in enumerate(doc["versions"]):
        value = raw["effective_from"]
        try:
            dates.append(dt.date.fromisoformat(value))
        except ValueError:
            problems.append(Problem(name, f"version {i + 1}", f"effective_from {value!r} is not a calendar date (YYYY-MM-DD)"))
            ok = False
    if not ok:
        return None
    for i in range(1, len(dates)):
        if dates[i] <= dates[i - 1]:
            problems.append(
                Problem(
                    name,
                    f"version {i + 1} (effective_from {dates[i]})",
                    f"versions must be in increasing effective_from order; version {i} starts {dates[i - 1]}",
                )
            )
            ok = False
    if not ok:
        return None
    for i, raw in enumerate(doc["versions"]):
        until = dates[i + 1] - dt.timedelta(days=1) if i + 1 < len(dates) else None
        versions.append(Version(i + 1, dates[i], until, raw.get("source"), tuple(raw["rows"])))
    return versions


def _ranges_overlap(spec: TableSpec, a: Row, b: Row) -> bool:
    for _q, lo, hi in spec.ranges:
        a_lo, a_hi = _int(a, lo), _optional_int(a, hi)
        b_lo, b_hi = _int(b, lo), _optional_int(b, hi)
        if (a_hi is not None and a_hi < b_lo) or (b_hi is not None and b_hi < a_lo):
            return False
    return True


def _same_keys(spec: TableSpec, a: Row, b: Row) -> bool:
    """Whether some question matches both rows on the match fields (a wildcard matches all)."""
    return all(a[m] == b[m] or (spec.wildcard is not None and spec.wildcard in (a[m], b[m])) for m in spec.match)


def _answers_all_of(spec: TableSpec, earlier: Row, row: Row) -> bool:
    """Whether ``earlier`` matches every question ``row`` matches, on the match fields."""
    return all(earlier[m] == row[m] or (spec.wildcard is not None and earlier[m] == spec.wildcard) for m in spec.match)


def _contains(spec: TableSpec, outer: Row, inner: Row) -> bool:
    """Whether every range of ``outer`` holds the same range of ``inner``."""
    for _q, lo, hi in spec.ranges:
        o_hi, i_hi = _optional_int(outer, hi), _optional_int(inner, hi)
        if _int(outer, lo) > _int(inner, lo) or (o_hi is not None and (i_hi is None or i_hi > o_hi)):
            return False
    return True


def _shadowing_rows(spec: TableSpec, rows: tuple[Row, ...], j: int) -> list[int]:
    """hit_policy first: the earlier rows (0-based) that together answer every question row
    ``j`` would, so row ``j`` is never hit; empty when some question reaches it."""
    row = rows[j]
    above = [k for k in range(j) if _answers_all_of(spec, rows[k], row)]
    if not spec.ranges:
        return above[:1]
    if len(spec.ranges) > 1:  # several ranges: only a single row containing all of them shadows
        return [k for k in above if _contains(spec, rows[k], row)][:1]
    _q, lo, hi = spec.ranges[0]
    start, end = _int(row, lo), _optional_int(row, hi)
    reached: int | None = start  # the lowest value of row j's range not yet answered above
    used: list[int] = []
    for k in sorted(above, key=lambda k: _int(rows[k], lo)):
        if reached is None or (end is not None and reached > end):
            break
        k_lo, k_hi = _int(rows[k], lo), _optional_int(rows[k], hi)
        if k_lo <= reached and (k_hi is None or k_hi >= reached):
            reached = None if k_hi is None else k_hi + 1
            used.append(k)
    covered = reached is None or (end is not None and reached > end)
    return sorted(used) if covered else []


def _check_range_gaps(name: str, spec: TableSpec, v: Version, problems: list[Problem]) -> None:
    """unique/first: for each question on the match fields, the rows' ranges start at 0 and
    leave no hole, so every amount has an answer (refund_transfer_costs: every refund a cost)."""
    label = f"version {v.number} (effective_from {v.effective_from})"
    groups: dict[tuple[Cell, ...], list[Row]] = {}
    for row in v.rows:
        groups.setdefault(tuple(row[m] for m in spec.match), []).append(row)
    for q, lo, hi in spec.ranges:
        for rows in groups.values():
            expected: int | None = 0
            for row in sorted(rows, key=lambda r: _int(r, lo)):
                if expected is None:
                    break
                if _int(row, lo) > expected:
                    problems.append(Problem(name, label, f"no row covers {q}s from {expected} yen (next row starts at {row[lo]})"))
                    expected = None
                    break
                upper = _optional_int(row, hi)
                expected = None if upper is None else max(expected, upper + 1)
            else:
                if expected is not None:
                    problems.append(Problem(name, label, f"no row covers {q}s from {expected} yen upwards (leave {hi} out on the last row)"))


def _check_table(name: str, spec: TableSpec, hit_policy: str, versions: list[Version], problems: list[Problem]) -> None:
    for v in versions:
        label = f"version {v.number} (effective_from {v.effective_from})"
        for j, row in enumerate(v.rows):
            if hit_policy == "first":
                shadows = _shadowing_rows(spec, v.rows, j)
                if shadows:
                    above = f"row {shadows[0] + 1} above it answers" if len(shadows) == 1 else (
                        f"rows {', '.join(str(k + 1) for k in shadows)} above it answer")
                    problems.append(Problem(name, f"{label}, row {j + 1}",
                                            f"never hit: {above} every question it would (hit_policy first)"))
                continue
            for k in range(j):
                other = v.rows[k]
                same_keys = _same_keys(spec, row, other)
                if hit_policy == "collect":  # every matching row applies; only an exact repeat is a mistake
                    if same_keys and all(row.get(f) == other.get(f) for f in spec.identity):  # a field a row shape lacks is None
                        ids = ", ".join(f"{f}={row[f]}" for f in spec.match + spec.identity if f in row)
                        problems.append(Problem(name, f"{label}, row {j + 1}", f"duplicates row {k + 1} ({ids})"))
                elif same_keys and _ranges_overlap(spec, row, other):  # unique: no two rows answer one question
                    ids = ", ".join(f"{f}={row[f]}" for f in spec.match) or "the same question"
                    problems.append(Problem(name, f"{label}, row {j + 1}", f"overlaps row {k + 1} ({ids})"))
        if hit_policy != "collect" and spec.ranges:
            _check_range_gaps(name, spec, v, problems)
        for _q, lo, hi in spec.ranges:
            for j, row in enumerate(v.rows):
                upper = _optional_int(row, hi)
                if upper is not None and upper < _int(row, lo):
                    problems.append(
                        Problem(name, f"{label}, row {j + 1}", f"{hi} {upper} is below {lo} {row[lo]}")
                    )
        if spec.complete:
            fields = [f for f, _ in spec.complete]
            for combo in itertools.product(*(vals for _, vals in spec.complete)):
                if not any(all(row[f] == c for f, c in zip(fields, combo)) for row in v.rows):
                    missing = ", ".join(f"{f}={c}" for f, c in zip(fields, combo))
                    problems.append(Problem(name, label, f"no row for {missing}"))


def calendar_closure(rows: Iterable[Row], day: dt.date) -> str | None:
    """The business_calendar closure (yearly MM-DD range or dated) that closes ``day``, by name."""
    found = closing_row(rows, day)
    return str(found["closure"]) if found is not None else None


def closing_row(rows: Iterable[Row], day: dt.date) -> Row | None:
    """The business_calendar closure row (yearly MM-DD range or dated) that closes ``day``."""
    md = f"{day:%m-%d}"
    for row in rows:
        if row.get("closure") is None:
            continue  # a dated working day
        if row.get("date") is not None:
            if row["date"] == day.isoformat():
                return row
            continue
        start, end = str(row["from"]), str(row["to"])
        if start <= md <= end if start <= end else (md >= start or md <= end):
            return row
    return None


def _check_dated_days(table: Table, problems: list[Problem]) -> None:
    """business_calendar: a dated entry must change its date — a closure on a business day, a
    working day on a closed one — and fall inside its version, or it silently does nothing."""
    for v in table.versions:
        label = f"version {v.number} (effective_from {v.effective_from})"
        yearly = [r for r in v.rows if r.get("date") is None]
        closures: dict[str, int] = {}
        for j, row in enumerate(v.rows):
            if row.get("date") is None:
                continue
            where = f"{label}, row {j + 1}{_row_label(row)}"
            try:
                day = dt.date.fromisoformat(str(row["date"]))
            except ValueError:
                problems.append(Problem(table.file, where, f"date {row['date']!r} is not a calendar date (YYYY-MM-DD)"))
                continue
            if (day < v.effective_from and v.number > 1) or (v.effective_until is not None and day > v.effective_until):
                until = f" to {v.effective_until}" if v.effective_until else ""
                side = "before" if day < v.effective_from else "after"
                problems.append(Problem(table.file, where, f"{day} is {side} this version's effective_from {v.effective_from}{until}; "
                                                           "put it in the version in force on that date"))
                continue
            closed = closed_by_nature(day) or calendar_closure(yearly, day)
            if row.get("closure") is not None:
                if closed:
                    problems.append(Problem(table.file, where, f"{day} is already closed ({closed}); a dated closure must fall on a business day"))
                if day.isoformat() in closures:
                    problems.append(Problem(table.file, where, f"{day} is also a dated closure (row {closures[day.isoformat()]})"))
                closures.setdefault(day.isoformat(), j + 1)
            elif not closed:
                problems.append(Problem(table.file, where, f"{day} is already a business day; a dated working day must fall on a closed day"))
        for j, row in enumerate(v.rows):
            other = closures.get(str(row.get("date")))
            if row.get("working_day") is not None and other is not None:
                problems.append(Problem(table.file, f"{label}, row {j + 1}{_row_label(row)}",
                                        f"{row['date']} is also a dated closure (row {other})"))


def in_force(versions: list[Version], on: dt.date) -> Version:
    chosen = versions[0]
    for v in versions:
        if v.effective_from <= on:
            chosen = v
    return chosen


def _cross_check(tables: dict[str, Table], problems: list[Problem]) -> None:
    products = tables.get("coupon_products")
    if products:
        for v in products.versions:
            label = f"version {v.number} (effective_from {v.effective_from})"
            singles = {r["membership"]: r for r in v.rows if r["code"] == "SINGLE"}
            for j, row in enumerate(v.rows):
                where = f"{label}, row {j + 1}{_row_label(row)}"
                if _int(row, "price") > _int(row, "face_value"):
                    problems.append(Problem(products.file, where, f"price {row['price']} exceeds face_value {row['face_value']}"))
                single = singles.get(row["membership"])
                if single is None:
                    problems.append(Problem(products.file, where, f"no SINGLE product for {row['membership']} in this version to value it"))
                    continue
                if row["code"] == "SINGLE" and (row["coupons"] != 1 or row["face_value"] != row["price"]):
                    problems.append(Problem(products.file, where, "SINGLE must be 1 coupon with face_value = price"))
                expected = _int(row, "coupons") * _int(single, "price")
                if row["face_value"] != expected:
                    problems.append(
                        Problem(
                            products.file,
                            where,
                            f"face_value {row['face_value']} ≠ coupons {row['coupons']} × SINGLE price {single['price']} = {expected}",
                        )
                    )
    deductions = tables.get("pack_refund_deductions")
    if products and deductions:
        for v in products.versions:
            for j, row in enumerate(v.rows):
                if row["coupons"] == 1:
                    continue
                dv = in_force(deductions.versions, v.effective_from)
                match = [r for r in dv.rows if r["product"] == row["code"]]
                where = f"version {v.number} (effective_from {v.effective_from}), row {j + 1}{_row_label(row)}"
                if not match:
                    problems.append(
                        Problem(products.file, where, f"{deductions.file} has no deduction for {row['code']} on {v.effective_from}")
                    )
                elif _int(match[0], "deduction") != _int(row, "face_value") - _int(row, "price"):
                    problems.append(
                        Problem(
                            deductions.file,
                            f"version {dv.number} (effective_from {dv.effective_from}), product={row['code']}",
                            f"deduction {match[0]['deduction']} ≠ face_value − price of {row['code']} in "
                            f"{products.file} version {v.number} ({row['face_value']} − {row['price']} = "
                            f"{_int(row, 'face_value') - _int(row, 'price')})",
                        )
                    )
    business_calendar = tables.get("business_calendar")
    if business_calendar:
        _check_dated_days(business_calendar, problems)
    permissions = tables.get("permissions")
    if permissions:
        for v in permissions.versions:
            for j, row in enumerate(v.rows):
                if row["action"] not in ACTIONS:
                    problems.append(
                        Problem(
                            permissions.file,
                            f"version {v.number} (effective_from {v.effective_from}), row {j + 1}",
                            f"unknown action {row['action']!r}; known: {', '.join(sorted(ACTIONS))}",
                        )
                    )


# --------------------------------------------------------------------------- compile


def _compile(table: Table, version_hash: str, engine: RuleEngine) -> None:
    spec = table.spec
    rules: list[Rule] = []
    for i, v in enumerate(table.versions):
        for j, row in enumerate(v.rows):
            terms: list[dict[str, JSON]] = [{"q": spec.name}]
            if i > 0:
                terms.append({"$gte": {"on": v.effective_from.isoformat()}})
            if i + 1 < len(table.versions):
                terms.append({"$lt": {"on": table.versions[i + 1].effective_from.isoformat()}})
            for m in spec.match:
                if spec.wildcard is None or row[m] != spec.wildcard:
                    terms.append({m: row[m]})
            for q, lo, hi in spec.ranges:
                terms.append({"$gte": {q: row[lo]}})
                if row.get(hi) is not None:
                    terms.append({"$lte": {q: row[hi]}})
            rule_id = f"v{v.number}r{j + 1}"
            rules.append(Rule(rule_id, {"$and": terms}))
            table._rows_by_id[rule_id] = RowRef(
                spec.name, table.file, v.number, j + 1, v.effective_from, v.effective_until, v.source, dict(row)
            )
    table.ruleset = engine.register(f"{spec.name}@{version_hash}", rules)


# --------------------------------------------------------------------------- public


class NoRuleApplies(LookupError):
    """No row of a table answers the question (a validated table only lacks optional rows)."""


class PolicySet:
    """One validated version of all policy files, compiled into durable_rules rulesets.

    ``lookup`` is the only evaluation path; results are cached per (question) — the
    set itself is one rules version, so the cache key is (rules version, inputs).
    """

    _CACHE_LIMIT = 20_000

    def __init__(self, directory: Path, version: str, tables: dict[str, Table], engine: RuleEngine):
        self.directory = directory
        self.version = version
        self.tables = tables
        self._engine = engine
        self._cache: dict[tuple[str, dt.date, tuple[tuple[str, Question], ...]], tuple[RowRef, ...]] = {}
        self._cache_lock = threading.Lock()

    def evaluate(self, table: str, on: dt.date, **question: Question) -> tuple[RowRef, ...]:
        """Every row of ``table`` that applies on ``on`` to ``question``, uncached."""
        t = self.tables[table]
        fact: dict[str, JSON] = {"q": table, "on": on.isoformat(), **question}
        ids = self._engine.matches(t.ruleset, fact)
        return tuple(sorted((t._rows_by_id[i] for i in ids), key=lambda r: (r.version, r.row)))

    def lookup(self, table: str, on: dt.date, **question: Question) -> tuple[RowRef, ...]:
        key = (table, on, tuple(sorted(question.items())))
        rows = self._cache.get(key)
        if rows is None:
            rows = self.evaluate(table, on, **question)
            with self._cache_lock:
                if len(self._cache) >= self._CACHE_LIMIT:
                    self._cache.clear()
                self._cache[key] = rows
        hits = _recorded_hits.get()
        if hits is not None:  # a golden run: note the rows that decided (first: only the first)
            hits.update(r.key for r in (rows[:1] if self.tables[table].hit_policy == "first" else rows))
        return rows

    def lookup_one(self, table: str, on: dt.date, **question: Question) -> RowRef:
        rows = self.lookup(table, on, **question)
        if not rows:
            asked = ", ".join(f"{k}={v}" for k, v in question.items())
            raise NoRuleApplies(f"{self.tables[table].file}: no row applies on {on} to {asked or 'the question'}")
        if len(rows) > 1 and self.tables[table].hit_policy != "first":  # validation forbids this; never guess
            raise NoRuleApplies(f"{self.tables[table].file}: {len(rows)} rows apply on {on} to {question}")
        return rows[0]  # hit_policy first: the first in file order (one version is in force on a date)


# The rows golden questions hit, while ``recording_hits`` is active in this context.
_recorded_hits: contextvars.ContextVar[set[RowKey] | None] = contextvars.ContextVar("rule_hits", default=None)


@contextlib.contextmanager
def recording_hits() -> Iterator[set[RowKey]]:
    """Collect the key of every row a lookup returns in this context (``rules test`` coverage)."""
    hits: set[RowKey] = set()
    token = _recorded_hits.set(hits)
    try:
        yield hits
    finally:
        _recorded_hits.reset(token)


# The schema keywords that bound a value (rules.schema.json: yen, counts, every limit).
BOUND_KEYWORDS = ("maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum")


def _tightest_bounds(errors: list[jsonschema.ValidationError]) -> list[jsonschema.ValidationError]:
    """One bound problem per value: a limit breaking both the general bound and its own is
    told its own (the tighter)."""
    tightest: dict[tuple[str, ...], jsonschema.ValidationError] = {}
    kept: list[jsonschema.ValidationError] = []
    for err in errors:
        if err.validator not in ("maximum", "minimum"):
            kept.append(err)
            continue
        key = (str(err.validator), *(str(x) for x in err.absolute_path))
        other = tightest.get(key)
        bound, other_bound = cast(float, err.validator_value), cast(float, other.validator_value) if other else 0.0
        tighter = other is None or (bound < other_bound if err.validator == "maximum" else bound > other_bound)
        if tighter:
            tightest[key] = err
    return sorted([*kept, *tightest.values()], key=lambda e: [str(x) for x in e.absolute_path])


def _schema_message(err: jsonschema.ValidationError) -> str:
    """A schema problem in words: the message, the value, and for a bound the bound itself."""
    value = err.instance if not isinstance(err.instance, (dict, list)) else None
    if err.validator in BOUND_KEYWORDS:
        described = err.schema.get("description") if isinstance(err.schema, dict) else None
        side = "above" if "aximum" in str(err.validator) else "below"
        bound = f"{'at most' if side == 'above' else 'at least'} {err.validator_value}"
        return f"{value!r} is {side} the bound ({bound}{f'; {described}' if described else ''})"
    shown = f" (value {value!r})" if value is not None or err.validator == "type" else ""
    return f"{err.message}{shown}"


def load_policy(directory: Path | str | None = None, engine: RuleEngine | None = None,
                bounded: bool = True) -> PolicySet:
    """Read, validate and compile the rule files; raise ``RulesInvalid`` with every problem.
    ``bounded=False`` (a version from the rules history, loaded again to reprint or refund
    what was priced under it) skips the schema's bounds: that version went live under the
    bounds of its release, and what was charged under it must still be computable."""
    directory = Path(directory) if directory is not None else DEFAULT_RULES_DIR
    engine = engine or default_engine()
    tables: dict[str, Table] = {}
    problems: list[Problem] = []
    if not directory.is_dir():
        raise RulesInvalid([Problem(str(directory), "", "rules directory does not exist")])
    version = fingerprint(directory)
    found = {p.stem: p for p in policy_files(directory)}
    for stem, extra in found.items():
        if stem not in TABLES:
            problems.append(Problem(extra.name, "", f"unknown rule file; expected one of: {', '.join(f'{t}.yaml' for t in TABLES)}"))
    validator = _validator()
    for name, spec in TABLES.items():
        path = found.get(name)
        file = f"{name}.yaml"
        if path is None:
            problems.append(Problem(file, "", "rule file is missing"))
            continue
        doc = _read(path, problems)
        if doc is None:
            if not any(p.file == file for p in problems):
                problems.append(Problem(file, "", "file is empty"))
            continue
        if isinstance(doc, dict) and doc.get("table") != name:
            problems.append(Problem(file, "table", f"says {doc.get('table')!r} but the file name says {name!r}"))
            continue
        errors = sorted(validator.iter_errors(doc), key=lambda e: [str(x) for x in e.absolute_path])
        if not bounded:  # a stored version loaded again: it went live under the bounds of its day
            errors = [err for err in errors if err.validator not in BOUND_KEYWORDS]
        errors = _tightest_bounds(errors)
        if errors:
            for err in errors:
                problems.append(Problem(file, _describe_path(doc, err.absolute_path), _schema_message(err)))
            continue
        valid = cast(RuleFileDoc, doc)  # no schema errors: the document has the schema's shape
        versions = _parse_versions(file, valid, problems)
        if versions is None:
            continue
        hit_policy = valid["hit_policy"]
        if hit_policy not in fitting_hit_policies(spec):
            asks = "every matching row" if spec.many else "one answer"
            problems.append(Problem(file, f"hit_policy: {hit_policy}",
                                    f"the code takes {asks} from this table; declare {' or '.join(fitting_hit_policies(spec))}"))
            continue
        _check_table(file, spec, hit_policy, versions, problems)
        if name == "mail_templates":
            rows = [v.rows for v in versions]
            problems.extend(Problem(file, where, message) for where, message in check_templates(path.read_text(encoding="utf-8"), rows))
        tables[name] = Table(spec, file, valid.get("title"), versions, hit_policy)
    _cross_check(tables, problems)  # over the tables that validated on their own
    if problems:
        raise RulesInvalid(problems)
    for table in tables.values():
        _compile(table, version, engine)
    return PolicySet(directory, version, tables, engine)
