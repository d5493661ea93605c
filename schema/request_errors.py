"""A document graphql-core or strawberry refuses (it does not parse, does not validate, or is
over one of our limits), answered in the request's language (issue 20, item 15).

Their messages are English, for a developer ("Cannot query field 'x' on type 'Query'.").
``_MESSAGES`` maps each pattern to our words (resolvers/core/messages.py): the schema names
the message quotes fill the placeholders and read the same in both languages. English keeps
graphql-core's own text, which developers search for; a refusal of one of our limits
(``LimitRefused``) carries its words in both languages. A Japanese answer for a message the
table does not know says that the query does not fit the schema, graphql-core's words going
to ``extensions.detail`` — never a message half in each language.

The errors graphql-core keeps (its validation cache holds the errors of a document) are
never changed in place: OperationPolicy (schema/extensions.py) answers with a new error.
"""

from __future__ import annotations

import re

from graphql import GraphQLError, GraphQLSyntaxError

from resolvers.core import messages
from resolvers.core.messages import Words
from schema.cost import LimitRefused

REQUEST_ERROR_CODES = frozenset({"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"})

_NAME = r"'(?P<{}>[^']+)'"


def _p(pattern: str) -> re.Pattern[str]:
    """A message pattern; ``{name}`` stands for a quoted schema name captured as ``name``."""
    return re.compile("^" + re.sub(r"\{(\w+)\}", lambda m: _NAME.format(m[1]), pattern))


_MESSAGES: tuple[tuple[re.Pattern[str], Words], ...] = (
    (_p(r"Cannot query field {field} on type {type}\."), messages.UNKNOWN_QUERY_FIELD),
    (_p(r"Unknown argument {argument} on (?:field|directive|fragment) {owner}\."), messages.UNKNOWN_ARGUMENT),
    (re.compile(r"^(?:Field|Argument|Directive) '(?P<field>[^'(]+)\((?P<argument>\w+):\)' of type '(?P<type>[^']+)' "
                r"is required"), messages.MISSING_ARGUMENT),
    (_p(r"Field {field} of type {type} must have (?:a selection of subfields|at least one field selected)"),
     messages.NEEDS_SELECTION),
    (_p(r"Field {field} must not have a selection since type {type} has no subfields"), messages.NO_SELECTION),
    (_p(r"Unknown type {type}\."), messages.UNKNOWN_TYPE),
    (re.compile(r"^Variable '\$(?P<name>\w+)' is never used"), messages.UNUSED_VARIABLE),
    (re.compile(r"^Variable '\$(?P<name>\w+)' is not defined"), messages.UNDEFINED_VARIABLE),
    (re.compile(r"^Variable '\$(?P<name>\w+)' of type '(?P<type>[^']+)' used in position expecting type "
                r"'(?P<expected>[^']+)'"), messages.VARIABLE_TYPE_MISMATCH),
    (_p(r"Unknown fragment {name}\."), messages.UNKNOWN_FRAGMENT),
    (_p(r"Fragment {name} is never used\."), messages.UNUSED_FRAGMENT),
    (_p(r"Unknown operation named {name}\."), messages.UNKNOWN_OPERATION),
    (re.compile(r"^(?:Must provide operation name|This anonymous operation must be the only)"),
     messages.OPERATION_NAME_NEEDED),
    (_p(r"There can be only one operation named {name}\."), messages.DUPLICATE_OPERATION),
    (_p(r"GraphQL introspection has been disabled, but the requested query contained the field {field}"),
     messages.INTROSPECTION_DISABLED),
)
# our limits as strawberry words them (schema.build_schema adds its limiters)
_DEPTH = re.compile(r"^'[^']*' exceeds maximum operation depth of (?P<limit>\d+)")
_ALIASES = re.compile(r"^(?P<count>\d+) aliases found\. Allowed: (?P<limit>\d+)")
_TOKENS = re.compile(r"^Syntax Error: Document contains more than (?P<limit>\d+) tokens")
_SYNTAX = re.compile(r"^Syntax Error: (?P<detail>.*)", re.S)
_EXPECTED = re.compile(r"^Expected (?P<expected>.+?), found (?P<found>.+?)\.$")
_UNEXPECTED = re.compile(r"^Unexpected (?P<found>.+?)\.$")
_SUGGESTION = re.compile(r"\s*Did you mean (?P<names>[^?]*)\?")
_QUOTED = re.compile(r"'([^']+)'|\"([^\"]+)\"")


class Answered(GraphQLError):
    """A request error already in the request's language."""


def is_request_error(error: GraphQLError) -> bool:
    """A document refused before anything ran, which ``answer`` words again."""
    if isinstance(error, Answered):
        return False
    return isinstance(error, LimitRefused) or (error.path is None and (error.extensions or {}).get("code") in REQUEST_ERROR_CODES)


def suggested(text: str) -> str | None:
    """The names graphql-core suggests ("Did you mean 'MEMBER' or 'NON_MEMBER'?"), listed."""
    found = _SUGGESTION.search(text)
    if not found:
        return None
    names = [single or double for single, double in _QUOTED.findall(found["names"])]
    return ", ".join(names) if names else None


def _words(message: str) -> Words | None:
    if found := _DEPTH.match(message):
        return messages.TOO_DEEP.format(**found.groupdict())
    if found := _ALIASES.match(message):
        return messages.TOO_MANY_ALIASES.format(**found.groupdict())
    if found := _TOKENS.match(message):
        return messages.TOO_MANY_TOKENS.format(**found.groupdict())
    for pattern, words in _MESSAGES:
        if found := pattern.match(message):
            return words.format(**found.groupdict())
    return None


def _syntax(error: GraphQLError) -> Words:
    detail = _SYNTAX.match(error.message)
    text = detail["detail"].strip() if detail else error.message
    if found := _EXPECTED.match(text):
        problem = messages.SYNTAX_EXPECTED.format(**found.groupdict())
    elif found := _UNEXPECTED.match(text):
        problem = messages.SYNTAX_UNEXPECTED.format(**found.groupdict())
    else:
        problem = messages.SYNTAX_OTHER
    line, column = (error.locations[0].line, error.locations[0].column) if error.locations else ("?", "?")
    return messages.SYNTAX_ERROR.format(line=line, column=column, detail=problem)


def answer(error: GraphQLError, language: str) -> GraphQLError:
    """``error`` (``is_request_error``) in ``language``, with the same code and locations."""
    extensions = dict(error.extensions or {})
    if isinstance(error, LimitRefused):
        text = error.words.in_(language)
    elif language == "en":
        return Answered(error.message, error.nodes, error.source, error.positions, error.path, extensions=extensions)
    else:
        words = _words(error.message) or (_syntax(error) if isinstance(error, GraphQLSyntaxError) else None)
        if words is None:
            extensions["detail"] = error.message
            words = messages.INVALID_DOCUMENT
        elif not words.ja.endswith("。"):  # a problem, not yet a sentence
            names = suggested(error.message)  # kept where the schema keeps suggestions (not in production)
            if names:
                words = messages.SUGGESTION.format(message=words, names=names)
            words = messages.IN_THE_QUERY.format(problem=words)
        text = words.in_(language)
    return Answered(text, error.nodes, error.source, error.positions, error.path, extensions=extensions)

