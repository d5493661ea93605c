"""`tradecert bank import|sandbox-deposit`: bank statements, the sandbox bank's or a real bank's."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from tradecert.cli.common import check_database, console, errors, settings_from_env

if TYPE_CHECKING:
    from resolvers.adapters.sandbox_deposits import SandboxDeposit
    from resolvers.core.errors import UserFailure
    from resolvers.coupons.purchases import StoredDeposits


@click.group()
def bank() -> None:
    """Bank statements (the sandbox bank's, or a real bank's files)."""


@bank.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--no-reconcile", is_flag=True, help="Only record the deposits; the nightly job matches them.")
def bank_import(path: Path, no_reconcile: bool) -> None:
    """Record the deposits of a Zengin 振込入金通知 (01) or CSV statement, then match them to orders.

    Every line is a deposit (money received), recorded once: a line whose bank id (or, without
    one, this very file and line) was recorded before is reported and skipped. A problem is one
    line naming the file and its line; then nothing is recorded and the exit status is 1."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from resolvers.adapters.bank_files import StatementError, describe, parse_statement
    from resolvers.core.clock import Clock
    from resolvers.core.errors import UserFailure, UserFailures
    from resolvers.coupons.purchases import DepositSource, import_deposits, reconcile
    from tradecert.composition import build_services

    settings = settings_from_env()
    name = path.name

    def say(line: str) -> None:
        errors.print(f"{name}: {line}", markup=False, highlight=False)

    def refuse(problems: list[str]) -> NoReturn:
        for problem in problems[:50]:
            say(problem)
        if len(problems) > 50:
            say(f"… and {len(problems) - 50} more problem(s)")
        say("not imported; nothing was recorded")
        raise SystemExit(1)

    data = path.read_bytes()
    try:
        statement = parse_statement(data, Clock().today())
    except StatementError as exc:
        refuse(exc.problems)
    if not statement.deposits:
        if statement.cancellations:  # a cancelled notice needs a person; there is nothing else to do
            refuse(statement.cancellations)
        console.print(f"{name}: {statement.format}, no deposits")
        return

    async def go() -> list[UserFailure] | tuple[StoredDeposits, dict[str, int]]:
        await check_database(settings)
        services = build_services(settings)
        try:
            try:
                stored = await import_deposits(services, statement.deposits, DepositSource.file(name, data))
            except (UserFailure, UserFailures) as failure:
                return failure.failures if isinstance(failure, UserFailures) else [failure]
            if no_reconcile:
                return stored, {}
            with Progress(TextColumn("reconciling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=True) as bar:
                task = bar.add_task("reconcile", total=None)
                counts = await reconcile(services, progress=lambda done, total: bar.update(task, completed=done, total=total))
            return stored, counts
        finally:
            await services.db.dispose()

    outcome = asyncio.run(go())
    if isinstance(outcome, list):  # the deposits' problems: nothing was recorded
        refuse([str(f) if i is None else describe(f, statement.deposits[i], i)
                for f in outcome for i in [_deposit_position(f)]])
    stored, counts = outcome
    recorded = [statement.deposits[i] for i in stored.recorded]
    summary = f"{name}: {statement.format}, {len(recorded)} deposit(s), {sum(d.amount for d in recorded):,} yen"
    if stored.already:
        lines = [str(statement.deposits[i].line) for i, _ in stored.already]
        summary += f"; {len(lines)} already recorded (lines {', '.join(lines[:20])}{', …' if len(lines) > 20 else ''})"
    if statement.cancelled:
        summary += f", {statement.cancelled} cancelled notice(s) skipped"
    console.print(summary, markup=False, highlight=False)
    for i, first in stored.repeats:
        repeat, original = statement.deposits[i], statement.deposits[first]
        say(f"line {repeat.line}: deposit id {repeat.deposit_id} repeats line {original.line}; recorded as a deposit of "
            "its own (money received) — ask the bank before refunding it")
    for cancellation in statement.cancellations:
        say(cancellation)
    if not no_reconcile:
        console.print("reconciled: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing new"))


@bank.command("sandbox-deposit")
@click.argument("order_number")
@click.option("--amount", type=int, help="Yen transferred; default: the order's amount due (less: a short payment).")
@click.option("--payer", help="振込依頼人名 in half-width kana; default: the registration's number and name.")
@click.option("--on", "on", type=click.DateTime(formats=["%Y-%m-%d"]), help="Booking date (Asia/Tokyo); default today.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the file; default: zengin-ORDER_NUMBER.dat here.")
def bank_sandbox_deposit(order_number: str, amount: int | None, payer: str | None, on: dt.datetime | None,
                         out: Path | None) -> None:
    """Write the sandbox bank's deposit notice (Zengin 振込入金通知) for a demo transfer to an order.

    Then `tradecert bank import` the file, as a real bank's. Refused in production."""
    from resolvers.adapters.sandbox_deposits import SandboxDepositRefused, sandbox_deposit
    from tradecert.composition import build_services

    settings = settings_from_env()

    async def go() -> SandboxDeposit:
        services = build_services(settings)
        try:
            return await sandbox_deposit(services, order_number, amount, payer, on.date() if on else None)
        finally:
            await services.db.dispose()

    try:
        deposit = asyncio.run(go())
    except SandboxDepositRefused as exc:
        raise click.ClickException(str(exc)) from None
    path = out or Path(f"zengin-{deposit.order_number}.dat")
    try:
        path.write_bytes(deposit.data)
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror or exc}") from None
    console.print(f"{path}: 振込入金通知\n  {deposit.amount:,} yen to account {deposit.account_number} from "
                  f"{deposit.remitter} on {deposit.booked_on}\n  order {deposit.order_number}, due {deposit.amount_due:,} yen",
                  markup=False, highlight=False)
    if deposit.order_status != "AWAITING_PAYMENT":
        errors.print(f"order {deposit.order_number} is {deposit.order_status}: this deposit will be owed back",
                     markup=False, highlight=False)
    console.print(f"next: tradecert bank import {path}", markup=False, highlight=False)


def _deposit_position(failure: UserFailure) -> int | None:
    """The deposit a failure of ``store_deposits`` names (field ["input", "deposits", <position>, …]), if any."""
    field = failure.field or []
    return int(field[2]) if len(field) > 2 and field[2].isdigit() else None
