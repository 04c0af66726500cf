"""Outbound queue throughput: submit N messages for remote recipients, time until the sinks
have them all.

`python -m bench.queue_bench [--scale X] [--messages N] [--keep]`

The real server runs as its own process (`mailwright serve`, durable by default; BENCH_DURABLE=
false for CPU cost alone). Every destination domain `dN.sink.test` has its own aiosmtpd sink
on its own loopback port, reached through a static route (MAILWRIGHT_ROUTES), so "10
destinations" means 10 distinct remote hosts and 10 per-domain concurrency buckets. Submitters
log in on the submission port with AUTH PLAIN and send one recipient per message, round-robin
over the domains. The clock runs from the first submission to the last message received by a
sink; per message, latency is from its 250 at submission to its arrival at the sink.

Verified: every message arrives exactly once, and ends with the bytes that were submitted (the
server may add trace and DKIM-Signature header fields above them, nothing else).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session
from rich.console import Console
from rich.table import Table

from bench.server_process import DOMAIN, PASSWORD, ServerProcess, create_accounts
from bench.smtp_bench import LINE, SmtpError, expect, read_reply

SENDER = f"sender@{DOMAIN}"
# (label, destination domains, messages at scale 1, DKIM keys for the sender's domain).
PHASES = [
    ("10 destinations", 10, 1000, False),
    ("100 destinations", 100, 1000, False),
    ("100 destinations, DKIM", 100, 1000, True),
]
SUBMITTERS = 8
MESSAGE_SIZE = 4 * 1024
# A phase that has not drained by then is reported as incomplete, not waited on forever.
DRAIN_TIMEOUT = 300.0
_SUBJECT = re.compile(rb"^Subject: queue bench (\d+)\r$", re.MULTILINE)


def make_message(index: int, rcpt: str) -> bytes:
    header = (
        f"From: {SENDER}\r\nTo: {rcpt}\r\nSubject: queue bench {index}\r\n"
        f"Message-ID: <q{index}@{DOMAIN}>\r\n\r\n"
    ).encode()
    return header + LINE * max(1, (MESSAGE_SIZE - len(header)) // len(LINE))


@dataclass
class SinkRecord:
    arrivals: dict[int, float] = field(default_factory=dict)  # index -> perf_counter
    duplicates: int = 0
    corrupt: int = 0
    sessions: int = 0
    tls_sessions: int = 0


class _Handler:
    """aiosmtpd handler: record each message's arrival; signal when all have come."""

    def __init__(self, record: SinkRecord, expected: dict[int, bytes], done: threading.Event):
        self.record = record
        self.expected = expected
        self.done = done
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        now = time.perf_counter()
        data = envelope.original_content or b""
        match = _SUBJECT.search(data)
        with self.lock:
            if match is None:
                self.record.corrupt += 1
            else:
                index = int(match[1])
                sent = self.expected.get(index)
                if sent is None or not data.replace(b"\r\n", b"\n").endswith(
                    sent.replace(b"\r\n", b"\n")
                ):
                    self.record.corrupt += 1
                elif index in self.record.arrivals:
                    self.record.duplicates += 1
                else:
                    self.record.arrivals[index] = now
            if len(self.record.arrivals) + self.record.corrupt >= len(self.expected):
                self.done.set()
        return "250 2.0.0 OK"


class Sinks:
    """One aiosmtpd listener per destination domain, all on one event loop in a thread."""

    def __init__(self, domains: list[str], expected: dict[int, bytes]) -> None:
        self.domains = domains
        self.record = SinkRecord()
        self.done = threading.Event()
        self.handler = _Handler(self.record, expected, self.done)
        self.ports: dict[str, int] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="queue-bench-sinks", daemon=True)
        self._ready = threading.Event()
        self._servers: list[asyncio.Server] = []

    def _factory(self) -> SMTP:
        self.record.sessions += 1  # one protocol object per connection
        return SMTP(self.handler, hostname="sink.test", enable_SMTPUTF8=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        for domain in self.domains:
            server = self.loop.run_until_complete(
                self.loop.create_server(self._factory, "127.0.0.1", 0)
            )
            self._servers.append(server)
            self.ports[domain] = server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()
        for server in self._servers:
            server.close()
            self.loop.run_until_complete(server.wait_closed())
        self.loop.close()

    def start(self) -> Sinks:
        self.thread.start()
        self._ready.wait()
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)

    @property
    def routes(self) -> str:
        """The MAILWRIGHT_ROUTES value: every domain to its own sink."""
        return ",".join(f"{domain}=127.0.0.1:{port}" for domain, port in self.ports.items())


