"""Every error code, every field label and every state name a user can read has Japanese and
English words; the English ones hold no Japanese, and no message is the bare "please check
the input" (issue 12)."""

from __future__ import annotations

import datetime as dt
import importlib
import re
import string

import pytest

from resolvers.core import messages as core_words
from resolvers.core.errors import ErrorCode, UserFailure
from resolvers.core.messages import Words

JAPANESE = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
GENERIC = ("Please check the input", "入力内容を確認してください")
# a sample for every placeholder any message takes: a label and a state are Words, as callers give them
SAMPLE: dict[str, object] = {
    "label": Words("数量", "Quantity"), "state": Words("申請中", "submitted"), "limit": 100, "min": 8, "max": 64,
    "minutes": 5, "seconds": 30, "date": dt.date(2026, 11, 21), "next": dt.date(2026, 11, 24),
    "earliest": dt.date(2026, 11, 24), "reason": Words("土曜日", "a Saturday"),
    "file": "limits.yaml", "version": 2, "row": 2,  # RULES_OUT_OF_RANGE: the rules row that breaks its bound
}
DOMAINS = ("applications", "coupons", "identity", "naccs", "payments")


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("code", list(ErrorCode), ids=str)
def test_every_code_says_what_is_wrong_in_both_languages(code: ErrorCode) -> None:
    ja, en = code.message("ja", SAMPLE), code.message("en", SAMPLE)
    assert _placeholders(code.ja) <= set(SAMPLE), "the sample fills every placeholder"
    assert "{" not in ja and "{" not in en
    assert ja != en
    assert not any(g.lower() in ja.lower() or g.lower() in en.lower() for g in GENERIC)
    assert not JAPANESE.search(en), en
    assert JAPANESE.search(ja), ja


def test_a_label_and_a_state_read_in_the_asked_language() -> None:
    failure = UserFailure(ErrorCode.INVALID_STATE, ["input", "applicationId"], state=Words("取下げ", "withdrawn"))
    assert failure.message("en") == "Not possible in the current state (withdrawn); reload it and check."
    assert "取下げ" in failure.message("ja")
    invalid = UserFailure(ErrorCode.INVALID, ["input", "quantity"],
                          label=core_words.RANGE_HINT.format(label=Words("数量", "Quantity"), low=1, high=1000))
    assert invalid.message("en") == "Quantity (1 to 1000): the value is not valid."
    assert invalid.message("ja") == "数量(1〜1000)の値が正しくありません。"


def test_the_business_day_codes_name_the_day_to_choose() -> None:
    en = UserFailure(ErrorCode.NOT_BUSINESS_DAY, date=dt.date(2026, 11, 21), next=dt.date(2026, 11, 24),
                     reason=Words("土曜日", "a Saturday")).message("en")
    assert "2026-11-21" in en and "2026-11-24" in en
    ja = UserFailure(ErrorCode.DATE_TOO_EARLY, date=dt.date(2026, 11, 20), earliest=dt.date(2026, 11, 24)).message("ja")
    assert "2026-11-20" in ja and "2026-11-24" in ja


def _words_of(module: object) -> list[tuple[str, Words]]:
    found: list[tuple[str, Words]] = []
    for name, value in vars(module).items():
        if isinstance(value, Words):
            found.append((name, value))
        elif isinstance(value, dict):
            found += [(f"{name}[{key}]", v) for key, v in value.items() if isinstance(v, Words)]
    return found


@pytest.mark.parametrize("domain", ["core", *DOMAINS])
def test_every_label_and_state_name_has_english_without_japanese(domain: str) -> None:
    words = _words_of(importlib.import_module(f"resolvers.{domain}.messages"))
    assert words or domain == "payments"
    for name, value in words:
        assert value.ja.strip() and value.en.strip(), name
        assert not JAPANESE.search(value.en), (name, value.en)
        assert _placeholders(value.ja) == _placeholders(value.en), name


@pytest.mark.parametrize("domain", ["applications", "naccs"])
def test_every_state_has_a_name(domain: str) -> None:
    words = importlib.import_module(f"resolvers.{domain}.messages")
    names = importlib.import_module(f"resolvers.{domain}.names")
    states = names.ApplicationState if domain == "applications" else names.NaccsApplicationState
    assert set(words.STATE_NAMES) == set(states)
