"""Golden tables: rules/tests/*.yaml hold questions with the answers policy staff expect.

``run_golden(policy, directory)`` asks every question through the same functions the API
uses and reports each case that disagrees, with its file and case number.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rules import calendar, fees
from rules.limits import limit
from rules.permissions import Actor, is_allowed
from rules.policy import PolicySet, read_yaml


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _products(p: PolicySet, case: dict) -> list[dict]:
    return [
        {"code": x.code, "coupons": x.coupons, "price": x.price, "face_value": x.face_value, "tax": x.tax}
        for x in fees.coupon_products(p, _date(case["on"]), case["membership"])
    ]


QUESTIONS: dict[str, Callable[[PolicySet, dict], Any]] = {
    "application_fee": lambda p, c: fees.application_fee(p, _date(c["on"]), c["membership"]).value,
    "registration_fee": lambda p, c: fees.registration_fee(p, _date(c["on"]), c["kind"], c["membership"]).value,
    "coupon_products": _products,
    "tax_part": lambda p, c: fees.tax_part(p, _date(c["on"]), c["price"]),
    "lot_refund": lambda p, c: fees.lot_refund(p, _date(c["bought_on"]), c["membership"], c["product"], c["unused"]),
    "refund_after_costs": lambda p, c: fees.refund_after_costs(p, _date(c["on"]), c["refund"]),
    "limit": lambda p, c: limit(p, _date(c["on"]), c["limit"]),
    "business_day": lambda p, c: calendar.is_business_day(p, _date(c["on"])),
    "next_business_day": lambda p, c: calendar.next_business_day(p, _date(c["on"])).isoformat(),
    "add_business_days": lambda p, c: calendar.add_business_days(p, _date(c["on"]), c["days"]).isoformat(),
    "allowed": lambda p, c: is_allowed(
        p, _date(c["on"]), Actor(0, c["kind"], None if c["registration"] == "none" else c["registration"]),
        c["action"], set(c["relations"]),
    ),
}


@dataclass(frozen=True)
class GoldenResult:
    file: str
    number: int
    case: dict
    actual: Any
    error: str | None = None

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
        for number, case in enumerate(cases, start=1):
            ask = case.get("ask") if isinstance(case, dict) else None
            question = QUESTIONS.get(ask)
            if question is None:
                results.append(GoldenResult(path.name, number, case if isinstance(case, dict) else {}, None,
                                            f"unknown question {ask!r}; known: {', '.join(QUESTIONS)}"))
                continue
            try:
                actual = question(policy, case)
            except Exception as exc:  # a golden row must report, not stop the run
                results.append(GoldenResult(path.name, number, case, None, f"{type(exc).__name__}: {exc}"))
                continue
            results.append(GoldenResult(path.name, number, case, actual))
    return results
