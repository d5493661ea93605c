"""What the HTTP edge refuses before any resolver sees it, always as a 4xx JSON body
``{"errors": [{"message": …, "extensions": {"code": …}}]}`` — never a plain-text 500.

* A NUL (U+0000) or an unpaired surrogate anywhere in a GraphQL body — a variable, a key, a
  string literal of the document — or a NUL in a URL: BAD_USER_INPUT. PostgreSQL text cannot
  hold a NUL and no database driver encodes a lone surrogate, so one rule at the edge covers
  every text field of every mutation and query, on both databases alike.
* A body that is not UTF-8 JSON, not an object (or a batch), nested deeper than any input of
  ours, or with a number too long to read: BAD_REQUEST.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import NoReturn

from cross_web import HTTPException
from graphql import GraphQLError
from graphql.language import Lexer, Source, TokenKind
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from resolvers.core import messages
from resolvers.core.messages import Words

MAX_JSON_DEPTH = 32  # our deepest input nests 4 levels; 100,000 levels would exhaust the recursion limit
_UNSAFE_TEXT = re.compile("[\x00\ud800-\udfff]")  # after JSON decoding, a surrogate left in a str is unpaired
_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 415: "UNSUPPORTED_MEDIA_TYPE"}


class Refused(HTTPException):
    """A request the edge answers itself; ``field`` is the JSON path of the offending value.
    ``message`` is ``Words`` (answered in the request's language) or a text already in it."""

    def __init__(self, status: int, code: str, message: Words | str, field: list[str] | None = None) -> None:
        super().__init__(status, message.en if isinstance(message, Words) else message)
        self.code = code
        self.field = field
        self.words = message if isinstance(message, Words) else None


# strawberry's refusals of a request (strawberry/http), in our words
_STRAWBERRY: tuple[tuple[re.Pattern[str], Words], ...] = (
    (re.compile(r"^No GraphQL query found"), messages.NO_QUERY),
    (re.compile(r"^The GraphQL operation's `query` must be"), messages.PARAMETER_NOT_OF_TYPE.format(
        name="query", kind=messages.A_STRING)),
    (re.compile(r"^The GraphQL operation's `variables` must be"), messages.PARAMETER_NOT_OF_TYPE.format(
        name="variables", kind=messages.AN_OBJECT)),
    (re.compile(r"^The GraphQL operation's `extensions` must be"), messages.PARAMETER_NOT_OF_TYPE.format(
        name="extensions", kind=messages.AN_OBJECT)),
    (re.compile(r"^Unable to parse request body as JSON"), messages.BODY_NOT_JSON),
    (re.compile(r"^Batching is not enabled"), messages.BATCH_REFUSED),
    (re.compile(r"^Not Found$"), messages.NOT_SERVED),
)


_UNKNOWN_OPERATION = re.compile(r'^Unknown operation named "(.*)"\.$', re.S)  # an operationName not in the query


def _words_of(exc: HTTPException) -> Words:
    if isinstance(exc, Refused) and exc.words is not None:
        return exc.words
    if isinstance(exc, Refused):
        return Words(exc.reason, exc.reason)  # already in the request's language
    unknown = _UNKNOWN_OPERATION.match(exc.reason)
    if unknown:
        words = messages.UNKNOWN_OPERATION.format(name=unknown[1])
        return Words(f"{words.ja}。", f"{words.en[0].upper()}{words.en[1:]}.")
    for pattern, words in _STRAWBERRY:
        if pattern.match(exc.reason):
            return words
    return messages.REQUEST_REFUSED.format(status=exc.status_code)


def refusal(exc: HTTPException, language: str = "ja") -> JSONResponse:
    """The JSON answer, in ``language``, for a refusal of ours or one of strawberry's HTTP errors."""
    ours = exc if isinstance(exc, Refused) else None
    extensions: dict[str, object] = {"code": (ours and ours.code) or _CODES.get(exc.status_code, "BAD_REQUEST")}
    if ours and ours.field:
        extensions["field"] = ours.field
    message = _words_of(exc).in_(language)
    return JSONResponse({"errors": [{"message": message, "extensions": extensions}]}, status_code=exc.status_code)


def language_of(accept_language: str) -> str:
    """'en' when English is preferred over Japanese in Accept-Language, else 'ja'."""
    best, best_q = "ja", -1.0
    for part in accept_language.split(","):
        piece = part.strip().split(";")
        tag = piece[0].strip().lower()
        q = 1.0
        for param in piece[1:]:
            if param.strip().startswith("q="):
                try:
                    q = float(param.strip()[2:])
                except ValueError:
                    q = 0.0
        lang = "en" if tag.startswith("en") else "ja" if tag.startswith("ja") else None
        if lang and q > best_q:
            best, best_q = lang, q
    return best


def _unsafe_text(field: list[str]) -> Refused:
    return Refused(400, "BAD_USER_INPUT", messages.UNSAFE_TEXT, field)


def _not_a_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def decode_graphql_body(data: bytes | str, max_tokens: int) -> object:
    """The decoded JSON of a GraphQL POST, or Refused."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise Refused(400, "BAD_REQUEST", messages.BODY_NOT_UTF8) from None
    try:
        body: object = json.loads(text, parse_constant=_not_a_constant)
    except RecursionError:
        raise Refused(400, "BAD_REQUEST", messages.BODY_TOO_DEEP) from None
    except ValueError:  # JSONDecodeError, NaN, a number of more than 4,300 digits
        raise Refused(400, "BAD_REQUEST", messages.BODY_NOT_JSON) from None
    if not isinstance(body, (dict, list)):  # a list is a batch: strawberry refuses it (batching is off)
        raise Refused(400, "BAD_REQUEST", messages.BODY_NOT_AN_OBJECT)
    _check_values(body)
    for operation in body if isinstance(body, list) else [body]:
        name = operation.get("operationName") if isinstance(operation, dict) else None
        if name is not None and not isinstance(name, str):  # strawberry's answer to it is a bare 400
            raise Refused(400, "BAD_REQUEST", messages.PARAMETER_NOT_OF_TYPE.format(
                name="operationName", kind=messages.A_STRING))
        query = operation.get("query") if isinstance(operation, dict) else None
        if isinstance(query, str) and "\\u" in query:  # the only way a document spells a NUL: "\u0000", "\u{0}"
            _check_literals(query, max_tokens)
    return body


def _check_values(body: object) -> None:
    """Every string and key of the body, iteratively (no recursion on hostile depth)."""
    stack: list[tuple[object, list[str]]] = [(body, [])]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if _UNSAFE_TEXT.search(value):
                raise _unsafe_text(path)
        elif isinstance(value, (dict, list)):
            if len(path) >= MAX_JSON_DEPTH:
                raise Refused(400, "BAD_REQUEST", messages.BODY_TOO_DEEP, path[:8])
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and _UNSAFE_TEXT.search(key):
                    raise _unsafe_text(path)
                stack.append((item, [*path, str(key)]))


def _check_literals(query: str, max_tokens: int) -> None:
    """String literals of the document as the GraphQL lexer reads them (escapes resolved)."""
    lexer = Lexer(Source(query))
    try:
        for _ in range(max_tokens + 1):
            token = lexer.advance()
            if token.kind == TokenKind.EOF:
                return
            if token.kind in (TokenKind.STRING, TokenKind.BLOCK_STRING) and _UNSAFE_TEXT.search(token.value or ""):
                raise _unsafe_text(["query"])
    except GraphQLError:  # a syntax error: the GraphQL answer names it
        return


MAX_BODY_BYTES = 1_048_576  # 1 MiB: the largest real request (a 100-line bulk filing) is far below


class BodyTooLarge(Exception):
    pass


class UrlGuard:
    """Refuses a NUL in the path or the query string (``/verify?code=%00``): no route takes one,
    and a link's parameters reach the database. Refuses a body over ``MAX_BODY_BYTES``
    (413), by its Content-Length or, for a chunked body, as soon as it grows past it."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        accept_language = dict(scope.get("headers") or []).get(b"accept-language", b"").decode("latin-1")
        language = language_of(accept_language)
        if b"%00" in query or b"\x00" in query or "\x00" in scope.get("path", ""):
            await refusal(_unsafe_text(["url"]), language)(scope, receive, send)
            return
        too_large = refusal(Refused(413, "BAD_REQUEST", messages.BODY_TOO_LARGE.format(limit=self.max_body_bytes)), language)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await too_large(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise BodyTooLarge()
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await too_large(scope, receive, send)


# --------------------------------------------------------------------------- answers outside GraphQL

async def not_served(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no such route) and 405 (a route's other methods), in the error shape
    and the request's language, not its plain-text "Not Found"."""
    status = getattr(exc, "status_code", 404)
    language = language_of(request.headers.get("accept-language", ""))
    if status == 405:
        return error_response(405, "METHOD_NOT_ALLOWED", messages.REQUEST_REFUSED.format(status=405).in_(language),
                              getattr(exc, "headers", None))
    return error_response(404, "NOT_FOUND", messages.NOT_SERVED.in_(language))


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None,
                   **extensions: object) -> JSONResponse:
    """A refusal in the documented error shape (docs/api.md, Errors):
    ``{"errors": [{"message": …, "extensions": {"code": …}}]}``."""
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code, **extensions}}]},
                        status_code=status, headers=dict(headers or {}))