async def submitter(
    port: int, jobs: list[tuple[int, str, bytes]], submitted: dict[int, float]
) -> None:
    """One authenticated submission session sending jobs until none are left."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await expect(reader, 220)
        writer.write(b"EHLO bench.client.test\r\n")
        await expect(reader, 250)
        token = base64.b64encode(f"\0{SENDER}\0{PASSWORD}".encode()).decode()
        writer.write(f"AUTH PLAIN {token}\r\n".encode())
        await expect(reader, 235)
        first = True
        while jobs:
            index, rcpt, message = jobs.pop()
            prefix = b"" if first else b"RSET\r\n"
            writer.write(
                prefix + f"MAIL FROM:<{SENDER}> SIZE={len(message)}\r\n"
                f"RCPT TO:<{rcpt}>\r\nDATA\r\n".encode()
            )
            for code in ([] if first else [250]) + [250, 250, 354]:
                await expect(reader, code)
            writer.write(message + b".\r\n")
            code, line = await read_reply(reader)
            if code != 250:
                raise SmtpError(f"message {index} refused: {line!r}")
            submitted[index] = time.perf_counter()
            first = False
        writer.write(b"QUIT\r\n")
        await expect(reader, 221)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@dataclass
class QueueResult:
    label: str
    domains: int
    messages: int
    dkim: bool
    submit_seconds: float = 0.0
    total_seconds: float = 0.0
    delivered: int = 0
    duplicates: int = 0
    corrupt: int = 0
    sessions: int = 0
    latencies: list[float] = field(default_factory=list)
    exit_code: int | None = None

    @property
    def rate(self) -> float:
        return self.delivered / self.total_seconds if self.total_seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def generate_dkim(data_dir: Path) -> None:
    """Dual keys for the sender's domain, made by the real CLI (as an admin would)."""
    subprocess.run(
        [sys.executable, "-m", "mailwright", "dkim", "generate", DOMAIN, "--data", str(data_dir)],
        check=True,
        stdout=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("MAILWRIGHT_")},
    )


def run_queue_phase(
    label: str, domains: int, messages: int, dkim: bool, work: Path, console: Console
) -> QueueResult:
    result = QueueResult(label, domains, messages, dkim)
    data_dir = work / f"data-{domains}-{int(dkim)}"
    data_dir.mkdir(parents=True)
    create_accounts(data_dir, [SENDER])
    if dkim:
        generate_dkim(data_dir)
    names = [f"d{i}.sink.test" for i in range(domains)]
    jobs: list[tuple[int, str, bytes]] = []
    expected: dict[int, bytes] = {}
    for index in range(messages):
        rcpt = f"user{index}@{names[index % domains]}"
        message = make_message(index, rcpt)
        expected[index] = message
        jobs.append((index, rcpt, message))
    jobs.reverse()
    sinks = Sinks(names, expected).start()
    server = ServerProcess.start(
        data_dir,
        extra_env={
            "MAILWRIGHT_LISTEN_SUBMISSION": "127.0.0.1:0",
            "MAILWRIGHT_ROUTES": sinks.routes,
            "MAILWRIGHT_DKIM_SIGN": "true" if dkim else "false",
        },
    )
    try:
        console.print(f"  {label}: {messages} x {MESSAGE_SIZE // 1024} KB to {domains} domains…")
        submitted: dict[int, float] = {}
        started = time.perf_counter()

        async def submit_all() -> None:
            await asyncio.gather(
                *(submitter(server.ports["submission"], jobs, submitted)
                  for _ in range(SUBMITTERS))
            )

        asyncio.run(submit_all())
        result.submit_seconds = time.perf_counter() - started
        sinks.done.wait(timeout=DRAIN_TIMEOUT)
        arrivals = dict(sinks.record.arrivals)
        last = max(arrivals.values(), default=started)
        result.total_seconds = last - started
        result.delivered = len(arrivals)
        result.duplicates = sinks.record.duplicates
        result.corrupt = sinks.record.corrupt
        result.sessions = sinks.record.sessions
        result.latencies = [arrivals[i] - submitted[i] for i in arrivals if i in submitted]
    finally:
        result.exit_code = server.stop()
        sinks.stop()
    return result


def report(console: Console, results: list[QueueResult]) -> None:
    if not console.is_terminal:  # a log or a pipe: do not squeeze the table into 80 columns
        console = Console(highlight=False, width=max(console.width, 160))
    table = Table(
        title=f"mailwright outbound queue to local aiosmtpd sinks, {os.cpu_count()} CPUs "
        f"(durable: {os.environ.get('BENCH_DURABLE', 'true')})"
    )
    table.add_column("phase")
    for column in ("messages", "delivered", "submit s", "total s", "msg/s", "p50 ms", "p99 ms",
                   "sessions", "dup", "bad", "exit"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r.label,
            str(r.messages),
            str(r.delivered),
            f"{r.submit_seconds:.2f}",
            f"{r.total_seconds:.2f}",
            f"{r.rate:.0f}",
            f"{r.percentile(50) * 1000:.0f}",
            f"{r.percentile(99) * 1000:.0f}",
            str(r.sessions),
            str(r.duplicates),
            str(r.corrupt),
            str(r.exit_code),
        )
    console.print(table)
    console.print(
        "msg/s: delivered / (first submission .. last arrival); p50/p99: from a message's 250 "
        "at submission to its arrival at the sink; sessions: SMTP connections the sinks saw"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.queue_bench", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply message counts")
    parser.add_argument("--messages", type=int, default=0, help="messages per phase (overrides)")
    parser.add_argument("--only", action="append", default=[], help="phase label prefix")
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    args = parser.parse_args(argv)
    console = Console(highlight=False)
    work = Path(tempfile.mkdtemp(prefix="mw-queue-bench-"))
    results: list[QueueResult] = []
    try:
        for label, domains, count, dkim in PHASES:
            if args.only and not any(label.startswith(prefix) for prefix in args.only):
                continue
            messages = args.messages or max(domains, int(count * args.scale))
            results.append(run_queue_phase(label, domains, messages, dkim, work, console))
    finally:
        if args.keep:
            console.print(f"data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(console, results)
    ok = all(
        r.delivered == r.messages and not r.duplicates and not r.corrupt and r.exit_code == 0
        for r in results
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
