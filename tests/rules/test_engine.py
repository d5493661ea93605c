"""The durable_rules adapter absorbs the engine's traps."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from rules import engine as engine_module
from rules.engine import Rule, RuleEngine, RuleEngineError
from rules.policy import load_policy
from tests.conftest import RULES_DIR


def member_rules() -> list[Rule]:
    return [
        Rule("old", {"$and": [{"membership": "MEMBER"}, {"$lt": {"on": "2026-04-01"}}]}),
        Rule("new", {"$and": [{"membership": "MEMBER"}, {"$gte": {"on": "2026-04-01"}}]}),
    ]


def test_facts_fire_every_matching_rule_and_nothing_when_none_match():
    engine = RuleEngine()
    name = engine.register("t@1", [*member_rules(), Rule("any", {"membership": "MEMBER"})])
    assert sorted(engine.matches(name, {"membership": "MEMBER", "on": "2026-04-01"})) == ["any", "new"]
    assert engine.matches(name, {"membership": "NON_MEMBER", "on": "2026-04-01"}) == []


def test_an_exception_inside_an_action_is_raised_not_swallowed(monkeypatch):
    def failing(rule_id):
        def action(c):
            raise ZeroDivisionError("boom")
        return action

    monkeypatch.setattr(engine_module, "_record_hit", failing)
    engine = RuleEngine()
    name = engine.register("t@boom", member_rules())
    with pytest.raises(RuleEngineError, match="boom"):
        engine.matches(name, {"membership": "MEMBER", "on": "2026-04-01"})


def test_thousands_of_evaluations_leave_no_live_state():
    # durable_rules holds at most 1,024 live sids per ruleset; every evaluation deletes its own.
    engine = RuleEngine()
    name = engine.register("t@many", member_rules())
    for _ in range(3000):
        assert engine.matches(name, {"membership": "MEMBER", "on": "2026-04-01"}) == ["new"]


def test_the_same_version_registers_once_and_new_versions_live_beside_it():
    engine = RuleEngine()
    assert engine.register("t@v1", member_rules()) == "t@v1"
    assert engine.register("t@v1", member_rules()) == "t@v1"  # no "already registered" error
    engine.register("t@v2", [Rule("only", {"membership": "NON_MEMBER"})])
    assert engine.matches("t@v1", {"membership": "MEMBER", "on": "2026-01-01"}) == ["old"]
    assert engine.matches("t@v2", {"membership": "NON_MEMBER", "on": "2026-01-01"}) == ["only"]


def test_unversioned_names_are_refused():
    with pytest.raises(ValueError):
        RuleEngine().register("fees", member_rules())


def test_concurrent_evaluations_from_many_threads_agree():
    engine = RuleEngine()
    name = engine.register("t@threads", member_rules())
    failures: list[object] = []

    def worker(on: str, expected: list[str]) -> None:
        for _ in range(300):
            got = engine.matches(name, {"membership": "MEMBER", "on": on})
            if got != expected:
                failures.append(got)

    threads = [threading.Thread(target=worker, args=(("2026-03-31", ["old"]) if i % 2 else ("2026-04-01", ["new"]))) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_lookups_are_cached_per_rules_version_and_inputs():
    policy = load_policy(RULES_DIR)
    calls = []
    real = policy._engine.matches

    def counting(name, fact):
        calls.append(fact)
        return real(name, fact)

    policy._engine = type("Counting", (), {"matches": staticmethod(counting)})()
    policy._cache.clear()
    for _ in range(5):
        policy.lookup("application_fees", dt.date(2026, 4, 1), membership="MEMBER")
    policy.lookup("application_fees", dt.date(2026, 4, 2), membership="MEMBER")
    assert len(calls) == 2
