"""Error codes are defined once (resolvers.core.errors.ErrorCode), each with its Japanese
and English message beside it; GraphQL and docs/api.md show the same codes."""

from __future__ import annotations

import re
import string

import pytest
from strawberry.types.enum import StrawberryEnumDefinition

from resolvers.core.errors import ErrorCode, UserFailure
from resolvers.core.settings import PROJECT_DIR
from schema import build_schema


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("code", list(ErrorCode), ids=str)
def test_every_code_has_a_japanese_and_an_english_message(code: ErrorCode) -> None:
    assert code.ja.strip() and code.en.strip()
    assert code.ja != code.en
    assert _placeholders(code.ja) == _placeholders(code.en), "both languages fill the same placeholders"


def test_docs_api_lists_every_code_and_no_other() -> None:
    text = (PROJECT_DIR / "docs" / "api.md").read_text(encoding="utf-8")
    section = text.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"`([A-Z][A-Z_]+)`", section)) == {code.value for code in ErrorCode}


def test_graphql_error_code_is_the_same_enum() -> None:
    found = build_schema().get_type_by_name("ErrorCode")
    assert isinstance(found, StrawberryEnumDefinition)
    assert [v.name for v in found.values] == [code.name for code in ErrorCode]
    assert all(code.name == code.value for code in ErrorCode)


def test_a_failure_speaks_the_asked_language_with_its_params() -> None:
    failure = UserFailure(ErrorCode.TOO_MANY_ITEMS, ["input", "lines"], label="明細", limit=10)
    assert failure.message("ja") == "明細は10件までです。件数を減らしてください。"
    assert failure.message("en") == "明細: at most 10 items; send fewer."


def test_a_plain_code_text_names_the_same_member() -> None:
    failure = UserFailure("NOT_FOUND", ["input", "id"])  # type: ignore[arg-type]  # callers not yet on the enum
    assert failure.code is ErrorCode.NOT_FOUND
    assert failure.code == "NOT_FOUND"


def test_an_unknown_code_fails_where_it_is_raised() -> None:
    with pytest.raises(KeyError):
        UserFailure("NO_SUCH_CODE")  # type: ignore[arg-type]


def test_a_missing_placeholder_leaves_the_template() -> None:
    assert UserFailure(ErrorCode.REQUIRED).message("en") == ErrorCode.REQUIRED.en
