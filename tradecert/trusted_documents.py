"""Trusted documents: with ``TRADECERT_TRUSTED_DOCUMENTS=FILE`` only the GraphQL documents
listed in that manifest run — a production API locked to the operations its own clients use.

The manifest is JSON ``{"sha256:<hex>": "<document>"}``; the key is the SHA-256 of the
document's UTF-8 text, GraphQL-over-HTTP's "SHA256 hex document identifier" (its persisted
documents appendix). ``tradecert schema trusted-documents DIR`` builds one from ``.graphql``
files (:func:`build_manifest`); the server checks it once at start (:func:`load_manifest`)
and refuses to start on a bad one, in one line naming the file and the key.

With a manifest, the HTTP edge decides what a request may run (:func:`admit`), before
anything runs:

* ``{"documentId": "sha256:<hex>", "variables": …, "operationName": …}`` runs that manifest
  document; Apollo's ``extensions.persistedQuery.sha256Hash`` names the same id without its
  prefix. An id not in the manifest: 404 ``PERSISTED_QUERY_NOT_FOUND``.
* ``{"query": "<text>"}`` runs only when the text is exactly a manifest document; anything
  else: 403 ``DOCUMENT_NOT_TRUSTED``.
* Where GraphiQL serves developers (GraphiQL on and not production) three more kinds run,
  so the explorer stays usable: documents of introspection fields only (GraphiQL loads the
  schema with one), ``login``-only mutations (how a GraphiQL user gets a session), and any
  document of a session whose account the permission rules allow
  ``graphql.untrusted_document`` (chamber staff). In production none of them does.

Websockets are refused while a manifest is set (tradecert/app.py): an operation over a
websocket would not pass through here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
    validate,
)
from strawberry.http import GraphQLRequestData

from resolvers.core.context import Context
from resolvers.core.errors import Forbidden
from resolvers.core.messages import Words
from resolvers.identity.actor import authorize, viewer
from tradecert.request_guards import Refused

SETTING = "TRADECERT_TRUSTED_DOCUMENTS"
ACTION = "graphql.untrusted_document"  # rules/permissions.yaml: who may run any document where GraphiQL is on
_ID = re.compile(r"sha256:[0-9a-f]{64}")
INTROSPECTION_FIELDS = frozenset({"__schema", "__type", "__typename"})
LOGIN_FIELDS = frozenset({"login", "__typename"})

NOT_FOUND = Words(
    "documentIdの文書は登録されていません。信頼済み文書の一覧(マニフェスト)にある文書のIDを送ってください。",
    "PersistedQueryNotFound: no trusted document has this documentId; send the id of a document in the server's manifest.",
)
NOT_TRUSTED = Words(
    "この文書は信頼済み文書として登録されていないため実行できません。登録済みの文書のdocumentIdか、その全文をそのまま送ってください。",
    "This document is not trusted: send the documentId of a document in the server's manifest, or its exact text.",
)
BAD_ID = Words("documentIdは文字列(sha256:に16進数64桁)で指定してください。",
               'documentId must be a string ("sha256:" and 64 hex digits).')
MISMATCH = Words("queryがdocumentIdの文書と一致しません。documentIdだけを送ってください。",
                 "The query is not the document of this documentId; send the documentId alone.")


class ManifestInvalid(ValueError):
    """The manifest cannot be used; the message is one line naming the file and the key."""


def document_id(text: str) -> str:
    """The document's id: ``sha256:`` and the hex SHA-256 of its UTF-8 text, as sent."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _one_line(error: GraphQLError) -> str:
    where = f" (line {error.locations[0].line}, column {error.locations[0].column})" if error.locations else ""
    return f"{error.message.splitlines()[0]}{where}"


def problem_of(text: str, schema: GraphQLSchema) -> str | None:
    """Why the document cannot run against ``schema`` (its first error, with line and
    column), or None."""
    try:
        document = parse(text)
    except GraphQLError as exc:
        return _one_line(exc)
    errors = validate(schema, document)
    return _one_line(errors[0]) if errors else None


# --------------------------------------------------------------------------- the manifest


def _entry_problem(key: str, document: object, schema: GraphQLSchema) -> str | None:
    if not _ID.fullmatch(key):
        return 'the key must be "sha256:" and 64 lower-case hex digits'
    if not isinstance(document, str):
        return "the document must be a JSON string"
    if document_id(document) != key:
        return f"the key is not the SHA-256 of its document's UTF-8 text (that is {document_id(document)})"
    problem = problem_of(document, schema)
    return f"the document does not validate against the schema: {problem}" if problem else None


