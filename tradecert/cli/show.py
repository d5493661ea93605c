"""`tradecert rules show [fees|permissions]`: the fee schedule or who may do what, on a date."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click
from rich import box
from rich.table import Table
from rich.text import Text

from resolvers.identity.names import Membership, RegistrationKind
from tradecert.cli.common import console, load_rules, settings_from_env
from tradecert.params import IsoDate

if TYPE_CHECKING:
    from rules.fees import Amount, CouponProduct
    from rules.policy import PolicySet


@click.command("show")
@click.argument("what", required=False, default="fees", type=click.Choice(["fees", "permissions"]))
@click.option("--on", "on", type=IsoDate(), help="Date (Asia/Tokyo); default today.")
@click.option("--format", "output", type=click.Choice(["text", "markdown", "html"]), default="text", show_default=True,
              help="Fee schedule as a terminal table, Markdown tables for a website, or the /fees page.")
def rules_show(what: str, on: dt.datetime | None, output: str) -> None:
    """Print the fee schedule (or, with `permissions`, who may do what) in force on a date."""
    from resolvers.core.clock import Clock
    from rules import fees

    settings = settings_from_env()
    policy = load_rules(settings)
    day = on.date() if on else Clock().today()
    if what == "permissions":
        _show_permissions(policy, day)
        return
    if output != "text":
        from pages import fee_page

        page = fee_page.build(policy, day)
        click.echo(fee_page.render_html(page) if output == "html" else fee_page.render_markdown(page), nl=False)
        return
    # ASCII lines and no fixed "rule" column: a box-drawing character is two columns wide in a
    # Japanese terminal, and a fourth column cut the rule file names to "application_fee…"
    table = Table(title=f"Fee schedule on {day} (rules {policy.version}; yen, tax included)", box=box.ASCII,
                  show_lines=True)
    table.add_column("item / rule", overflow="fold")
    for membership in Membership:
        table.add_column(membership, overflow="fold")

    def item(name: str, *amounts: Amount) -> Text:
        r = amounts[0].rule
        rows = sorted({a.rule.row for a in amounts})
        where = f"row {rows[0]}" if len(rows) == 1 else f"rows {', '.join(map(str, rows))}"
        return Text(name).append(f"\n{r.file} v{r.version} {where}\nin force from {r.effective_from}", style="dim")

    member, non = fees.application_fee(policy, day, Membership.MEMBER), fees.application_fee(policy, day, Membership.NON_MEMBER)
    table.add_row(item("application fee / 発給申請", member, non), f"{member.value:,}", f"{non.value:,}")
    for kind in RegistrationKind:
        m, n = (fees.registration_fee(policy, day, kind, Membership.MEMBER),
                fees.registration_fee(policy, day, kind, Membership.NON_MEMBER))
        table.add_row(item(f"registration / 貿易登録 {kind}", m, n), _show(m), _show(n))
    by_code: dict[str, dict[str, fees.CouponProduct]] = {}
    for membership in Membership:
        for product in fees.coupon_products(policy, day, membership):
            by_code.setdefault(product.code, {})[membership] = product
    for code, offers in by_code.items():
        def cell(p: CouponProduct | None) -> str:
            return "not sold" if p is None else f"{p.price:,}\nface {p.face_value:,}\ntax {p.tax:,}"
        any_offer = next(iter(offers.values()))
        r = any_offer.rule
        name = Text(f"coupon {code} ({any_offer.coupons})").append(
            f"\n{r.file} v{r.version}\nin force from {r.effective_from}", style="dim")
        table.add_row(name, cell(offers.get(Membership.MEMBER)), cell(offers.get(Membership.NON_MEMBER)))
    console.print(table, soft_wrap=False)


def _show(amount: Amount) -> str:
    return "not offered" if amount.value is None else f"{amount.value:,}"


def _show_permissions(policy: PolicySet, day: dt.date) -> None:
    """The permission rows in force, one block per action: which account kind, of which kind
    of registration, may do it to an object standing in which relation to it. Lines stay
    short, so every action reads in full at 80 columns and through a pipe (an action × kind
    matrix needs seven columns and cut the action names to "account…")."""
    from rules.policy import in_force

    version = in_force(policy.tables["permissions"].versions, day)
    by_action: dict[str, list[tuple[str, str, str]]] = {}
    for row in version.rows:
        by_action.setdefault(str(row["action"]), []).append(
            (str(row["kind"]), str(row["registration"]), str(row["relation"])))

    def say(line: str = "", style: str | None = None) -> None:
        console.print(line, style=style, markup=False, highlight=False, soft_wrap=False)

    say(f"Permissions on {day} (permissions.yaml version {version.number}, rules {policy.version})", style="bold")
    say("Each line allows an action to an account kind, of a registration kind, on an object in "
        "that relation to the account; an action without a line is allowed to nobody. Relations: "
        "self (its own account), own_registration, generated_by_me (a sub-ID it generated), "
        "created_by_me (an application it created), same_chamber, own_office (NACCS), "
        "none (no object); any matches everything.")
    say()
    say(f"  {'account kind':<14} {'registration':<12} relation", style="dim")
    for action in sorted(by_action):
        say()
        say(action, style="bold")
        for kind, registration, relation in by_action[action]:
            say(f"  {kind:<14} {registration:<12} {relation}")
