"""`tradecert keys init|list|rotate|rotate-naccs`: the certificate signing key (Ed25519) and the
NACCS password and webhook secret key (Fernet) (docs/operations.md, "The two key files")."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from resolvers.core.settings import Settings
from tradecert.cli.common import fail, settings_from_env


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
    settings = settings_from_env()
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

    path = settings_from_env().signing_key_file
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

    path = settings_from_env().signing_key_file
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

    path = settings_from_env().naccs_key_file
    if not path.is_file():
        raise fail(f"NACCS password key {path} is missing (TRADECERT_NACCS_KEY_FILE) — make it with `tradecert keys init`")
    lines = [line for line in path.read_bytes().split() if line]
    staging = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(b"\n".join([Fernet.generate_key(), *lines]) + b"\n")
    os.replace(staging, path)
    click.echo(f"{path}: a new key seals from now on; {len(lines)} older key(s) still unseal")
