"""`python -m bench.hostile`: hostile clients against a real server process (issue 6).

Each case runs against one `mailwright serve` subprocess and reports the server's reply, its
peak RSS during the case (VmHWM of /proc/PID/status, reset before each case through
/proc/PID/clear_refs) and whether a normal client was served at the same time (from another
loopback address where the case uses up one address's connection slots). The wire tests in
tests/wire/test_hostile.py and tests/wire/*/test_limits_*.py check the same replies cheaply;
this script measures memory at full size (2 GB literals, 1,000 connections, 10 MB headers).

Settings differ from the defaults only where a case would otherwise take minutes: the SMTP
command deadline and the IMAP/POP3 login deadlines are 10 s instead of 300/180/600 s, so the
slowloris cases can show the deadline cutting the trickling connections off.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import smtplib
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.server_process import DOMAIN, PASSWORD, ServerProcess, create_accounts

HOST = "127.0.0.1"
OTHER = "127.0.0.2"  # the normal client's address when a case fills 127.0.0.1's slots
USER = f"user@{DOMAIN}"
MB = 1024 * 1024
DEADLINE = 10.0  # the bench's command/login deadlines (see the module docstring)
TRICKLE_INTERVAL = 2.0  # slowloris: one byte every this many seconds
SLOWLORIS = 1000
ENV = {
    # The limits under test at their defaults (ServerProcess raises the per-IP ones for load).
    "MAILWRIGHT_SMTP_MAX_CONNECTIONS_PER_IP": "20",
    "MAILWRIGHT_POP3_MAX_CONNECTIONS_PER_IP": "20",
    "MAILWRIGHT_IMAP_MAX_CONNECTIONS_PER_IP": "50",
    "MAILWRIGHT_SMTP_COMMAND_TIMEOUT": str(DEADLINE),
    "MAILWRIGHT_IMAP_LOGIN_TIMEOUT": str(DEADLINE),
    "MAILWRIGHT_POP3_LOGIN_TIMEOUT": str(DEADLINE),
    "MAILWRIGHT_STORE_DURABLE": "false",
}


@dataclass
class Result:
    case: str
    outcome: str
    peak_rss: int
    served: str


# ----- normal clients (blocking, run in a thread while the attack goes on) ---------------------
def _connect(port: int, source: str) -> socket.socket:
    return socket.create_connection((HOST, port), timeout=15, source_address=(source, 0))


def _read_line(sock: socket.socket, buf: bytearray) -> bytes:
    while b"\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {bytes(buf[:200])!r}")
        buf += chunk
    end = buf.index(b"\n") + 1
    line = bytes(buf[:end])
    del buf[:end]
    return line


def _until_tag(sock: socket.socket, buf: bytearray, tag: bytes) -> bytes:
    """Raw bytes up to the tagged line (literals in between are read as lines; good enough for
    the bench's replies, whose literals never contain a line starting with the tag)."""
    out = bytearray()
    while True:
        line = _read_line(sock, buf)
        out += line
        if line.startswith(tag + b" "):
            return bytes(out)


def smtp_client(port: int, source: str = HOST) -> str:
    with smtplib.SMTP(HOST, port, timeout=15, source_address=(source, 0)) as client:
        code, _ = client.ehlo("normal.example")
        if code != 250:
            return f"EHLO {code}"
        client.sendmail("normal@remote.example", [USER], b"Subject: normal\r\n\r\nhello\r\n")
    return "ok"


def imap_client(port: int, source: str = HOST) -> str:
    sock = _connect(port, source)
    buf = bytearray()
    try:
        greeting = _read_line(sock, buf)
        if not greeting.startswith(b"* OK"):
            return greeting.decode("latin-1").strip()[:60]
        sock.sendall(f'n1 LOGIN {USER} "{PASSWORD}"\r\nn2 SELECT INBOX\r\nn3 LOGOUT\r\n'.encode())
        for tag in (b"n1", b"n2"):
            reply = _until_tag(sock, buf, tag).splitlines()[-1]
            if not reply.startswith(tag + b" OK"):
                return reply.decode("latin-1")[:60]
        return "ok"
    finally:
        sock.close()


def pop3_client(port: int, source: str = HOST) -> str:
    sock = _connect(port, source)
    buf = bytearray()
    try:
        greeting = _read_line(sock, buf)
        if not greeting.startswith(b"+OK"):
            return greeting.decode("latin-1").strip()[:60]
        sock.sendall(f"USER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nQUIT\r\n".encode())
        for _ in range(3):
            line = _read_line(sock, buf)
            if not line.startswith(b"+OK"):
                return line.decode("latin-1").strip()[:60]
        return "ok"
    finally:
        sock.close()


NORMAL: dict[str, Callable[[int, str], str]] = {
    "smtp": smtp_client, "imap": imap_client, "pop3": pop3_client,
}


def served(server: ServerProcess, protocol: str, source: str = HOST) -> str:
    """'yes (N ms)' when a normal client of `protocol` gets through now, else its answer."""
    started = time.monotonic()
    try:
        answer = NORMAL[protocol](server.ports[protocol], source)
    except (OSError, smtplib.SMTPException) as exc:
        return f"no ({type(exc).__name__})"
    ms = (time.monotonic() - started) * 1000
    return f"yes ({ms:.0f} ms)" if answer == "ok" else f"no ({answer})"


# ----- memory --------------------------------------------------------------------------------
def reset_peak(pid: int) -> None:
    """Reset VmHWM to the current RSS (Linux: "5" into clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


# ----- raw asyncio sessions --------------------------------------------------------------------
class Raw:
    """A line-level client over asyncio streams, for the cases that send what no library would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, source: str = HOST) -> Raw:
        reader, writer = await asyncio.open_connection(
            HOST, port, local_addr=(source, 0), limit=64 * MB
        )
        return cls(reader, writer)

    async def line(self, wait: float = 60.0) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), wait)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def until(self, prefix: bytes, wait: float = 120.0) -> list[bytes]:
        """Lines up to the first one starting with `prefix` (literals are skipped whole)."""
        lines: list[bytes] = []
        async with asyncio.timeout(wait):
            while True:
                line = await self.reader.readline()
                if not line:
                    raise ConnectionError(f"closed; last lines {lines[-2:]!r}")
                m = re.search(rb"\{(\d+)\}\r\n$", line)
                if m is not None:
                    await self.reader.readexactly(int(m.group(1)))
                    line = line[: m.start()] + b"{%d}" % int(m.group(1)) + b"\r\n"
                lines.append(line)
                if line.startswith(prefix):
                    return lines

    async def smtp(self, data: bytes) -> bytes:
        """Send, then the last line of the reply (multi-line replies are read whole)."""
        await self.send(data)
        while True:
            line = await self.line()
            if line[3:4] != b"-":
                return line.rstrip()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(5):
                await self.writer.wait_closed()