def load_manifest(path: Path, schema: GraphQLSchema) -> dict[str, str]:
    """The manifest at ``path``, every key checked against its document and every document
    against ``schema``; ManifestInvalid (one line: the setting, the file, the first bad key
    and what is wrong, how many more) otherwise."""
    where = f"{SETTING} {path}"
    try:
        loaded: object = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ManifestInvalid(f"{where}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ManifestInvalid(f"{where}: not UTF-8") from None
    except ValueError as exc:
        raise ManifestInvalid(f"{where}: not JSON ({exc})") from None
    if not isinstance(loaded, dict):
        raise ManifestInvalid(f'{where}: must be a JSON object {{"sha256:<hex>": "<document>", …}}')
    if not loaded:
        raise ManifestInvalid(f"{where}: lists no document, so nothing could run")
    problems = []
    for key, document in loaded.items():
        problem = _entry_problem(key, document, schema)
        if problem:
            shown = key if _ID.fullmatch(key) else json.dumps(key[:80], ensure_ascii=False)
            problems.append(f"{shown}: {problem}")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ManifestInvalid(f"{where}: {problems[0]}{more}")
    return {str(key): str(document) for key, document in loaded.items()}


def build_manifest(directory: Path, schema: GraphQLSchema) -> tuple[dict[str, str], list[str]]:
    """The manifest of every ``*.graphql`` file under ``directory`` (recursively, in path
    order), and one line per file that cannot be a trusted document. A file is one document,
    its text exactly as stored: clients send that text, or its id."""
    manifest: dict[str, str] = {}
    problems: list[str] = []
    files = sorted((p for p in directory.rglob("*.graphql") if p.is_file()),
                   key=lambda p: p.relative_to(directory).as_posix())
    for path in files:
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{path}: not UTF-8")
            continue
        problem = problem_of(text, schema)
        if problem:
            problems.append(f"{path}: {problem}")
        else:
            manifest[document_id(text)] = text
    if not files:
        problems.append(f"{directory}: no .graphql file under it")
    return manifest, problems


def manifest_json(manifest: Mapping[str, str]) -> str:
    """The manifest as written out: keys sorted, UTF-8 text as is, so a build is stable."""
    return json.dumps(dict(manifest), sort_keys=True, ensure_ascii=False, indent=2) + "\n"


# --------------------------------------------------------------------------- a request


async def admit(ctx: Context, manifest: Mapping[str, str], operation: GraphQLRequestData,
                body: Mapping[str, object]) -> GraphQLRequestData:
    """The operation to run — a documentId replaced by its manifest text — or Refused.
    ``body`` is the operation's JSON object as sent (strawberry keeps no ``documentId``)."""
    language = ctx.language
    wanted = _requested_id(operation, body, language)
    if wanted is not None:
        document = manifest.get(wanted)
        if document is None:
            raise Refused(404, "PERSISTED_QUERY_NOT_FOUND", NOT_FOUND.in_(language))
        if operation.query is not None and operation.query != document:
            raise Refused(400, "BAD_REQUEST", MISMATCH.in_(language))
        return replace(operation, query=document)
    query = operation.query
    if query is None:  # nothing to run: strawberry answers that no query was found (400)
        return operation
    if manifest.get(document_id(query)) == query or await _developer_may_run(ctx, query):
        return operation
    raise Refused(403, "DOCUMENT_NOT_TRUSTED", NOT_TRUSTED.in_(language))


def _requested_id(operation: GraphQLRequestData, body: Mapping[str, object], language: str) -> str | None:
    given = body.get("documentId")
    if given is not None:
        if not isinstance(given, str):
            raise Refused(400, "BAD_REQUEST", BAD_ID.in_(language), ["documentId"])
        return given
    persisted = (operation.extensions or {}).get("persistedQuery")  # Apollo: the same id, unprefixed
    if isinstance(persisted, dict) and isinstance(persisted.get("sha256Hash"), str):
        return f"sha256:{persisted['sha256Hash']}"
    return None


async def _developer_may_run(ctx: Context, query: str) -> bool:
    """Where GraphiQL serves developers: introspection-only and login-only documents, and
    any document of a session the rules allow ``graphql.untrusted_document``."""
    settings = ctx.services.settings
    if not settings.graphiql or settings.environment == "production":
        return False
    try:
        document = parse(query, max_tokens=settings.max_query_tokens)
    except GraphQLError:
        document = None
    if document is not None and (_only(document, OperationType.QUERY, INTROSPECTION_FIELDS)
                                 or _only(document, OperationType.MUTATION, LOGIN_FIELDS)):
        return True
    return await _session_may_run_any(ctx)


async def _session_may_run_any(ctx: Context) -> bool:
    who = await viewer(ctx)
    if who is None or who.api_key_id is not None:  # an API key is a system's credential, not a person at GraphiQL
        return False
    try:
        await authorize(ctx, who, ACTION, {"none"})
    except Forbidden:
        return False
    return True


def _only(document: DocumentNode, kind: OperationType, fields: frozenset[str]) -> bool:
    """Every operation of the document is of ``kind`` and selects, at its root, only
    ``fields`` (fragments at the root followed). What lies below them is the schema's
    business: validation keeps ``__schema { … }`` on introspection types."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    return bool(operations) and all(
        op.operation == kind and _root_fields(op.selection_set, fragments, set()) <= fields for op in operations)


def _root_fields(selections: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode],
                 seen: set[str]) -> set[str]:
    names: set[str] = set()
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            names.add(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            names |= _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None:
                names.add(f"...{name}")  # unknown: not one of the allowed fields
            elif name not in seen:
                names |= _root_fields(fragment.selection_set, fragments, seen | {name})
    return names


def operations_of(body: object) -> Iterable[Mapping[str, object]]:
    """The JSON object of each operation of a body (one, or a batch's)."""
    items = body if isinstance(body, list) else [body]
    return [item if isinstance(item, dict) else {} for item in items]
