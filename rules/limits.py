"""Counts and periods from rules/limits.yaml."""

from __future__ import annotations

import datetime as dt

from rules.policy import PolicySet


def limit(policy: PolicySet, on: dt.date, name: str) -> int:
    return policy.lookup_one("limits", on, limit=name).integer("value")
