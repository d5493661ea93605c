"""Field checks shared by use cases. Each returns a UserFailure naming the input field."""

from __future__ import annotations

import datetime as dt
import re

from email_validator import EmailNotValidError, validate_email

from resolvers.core import messages
from resolvers.core.errors import ErrorCode, UserFailure
from resolvers.core.messages import Label, Words

_HALF_WIDTH_PHONE = re.compile(r"^[0-9][0-9\-]{5,19}$")
_SPACES = (" ", "\u3000")  # half-width or full-width space between family and given name
# NUL cannot be stored in PostgreSQL text and no driver encodes a lone surrogate. The HTTP edge
# refuses both in any request (tradecert/request_guards.py); this keeps other callers (CLI, jobs) honest.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def person_name(value: str | None, field: list[str], label: Label = messages.PERSON_NAME) -> UserFailure | str:
    """Family and given name separated by exactly one space, at most 60 characters."""
    if value is None or not value.strip():
        return UserFailure(ErrorCode.REQUIRED, field, label=label)
    value = value.strip()
    if _UNSTORABLE.search(value):
        return UserFailure(ErrorCode.INVALID, field, label=messages.CONTROL_CHARACTER_HINT.format(label=label))
    parts = re.split(r"[ \u3000]", value)
    if len(value) > 60 or len(parts) != 2 or not all(parts):
        return UserFailure(ErrorCode.INVALID, field, label=messages.NAME_FORMAT_HINT.format(label=label))
    return value


def email(value: str | None, field: list[str], label: Label = messages.EMAIL) -> UserFailure | str:
    if value is None or not value.strip():
        return UserFailure(ErrorCode.REQUIRED, field, label=label)
    value = value.strip()
    if len(value) > 254 or not value.isascii():
        return UserFailure(ErrorCode.INVALID, field, label=label)
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        return UserFailure(ErrorCode.INVALID, field, label=label)


def phone(value: str | None, field: list[str], required: bool = False, label: Label = messages.PHONE) -> UserFailure | str | None:
    """Half-width digits (hyphens allowed), 6–20 characters."""
    if value is None or not value.strip():
        return UserFailure(ErrorCode.REQUIRED, field, label=label) if required else None
    value = value.strip()
    if not _HALF_WIDTH_PHONE.match(value):
        return UserFailure(ErrorCode.INVALID, field, label=messages.HALF_WIDTH_DIGITS_HINT.format(label=label))
    return value


def text(value: str | None, field: list[str], max_length: int, label: Label, required: bool = True) -> UserFailure | str | None:
    if value is None or not value.strip():
        return UserFailure(ErrorCode.REQUIRED, field, label=label) if required else None
    if len(value) > max_length:
        return UserFailure(ErrorCode.INVALID, field, label=messages.MAX_LENGTH_HINT.format(label=label, limit=max_length))
    if _UNSTORABLE.search(value):
        return UserFailure(ErrorCode.INVALID, field, label=messages.CONTROL_CHARACTER_HINT.format(label=label))
    return value.strip()


def domain_of(address: str | None) -> str | None:
    return address.rsplit("@", 1)[1].lower() if address and "@" in address else None


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def iso_date(value: object) -> dt.date | Words:
    """A YYYY-MM-DD date, or what is wrong with ``value``: the format (2026/02/01), or a day
    the calendar does not have (2026-02-30) — told apart, so the message says which."""
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        return messages.DATE_FORMAT
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return messages.DATE_DOES_NOT_EXIST