async def imap_login(port: int) -> Raw:
    c = await Raw.open(port)
    await c.line()
    await c.send(f'L LOGIN {USER} "{PASSWORD}"\r\nS SELECT INBOX\r\n'.encode())
    await c.until(b"S ")
    return c


def short(line: bytes, n: int = 70) -> str:
    text = line.decode("utf-8", "replace").strip()
    return text if len(text) <= n else text[: n - 3] + "..."


# ----- slowloris -----------------------------------------------------------------------------
REFUSED = (b"421", b"* BYE", b"-ERR")


async def trickle(port: int, source: str, payload: bytes, stop_at: float) -> tuple[str, float]:
    """One slowloris connection: ('refused' | 'cut' | 'held' | 'error', seconds admitted)."""
    loop = asyncio.get_running_loop()
    try:
        reader, writer = await asyncio.open_connection(HOST, port, local_addr=(source, 0))
    except OSError:
        return "error", 0.0
    start = loop.time()
    try:
        first = await asyncio.wait_for(reader.readline(), 30)
        if not first or first.startswith(REFUSED):
            return "refused", 0.0
        read = asyncio.ensure_future(reader.readline())
        i = 0
        while loop.time() < stop_at:
            done, _ = await asyncio.wait({read}, timeout=TRICKLE_INTERVAL)
            if read in done:
                return "cut", loop.time() - start
            writer.write(payload[i % len(payload) : i % len(payload) + 1])
            i += 1
        read.cancel()
        return "held", loop.time() - start
    except (OSError, TimeoutError):
        return "error", loop.time() - start
    finally:
        writer.close()


