"""Top-level errors about a value the request gave, worded in the request's language.

graphql-core and strawberry word a value they cannot read in English, for a developer
("Variable '$on' has invalid value: Value cannot represent a Date: …"). A person reads
our messages, in Japanese or English (Accept-Language), so each such error is answered
again here: ``extensions.code`` BAD_USER_INPUT, ``extensions.argument`` the argument or
input field as the request wrote it, and a message naming it, what is wrong, what to do
and — briefly — the value.

The errors graphql-core keeps (its validation cache holds the errors of a document) are
never changed in place: OperationPolicy (schema/extensions.py) answers with a new error.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from graphql import (
    BREAK,
    ArgumentNode,
    DocumentNode,
    GraphQLError,
    Node,
    ObjectFieldNode,
    ValueNode,
    Visitor,
    value_from_ast_untyped,
    visit,
)

from resolvers.core import messages
from resolvers.core.messages import Words
from schema.inputs import BadScalarValue, BadUserInput
from schema.request_errors import suggested

log = logging.getLogger("tradecert.graphql")

MAX_ECHO = 40  # characters of a bad value shown back: enough to recognise it, never a whole hostile payload

# graphql-core's words (graphql/execution/values.py, graphql/utilities/validate_input_value.py, graphql/type/)
_VARIABLE = re.compile(r"^Variable '\$(\w+)' (?:has invalid value(?: at ((?:\.\w+|\[\d+\])+))?: |of (?:required|non-null) type )",
                       re.S)
_ARGUMENT = re.compile(r"^Argument '(\w+)' (?:has invalid value|of required type)")
_TYPE = re.compile(r"type '([^']+)'")
_FIELD = re.compile(r"field '(\w+)'")
_ENUM = re.compile(r"(?:in|Enum) '(\w+)'(?: enum)?")
_PROBLEMS: tuple[tuple[re.Pattern[str], Words], ...] = (
    (re.compile(r"non-null type|required type"), messages.NULL_NOT_ALLOWED),
    (re.compile(r"Int cannot represent non 32-bit"), messages.INTEGER_TOO_LARGE),
    (re.compile(r"Int cannot represent"), messages.NOT_AN_INTEGER),
    (re.compile(r"String cannot represent"), messages.NOT_TEXT),
    (re.compile(r"Boolean cannot represent"), messages.NOT_A_BOOLEAN),
    (re.compile(r"ID cannot represent"), messages.NOT_AN_ID),
)
_LITERAL = re.compile(r"^(?:Expected value of type|Expected a value of|(?:Int|Float|String|Boolean|ID) cannot represent"
                      r"|Value '[^']*' does not exist in|Enum '\w+' cannot represent)")


def _innermost(error: GraphQLError) -> GraphQLError:
    """The error a wrapped one reports (a variable's error wraps the value's)."""
    found = error
    while isinstance(found.original_error, GraphQLError):
        found = found.original_error
    return found


def is_bad_input(error: GraphQLError) -> bool:
    """An error about a value the request gave, which ``reword`` answers in the request's language."""
    inner = _innermost(error)
    if isinstance(inner, (BadUserInput, BadScalarValue)) or isinstance(error, (BadUserInput, BadScalarValue)):
        return True
    if error.path is not None:  # raised while resolving: ours carry their own code
        return False
    return bool(_VARIABLE.match(error.message) or _ARGUMENT.match(error.message) or _LITERAL.match(error.message))


