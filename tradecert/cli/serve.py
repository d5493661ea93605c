"""`tradecert serve`: GraphQL (+ GraphiQL), the pages, /healthz, /readyz, /metrics over uvicorn."""

from __future__ import annotations

import asyncio
import os

import click

from resolvers.core.settings import Settings
from tradecert.cli.common import console, errors, require_migrated

# the command's body reads as it did in one cli.py: the shared helpers keep their names here
from tradecert.cli.common import load_rules as _load_rules
from tradecert.cli.common import settings_from_env as _settings
from tradecert.cli.common import upgrade as _upgrade
from tradecert.cli.demo import refuse_demo_in_production as _refuse_demo_in_production
from tradecert.cli.demo import seed as _seed
from tradecert.cli.keys import KEY_KINDS


@click.command()
@click.option("--host", default=lambda: os.environ.get("HOST", "127.0.0.1"), show_default="127.0.0.1")
@click.option("--port", default=lambda: int(os.environ.get("PORT", "8000")), type=int, show_default="8000")
@click.option("--workers", default=1, type=int, show_default=True, help="Worker processes (use PostgreSQL for more than 1).")
@click.option("--demo", "with_demo", is_flag=True,
              help="Upgrade the database and load the demo data first (refused in production).")
def serve(host: str, port: int, workers: int, with_demo: bool) -> None:
    """Serve GraphQL (+ GraphiQL), /healthz, /readyz, /metrics."""
    import uvicorn

    from resolvers.core.logs import configure_logging

    settings = _settings()
    if with_demo:
        _refuse_demo_in_production(settings)
    _require_production_settings(settings)
    _require_gateway(settings)
    _require_trusted_documents(settings)
    if not os.environ.get("TRADECERT_PUBLIC_URL"):
        # links in mails must reach this server: default to where it listens
        public_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        os.environ["TRADECERT_PUBLIC_URL"] = f"http://{public_host}:{port}"  # also for --workers processes
        settings = settings.with_(public_url=os.environ["TRADECERT_PUBLIC_URL"])
    configure_logging(settings.log_level, settings.log_json)
    _load_rules(settings)  # refuse to start on rules that do not validate, naming each problem
    if with_demo:
        asyncio.run(_upgrade(settings))
        report = asyncio.run(_seed(settings))
        console.print(f"demo data: {report.created} created, {report.existing} already there")
    elif settings.is_sqlite:
        asyncio.run(_upgrade(settings, only_if_empty=True))  # an empty embedded database upgrades itself
    elif warning := asyncio.run(require_migrated(settings)):  # PostgreSQL: at this release's revision
        errors.print(f"[yellow]{warning}[/]")
    if settings.environment == "production" and not settings.smtp_url:
        # `mail list` and /dev/mail are off in production: without a relay nobody reads the outbox
        errors.print("[yellow]TRADECERT_SMTP_URL is not set: mails (sub-ID activation links, notices) wait in the "
                     "outbox and reach nobody (docs/operations.md, \"Mail (SMTP)\")[/]")
    if workers > 1 and settings.is_sqlite:
        errors.print("[yellow]several workers on SQLite serialise their writes; use PostgreSQL in production[/]")
    console.print(f"GraphQL at http://{host}:{port}/graphql " + (
        "(GraphiQL in a browser)" if settings.graphiql else "(POST only; GraphiQL is off)"))
    # proxy_headers=False: the client address is the socket peer unless TRADECERT_TRUSTED_PROXIES
    # says otherwise (resolvers/ratelimit.py); uvicorn would believe X-Forwarded-For from 127.0.0.1.
    from tradecert.metrics import multiprocess_metrics

    with multiprocess_metrics(workers):  # every worker's counts in /metrics; set up before any worker starts
        if workers > 1:
            uvicorn.run("tradecert.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                        log_config=None, access_log=False, proxy_headers=False)
        else:
            from tradecert.app import create_app

            uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False,
                        proxy_headers=False)  # access_log: tradecert.http logs each request once (tradecert/app.py)


def _require_production_settings(settings: Settings) -> None:
    """In production, refuse to start (one line, exit 1) on what would otherwise fall back to a
    development default at the first request that needs it: the public address (else every
    certificate's printed verification link and every mailed link point at 127.0.0.1) and the
    two key files (else the first approval fails; the defaults lie under the release's var/)."""
    if settings.environment != "production":
        return
    if not os.environ.get("TRADECERT_PUBLIC_URL"):
        raise click.ClickException(
            "configuration: TRADECERT_PUBLIC_URL must be set in production (the address people use: "
            "the base of mailed links and of the verification link printed on certificates)")
    for kind in KEY_KINDS:
        if not os.environ.get(kind.setting):
            raise click.ClickException(f"configuration: {kind.setting} must be set in production "
                                       "(make the key files with `tradecert keys init --dir DIR`)")
        if not kind.path(settings).is_file():
            raise click.ClickException(f"configuration: {kind.name} {kind.path(settings)} is missing "
                                       f"({kind.setting}) — make it with `tradecert keys init`")


def _require_gateway(settings: Settings) -> None:
    """Refuse to start (before any worker does) without a usable card gateway: one line, exit 1."""
    from resolvers.adapters.gateway import GatewayNotConfigured, gateway_for

    try:
        gateway_for(settings)
    except GatewayNotConfigured as exc:
        raise click.ClickException(f"configuration: {exc}") from None


def _require_trusted_documents(settings: Settings) -> None:
    """Refuse to start (before any worker does) on a trusted-documents manifest that does not
    check: one line naming the file and the key, exit 1."""
    if settings.trusted_documents_file is None:
        return
    from schema import build_schema
    from tradecert.trusted_documents import ManifestInvalid, load_manifest

    try:
        load_manifest(settings.trusted_documents_file, build_schema(settings)._schema)
    except ManifestInvalid as exc:
        raise click.ClickException(f"configuration: {exc}") from None