async def slowloris(
    server: ServerProcess, protocol: str, sources: list[str], payload: bytes, other: str
) -> tuple[str, str]:
    loop = asyncio.get_running_loop()
    port = server.ports[protocol]
    stop_at = loop.time() + DEADLINE + 15
    tasks = [
        asyncio.ensure_future(trickle(port, sources[i % len(sources)], payload, stop_at))
        for i in range(SLOWLORIS)
    ]
    await asyncio.sleep(3)  # all connected and answered (admitted or refused)
    during = await asyncio.to_thread(served, server, protocol, other)
    results = await asyncio.gather(*tasks)
    after = await asyncio.to_thread(served, server, protocol, other)
    counts = {kind: sum(1 for k, _ in results if k == kind) for kind in
              ("refused", "cut", "held", "error")}
    cut_after = [t for k, t in results if k == "cut"]
    outcome = f"{counts['refused']} refused at once"
    if cut_after:
        low, high = f"{min(cut_after):.0f}", f"{max(cut_after):.0f}"
        outcome += f", {counts['cut']} cut after {low if low == high else low + '-' + high} s"
    if counts["held"] or counts["error"]:
        outcome += f", {counts['held']} still open, {counts['error']} errors"
    return outcome, f"during: {during}; after: {after}"


# ----- the cases -----------------------------------------------------------------------------
async def case_slowloris_smtp(server: ServerProcess) -> tuple[str, str]:
    return await slowloris(server, "smtp", [HOST], b"EHLO slowloris.example", OTHER)


async def case_slowloris_smtp_spread(server: ServerProcess) -> tuple[str, str]:
    sources = [f"127.0.3.{i}" for i in range(1, 51)]  # 20 per address: the per-IP limit
    return await slowloris(server, "smtp", sources, b"EHLO slowloris.example", OTHER)


async def case_slowloris_imap_spread(server: ServerProcess) -> tuple[str, str]:
    sources = [f"127.0.4.{i}" for i in range(1, 21)]  # 50 per address
    return await slowloris(server, "imap", sources, b"a LOGIN slow loris", OTHER)


async def case_slowloris_pop3(server: ServerProcess) -> tuple[str, str]:
    return await slowloris(server, "pop3", [HOST], b"USER slowloris", OTHER)


async def case_literal_2gb(server: ServerProcess) -> tuple[str, str]:
    c = await imap_login(server.ports["imap"])
    replies = []
    try:
        for tag, cmd in ((b"a", b"APPEND INBOX {2147483648}"), (b"b", b"LOGIN {2147483648}")):
            await c.send(tag + b" " + cmd + b"\r\n")
            replies.append(short((await c.until(tag + b" "))[-1], 40))
        # Non-synchronizing: the server answers at once and skips what follows; send 64 MB of it.
        await c.send(b"c APPEND INBOX {2147483648+}\r\n")
        replies.append(short((await c.until(b"c "))[-1], 40))
        block = b"x" * MB
        for _ in range(64):
            await c.send(block)
        replies.append("64 MB of it skipped")
    finally:
        await c.close()
    return "; ".join(replies), await asyncio.to_thread(served, server, "imap")


def _nested_search(depth: int) -> bytes:
    return b"SEARCH " + b"(" * depth + b"ALL" + b")" * depth


async def case_nested_100k(server: ServerProcess) -> tuple[str, str]:
    c = await imap_login(server.ports["imap"])
    out = []
    try:
        for tag, cmd in (
            (b"a", _nested_search(100_000)),  # 200 KB: over the line limit
            (b"b", _nested_search(30_000)),  # 60 KB: within it, over the nesting limit
            (b"c", b"SEARCH " + b"NOT " * 15_000 + b"ALL"),
            (b"d", b"FETCH 1 " + b"(" * 30_000 + b"FLAGS" + b")" * 30_000),
        ):
            await c.send(tag + b" " + cmd + b"\r\n")
            out.append(short((await c.until(tag + b" "))[-1], 48))
        await c.send(b"z NOOP\r\n")
        out.append(short((await c.until(b"z "))[-1], 30))
    finally:
        await c.close()
    return "; ".join(out), await asyncio.to_thread(served, server, "imap")


async def _smtp_start(server: ServerProcess) -> Raw:
    c = await Raw.open(server.ports["smtp"])
    await c.line()
    await c.smtp(b"EHLO hostile.example\r\n")
    await c.smtp(b"MAIL FROM:<hostile@remote.example>\r\n")
    await c.smtp(f"RCPT TO:<{USER}>\r\n".encode())
    return c


