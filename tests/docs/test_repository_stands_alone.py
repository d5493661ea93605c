"""The repository stands alone: a clone holds everything a reader is sent to.

docs/api.md explains every error code and lists every demo account the seed creates (read
from tradecert/demo.py, not from a copy); its GraphQL examples are valid against the
schema and do what it says on a real server. No README, doc, CLI help text or schema
description sends the reader to a file outside the repository, and every relative link
of README.md and docs/*.md leads to a file (and heading) that exists.

Citations of the seed documents (``eco-payment-2026 §5``) name where a rule comes from,
like a circular's number; they are sources, not pointers a reader must follow to use
tradecert, and stay allowed. docs/decisions.md records history — what earlier versions
said and why it changed — so it is not scanned for pointers.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from pathlib import Path

import click
import pytest
from graphql import parse, validate

from resolvers.core.errors import ErrorCode
from resolvers.core.settings import PROJECT_DIR
from schema import SDL_PATH, sdl
from tradecert import demo
from tradecert.cli import main as cli_main

API_MD = PROJECT_DIR / "docs" / "api.md"
# spelled in pieces, so this file does not match itself
OUTSIDE = [re.escape(".." + "/shared"), re.escape("/work/" + "shared"), re.escape("SPEC" + ".md"),
           re.escape("API" + ".md") + r"\s*§"]
SEED_CITATION = re.compile(r"(?:eco|naccs)-[a-z0-9-]+(?:\.ja\.txt)?:?\s+§\s*\d")
SECTION_SIGN = re.compile(r"§\s*\d")
TEXT_SUFFIXES = {".md", ".py", ".graphql", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".txt", ".html", ".sh", ".mako"}


# --------------------------------------------------------------------------- reading docs/api.md


def section(markdown: str, heading: str) -> str:
    """The text under ``## heading`` up to the next heading of the same level."""
    match = re.search(rf"^## {re.escape(heading)}\s*$", markdown, re.M)
    assert match, f"docs/api.md has no section '## {heading}'"
    rest = markdown[match.end():]
    end = re.search(r"^## ", rest, re.M)
    return rest[: end.start()] if end else rest


