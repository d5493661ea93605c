"""argon2id password hashing, run off the event loop (hashing costs ~tens of ms)."""

from __future__ import annotations

import asyncio
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    def _verify() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(_verify)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the ID does not exist, so a login costs the same either way
    (made on first use, not at import)."""
    return _hasher.hash("tradecert-timing-equaliser")


async def verify_or_spend(password_hash: str | None, password: str) -> bool:
    if password_hash is None:
        await verify_password(await asyncio.to_thread(_dummy_hash), password)
        return False
    return await verify_password(password_hash, password)


PASSWORD_MIN, PASSWORD_MAX = 10, 128


def password_is_acceptable(password: str, username: str | None) -> bool:
    """Half-width printable ASCII, 10–128 characters, letters and digits, not the ID."""
    if not (PASSWORD_MIN <= len(password) <= PASSWORD_MAX):
        return False
    if not all(" " < ch <= "~" for ch in password):  # full-width or control characters
        return False
    if not any(ch.isalpha() for ch in password) or not any(ch.isdigit() for ch in password):
        return False
    if username and username.lower() in password.lower():
        return False
    return len(set(password)) > 3
