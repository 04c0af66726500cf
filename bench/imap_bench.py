"""IMAP benchmarks (issue 4): APPEND rate, commands on a 10,000-message mailbox, and (in
`imap_idle`) many sessions in IDLE. Each starts its own `mailwright serve` as a subprocess
(durable store unless BENCH_DURABLE=false) on a fresh data directory and returns table rows.

- APPEND: 1 and then 10 client threads, each on its own connection, APPEND 4 KB messages
  (`bench.imap_corpus`) to the same INBOX back to back with a LITERAL+ literal (as mbsync and
  Thunderbird do when the server offers LITERAL+), waiting for each tagged OK (which the server
  sends once the message is durable). Rate = messages / wall time after every client logged in.
  Verified: STATUS MESSAGES equals the count sent, and sampled messages read back byte for byte.
- 10k mailbox: filled straight through the store API (`store.deliver` in batches, not timed, no
  fsync) before the server starts, then one `RawImap` connection (a minimal reader that only looks
  for the tagged line: imaplib's Python parsing would dominate, see `bench.imap_client`) times
  each command from its first byte sent to its tagged OK received. "first" is the first run in a
  freshly started server process (its caches empty; the OS page cache is warm, since the fill
  just wrote the files); "again" is the median of the next three runs. In order: SELECT,
  UID FETCH 1:* (FLAGS), FETCH 1:* (ENVELOPE BODYSTRUCTURE), 100 bodies from the middle, SEARCH
  TEXT of a word in 1 % of the messages, STORE +FLAGS.SILENT on all, then (after an untimed
  -FLAGS.SILENT) the same STORE not silent, then every second message Deleted (untimed) and a
  timed EXPUNGE. Last, one session IDLEs on the remaining INBOX and 20 SMTP deliveries time the
  wake-up in a big mailbox (`imap_idle.wake_latencies`). Every response is checked (counts).
"""

from __future__ import annotations

import contextlib
import random
import re
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from bench.imap_client import RawImap, Reply
from bench.imap_corpus import NEEDLE, make_message
from bench.server_process import DOMAIN, PASSWORD, ServerProcess, create_accounts

HOST = "127.0.0.1"
APPEND_PHASES = [(1, 400), (10, 3000)]  # (clients, messages at scale 1), as the SMTP 4 KB rows
MAILBOX_MESSAGES = 10_000
FILL_BATCH = 250


@dataclass
class Row:
    """One line of the IMAP table."""

    name: str
    target: str  # "" when the issue only asks for a report
    dovecot: str
    measured: str
    met: bool | None  # None: nothing to meet
    detail: str = ""


@dataclass(frozen=True)
class Profiling:
    """Where the servers' profiles go (--profile: cProfile, --py-spy: py-spy); None: off."""

    cprofile: Path | None = None
    spy: Path | None = None

    def named(self, suffix: str) -> Profiling:
        """The same paths with `.suffix` appended, for one of several servers."""
        return Profiling(
            *(p.with_name(f"{p.name}.{suffix}") if p else None for p in (self.cprofile, self.spy))
        )

    def start(self, data_dir: Path, extra_env: dict[str, str] | None = None) -> ServerProcess:
        return ServerProcess.start(data_dir, self.cprofile, extra_env, self.spy)


@dataclass
class BenchResult:
    rows: list[Row] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # verification failures, server exit codes


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (as smtp_bench.PhaseResult.percentile)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def stop_server(server: ServerProcess, name: str, result: BenchResult) -> None:
    code = server.stop()
    if code != 0:
        result.failures.append(f"{name}: server exit code {code} on SIGTERM")


# ----- APPEND ----------------------------------------------------------------------------------
def _appender(
    port: int,
    user: str,
    jobs: list[tuple[int, bytes]],
    lock: threading.Lock,
    start: threading.Barrier,
    latencies: list[float],
    uids: dict[int, int],
    errors: list[str],
) -> None:
    try:
        client = RawImap(HOST, port)
        client.login(user, PASSWORD)
    except Exception as exc:
        errors.append(f"login: {exc}")
        start.abort()  # the other clients and the timer stop waiting
        return
    try:
        start.wait()
        while True:
            with lock:
                if not jobs:
                    break
                index, message = jobs.pop()
            reply = client.ok("APPEND INBOX", literal=message)
            latencies.append(reply.seconds)
            found = re.search(rb"\[APPENDUID \d+ (\d+)\]", reply.data)
            if found:
                uids[index] = int(found.group(1))
    except Exception as exc:
        errors.append(f"append: {exc}")
    finally:
        client.close()


