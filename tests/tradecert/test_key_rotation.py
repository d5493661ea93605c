"""Rotating the signing key: certificates signed before stay verifiable by their key id, the
running server signs with the new key without a restart, and the NACCS password key rotates
without losing a sealed password."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from resolvers.applications.certificates import canonical, verify_signature
from resolvers.core.clock import FixedClock
from tests.applications.test_applications import act, create, give_coupons
from tests.conftest import settings_for, start_server, tokyo
from tests.identity.test_subaccounts import as_user
from tests.payments.test_card_checkout import VERIFY

TRADECERT = str(Path(sys.executable).parent / "tradecert")


def tradecert(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([TRADECERT, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **env})


def issue(live, signer, staff, tmp_path: Path, invoice: str) -> tuple[dict, str]:
    """An issued certificate: what verifyCertificate says, and the PDF's signed content and signature."""
    app = create(live, signer, invoiceNumber=invoice)["application"]
    assert act(live, signer, "submitApplication", app["id"])["errors"] == []
    issued = act(live, staff, "approveApplication", app["id"])["application"]
    verified = live.graphql(VERIFY, {"n": issued["certificateNumber"], "c": issued["accessCode"]}).json()["data"]["verifyCertificate"]
    assert verified["valid"]
    verified["asked"] = {"n": issued["certificateNumber"], "c": issued["accessCode"]}
    pdf_url = live.graphql("""query($id: ID!) { node(id: $id) { ... on Application { certificatePdfUrl } } }""",
                           {"id": app["id"]}, headers=signer).json()["data"]["node"]["certificatePdfUrl"]
    path = tmp_path / f"{invoice}.pdf"
    path.write_bytes(httpx.get(pdf_url, headers=signer).content)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    content = info.split("Keywords:", 1)[1].split("\n", 1)[0].strip()
    return verified, content + "\n" + info.split("sig:", 1)[1].split()[0]


async def test_certificates_signed_before_a_rotation_stay_verifiable_by_key_id(migrated, rules_copy, tmp_path):
    target, _db = migrated
    key_file = tmp_path / "keys" / "signing-key.pem"
    settings = settings_for(target.url, rules_copy, signing_key_file=key_file)
    live = await asyncio.to_thread(start_server, settings, FixedClock(tokyo(2026, 4, 1, 10, 0)), target.schema)
    env = {"TRADECERT_SIGNING_KEY_FILE": str(key_file)}
    try:
        signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
        give_coupons(live, 2)
        old, old_signed = await asyncio.to_thread(issue, live, signer, staff, tmp_path, "INV-KEY-1")
        assert [k["kid"] for k in httpx.get(f"{live.url}/.well-known/tradecert-keys.json").json()["keys"]] == [old["keyId"]]

        rotated = tradecert("keys", "rotate", env=env)
        assert rotated.returncode == 0, rotated.stderr
        assert f"retired to {key_file.parent / 'signing-key.retired'}" in rotated.stdout
        assert (key_file.parent / "signing-key.retired" / f"{old['keyId']}.pem").is_file()
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"

        new, new_signed = await asyncio.to_thread(issue, live, signer, staff, tmp_path, "INV-KEY-2")  # no restart
        assert new["keyId"] != old["keyId"] and new["keyId"] in rotated.stdout
        keys = {k["kid"]: k["x"] for k in httpx.get(f"{live.url}/.well-known/tradecert-keys.json").json()["keys"]}
        assert list(keys) == [new["keyId"], old["keyId"]]  # the key that signs now comes first
        again = live.graphql(VERIFY, old["asked"]).json()["data"]["verifyCertificate"]
        assert again["valid"] and again["keyId"] == old["keyId"]  # the public page names the retired key
    finally:
        await asyncio.to_thread(live.stop)
    for verified, signed in ((old, old_signed), (new, new_signed)):
        content, signature = signed.rsplit("\n", 1)
        data = canonical(json.loads(content))
        assert verify_signature(keys[verified["keyId"]], data, signature)
        other = next(kid for kid in keys if kid != verified["keyId"])
        assert not verify_signature(keys[other], data, signature)

    listed = tradecert("keys", "list", env=env)
    assert listed.stdout.splitlines()[0].startswith(f"{new['keyId']}  current")
    assert listed.stdout.splitlines()[1].startswith(f"{old['keyId']}  retired")


def test_keys_rotate_refuses_without_a_key_file(tmp_path):
    done = tradecert("keys", "rotate", env={"TRADECERT_SIGNING_KEY_FILE": str(tmp_path / "none.pem")})
    assert done.returncode == 1 and "signing key" in done.stderr and "is missing" in done.stderr
    assert "Traceback" not in done.stderr


