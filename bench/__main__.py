"""`python -m bench [--scale X] [--only NAME] [--profile FILE] [--keep]`: run the SMTP/POP3 phases
and the IMAP benchmarks and print their tables (see __init__, imap_bench, imap_idle)."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.imap_bench import BenchResult, Profiling, run_append, run_mailbox
from bench.imap_idle import run_idle
from bench.pop3_bench import retr_all
from bench.server_process import DOMAIN, PASSWORD, ServerProcess, create_accounts
from bench.smtp_bench import PhaseResult, run_phase
from mailwright.store import open_store

KB = 1024
# (name, message size, concurrent senders, messages at scale 1). Counts are sized so that each
# phase runs a few seconds on a 2-core machine: enough for a stable p99, bounded in time.
PHASES = [
    ("4k-1", 4 * KB, 1, 400),
    ("4k-10", 4 * KB, 10, 3000),
    ("4k-50", 4 * KB, 50, 3000),
    ("100k-1", 100 * KB, 1, 100),
    ("100k-10", 100 * KB, 10, 500),
    ("100k-50", 100 * KB, 50, 1000),
]
POP3_MESSAGES = 1000
POP3_SIZE = 4 * KB
# The targets (and, for scale, Postfix + Dovecot on the same 2-core machine).
TARGET_RATE_4K_10 = 500.0
TARGET_P99_MS = 25.0
DOVECOT_RETR_1000_MS = 345.0
SMTP_NAMES = [name for name, *_ in PHASES]
# IMAP entries (issue 4), each on its own server process. imap-idle-5000 takes several minutes,
# so it runs only when named with --only.
IMAP_BENCHES: dict[str, Callable[[float, Path, Profiling, Console], BenchResult]] = {
    "imap-append": run_append,
    "imap-10k": run_mailbox,
    "imap-idle": lambda scale, work, profile, console: run_idle(
        max(10, int(1000 * scale)), max(10, int(1000 * scale)), work, profile, console,
        shared_deliveries=max(3, int(20 * scale)),
    ),
    "imap-idle-5000": lambda scale, work, profile, console: run_idle(
        max(10, int(5000 * scale)), max(10, int(1000 * scale)), work, profile, console,
        shared_deliveries=max(3, int(10 * scale)),
    ),
}
IMAP_DEFAULT = ["imap-append", "imap-10k", "imap-idle"]


def verify(
    data_dir: Path, results: list[PhaseResult], pop3_expected: dict[str, str]
) -> dict[str, str]:
    """Every message sent must be stored once, and end with exactly the bytes we sent.

    The server prepends Return-Path and Received; everything after them must hash to what the
    client sent (sha256), so a message that was truncated, duplicated or mixed up shows here.
    """
    store = open_store(data_dir)
    verdicts: dict[str, str] = {}
    try:
        groups = [(r.name, r.expected) for r in results] + [("pop3", pop3_expected)]
        for name, expected in groups:
            account = store.get_account(f"{name}@{DOMAIN}")
            assert account is not None
            found = 0
            bad = 0
            seen: set[str] = set()
            for message in store.pop3_messages(account.id):
                raw = store.blob_path(message.blob).read_bytes()
                start = raw.find(b"From: sender@remote.test\r\n")
                subject_at = raw.find(b"Subject: ", start)
                subject = raw[subject_at + 9 : raw.find(b"\r\n", subject_at)].decode()
                tail = raw[start:]
                if (
                    start < 0
                    or subject in seen
                    or expected.get(subject) != hashlib.sha256(tail).hexdigest()
                ):
                    bad += 1
                seen.add(subject)
                found += 1
            ok = found == len(expected) and bad == 0 and seen == set(expected)
            verdicts[name] = (
                f"{found}/{len(expected)} ✓"
                if ok
                else f"FAILED: {found}/{len(expected)}, {bad} bad"
            )
    finally:
        store.close()
    return verdicts


async def run_all(
    ports: dict[str, int], scale: float, phases: set[str], console: Console
) -> tuple[list[PhaseResult], dict[str, str], tuple[int, int, float]]:
    results: list[PhaseResult] = []
    for name, size, senders, count in PHASES:
        if name not in phases:
            continue
        messages = max(senders, int(count * scale))
        console.print(f"  {name}: {messages} messages of {size // KB} KB, {senders} sender(s)…")
        results.append(
            await run_phase(
                "127.0.0.1", ports["smtp"], f"{name}@{DOMAIN}", name, size, senders, messages
            )
        )
    console.print(f"  pop3: delivering {POP3_MESSAGES} x 4 KB, then RETR all over one connection…")
    fill = await run_phase(
        "127.0.0.1", ports["smtp"], f"pop3@{DOMAIN}", "pop3", POP3_SIZE, 10, POP3_MESSAGES
    )
    pop3 = await retr_all("127.0.0.1", ports["pop3"], f"pop3@{DOMAIN}", PASSWORD)
    return results, fill.expected, pop3


def report(
    console: Console,
    results: list[PhaseResult],
    verdicts: dict[str, str],
    pop3: tuple[int, int, float],
    exit_code: int,
) -> None:
    table = Table(title=f"mailwright SMTP in (durable: fsync before 250), {os.cpu_count()} CPUs")
    for column in ("Size", "Senders", "Messages", "msg/s", "p50 EOD ms", "p99 EOD ms", "Verified"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            f"{r.size // KB} KB",
            str(r.senders),
            str(r.messages),
            f"{r.rate:,.0f}",
            f"{r.percentile(50) * 1000:.1f}",
            f"{r.percentile(99) * 1000:.1f}",
            verdicts[r.name],
        )
    console.print(table)
    count, octets, seconds = pop3
    console.print(
        f"POP3 RETR of {count} x 4 KB over one connection: {seconds * 1000:.0f} ms "
        f"({octets / seconds / 1e6:.1f} MB/s; "
        f"Dovecot on this machine: {DOVECOT_RETR_1000_MS:.0f} ms)"
        f" — mailbox {verdicts['pop3']}"
    )
    target = next((r for r in results if r.size == 4 * KB and r.senders == 10), None)
    if target is not None:
        met = target.rate >= TARGET_RATE_4K_10 and target.percentile(99) * 1000 <= TARGET_P99_MS
        console.print(
            f"Target (4 KB, 10 senders: ≥ {TARGET_RATE_4K_10:.0f} msg/s, "
            f"p99 ≤ {TARGET_P99_MS:.0f} ms): " + ("met" if met else "NOT met")
        )
    console.print(f"server exit code on SIGTERM: {exit_code}")


def report_imap(console: Console, results: dict[str, BenchResult]) -> None:
    if not console.is_terminal:  # a log or a pipe: do not squeeze the table into 80 columns
        console = Console(highlight=False, width=max(console.width, 180))
    durable = os.environ.get("BENCH_DURABLE", "true") != "false"
    table = Table(
        title=f"mailwright IMAP ({'durable' if durable else 'NOT durable: BENCH_DURABLE=false'}"
        f"), {os.cpu_count()} CPUs; Dovecot 2.3 measured on the same 2-core machine",
    )
    table.add_column("Benchmark")
    for column in ("Target", "Dovecot 2.3", "Measured"):
        table.add_column(column, justify="right")
    table.add_column("Met?", justify="center")
    table.add_column("Detail (verification)", overflow="fold")
    for index, (name, result) in enumerate(results.items()):
        if index:
            table.add_section()
        for row in result.rows:
            met = "" if row.met is None else "yes" if row.met else "[bold red]NO[/]"
            table.add_row(row.name, row.target, row.dovecot, row.measured, met, row.detail)
        for failure in result.failures:
            table.add_row(f"[bold red]{name} FAILED[/]", "", "", "", "", failure)
    console.print(table)


def run_imap(
    names: list[str], scale: float, root: Path, profiling: Profiling, console: Console
) -> dict[str, BenchResult]:
    results: dict[str, BenchResult] = {}
    for name in names:
        work = root / name
        work.mkdir(parents=True)
        began = time.perf_counter()
        results[name] = IMAP_BENCHES[name](scale, work, profiling.named(name), console)
        console.print(f"  {name} done in {time.perf_counter() - began:.1f} s")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every phase's message count, the IMAP mailbox size and IDLE session "
        "count (e.g. 0.1 for a quick run)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="data directory to use (default: a fresh temporary one, removed)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PHASE",
        choices=[*SMTP_NAMES, "smtp", "imap", *IMAP_BENCHES],
        help="run only this (repeatable): an SMTP phase (e.g. 4k-10; POP3 runs with any SMTP "
        "phase), 'smtp' for all of them, an IMAP entry (imap-append, imap-10k, imap-idle; "
        "imap-idle-5000 runs only when named: about 3 minutes), or 'imap' for the three default "
        "IMAP entries",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="FILE",
        help="run the servers under cProfile (event-loop thread only): the SMTP one writes "
        "FILE, IMAP entry X writes FILE.X (FILE.imap-idle.distinct / .shared for the IDLE "
        "servers)",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="FILE",
        help="attach py-spy to the servers (all threads, little overhead) and write collapsed "
        "stacks, named as for --profile; summarise with `python -m bench.spy_report FILE`",
    )
    args = parser.parse_args()
    console = Console(highlight=False)

    only = set(args.only)
    smtp_phases = (
        set(SMTP_NAMES) if not only or "smtp" in only else only.intersection(SMTP_NAMES)
    )
    imap_names = [
        name
        for name in IMAP_BENCHES
        if (not only and name in IMAP_DEFAULT)
        or name in only
        or ("imap" in only and name in IMAP_DEFAULT)
    ]
    data_dir = args.data or Path(tempfile.mkdtemp(prefix="mailwright-bench-")) / "data"
    # IMAP entries get fresh directories next to the SMTP one: <parent>/<data name>-imap/<entry>.
    imap_root = data_dir.with_name(f"{data_dir.name}-imap")
    for directory in (data_dir, imap_root):
        if directory.exists() and any(directory.iterdir()):
            parser.error(f"{directory} is not empty")
    failed = False
    if smtp_phases:
        failed = run_smtp(args, smtp_phases, data_dir, console)
    if imap_names:
        console.print(f"IMAP: {', '.join(imap_names)} (data under {imap_root})")
        profiling = Profiling(args.profile, args.py_spy)
        imap_results = run_imap(imap_names, args.scale, imap_root, profiling, console)
        report_imap(console, imap_results)
        failed = failed or any(result.failures for result in imap_results.values())
    if not args.keep and args.data is None:
        shutil.rmtree(data_dir.parent)
    elif not args.keep and imap_root.exists():
        shutil.rmtree(imap_root)
    raise SystemExit(1 if failed else 0)


def run_smtp(
    args: argparse.Namespace, phases: set[str], data_dir: Path, console: Console
) -> bool:
    """The SMTP phases and POP3 on one server; True when verification failed."""
    addresses = [f"{name}@{DOMAIN}" for name, *_ in PHASES] + [f"pop3@{DOMAIN}"]
    create_accounts(data_dir, addresses)
    server = ServerProcess.start(data_dir, args.profile, spy=args.py_spy)
    console.print(f"server pid {server.proc.pid}, data {data_dir}, ports {server.ports}")
    began = time.perf_counter()
    try:
        results, pop3_expected, pop3 = asyncio.run(
            run_all(server.ports, args.scale, phases, console)
        )
    finally:
        exit_code = server.stop()
    console.print(f"load done in {time.perf_counter() - began:.1f} s; verifying every message…")
    verdicts = verify(data_dir, results, pop3_expected)
    report(console, results, verdicts, pop3, exit_code)
    return exit_code != 0 or any(not v.endswith("✓") for v in verdicts.values())


if __name__ == "__main__":
    main()
