"""What every command shares: the --data/--config options, the store, and one-line errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from mailwright import config as mwconfig
from mailwright.store.api import Store, StoreError

# Exit codes (the README documents them): 1 = the store refused an admin command,
# 2 = a configuration or environment `serve` cannot start with.
EXIT_ADMIN_ERROR = 1
EXIT_CONFIG_ERROR = 2

DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        envvar="MAILWRIGHT_DATA",
        help="Data directory (database, messages, TLS files). Default: ./data",
        show_default=False,
        file_okay=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="MAILWRIGHT_CONFIG",
        help="TOML configuration file.",
        show_default=False,
        dir_okay=False,
    ),
]


def fail(message: object, code: int = EXIT_ADMIN_ERROR) -> NoReturn:
    """Print the one-line reason on stderr and exit: no traceback for a user's mistake."""
    text = " ".join(str(message).split()) or type(message).__name__
    print(f"mailwright: error: {text}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def load_config(config_file: Path | None, data: Path | None) -> mwconfig.Config:
    try:
        return mwconfig.load(config_file, data)
    except mwconfig.ConfigError as exc:
        fail(exc, EXIT_CONFIG_ERROR)


def resolve_data_dir(config_file: Path | None, data: Path | None) -> Path:
    """The data directory `serve` would use with the same options and environment."""
    environ = dict(os.environ)
    # Admin commands never use the hostname; setting it skips load()'s getfqdn() DNS lookup.
    environ.setdefault("MAILWRIGHT_HOSTNAME", "localhost")
    try:
        return mwconfig.load(config_file, data, environ).data_dir
    except mwconfig.ConfigError as exc:
        fail(exc, EXIT_CONFIG_ERROR)


@contextmanager
def admin_store(config_file: Path | None, data: Path | None) -> Iterator[Store]:
    """The store of the data directory, closed afterwards; StoreError -> one line, exit 1.

    Opening does not touch TLS: administering accounts must work before the first `serve`.
    """
    from mailwright.store import open_store  # lazy: `--help` stays fast

    data_dir = resolve_data_dir(config_file, data)
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        store = open_store(data_dir)
    except StoreError as exc:
        fail(exc)
    except OSError as exc:
        fail(f"cannot open the store in {data_dir}: {exc.strerror or exc}")
    try:
        yield store
    except StoreError as exc:
        fail(exc)
    finally:
        store.close()
