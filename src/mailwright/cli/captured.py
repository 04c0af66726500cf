"""`mailwright captured`: the mail kept by capture mode, and its injected faults.

Like the other admin commands these open the store directly, beside a running server or not
(SQLite WAL). `faults` writes `<data>/capture-faults.json`, which the running server re-reads
when it changes, so new settings apply to its next command. Messages removed here are gone at
once; IMAP clients of the capture account see it at their next SELECT (the change bus does not
cross processes).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from mailwright import config as mwconfig
from mailwright.capture.box import CaptureBox, Captured
from mailwright.capture.faults import FAULTS_FILE, FaultFile, FaultSettings, FaultSettingsError
from mailwright.cli.common import EXIT_CONFIG_ERROR, ConfigOption, DataOption, admin_store, fail

T = TypeVar("T")

captured_app = typer.Typer(
    help="Mail kept by capture mode (serve --capture), and its injected faults.",
    no_args_is_help=True,
)

IdArgument = Annotated[str, typer.Argument(help="Captured id (from `mailwright captured list`).")]


def _stdout() -> Console:
    return Console(highlight=False)


def _settings(config_file: Path | None, data: Path | None) -> mwconfig.Config:
    environ = dict(os.environ)
    # These commands never use the hostname; setting it skips load()'s getfqdn() DNS lookup.
    environ.setdefault("MAILWRIGHT_HOSTNAME", "localhost")
    try:
        return mwconfig.load(config_file, data, environ)
    except mwconfig.ConfigError as exc:
        fail(exc, EXIT_CONFIG_ERROR)


def _box_run(
    config_file: Path | None, data: Path | None,
    work: Callable[[CaptureBox], Coroutine[None, None, T]],
) -> T:
    """Run `work` on a CaptureBox over the data directory's store (its own event loop)."""
    settings = _settings(config_file, data)
    cfg = settings.capture
    with admin_store(config_file, data) as store:
        box = CaptureBox(
            store, account=cfg.account,
            imap="per-domain" if cfg.imap == "per-domain" else "catch-all",
            data_dir=settings.data_dir,
        )
        return asyncio.run(work(box))


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


@captured_app.command("list")
def captured_list(
    to: Annotated[str | None, typer.Option("--to", help="Only mail for this recipient.")] = None,
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="Substring of subject, From, To.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 200,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Captured messages, newest first."""

    async def work(box: CaptureBox) -> list[Captured]:
        return await box.list(to=to, query=query, limit=limit)

    items = _box_run(config, data, work)
    table = Table(title=None if items else "no captured mail")
    table.add_column("Id", no_wrap=True)
    table.add_column("Received (UTC)", no_wrap=True)
    table.add_column("Envelope from", overflow="fold")
    table.add_column("Envelope to", overflow="fold")
    table.add_column("Subject", overflow="fold")
    table.add_column("Size", justify="right")
    for item in items:
        table.add_row(
            item.id, _when(item.date), item.mail_from or "<>", ", ".join(item.rcpts),
            item.subject, str(item.size),
        )
    _stdout().print(table)


@captured_app.command("show")
def captured_show(
    captured_id: IdArgument,
    raw: Annotated[bool, typer.Option("--raw", help="The stored message, byte for byte.")] = False,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """One captured message: envelope, main headers and text (or --raw)."""

    async def work(box: CaptureBox) -> tuple[Captured | None, bytes | None]:
        return await box.get(captured_id), await box.raw(captured_id)

    item, content = _box_run(config, data, work)
    if item is None or content is None:
        fail(f"no captured message with id {captured_id}")
    if raw:
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in (
        ("Id", item.id), ("Mailbox", item.mailbox), ("Received", _when(item.date) + " UTC"),
        ("Envelope from", f"<{item.mail_from}>"),
        ("Envelope to", ", ".join(f"<{r}>" for r in item.rcpts)),
        ("From", item.from_header), ("To", item.to_header), ("Subject", item.subject),
        ("Size", f"{item.size} octets"),
    ):
        table.add_row(name, value)
    console = _stdout()
    console.print(table)
    console.print()
    console.print(_text_of(content), markup=False)


def _text_of(content: bytes) -> str:
    """The message's plain text part (or its HTML, or a note), for reading in a terminal."""
    msg = email.message_from_bytes(content, policy=email.policy.default)
    if not isinstance(msg, EmailMessage):
        return ""
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
        if part is None:
            return "(no text part)"
        text = part.get_content()
    except (LookupError, ValueError, KeyError) as exc:  # unknown charset, broken encoding
        return f"(cannot decode the text: {exc})"
    return text if isinstance(text, str) else "(no text part)"


@captured_app.command("clear")
def captured_clear(data: DataOption = None, config: ConfigOption = None) -> None:
    """Remove every captured message."""

    async def work(box: CaptureBox) -> int:
        return await box.clear()

    count = _box_run(config, data, work)
    _stdout().print(f"{count} captured message(s) removed")


@captured_app.command("faults")
def captured_faults(
    rcpt_fail_rate: Annotated[
        float | None, typer.Option("--rcpt-fail-rate", help="Fraction (0..1) of RCPTs failed.")
    ] = None,
    data_fail_rate: Annotated[
        float | None, typer.Option("--data-fail-rate", help="Fraction (0..1) of DATAs failed.")
    ] = None,
    fail_code: Annotated[
        int | None, typer.Option("--fail-code", help="Reply code of those failures (4xx/5xx).")
    ] = None,
    delay: Annotated[
        float | None, typer.Option("--delay", help="Seconds to wait before every reply.")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="No server-wide faults.")] = False,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Show or change the server-wide faults (the running server applies them at once).
    Per-address faults need no setting: temperror@, permerror@, code-NNN@, timeout@ and
    their data- forms (docs/testing.md)."""
    settings = _settings(config, data)
    cfg = settings.capture
    file = FaultFile(settings.data_dir / FAULTS_FILE)
    try:
        current = file.load() or FaultSettings(
            cfg.rcpt_fail_rate, cfg.data_fail_rate, cfg.fail_code, cfg.reply_delay
        )
    except FaultSettingsError as exc:
        if not clear:
            fail(f"{file.path}: {exc} (use --clear)")
        current = FaultSettings()
    if clear:
        current = FaultSettings()
    given = (rcpt_fail_rate, data_fail_rate, fail_code, delay)
    if clear or any(v is not None for v in given):
        try:
            current = FaultSettings(
                rcpt_fail_rate=current.rcpt_fail_rate if rcpt_fail_rate is None
                else rcpt_fail_rate,
                data_fail_rate=current.data_fail_rate if data_fail_rate is None
                else data_fail_rate,
                fail_code=current.fail_code if fail_code is None else fail_code,
                reply_delay=current.reply_delay if delay is None else delay,
            )
        except FaultSettingsError as exc:
            fail(exc)
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            file.save(current)
        except OSError as exc:
            fail(f"cannot write {file.path}: {exc.strerror or exc}")
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("RCPT fail rate", f"{current.rcpt_fail_rate:g}")
    table.add_row("DATA fail rate", f"{current.data_fail_rate:g}")
    table.add_row("Fail code", str(current.fail_code))
    table.add_row("Reply delay", f"{current.reply_delay:g} s")
    _stdout().print(table)

