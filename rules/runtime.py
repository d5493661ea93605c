"""The rules a running server uses, swapped atomically when the files change.

``RulesRuntime.current`` is always a validated ``PolicySet``. ``reload()`` loads the
files again only when their content hash changed, and keeps the old rules (logging
every problem) when the new files do not validate.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rules.engine import RuleEngine
from rules.policy import PolicySet, RulesInvalid, fingerprint, load_policy

log = logging.getLogger("tradecert.rules")


@dataclass(frozen=True)
class ReloadOutcome:
    changed: bool
    version: str
    problems: tuple[str, ...] = ()


class RulesRuntime:
    def __init__(self, directory: Path | str, engine: RuleEngine | None = None):
        self.directory = Path(directory)
        self._engine = engine
        self._lock = threading.Lock()
        self._current = load_policy(self.directory, engine)
        self._rejected: str | None = None  # the hash of files already found invalid
        # files that validated but the guard refused (they rewrite a version in force): kept
        # loaded and asked again each reload, since a correction recorded in the rules history
        # (`tradecert rules correct`) lets them go live without another edit
        self._refused: PolicySet | None = None

    @property
    def current(self) -> PolicySet:
        return self._current

    def reload(self, guard: Callable[[PolicySet], Sequence[str]] | None = None) -> ReloadOutcome:
        """Load the files again if they changed. ``guard`` (the server passes the rules
        history's) may refuse validated files: it returns its problems, or raises when it
        cannot tell (the old rules stay, and the next reload asks again)."""
        with self._lock:
            try:
                seen = fingerprint(self.directory)
            except OSError as exc:
                log.error("rules not reloaded: cannot read %s: %s", self.directory, exc)
                return ReloadOutcome(False, self._current.version, (str(exc),))
            if seen == self._current.version or seen == self._rejected:
                return ReloadOutcome(False, self._current.version)
            asked_before = self._refused is not None and self._refused.version == seen
            try:
                policy = self._refused if self._refused is not None and asked_before else load_policy(self.directory, self._engine)
            except RulesInvalid as exc:
                self._rejected = seen
                log.error(
                    "rules not reloaded: the changed files do not validate; still serving %s",
                    self._current.version,
                    extra={"problems": [str(p) for p in exc.problems], "rejected_version": seen},
                )
                return ReloadOutcome(False, self._current.version, tuple(str(p) for p in exc.problems))
            refused = tuple(guard(policy)) if guard is not None else ()
            if refused:
                self._refused = policy
                if not asked_before:  # logged once; asked again quietly on every reload
                    log.error(
                        "rules not reloaded: the changed files rewrite rules already in force; still serving %s",
                        self._current.version,
                        extra={"problems": list(refused), "rejected_version": seen},
                    )
                return ReloadOutcome(False, self._current.version, refused)
            old, self._current = self._current.version, policy
            self._rejected = self._refused = None
            log.info("rules reloaded: %s -> %s", old, policy.version)
            return ReloadOutcome(True, policy.version)