def table_rows(text: str, first_header: str) -> list[list[str]]:
    """The body rows of the markdown table whose first header cell is ``first_header``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_header:
            rows = []
            for body in lines[i + 2:]:
                if not body.startswith("|"):
                    break
                rows.append([c.strip() for c in body.strip().strip("|").split("|")])
            return rows
    raise AssertionError(f"no table with first column '{first_header}'")


def unquoted(cell: str) -> str:
    return cell.replace("`", "").strip()


def api_md() -> str:
    return API_MD.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- error codes


def test_every_error_code_is_explained_with_what_to_do():
    rows = {unquoted(r[0]): r for r in table_rows(section(api_md(), "Error codes"), "code")}
    missing = [code.value for code in ErrorCode if code.value not in rows]
    assert not missing, f"error codes not in docs/api.md 'Error codes': {missing}"
    for code in ErrorCode:
        row = rows[code.value]
        assert len(row) == 3 and all(cell for cell in row), f"{code}: needs a meaning and what to do: {row}"
    unknown = set(rows) - {c.value for c in ErrorCode}
    assert not unknown, f"docs/api.md explains codes the API does not have: {unknown}"


# --------------------------------------------------------------------------- demo data


def demo_accounts_table() -> dict[str, list[str]]:
    return {unquoted(r[0]): r for r in table_rows(section(api_md(), "Demo data"), "username")}


def test_every_demo_account_is_in_the_table_with_its_password_kind_and_registration():
    table = demo_accounts_table()
    seeded = {username for username, *_ in demo.ACCOUNTS}
    assert seeded - set(table) == set(), f"seeded but not in docs/api.md: {sorted(seeded - set(table))}"
    assert set(table) - seeded == set(), f"in docs/api.md but not seeded: {sorted(set(table) - seeded)}"
    for username, kind, registration, _name, _email in demo.ACCOUNTS:
        _, password, kind_cell, registration_cell, what_to_try = table[username]
        assert unquoted(password) == demo.DEMO_PASSWORD, username
        assert unquoted(kind_cell) == kind.value, username
        assert unquoted(registration_cell) == (registration or "—"), username
        assert what_to_try, f"{username}: say what to try with it"


def test_every_demo_registration_and_the_naccs_office_are_described():
    rows = {unquoted(r[0]): r for r in table_rows(section(api_md(), "Demo data"), "registration")}
    for number, kind, membership, name, _methods, _email in demo.REGISTRATIONS:
        assert number in rows, number
        _, kind_cell, membership_cell, name_cell, _ = rows[number]
        assert kind_cell == kind.value.lower() and name_cell == name, rows[number]
        assert membership_cell == membership.value.lower().replace("_", "-"), rows[number]
    text = section(api_md(), "Demo data")
    assert demo.CHAMBER[0] in text and demo.CHAMBER[1] in text
    for user_code, identification, industries in demo.NACCS_USER_IDS:
        assert user_code in text and identification in text and all(i in text for i in industries)
    for terminal, _area, _equipment in demo.NACCS_TERMINALS:
        assert terminal in text


def test_every_demo_account_logs_in_as_the_table_says(live):
    """Against the real seed, on SQLite and PostgreSQL: the documented username, password
    and kind log in (eCO accounts with the chamber code, NACCS accounts without)."""
    query = "mutation($i: LoginInput!) { login(input: $i) { token account { kind } errors { code } } }"
    for username, (_, password, kind, _registration, _) in demo_accounts_table().items():
        naccs = unquoted(kind).startswith("NACCS")
        login = {"username": username, "password": unquoted(password)}
        if not naccs:
            login["chamberCode"] = demo.CHAMBER[0]
        answer = live.graphql(query, {"i": login}).json()["data"]["login"]
        assert answer["errors"] == [] and answer["token"], (username, answer)
        assert answer["account"]["kind"] == unquoted(kind)


# --------------------------------------------------------------------------- GraphQL examples


def graphql_examples(markdown: str) -> list[str]:
    blocks = re.findall(r"^```graphql\n(.*?)^```", markdown, re.M | re.S)
    return [b for b in blocks if not re.match(r"\s*(type|input|enum|interface|scalar)\s", b)]


def test_the_graphql_examples_of_the_docs_are_valid_against_the_schema():
    from graphql import build_schema

    schema = build_schema(sdl())
    examples = [(path.name, block) for path in sorted((PROJECT_DIR / "docs").glob("*.md"))
                for block in graphql_examples(path.read_text(encoding="utf-8"))]
    assert len(examples) >= 8
    for name, block in examples:
        errors = validate(schema, parse(block))
        assert not errors, f"{name}: {[e.message for e in errors]}\n{block}"


def test_the_signer_examples_do_what_docs_api_says(live):
    """The login, application and coupon-purchase examples, pasted as they are, work for
    signer-2701000002 on the demo data, on both databases."""
    examples = graphql_examples(api_md())
    login = next(e for e in examples if "login(input:" in e)
    create = next(e for e in examples if "createApplication(input:" in e)
    purchase = next(e for e in examples if "startCouponPurchase(input:" in e)
    fees = next(e for e in examples if "feeSchedule(on:" in e)
    token = live.graphql(login).json()["data"]["login"]["token"]
    assert token
    bearer = {"Authorization": f"Bearer {token}"}
    created = live.graphql(create, headers=bearer).json()["data"]["createApplication"]
    assert created["errors"] == [] and created["application"]["state"] == "DRAFT"
    bought = live.graphql(purchase, headers=bearer).json()["data"]["startCouponPurchase"]
    assert bought["errors"] == [] and bought["purchase"]["amount"] == 3 * 1210
    again = live.graphql(purchase, headers=bearer).json()["data"]["startCouponPurchase"]
    assert again == bought  # "the same key with the same input returns the first result"
    schedule = live.graphql(fees).json()["data"]["feeSchedule"]
    assert schedule["registrationFee"] is None  # an agent's registration is not offered to non-members


# --------------------------------------------------------------------------- nothing points outside


def tracked_files() -> list[Path]:
    try:
        names = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_DIR, capture_output=True, check=True,
                               timeout=60).stdout.decode().split("\0")
        paths = [PROJECT_DIR / n for n in names if n]
    except (OSError, subprocess.CalledProcessError):  # an unpacked archive: the tree itself
        skip = {".git", ".venv", "var", "node_modules", "__pycache__"}
        paths = [p for p in PROJECT_DIR.rglob("*") if p.is_file() and not skip & set(p.relative_to(PROJECT_DIR).parts)]
    new_docs = list((PROJECT_DIR / "docs").glob("*.md"))  # not yet committed ones too
    return sorted({p for p in [*paths, *new_docs] if p.exists()})


def pointers_outside(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        if any(re.search(p, line) for p in OUTSIDE) or SECTION_SIGN.search(SEED_CITATION.sub("", line)):
            found.append(line.strip())
    return found


def test_pointers_outside_are_recognised():
    assert pointers_outside("see " + "../" + "shared/" + "SPEC" + ".md")
    assert pointers_outside("demo accounts: " + "API" + ".md §2")
    assert pointers_outside("as " + "§" + "5 says")
    assert not pointers_outside("the seeds: eco-payment-2026 " + "§" + "5 決済を行った本人")
    assert not pointers_outside("see docs/api.md, 'Demo data'")


def test_no_file_of_the_repository_points_outside_it():
    offenders = []
    for path in tracked_files():
        relative = path.relative_to(PROJECT_DIR)
        if relative == Path("docs/decisions.md") or relative == Path(__file__).relative_to(PROJECT_DIR):
            continue
        if "vendor" in relative.parts or (path.suffix not in TEXT_SUFFIXES and path.name != "Makefile"):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        offenders += [f"{relative}: {line}" for line in pointers_outside(text)]
    assert not offenders, "pointers to files a clone does not have:\n" + "\n".join(offenders)


def all_help(group: click.Group, prefix: str = "tradecert") -> dict[str, str]:
    texts = {}
    with click.Context(group, info_name=prefix) as ctx:
        texts[prefix] = group.get_help(ctx)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            if isinstance(command, click.Group):
                texts.update(all_help(command, f"{prefix} {name}"))
            else:
                with click.Context(command, info_name=name, parent=ctx) as sub:
                    texts[f"{prefix} {name}"] = command.get_help(sub)
    return texts


def test_the_cli_help_points_nowhere_outside():
    texts = all_help(cli_main)
    assert "tradecert rules show" in texts
    offenders = [f"{command}: {line}" for command, text in texts.items() for line in pointers_outside(text)]
    assert not offenders, "\n".join(offenders)


def test_the_schema_descriptions_point_nowhere_outside():
    for name, text in (("sdl()", sdl()), (str(SDL_PATH.relative_to(PROJECT_DIR)), SDL_PATH.read_text(encoding="utf-8"))):
        offenders = pointers_outside(text)
        assert not offenders, f"{name}:\n" + "\n".join(offenders)


# --------------------------------------------------------------------------- links


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = "".join(ch for ch in text if ch in " -" or unicodedata.category(ch)[0] in "LN")
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    outside_code = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)
    return {slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", outside_code, re.M)}


def markdown_files() -> list[Path]:
    return [PROJECT_DIR / "README.md", *sorted((PROJECT_DIR / "docs").glob("*.md"))]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.name)
def test_every_relative_link_leads_to_a_file_and_heading_of_the_repository(path):
    markdown = path.read_text(encoding="utf-8")
    outside_code = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", outside_code):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        if not destination.exists() or PROJECT_DIR.resolve() not in destination.parents:
            broken.append(f"{target}: no such file in the repository")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading '#{anchor}' in {destination.name}")
    assert not broken, f"{path.name}:\n" + "\n".join(broken)


def test_readme_links_the_api_and_the_code_map():
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    assert "](docs/api.md)" in readme and "](docs/architecture.md)" in readme
