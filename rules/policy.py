"""Loading, validating and evaluating the policy rule files (rules/*.yaml).

A rule file is one table: versions with an ``effective_from`` Tokyo date, each holding
rows. The *shape* of each table (which fields a question matches on) is declared here in
``TABLES``; every value — yen, dates, products, deductions — lives in the YAML files.

``load_policy(directory)`` validates everything (JSON Schema, then cross-checks) and
returns a ``PolicySet`` whose tables are compiled into durable_rules rulesets; every
problem names the file, the version and row, and the value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NotRequired, TypeAlias, TypedDict, cast

import jsonschema
import yaml

from rules.actions import ACTIONS  # the actions the code asks about
from rules.engine import JSON, Rule, RuleEngine, default_engine

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
                                        "card_session_minutes", "certificate_print_days",
                                        "terminal_certificate_valid_months", "terminal_certificate_renewable_days",
                                        "naccs_password_view_business_days")),),
        ),
        TableSpec("business_calendar", many=True, identity=("closure",)),
        TableSpec("naccs_industries", many=True, identity=("industry",)),
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
    title: NotRequired[str]
    versions: list[VersionDoc]


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
    digest = hashlib.sha256()
    for path in policy_files(directory):
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
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
    keys = [k for k in ("kind", "membership", "code", "product") if k in row]
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


def _check_table(name: str, spec: TableSpec, versions: list[Version], problems: list[Problem]) -> None:
    for v in versions:
        label = f"version {v.number} (effective_from {v.effective_from})"
        # No two rows may answer the same question.
        for j, row in enumerate(v.rows):
            for k in range(j):
                other = v.rows[k]
                same_keys = all(row[m] == other[m] for m in spec.match)
                if spec.many:
                    if same_keys and all(row[f] == other[f] for f in spec.identity):
                        ids = ", ".join(f"{f}={row[f]}" for f in spec.match + spec.identity)
                        problems.append(Problem(name, f"{label}, row {j + 1}", f"duplicates row {k + 1} ({ids})"))
                elif same_keys and _ranges_overlap(spec, row, other):
                    ids = ", ".join(f"{f}={row[f]}" for f in spec.match) or "the same question"
                    problems.append(Problem(name, f"{label}, row {j + 1}", f"overlaps row {k + 1} ({ids})"))
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


def _check_tiers(name: str, versions: list[Version], problems: list[Problem]) -> None:
    """refund_transfer_costs: tiers start at 0 and leave no gap, so every refund has a cost."""
    for v in versions:
        label = f"version {v.number} (effective_from {v.effective_from})"
        rows = sorted(v.rows, key=lambda r: _int(r, "refund_from"))
        expected: int | None = 0
        gap = False
        for row in rows:
            if row["refund_from"] != expected:
                problems.append(Problem(name, label, f"no row covers refunds from {expected} yen (next row starts at {row['refund_from']})"))
                gap = True
                break
            if row.get("refund_to") is None:
                expected = None
                break
            expected = _int(row, "refund_to") + 1
        if expected is not None and not gap:
            problems.append(Problem(name, label, f"no row covers refunds from {expected} yen upwards (leave refund_to out on the last row)"))


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
    costs = tables.get("refund_transfer_costs")
    if costs:
        _check_tiers(costs.file, costs.versions, problems)
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
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        rows = self.evaluate(table, on, **question)
        with self._cache_lock:
            if len(self._cache) >= self._CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = rows
        return rows

    def lookup_one(self, table: str, on: dt.date, **question: Question) -> RowRef:
        rows = self.lookup(table, on, **question)
        if not rows:
            asked = ", ".join(f"{k}={v}" for k, v in question.items())
            raise NoRuleApplies(f"{self.tables[table].file}: no row applies on {on} to {asked or 'the question'}")
        if len(rows) > 1:  # validation forbids this; never guess between two rows
            raise NoRuleApplies(f"{self.tables[table].file}: {len(rows)} rows apply on {on} to {question}")
        return rows[0]


def load_policy(directory: Path | str | None = None, engine: RuleEngine | None = None) -> PolicySet:
    """Read, validate and compile the rule files; raise ``RulesInvalid`` with every problem."""
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
        if errors:
            for err in errors:
                value = err.instance if not isinstance(err.instance, (dict, list)) else None
                shown = f" (value {value!r})" if value is not None or err.validator == "type" else ""
                problems.append(Problem(file, _describe_path(doc, err.absolute_path), f"{err.message}{shown}"))
            continue
        valid = cast(RuleFileDoc, doc)  # no schema errors: the document has the schema's shape
        versions = _parse_versions(file, valid, problems)
        if versions is None:
            continue
        _check_table(file, spec, versions, problems)
        tables[name] = Table(spec, file, valid.get("title"), versions)
    _cross_check(tables, problems)  # over the tables that validated on their own
    if problems:
        raise RulesInvalid(problems)
    for table in tables.values():
        _compile(table, version, engine)
    return PolicySet(directory, version, tables, engine)
