"""`mailwright queue`: look at the outbound queue and nudge it, while the server runs or not.

The commands open the store directly, like the other admin commands (SQLite WAL lets them
write beside the server). `retry` only makes rows due: the running server's queue runner
notices within its poll_interval. `delete` drops rows without telling the sender; `bounce`
stores a failure DSN for the sender first (through the same delivery path as the runner),
then drops the rows. A row the server is delivering at that very moment may still be
delivered (the remote 250 comes before the runner looks at the row again).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mailwright.cli.common import ConfigOption, DataOption, admin_store, fail, load_config
from mailwright.store.api import QueueEntry, Store

queue_app = typer.Typer(help="The outbound queue (mail waiting for remote servers).",
                        no_args_is_help=True)

IdArgument = Annotated[int, typer.Argument(help="Queue id (from `mailwright queue list`).")]


def _stdout() -> Console:
    return Console(highlight=False)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def _entry(store: Store, entry_id: int) -> QueueEntry:
    entry = store.queue_entry(entry_id)
    if entry is None:
        fail(f"no queued message with id {entry_id}")
    return entry


@queue_app.command("list")
def queue_list(data: DataOption = None, config: ConfigOption = None) -> None:
    """Show every queued recipient: id, sender, recipient, age, attempts, next try, last error."""
    with admin_store(config, data) as store:
        entries = store.queue_entries()
    now = time.time()
    table = Table(title=None if entries else "the queue is empty")
    table.add_column("Id", justify="right")
    table.add_column("From", overflow="fold")
    table.add_column("To", overflow="fold")
    table.add_column("Age", justify="right")
    table.add_column("Tries", justify="right")
    table.add_column("Next try")
    table.add_column("Last error", overflow="fold")
    for entry in entries:
        due = entry.next_attempt - now
        table.add_row(
            str(entry.id),
            entry.mail_from or "<>",
            entry.rcpt,
            _age(now - entry.created),
            str(entry.attempts),
            "now" if due <= 0 else f"in {_age(due)}",
            entry.last_error or "",
        )
    _stdout().print(table)


@queue_app.command("show")
def queue_show(entry_id: IdArgument, data: DataOption = None, config: ConfigOption = None) -> None:
    """Show one queued recipient: envelope, timing, last error, and the message's header."""
    with admin_store(config, data) as store:
        entry = _entry(store, entry_id)
        try:
            raw = store.blob_path(entry.blob).read_bytes()
        except OSError as exc:
            raw = f"(cannot read the message: {exc})".encode()
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    params = " ".join(f"{k}={v}" if v is not None else k for k, v in entry.mail_params.items())
    rcpt_params = " ".join(
        f"{k}={v}" if v is not None else k for k, v in entry.rcpt_params.items()
    )
    rows = [
        ("Id", str(entry.id)),
        ("From", f"<{entry.mail_from}> {params}".rstrip()),
        ("To", f"<{entry.rcpt}> {rcpt_params}".rstrip()),
        ("Queued", _when(entry.created)),
        ("Next try", _when(entry.next_attempt)),
        ("Attempts", str(entry.attempts)),
        ("Last error", entry.last_error or "-"),
        ("Delay DSN sent", "yes" if entry.delay_warned else "no"),
        ("Submitted by", ", ".join(f"{k}={v}" for k, v in entry.origin.items() if v)),
        ("Message", entry.blob),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console = _stdout()
    console.print(table)
    end = raw.find(b"\r\n\r\n")
    console.print()
    console.print((raw if end < 0 else raw[:end]).decode("utf-8", "replace"), markup=False)


@queue_app.command("retry")
def queue_retry(
    entry_id: Annotated[int | None, typer.Argument(help="Queue id; omit with --all.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every queued message.")] = False,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Try again now (the running server picks it up within its poll interval)."""
    if (entry_id is None) == (not all_):
        fail("give a queue id or --all (not both)")
    with admin_store(config, data) as store:
        count = store.queue_retry(None if all_ else [entry_id] if entry_id is not None else [])
        if not all_ and count == 0:
            fail(f"no queued message with id {entry_id}")
    _stdout().print(f"{count} queued recipient(s) due now")


@queue_app.command("delete")
def queue_delete(
    entry_id: IdArgument, data: DataOption = None, config: ConfigOption = None
) -> None:
    """Drop a queued recipient without telling the sender."""
    with admin_store(config, data) as store:
        store.queue_delete(entry_id)
    _stdout().print(f"queued recipient {entry_id} deleted")


@queue_app.command("bounce")
def queue_bounce(
    entry_id: IdArgument, data: DataOption = None, config: ConfigOption = None
) -> None:
    """Give up on a queued recipient: a failure DSN to the sender, then drop it."""
    settings = load_config(config, data)
    with admin_store(config, data) as store:
        entry = _entry(store, entry_id)
        asyncio.run(_bounce(store, entry, settings.hostname, settings.queue.max_age))
    _stdout().print(f"queued recipient {entry_id} bounced")


async def _bounce(store: Store, entry: QueueEntry, hostname: str, max_age: float) -> None:
    from mailwright.delivery import Deliverer
    from mailwright.queue.notify import DsnSender, wants_dsn

    if wants_dsn(entry, "FAILURE"):
        sender = DsnSender(store, Deliverer(store, hostname), hostname, max_age)
        await sender.send(
            [entry], "failed", "5.0.0",
            "x-mailwright; delivery cancelled by the administrator", None, time.time(),
        )
    await store.queue_done([entry.id])
