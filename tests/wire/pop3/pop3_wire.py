"""POP3 wire-test helpers on top of tests/conftest.py's real server (a uniquely named module,
not conftest, so tests can import it; tests/ is not a package).

The SMTP listeners are turned off so that these tests depend only on POP3 and the store;
messages are put in a mailbox with `store.deliver()` on the server's own loop.
"""

from __future__ import annotations

import poplib
import socket
import time
from dataclasses import dataclass
from typing import Any

from mailwright.store.api import Account, Envelope

RunningServer = Any  # tests/conftest.py's RunningServer (not importable: no package)
ServerFactory = Any

SMTP_OFF = {
    "MAILWRIGHT_LISTEN_SMTP": "",
    "MAILWRIGHT_LISTEN_SUBMISSION": "",
    "MAILWRIGHT_LISTEN_SUBMISSIONS": "",
}
# Tests exercise failures too; keep the throttle's growing delay short.
FAST_AUTH = {
    "MAILWRIGHT_AUTH_FAILURE_BASE_DELAY": "0.01",
    "MAILWRIGHT_AUTH_FAILURE_MAX_DELAY": "0.05",
}

ALICE = "alice@example.test"
PASSWORD = "correct horse battery staple"


def message(n: int, body: bytes = b"") -> bytes:
    return (
        f"From: bob@example.test\r\nTo: {ALICE}\r\nSubject: message {n}\r\n"
        f"Message-ID: <{n}@example.test>\r\n\r\n".encode()
        + (body or f"Body of message {n}.\r\n".encode())
    )


def deliver(server: RunningServer, account: Account, raw: bytes) -> None:
    async def go() -> None:
        staged = server.store.stage()
        staged.write(raw)
        await server.store.deliver(
            staged, Envelope(mail_from="bob@example.test"), [account.id], []
        )

    server.run(go())


@dataclass
class Pop3Env:
    server: RunningServer
    alice: Account

    @property
    def port(self) -> int:
        return self.server.port("pop3")

    def pop(self) -> poplib.POP3:
        return poplib.POP3(self.server.host, self.port, timeout=10)

    def login(self, user: str = ALICE, password: str = PASSWORD) -> poplib.POP3:
        client = self.pop()
        try:
            client.user(user)
            client.pass_(password)
        except BaseException:
            close(client)
            raise
        return client

    def deliver(self, *raws: bytes) -> None:
        for raw in raws:
            deliver(self.server, self.alice, raw)

    def raw(self) -> RawClient:
        return RawClient(socket.create_connection((self.server.host, self.port), timeout=10))


class RawClient:
    """A line-level client for what poplib cannot send (pipelining, bad input, SASL)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")

    def send(self, data: bytes) -> RawClient:
        self.sock.sendall(data)
        return self

    def line(self) -> bytes:
        return self.file.readline()

    def multiline(self) -> list[bytes]:
        lines = []
        while (line := self.line()) != b".\r\n":
            assert line, "connection closed inside a multi-line reply"
            lines.append(line)
        return lines

    def at_eof(self) -> bool:
        return self.file.read() == b""

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def close(client: poplib.POP3) -> None:
    """Close without QUIT (a dropped connection)."""
    if client.file is not None:
        client.file.close()
    if client.sock is not None:
        client.sock.close()


def wait_unlocked(server: RunningServer, account_id: int, timeout: float = 10.0) -> None:
    """Wait until the server has noticed a dropped client and released its maildrop lock.

    There is no event to wait on for "the peer's FIN was processed", so this polls the server's
    own lock set (on its loop thread), never a login retry loop.
    """
    deadline = time.monotonic() + timeout
    locks = server.server.services.pop3_locks
    while server.call(lambda: account_id in locks):
        assert time.monotonic() < deadline, "maildrop lock not released"
        time.sleep(0.01)


def make_env(
    factory: ServerFactory, env: dict[str, str] | None = None, policy: str = "delete"
) -> Pop3Env:
    server = factory({**SMTP_OFF, **FAST_AUTH, **(env or {})})
    alice = server.add_account(ALICE, PASSWORD, policy)  # type: ignore[arg-type]
    return Pop3Env(server, alice)

