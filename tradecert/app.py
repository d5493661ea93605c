"""The ASGI application: GraphQL at /graphql, /healthz, /readyz, /metrics.

Middleware (outermost first): request id + access log + HTTP metrics, the URL guard (no
NUL in a path or query string), then the CSRF guard in front of /graphql; the GraphQL view
refuses bodies that are not UTF-8 JSON or hold a NUL or lone surrogate (400 JSON, see
tradecert/request_guards.py). With ``TRADECERT_TRUSTED_DOCUMENTS`` the view runs only the
manifest's documents (tradecert/trusted_documents.py). The view speaks GraphQL over HTTP
(``application/graphql-response+json`` as well as ``application/json``), refuses queries over
GET and other methods before strawberry, gives a query its time budget and an answer its size
cap (the cost limit is a validation rule: schema/cost.py). Rules reload when their files change
(polled) or on SIGHUP, and only if the new files validate.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError, OperationDefinitionNode, OperationType, get_operation_ast, parse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult, SubscriptionExecutionResult

from pages.activation import activate_page
from pages.fee_page import routes as fee_page_routes
from pages.home import home_page
from pages.mailbox import routes as mailbox_routes
from pages.sandbox_gateway import routes as gateway_routes
from resolvers.adapters.gateway import gateway_of
from resolvers.core import messages
from resolvers.core.context import Context, Services
from resolvers.core.errors import ErrorCode
from resolvers.core.logs import new_request_id, redact, request_id_var
from resolvers.core.ratelimit import client_address
from resolvers.core.settings import Settings
from rules.policy import PolicySet
from schema import build_schema
from tradecert.composition import DOCUMENTS, Document, build_services
from tradecert.graphiql import page as graphiql_page
from tradecert.graphiql import routes as graphiql_routes
from tradecert.jobs import job_health, publish_health
from tradecert.metrics import scrape_registry
from tradecert.request_guards import (
    UrlGuard,
    decode_graphql_body,
    document_refusal,
    error_response,
    language_of,
    not_served,
    refusal,
)
from tradecert.trusted_documents import admit, load_manifest, operations_of

log = logging.getLogger("tradecert.http")

HTTP_REQUESTS = Counter("tradecert_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram("tradecert_http_request_seconds", "HTTP request latency", ["route"])
KNOWN_ROUTES = ("/graphql", "/healthz", "/readyz", "/metrics", "/activate", "/fees")


def _header(scope: Scope, name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])  # the ASGI spec's shape
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


class RequestIdMiddleware:
    """Gives every request an id (or keeps a sane incoming X-Request-ID), logs it, counts it."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and len(incoming) <= 64 and incoming.isascii() and incoming.isprintable() else new_request_id()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            path = scope.get("path", "")
            route = path if path in KNOWN_ROUTES else "other"
            HTTP_REQUESTS.labels(scope.get("method", ""), route, str(status["code"])).inc()
            HTTP_LATENCY.labels(route).observe(elapsed)
            client = client_address(HTTPConnection(scope), self.settings)  # behind a trusted proxy: X-Forwarded-For
            query = scope.get("query_string", b"").decode("latin-1")
            target = f"{path}?{query}" if query else path  # secrets in it are redacted by the log filter (resolvers/core/logs.py)
            # the one line of each request: uvicorn's access log is off (tradecert serve, tests/conftest.py)
            log.info(
                "%s %s %s %.1fms", scope.get("method"), target, status["code"], elapsed * 1000,
                extra={"method": scope.get("method"), "path": redact(path), "status": status["code"],
                       "ms": round(elapsed * 1000, 2), "client": client},
            )
            request_id_var.reset(token)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class CsrfGuard:
    """Blocks cross-site posts to /graphql.

    Browsers send form posts and text/plain cross-site without a CORS preflight; we only
    accept ``application/json`` bodies (which a cross-site page cannot send without a
    preflight we never grant), and refuse an ``Origin`` that is neither this server,
    ``TRADECERT_PUBLIC_URL`` nor an allowed origin.
    """

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.allowed = {_origin(settings.public_url), *(o.lower() for o in settings.allowed_origins)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path", "").startswith("/graphql"):
            content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
            if content_type != "application/json":
                await self._refuse(scope, receive, send, 415, "UNSUPPORTED_MEDIA_TYPE", messages.POST_A_JSON_BODY)
                return
            # media types are case-insensitive (RFC 9110): strawberry reads only "application/json"
            scope = {**scope, "headers": [(key, b"application/json") if key == b"content-type" else (key, value)
                                          for key, value in scope.get("headers", [])]}
            origin = _header(scope, b"origin")
            if origin and origin.lower() != "null":
                host = _header(scope, b"host") or ""
                same = {f"http://{host}".lower(), f"https://{host}".lower()}
                if origin.lower().rstrip("/") not in self.allowed | same:
                    await self._refuse(scope, receive, send, 403, "CSRF", messages.CROSS_SITE_REFUSED)
                    return
            elif (_header(scope, b"sec-fetch-site") or "") == "cross-site":
                await self._refuse(scope, receive, send, 403, "CSRF", messages.CROSS_SITE_REFUSED)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str, words: messages.Words) -> None:
        language = _language(_header(scope, b"accept-language") or "")
        await error_response(status, code, words.in_(language))(scope, receive, send)


GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


def accepts_graphql_response(accept: str) -> bool:
    """True when ``Accept`` ranks ``application/graphql-response+json`` at least as high as
    ``application/json`` (``*/*``, ``application/*`` and no Accept at all count as
    ``application/json``, as the GraphQL-over-HTTP spec says)."""
    ranks = {GRAPHQL_RESPONSE_JSON: 0.0, "application/json": 0.0}
    for part in accept.split(","):
        piece = part.strip().split(";")
        media = piece[0].strip().lower()
        q = 1.0
        for param in piece[1:]:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media in ("*/*", "application/*"):
            media = "application/json"
        if media in ranks:
            ranks[media] = max(ranks[media], q)
    return ranks[GRAPHQL_RESPONSE_JSON] > 0 and ranks[GRAPHQL_RESPONSE_JSON] >= ranks["application/json"]


def _before_execution(result: ExecutionResult) -> bool:
    """A request error: no data and every error outside any field (a parse, validation or
    variable-coercion failure) — a field's error always has a path."""
    return result.data is None and bool(result.errors) and all(error.path is None for error in result.errors or [])


# The JSON body of this request as decoded (each request is its own task): strawberry's
# request data keeps no documentId, which trusted documents read (TradecertGraphQL._admit).
_body_as_sent: ContextVar[object] = ContextVar("tradecert_graphql_body", default=None)
# The language and media type this request is answered in, for create_response (no request there).
_answer_as: ContextVar[tuple[str, bool]] = ContextVar("tradecert_graphql_answer", default=("ja", False))


@functools.lru_cache(maxsize=1024)
def _is_query(query: str | None, operation_name: str | None) -> bool:
    """Whether the operation run is a query (one that does not parse runs nothing: a query)."""
    if not query:
        return True
    try:
        document = parse(query, max_tokens=5000)
    except GraphQLError:
        return True
    operation = get_operation_ast(document, operation_name)
    return operation is None or operation.operation == OperationType.QUERY


@functools.lru_cache(maxsize=1024)
def _names_no_operation(query: str | None, operation_name: str | None) -> bool:
    """Several operations and no operationName: the spec's GetOperation is a request error
    there, but strawberry ran the first (a second mutation of the document silently not)."""
    if not query or operation_name is not None:
        return False
    try:
        document = parse(query, max_tokens=5000)
    except GraphQLError:
        return False  # the parse failure is answered as such
    return sum(isinstance(definition, OperationDefinitionNode) for definition in document.definitions) > 1