async def case_bdat_over_limit(server: ServerProcess) -> tuple[str, str]:
    size = 50 * MB + 1  # the default SIZE limit + 1
    c = await _smtp_start(server)
    try:
        await c.send(b"BDAT %d LAST\r\n" % size)
        block = b"y" * MB
        for _ in range(50):
            await c.send(block)
        reply = await c.smtp(b"z")
        after = await c.smtp(b"NOOP\r\n")
    finally:
        await c.close()
    # A chunk declared at 2 GB: drained, never buffered; the client gives up after 64 MB.
    c = await _smtp_start(server)
    try:
        await c.send(b"BDAT 2147483648 LAST\r\n")
        for _ in range(64):
            await c.send(block)
    finally:
        await c.close()
    outcome = f"{short(reply, 40)}; then {short(after, 12)}; 2 GB chunk: 64 MB drained"
    return outcome, await asyncio.to_thread(served, server, "smtp")


def mime_parts(count: int) -> bytes:
    parts = b"".join(
        b"--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(count)
    )
    return (b"From: a@remote.example\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + parts + b"--b--\r\n")


def mime_nested(depth: int) -> bytes:
    head = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
                    for i in range(depth))
    tail = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    return (b"From: a@remote.example\r\nSubject: nested\r\nMIME-Version: 1.0\r\n" + head
            + b"Content-Type: text/plain\r\n\r\ndeep\r\n" + tail)


async def _deliver_and_fetch(server: ServerProcess, message: bytes) -> tuple[str, str]:
    await asyncio.to_thread(_sendmail, server.ports["smtp"], message)
    c = await imap_login(server.ports["imap"])
    try:
        started = time.monotonic()
        await c.send(b"f FETCH * BODYSTRUCTURE\r\n")
        lines = await c.until(b"f ")
        ms = (time.monotonic() - started) * 1000
        size = sum(len(line) for line in lines)
    finally:
        await c.close()
    return f"250; FETCH BODYSTRUCTURE OK, {size // 1024} KB in {ms:.0f} ms", short(lines[-1])


def _sendmail(port: int, message: bytes) -> None:
    with smtplib.SMTP(HOST, port, timeout=120) as client:
        client.sendmail("a@remote.example", [USER], message)


async def case_mime_10k(server: ServerProcess) -> tuple[str, str]:
    outcome, _ = await _deliver_and_fetch(server, mime_parts(10_000))
    return outcome, await asyncio.to_thread(served, server, "imap")


async def case_mime_deep(server: ServerProcess) -> tuple[str, str]:
    outcome, _ = await _deliver_and_fetch(server, mime_nested(10_000))
    return outcome, await asyncio.to_thread(served, server, "imap")


async def case_header_smtp(server: ServerProcess) -> tuple[str, str]:
    c = await _smtp_start(server)
    try:
        await c.smtp(b"DATA\r\n")
        await c.send(b"Subject: ")
        block = b"h" * MB
        for _ in range(10):
            await c.send(block)
        reply = await c.smtp(b"\r\n\r\nbody\r\n.\r\n")
        after = await c.smtp(b"NOOP\r\n")
    finally:
        await c.close()
    return f"{short(reply, 50)}; then {short(after, 12)}", await asyncio.to_thread(
        served, server, "smtp")


