"""A running server swaps in edited rules only when they validate."""

from __future__ import annotations

import datetime as dt
import logging

from rules import fees
from rules.runtime import RulesRuntime


def test_valid_edits_are_loaded_and_invalid_ones_keep_the_old_rules(rules_copy, caplog):
    runtime = RulesRuntime(rules_copy)
    first = runtime.current.version
    assert runtime.reload().changed is False  # nothing changed

    path = rules_copy / "application_fees.yaml"
    original = path.read_text(encoding="utf-8")
    path.write_text(original.replace("amount: 3630", "amount: 3640"), encoding="utf-8")
    outcome = runtime.reload()
    assert outcome.changed and outcome.version != first
    assert fees.application_fee(runtime.current, dt.date(2026, 4, 1), "NON_MEMBER").value == 3640

    good = runtime.current.version
    path.write_text(original.replace("amount: 3630", "amount: many"), encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="tradecert.rules"):
        outcome = runtime.reload()
    assert outcome.changed is False and outcome.version == good
    assert any("application_fees.yaml" in p for p in outcome.problems)
    assert "do not validate" in caplog.text
    assert fees.application_fee(runtime.current, dt.date(2026, 4, 1), "NON_MEMBER").value == 3640

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="tradecert.rules"):
        runtime.reload()  # the same broken files are not re-reported every poll
    assert caplog.text == ""

    path.write_text(original, encoding="utf-8")
    assert runtime.reload().version == first  # back to the first version (re-registration is a no-op)
