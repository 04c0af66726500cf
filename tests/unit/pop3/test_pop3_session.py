"""The asyncio session driven by byte transcripts over an in-memory connection (no sockets):
fast checks of the outcomes that need auth and the store, and a property test that no input,
however hostile, reaches the "internal error" path."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailwright.config import Config, Pop3Config
from mailwright.pop3.session import Pop3Session, busy_reply
from mailwright.services import Services
from mailwright.store.api import Account, StoredMessage

PASSWORD = "s3cret pass"
ALICE = Account(id=7, address="alice@example.test")


class FakeTransport:
    def get_write_buffer_size(self) -> int:
        return 0


class FakeWriter:
    transport = FakeTransport()


class FakeConn:
    """Feeds `chunks` one read at a time, then EOF; records everything written."""

    def __init__(self, chunks: Sequence[bytes], tls: bool = False) -> None:
        self.chunks = list(chunks)
        self.out = bytearray()
        self.writer = FakeWriter()
        self.peer_ip = "127.0.0.1"
        self.is_tls = tls
        self.is_loopback = True
        self.idle = False
        self.closed = False

    async def read(self, timeout: float | None = None) -> bytes:  # noqa: ASYNC109  # Connection's signature
        return self.chunks.pop(0) if self.chunks else b""

    def write(self, data: bytes) -> None:
        self.out += data

    async def drain(self) -> None:
        pass

    async def start_tls(self, context: object, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        self.is_tls = True

    async def close(self) -> None:
        self.closed = True


class FakeAuthenticator:
    def __init__(self, allow_plaintext: bool = True) -> None:
        self.allow_plaintext = allow_plaintext
        self.seen_passwords: list[str] = []

    def plaintext_allowed(self, conn: FakeConn) -> bool:
        return conn.is_tls or self.allow_plaintext

    async def authenticate(self, username: str, password: str, ip: str) -> Account | None:
        return ALICE if (username, password) == (ALICE.address, PASSWORD) else None


class FakeStore:
    def __init__(self, root: Path, bodies: Sequence[bytes]) -> None:
        self.root = root
        self.messages = []
        for uid, body in enumerate(bodies, start=1):
            (root / f"blob{uid}").write_bytes(body)
            self.messages.append(StoredMessage(uid, len(body), f"blob{uid}", f"1.{uid}"))
        self.commits: list[tuple[int, list[int], str]] = []

    def pop3_messages(self, account_id: int) -> list[StoredMessage]:
        return list(self.messages)

    def blob_path(self, blob: str) -> Path:
        return self.root / blob

    async def pop3_commit(self, account_id: int, uids: Sequence[int], policy: str) -> None:
        self.commits.append((account_id, list(uids), policy))


def make_services(store: FakeStore, auth: FakeAuthenticator, **pop3: Any) -> Services:
    config = Config(
        data_dir=store.root, hostname="mail.example.test", listeners={}, pop3=Pop3Config(**pop3)
    )
    return Services(
        config=config, store=store, deliverer=None, authenticator=auth, tls=None  # type: ignore[arg-type]
    )


def run(chunks: Sequence[bytes], services: Services, tls: bool = False) -> FakeConn:
    conn = FakeConn(chunks, tls)
    asyncio.run(Pop3Session(conn, services, "pop3").run())  # type: ignore[arg-type]
    assert conn.closed
    return conn


@pytest.fixture
def store(tmp_path: Path) -> FakeStore:
    return FakeStore(tmp_path, [b"Subject: one\r\n\r\n.dot\r\n", b"Subject: two\r\n\r\nbody\r\n"])


LOGIN = f"USER {ALICE.address}\r\nPASS {PASSWORD}\r\n".encode()


def test_transcript_retr_dele_quit_commits_once(store: FakeStore) -> None:
    services = make_services(store, FakeAuthenticator())
    conn = run([LOGIN + b"RETR 1\r\nDELE 1\r\nDELE 2\r\nRSET\r\nDELE 2\r\nQUIT\r\n"], services)
    assert conn.out.startswith(b"+OK mail.example.test mailwright POP3 ready\r\n")
    assert b"+OK 22 octets\r\nSubject: one\r\n\r\n..dot\r\n.\r\n" in conn.out
    assert store.commits == [(7, [2], "delete")]
    assert services.pop3_locks == set()


def test_eof_without_quit_commits_nothing(store: FakeStore) -> None:
    services = make_services(store, FakeAuthenticator())
    run([LOGIN + b"DELE 1\r\n"], services)
    assert store.commits == []
    assert services.pop3_locks == set()


def test_locked_maildrop_gets_in_use(store: FakeStore) -> None:
    services = make_services(store, FakeAuthenticator())
    services.pop3_locks.add(ALICE.id)
    conn = run([LOGIN], services)
    assert b"-ERR [IN-USE] " in conn.out
    assert services.pop3_locks == {ALICE.id}  # another session's lock is left alone


def test_sasl_plain_and_login_in_one_transcript(store: FakeStore) -> None:
    services = make_services(store, FakeAuthenticator())
    plain = base64.b64encode(f"\0{ALICE.address}\0{PASSWORD}".encode())
    conn = run([b"AUTH PLAIN\r\n", plain + b"\r\n", b"STAT\r\n"], services)
    assert b"+ \r\n+OK Logged in, 2 messages" in conn.out
    assert b"+OK 2 " in conn.out


def test_stls_resets_user(store: FakeStore) -> None:
    services = make_services(store, FakeAuthenticator(allow_plaintext=False))
    conn = run([f"USER {ALICE.address}\r\n".encode(), b"STLS\r\n", b"PASS x\r\nCAPA\r\n"], services)
    text = bytes(conn.out)
    assert "-ERR [SYS/PERM]" in text.decode()
    assert b"+OK Begin TLS negotiation\r\n-ERR No username" in conn.out
    assert b"\r\nUSER\r\n" in conn.out  # CAPA inside TLS offers USER, not STLS
    assert b"\r\nSTLS\r\n" not in conn.out.split(b"Begin TLS")[1]


def test_busy_reply_is_sys_temp() -> None:
    assert busy_reply("mail.example.test").startswith(b"-ERR [SYS/TEMP] mail.example.test ")


_TOKENS = st.sampled_from(
    [
        b"USER alice@example.test\r\n", f"PASS {PASSWORD}\r\n".encode(), b"PASS bad\r\n",
        b"AUTH PLAIN\r\n", b"AUTH LOGIN\r\n", b"*\r\n", b"=\r\n", b"AUTH\r\n",
        base64.b64encode(f"\0{ALICE.address}\0{PASSWORD}".encode()) + b"\r\n",
        base64.b64encode(ALICE.address.encode()) + b"\r\n", b"STLS\r\n", b"CAPA\r\n",
        b"STAT\r\n", b"LIST\r\n", b"LIST 1\r\n", b"RETR 1\r\n", b"RETR 3\r\n", b"DELE 1\r\n",
        b"DELE 2\r\n", b"RSET\r\n", b"NOOP\r\n", b"TOP 2 0\r\n", b"UIDL\r\n", b"UIDL 9\r\n",
        b"QUIT\r\n", b"\r\n", b"\xff\r\n", b"x" * 300,
    ]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_TOKENS | st.binary(max_size=40), max_size=25), st.booleans())
def test_no_input_reaches_the_internal_error_path(
    store: FakeStore, pieces: list[bytes], tls: bool
) -> None:
    store.commits.clear()
    services = make_services(store, FakeAuthenticator(allow_plaintext=False), max_command_line=256)
    conn = run([p for p in pieces if p], services, tls)
    assert b"Internal server error" not in conn.out
    assert services.pop3_locks == set()
    for line in bytes(conn.out).split(b"\r\n"):
        assert len(line) <= 510
