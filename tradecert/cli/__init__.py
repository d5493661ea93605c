"""`tradecert`: serve, db, demo, rules, jobs, bank, schema, keys, mail, applications.

The root group and its commands, one module per command group; `main` is the console
script (pyproject.toml). Each module imports only click until one of its commands runs,
so `--help` stays fast.
"""

from __future__ import annotations

import click

from tradecert.cli.applications import applications
from tradecert.cli.bank import bank
from tradecert.cli.common import OneLineErrors
from tradecert.cli.db import db
from tradecert.cli.demo import demo
from tradecert.cli.jobs import jobs
from tradecert.cli.keys import keys
from tradecert.cli.mail import mail
from tradecert.cli.rules import rules
from tradecert.cli.schema import schema_group
from tradecert.cli.serve import serve


@click.group(cls=OneLineErrors)  # a database that cannot be used: one line, no traceback
def main() -> None:
    """tradecert — trade certificates for chambers of commerce, over GraphQL."""


for command in (db, demo, serve, rules, jobs, bank, schema_group, keys,
                mail,  # `tradecert mail list|show`: the outbox without SMTP (pages/mailbox.py)
                applications):  # `tradecert applications import`: CSV filing (docs/applications-import.md)
    main.add_command(command)
