"""`mailwright dkim generate|list|show`: the DKIM signing keys under `<data>/dkim`.

They only write and read key files (mailauth.keys), so they work beside a running server: the
server's signer notices the new file and signs the next message with it. What to publish is
printed twice: in a readable panel, and as plain lines (`name`, `value`, a zone-file line) that
nothing wraps, so the record can be copied or scripted exactly.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mailwright import config as mwconfig
from mailwright.cli.common import EXIT_CONFIG_ERROR, ConfigOption, DataOption, fail
from mailwright.mailauth.keys import (
    Algorithm,
    DkimKey,
    DkimKeyError,
    dns_record,
    generate_key,
    list_keys,
    normalize_domain,
)

dkim_app = typer.Typer(
    help="DKIM signing keys (outbound mail from local domains is signed with them).",
    no_args_is_help=True,
)


class AlgorithmChoice(enum.StrEnum):
    both = "both"  # RFC 8463 8: sign with Ed25519 and RSA until every verifier knows Ed25519
    ed25519 = "ed25519"
    rsa = "rsa"


def _config(config_file: Path | None, data: Path | None) -> mwconfig.Config:
    environ = dict(os.environ)
    # Key commands never use the hostname; setting it skips load()'s getfqdn() DNS lookup.
    environ.setdefault("MAILWRIGHT_HOSTNAME", "localhost")
    try:
        return mwconfig.load(config_file, data, environ)
    except mwconfig.ConfigError as exc:
        fail(exc, EXIT_CONFIG_ERROR)


def _keys_dir(cfg: mwconfig.Config) -> Path:
    return cfg.data_dir / "dkim"


def plan(selector: str, algorithm: AlgorithmChoice) -> list[tuple[str, Algorithm]]:
    """(selector, algorithm) pairs to make. Both algorithms get one selector each, suffixed:
    a DNS name holds one key record, and verifiers may read any one of several (RFC 6376
    3.6.2.2)."""
    if algorithm is AlgorithmChoice.both:
        return [(f"{selector}-ed25519", "ed25519"), (f"{selector}-rsa", "rsa")]
    return [(selector, "ed25519" if algorithm is AlgorithmChoice.ed25519 else "rsa")]


def _print_record(console: Console, key: DkimKey) -> None:
    record = dns_record(key)
    console.print(
        f"[bold]{key.domain}[/bold] {key.algorithm} key, selector [bold]{key.selector}[/bold]"
        f" ({key.path})"
    )
    console.print("Publish this TXT record:", style="dim")
    # Plain print: rich would wrap the ~400-character RSA value into several lines.
    print(f"name:  {record.name}")
    print(f"value: {record.value}")
    print(f"zone:  {record.zone_line()}", flush=True)


@dkim_app.command("generate")
def dkim_generate(
    domain: Annotated[str, typer.Argument(help="The From: domain to sign for, e.g. example.org")],
    selector: Annotated[
        str | None,
        typer.Option(
            "--selector",
            help="Selector (default: dkim.selector from the config, 'mw'); with --algorithm "
            "both the keys get SELECTOR-ed25519 and SELECTOR-rsa.",
            show_default=False,
        ),
    ] = None,
    algorithm: Annotated[
        AlgorithmChoice,
        typer.Option("--algorithm", help="Key type; both = dual signing (RFC 8463)."),
    ] = AlgorithmChoice.both,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Make a signing key and print the DNS TXT record to publish for it."""
    cfg = _config(config, data)
    keys_dir = _keys_dir(cfg)
    console = Console(highlight=False)
    try:
        name = normalize_domain(domain)
        pairs = plan(selector or cfg.dkim.selector, algorithm)
        taken = {key.selector for key in list_keys(keys_dir, name)}
        for wanted, _algorithm in pairs:
            if wanted.lower() in taken:
                raise DkimKeyError(
                    f"{name} already has a key with selector {wanted.lower()}; "
                    "choose another with --selector"
                )
        made = [generate_key(keys_dir, name, sel, alg) for sel, alg in pairs]
    except DkimKeyError as exc:
        fail(exc)
    except OSError as exc:
        fail(f"cannot write keys under {keys_dir}: {exc.strerror or exc}")
    for key in made:
        _print_record(console, key)
    if not cfg.dkim.sign:
        console.print("note: dkim.sign is off in the configuration: nothing is signed yet")
    console.print(
        "Mail from this domain is signed from the next message on; receivers can verify it "
        "once the record is visible in DNS.",
        style="dim",
    )


@dkim_app.command("show")
def dkim_show(
    domain: Annotated[str, typer.Argument(help="Domain whose records to print again")],
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Print the DNS TXT records of a domain's existing keys."""
    cfg = _config(config, data)
    console = Console(highlight=False)
    try:
        keys = list_keys(_keys_dir(cfg), normalize_domain(domain))
        if not keys:
            fail(f"no DKIM key for {domain}: make one with `mailwright dkim generate {domain}`")
        for key in keys:
            _print_record(console, key)
    except DkimKeyError as exc:
        fail(exc)


@dkim_app.command("list")
def dkim_list(data: DataOption = None, config: ConfigOption = None) -> None:
    """List the signing keys: domain, selector, algorithm, DNS name."""
    cfg = _config(config, data)
    keys = list_keys(_keys_dir(cfg))
    console = Console(highlight=False)
    if not keys:
        console.print("no DKIM keys (make one with `mailwright dkim generate DOMAIN`)")
        return
    table = Table("domain", "selector", "algorithm")
    # fold, not "…": the name and the path are for copying.
    table.add_column("DNS name (TXT)", overflow="fold")
    table.add_column("file", overflow="fold")
    for key in keys:
        table.add_row(key.domain, key.selector, key.algorithm, key.record_name, str(key.path))
    console.print(table)
