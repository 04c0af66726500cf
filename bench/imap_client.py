"""A minimal, fast IMAP client for the bench: it times the server, not a client's parser.

`imaplib` (and imapclient on top of it) parses every response line and literal in Python; on a
10,000-message `FETCH 1:* (ENVELOPE BODYSTRUCTURE)` that parsing costs more than the server's
work, so a timing taken through it measures the client. `RawImap` instead writes the command and
reads raw bytes until the tagged reply line (`\\r\\n<tag> ` at a line start followed by its
`\\r\\n`), scanning only the newly received bytes: no line splitting, no literal handling. The
tags (`W00001`, ...) never occur at a line start inside the bench's messages, so a literal
cannot fake the tagged line. The caller checks the response afterwards, outside the timing.

Blocking sockets with TCP_NODELAY, one command in flight: exactly what a client waiting for its
answer sees. `async_*` helpers do the same over asyncio streams for the many-session phases.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from dataclasses import dataclass

RECV = 1 << 20


class ImapError(Exception):
    pass


@dataclass
class Reply:
    status: bytes  # b"OK", b"NO" or b"BAD"
    data: bytes  # every byte received for the command, tagged line included
    seconds: float  # from the first byte written to the tagged line received

    @property
    def ms(self) -> float:
        return self.seconds * 1000

    def count(self, needle: bytes) -> int:
        return self.data.count(needle)


class RawImap:
    """One blocking connection. `command()` sends one command and waits for its tagged reply."""

    def __init__(self, host: str, port: int, timeout: float = 120.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._pending = bytearray()
        self._tags = 0
        greeting = self._read_until(b"\r\n", start_of_line=False)
        if not greeting.startswith(b"* OK"):
            raise ImapError(f"greeting: {greeting[:200]!r}")

    def _read_until(self, marker: bytes, start_of_line: bool = True) -> bytes:
        """Bytes up to and including the line that starts with `marker` (or the first line)."""
        buf = self._pending
        self._pending = bytearray()
        needle = b"\r\n" + marker if start_of_line else marker
        scanned = 0
        while True:
            if start_of_line and buf.startswith(marker):
                at = 0
            else:
                at = buf.find(needle, max(0, scanned - len(needle)))
                if at >= 0 and start_of_line:
                    at += 2
            if at >= 0:
                end = buf.find(b"\r\n", at + (len(marker) if start_of_line else 0))
                if end >= 0:
                    self._pending = buf[end + 2 :]
                    return bytes(buf[: end + 2])
            scanned = len(buf)
            chunk = self.sock.recv(RECV)
            if not chunk:
                raise ImapError(f"connection closed; last bytes {bytes(buf[-200:])!r}")
            buf += chunk

    def next_tag(self) -> str:
        self._tags += 1
        return f"W{self._tags:05d}"

    def command(self, text: str | bytes, literal: bytes | None = None) -> Reply:
        """Send `<tag> text` (plus a LITERAL+ literal if given); time it to the tagged line."""
        tag = self.next_tag()
        line = text.encode() if isinstance(text, str) else text
        payload = tag.encode() + b" " + line
        if literal is not None:
            payload += b" {%d+}\r\n" % len(literal) + literal
        payload += b"\r\n"
        started = time.perf_counter()
        self.sock.sendall(payload)
        tagged = tag.encode() + b" "
        data = self._read_until(tagged)
        seconds = time.perf_counter() - started
        at = data.rfind(b"\r\n" + tagged)
        status = data[(at + 2 if at >= 0 else 0) + len(tagged) :].split(b" ", 1)[0]
        return Reply(status, data, seconds)

    def ok(self, text: str | bytes, literal: bytes | None = None) -> Reply:
        reply = self.command(text, literal)
        if reply.status != b"OK":
            shown = text if isinstance(text, str) else text[:80]
            raise ImapError(f"{shown!r}: {reply.data[-300:]!r}")
        return reply

    def login(self, user: str, password: str) -> None:
        self.ok(f'LOGIN "{user}" "{password}"')

    def close(self) -> None:
        with contextlib.suppress(OSError, ImapError):
            self.command("LOGOUT")
        self.sock.close()


EXISTS = re.compile(rb"^\* (\d+) EXISTS\r\n")


async def async_tagged(reader: asyncio.StreamReader, tag: bytes) -> bytes:
    """Read lines until the tagged one (for short replies: LOGIN, SELECT, ...); return it."""
    while True:
        line = await reader.readline()
        if not line:
            raise ImapError(f"connection closed waiting for {tag!r}")
        if line.startswith(tag + b" "):
            if not line.startswith(tag + b" OK"):
                raise ImapError(f"{tag!r}: {line!r}")
            return line