class TradecertGraphQL(GraphQL[Context, None]):
    def __init__(self, services: Services, **kwargs: Any):
        super().__init__(**kwargs)
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket" and self.services.trusted_documents is not None:
                # an operation over a websocket would not pass the trusted-documents check
                await WebSocket(scope, receive, send).close(code=4403)
                return
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        _body_as_sent.set(None)
        language = _language(request.headers.get("accept-language", ""))
        graphql_response = accepts_graphql_response(request.headers.get("accept", ""))
        request.state.graphql_response = graphql_response  # process_result answers request errors 400 with it
        _answer_as.set((language, graphql_response))
        try:
            response = self._refused_method(request, language) or await self.run(request)
        except HTTPException as exc:  # ours and strawberry's: a JSON body, never plain text
            response = refusal(exc, language)
        finally:  # the request's read unit ends before the response goes out (resolvers/core/context.py)
            context = getattr(request.state, "context", None)
            if context is not None:
                await context.close()
        if graphql_response and (response.headers.get("content-type") or "").startswith("application/json"):
            response.headers["content-type"] = GRAPHQL_RESPONSE_JSON
        await response(scope, receive, send)

    def _refused_method(self, request: Request, language: str) -> Response | None:
        """PUT, DELETE, …: 405 with ``Allow``; a query over GET: 400 (docs/api.md, Requests) — before
        strawberry, which would answer a GET whose query does not parse with a 200."""
        explorer = self.graphql_ide is not None
        if request.method not in ("GET", "POST"):
            words = messages.POST_ONLY_OR_EXPLORER if explorer else messages.POST_ONLY
            return error_response(405, "METHOD_NOT_ALLOWED", words.in_(language),
                                  {"Allow": "GET, POST" if explorer else "POST"})
        if request.method == "GET" and "query" in request.query_params:
            return error_response(400, "BAD_REQUEST", messages.NO_QUERIES_OVER_GET.in_(language))
        return None

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        """GraphQL over HTTP: with ``application/graphql-response+json`` a request error — the
        document does not parse or validate, or the variables do not fit — is a 400 without a
        ``data`` entry, as nothing ran; with ``application/json`` it stays a 200 with
        ``"data": null`` (what the spec allows for that media type, and what clients of ours read)."""
        processed = await super().process_result(request, result)
        if getattr(request.state, "graphql_response", False) and _before_execution(result):
            processed.pop("data", None)
            context = getattr(request.state, "context", None)
            if context is not None and context.response is not None:  # over the time budget: ours, not the request's
                timeout = any((error.extensions or {}).get("code") == "QUERY_TIMEOUT" for error in result.errors or [])
                context.response.status_code = 503 if timeout else 400
        return processed

    async def render_graphql_ide(self, request: Request) -> Response:
        """Our GraphiQL page (tradecert/graphiql): the vendored files from this server, under a
        Content-Security-Policy that names no other origin — not strawberry's, which loads
        them from unpkg.com."""
        return graphiql_page(request)

    def decode_json(self, data: str | bytes) -> object:
        """The body, refused (4xx JSON) when it is not UTF-8 JSON or holds a NUL or a lone
        surrogate anywhere (tradecert/request_guards.py)."""
        body = decode_graphql_body(data, self.services.settings.max_query_tokens)
        _body_as_sent.set(body)  # its documentId, which strawberry does not keep, for _admit
        return body

    async def execute_operation(
        self, request: Request, request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData], context: Context, root_value: None,
        sub_response: Response,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        """With a trusted-documents manifest, each operation as tradecert/trusted_documents.py
        admits it — a documentId's manifest text, or refused — before anything runs."""
        manifest = self.services.trusted_documents
        if manifest is not None:
            request_data = await self._admit(manifest, request_adapter, request_data, context)
        if not isinstance(request_data, list) and isinstance(request_data.query, str) and _names_no_operation(
                request_data.query, request_data.operation_name if isinstance(request_data.operation_name, str) else None):
            text = ("Must provide operation name if query contains multiple operations." if context.language == "en"
                    else messages.IN_THE_QUERY.format(problem=messages.OPERATION_NAME_NEEDED).ja)  # graphql-core's, or ours
            return ExecutionResult(data=None, errors=[GraphQLError(text, extensions={"code": "GRAPHQL_VALIDATION_FAILED"})])
        run = super().execute_operation(request=request, request_adapter=request_adapter, request_data=request_data,
                                        context=context, root_value=root_value, sub_response=sub_response)
        if isinstance(request_data, list) or not _is_query(
                request_data.query if isinstance(request_data.query, str) else None,  # any other: refused by strawberry
                request_data.operation_name if isinstance(request_data.operation_name, str) else None):
            return await run  # a mutation runs to its end: cut short, its client could not tell what was written
        seconds = self.services.settings.query_seconds
        try:
            return await asyncio.wait_for(run, seconds)
        except TimeoutError:
            log.warning("query %s over its time budget of %s s", request_data.operation_name or "anonymous", seconds)
            words = messages.QUERY_TIMEOUT.format(seconds=f"{seconds:g}")
            return ExecutionResult(data=None, errors=[GraphQLError(words.in_(context.language),
                                                                   extensions={"code": "QUERY_TIMEOUT"})])

    def create_response(self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
                        sub_response: Response) -> Response:
        """The answer, or RESPONSE_TOO_LARGE when its JSON is over ``max_response_bytes``
        (the cost limit estimates an answer; this bounds what one is sent)."""
        response = super().create_response(response_data, sub_response)
        limit = self.services.settings.max_response_bytes
        if len(response.body) <= limit:
            return response
        language, graphql_response = _answer_as.get()
        log.warning("answer of %d bytes refused (over %d)", len(response.body), limit)
        error = {"message": messages.RESPONSE_TOO_LARGE.format(limit=f"{limit:,}").in_(language),
                 "extensions": {"code": "RESPONSE_TOO_LARGE", "limit": limit}}
        body: dict[str, object] = {"errors": [error]} if graphql_response else {"data": None, "errors": [error]}
        refused = JSONResponse(body, status_code=400 if graphql_response else 200)
        refused.raw_headers.extend(h for h in sub_response.raw_headers if h[0] != b"content-length")  # a login's cookie
        return refused

    async def _admit(self, manifest: Mapping[str, str], request_adapter: AsyncHTTPRequestAdapter,
                     request_data: GraphQLRequestData | list[GraphQLRequestData],
                     context: Context) -> GraphQLRequestData | list[GraphQLRequestData]:
        items = request_data if isinstance(request_data, list) else [request_data]
        sent = dict(request_adapter.query_params) if request_adapter.method == "GET" else _body_as_sent.get()
        bodies = operations_of(sent)
        admitted = [await admit(context, manifest, item, body) for item, body in zip(items, bodies, strict=False)]
        return admitted if isinstance(request_data, list) else admitted[0]

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None = None) -> Context:
        context = Context(
            services=self.services,
            request=request,
            response=response,
            request_id=request_id_var.get(),
            language=_language(request.headers.get("accept-language", "")),
        )
        request.state.context = context  # closed by __call__ when the operation is done
        return context


