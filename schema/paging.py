"""Opaque cursors and PageInfo for Relay connections; page arguments checked once, here."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Protocol

import strawberry

from resolvers.core import messages
from resolvers.core.paging import DEFAULT_PAGE, MAX_PAGE
from schema.identity import parse_pk
from schema.inputs import BadUserInput


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def encode_cursor(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode()


def decode_cursor(type_name: str, cursor: str | None) -> int | None:
    """The id in a cursor of ``type_name``; None for no cursor. Anything else — another list's
    cursor, a malformed one, an id no row can have — is BAD_USER_INPUT: starting over silently
    would send a paging client round in circles."""
    if not cursor:
        return None
    try:
        kind, _, text = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
    except (binascii.Error, UnicodeError, ValueError):
        kind, text = "", ""
    pk = parse_pk(text) if kind == type_name else None
    if pk is None:
        raise BadUserInput(messages.BAD_VALUE_WITHOUT_ECHO.format(argument=messages.AFTER, problem=messages.NOT_A_CURSOR),
                           messages.AFTER)
    return pk


def page_window(type_name: str, first: int | None, after: str | None) -> tuple[int, int | None]:
    """(page size, id to continue below) from ``first`` (1–100, default 20) and ``after``."""
    if first is None:
        first = DEFAULT_PAGE
    if not 1 <= first <= MAX_PAGE:
        problem = messages.PAGE_SIZE.format(limit=MAX_PAGE)
        raise BadUserInput(messages.BAD_VALUE.format(argument=messages.FIRST, problem=problem, value=first), messages.FIRST)
    return first, decode_cursor(type_name, after)


class _Edge(Protocol):
    @property
    def cursor(self) -> str: ...


def page_info(edges: Sequence[_Edge], more: bool) -> PageInfo:
    return PageInfo(has_next_page=more, end_cursor=edges[-1].cursor if edges else None)