def _fetch_body(client: RawImap, uid: int) -> bytes:
    reply = client.ok(f"UID FETCH {uid} BODY.PEEK[]")
    found = re.search(rb"BODY\[\] \{(\d+)\}\r\n", reply.data)
    if not found:
        return b""
    return reply.data[found.end() : found.end() + int(found.group(1))]


def run_append(scale: float, work: Path, profiling: Profiling, console: Console) -> BenchResult:
    result = BenchResult()
    data_dir = work / "data"
    users = {clients: f"append{clients}@{DOMAIN}" for clients, _ in APPEND_PHASES}
    create_accounts(data_dir, list(users.values()))
    server = profiling.start(data_dir)
    try:
        port = server.ports["imap"]
        for clients, count in APPEND_PHASES:
            messages = max(clients, int(count * scale))
            user = users[clients]
            console.print(f"  imap APPEND: {messages} x 4 KB from {clients} client(s)…")
            sent = {i: make_message(i, user, seed=clients) for i in range(messages)}
            jobs = sorted(sent.items(), reverse=True)  # pop() hands them out in order
            lock = threading.Lock()
            start = threading.Barrier(clients + 1)
            latencies: list[float] = []
            uids: dict[int, int] = {}
            errors: list[str] = []
            threads = [
                threading.Thread(
                    target=_appender,
                    args=(port, user, jobs, lock, start, latencies, uids, errors),
                )
                for _ in range(clients)
            ]
            for thread in threads:
                thread.start()
            with contextlib.suppress(threading.BrokenBarrierError):
                start.wait()  # every client logged in (or one failed): the clock starts
            began = time.perf_counter()
            for thread in threads:
                thread.join()
            seconds = time.perf_counter() - began
            rate = len(latencies) / seconds
            # Verify: the count, and a sample read back byte for byte.
            check = RawImap(HOST, port)
            check.login(user, PASSWORD)
            status = check.ok("STATUS INBOX (MESSAGES)").data
            stored = re.search(rb"MESSAGES (\d+)", status)
            check.ok("EXAMINE INBOX")
            sample = random.Random(clients).sample(sorted(uids), min(20, len(uids)))
            bad = [i for i in sample if _fetch_body(check, uids[i]) != sent[i]]
            check.close()
            ok = not errors and stored is not None and int(stored.group(1)) == messages
            ok = ok and not bad and len(uids) == messages
            verdict = f"{messages} stored, {len(sample)} read back ✓"
            if not ok:
                verdict = (
                    f"FAILED: STATUS {stored.group(1).decode() if stored else '?'}/{messages}, "
                    f"{len(bad)} bad, errors {errors[:2]}"
                )
                result.failures.append(f"APPEND {clients} client(s): {verdict}")
            ten = clients == 10
            result.rows.append(Row(
                f"APPEND 4 KB, {clients} client{'s' if clients > 1 else ''} (msg/s)",
                "≥ 500/s" if ten else "",
                "466/s" if ten else "",
                f"{rate:,.0f}/s",
                rate >= 500 if ten else None,
                f"p50 {percentile(latencies, 50) * 1000:.1f} ms, "
                f"p99 {percentile(latencies, 99) * 1000:.1f} ms; {verdict}",
            ))
    finally:
        stop_server(server, "imap-append", result)
    return result


# ----- the 10,000-message mailbox ----------------------------------------------------------------
def fill_mailbox(data_dir: Path, address: str, count: int) -> float:
    """Deliver `count` corpus messages to `address`'s INBOX through the store API; seconds."""
    import asyncio

    from mailwright.store import open_store
    from mailwright.store.api import Envelope

    create_accounts(data_dir, [address])
    store = open_store(data_dir, durable=False)  # the fill is not what we measure

    async def deliver_all() -> None:
        account = store.get_account(address)
        assert account is not None
        envelope = Envelope("sender@remote.test")
        for first in range(0, count, FILL_BATCH):
            jobs = []
            for index in range(first, min(count, first + FILL_BATCH)):
                staged = store.stage()
                staged.write(make_message(index, address))
                jobs.append(store.deliver(staged, envelope, [account.id], []))
            await asyncio.gather(*jobs)
        await store.aclose()

    began = time.perf_counter()
    try:
        asyncio.run(deliver_all())
    finally:
        store.close()
    return time.perf_counter() - began