_language = language_of  # tradecert/request_guards.py


async def _record_rules(services: Services, files: Mapping[str, str] | None = None) -> bool:
    """Record the rules being served in the rules history; False when the database could
    not take it now (the watcher tries again)."""
    from resolvers.fees.rules_history import record_version

    try:
        await record_version(services.db, services.rules.current, services.clock, files)
    except Exception as exc:
        log.warning("rules version %s not recorded in the rules history yet: %s", services.rules.current.version,
                    type(exc).__name__)
        return False
    return True


async def _start_rules_history(services: Services) -> None:
    """At start-up: refuse files that rewrite rules already in force (the message says what
    to do), then record the version served. A database that cannot answer now is asked again
    by the watcher."""
    from resolvers.fees.rules_history import history_rewrites

    policy = services.rules.current
    try:
        problems = await history_rewrites(services.db, policy, services.clock)
    except Exception as exc:
        log.warning("rules history not consulted at start-up: %s", type(exc).__name__)
        return
    if problems:
        for problem in problems:
            log.error("rules refused: %s", problem)
        raise RuntimeError(f"the rule files rewrite {len(problems)} row(s) already in force; "
                           "add a new version instead (see the log)")
    await _record_rules(services)


def _history_guard(services: Services, loop: asyncio.AbstractEventLoop,
                   loaded: dict[str, dict[str, str]]) -> Callable[[PolicySet], list[str]]:
    """For RulesRuntime.reload (in a worker thread): the rules history's objections to new
    files, asked on the server's event loop (where the database engine lives). Keeps the
    files' text as loaded in ``loaded`` (the history records exactly what was served)."""
    from resolvers.fees.rules_history import files_of, history_rewrites

    def guard(policy: PolicySet) -> list[str]:
        files = files_of(policy)
        if files is None:  # edited again while loading: the next poll loads them
            raise RuntimeError("the rule files changed while they were loaded")
        loaded[policy.version] = files
        asked = asyncio.run_coroutine_threadsafe(history_rewrites(services.db, policy, services.clock), loop)
        return [str(problem) for problem in asked.result(timeout=60)]

    return guard