def document_refusal(error: GraphQLError, language: str) -> JSONResponse:
    """A PDF route's answer when the document is not served (docs/api.md, Documents (PDF)).

    The renderers refuse an id that does not exist, one of an object the viewer may not see
    and a document not available now alike (``Forbidden()``): all three are 404 NOT_FOUND, as
    an id out of reach reads as "not found" everywhere (docs/api.md, IDs), so an id of someone
    else's object is never confirmed. A refusal with a reason of its own (an API key asking for
    what only a person may do) stays 403 FORBIDDEN; no session is 401; a key over its rate 429."""
    from resolvers.core.errors import ErrorCode, Forbidden, TooManyRequests, Unauthenticated, localised

    if isinstance(error, TooManyRequests):
        return error_response(429, ErrorCode.TOO_MANY_REQUESTS.value, localised(error, language),
                              {"Retry-After": str(error.retry_after)}, retryAfter=error.retry_after)
    if isinstance(error, Unauthenticated):
        return error_response(401, "UNAUTHENTICATED", localised(error, language))
    if isinstance(error, Forbidden) and error.words is not Forbidden.words:
        return error_response(403, "FORBIDDEN", localised(error, language))
    return error_response(404, ErrorCode.NOT_FOUND.value, ErrorCode.NOT_FOUND.message(language))
