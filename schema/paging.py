"""Opaque cursors and PageInfo for Relay connections."""

from __future__ import annotations

import base64
import binascii
from typing import Optional

import strawberry


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: Optional[str]


def encode_cursor(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode()


def decode_cursor(type_name: str, cursor: Optional[str]) -> Optional[int]:
    """The id in a cursor of ``type_name``; None for no cursor or another type's (starts over)."""
    if not cursor:
        return None
    try:
        kind, _, pk = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        return int(pk) if kind == type_name else None
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def page_info(edges: list, more: bool) -> PageInfo:
    return PageInfo(has_next_page=more, end_cursor=edges[-1].cursor if edges else None)
