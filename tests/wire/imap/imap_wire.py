"""IMAP wire-test helpers on top of tests/conftest.py's real server (a uniquely named module,
not conftest, so tests can import it; tests/ is not a package).

Messages are put in a mailbox with `store.deliver()` on the server's own loop, so these tests
depend only on IMAP and the store; end-to-end tests go through SMTP.
"""

from __future__ import annotations

import imaplib
from dataclasses import dataclass
from typing import Any

from mailwright.store.api import Account, Envelope

RunningServer = Any  # tests/conftest.py's RunningServer (not importable: no package)
ServerFactory = Any

# Tests exercise failures too; keep the throttle's growing delay short.
FAST_AUTH = {
    "MAILWRIGHT_AUTH_FAILURE_BASE_DELAY": "0.01",
    "MAILWRIGHT_AUTH_FAILURE_MAX_DELAY": "0.05",
}

ALICE = "alice@example.test"
PASSWORD = "correct horse battery staple"


def message(n: int, body: bytes = b"", subject: str = "") -> bytes:
    return (
        f"From: Bob <bob@example.test>\r\nTo: {ALICE}\r\n"
        f"Subject: {subject or f'message {n}'}\r\n"
        f"Date: Mon, 23 Nov 2026 10:00:{n % 60:02d} +0000\r\n"
        f"Message-ID: <{n}@example.test>\r\n\r\n".encode()
        + (body or f"Body of message {n}.\r\n".encode())
    )


def deliver(server: RunningServer, account: Account, raw: bytes) -> None:
    async def go() -> None:
        staged = server.store.stage()
        staged.write(raw)
        await server.store.deliver(staged, Envelope(mail_from="bob@example.test"), [account.id], [])

    server.run(go())


@dataclass
class ImapEnv:
    server: RunningServer
    alice: Account

    @property
    def port(self) -> int:
        return int(self.server.port("imap"))

    def client(self, login: bool = True) -> imaplib.IMAP4:
        """A plaintext imaplib client on loopback (plaintext login is allowed there)."""
        imap = imaplib.IMAP4(self.server.host, self.port, timeout=10)
        if login:
            imap.login(ALICE, PASSWORD)
        return imap

    def tls_client(self, login: bool = True) -> imaplib.IMAP4_SSL:
        imap = imaplib.IMAP4_SSL(self.server.host, int(self.server.port("imaps")),
                                 ssl_context=self.server.ssl_context, timeout=10)
        if login:
            imap.login(ALICE, PASSWORD)
        return imap

    def deliver(self, *raws: bytes) -> None:
        for raw in raws:
            deliver(self.server, self.alice, raw)


def make_env(server_factory: ServerFactory, env: dict[str, str] | None = None) -> ImapEnv:
    server = server_factory({**FAST_AUTH, **(env or {})})
    alice = server.add_account(ALICE, PASSWORD)
    return ImapEnv(server, alice)


# ----- selected-state tests: a raw client and a nested MIME message ------------------------------
# (appended for tests/wire/imap/test_fetch.py, test_search.py, test_store_copy_move.py,
# test_expunge_sessions.py and test_imapclient.py)

import base64  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402

_LITERAL_AT_END = re.compile(rb"~?\{(\d+)\+?\}\r\n$")


