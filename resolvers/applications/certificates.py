"""Issued certificates anyone can verify (the seeds "Printing"; issue: Ed25519 signatures).

On issue, the certificate's content — number, type, dates, chamber, exporter, consignee,
transport, destination, invoice number and goods — is written as canonical JSON
(sorted keys, no spaces, UTF-8), hashed (SHA-256) and signed with the chamber system's
Ed25519 key. The PDF carries the hash, the signature and the canonical JSON (in its
metadata), and a QR code to the public verification page; the public key is published at
``/.well-known/tradecert-keys.json``. So a verifier can check a PDF offline: the JSON's
signature against the published key, and the JSON against what the page shows.

The key lives in ``TRADECERT_SIGNING_KEY_FILE`` (PEM, PKCS#8). For development and tests a
missing file is created on first use (mode 0600); production must provide one.

Rotation (`tradecert keys rotate`): the current key's *public* half moves to the retired
directory beside the key file (``signing-key.pem`` → ``signing-key.retired/<kid>.pem``) and
a new key replaces the file. Every process notices the replaced file at its next signature
(no restart), and the published keys list the current key first, then every retired one:
a certificate names the key that signed it (``kid``), so it stays verifiable for good.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Application, ApplicationGoods, Chamber, TradeRegistration
from resolvers.applications.names import ApplicationState
from resolvers.core import ratelimit
from resolvers.core.clock import tokyo_date
from resolvers.core.context import Context, Services
from rules.limits import limit

_lock = threading.Lock()
_keys: dict[str, tuple[tuple[int, int], Ed25519PrivateKey]] = {}  # path → ((inode, mtime), key)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``data`` unless it exists (O_EXCL: two processes starting together keep one)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def private_key(services: Services) -> Ed25519PrivateKey:
    return load_private_key(Path(services.settings.signing_key_file), create=services.settings.environment != "production")


def load_private_key(path: Path, create: bool = False) -> Ed25519PrivateKey:
    """The key in ``path``, read again whenever the file was replaced (a rotation)."""
    with _lock:
        if not path.exists():
            if not create:
                raise RuntimeError(f"signing key {path} is missing (TRADECERT_SIGNING_KEY_FILE) — make it with `tradecert keys init`")
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_new(path, _pem(Ed25519PrivateKey.generate()), 0o600)
        stat = path.stat()
        version = (stat.st_ino, stat.st_mtime_ns)
        cached = _keys.get(str(path))
        if cached is not None and cached[0] == version:
            return cached[1]
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise RuntimeError(f"{path} is not an Ed25519 private key")
        _keys[str(path)] = (version, key)
        return key


def retired_dir(key_file: Path) -> Path:
    """Where the public halves of retired signing keys live: beside the key file."""
    return key_file.parent / f"{key_file.stem}.retired"


def retired_keys(key_file: Path) -> list[Ed25519PublicKey]:
    """Every retired public key (``<kid>.pem``, SubjectPublicKeyInfo PEM), oldest file first."""
    folder = retired_dir(key_file)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.pem"), key=lambda p: (p.stat().st_mtime_ns, p.name)):
        key = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise RuntimeError(f"{path} is not an Ed25519 public key")
        found.append(key)
    return found


def rotate(key_file: Path) -> tuple[str, str]:
    """Retire the key in ``key_file`` (its public half kept, so what it signed stays verifiable)
    and put a new one in its place; (old kid, new kid). Run it on one host, then copy the key
    file and the retired directory to every other host (docs/operations.md)."""
    old = load_private_key(key_file)
    folder = retired_dir(key_file)
    folder.mkdir(parents=True, exist_ok=True)
    public_pem = old.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_new(folder / f"{key_id(old)}.pem", public_pem, 0o644)  # first: published before the new key signs
    new = Ed25519PrivateKey.generate()
    staging = key_file.with_name(f".{key_file.name}.{secrets.token_hex(4)}")
    _write_new(staging, _pem(new), 0o600)
    os.replace(staging, key_file)  # atomic: a process reads the old file or the new one, never half of one
    return key_id(old), key_id(new)


def public_raw(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    return hashlib.sha256(public_raw(key)).hexdigest()[:16]


def published_keys(services: Services) -> dict[str, Any]:
    """The JWKS-style document at /.well-known/tradecert-keys.json: the key that signs now,
    first, then every retired key (certificates name theirs by ``kid``)."""
    current = private_key(services)
    keys: list[Ed25519PrivateKey | Ed25519PublicKey] = [current, *retired_keys(Path(services.settings.signing_key_file))]
    published: dict[str, dict[str, str]] = {}
    for key in keys:
        published.setdefault(key_id(key), {"kid": key_id(key), "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA",
                                           "use": "sig", "x": _b64(public_raw(key))})
    return {"keys": list(published.values())}


def canonical(content: dict[str, Any]) -> bytes:
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def verify_signature(public_x: str, content: bytes, signature: str) -> bool:
    """Offline check: ``public_x`` from the published keys, ``signature`` from the PDF."""
    from cryptography.exceptions import InvalidSignature

    try:
        raw = base64.urlsafe_b64decode(public_x + "=" * (-len(public_x) % 4))
        sig = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        Ed25519PublicKey.from_public_bytes(raw).verify(sig, content)
        return True
    except (InvalidSignature, ValueError):
        return False


async def content_of(session: AsyncSession, app: Application, number: str, issued_on: dt.date) -> dict[str, Any]:
    registration = await session.get_one(TradeRegistration, app.registration_id)
    chamber = await session.get_one(Chamber, registration.chamber_id)
    goods = (await session.scalars(select(ApplicationGoods).where(ApplicationGoods.application_id == app.id)
                                   .order_by(ApplicationGoods.position))).all()
    return {
        "certificateNumber": number, "receiptNumber": app.receipt_number, "type": app.type,
        "signatureKind": app.signature_kind, "issuedOn": issued_on.isoformat(),
        "chamber": {"code": chamber.code, "name": chamber.name},
        "applicant": {"registrationNumber": registration.number, "name": registration.name},
        "exporter": app.exporter_name, "consignee": app.consignee, "transport": app.transport,
        "destinationCountry": app.destination_country, "invoiceNumber": app.invoice_number,
        "goods": [{"description": g.description, "quantity": g.quantity, "hsCode": g.hs_code,
                   "originCountry": g.origin_country} for g in goods],
    }


def sign(services: Services, content: dict[str, Any]) -> tuple[str, str, str]:
    """(content hash, signature, key id) of the canonical content."""
    key = private_key(services)
    data = canonical(content)
    return hashlib.sha256(data).hexdigest(), _b64(key.sign(data)), key_id(key)


# --------------------------------------------------------------------------- verification


# Access codes: 16 characters of Crockford's base32 (80 random bits), stored without
# separators and shown in groups of four. Certificates issued before carry 8 hex characters
# (32 bits); hex is a subset of the alphabet, so those still verify.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
CODE_LENGTH = 16
_CODE_READS = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})


def new_access_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_access_code(code: str) -> str:
    """What a person typed or a QR link carried, as stored: full-width and lower case
    folded, separators dropped, O read as 0 and I/L as 1 (Crockford)."""
    return unicodedata.normalize("NFKC", code or "")[:64].strip().upper().translate(_CODE_READS)


def format_access_code(code: str | None) -> str | None:
    """Groups of four for people (ABCD-EFGH-JKMN-PQRS); an old 8-character code as it is."""
    if code is None or len(code) != CODE_LENGTH:
        return code
    return "-".join(code[i:i + 4] for i in range(0, CODE_LENGTH, 4))


def _well_formed(number: str, code: str) -> bool:
    return (number.isascii() and number.isdigit() and len(number) <= 20
            and len(code) in (8, CODE_LENGTH) and all(ch in CODE_ALPHABET for ch in code))


@dataclass
class Verification:
    valid: bool
    application: Application | None = None
    chamber: Chamber | None = None


async def verify(services: Services, number: str, access_code: str, client: str) -> Verification:
    """Public: valid only for an issued certificate with this number and access code.

    Every call is an attempt against the limits per client address and per certificate
    number (resolvers/ratelimit.py), counted before the code is compared; raises
    RateLimited (TOO_MANY_REQUESTS) over a limit."""
    number = unicodedata.normalize("NFKC", number or "")[:64].strip()
    code = normalize_access_code(access_code)
    per_address, per_certificate = ratelimit.verify_limits(services.settings)
    charges = [ratelimit.address_charge(per_address, client)]
    if _well_formed(number, code):  # a malformed guess costs the address only
        charges.append(ratelimit.Charge(per_certificate, number))
    await ratelimit.spend(services.db, services.clock.now(), charges)
    if len(charges) == 1:
        return Verification(False)
    async with services.db.read() as session:
        row = (await session.execute(
            select(Application, Chamber).join(TradeRegistration, TradeRegistration.id == Application.registration_id)
            .join(Chamber, Chamber.id == TradeRegistration.chamber_id)
            .where(Application.certificate_number == number, Application.state == ApplicationState.ISSUED))).first()
    if row is None or not hmac.compare_digest((row[0].access_code or "").upper(), code):
        return Verification(False)
    return Verification(True, row[0], row[1])


class Issued(Protocol):
    """What the print window reads of an application: an ORM row or a view."""

    @property
    def issued_at(self) -> dt.datetime | None: ...


def print_until(services: Services, app: Issued) -> dt.date | None:
    """Last day the certificate PDF may be printed: the print window from the rules counts
    from the day after issue (14 days → printable through issue date + 14)."""
    if app.issued_at is None:
        return None
    issued_on = tokyo_date(app.issued_at)
    return issued_on + dt.timedelta(days=limit(services.rules.current, issued_on, "certificate_print_days"))


def printable(ctx: Context, app: Issued) -> bool:
    until = print_until(ctx.services, app)
    return until is not None and ctx.clock.today() <= until
