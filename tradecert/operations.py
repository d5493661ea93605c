"""Operator commands: database backup and restore, signing-key rotation, and the one-line
errors every command ends with when the database cannot be used (docs/operations.md).

Imports only click and the settings at module level: `tradecert --help` stays fast.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from resolvers.core.settings import PROJECT_DIR, Settings

DEFAULT_DATA_DIR = PROJECT_DIR / "var"  # the one directory an SQLite database may create for itself


class OneLineErrors(click.Group):
    """The `tradecert` group: a database that cannot be reached or used (no server, no such
    database or schema, no tables yet, a missing directory) ends the command with one line on
    stderr saying what is missing and what to do, and exit status 1 — never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            line = _database_problem(exc)
            if line is None:
                raise
            raise click.ClickException(line) from None


def _database_problem(exc: BaseException) -> str | None:
    from persistence.problems import explain

    try:
        settings = Settings.from_env()
    except ValueError:
        return None
    return explain(exc, settings.database_url, settings.database_schema)


def fail(message: str) -> click.ClickException:
    return click.ClickException(message)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise fail(f"configuration: {exc}") from None


# --------------------------------------------------------------------------- checks before work


async def check_database(settings: Settings) -> None:
    """Raise DatabaseUnavailable (one line) unless the configured database can be reached and,
    on PostgreSQL, its schema exists. An SQLite file's directory must exist, except the default
    ``var/`` of a checkout, which is made."""
    from persistence.db import Database
    from persistence.problems import check, check_sqlite_directory

    check_sqlite_directory(settings.database_url, may_create=DEFAULT_DATA_DIR)
    database = Database(settings.database_url, schema=settings.database_schema)
    try:
        await check(database.engine, settings.database_url, settings.database_schema)
    finally:
        await database.dispose()


async def require_migrated(settings: Settings) -> str | None:
    """Before serving: the database must be at this release's revision. Raises
    DatabaseUnavailable naming the command to run; returns a warning when the database is at a
    revision this release does not know (a newer release migrated it)."""
    from alembic.script import ScriptDirectory

    from persistence import migrate
    from persistence.db import Database
    from persistence.problems import DatabaseUnavailable

    await check_database(settings)
    database = Database(settings.database_url, schema=settings.database_schema)
    try:
        current = await migrate.current_revision(database.engine)
    finally:
        await database.dispose()
    head = migrate.head_revision()
    if current == head:
        return None
    if current is None:
        raise DatabaseUnavailable("the database has no tradecert tables yet — run `tradecert db upgrade` first")
    known = {script.revision for script in ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions()}
    if current in known:
        raise DatabaseUnavailable(f"the database is at revision {current}, this release needs {head} — "
                                  "back it up, then run `tradecert db upgrade`")
    return (f"the database is at revision {current}, newer than this release ({head}); "
            "serving anyway — upgrade this host's release")


# --------------------------------------------------------------------------- backup and restore


def _libpq_env(settings: Settings) -> tuple[dict[str, str], str]:
    """Environment for pg_dump/pg_restore (host, port, user, password) and the database name."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    env = dict(os.environ)
    for name, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username), ("PGPASSWORD", url.password)):
        if value:
            env[name] = str(value)
    return env, url.database or ""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise fail(f"{name} not found — install the PostgreSQL client of the server's major version "
                   "(Debian: apt-get install postgresql-client)")
    return found


def _sqlite_source(settings: Settings) -> Path:
    from persistence.problems import sqlite_file

    path = sqlite_file(settings.database_url)
    if path is None:
        raise fail("an in-memory SQLite database has nothing to back up")
    if not path.is_file():
        raise fail(f"no SQLite database at {path} — check TRADECERT_DATABASE_URL")
    return path


def backup_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while the server keeps serving (a read
    transaction on the source, which in WAL mode waits for no writer and stops none), written
    beside ``target`` and renamed into place once checked."""
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # all pages in one step: one snapshot
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
            verdict = dst.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            dst.close()
    finally:
        src.close()
    if verdict != "ok":
        partial.unlink(missing_ok=True)
        raise fail(f"the copy of {source} fails SQLite's quick_check ({verdict}); {target} was not written")
    os.replace(partial, target)


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option("--force", is_flag=True, help="Replace PATH if it exists.")
def db_backup(path: Path, force: bool) -> None:
    """Back the database up into PATH, safe while the server runs.

    SQLite: the online backup API (one consistent file). PostgreSQL: pg_dump's custom format
    (restore with pg_restore), only TRADECERT_DATABASE_SCHEMA if it is set."""
    import asyncio

    settings = _settings()
    if path.exists() and not force:
        raise fail(f"{path} exists — choose a new file or pass --force")
    if not path.parent.is_dir():
        raise fail(f"directory {path.parent} does not exist — create it first")
    asyncio.run(check_database(settings))
    if settings.is_sqlite:
        backup_sqlite(_sqlite_source(settings), path)
    else:
        env, database = _libpq_env(settings)
        command = [_tool("pg_dump"), "--format=custom", "--no-password", f"--file={path}", database]
        if settings.database_schema:
            command[-1:-1] = [f"--schema={settings.database_schema}"]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            path.unlink(missing_ok=True)
            raise fail(f"pg_dump failed: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    click.echo(f"backed up to {path} ({path.stat().st_size:,} bytes)")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already has tables.")
