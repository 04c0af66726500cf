"""The `mailwright` command tree (typer): `serve` plus the domain/account/alias admin groups."""

from __future__ import annotations

import typer

from mailwright.cli.admin import account_app, alias_app, domain_app
from mailwright.cli.captured import captured_app
from mailwright.cli.check import check
from mailwright.cli.dkim import dkim_app
from mailwright.cli.queue import queue_app
from mailwright.cli.serve import serve

app = typer.Typer(
    name="mailwright",
    help="mailwright: a durable SMTP + POP3 mail server in one process.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # tracebacks are for bugs; user errors print one line
)
app.command("serve")(serve)
app.add_typer(domain_app, name="domain")
app.add_typer(account_app, name="account")
app.add_typer(alias_app, name="alias")
app.add_typer(queue_app, name="queue")
app.add_typer(dkim_app, name="dkim")
app.add_typer(captured_app, name="captured")
app.command("check")(check)


def main() -> None:
    app()
