"""Text for a terminal: what it draws and how wide, folded to its width.

``columns`` is the one measure of width for what the CLI folds (`mail list|show`
and `rules diff`): a wide, full-width or ambiguous-width character takes two
columns, as a Japanese terminal draws it, and a combining mark none. Counting ambiguous
characters (…, ○, ①, Greek and Cyrillic letters) as two means a line never runs past the
edge of a Japanese terminal; elsewhere it ends at most a little short.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

from pages.mailbox import url_spans


def columns(text: str) -> int:
    """Terminal columns: wide, full-width and ambiguous-width characters take two, combining marks none."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WFA" else 1 for c in text)


_BIDI = {0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def visible(text: str, *, newlines: bool = True) -> str:
    """Control characters (an escape sequence, a bidirectional override, a NUL) written out
    as ``\\x1b``/``\\u202e`` so a mail cannot drive the terminal or reorder what is shown."""
    out = []
    for char in text:
        code = ord(char)
        if (char == "\n" and newlines) or char == "\t":
            out.append(char)
        elif code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif code in _BIDI:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


# 禁則: a line does not start with the closing marks (they hang at the end of the line before)
_NO_LINE_END = set("(（「『【〔〈《[")  # nor end with these: they go down with the word they open
_NO_LINE_START = set("、。，．,.・：；:;？！?!）)」』】〕〉》ー〜…‥ぁぃぅぇぉっゃゅょァィゥェォッャュョ")


def _tokens(line: str) -> Iterator[tuple[str, str]]:
    """(kind, text): "url" and "word" (narrow characters) never split, "space", and each
    wide character on its own (Japanese breaks between any two characters)."""
    position = 0
    for start, end in [*url_spans(line), (len(line), len(line))]:
        word = ""
        for char in line[position:start]:
            if char.isspace() or columns(char) > 1:
                if word:
                    yield "word", word
                    word = ""
                yield ("space" if char.isspace() else "wide"), char
            else:
                word += char
        if word:
            yield "word", word
        if end > start:
            yield "url", line[start:end]
        position = end


def wrap(line: str, width: int) -> list[str]:
    """One line folded to ``width`` columns, counting wide characters as two; links are
    never broken (a longer one gets a line of its own), other over-long words are."""
    out: list[str] = []
    current, used = "", 0
    for kind, text in _tokens(line):
        size = columns(text)
        if kind == "space":
            if current or not out:  # the line's own indentation stays; a folded line starts at a word
                current, used = current + text, used + size
            continue
        if used + size > width and current.strip() and text not in _NO_LINE_START:
            carried = current[-1] if current[-1] in _NO_LINE_END and current[:-1].strip() else ""
            out.append(current[: len(current) - len(carried)].rstrip())
            current, used = carried, columns(carried)
        if kind == "word" and size > width:
            for char in text:
                if used + 1 > width and current:
                    out.append(current)
                    current, used = "", 0
                current, used = current + char, used + 1
            continue
        current, used = current + text, used + size
    out.append(current.rstrip())
    return out


def wrap_text(text: str, width: int) -> list[str]:
    return [folded for line in text.splitlines() or [""] for folded in wrap(line, width)]
