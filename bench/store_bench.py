"""`python -m bench.store_bench [--messages N]`: FETCH-side metadata and SEARCH TEXT/BODY speed.

Fills one mailbox with N 4 KB messages (varied words, a few non-ASCII) straight through the
store, then times, on a store opened afresh (cold cache):
- `message_infos` for every message (what FETCH 1:* ENVELOPE needs), cold then warm;
- `search_text` for needles of every kind: a word in one message, a word in all, a 2-letter
  needle (no index: scanned), a non-ASCII one, one found nowhere.
Targets (issue 4): message_infos for 10,000 well under 300 ms; SEARCH TEXT ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mailwright.store import Envelope, SqliteStore, TextField

DOMAIN = "bench.test"
WORDS = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "meeting", "report", "budget",
    "invoice", "schedule", "project", "review", "quarterly", "summary", "attached", "please",
    "thanks", "regards", "tomorrow", "friday", "monday", "déjà", "straße", "naïve", "café",
)


def make_message(index: int, rng: random.Random, size: int = 4096) -> bytes:
    header = (
        f"Return-Path: <sender{index % 50}@remote.test>\r\n"
        f"Received: from mx.remote.test by mx.{DOMAIN}; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        f"From: Sender {index % 50} <sender{index % 50}@remote.test>\r\n"
        f"To: user@{DOMAIN}\r\n"
        f"Subject: {rng.choice(WORDS)} {rng.choice(WORDS)} number {index}\r\n"
        f"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        f"Message-ID: <{index}@remote.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode()
    lines: list[bytes] = []
    total = len(header)
    if index == 4242:
        lines.append(b"the needle xylophone appears only here\r\n")
    words = rng.choices(WORDS, k=size // 5)
    for start in range(0, len(words), 10):
        line = (" ".join(words[start : start + 10]) + "\r\n").encode()
        lines.append(line)
        total += len(line)
        if total >= size:
            break
    return header + b"".join(lines)


async def fill(store: SqliteStore, account_id: int, count: int) -> float:
    rng = random.Random(4)
    started = time.perf_counter()
    batch = 200
    for first in range(0, count, batch):
        jobs = []
        for index in range(first, min(count, first + batch)):
            staged = store.stage()
            staged.write(make_message(index, rng))
            jobs.append(store.deliver(staged, Envelope("s@remote.test"), [account_id], []))
        await asyncio.gather(*jobs)
    return time.perf_counter() - started


def timed(fn: object, repeat: int = 5) -> float:
    """Median milliseconds of `repeat` calls."""
    assert callable(fn)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="mailwright-store-bench-"))
    try:
        store = SqliteStore(tmp / "data", durable=False)
        store.add_domain(DOMAIN)
        account = store.add_account(f"user@{DOMAIN}", "x")
        seconds = asyncio.run(fill(store, account.id, args.messages))
        store.close()
        console.print(
            f"stored {args.messages} x 4 KB in {seconds:.1f} s "
            f"({args.messages / seconds:.0f} msg/s, not durable, analysis included)"
        )
        store = SqliteStore(tmp / "data", durable=False)  # a cold cache
        try:
            box = store.mailbox(account.id, "INBOX")
            assert box is not None
            records = store.mailbox_messages(box.id)
            blobs = [r.blob for r in records]
            table = Table(title=f"store reads, {len(blobs)} messages in one mailbox")
            table.add_column("operation")
            table.add_column("ms", justify="right")
            table.add_column("result", justify="right")
            t = time.perf_counter()
            infos = store.message_infos(blobs)
            cold = (time.perf_counter() - t) * 1000
            table.add_row("message_infos, cold cache", f"{cold:.0f}", str(len(infos)))
            warm = timed(lambda: store.message_infos(blobs))
            table.add_row("message_infos, warm cache", f"{warm:.1f}", str(len(infos)))
            t = time.perf_counter()
            store.mailbox_messages(box.id)
            table.add_row(
                "(mailbox_messages, for scale)",
                f"{(time.perf_counter() - t) * 1000:.1f}",
                str(len(records)),
            )
            searches: list[tuple[TextField, str]] = [
                ("TEXT", "xylophone"),
                ("BODY", "xylophone"),
                ("TEXT", "number 4242"),
                ("TEXT", "quarterly"),
                ("BODY", "quarterly report"),
                ("TEXT", "STRASSE"),
                ("TEXT", "déjà"),
                ("TEXT", "sender7@"),
                ("BODY", "sender7@"),
                ("TEXT", "zz"),
                ("TEXT", "ab"),
                ("TEXT", "nowhere-to-be-found"),
            ]
            for field, needle in searches:
                hits = store.search_text(box.id, field, needle)
                ms = timed(lambda f=field, n=needle: store.search_text(box.id, f, n))
                table.add_row(f"search_text {field} {needle!r}", f"{ms:.1f}", str(len(hits)))
            console.print(table)
        finally:
            store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