def echo(value: object) -> str:
    """A bad value, briefly: JSON (so a control character shows escaped, never raw), cut at MAX_ECHO."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= MAX_ECHO else text[:MAX_ECHO] + "…"


def _group(pattern: re.Pattern[str], text: str) -> str:
    found = pattern.search(text)
    return found[1] if found else "?"


def _first_node(error: GraphQLError) -> Node | None:
    return error.nodes[0] if error.nodes else None


def _problem(inner: GraphQLError) -> Words:
    if isinstance(inner, BadScalarValue):
        return inner.problem
    text = inner.message
    for pattern, words in _PROBLEMS:
        if pattern.search(text):
            return words
    if "does not exist in" in text or text.startswith("Enum '"):
        return messages.NOT_A_CHOICE.format(type=_group(_ENUM, text))
    type_name = _group(_TYPE, text).rstrip("!")
    if "unknown field" in text:
        return messages.UNKNOWN_FIELD.format(type=type_name, name=_group(_FIELD, text))
    if "required field" in text:
        return messages.MISSING_FIELD.format(name=_group(_FIELD, text))
    if "to be an object" in text:
        return messages.NOT_AN_OBJECT.format(type=type_name)
    if type_name == "DateTime":
        return messages.DATETIME_FORMAT
    if type_name == "Date":
        return messages.DATE_FORMAT
    return messages.NOT_OF_TYPE.format(type=type_name)


class _ArgumentOf(Visitor):
    """The argument and input fields (``input.desiredDate``) whose value is the node at ``start``."""

    def __init__(self, start: int) -> None:
        super().__init__()
        self.start = start
        self.found: str | None = None

    def enter(self, node: Node, _key: Any, parent: Any, _path: Any, ancestors: list[Any]) -> object:
        if node.loc is not None and node.loc.start == self.start and not isinstance(node, (ArgumentNode, ObjectFieldNode)):
            # ancestors end before the parent (graphql-core's visit, as graphql-js)
            names = [a.name.value for a in [*ancestors, parent] if isinstance(a, (ArgumentNode, ObjectFieldNode))]
            if names:
                self.found = ".".join(names)
                return BREAK
        return None


def _literal_argument(error: GraphQLError, document: DocumentNode | None) -> str | None:
    node = _first_node(error)
    if node is None or node.loc is None or document is None:
        return None
    finder = _ArgumentOf(node.loc.start)
    visit(document, finder)
    return finder.found


def _variable_value(variables: Mapping[str, Any] | None, name: str, path: str) -> object:
    value: object = (variables or {}).get(name)
    for key in re.findall(r"\.(\w+)|\[(\d+)\]", path):
        if isinstance(value, Mapping) and key[0]:
            value = value.get(key[0])
        elif isinstance(value, list) and key[1] and int(key[1]) < len(value):
            value = value[int(key[1])]
        else:
            return None
    return value


_NO_VALUE = object()


# graphql-core names the whole bad value in its messages ("…, found: {'password': '…'}",
# "… cannot represent a non string value: […]"): a log keeps what was wrong, never the value.
_VALUES = (
    (re.compile(r"\bValue .*? (does not exist in)", re.S), r"Value (not logged) \1"),  # "Value 'MEMBE' does not exist in …"
    (re.compile(r"(,? found:?) .*", re.S), r"\1 (value not logged)"),
    (re.compile(r"(cannot represent [^:]*value): .*", re.S), r"\1: (value not logged)"),
    (re.compile(r"(got invalid value) .*", re.S), r"\1 (value not logged)"),
    (re.compile(r"(\(値: |\(value: ).*", re.S), r"\1(not logged))"),  # ours, messages.BAD_VALUE: "first: … (value: 0)"
)


def loggable(message: str) -> str:
    """``message`` without the input values graphql-core quotes in it."""
    for pattern, replacement in _VALUES:
        message = pattern.sub(replacement, message)
    return message


def reword(error: GraphQLError, language: str, document: DocumentNode | None,
           variables: Mapping[str, Any] | None) -> GraphQLError:
    """``error`` (``is_bad_input``) answered again in ``language``; should the wording itself
    fail, graphql-core's words with the code — never an internal error for a bad value."""
    try:
        return _reword(error, language, document, variables)
    except Exception:  # the request is answered either way; the slip is logged
        log.exception("could not word a bad-input error: %s", loggable(error.message))
        return GraphQLError(error.message, error.nodes, error.source, error.positions, error.path,
                            extensions={"code": "BAD_USER_INPUT"})


def _reword(error: GraphQLError, language: str, document: DocumentNode | None,
            variables: Mapping[str, Any] | None) -> GraphQLError:
    inner = _innermost(error)
    if isinstance(inner, BadUserInput):
        return GraphQLError(inner.words.in_(language), error.nodes, error.source, error.positions, error.path,
                            extensions={"code": "BAD_USER_INPUT", **(inner.extensions or {})})
    argument, value = "?", _NO_VALUE
    variable = _VARIABLE.match(error.message)
    named = _ARGUMENT.match(error.message)
    if variable:
        argument = f"${variable[1]}{variable[2] or ''}"
        if "has invalid value" in error.message:  # the value was given (not a missing or null one)
            value = _variable_value(variables, variable[1], variable[2] or "")
    elif named:
        argument = named[1]
    else:
        argument = _literal_argument(error, document) or "?"
        node = _first_node(error)
        if isinstance(node, ValueNode):
            value = value_from_ast_untyped(node)
    if isinstance(inner, BadScalarValue):
        value = inner.value
    problem = _problem(inner)
    if value is _NO_VALUE or problem is messages.NULL_NOT_ALLOWED:
        words = messages.BAD_VALUE_WITHOUT_ECHO.format(argument=argument, problem=problem)
    else:
        words = messages.BAD_VALUE.format(argument=argument, problem=problem, value=echo(value))
    names = suggested(error.message)  # kept where the schema keeps suggestions (not in production)
    if names:  # the names alone: graphql-core's sentence around them is English
        words = messages.SUGGESTION.format(message=words, names=names)
    return GraphQLError(words.in_(language), error.nodes, error.source, error.positions, error.path,
                        extensions={"code": "BAD_USER_INPUT", "argument": argument})
