"""The one adapter around durable_rules. Nothing else in tradecert imports `durable`.

durable_rules 2.0.28 (unmaintained since 2020) has traps this module absorbs:

* An exception inside an action is swallowed into ``state['exception']``; we raise it.
* State persists per ``sid`` and a ruleset holds at most 1,024 live sids (then
  ``MemoryError``, then a segfault in a background thread): every evaluation uses a
  fresh sid and deletes its state in ``finally``.
* ``engine.Host`` starts timer threads that may run an action on another thread (``post``
  then returns None): ``_QuietHost._run`` starts none, and one lock serialises calls.
* A ruleset name cannot be registered twice and its definition dict is mutated:
  definitions are deep-copied, and names carry a version (``fees@<hash>``) so reloaded
  rules are registered beside the old ones.
* Messages hold JSON types only (ISO date strings, integer yen): ``JSON`` below.

durable_rules ships no type information; typings/durable/engine.pyi declares the part of
it used here.

Every rule we register has the same action: it appends the rule's id to
``state['hits']``. Evaluations assert a *fact*, so all matching rules fire; the caller
decides whether it expects one hit or many.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from durable import engine as _engine

# What a condition, a fact and a message may hold.
JSON: TypeAlias = "str | int | float | bool | Sequence[JSON] | Mapping[str, JSON] | None"


class RuleEngineError(RuntimeError):
    """durable_rules failed while evaluating (an action raised, or no state came back)."""


class _QuietHost(_engine.Host):
    """A host without the background dispatch/timer threads (we use no timers)."""

    def _run(self) -> None:
        return None


@dataclass(frozen=True)
class Rule:
    """One compiled rule: an id reported when it fires and a durable_rules condition."""

    id: str
    condition: Mapping[str, JSON]


def _record_hit(rule_id: str) -> _engine.Action:
    def action(c: _engine.Closure) -> None:
        hits = c.s.hits
        c.s.hits = [*hits, rule_id] if isinstance(hits, list) else [rule_id]

    return action


def _hits(state: Mapping[str, object]) -> list[str]:
    hits = state.get("hits")
    return [str(h) for h in hits] if isinstance(hits, list) else []


# durable_rules' C engine keeps process-wide state (its rulesets and states live in one
# global table), so calls from two engines on two threads at once can crash the process:
# every engine of the process takes this one lock, not a lock of its own.
_DURABLE = threading.Lock()
_SID = "q"  # the state id of every evaluation (see RuleEngine.matches)


class RuleEngine:
    """Registers rulesets and evaluates facts against them, thread-safely."""

    def __init__(self) -> None:
        self._host = _QuietHost()
        self._lock = _DURABLE
        self._registered: set[str] = set()

    def register(self, name: str, rules: Sequence[Rule]) -> str:
        """Register ``rules`` under ``name`` (already versioned by the caller).

        Registering the same name again is a no-op: a name is a content hash, so the
        same name means the same rules.
        """
        if "@" not in name:
            raise ValueError(f"ruleset name must be versioned (table@hash): {name!r}")
        definition: dict[str, dict[str, object]] = {}
        for rule in rules:
            definition[rule.id] = {
                "all": [{"m": copy.deepcopy(dict(rule.condition))}],
                "run": _record_hit(rule.id),
            }
        with self._lock:
            if name in self._registered:
                return name
            if not definition:
                # durable_rules rejects an empty ruleset; an empty table simply never matches.
                self._registered.add(name)
                return name
            self._host.register_rulesets({name: copy.deepcopy(definition)})
            self._registered.add(name)
        return name

    def matches(self, name: str, fact: Mapping[str, JSON]) -> list[str]:
        """Ids of every rule of ``name`` whose condition holds for ``fact``."""
        with self._lock:
            if name not in self._registered:
                raise RuleEngineError(f"ruleset {name} is not registered")
            ruleset = self._host._ruleset_directory.get(name)
            if ruleset is None:  # registered empty
                return []
            # One state id, reused: calls are serialised and each deletes its state before the
            # lock is released. Ever-new ids churned durable_rules' state cache (1,024 entries)
            # and the process crashed in delete_state now and then under the full test suite.
            sid = _SID
            message: dict[str, JSON] = {**fact, "sid": sid}
            try:
                state = self._host.assert_fact(name, message)
            except _engine.MessageNotHandledException:
                # No rule took the fact and no action ran: nothing to read. The state is not
                # deleted here — deleting a state the fact did not create is our reading of the
                # call that crashed the process now and then; a later hit deletes what is left.
                return []
            try:
                if state is None:
                    raise RuleEngineError(f"ruleset {name}: no state returned for {fact!r}")
                if state.get("exception"):
                    raise RuleEngineError(f"ruleset {name}: action failed: {state['exception']}")
                return _hits(state)
            finally:
                self._host.delete_state(name, sid)


_default_engine: RuleEngine | None = None
_default_lock = threading.Lock()


def default_engine() -> RuleEngine:
    """The process-wide engine (one durable_rules host per process)."""
    global _default_engine
    with _default_lock:
        if _default_engine is None:
            _default_engine = RuleEngine()
        return _default_engine