def db_restore(path: Path, force: bool) -> None:
    """Restore an SQLite backup (from `tradecert db backup`) into the configured database.

    Stop the server first. On PostgreSQL restore a pg_dump file with pg_restore
    (docs/operations.md); this command prints the line to run."""
    from persistence.problems import check_sqlite_directory, sqlite_file

    settings = _settings()
    if not settings.is_sqlite:
        env, database = _libpq_env(settings)
        raise fail(f"on PostgreSQL restore with pg_restore: pg_restore --no-owner --exit-on-error "
                   f"-h {env.get('PGHOST', 'localhost')} -p {env.get('PGPORT', '5432')} -d {database} {path}")
    target = sqlite_file(settings.database_url)
    if target is None:
        raise fail("cannot restore into an in-memory SQLite database")
    check_sqlite_directory(settings.database_url, may_create=DEFAULT_DATA_DIR)
    try:
        source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        tables = {row[0] for row in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise fail(f"{path} is not an SQLite database ({exc})") from None
    if "alembic_version" not in tables:
        source.close()
        raise fail(f"{path} is not a tradecert backup (no alembic_version table)")
    if target.exists() and not force:
        with sqlite3.connect(target) as existing:
            if existing.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]:
                source.close()
                raise fail(f"{target} already has tables — stop the server and pass --force to replace it")
    try:
        destination = sqlite3.connect(target)
        try:
            source.backup(destination)  # through SQLite, so a -wal file beside the target is replaced too
        finally:
            destination.close()
    finally:
        source.close()
    click.echo(f"restored {path} into {target}")


# --------------------------------------------------------------------------- keys


def _ed25519_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _fernet_lines() -> bytes:
    from cryptography.fernet import Fernet

    return Fernet.generate_key() + b"\n"  # one key per line: rotate-naccs puts the next on top


@dataclass(frozen=True)
class KeyKind:
    """A key file a production deployment needs. ``tradecert keys init`` makes every kind in
    KEY_KINDS that is missing; a new kind (one file, made by one function) is one more entry."""

    name: str
    setting: str  # the environment variable that names the file
    file_name: str  # its name under `keys init --dir`
    path: Callable[[Settings], Path]  # where the settings put it
    make: Callable[[], bytes]  # the new file's content


KEY_KINDS: tuple[KeyKind, ...] = (
    KeyKind("certificate signing key (Ed25519)", "TRADECERT_SIGNING_KEY_FILE", "signing-key.pem",
            lambda settings: settings.signing_key_file, _ed25519_pem),
    KeyKind("NACCS password and webhook secret key (Fernet)", "TRADECERT_NACCS_KEY_FILE", "naccs-fernet.key",
            lambda settings: settings.naccs_key_file, _fernet_lines),
)


