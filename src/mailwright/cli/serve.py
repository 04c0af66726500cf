"""`mailwright serve`: run the server in the foreground until SIGTERM or SIGINT.

Invariants:
- Exit 0 after a clean shutdown: the first SIGTERM/SIGINT stops accepting, drains sessions
  (busy ones may finish within the grace period) and lets the store finish its commits.
  A second signal exits at once with 130; anything already acknowledged is on disk anyway.
- Exit 2 with one line on stderr when the server cannot start: a bad configuration, an
  unreadable certificate, a port in use, or a store it cannot open.
- Signal handlers are installed before the listeners are bound, so a SIGTERM that arrives the
  instant after `listeners.json` appears is a clean stop, not the default kill.
- The banner goes to stdout once every listener is bound; logs go to stderr.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mailwright import __version__
from mailwright import config as mwconfig
from mailwright.cli.common import EXIT_CONFIG_ERROR, ConfigOption, DataOption, fail, load_config
from mailwright.config import Config, ConfigError
from mailwright.net import loop as event_loop
from mailwright.server import LISTENER_KINDS, Server
from mailwright.store.api import StoreError

log = logging.getLogger("mailwright")

# Seconds that busy sessions get to finish on shutdown (say, a DATA being committed).
SHUTDOWN_GRACE = 10.0
EXIT_FORCED = 130  # 128 + SIGINT, the shell convention for "interrupted"


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def banner(config: Config, server: Server) -> Table:
    table = Table(
        title=f"mailwright {__version__} — {config.hostname} — data {config.data_dir}",
        title_justify="left",
    )
    table.add_column("Listener")
    table.add_column("Protocol")
    table.add_column("Address")
    table.add_column("TLS")
    for name, (host, port) in server.bound.items():
        kind = LISTENER_KINDS.get(name)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if kind is None:  # "http": the web inbox, plain HTTP (meant for loopback, docs/web.md)
            table.add_row(name, "web inbox and JSON API", f"http://{address}/", "none")
            continue
        tls = "implicit TLS" if kind.tls == "implicit" else "STARTTLS"
        table.add_row(name, kind.label, address, tls)
    return table


async def run(config: Config, console: Console) -> int:
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop_requested.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(EXIT_FORCED)
        log.info("%s: shutting down", signal.Signals(signum).name)
        stop_requested.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)

    server = Server(config)
    try:
        await server.start()
    except ConfigError as exc:
        fail(exc, EXIT_CONFIG_ERROR)
    except StoreError as exc:
        fail(f"cannot open the store in {config.data_dir}: {exc}", EXIT_CONFIG_ERROR)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        fail(f"{exc.strerror}{where}" if exc.strerror else exc, EXIT_CONFIG_ERROR)

    console.print(banner(config, server))
    console.print(
        f"certificate: {config.cert_path}   listeners: {config.data_dir / 'listeners.json'}"
    )
    if config.capture.enabled:
        console.print(
            "capture mode: mail for other domains is kept, never relayed; IMAP/POP3 account "
            f"{config.capture.account}; `mailwright captured list` shows it"
        )
    console.print("ready; SIGTERM or Ctrl-C stops")
    console.file.flush()

    await stop_requested.wait()
    await server.stop(grace=SHUTDOWN_GRACE)
    return 0


def capture_config(config_file: Path | None, data: Path | None) -> Config:
    """The configuration with capture mode on, and the web inbox on its default address
    unless the file or the environment sets listen.http (an empty value keeps it off)."""
    try:
        cfg = mwconfig.load(
            config_file, data, listen_defaults={"http": mwconfig.CAPTURE_HTTP_DEFAULT}
        )
    except ConfigError as exc:
        fail(exc, EXIT_CONFIG_ERROR)
    return dataclasses.replace(cfg, capture=dataclasses.replace(cfg.capture, enabled=True))


def serve(
    data: DataOption = None,
    config: ConfigOption = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error")
    ] = "info",
    capture: Annotated[
        bool,
        typer.Option(
            "--capture",
            help="Capture mode: keep mail for other domains instead of relaying it (docs/"
            f"testing.md), with the web inbox on {mwconfig.CAPTURE_HTTP_DEFAULT} unless "
            "listen.http says otherwise.",
        ),
    ] = False,
) -> None:
    """Run the mail server in the foreground (SIGTERM or Ctrl-C stops it cleanly)."""
    if log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        fail(f"--log-level: unknown level {log_level!r}", EXIT_CONFIG_ERROR)
    setup_logging(log_level)
    # Server.start() logs cfg.warnings
    cfg = capture_config(config, data) if capture else load_config(config, data)
    code = event_loop.run(run(cfg, Console(highlight=False, soft_wrap=True)))
    raise typer.Exit(code)