def _again(run: Callable[[], Reply], times: int = 3) -> float:
    """Median milliseconds of `times` more runs."""
    return statistics.median(run().ms for _ in range(times))


def _within(ms: float, limit: float) -> bool:
    return ms <= limit


def run_mailbox(
    scale: float, work: Path, profiling: Profiling, console: Console
) -> BenchResult:
    result = BenchResult()
    rows = result.rows
    count = max(200, int(MAILBOX_MESSAGES * scale))
    user = f"big@{DOMAIN}"
    data_dir = work / "data"
    console.print(f"  imap mailbox: filling INBOX with {count:,} messages through the store…")
    seconds = fill_mailbox(data_dir, user, count)
    console.print(f"    filled in {seconds:.1f} s ({count / seconds:,.0f} msg/s, no fsync)")
    server = profiling.start(data_dir)

    def check(what: str, ok: bool, detail: str) -> str:
        if not ok:
            result.failures.append(f"{what}: {detail}")
            return f"FAILED: {detail}"
        return f"{detail} ✓"

    try:
        client = RawImap(HOST, server.ports["imap"])
        client.login(user, PASSWORD)
        n = f"{count:,}"

        select = client.ok("SELECT INBOX")
        exists = re.search(rb"\* (\d+) EXISTS", select.data)
        got = int(exists.group(1)) if exists else -1
        note = check("SELECT", got == count, f"{got:,} EXISTS")
        rows.append(Row("SELECT INBOX, first", "≤ 100 ms", "216 ms", f"{select.ms:.1f} ms",
                        _within(select.ms, 100), note))
        again = _again(lambda: client.ok("SELECT INBOX"))
        rows.append(Row("SELECT INBOX, again", "≤ 100 ms", "216 ms", f"{again:.1f} ms",
                        _within(again, 100)))

        flags = client.ok("UID FETCH 1:* (FLAGS)")
        note = check("UID FETCH FLAGS", flags.count(b" FETCH (") == count,
                     f"{flags.count(b' FETCH ('):,} FETCH, {len(flags.data) / 1e6:.1f} MB")
        rows.append(Row("UID FETCH 1:* (FLAGS), first", "≤ 40 ms", "37 ms", f"{flags.ms:.1f} ms",
                        _within(flags.ms, 40), note))
        again = _again(lambda: client.ok("UID FETCH 1:* (FLAGS)"))
        rows.append(Row("UID FETCH 1:* (FLAGS), again", "≤ 40 ms", "37 ms", f"{again:.1f} ms",
                        _within(again, 40)))

        env = client.ok("FETCH 1:* (ENVELOPE BODYSTRUCTURE)")
        note = check("FETCH ENVELOPE BODYSTRUCTURE",
                     env.count(b"BODYSTRUCTURE (") == count and env.count(b"ENVELOPE (") == count,
                     f"{env.count(b'BODYSTRUCTURE ('):,} FETCH, {len(env.data) / 1e6:.1f} MB")
        rows.append(Row("FETCH 1:* (ENVELOPE BODYSTRUCTURE), first", "≤ 300 ms", "733 ms cold",
                        f"{env.ms:.0f} ms", _within(env.ms, 300), note))
        second = client.ok("FETCH 1:* (ENVELOPE BODYSTRUCTURE)")
        rows.append(Row("FETCH 1:* (ENVELOPE BODYSTRUCTURE), second", "≤ 300 ms",
                        "174 ms cached", f"{second.ms:.0f} ms", _within(second.ms, 300)))

        low = count // 2 + 1
        bodies = client.ok(f"FETCH {low}:{low + 99} BODY.PEEK[]")
        octets = sum(int(m) for m in re.findall(rb"BODY\[\] \{(\d+)\}", bodies.data))
        note = check("FETCH BODY.PEEK[]", bodies.count(b" FETCH (") == 100,
                     f"{bodies.count(b' FETCH (')} bodies, {octets / 1e3:,.0f} KB, "
                     f"{octets / 1e6 / bodies.seconds:.1f} MB/s")
        rows.append(Row(f"FETCH {low}:{low + 99} BODY.PEEK[] (100 bodies), first", "", "",
                        f"{bodies.ms:.1f} ms", None, note))
        again = _again(lambda: client.ok(f"FETCH {low}:{low + 99} BODY.PEEK[]"))
        rows.append(Row("FETCH 100 bodies, again", "", "", f"{again:.1f} ms", None))

        expected = sum(1 for i in range(count) if i % 100 == 37)
        search = client.ok(f"SEARCH TEXT {NEEDLE}")
        line = re.search(rb"\* SEARCH([ \d]*)\r\n", search.data)
        hits = len(line.group(1).split()) if line else -1
        note = check("SEARCH TEXT", hits == expected, f"{hits} hits of {expected}")
        rows.append(Row(f"SEARCH TEXT {NEEDLE} (1 % of messages), first", "≤ 100 ms",
                        "1,094 ms", f"{search.ms:.1f} ms", _within(search.ms, 100), note))
        again = _again(lambda: client.ok(f"SEARCH TEXT {NEEDLE}"))
        rows.append(Row("SEARCH TEXT, again", "≤ 100 ms", "1,094 ms", f"{again:.1f} ms",
                        _within(again, 100)))

        silent = client.ok("STORE 1:* +FLAGS.SILENT (\\Flagged)")
        note = check("STORE silent", silent.count(b" FETCH (") == 0,
                     f"{n} flagged, {silent.count(b' FETCH (')} FETCH")
        rows.append(Row("STORE 1:* +FLAGS.SILENT (\\Flagged)", "≤ 200 ms", "217 ms",
                        f"{silent.ms:.0f} ms", _within(silent.ms, 200), note))
        reset = client.ok("STORE 1:* -FLAGS.SILENT (\\Flagged)")
        loud = client.ok("STORE 1:* +FLAGS (\\Flagged)")
        note = check("STORE", loud.count(b" FETCH (") == count,
                     f"{loud.count(b' FETCH ('):,} FETCH back; the -FLAGS.SILENT reset before "
                     f"it took {reset.ms:.0f} ms")
        rows.append(Row("STORE 1:* +FLAGS (\\Flagged), not silent", "≤ 200 ms", "217 ms",
                        f"{loud.ms:.0f} ms", _within(loud.ms, 200), note))

        # Every second message \Deleted (not timed; sequence sets are capped at 4,096 ranges).
        evens = list(range(2, count + 1, 2))
        for first in range(0, len(evens), 2000):
            chunk = ",".join(map(str, evens[first : first + 2000]))
            client.ok(f"STORE {chunk} +FLAGS.SILENT (\\Deleted)")
        expunge = client.ok("EXPUNGE")
        gone = expunge.count(b" EXPUNGE\r\n")
        note = check("EXPUNGE", gone == len(evens), f"{gone:,} EXPUNGE responses")
        rows.append(Row(f"EXPUNGE {len(evens):,} of {n} (every second)", "≤ 300 ms",
                        "1,028 ms", f"{expunge.ms:.0f} ms", _within(expunge.ms, 300), note))
        after = client.ok("SELECT INBOX")
        exists = re.search(rb"\* (\d+) EXISTS", after.data)
        left = int(exists.group(1)) if exists else -1
        check("after EXPUNGE", left == count - len(evens), f"{left} left")
        client.close()

        from bench.imap_idle import WAKE_DELIVERIES, wake_latencies  # (imap_idle imports us)

        wakes = wake_latencies(server, user, WAKE_DELIVERIES)
        p99 = percentile(wakes, 99) * 1000
        rows.append(
            Row(
                f"IDLE on this INBOX ({left:,} messages): delivery→EXISTS p50 / p99",
                "p99 ≤ 100 ms",
                "",
                f"{percentile(wakes, 50) * 1000:.1f} / {p99:.1f} ms",
                p99 <= 100,
                f"from the 250, {len(wakes)} SMTP deliveries one at a time, one session woken",
            )
        )
    finally:
        stop_server(server, "imap-mailbox", result)
    result.rows.insert(0, Row(f"(mailbox of {count:,} messages, ~4 KB, 30 % multipart)", "", "",
                              "", None, f"filled in {seconds:.1f} s through the store"))
    return result
