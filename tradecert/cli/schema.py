"""`tradecert schema export|trusted-documents`: the GraphQL schema."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tradecert.cli.common import errors


@click.group("schema")
def schema_group() -> None:
    """The GraphQL schema."""


@schema_group.command("export")
def schema_export() -> None:
    """Print the schema in SDL (what schema/schema.graphql holds)."""
    from schema import sdl

    sys.stdout.write(sdl())


@schema_group.command("trusted-documents")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def schema_trusted_documents(directory: Path) -> None:
    """Print the trusted-documents manifest (TRADECERT_TRUSTED_DOCUMENTS) of every *.graphql
    file under DIRECTORY: JSON {"sha256:<hex>": "<document>"}, keys sorted. A file is one
    document (several operations in it run by operationName); exit 1 naming each file that
    does not validate against the schema."""
    from schema import build_schema
    from tradecert.trusted_documents import build_manifest, manifest_json

    manifest, problems = build_manifest(directory, build_schema()._schema)
    if problems:
        for problem in problems:
            errors.print(problem, markup=False, highlight=False)
        raise SystemExit(1)
    sys.stdout.buffer.write(manifest_json(manifest).encode("utf-8"))
    sys.stdout.flush()