async def test_a_naccs_key_rotation_keeps_sealed_passwords_readable(tmp_path):
    from resolvers.core.sealing import fernet
    from resolvers.core.settings import Settings
    from tradecert.composition import build_services

    key_file = tmp_path / "naccs-fernet.key"
    key_file.write_bytes(Fernet.generate_key() + b"\n")
    services = build_services(Settings.from_env({"TRADECERT_NACCS_KEY_FILE": str(key_file),
                                                 "TRADECERT_DATABASE_URL": f"sqlite:///{tmp_path / 'naccs.db'}"}))
    sealed_before = fernet(services).encrypt(b"pass-before")
    done = tradecert("keys", "rotate-naccs", env={"TRADECERT_NACCS_KEY_FILE": str(key_file)})
    assert done.returncode == 0 and "1 older key(s) still unseal" in done.stdout, done.stderr
    lines = key_file.read_bytes().split()
    assert len(lines) == 2 and oct(key_file.stat().st_mode & 0o777) == "0o600"
    after = fernet(services)
    assert after.decrypt(sealed_before) == b"pass-before"
    sealed_after = after.encrypt(b"pass-after")
    assert Fernet(lines[0]).decrypt(sealed_after) == b"pass-after"  # the new key, on top, seals
    await services.db.dispose()


def test_keys_init_makes_every_key_once_then_rotations_work(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tradecert.cli.keys import KEY_KINDS

    folder = tmp_path / "etc" / "tradecert"
    env = {"TRADECERT_SIGNING_KEY_FILE": "", "TRADECERT_NACCS_KEY_FILE": ""}
    made = tradecert("keys", "init", "--dir", str(folder), env=env)
    assert made.returncode == 0, made.stderr
    files = {kind.setting: folder / kind.file_name for kind in KEY_KINDS}
    assert set(files) == {"TRADECERT_SIGNING_KEY_FILE", "TRADECERT_NACCS_KEY_FILE"}
    for setting, path in files.items():
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        assert f"created  {path}" in made.stdout and f"export {setting}={path}" in made.stdout
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    signing = serialization.load_pem_private_key(files["TRADECERT_SIGNING_KEY_FILE"].read_bytes(), password=None)
    assert isinstance(signing, Ed25519PrivateKey)
    Fernet(files["TRADECERT_NACCS_KEY_FILE"].read_bytes().split()[0])  # a Fernet key

    before = {path: path.read_bytes() for path in files.values()}
    again = tradecert("keys", "init", "--dir", str(folder), env=env)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert again.stderr.strip().startswith("Error: every key already exists; nothing written")
    assert {path: path.read_bytes() for path in files.values()} == before  # never overwritten

    named = {setting: str(path) for setting, path in files.items()}
    assert tradecert("keys", "rotate-naccs", env=named).returncode == 0
    assert tradecert("keys", "rotate", env=named).returncode == 0


def test_keys_init_makes_only_the_missing_key_where_the_settings_say(tmp_path):
    signing, naccs = tmp_path / "signing.pem", tmp_path / "sub" / "naccs.key"
    signing.write_bytes(b"an existing key, kept as it is")
    done = tradecert("keys", "init", env={"TRADECERT_SIGNING_KEY_FILE": str(signing), "TRADECERT_NACCS_KEY_FILE": str(naccs)})
    assert done.returncode == 0, done.stderr
    assert signing.read_bytes() == b"an existing key, kept as it is"
    assert f"kept     {signing}" in done.stdout and f"created  {naccs}" in done.stdout
    assert oct(naccs.stat().st_mode & 0o777) == "0o600"


def test_keys_init_in_production_needs_the_key_settings(tmp_path):
    env = {"TRADECERT_ENV": "production", "TRADECERT_PAYMENT_SECRET": "p" * 40, "TRADECERT_SIGNING_KEY_FILE": "",
           "TRADECERT_NACCS_KEY_FILE": str(tmp_path / "naccs.key"),
           "TRADECERT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"}
    done = tradecert("keys", "init", env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == ("Error: in production set TRADECERT_SIGNING_KEY_FILE (or pass --dir DIR) "
                                   "before `tradecert keys init`")
    assert not (tmp_path / "naccs.key").exists()


def test_rotate_naccs_without_a_key_names_keys_init(tmp_path):
    done = tradecert("keys", "rotate-naccs", env={"TRADECERT_NACCS_KEY_FILE": str(tmp_path / "none.key")})
    assert done.returncode == 1 and "tradecert keys init" in done.stderr and "Traceback" not in done.stderr


def test_keys_init_into_a_directory_it_cannot_make_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for folder in (blocker / "keys", blocker / "deeper" / "keys"):  # (root may write anywhere: a file blocks it)
        done = tradecert("keys", "init", "--dir", str(folder), env={})
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        [line] = [line for line in done.stderr.splitlines() if line.strip()]
        assert str(folder) in line and "no key written" in line, line
