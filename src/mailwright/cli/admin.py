"""Admin commands: domains, accounts and aliases in the server's data directory.

They open the store directly (no running server needed, none disturbed: SQLite WAL lets these
short write transactions interleave with the server's). Store refusals (already exists, not
found, still in use, invalid address) print one line and exit 1.
"""

from __future__ import annotations

import enum
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mailwright.auth.passwords import hash_password
from mailwright.cli.common import ConfigOption, DataOption, admin_store, fail
from mailwright.store.api import Pop3Policy, normalize_address

domain_app = typer.Typer(
    help="Local domains (mail for them is delivered here).", no_args_is_help=True
)
account_app = typer.Typer(help="Mail accounts (a mailbox and a login).", no_args_is_help=True)
alias_app = typer.Typer(
    help="Aliases: extra addresses delivered to a target.", no_args_is_help=True
)


class Pop3PolicyChoice(enum.StrEnum):
    """What POP3 RETR+DELE does (like the big providers' "POP download" setting)."""

    delete = "delete"  # expunge from INBOX: IMAP sees it gone too (RFC 1939 behaviour)
    keep = "keep"  # hide from later POP3 sessions, keep it for IMAP

    @property
    def policy(self) -> Pop3Policy:
        return "keep" if self is Pop3PolicyChoice.keep else "delete"


PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input (for scripts).",
    ),
]


def _stdout() -> Console:
    return Console(highlight=False)


def read_password(from_stdin: bool) -> str:
    """One line of stdin (without its line ending), or a hidden prompt typed twice."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        fail("the password is empty")
    return password


def human_size(octets: int) -> str:
    size = float(octets)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


# ----- domains ------------------------------------------------------------------------------------
@domain_app.command("add")
def domain_add(
    name: Annotated[str, typer.Argument(help="Domain, e.g. example.org")],
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Accept mail for a domain."""
    with admin_store(config, data) as store:
        store.add_domain(name)
    _stdout().print(f"domain {name} added")


@domain_app.command("remove")
def domain_remove(
    name: Annotated[str, typer.Argument()],
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Stop accepting mail for a domain (it must have no accounts or aliases left)."""
    with admin_store(config, data) as store:
        store.remove_domain(name)
    _stdout().print(f"domain {name} removed")


@domain_app.command("list")
def domain_list(data: DataOption = None, config: ConfigOption = None) -> None:
    """List local domains, one per line."""
    with admin_store(config, data) as store:
        domains = store.list_domains()
    for name in domains:
        print(name)


# ----- accounts -----------------------------------------------------------------------------------
@account_app.command("add")
def account_add(
    address: Annotated[str, typer.Argument(help="e.g. alice@example.org (its domain must exist)")],
    password_stdin: PasswordStdin = False,
    pop3_policy: Annotated[
        Pop3PolicyChoice,
        typer.Option("--pop3-policy", help="What POP3 DELE does: delete, or keep for IMAP."),
    ] = Pop3PolicyChoice.delete,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Create an account: its login is its address."""
    with admin_store(config, data) as store:
        # Check what we can before asking for a password the user would then type in vain.
        canonical = normalize_address(address)
        domain = canonical.rpartition("@")[2]
        if not store.is_local_domain(domain):
            fail(f"{domain} is not a local domain (add it first: mailwright domain add {domain})")
        if store.get_account(canonical) is not None:
            fail(f"account {canonical} already exists")
        password_hash = hash_password(read_password(password_stdin))
        account = store.add_account(address, password_hash, pop3_policy.policy)
    _stdout().print(f"account {account.address} added (POP3 policy: {account.pop3_policy})")


@account_app.command("remove")
def account_remove(
    address: Annotated[str, typer.Argument()],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Delete an account with all its mail."""
    with admin_store(config, data) as store:
        if store.get_account(address) is None:
            fail(f"no such account: {address}")
        if not yes and not typer.confirm(f"Delete {address} and all its mail?"):
            fail("cancelled")
        store.remove_account(address)
    _stdout().print(f"account {address} removed")


@account_app.command("passwd")
def account_passwd(
    address: Annotated[str, typer.Argument()],
    password_stdin: PasswordStdin = False,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Set an account's password."""
    with admin_store(config, data) as store:
        if store.get_account(address) is None:
            fail(f"no such account: {address}")
        store.set_password_hash(address, hash_password(read_password(password_stdin)))
    _stdout().print(f"password of {address} changed")


@account_app.command("policy")
def account_policy(
    address: Annotated[str, typer.Argument()],
    policy: Annotated[Pop3PolicyChoice, typer.Argument(help="delete or keep")],
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Set what POP3 DELE does for an account: delete, or keep the message for IMAP."""
    with admin_store(config, data) as store:
        store.set_pop3_policy(address, policy.policy)
    _stdout().print(f"POP3 policy of {address}: {policy.value}")


@account_app.command("list")
def account_list(data: DataOption = None, config: ConfigOption = None) -> None:
    """Show accounts with their message count, size, POP3 policy and aliases."""
    with admin_store(config, data) as store:
        accounts = store.list_accounts()
    table = Table(title=None if accounts else "no accounts yet")
    table.add_column("Address", overflow="fold")
    table.add_column("Messages", justify="right")
    table.add_column("Size", justify="right")
    table.add_column("POP3 policy")
    table.add_column("Aliases", overflow="fold")
    for summary in accounts:
        table.add_row(
            summary.address,
            str(summary.messages),
            human_size(summary.size),
            summary.pop3_policy,
            ", ".join(summary.aliases),
        )
    _stdout().print(table)


# ----- aliases ------------------------------------------------------------------------------------
@alias_app.command("add")
def alias_add(
    source: Annotated[str, typer.Argument(help="Local address, or @domain for a catch-all")],
    target: Annotated[str, typer.Argument(help="Account or any address (remote: queued)")],
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Deliver mail for SOURCE to TARGET."""
    with admin_store(config, data) as store:
        store.add_alias(source, target)
    _stdout().print(f"alias {source} -> {target} added")


@alias_app.command("remove")
def alias_remove(
    source: Annotated[str, typer.Argument()],
    target: Annotated[str | None, typer.Argument(help="Only this target (default: all)")] = None,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove an alias (all its targets, or just TARGET)."""
    with admin_store(config, data) as store:
        store.remove_alias(source, target)
    _stdout().print(f"alias {source}{' -> ' + target if target else ''} removed")


@alias_app.command("list")
def alias_list(data: DataOption = None, config: ConfigOption = None) -> None:
    """List aliases as "source -> target", one per line."""
    with admin_store(config, data) as store:
        aliases = store.list_aliases()
    for alias in aliases:
        print(f"{alias.source} -> {alias.target}")