class RawImap:
    """A line-level IMAP client that returns every response exactly and in order, for tests
    that check which untagged responses a command carries (RFC 9051 7.5.2). A response that
    ends in a literal is read whole: its literal data is kept inline."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.greeting = self.read_response()
        self._n = 0

    def read_response(self) -> bytes:
        out = b""
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError(f"connection closed after {out!r}")
            out += line
            m = _LITERAL_AT_END.search(line)
            if m is None:
                return out
            out += self.file.read(int(m.group(1)))

    def send(self, text: str | bytes) -> str:
        """Send one command line; returns its tag (read the answer with `finish`)."""
        self._n += 1
        tag = f"r{self._n}"
        data = text.encode() if isinstance(text, str) else text
        self.sock.sendall(tag.encode() + b" " + data + b"\r\n")
        return tag

    def finish(self, tag: str) -> tuple[list[bytes], bytes]:
        """(untagged and continuation responses, tagged response) of the command `tag`."""
        untagged: list[bytes] = []
        prefix = tag.encode() + b" "
        while True:
            resp = self.read_response()
            if resp.startswith(prefix):
                return untagged, resp
            untagged.append(resp)

    def command(self, text: str | bytes) -> tuple[list[bytes], bytes]:
        return self.finish(self.send(text))

    def ok(self, text: str | bytes) -> list[bytes]:
        """Run a command that must succeed; its untagged responses."""
        untagged, tagged = self.command(text)
        assert tagged.split(b" ", 2)[1] == b"OK", (text, untagged, tagged)
        return untagged

    def login(self) -> RawImap:
        self.ok(f'LOGIN {ALICE} "{PASSWORD}"')
        return self

    def close(self) -> None:
        try:
            self.command("LOGOUT")
        except OSError:
            pass
        finally:
            self.file.close()
            self.sock.close()

    def __enter__(self) -> RawImap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def raw_client(env: ImapEnv, mailbox: str | None = "INBOX") -> RawImap:
    """A logged-in RawImap, with `mailbox` selected unless None."""
    client = RawImap(env.server.host, env.port).login()
    if mailbox is not None:
        client.ok(f'SELECT "{mailbox}"')
    return client


def kinds(responses: list[bytes]) -> list[bytes]:
    """The kind of each untagged response: b"3 EXPUNGE" -> b"EXPUNGE", b"FETCH", b"OK", ..."""
    out = []
    for resp in responses:
        words = resp.split(b" ", 3)
        out.append(words[2].rstrip(b"\r\n") if words[1].isdigit() else words[1].rstrip(b"\r\n"))
    return out


# A multipart/mixed message with a nested multipart/alternative (1.1 text/plain
# quoted-printable, 1.2 text/html 8bit), a base64 attachment (2) and a message/rfc822 (3),
# built from its pieces so that tests know every section's exact bytes.
NESTED_TOP = (
    b'From: "Alice Sender" <alice.sender@example.test>\r\n'
    b"To: Bob <bob@example.test>, carol@example.test\r\n"
    b"Cc: Dave <dave@example.test>\r\n"
    b"Subject: Nested parts\r\n"
    b"Date: Tue, 24 Nov 2026 09:30:00 +0100\r\n"
    b"Message-ID: <nested@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
)
PART11_MIME = (b"Content-Type: text/plain; charset=utf-8\r\n"
               b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
PART11_BODY = b"Caf=C3=A9 au lait, plain\r\nsecond line"
PART12_MIME = b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
PART12_BODY = b"<p>Caf\xc3\xa9 <b>html</b></p>"
PART1_MIME = b'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n'
PART1_BODY = (b"--inner\r\n" + PART11_MIME + PART11_BODY + b"\r\n--inner\r\n" + PART12_MIME
              + PART12_BODY + b"\r\n--inner--")
ATTACHMENT = bytes(range(256)) * 2  # NULs and 8-bit: BINARY must use literal8
PART2_MIME = (b'Content-Type: application/octet-stream; name="data.bin"\r\n'
              b"Content-Transfer-Encoding: base64\r\n"
              b'Content-Disposition: attachment; filename="data.bin"\r\n'
              b"Content-Language: en\r\n\r\n")
PART2_BODY = base64.encodebytes(ATTACHMENT).replace(b"\n", b"\r\n").rstrip(b"\r\n")
INNER_HEADER = (b"From: Eve <eve@example.test>\r\nTo: Frank <frank@example.test>\r\n"
                b"Subject: Inner message\r\nDate: Wed, 25 Nov 2026 08:00:00 +0000\r\n"
                b"Message-ID: <inner@example.test>\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: text/plain; charset=us-ascii\r\n\r\n")
INNER_BODY = b"Inner body line 1\r\nInner body line 2"
PART3_MIME = b"Content-Type: message/rfc822\r\nContent-Description: forwarded\r\n\r\n"
PART3_BODY = INNER_HEADER + INNER_BODY
NESTED_BODY = (b"This is a MIME message.\r\n--outer\r\n" + PART1_MIME + PART1_BODY
               + b"\r\n--outer\r\n" + PART2_MIME + PART2_BODY
               + b"\r\n--outer\r\n" + PART3_MIME + PART3_BODY + b"\r\n--outer--\r\nepilogue\r\n")
NESTED = NESTED_TOP + NESTED_BODY


# ----- raw-socket client (appended for the auth/mailbox/append/idle/robustness wire tests) -----
import re as _re  # noqa: E402
import socket as _socket  # noqa: E402
import ssl as _ssl  # noqa: E402

_LITERAL_END = _re.compile(rb"~?\{(\d+)\}\r\n\Z")


class WireClient:
    """A byte-level IMAP client for what imaplib cannot send: pipelining, literals of any
    kind, garbage, half-finished commands. Lines are returned with their CRLF; a line that
    ends in a server literal "{n}" is returned with the literal and the rest of the line."""

    def __init__(self, host: str, port: int, tls: _ssl.SSLContext | None = None,
                 timeout: float = 10.0) -> None:
        sock = _socket.create_connection((host, port), timeout=timeout)
        self.sock: _socket.socket = tls.wrap_socket(sock, server_hostname=host) if tls else sock
        self.buf = b""
        self.greeting = self.readline()

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def readline(self) -> bytes:
        """One response line, CRLF included (with any literal it carries); b"" at EOF."""
        while b"\r\n" not in self.buf:
            if not self._fill():
                line, self.buf = self.buf, b""
                return line
        end = self.buf.index(b"\r\n") + 2
        line, self.buf = self.buf[:end], self.buf[end:]
        m = _LITERAL_END.search(line)
        if m is not None:
            n = int(m.group(1))
            while len(self.buf) < n:
                if not self._fill():
                    break
            line, self.buf = line + self.buf[:n], self.buf[n:]
            line += self.readline()
        return line

    def until_tagged(self, tag: str) -> list[bytes]:
        """Lines up to and including the tagged response for `tag` (or EOF)."""
        out: list[bytes] = []
        prefix = tag.encode() + b" "
        while True:
            line = self.readline()
            if not line:
                return out
            out.append(line)
            if line.startswith(prefix):
                return out

    def cmd(self, tag: str, text: str | bytes) -> list[bytes]:
        data = text.encode() if isinstance(text, str) else text
        self.send(tag.encode() + b" " + data + b"\r\n")
        return self.until_tagged(tag)

    def login(self, user: str = ALICE, password: str = PASSWORD) -> None:
        reply = self.cmd("L1", f'LOGIN "{user}" "{password}"')
        assert reply[-1].startswith(b"L1 OK"), reply

    def starttls(self, context: _ssl.SSLContext, host: str) -> None:
        reply = self.cmd("T1", "STARTTLS")
        assert reply[-1].startswith(b"T1 OK"), reply
        assert self.buf == b"", self.buf
        self.sock = context.wrap_socket(self.sock, server_hostname=host)

    def at_eof(self) -> bool:
        """True when the server closed the connection (after any buffered lines are read)."""
        if self.buf:
            return False
        try:
            return self.sock.recv(1) == b""
        except (ConnectionError, _ssl.SSLError):
            return True


def wire(env: ImapEnv, login: bool = True, tls: bool = False) -> WireClient:
    """A WireClient on "imap" ("imaps" with `tls`), logged in as alice unless not `login`."""
    server = env.server
    port = int(server.port("imaps" if tls else "imap"))
    client = WireClient(server.host, port, server.ssl_context if tls else None)
    if login:
        client.login()
    return client


def last(lines: list[bytes]) -> bytes:
    """The last (tagged) line of a reply."""
    assert lines, "no reply"
    return lines[-1]


# ----- cheap password hashing for wire tests that log in many times -----------------------------
# (appended for the selected-state tests; import `cheap_hashing` into a test module, it is
# autouse there). The server runs in this process, so argon2 with tiny parameters makes
# add_account and each LOGIN take microseconds instead of ~300 ms; what is tested here is IMAP.

import argon2 as _argon2  # noqa: E402
import pytest  # noqa: E402

import mailwright.auth.passwords as _passwords  # noqa: E402


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap = _argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(_passwords, "_HASHER", cheap)


# ----- mailbox-command helpers (test_mailboxes.py, test_list_and_status.py) ----------------
# The special-use mailboxes every new account gets (RFC 6154).
SPECIAL = {"Sent": b"\\Sent", "Drafts": b"\\Drafts", "Trash": b"\\Trash", "Junk": b"\\Junk",
           "Archive": b"\\Archive"}


def ok(c: WireClient, tag: str, command: str | bytes) -> list[bytes]:
    """Run a command that must succeed; its untagged lines."""
    reply = c.cmd(tag, command)
    assert last(reply).startswith(tag.encode() + b" OK"), reply
    return reply[:-1]


def refused(c: WireClient, tag: str, command: str | bytes, prefix: str) -> bytes:
    reply = c.cmd(tag, command)
    assert last(reply).startswith(f"{tag} {prefix}".encode()), reply
    return last(reply)


_LIST = re.compile(rb'^\* (LIST|LSUB) \(([^)]*)\) (?:"(.)"|NIL) (.+?)(?: (\(.*\)))?\r\n$')


def parse_list(lines: list[bytes]) -> dict[bytes, tuple[set[bytes], bytes]]:
    """{wire name (quotes removed): ({attributes}, extended data)} of LIST/LSUB lines."""
    out: dict[bytes, tuple[set[bytes], bytes]] = {}
    for line in lines:
        m = _LIST.match(line)
        if m is None:
            continue
        name = m.group(4)
        if name.startswith(b'"'):
            name = name[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
        out[name] = (set(m.group(2).split()), m.group(5) or b"")
    return out


def names(lines: list[bytes]) -> list[bytes]:
    return list(parse_list(lines))


def status_of(lines: list[bytes]) -> dict[bytes, dict[bytes, int]]:
    out: dict[bytes, dict[bytes, int]] = {}
    for line in lines:
        m = re.match(rb"^\* STATUS (.+) \(([^)]*)\)\r\n$", line)
        if m is not None:
            name = m.group(1).strip(b'"')
            words = m.group(2).split()
            out[name] = {k: int(v) for k, v in zip(words[::2], words[1::2], strict=True)}
    return out