def _big_header_message(folded: bool) -> bytes:
    # Folded: 10 MB of one field in 70-octet continuation lines, every line within the limits.
    value = b"\r\n ".join([b"w" * 68] * (10 * MB // 71)) if folded else b"h" * (10 * MB)
    return (b"From: a@remote.example\r\nSubject: " + value
            + b"\r\nTo: " + USER.encode() + b"\r\n\r\nbody\r\n")


async def case_header_smtp_folded(server: ServerProcess) -> tuple[str, str]:
    await asyncio.to_thread(_sendmail, server.ports["smtp"], _big_header_message(True))
    c = await imap_login(server.ports["imap"])
    try:
        await c.send(b"f FETCH * (ENVELOPE BODYSTRUCTURE)\r\ns SEARCH SUBJECT zzz\r\n")
        fetched = (await c.until(b"f "))[-1]
        searched = (await c.until(b"s "))[-1]
    finally:
        await c.close()
    outcome = f"250; {short(fetched, 22)}; {short(searched, 22)}"
    return outcome, await asyncio.to_thread(served, server, "imap")


async def case_header_imap(server: ServerProcess) -> tuple[str, str]:
    message = _big_header_message(False)
    c = await imap_login(server.ports["imap"])
    try:
        await c.send(b"a APPEND INBOX {%d+}\r\n" % len(message) + message + b"\r\n")
        appended = (await c.until(b"a "))[-1]
        await c.send(b"f FETCH * (ENVELOPE BODYSTRUCTURE)\r\ns SEARCH SUBJECT zzz\r\n")
        fetched = (await c.until(b"f "))[-1]
        searched = (await c.until(b"s "))[-1]
    finally:
        await c.close()
    outcome = f"{short(appended, 24)}; {short(fetched, 22)}; {short(searched, 22)}"
    return outcome, await asyncio.to_thread(served, server, "imap")


UTF8_DETAIL: list[bytes] = []  # every reply of the invalid UTF-8 case, printed under the table
BAD_UTF8 = b"\xff\xfe\xc3\x28\xe2\x82\xed\xa0\x80\xf8\x88\x80\x80\x80"


async def case_invalid_utf8(server: ServerProcess) -> tuple[str, str]:
    answers: list[bytes] = []
    # SMTP: commands, SMTPUTF8 addresses, AUTH, and a message whose headers are not UTF-8.
    c = await Raw.open(server.ports["smtp"])
    try:
        await c.line()
        for cmd in (b"EHLO " + BAD_UTF8, b"EHLO x",
                    b"AUTH PLAIN " + base64.b64encode(b"\0" + BAD_UTF8 + b"\0" + BAD_UTF8),
                    b"VRFY " + BAD_UTF8, b"MAIL FROM:<" + BAD_UTF8 + b"@x> SMTPUTF8",
                    b"MAIL FROM:<a@remote.example> SMTPUTF8", b"RCPT TO:<" + BAD_UTF8 + b"@x>",
                    b"RSET", b"MAIL FROM:<a@remote.example>", f"RCPT TO:<{USER}>".encode(),
                    b"DATA"):
            answers.append(await c.smtp(cmd + b"\r\n"))
        answers.append(await c.smtp(b"Subject: " + BAD_UTF8 + b"\r\nFrom: " + BAD_UTF8
                                    + b" <a@x>\r\n\r\n" + BAD_UTF8 + b"\r\n.\r\n"))
    finally:
        await c.close()
    # POP3.
    c = await Raw.open(server.ports["pop3"])
    try:
        await c.line()
        for cmd in (b"USER " + BAD_UTF8, b"PASS " + BAD_UTF8, BAD_UTF8,
                    b"AUTH PLAIN " + base64.b64encode(b"\0" + BAD_UTF8 + b"\0x")):
            await c.send(cmd + b"\r\n")
            answers.append((await c.line()).rstrip())
    finally:
        await c.close()
    # IMAP: before and after login, mailbox names (mUTF-7 and UTF8=ACCEPT), SEARCH, and the
    # message above (FETCH ENVELOPE, SEARCH over non-UTF-8 headers).
    c = await Raw.open(server.ports["imap"])
    try:
        await c.line()
        script = [b"LOGIN " + BAD_UTF8 + b" " + BAD_UTF8, b"LOGIN \"" + BAD_UTF8 + b"\" x",
                  f'LOGIN {USER} "{PASSWORD}"'.encode(), b"SELECT \"" + BAD_UTF8 + b"\"",
                  b"CREATE \"" + BAD_UTF8 + b"\"", b"LIST \"\" \"" + BAD_UTF8 + b"*\"",
                  b"ENABLE UTF8=ACCEPT", b"CREATE \"" + BAD_UTF8 + b"\"",
                  b"RENAME INBOX \"" + BAD_UTF8 + b"\"", b"SELECT INBOX",
                  b"SEARCH CHARSET UTF-8 SUBJECT \"" + BAD_UTF8 + b"\"",
                  b"SEARCH SUBJECT {%d+}\r\n" % len(BAD_UTF8) + BAD_UTF8,
                  b"FETCH 1:* (ENVELOPE BODYSTRUCTURE)", BAD_UTF8]
        for i, cmd in enumerate(script):
            tag = b"u%d" % i
            await c.send(tag + b" " + cmd + b"\r\n")
            answers.append((await c.until(tag + b" ", wait=30))[-1].rstrip())
    finally:
        await c.close()
    UTF8_DETAIL.extend(answers)
    statuses = [_status(a) for a in answers]
    summary = ", ".join(f"{s} x{statuses.count(s)}" for s in dict.fromkeys(statuses))
    return f"{len(answers)} commands: {summary}", await asyncio.to_thread(served, server, "imap")


def _status(line: bytes) -> str:
    words = line.split()
    if not words:
        return "?"
    if words[0][:1].isdigit():
        return words[0].decode()
    if words[0] in (b"+OK", b"-ERR", b"+"):
        return words[0].decode()
    return words[1].decode("latin-1") if len(words) > 1 else "?"


CASES: list[tuple[str, Callable[[ServerProcess], Coroutine[Any, Any, tuple[str, str]]]]] = [
    ("slowloris SMTP: 1,000 conns from one address", case_slowloris_smtp),
    ("slowloris SMTP: 1,000 conns from 50 addresses", case_slowloris_smtp_spread),
    ("slowloris IMAP: 1,000 conns from 20 addresses", case_slowloris_imap_spread),
    ("slowloris POP3: 1,000 conns from one address", case_slowloris_pop3),
    ("IMAP literal of 2 GB announced", case_literal_2gb),
    ("IMAP list nested 100,000 levels (and 30,000)", case_nested_100k),
    ("SMTP BDAT chunk over the size limit", case_bdat_over_limit),
    ("10,000 MIME parts, FETCH BODYSTRUCTURE", case_mime_10k),
    ("MIME nested 10,000 levels, FETCH BODYSTRUCTURE", case_mime_deep),
    ("10 MB header line in SMTP DATA", case_header_smtp),
    ("10 MB folded header via SMTP, FETCH/SEARCH", case_header_smtp_folded),
    ("10 MB header line in IMAP APPEND, FETCH/SEARCH", case_header_imap),
    ("invalid UTF-8 in commands, headers, names", case_invalid_utf8),
]


@contextlib.contextmanager
def server_log(path: Path) -> Iterator[None]:
    """The server inherits our stderr at start: point fd 2 at `path` meanwhile."""
    saved = os.dup(2)
    with path.open("ab") as f:
        os.dup2(f.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def main() -> None:
    console = Console(width=200)
    only = sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="mw-hostile-") as tmp:
        data = Path(tmp) / "data"
        log = Path(tmp) / "server.log"
        create_accounts(data, [USER])
        with server_log(log):
            server = ServerProcess.start(data, extra_env=ENV)
        pid = server.proc.pid
        results = [Result("(idle server after start)", "-", peak_rss(pid), "-")]
        # An IMAP login verifies an argon2id hash, which takes its memory_cost (64 MiB by
        # default) for a moment: the cases that log in include this much.
        reset_peak(pid)
        results.append(Result("(one normal IMAP login, for reference)", "-", peak_rss(pid)
                              if served(server, "imap").startswith("yes") else 0, "-"))
        try:
            for name, case in CASES:
                if only and not any(word.lower() in name.lower() for word in only):
                    continue
                console.print(f"[dim]{name} ...[/]")
                reset_peak(pid)
                try:
                    outcome, other = asyncio.run(case(server))
                except Exception as exc:  # a case that fails is a finding, not a crash here
                    outcome, other = f"bench error: {type(exc).__name__}: {exc}"[:120], "?"
                alive = server.proc.poll() is None
                if not alive:
                    outcome += " — SERVER DIED"
                results.append(Result(name, outcome, peak_rss(pid) if alive else 0, other))
                if not alive:
                    break
        finally:
            code = server.stop() if server.proc.poll() is None else server.proc.returncode
        text = log.read_text(errors="replace")
    table = Table(title="Hostile input (bench.hostile): one server process, default limits "
                        f"except {DEADLINE:.0f} s command/login deadlines")
    table.add_column("case")
    table.add_column("outcome / reply")
    table.add_column("peak RSS", justify="right")
    table.add_column("served another client")
    for r in results:
        table.add_row(r.case, r.outcome, f"{r.peak_rss / MB:.0f} MB", r.served)
    console.print(table)
    if UTF8_DETAIL:
        console.print("invalid UTF-8, each reply in order: " + " | ".join(
            short(a, 60) for a in UTF8_DETAIL))
    tracebacks = text.count("Traceback")
    console.print(f"server exit code {code}; tracebacks in its log: {tracebacks}")
    if tracebacks:
        console.print(text[-4000:])


if __name__ == "__main__":
    main()
