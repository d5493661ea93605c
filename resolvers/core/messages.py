"""Words a user reads that every domain shares: the field labels and hints of
resolvers/core/validation.py. A label fills the ``{label}`` of an ErrorCode's message.

A domain's own words (mails, notices, reasons, its field labels) live in its
``messages.py``; the error messages live beside their codes (resolvers/core/errors.py)."""

from __future__ import annotations

from typing import Final

PERSON_NAME: Final = "氏名"
EMAIL: Final = "E-mail"
PHONE: Final = "電話番号"

# a label and what the value must look like: INVALID's message shows both
NAME_FORMAT_HINT: Final = "{label}(姓と名を1つの空白で区切る)"
HALF_WIDTH_DIGITS_HINT: Final = "{label}(半角数字)"
MAX_LENGTH_HINT: Final = "{label}({limit}文字以内)"
