"""Golden tables: rules/tests/*.yaml hold questions with the answers policy staff expect.

``run_golden(policy, directory)`` asks every question through the same functions the API
uses and reports each case that disagrees, with its file and case number. Each result
records the rule rows its question hit; ``uncovered_rows`` lists the rows of every version
that no golden case hits (a policy change without a golden row is incomplete).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rules import calendar, fees, mail
from rules.limits import limit
from rules.permissions import Actor, is_allowed
from rules.policy import TABLES, PolicySet, Row, RowKey, read_yaml, recording_hits

# One golden case as written in rules/tests/*.yaml: `ask`, `expect` and the inputs.
Case = Mapping[str, object]


def _text(case: Case, key: str) -> str:
    value = case.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be text, got {value!r}")
    return value


def _number(case: Case, key: str) -> int:
    value = case.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be a whole number, got {value!r}")
    return value


def _date(case: Case, key: str) -> dt.date:
    value = case.get(key)
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _texts(case: Case, key: str) -> set[str]:
    value = case.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of text, got {value!r}")
    return {str(v) for v in value}


def _products(p: PolicySet, case: Case) -> list[dict[str, object]]:
    return [
        {"code": x.code, "coupons": x.coupons, "price": x.price, "face_value": x.face_value, "tax": x.tax}
        for x in fees.coupon_products(p, _date(case, "on"), _text(case, "membership"))
    ]


def _allowed(p: PolicySet, c: Case) -> bool:
    registration = _text(c, "registration")
    actor = Actor(0, _text(c, "kind"), None if registration == "none" else registration)
    return is_allowed(p, _date(c, "on"), actor, _text(c, "action"), _texts(c, "relations"))


def _industries(p: PolicySet, c: Case) -> dict[str, bool]:
    """Every NACCS 業種 in force and whether it takes management statistics free of charge."""
    return {r.text("industry"): r.flag("free_statistics") for r in p.lookup("naccs_industries", _date(c, "on"))}


def _mail(p: PolicySet, c: Case) -> dict[str, str]:
    """A mail of mail_templates.yaml rendered with the case's ``values``."""
    values = c.get("values") or {}
    if not isinstance(values, dict):
        raise ValueError(f"values must be a mapping of placeholder: value, got {values!r}")
    rendered = mail.render(p, _date(c, "on"), _text(c, "template"), values)
    return {"subject": rendered.subject, "body": rendered.body}


QUESTIONS: dict[str, Callable[[PolicySet, Case], object]] = {
    "application_fee": lambda p, c: fees.application_fee(p, _date(c, "on"), _text(c, "membership")).value,
    "registration_fee": lambda p, c: fees.registration_fee(p, _date(c, "on"), _text(c, "kind"), _text(c, "membership")).value,
    "coupon_products": _products,
    "tax_part": lambda p, c: fees.tax_part(p, _date(c, "on"), _number(c, "price")),
    "lot_refund": lambda p, c: fees.lot_refund(
        p, _date(c, "bought_on"), _text(c, "membership"), _text(c, "product"), _number(c, "unused")
    ),
    "refund_after_costs": lambda p, c: fees.refund_after_costs(p, _date(c, "on"), _number(c, "refund")),
    "limit": lambda p, c: limit(p, _date(c, "on"), _text(c, "limit")),
    "business_day": lambda p, c: calendar.is_business_day(p, _date(c, "on")),
    "closed_because": lambda p, c: calendar.why_closed(p, _date(c, "on")),  # null on a business day
    "next_business_day": lambda p, c: calendar.next_business_day(p, _date(c, "on")).isoformat(),
    "add_business_days": lambda p, c: calendar.add_business_days(p, _date(c, "on"), _number(c, "days")).isoformat(),
    "allowed": _allowed,
    "naccs_industries": _industries,
    "mail": _mail,
}


@dataclass(frozen=True)
class GoldenResult:
    file: str
    number: int
    case: Case
    actual: object
    error: str | None = None
    hits: frozenset[RowKey] = field(default=frozenset())  # the rule rows the question hit

    @property
    def passed(self) -> bool:
        return self.error is None and self.actual == self.case.get("expect")

    def describe(self) -> str:
        inputs = ", ".join(f"{k}={v}" for k, v in self.case.items() if k not in ("ask", "expect"))
        head = f"{self.file} case {self.number}: {self.case.get('ask')}({inputs})"
        if self.error:
            return f"{head}: {self.error}"
        return f"{head}: expected {self.case.get('expect')!r}, got {self.actual!r}"


def golden_files(directory: Path) -> list[Path]:
    return sorted((directory / "tests").glob("*.yaml"))


def run_golden(policy: PolicySet, directory: Path | None = None) -> list[GoldenResult]:
    directory = Path(directory) if directory is not None else policy.directory
    results: list[GoldenResult] = []
    for path in golden_files(directory):
        cases = read_yaml(path.read_text(encoding="utf-8")) or []
        if not isinstance(cases, list):
            results.append(GoldenResult(path.name, 0, {}, None, "a golden file is a list of cases"))
            continue
        for number, case in enumerate(cases, start=1):
            ask = case.get("ask") if isinstance(case, dict) else None
            question = QUESTIONS.get(ask) if isinstance(ask, str) else None
            if question is None or not isinstance(case, dict):
                results.append(GoldenResult(path.name, number, case if isinstance(case, dict) else {}, None,
                                            f"unknown question {ask!r}; known: {', '.join(QUESTIONS)}"))
                continue
            with recording_hits() as hits:
                try:
                    actual = question(policy, case)
                except Exception as exc:  # a golden row must report, not stop the run
                    results.append(GoldenResult(path.name, number, case, None, f"{type(exc).__name__}: {exc}",
                                                frozenset(hits)))
                    continue
            results.append(GoldenResult(path.name, number, case, actual, hits=frozenset(hits)))
    return results


@dataclass(frozen=True)
class UncoveredRow:
    """A row of a rule file that no golden case hits."""

    file: str
    version: int
    effective_from: dt.date
    row: int
    values: Row

    def describe(self) -> str:
        return (f"{self.file} version {self.version} (effective_from {self.effective_from}) "
                f"row {self.row}{_label(self.file, self.values)}: no golden row hits it")


def _label(file: str, row: Row) -> str:
    """The cells that tell a row apart: its match, identity and range fields."""
    spec = TABLES.get(file.removesuffix(".yaml"))
    keys = (*spec.match, *spec.identity, *(f for _q, lo, hi in spec.ranges for f in (lo, hi))) if spec else ()
    cells = [f"{k}={row[k]}" for k in dict.fromkeys(keys) if row.get(k) is not None]
    return f" ({', '.join(cells)})" if cells else ""


def uncovered_rows(policy: PolicySet, results: list[GoldenResult]) -> list[UncoveredRow]:
    """Every row of every version, in file order, that no golden result hit."""
    hit = set().union(*(r.hits for r in results)) if results else set()
    return [
        UncoveredRow(table.file, v.number, v.effective_from, j, row)
        for name, table in policy.tables.items()
        for v in table.versions
        for j, row in enumerate(v.rows, start=1)
        if (name, v.number, j) not in hit
    ]
