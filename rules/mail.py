"""The words of a mail from rules/mail_templates.yaml: the template in force, placeholders filled in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from rules.mail_names import TEMPLATES, fill
from rules.policy import PolicySet, RowRef


@dataclass(frozen=True)
class Mail:
    subject: str  # "" for a piece of a mail (a line, an appendix)
    body: str


def template(policy: PolicySet, on: dt.date, name: str) -> RowRef:
    """The row of mail_templates.yaml in force on ``on`` for the mail ``name``."""
    if name not in TEMPLATES:
        raise ValueError(f"unknown mail template {name!r}")
    return policy.lookup_one("mail_templates", on, template=name)


def render(policy: PolicySet, on: dt.date, name: str, values: Mapping[str, object]) -> Mail:
    """The mail ``name`` as worded on ``on``, each ``{placeholder}`` replaced by its value."""
    row = template(policy, on, name)
    unknown = set(values) - TEMPLATES[name].provided
    if unknown:  # the code and rules/mail_names.py disagree: a programming error, not a policy one
        raise ValueError(f"{name}: values for undeclared placeholders {sorted(unknown)}")
    text = {k: str(v) for k, v in values.items()}
    return Mail(fill(row.optional_text("subject") or "", text), fill(row.text("body"), text))
