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


def test_files_the_history_refused_are_asked_again_and_go_live_once_it_accepts_them(rules_copy, caplog):
    """A correction recorded in the rules history (`tradecert rules correct`) changes the
    guard's answer, not the files: the refused files must not be ignored until edited."""
    runtime = RulesRuntime(rules_copy)
    first = runtime.current.version
    path = rules_copy / "application_fees.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("amount: 3630", "amount: 3640"), encoding="utf-8")
    answers = [["a version in force is rewritten"], ["a version in force is rewritten"], []]
    asked: list[str] = []

    def guard(policy):
        asked.append(policy.version)
        return answers.pop(0)

    with caplog.at_level(logging.ERROR, logger="tradecert.rules"):
        assert runtime.reload(guard).changed is False
        assert runtime.reload(guard).changed is False
    assert caplog.text.count("rewrite rules already in force") == 1  # logged once, asked every time
    outcome = runtime.reload(guard)
    assert outcome.changed and outcome.version != first and len(set(asked)) == 1 and len(asked) == 3
    assert runtime.reload(guard).changed is False and len(asked) == 3  # served now: not asked again
