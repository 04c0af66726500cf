"""`mailwright check [--repair]`: verify the store against its message files (store/check.py).

Exit codes: 0 when nothing is wrong (or everything found was repaired), 1 when problems remain,
2 when there is no store to check. Read-only without --repair, so safe beside a running server;
the progress bar goes to stderr, the table and summary to stdout.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mailwright.cli.common import (
    EXIT_ADMIN_ERROR,
    EXIT_CONFIG_ERROR,
    ConfigOption,
    DataOption,
    fail,
    resolve_data_dir,
)
from mailwright.store.api import StoreError
from mailwright.store.datalock import DEFAULT_GRACE

if TYPE_CHECKING:
    from mailwright.store.check import CheckReport

# Redraw the bar at most this often: 100,000 small files verify in seconds.
_REFRESH: float = 0.1


def _status(repaired: bool, repairable: bool, repair: bool) -> str:
    if repaired:
        return "[green]repaired[/]"
    if repairable:
        return "left (still in use)" if repair else "repairable (--repair)"
    return "[red]cannot repair[/]"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def print_report(report: CheckReport, repair: bool, console: Console) -> None:
    if report.problems:
        table = Table(title="Problems")
        table.add_column("Problem")
        table.add_column("Where", overflow="fold")
        table.add_column("Detail", overflow="fold")
        table.add_column("Status")
        for p in report.problems:
            table.add_row(p.kind, p.where, p.detail, _status(p.repaired, p.repairable, repair))
        console.print(table)
    repaired = sum(p.repaired for p in report.problems)
    remaining = len(report.remaining)
    console.print(
        f"checked {report.mailboxes} mailbox(es), {report.messages} message(s), "
        f"{report.queued} queued recipient(s), {report.blobs} message file(s) "
        f"({_size(report.bytes_verified)} verified)"
    )
    if report.in_flight:
        console.print(
            f"{report.in_flight} unreferenced file(s) younger than the grace period left "
            "alone: the store is in use, they may be deliveries in flight"
        )
    if not report.problems:
        console.print("[green]clean[/]")
    elif repair:
        console.print(f"{len(report.problems)} problem(s): {repaired} repaired, "
                      f"{remaining} remain")
    else:
        repairable = sum(p.repairable for p in report.problems)
        console.print(f"{len(report.problems)} problem(s), {repairable} repairable with "
                      "--repair")


def check(
    repair: Annotated[
        bool, typer.Option("--repair", help="Remove crash leftovers and recompute counters.")
    ] = False,
    grace: Annotated[
        float,
        typer.Option(
            "--grace", min=0,
            help="While a server or command has the store open, unreferenced files younger "
            "than this many seconds are deliveries in flight: left alone.",
        ),
    ] = DEFAULT_GRACE,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Check the store: database integrity, message files, orphans, counters."""
    from mailwright.store.check import CheckError, check_store  # lazy: `--help` stays fast

    data_dir = resolve_data_dir(config, data)
    console = Console(highlight=False)
    errors = Console(stderr=True)
    with Progress(
        TextColumn("verifying message files"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=errors, transient=True,
        disable=not errors.is_terminal,  # no bar (nor its last newline) in logs and pipes
    ) as bar:
        task = bar.add_task("files", total=None)
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done == total or now - last[0] >= _REFRESH:
                last[0] = now
                bar.update(task, completed=done, total=total)

        try:
            report = check_store(data_dir, repair=repair, grace=grace, progress=progress)
        except CheckError as exc:
            fail(exc, EXIT_CONFIG_ERROR)
        except StoreError as exc:
            fail(exc, EXIT_ADMIN_ERROR)
    print_report(report, repair, console)
    raise typer.Exit(0 if report.clean else 1)