def _create_key_file(path: Path, data: bytes) -> bool:
    """Write ``path`` (mode 0600) unless it exists; False when it did (O_EXCL: never overwritten,
    not even by a second `keys init` racing this one)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o600)  # whatever the umask
    return True


@click.group("keys")
def keys() -> None:
    """The certificate signing key (Ed25519) and the NACCS password key (Fernet)."""


@keys.command("init")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Make the keys in DIR (created, mode 0700) under their usual names; "
                   "default: where TRADECERT_SIGNING_KEY_FILE and TRADECERT_NACCS_KEY_FILE say.")
def keys_init(directory: Path | None) -> None:
    """Make every key a deployment needs that is missing, mode 0600, and print the settings
    that name them. An existing key file is never overwritten (rotate it with `keys rotate` or
    `keys rotate-naccs`); exit 1 when every key already exists."""
    settings = _settings()
    if directory is None and settings.environment == "production":
        unset = [kind.setting for kind in KEY_KINDS if not os.environ.get(kind.setting)]
        if unset:  # the defaults are under the release's var/ (site-packages after `pip install .`)
            raise fail(f"in production set {' and '.join(unset)} (or pass --dir DIR) before `tradecert keys init`")
    if directory is not None:
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise fail(f"{directory.absolute()}: {exc.strerror or exc} — no key written there") from None
    planned = [(kind, (directory / kind.file_name if directory is not None else kind.path(settings)).absolute())
               for kind in KEY_KINDS]
    created = []
    for kind, path in planned:
        if path.exists():
            click.echo(f"kept     {path}  {kind.name}: exists, not overwritten")
            continue
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            made = _create_key_file(path, kind.make())
        except OSError as exc:
            raise fail(f"{path}: {exc.strerror or exc} — no key written there") from None
        if made:
            created.append(path)
            click.echo(f"created  {path}  {kind.name}, mode 0600")
        else:
            click.echo(f"kept     {path}  {kind.name}: exists, not overwritten")
    click.echo("set, for `tradecert serve` and every other command:")
    for kind, path in planned:
        click.echo(f"  export {kind.setting}={path}")
    if not created:
        raise fail("every key already exists; nothing written (rotate with `tradecert keys rotate` "
                   "or `tradecert keys rotate-naccs`)")
    click.echo("back the key files up apart from the database (docs/operations.md, \"The two key files\")")


@keys.command("list")
def keys_list() -> None:
    """The signing keys /.well-known/tradecert-keys.json publishes: current, then retired."""
    from resolvers.applications.certificates import key_id, load_private_key, retired_dir, retired_keys

    path = _settings().signing_key_file
    try:
        current = load_private_key(path)
    except RuntimeError as exc:
        raise fail(str(exc)) from None
    click.echo(f"{key_id(current)}  current  {path}")
    for key in retired_keys(path):
        if key_id(key) != key_id(current):
            click.echo(f"{key_id(key)}  retired  {retired_dir(path) / (key_id(key) + '.pem')}")


@keys.command("rotate")
def keys_rotate() -> None:
    """Retire the signing key (its public half stays published) and make a new one.

    Certificates signed before keep verifying by their key id. Running servers sign with the
    new key from their next certificate on; copy the key file and its .retired directory to
    every other host."""
    from resolvers.applications.certificates import retired_dir, rotate

    path = _settings().signing_key_file
    try:
        old, new = rotate(path)
    except RuntimeError as exc:
        raise fail(str(exc)) from None
    click.echo(f"signing key {new} now signs; {old} retired to {retired_dir(path)}")


@keys.command("rotate-naccs")
def keys_rotate_naccs() -> None:
    """Put a new Fernet key on top of TRADECERT_NACCS_KEY_FILE (it seals from now on; the older
    lines still unseal). Delete an older line once the longest password window has passed and
    no webhook endpoint registered before the rotation is in use (its secret is sealed with it)."""
    from cryptography.fernet import Fernet

    path = _settings().naccs_key_file
    if not path.is_file():
        raise fail(f"NACCS password key {path} is missing (TRADECERT_NACCS_KEY_FILE) — make it with `tradecert keys init`")
    lines = [line for line in path.read_bytes().split() if line]
    staging = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(b"\n".join([Fernet.generate_key(), *lines]) + b"\n")
    os.replace(staging, path)
    click.echo(f"{path}: a new key seals from now on; {len(lines)} older key(s) still unseal")
