"""The asyncio session over a fake connection and fake services: policy and robustness,
without sockets or a store. (Wire tests drive the real server; these are fast and fuzzable.)"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.config import Config, SmtpConfig
from mailwright.delivery import LocalRecipient, Refusal, RemoteRecipient
from mailwright.smtp.session import serve
from mailwright.store.api import Account, Envelope, EnvelopeRecipient, StorageUnavailable

ALICE = Account(1, "alice@example.test")


class FakeConn:
    def __init__(self, chunks: Sequence[bytes], *, tls: bool = False) -> None:
        self.chunks = list(chunks)
        self.written = bytearray()
        self.is_tls = tls
        self.is_loopback = True
        self.peer_ip = "192.0.2.9"
        self.tls_version: str | None = "TLSv1.3" if tls else None
        self.tls_cipher: str | None = "TLS_AES_128_GCM_SHA256" if tls else None
        self.closed = False
        self.tls_started = False

    async def read(self, timeout: float | None = None) -> bytes:  # noqa: ASYNC109  # the Connection API
        if not self.chunks:
            return b""
        chunk = self.chunks.pop(0)
        if chunk == b"<timeout>":
            raise TimeoutError
        return chunk

    def write(self, data: bytes) -> None:
        self.written += data

    def pending_output(self) -> int:
        return 0

    async def drain(self) -> None:
        pass

    async def send(self, data: bytes) -> None:
        self.written += data

    async def start_tls(self, context: Any, timeout: float = 60) -> None:  # noqa: ASYNC109
        self.is_tls = True
        self.tls_started = True

    async def close(self) -> None:
        self.closed = True


class FakeStaged:
    def __init__(self) -> None:
        self.data = bytearray()
        self.aborted = False

    @property
    def size(self) -> int:
        return len(self.data)

    def write(self, data: bytes) -> None:
        assert not self.aborted
        self.data += data

    def abort(self) -> None:
        self.aborted = True


@dataclass
class FakeDeliverer:
    fail: bool = False
    delivered: list[tuple[bytes, Envelope, list[Any]]] = field(default_factory=list)
    staged: list[FakeStaged] = field(default_factory=list)

    def resolve(self, address: str, *, may_relay: bool) -> Any:
        local, _, domain = address.lower().rpartition("@")
        if domain != "example.test":
            return RemoteRecipient(address) if may_relay else Refusal.RELAY_DENIED
        return LocalRecipient(address.lower(), (1,)) if local == "alice" else Refusal.NO_SUCH_USER

    def sender_allowed(self, account: Account, mail_from: str) -> bool:
        return mail_from in ("", account.address)

    def stage(self) -> FakeStaged:
        self.staged.append(FakeStaged())
        return self.staged[-1]

    async def deliver(
        self, staged: FakeStaged, envelope: Envelope, rcpts: Any, junk: bool = False
    ) -> None:
        if self.fail:
            raise StorageUnavailable("disk full")
        self.delivered.append((bytes(staged.data), envelope, list(rcpts)))


class FakeAuth:
    def plaintext_allowed(self, conn: FakeConn) -> bool:
        return True

    async def authenticate(self, user: str, password: str, ip: str) -> Account | None:
        return ALICE if (user, password) == (ALICE.address, "secret") else None


@dataclass
class FakeServices:
    config: Config
    deliverer: FakeDeliverer
    authenticator: FakeAuth
    tls: Any = None
    store: Any = None
    inbound: Any = None  # no SPF/DKIM/DMARC here: tests/wire/smtp/test_inbound_checks.py
    capture: Any = None  # capture mode off: tests/wire/capture/


def services(**smtp: Any) -> FakeServices:
    cfg = Config(Path("/nonexistent"), "mx.example.test", {}, smtp=SmtpConfig(**smtp))
    return FakeServices(cfg, FakeDeliverer(), FakeAuth())


def run(chunks: Sequence[bytes], listener: str = "smtp", svc: FakeServices | None = None,
        tls: bool = False) -> tuple[str, FakeServices, FakeConn]:
    svc = svc or services()
    conn = FakeConn(chunks, tls=tls)
    asyncio.run(serve(conn, svc, listener))  # type: ignore[arg-type]  # duck-typed fakes
    assert conn.closed
    return conn.written.decode("utf-8", "replace"), svc, conn


def codes(out: str) -> list[str]:
    """The final line of each reply, as 'code enhanced' (or just code)."""
    pattern = r"^(\d{3}(?: \d\.\d{1,3}\.\d{1,3})?)(?: |$)"
    return [m.group(1) for m in re.finditer(pattern, out, re.M)]


def test_session_transcript_delivers_with_trace_headers() -> None:
    out, svc, _ = run([
        b"EHLO client.example\r\nMAIL FROM:<bob@remote.example> SIZE=50 BODY=8BITMIME\r\n"
        b"RCPT TO:<alice@example.test> NOTIFY=FAILURE\r\nDATA\r\n",
        b"Subject: t\r\n\r\n..x\r\n.\r\nQUIT\r\n",
    ])
    assert codes(out) == ["220", "250", "250 2.1.0", "250 2.1.5", "354", "250 2.0.0", "221 2.0.0"]
    [(data, env, rcpts)] = svc.deliverer.delivered
    assert env.mail_from == "bob@remote.example"
    assert env.mail_params == {"SIZE": "50", "BODY": "8BITMIME"}
    assert (env.helo, env.client_ip, env.authenticated_as) == ("client.example", "192.0.2.9", None)
    assert rcpts[0][0] == EnvelopeRecipient("alice@example.test", {"NOTIFY": "FAILURE"})
    header, _, body = data.partition(b";\r\n\t")
    assert header.startswith(b"Return-Path: <bob@remote.example>\r\nReceived: from client.example "
                             b"([192.0.2.9])\r\n\tby mx.example.test (mailwright) with ESMTP id ")
    assert header.endswith(b"\r\n\tfor <alice@example.test>")
    assert body.split(b"\r\n", 1)[1] == b"Subject: t\r\n\r\n.x\r\n"


def test_storage_unavailable_is_451_and_aborts() -> None:
    svc = services()
    svc.deliverer.fail = True
    out, _, _ = run([b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n",
                     b"x\r\n.\r\n"], svc=svc)
    assert codes(out)[-1] == "451 4.3.0"
    assert svc.deliverer.staged[0].aborted


def test_eof_mid_data_aborts_staged() -> None:
    _, svc, _ = run([b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n",
                     b"partial\r\n"])
    assert svc.deliverer.staged[0].aborted
    assert svc.deliverer.delivered == []


def test_timeout_is_421_442() -> None:
    out, _, _ = run([b"EHLO c\r\n", b"<timeout>"])
    assert codes(out)[-1] == "421 4.4.2"


def test_submission_auth_then_own_sender_only() -> None:
    plain = base64.b64encode(b"\0alice@example.test\0secret")
    out, svc, _ = run([
        b"EHLO c\r\nMAIL FROM:<alice@example.test>\r\nAUTH PLAIN " + plain + b"\r\n"
        b"MAIL FROM:<boss@example.test>\r\nMAIL FROM:<alice@example.test>\r\n"
        b"RCPT TO:<far@remote.example>\r\nDATA\r\n", b"x\r\n.\r\n",
    ], listener="submission")
    assert codes(out)[1:] == ["250", "530 5.7.0", "235 2.7.0", "553 5.7.1", "250 2.1.0",
                              "250 2.1.5", "354", "250 2.0.0"]
    [(data, env, rcpts)] = svc.deliverer.delivered
    assert env.authenticated_as == "alice@example.test"
    assert b" with ESMTPA id " in data
    assert rcpts[0][1] == RemoteRecipient("far@remote.example")


def test_starttls_drops_pipelined_bytes_and_state() -> None:
    out, _, conn = run([b"EHLO c\r\nSTARTTLS\r\nNOOP\r\nMAIL FROM:<>\r\n", b"MAIL FROM:<>\r\n"])
    assert conn.tls_started
    assert codes(out) == ["220", "250", "220 2.0.0", "503"]


def test_mail_auth_param_is_not_trusted_unauthenticated() -> None:
    _, svc, _ = run([b"EHLO c\r\nMAIL FROM:<x@r.example> AUTH=x@r.example\r\n"
                     b"RCPT TO:<alice@example.test>\r\nDATA\r\n", b".\r\n"])
    assert svc.deliverer.delivered[0][1].mail_params == {"AUTH": "<>"}


def test_bug_in_policy_is_421_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    svc = services()

    def broken(address: str, *, may_relay: bool) -> Any:
        raise RuntimeError("bug")

    svc.deliverer.resolve = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, "mailwright.smtp"):
        out, _, conn = run([b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\n"], svc=svc)
    assert codes(out)[-1] == "421 4.3.0"
    assert conn.closed
    assert "session failed" in caplog.text


def test_passwords_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    login = [base64.b64encode(v) for v in (b"alice@example.test", b"wrong-secret-xyz")]
    with caplog.at_level(logging.DEBUG):
        run([b"EHLO c\r\nAUTH LOGIN\r\n", login[0] + b"\r\n", login[1] + b"\r\n"])
        run([b"EHLO c\r\nAUTH PLAIN " + base64.b64encode(b"\0a@b\0wrong-secret-xyz") + b"\r\n"])
    assert "wrong-secret-xyz" not in caplog.text


_soup = st.sampled_from([
    b"EHLO c\r\n", b"HELO c\r\n", b"MAIL FROM:<x@r.example>\r\n", b"MAIL FROM:<>\r\n",
    b"RCPT TO:<alice@example.test>\r\n", b"RCPT TO:<z@example.test>\r\n", b"RCPT TO:<y@r.e>\r\n",
    b"DATA\r\n", b"BDAT 4\r\nabcd", b"BDAT 3 LAST\r\nxyz", b"BDAT 0 LAST\r\n", b"RSET\r\n",
    b"NOOP\r\n", b"VRFY a\r\n", b"HELP\r\n", b"STARTTLS\r\n", b"AUTH PLAIN\r\n", b"AUTH LOGIN\r\n",
    b"AUTH PLAIN =\r\n", b"*\r\n", b"YWxpY2U=\r\n", b".\r\n", b"..x\r\n", b"text\n", b"\r\n",
    b"\x00\xff\r\n", b"x" * 1200 + b"\r\n", b"MAIL FROM:<x@r.example> SIZE=999999999999\r\n",
])


@settings(max_examples=150, deadline=None)
@given(st.lists(_soup, max_size=25), st.integers(min_value=1, max_value=64), st.booleans())
def test_any_command_soup_gets_replies_never_a_crash(
    lines: list[bytes], split: int, tls: bool
) -> None:
    data = b"".join(lines)
    chunks = [data[i : i + split] for i in range(0, len(data), split)]
    out, svc, _ = run(chunks, svc=services(max_errors=1000), tls=tls)
    assert "4.3.0 Internal error" not in out
    for line in out.split("\r\n")[:-1]:
        assert re.fullmatch(r"\d{3}[ -].*", line), line
    # Every staged message ends delivered or aborted.
    delivered = len(svc.deliverer.delivered)
    aborted = sum(s.aborted for s in svc.deliverer.staged)
    assert delivered + aborted == len(svc.deliverer.staged)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=10))
def test_any_bytes_get_replies_never_a_crash(chunks: list[bytes]) -> None:
    out, _, _ = run([b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\n", *chunks])
    assert "4.3.0 Internal error" not in out


def test_disk_full_while_writing_is_452_after_draining() -> None:
    svc = services()
    real_stage = svc.deliverer.stage

    def stage() -> FakeStaged:
        staged = real_stage()
        writes = 0
        original = staged.write

        def write(data: bytes) -> None:
            nonlocal writes
            writes += 1
            if writes > 1:
                raise OSError(28, "No space left on device")
            original(data)

        staged.write = write  # type: ignore[method-assign]
        return staged

    svc.deliverer.stage = stage  # type: ignore[method-assign]
    out, _, _ = run([b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n",
                     b"body\r\n", b"more\r\n.\r\nNOOP\r\n"], svc=svc)
    assert codes(out)[-2:] == ["452 4.3.1", "250 2.0.0"]
    assert svc.deliverer.staged[0].aborted
    assert svc.deliverer.delivered == []
