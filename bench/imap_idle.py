"""Many IMAP sessions in IDLE: the server's memory, and how fast a delivery wakes them.

Each scenario starts its own `mailwright serve` subprocess (fd limit raised for it and for us,
IMAP connection limits raised through MAILWRIGHT_IMAP_MAX_CONNECTIONS[_PER_IP]), opens N
sessions from this process (asyncio; each LOGIN, SELECT INBOX, IDLE), then delivers 4 KB messages
over one SMTP connection, one at a time, and times each idler's "* n EXISTS":
- `distinct`: every session is a different account (one mailbox per user, as most servers see
  it); each delivery goes to one of them and wakes exactly one session.
- `shared`: every session is on the same INBOX; each delivery wakes all N.
Latency is measured from the SMTP 250 (the commit; the issue's "within 100 ms of the commit") to
this process reading the EXISTS line; when the EXISTS is read before the 250 that counts as 0.
The time from writing the final "." of DATA (so including the durable delivery itself) is shown
too. RSS is the server's VmRSS (/proc/<pid>/status): before the sessions, with every session in
IDLE, and after the deliveries; the largest is compared with the target.

The accounts get a cheap argon2id hash (t=1, 1 MiB) instead of the default 64 MiB one: the
server verifies whatever parameters the stored hash names, so N logins take seconds, not
minutes, and their 64 MiB buffers do not blur the RSS figure. Logins are not what is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import argon2
from rich.console import Console

from bench.imap_bench import HOST, BenchResult, Profiling, Row, percentile, stop_server
from bench.imap_client import ImapError, async_tagged
from bench.imap_corpus import make_message
from bench.server_process import DOMAIN, PASSWORD, ServerProcess
from bench.smtp_bench import SmtpError, expect, read_reply

CONNECT_CONCURRENCY = 64
EXISTS = re.compile(rb"\* (\d+) EXISTS\r\n")
WAKE_TIMEOUT = 10.0
WAKE_DELIVERIES = 20  # for the wake-up row of the 10k-mailbox bench
MB = 1024 * 1024
# (sessions, RSS target in MB, Dovecot's RSS in MB); p99 target and Dovecot's p99 for 1,000.
RSS_TARGETS = {1000: (100, "524 MB"), 5000: (400, "2.5 GB")}
P99_TARGET_MS = 100.0
DOVECOT_P99 = "846 ms"


@dataclass
class Idler:
    index: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    selected: int = 0  # EXISTS in the SELECT reply
    exists: dict[int, float] = field(default_factory=dict)  # EXISTS n -> when read
    want: int = 0
    waiter: asyncio.Future[float] | None = None
    task: asyncio.Task[None] | None = None

    async def listen(self) -> None:
        while True:
            line = await self.reader.readline()
            if not line:
                return
            found = EXISTS.match(line)
            if found:
                now = time.perf_counter()
                number = int(found.group(1))
                self.exists[number] = now
                if self.waiter is not None and number >= self.want and not self.waiter.done():
                    self.waiter.set_result(now)

    def expect(self, number: int) -> asyncio.Future[float]:
        """A future for the time at which "* <number> EXISTS" (or more) was read."""
        self.want = number
        self.waiter = asyncio.get_running_loop().create_future()
        if number in self.exists:
            self.waiter.set_result(self.exists[number])
        return self.waiter


async def open_idler(index: int, port: int, user: str, gate: asyncio.Semaphore) -> Idler:
    async with gate:
        reader, writer = await asyncio.open_connection(HOST, port)
        greeting = await reader.readline()
        if not greeting.startswith(b"* OK"):
            raise ImapError(f"greeting {greeting!r}")
        writer.write(f'a LOGIN "{user}" "{PASSWORD}"\r\n'.encode())
        await async_tagged(reader, b"a")
        writer.write(b"b SELECT INBOX\r\n")
        selected = 0
        while not (line := await reader.readline()).startswith(b"b "):
            found = EXISTS.match(line)
            selected = int(found.group(1)) if found else selected
        if not line.startswith(b"b OK"):
            raise ImapError(f"SELECT: {line!r}")
        writer.write(b"c IDLE\r\n")
        line = await reader.readline()
        if not line.startswith(b"+"):
            raise ImapError(f"IDLE: {line!r}")
    idler = Idler(index, reader, writer, selected)
    idler.task = asyncio.get_running_loop().create_task(idler.listen())
    return idler


class SmtpSender:
    """One persistent SMTP connection; `send()` returns (time of the final ".", time of 250)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.first = reader, writer, True

    @classmethod
    async def connect(cls, port: int) -> SmtpSender:
        reader, writer = await asyncio.open_connection(HOST, port)
        await expect(reader, 220)
        writer.write(b"EHLO bench.client.test\r\n")
        await expect(reader, 250)
        return cls(reader, writer)

    async def send(self, rcpt: str, message: bytes) -> tuple[float, float]:
        body = message.replace(b"\r\n.", b"\r\n..")
        body = b"." + body if body.startswith(b".") else body
        self.writer.write(
            (b"" if self.first else b"RSET\r\n")
            + f"MAIL FROM:<sender@remote.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode()
        )
        if not self.first:
            await expect(self.reader, 250)
        self.first = False
        await expect(self.reader, 250)
        await expect(self.reader, 250)
        await expect(self.reader, 354)
        self.writer.write(body)
        await self.writer.drain()
        dot = time.perf_counter()
        self.writer.write(b".\r\n")
        code, line = await read_reply(self.reader)
        done = time.perf_counter()
        if code != 250:
            raise SmtpError(f"delivery refused: {line!r}")
        return dot, done

    async def close(self) -> None:
        self.writer.write(b"QUIT\r\n")
        with contextlib.suppress(SmtpError, ConnectionError):
            await expect(self.reader, 221)
        self.writer.close()


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise SystemExit(f"need {needed} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def create_idle_accounts(data_dir: Path, addresses: list[str]) -> None:
    from mailwright.store import open_store

    cheap = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    store = open_store(data_dir, durable=False)
    try:
        store.add_domain(DOMAIN)
        for address in addresses:
            store.add_account(address, cheap)
    finally:
        store.close()


@dataclass
class Scenario:
    kind: str  # "distinct" or "shared"
    sessions: int
    deliveries: int
    connect_seconds: float = 0.0
    rss_base: int = 0
    rss_idle: int = 0
    rss_after: int = 0
    from_250: list[float] = field(default_factory=list)
    from_dot: list[float] = field(default_factory=list)
    missed: int = 0


async def drive(server: ServerProcess, scenario: Scenario, users: list[str],
                console: Console) -> None:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    began = time.perf_counter()
    idlers = await asyncio.gather(*(
        open_idler(i, server.ports["imap"], users[i], gate) for i in range(scenario.sessions)
    ))
    scenario.connect_seconds = time.perf_counter() - began
    await asyncio.sleep(1.0)  # let the server settle (threads, buffers) before reading RSS
    scenario.rss_idle = server.rss_bytes()
    console.print(
        f"    {scenario.sessions} sessions in IDLE after {scenario.connect_seconds:.1f} s; "
        f"server RSS {scenario.rss_idle / MB:.0f} MB; delivering {scenario.deliveries}…"
    )
    smtp = await SmtpSender.connect(server.ports["smtp"])
    order = random.Random(5).sample(idlers, len(idlers))  # spread over the sessions
    try:
        for number in range(scenario.deliveries):
            if scenario.kind == "distinct":
                # Each delivery wakes one session; its account gets its k-th message.
                target = order[number % len(order)]
                rcpt = users[target.index]
                waiting = [target.expect(target.selected + number // len(order) + 1)]
            else:
                rcpt = users[0]
                waiting = [idler.expect(idler.selected + number + 1) for idler in idlers]
            dot, done = await smtp.send(rcpt, make_message(number, rcpt, seed=99))
            finished, pending = await asyncio.wait(waiting, timeout=WAKE_TIMEOUT)
            scenario.missed += len(pending)
            for future in finished:
                woke = future.result()
                scenario.from_250.append(max(0.0, woke - done))
                scenario.from_dot.append(woke - dot)
            if scenario.kind == "shared":
                await asyncio.sleep(0.05)  # let the last wake-ups' reads settle
    finally:
        await smtp.close()
    await asyncio.sleep(0.5)
    scenario.rss_after = server.rss_bytes()
    for idler in idlers:
        with contextlib.suppress(ConnectionError):
            idler.writer.write(b"DONE\r\nd LOGOUT\r\n")
    await asyncio.sleep(0.5)
    for idler in idlers:
        if idler.task is not None:
            idler.task.cancel()
        idler.writer.close()


def run_scenario(kind: str, sessions: int, deliveries: int, work: Path, profiling: Profiling,
                 console: Console, result: BenchResult) -> Scenario:
    scenario = Scenario(kind, sessions, deliveries)
    data_dir = work / kind / "data"
    if kind == "distinct":
        users = [f"idle{i}@{DOMAIN}" for i in range(sessions)]
    else:
        users = [f"shared@{DOMAIN}"] * sessions
    console.print(f"  imap IDLE ({kind}): {sessions} sessions; creating accounts…")
    create_idle_accounts(data_dir, sorted(set(users)))
    limit = str(sessions + 100)
    server = profiling.start(data_dir, {
        "MAILWRIGHT_IMAP_MAX_CONNECTIONS": limit,
        "MAILWRIGHT_IMAP_MAX_CONNECTIONS_PER_IP": limit,
    })
    try:
        time.sleep(0.5)
        scenario.rss_base = server.rss_bytes()
        try:
            import uvloop  # a faster client loop: less of the client in the latency

            uvloop.run(drive(server, scenario, users, console))
        except ImportError:
            asyncio.run(drive(server, scenario, users, console))
    finally:
        stop_server(server, f"imap-idle-{kind}", result)
    return scenario


def run_idle(sessions: int, deliveries: int, work: Path, profiling: Profiling,
             console: Console, scenarios: tuple[str, ...] = ("distinct", "shared"),
             shared_deliveries: int = 20) -> BenchResult:
    result = BenchResult()
    raise_fd_limit(2 * sessions + 1000)  # our sockets and, inherited, the server's
    rss_target, dovecot_rss = RSS_TARGETS.get(sessions, (None, ""))
    for kind in scenarios:
        count = deliveries if kind == "distinct" else shared_deliveries
        s = run_scenario(kind, sessions, count, work, profiling.named(kind), console, result)
        if s.missed:
            result.failures.append(f"IDLE {kind}: {s.missed} wake-up(s) never arrived")
        what = "one account each" if kind == "distinct" else "all on one INBOX"
        woken = "1 session" if kind == "distinct" else f"all {sessions:,} sessions"
        peak = max(s.rss_idle, s.rss_after)
        per_session = (s.rss_idle - s.rss_base) / sessions / 1024
        result.rows.append(Row(
            f"{sessions:,} in IDLE ({what}): server RSS",
            f"≤ {rss_target} MB" if rss_target else "",
            dovecot_rss if kind == "distinct" else "",
            f"{peak / MB:.0f} MB",
            peak <= rss_target * MB if rss_target else None,
            f"before {s.rss_base / MB:.0f} MB, idle {s.rss_idle / MB:.0f} MB "
            f"(+{per_session:.0f} KB/session), after deliveries {s.rss_after / MB:.0f} MB; "
            f"sessions opened in {s.connect_seconds:.1f} s",
        ))
        p50 = percentile(s.from_250, 50) * 1000
        p99 = percentile(s.from_250, 99) * 1000
        result.rows.append(Row(
            f"{sessions:,} in IDLE ({what}): delivery→EXISTS p50 / p99",
            f"p99 ≤ {P99_TARGET_MS:.0f} ms",
            DOVECOT_P99 if kind == "distinct" and sessions == 1000 else "",
            f"{p50:.1f} / {p99:.1f} ms",
            p99 <= P99_TARGET_MS if s.from_250 else False,
            f"from the 250; each delivery wakes {woken}: {len(s.from_250):,} wake-ups of "
            f"{count} deliveries; from the final "
            f"'.': p50 {percentile(s.from_dot, 50) * 1000:.1f} / "
            f"p99 {percentile(s.from_dot, 99) * 1000:.1f} ms; max "
            f"{max(s.from_250, default=float('nan')) * 1000:.0f} ms",
        ))
    return result


def wake_latencies(server: ServerProcess, user: str, deliveries: int) -> list[float]:
    """One session in IDLE on `user`'s INBOX (however big), `deliveries` SMTP deliveries to it
    one at a time: seconds from each 250 to its EXISTS (the mailbox bench's wake-up row)."""

    async def run() -> list[float]:
        idler = await open_idler(0, server.ports["imap"], user, asyncio.Semaphore(1))
        smtp = await SmtpSender.connect(server.ports["smtp"])
        latencies: list[float] = []
        try:
            for number in range(deliveries):
                waiting = idler.expect(idler.selected + number + 1)
                _dot, done = await smtp.send(user, make_message(number, user, seed=77))
                woke = await asyncio.wait_for(waiting, WAKE_TIMEOUT)
                latencies.append(max(0.0, woke - done))
        finally:
            await smtp.close()
            idler.writer.write(b"DONE\r\nd LOGOUT\r\n")
            await asyncio.sleep(0.2)
            if idler.task is not None:
                idler.task.cancel()
            idler.writer.close()
        return latencies

    return asyncio.run(run())
