"""Read an `strace -f -y -yy` log and check that acknowledgments follow their fsyncs.

kill -9 keeps the page cache, so it cannot tell a server that fsyncs from one that does not;
the order of its system calls can (issue 6). The log is the whole server process, every
thread, in the order strace saw the events. A call split by another thread's call
("<unfinished ...>" ... "<... resumed>") keeps two positions: where it started and where it
returned. "A before B" means A returned before B started, whatever the threads.

What an acknowledgment needs (`check`), the store's discipline (src/mailwright/store/):
- new message data (`Ack.blob`): the temp file fsynced after its last write and before its
  link/rename to blobs/ab/<sha256>, then that directory fsynced, then a WAL write and a WAL
  fsync/fdatasync (the commit; SQLite synchronous=FULL), all before the reply;
- any other change (STORE, POP3 QUIT, a queue removal): a WAL write after the request was
  read, then a WAL sync, before the reply.
One WAL sync may cover several acknowledgments (group commit, writer.py). Strace cannot show
which WAL frame holds which row: it shows the order, which is what a crash can break.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SYNCS = frozenset({"fsync", "fdatasync"})
LINKS = frozenset({"link", "linkat", "rename", "renameat", "renameat2"})
WRITES = frozenset({"write", "writev", "sendto", "sendmsg", "pwrite64", "pwritev", "pwritev2"})
READS = frozenset({"read", "readv", "recvfrom", "recvmsg"})
# The strace options these checks need: -y/-yy name each descriptor (file path or TCP
# endpoints), -s keeps reply lines whole enough to match.
TRACED = (
    "fsync,fdatasync,link,linkat,rename,renameat,renameat2,"
    "read,readv,recvfrom,recvmsg,write,writev,sendto,sendmsg,pwrite64,pwritev,pwritev2"
)
STRACE_OPTIONS = ("-f", "-y", "-yy", "-s", "256", "-e", f"trace={TRACED}")

_PREFIX = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+(?:\d\d:\d\d:\d\d(?:\.\d+)?\s+)?")
_UNFINISHED = " <unfinished ...>"
_RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>\s?")
_CALL = re.compile(r"^(\w+)\(")
_RESULT = re.compile(r"\)\s+=\s+(-?\d+|\?)(?:\s.*)?$")
_FD = re.compile(r"^(?:-?\d+|AT_FDCWD)<((?:TCP|TCPv6|UDP|UDPv6|UNIX)[^\[]*\[[^\]]*\]|[^>]*)>")
_OFFSET = re.compile(r",\s*(\d+)$")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPES = {"n": 10, "r": 13, "t": 9, "v": 11, "f": 12, "a": 7, "b": 8, "\\": 92, '"': 34}


@dataclass(frozen=True, slots=True)
class Call:
    """One system call: `start`/`end` are event positions in the log (equal when unsplit)."""

    start: int
    end: int
    tid: int
    name: str
    fd: str | None  # what -y/-yy printed for the first argument: a path or "TCP:[a:p->b:q]"
    strings: tuple[bytes, ...]  # every quoted argument, unescaped (data, paths)
    result: int | None  # None: "= ?" (the process died in the call)
    offset: int | None = None  # pwrite64's last argument

    @property
    def wal_frames(self) -> bool:
        """A write into the WAL past its 32-byte header: commit frames (SQLite rewrites the
        header at offset 0, and syncs it, when it restarts the WAL; that sync commits nothing)."""
        return self.name in WRITES and self.offset != 0

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result >= 0

    @property
    def data(self) -> bytes:
        """The bytes a read/write moved (writev: all its buffers), as far as -s kept them."""
        return b"".join(self.strings)

    def on_socket(self, port: int) -> bool:
        """A TCP socket whose other end is 127.0.0.1:`port` (-yy: "[local->remote]")."""
        return self.fd is not None and self.fd.startswith("TCP") and (
            self.fd.endswith(f"->127.0.0.1:{port}]")
        )


def unescape(text: str) -> bytes:
    """strace's C-style string escapes (\\n, \\", \\123 octal, \\x41) to bytes."""
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\" or i + 1 == len(text):
            out += ch.encode("utf-8", "surrogateescape")
            i += 1
            continue
        nxt = text[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "x":
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        elif nxt.isdigit():
            j = i + 1
            while j < len(text) and j < i + 4 and text[j] in "01234567":
                j += 1
            out.append(int(text[i + 1 : j], 8) & 0xFF)
            i = j
        else:
            out += nxt.encode()
            i += 2
    return bytes(out)


def parse(lines: Iterable[str]) -> list[Call]:
    """The completed calls of a log, in the order they started."""
    open_calls: dict[tuple[int, str], tuple[int, str]] = {}
    calls: list[Call] = []
    for position, raw in enumerate(lines):
        line = raw.rstrip("\n")
        prefix = _PREFIX.match(line)
        if prefix is None:
            continue  # a line of a single-process log has no pid; we always run -f
        tid, rest = int(prefix.group(1)), line[prefix.end() :]
        if rest.startswith(("+++", "---")):
            continue  # exits and signals
        resumed = _RESUMED.match(rest)
        if resumed is not None:
            name = resumed.group(1)
            begun = open_calls.pop((tid, name), None)
            if begun is None:
                continue  # its start was before the log (or in another log)
            start, head = begun
            calls.append(_call(start, position, tid, name, head + rest[resumed.end() :]))
            continue
        call = _CALL.match(rest)
        if call is None:
            continue
        name = call.group(1)
        if rest.endswith(_UNFINISHED):
            open_calls[(tid, name)] = (position, rest[call.end() : -len(_UNFINISHED)])
            continue
        calls.append(_call(position, position, tid, name, rest[call.end() :]))
    calls.sort(key=lambda c: c.start)
    return calls


def _call(start: int, end: int, tid: int, name: str, tail: str) -> Call:
    """`tail`: the arguments after "name(", then ") = result ...". """
    result_match = _RESULT.search(tail)
    args = tail[: result_match.start()] if result_match else tail
    result: int | None = None
    if result_match is not None and result_match.group(1) != "?":
        result = int(result_match.group(1))
    fd = _FD.match(args)
    strings = tuple(unescape(s) for s in _STRING.findall(args))
    offset = None
    if name.startswith("pwrite") and (found := _OFFSET.search(args)) is not None:
        offset = int(found.group(1))
    return Call(start, end, tid, name, fd.group(1) if fd else None, strings, result, offset)


def read_log(path: Path) -> list[Call]:
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return parse(f)


# ----- what an acknowledgment needs -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ack:
    """A reply to check: the first write to the socket of `reply_port` carrying `reply`,
    after the first read from the socket of `request_port` carrying `request`."""

    label: str
    request_port: int
    request: bytes
    reply_port: int
    reply: bytes
    blob: Path | None = None  # the message file this reply acknowledges, if any


@dataclass(frozen=True, slots=True)
class Verdict:
    ack: Ack
    problems: tuple[str, ...]
    commit: Call | None  # the WAL sync that made it durable (several acks may share one)


def check(calls: Sequence[Call], wal: Path, acks: Iterable[Ack]) -> list[Verdict]:
    return [_check_one(calls, wal, ack) for ack in acks]


def _first(calls: Sequence[Call], after: int, test: Callable[[Call], bool]) -> Call | None:
    for call in calls:
        if call.start > after and call.ok and test(call):
            return call
    return None


def _check_one(calls: Sequence[Call], wal: Path, ack: Ack) -> Verdict:
    request = _first(
        calls, -1,
        lambda c: c.name in READS and c.on_socket(ack.request_port) and ack.request in c.data,
    )
    if request is None:
        return Verdict(ack, (f"no read of {ack.request!r} from port {ack.request_port}",), None)
    reply = _first(
        calls, request.end,
        lambda c: c.name in WRITES and c.on_socket(ack.reply_port) and ack.reply in c.data,
    )
    if reply is None:
        return Verdict(ack, (f"no write of {ack.reply!r} to port {ack.reply_port}",), None)
    before = [c for c in calls if c.end < reply.start and c.ok]
    problems: list[str] = []
    since = request.end  # what the commit must follow
    dir_synced = -1
    if ack.blob is not None:
        linked, dir_synced = _check_blob(before, ack.blob, problems)
        since = max(since, linked)
    wal_path = str(wal)
    write = next(
        (c for c in before if c.start > since and c.wal_frames and c.fd == wal_path), None
    )
    commit: Call | None = None
    if write is None:
        problems.append("no WAL write after the data, before the reply")
    else:
        after = max(write.end, dir_synced)
        commit = next(
            (c for c in before if c.start > after and c.name in SYNCS and c.fd == wal_path), None
        )
        if commit is None:
            problems.append("no WAL fsync/fdatasync (commit) after the WAL write"
                            + (" and the directory fsync" if ack.blob else "")
                            + ", before the reply")
    return Verdict(ack, tuple(problems), commit)


def _check_blob(before: list[Call], blob: Path, problems: list[str]) -> tuple[int, int]:
    """The file half (see the module docstring); returns (link end, directory fsync end)."""
    target = str(blob).encode()
    link = next(
        (c for c in reversed(before) if c.name in LINKS and target in c.strings[1:]), None
    )
    if link is None:
        problems.append(f"no link/rename to {blob.name} before the reply")
        return -1, -1
    source = os.fsdecode(link.strings[0])
    synced = [c for c in before if c.end < link.start and c.name in SYNCS and c.fd == source]
    if not synced:
        problems.append(f"{source} not fsynced before its link/rename")
    else:
        late = [c for c in before if c.name in WRITES and c.fd == source
                and c.end > synced[-1].start]
        if late:
            problems.append(f"{source} written after its last fsync")
    parent = str(blob.parent)
    dir_sync = next(
        (c for c in before if c.start > link.end and c.name in SYNCS and c.fd == parent), None
    )
    if dir_sync is None:
        problems.append(f"{parent} not fsynced after the link/rename, before the reply")
        return link.end, -1
    return link.end, dir_sync.end