async def _reload_rules(services: Services) -> None:
    """Reload edited rule files unless they do not validate or rewrite the rules history;
    record a version that went live."""
    loop = asyncio.get_running_loop()
    loaded: dict[str, dict[str, str]] = {}
    try:
        outcome = await asyncio.to_thread(services.rules.reload, _history_guard(services, loop, loaded))
    except Exception as exc:
        log.error("rules not reloaded: the rules history could not be consulted (%s); still serving %s",
                  exc, services.rules.current.version)
        return
    if outcome.changed:
        await _record_rules(services, loaded.get(outcome.version))


async def _watch_rules(services: Services) -> None:
    interval = services.settings.rules_poll_seconds
    recorded: str | None = None
    while True:
        await asyncio.sleep(interval)
        try:
            await _reload_rules(services)
            version = services.rules.current.version
            if recorded != version and await _record_rules(services):  # cheap: one INSERT … DO NOTHING
                recorded = version
        except Exception:  # never let the watcher die
            log.exception("rules watcher failed")


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> Starlette:
    settings = settings or (services.settings if services else Settings.from_env())
    services = services or build_services(settings)
    gateway_of(services)  # refuses an unknown gateway, and the sandbox in production unless allowed by name
    started_at = services.clock.now()  # job deadlines count from here at the earliest (jobs.overdue_after)
    registry = scrape_registry()  # every worker's counts under `serve --workers N` (tradecert/metrics.py)
    schema = build_schema(settings)
    if settings.trusted_documents_file is not None:  # checked once, at start: ManifestInvalid names file and key
        services.trusted_documents = load_manifest(settings.trusted_documents_file, schema._schema)
    graphql = TradecertGraphQL(
        services,
        schema=schema,
        graphql_ide="graphiql" if settings.graphiql else None,
        allow_queries_via_get=False,
    )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """Ready: the database answers, the rules are loaded and this process's scheduler (if
        it runs one) is alive. Overdue jobs are listed but do not fail it — they are shared by
        every instance, so failing all of them would turn a stuck job into an outage;
        ``/readyz?jobs`` (for monitoring) is 503 while a job is overdue."""
        checks: dict[str, Any] = {}
        ok = True
        try:
            await asyncio.wait_for(services.db.ping(), timeout=5)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
            ok = False
        checks["rulesVersion"] = services.rules.current.version if services.rules.current else None
        checks["worker"] = os.getpid()  # under `serve --workers N`, which process answered (each has its own rules)
        ok = ok and checks["rulesVersion"] is not None
        scheduler = getattr(request.app.state, "scheduler", None)
        checks["scheduler"] = ("off" if not settings.run_jobs
                               else "stopped" if scheduler is not None and scheduler.done() else "running")
        ok = ok and checks["scheduler"] != "stopped"
        detail = "jobs" in request.query_params
        if checks["database"] == "ok":
            try:
                health = await asyncio.wait_for(job_health(services, started_at), timeout=5)
            except Exception as exc:
                checks["overdueJobs"] = None
                if detail:
                    checks["jobs"], ok = f"unreadable: {type(exc).__name__}", False
            else:
                now = services.clock.now()
                checks["overdueJobs"] = [item.name for item in health if item.overdue(now)]
                if detail:
                    checks["jobs"] = {item.name: item.as_json(now) for item in health}
                    ok = ok and not checks["overdueJobs"]
        return JSONResponse({"status": "ready" if ok else "not ready", **checks}, status_code=200 if ok else 503)

    def document(spec: Document) -> Callable[[Request], Awaitable[Response]]:
        """A PDF of an order or application with that object's session and permissions."""

        async def endpoint(request: Request) -> Response:
            from schema.identity import from_global_id

            decoded = from_global_id(request.path_params[spec.key])
            language = _language(request.headers.get("accept-language", ""))
            if decoded is None or decoded[0] != spec.type_name:
                return error_response(404, ErrorCode.NOT_FOUND.value, ErrorCode.NOT_FOUND.message(language))
            context = Context(services=services, request=request, request_id=request_id_var.get(), language=language)
            try:
                pdf = await spec.render(context, decoded[1])
            except GraphQLError as exc:
                return document_refusal(exc, language)
            finally:
                await context.close()
            return Response(pdf, media_type="application/pdf", headers={
                "Content-Disposition": f'inline; filename="{spec.filename}-{decoded[1]}.pdf"', "Cache-Control": "no-store"})

        return endpoint

    async def public_keys(_: Request) -> Response:
        from resolvers.applications.certificates import published_keys

        return JSONResponse(published_keys(services), headers={"Cache-Control": "public, max-age=300"})

    async def verify_page(request: Request) -> Response:
        from pages.verification import verification_page

        return await verification_page(request, services)

    async def metrics(_: Request) -> Response:
        try:  # job gauges from the shared database, so every worker tells the same
            publish_health(await asyncio.wait_for(job_health(services, started_at), timeout=5), services.clock.now())
        except Exception:  # the other metrics are still worth a scrape
            log.warning("metrics: job health unreadable", exc_info=True)
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await _start_rules_history(services)  # refuses files that rewrite rules in force
        watcher = asyncio.create_task(_watch_rules(services)) if settings.rules_poll_seconds > 0 else None
        scheduler = None
        if settings.run_jobs:
            from tradecert.jobs import run_schedule

            scheduler = asyncio.create_task(run_schedule(services))
        app.state.scheduler = scheduler  # /readyz reports a scheduler that stopped
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload_rules(services)))
        try:
            yield
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGHUP)
            for task in (watcher, scheduler):
                if task:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await services.db.dispose()

    async def home(_request: Request) -> Response:
        return home_page(settings)

    app = Starlette(
        routes=[
            Route("/", home, methods=["GET"]),  # the card page's default way back
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/activate", activate_page, methods=["GET", "POST"]),  # POST: the form (pages/activation.py)
            *(Route(spec.path, document(spec), methods=["GET"]) for spec in DOCUMENTS),
            Route("/.well-known/tradecert-keys.json", public_keys, methods=["GET"]),
            Route("/verify", verify_page, methods=["GET"]),
            *gateway_routes(services),
            *(graphiql_routes() if settings.graphiql else ()),
            *mailbox_routes(services),  # /dev/mail, outside production only
            *fee_page_routes(services),  # /fees, the public fee schedule, in production too
            Route("/graphql", graphql),
        ],
        lifespan=lifespan,
        exception_handlers={404: not_served, 405: not_served},
    )
    app.state.services = services
    app.add_middleware(CsrfGuard, settings=settings)
    app.add_middleware(UrlGuard)
    app.add_middleware(RequestIdMiddleware, settings=settings)
    return app


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory tradecert.app:app_from_env` (multi-worker serve)."""
    from resolvers.core.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)


__all__ = ["app_from_env", "build_services", "create_app"]
