"""SMTP wire-test helpers: a line-level client over a raw socket (for what smtplib hides).

A uniquely named module (not conftest) so that tests can import it without clashing with
tests/conftest.py."""

from __future__ import annotations

import functools
import socket
import ssl
from typing import Any

from mailwright.auth.passwords import hash_password

RunningServer = Any  # tests/conftest.py's RunningServer (not importable: no package)
ALICE = "alice@example.test"
ALICE_PW = "correct horse battery staple"
BOB = "bob@example.test"
BOB_PW = "hunter2-but-longer"


class Wire:
    """A transcript-style SMTP client: send bytes, expect replies (STYLE.md 8)."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> None:
        raw = socket.create_connection((host, port), timeout=10)
        self.sock: socket.socket = tls.wrap_socket(raw, server_hostname=host) if tls else raw
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> Wire:
        self.sock.sendall(data)
        return self

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; pending {self.buf!r}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def reply(self) -> tuple[int, list[str]]:
        lines = []
        while True:
            line = self._line().decode("utf-8", "replace")
            lines.append(line[4:])
            if line[3:4] != "-":
                return int(line[:3]), lines

    def expect(self, code: int, enhanced: str | None = None) -> list[str]:
        got, lines = self.reply()
        assert got == code, (got, lines)
        if enhanced is not None:
            assert lines[-1].startswith(enhanced + " ") or lines[-1] == enhanced, lines
        return lines

    def closed(self) -> bool:
        """True when the server closed the connection (after any pending data)."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, ssl.SSLError):
            return True

    def starttls(self, ctx: ssl.SSLContext, host: str) -> None:
        assert not self.buf
        self.sock = ctx.wrap_socket(self.sock, server_hostname=host)


def stored_messages(server: Any, address: str) -> list[bytes]:
    """The bytes of every message in `address`'s INBOX, in UID order."""
    account = server.store.get_account(address)
    assert account is not None
    return [
        server.store.blob_path(m.blob).read_bytes() for m in server.store.pop3_messages(account.id)
    ]


def body_of(stored: bytes) -> bytes:
    """The message after the trace headers we prepend (Return-Path and Received)."""
    assert stored.startswith(b"Return-Path: <")
    received = stored.index(b"\r\nReceived: ")
    end = stored.index(b"\r\n", stored.index(b";", received) + 1)
    # The Received header's last folded line ends with the date; what follows is the message.
    while stored[end + 2 : end + 3] in (b"\t", b" "):
        end = stored.index(b"\r\n", end + 2)
    return stored[end + 2 :]


@functools.cache
def cached_hash(password: str) -> str:
    """argon2id once per password per test run, not once per test (~150 ms each)."""
    return hash_password(password)


def add_accounts(server: Any) -> Any:
    """ALICE and BOB on example.test (cheap: hashes are cached)."""
    server.ensure_domain("example.test")
    server.store.add_account(ALICE, cached_hash(ALICE_PW))
    server.store.add_account(BOB, cached_hash(BOB_PW))
    return server
