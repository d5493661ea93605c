"""`tradecert rules show` reads in full at 80 columns, in a terminal and when piped.

Policy staff read the fee schedule and the permission matrix in an 80-column terminal or
through `less`; a cell cut to "account…" hides which action a row is about. Widths are
counted as a Japanese terminal draws them: wide and ambiguous-width characters take two
columns (box-drawing lines are ambiguous, so a table drawn with them breaks there).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import unicodedata
from pathlib import Path

import pytest
import yaml

from tests.conftest import RULES_DIR
from tradecert.cli.show import rules_show

TRADECERT = str(Path(sys.executable).parent / "tradecert")
WHATS = list(getattr(next(p for p in rules_show.params if p.name == "what").type, "choices", ()))
DATES = ["2026-03-31", "2026-04-01"]  # the day before and the day of the 2026 fee revision
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def columns(line: str) -> int:
    """Terminal columns of ``line``: East Asian wide, full-width and ambiguous count 2."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F", "A") else 1 for ch in line)


def piped(*args: str, env_columns: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    if env_columns is not None:
        env["COLUMNS"] = env_columns
    result = subprocess.run([TRADECERT, *args], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def in_terminal(*args: str, width: int = 80) -> str:
    """The output as an 80-column terminal shows it (a real pseudo-terminal, no COLUMNS)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, width, 0, 0))
    process = subprocess.Popen([TRADECERT, *args], stdin=secondary, stdout=secondary, stderr=secondary, env=env,
                               close_fds=True)
    os.close(secondary)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert process.wait(timeout=120) == 0, b"".join(chunks).decode("utf-8", "replace")
    return ANSI.sub("", b"".join(chunks).decode("utf-8")).replace("\r\n", "\n")


def assert_fits(text: str, width: int = 80) -> None:
    assert text.strip(), "no output"
    too_wide = [line for line in text.splitlines() if columns(line) > width]
    assert not too_wide, f"{len(too_wide)} line(s) wider than {width} columns:\n" + "\n".join(too_wide)
    assert "…" not in text and "..." not in text, f"a cell was cut:\n{text}"


def permission_actions() -> set[str]:
    document = yaml.safe_load((RULES_DIR / "permissions.yaml").read_text(encoding="utf-8"))
    return {str(row["action"]) for version in document["versions"] for row in version["rows"]}


def test_every_choice_of_rules_show_is_checked_here():
    assert set(WHATS) >= {"fees", "permissions"}


@pytest.mark.parametrize("what", WHATS)
@pytest.mark.parametrize("env_columns", [None, "80"], ids=["piped", "piped-COLUMNS=80"])
def test_rules_show_fits_80_columns_when_piped(what, env_columns):
    for day in DATES:
        assert_fits(piped("rules", "show", what, "--on", day, env_columns=env_columns))


@pytest.mark.parametrize("what", WHATS)
def test_rules_show_fits_an_80_column_terminal(what):
    assert_fits(in_terminal("rules", "show", what, "--on", "2026-04-01"))


def test_the_permission_matrix_names_every_action_in_full():
    text = piped("rules", "show", "permissions", "--on", "2026-04-01", env_columns="80")
    words = set(re.findall(r"[a-z_]+\.[a-z_]+", text))
    missing = permission_actions() - words
    assert not missing, f"actions not shown in full: {sorted(missing)}\n{text}"


def test_the_permission_matrix_says_who_may_do_an_action():
    """One action, read as policy staff read it: an applicant's signer and sub-ID may buy
    coupons, the admin may not."""
    text = piped("rules", "show", "permissions", "--on", "2026-04-01", env_columns="80")
    block = text.split("coupon.purchase", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"SIGNER\s+APPLICANT\s+own_registration", block), block
    assert re.search(r"SUB\s+APPLICANT\s+own_registration", block), block
    assert "ADMIN" not in block, block


def test_the_fee_schedule_shows_amounts_and_the_rule_behind_them_in_full():
    text = piped("rules", "show", "fees", "--on", "2026-04-01", env_columns="80")
    for amount in ("1,210", "3,630", "16,500", "35,090", "36,300", "3,190"):
        assert amount in text, amount
    for rule_file in ("application_fees.yaml", "registration_fees.yaml", "coupon_products.yaml"):
        assert rule_file in text, rule_file


def test_columns_counts_a_japanese_terminal():
    assert columns("発給申請") == 8 and columns("┃") == 2 and columns("abc") == 3
