# The part of durable_rules 2.0.28 (no type information of its own) that rules/engine.py
# uses; nothing else in tradecert imports `durable`. Names and shapes follow
# durable/engine.py of that release.
from collections.abc import Callable, Mapping

class MessageNotHandledException(Exception): ...

class Content:
    """A state or message: attribute access reads and writes the underlying dict
    (a missing key reads as None, assigning None deletes the key)."""
    def __getattr__(self, name: str) -> object: ...
    def __setattr__(self, name: str, value: object) -> None: ...

class Closure:
    """What an action is called with: ``s`` is the state of the message's sid."""
    s: Content

Action = Callable[[Closure], None]

class Ruleset:
    def __init__(self, name: str, host: Host, ruleset_definition: Mapping[str, object]) -> None: ...

class Host:
    _ruleset_directory: dict[str, Ruleset]
    def __init__(self, ruleset_definitions: Mapping[str, Mapping[str, object]] | None = None) -> None: ...
    def _run(self) -> None: ...
    def register_rulesets(self, ruleset_definitions: Mapping[str, Mapping[str, object]]) -> None: ...
    def assert_fact(
        self, ruleset_name: str, fact: Mapping[str, object], complete: Callable[[BaseException | None, object], None] | None = None
    ) -> dict[str, object] | None: ...
    def delete_state(self, ruleset_name: str, sid: str | None = None) -> None: ...
