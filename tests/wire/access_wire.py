"""Helpers for the access-control wire tests (test_open_relay, test_isolation,
test_starttls_injection, test_auth_throttle): one raw line client for the three protocols, and
accounts made without paying argon2's cost per test.

A uniquely named module (not conftest) so that tests can import it (tests/ is not a package).
"""

from __future__ import annotations

import functools
import socket
import ssl
from typing import Any

from mailwright.auth.passwords import hash_password
from mailwright.store.api import Account, Envelope

RunningServer = Any  # tests/conftest.py's RunningServer (not importable: no package)


@functools.cache
def password_hash(password: str) -> str:
    """One real argon2id hash per password per test run (~150 ms once, not per account)."""
    return hash_password(password)


def add_account(server: RunningServer, address: str, password: str) -> Account:
    domain = address.rpartition("@")[2]
    server.ensure_domain(domain)
    return server.store.add_account(address, password_hash(password), "delete")


def deliver(server: RunningServer, account: Account, raw: bytes) -> None:
    async def go() -> None:
        staged = server.store.stage()
        staged.write(raw)
        await server.store.deliver(staged, Envelope(mail_from="x@remote.test"), [account.id], [])

    server.run(go())


class Line:
    """A raw socket speaking CRLF lines: send exact bytes, read exact lines."""

    def __init__(self, host: str, port: int, timeout: float = 10.0, source: str = "") -> None:
        """`source`: the local address to connect from; any 127.x.y.z is loopback on Linux,
        so tests can be several clients with their own addresses (per-address throttling)."""
        self.host = host
        self.sock: socket.socket = socket.create_connection(
            (host, port), timeout=timeout, source_address=(source, 0) if source else None
        )
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Line:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes | str) -> Line:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)
        return self

    def line(self) -> bytes:
        """One line without its CRLF; raises EOFError when the server closed."""
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; pending {self.buf!r}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def smtp_reply(self) -> tuple[int, str]:
        """(code, last line's text) of one possibly multiline SMTP reply."""
        while True:
            line = self.line().decode("utf-8", "replace")
            if line[3:4] != "-":
                return int(line[:3]), line[4:]

    def imap_until(self, tag: str) -> list[bytes]:
        """IMAP lines up to and including `tag`'s (literals are not followed: tests here
        never fetch bodies through this)."""
        out = []
        while True:
            line = self.line()
            out.append(line)
            if line.startswith(tag.encode() + b" "):
                return out

    def silent(self, wait: float = 0.5) -> bool:
        """True when the server sends nothing more within `wait` seconds (nothing unasked)."""
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return True
        except ssl.SSLWantReadError:
            return True
        finally:
            self.sock.settimeout(10.0)
        self.buf += data
        return False

    def starttls(self, context: ssl.SSLContext) -> None:
        assert self.buf == b"", f"plaintext left before the handshake: {self.buf!r}"
        self.sock = context.wrap_socket(self.sock, server_hostname=self.host)
