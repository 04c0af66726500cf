"""Every SMTP limit of docs/security.md: the reply a client sees when it reaches the limit, and
that the server goes on serving another client meanwhile (a session open before, used while the
offender is still connected) and after (a new connection).

The replies alone are also covered in test_smtp_limits.py (size, lines, recipients, errors,
idle and data timeouts, per-IP limit); these add the other clients, and the limits added for
issue 6 (command deadline, session time, AUTH failures, commands per second, total).
"""

from __future__ import annotations

import base64
import smtplib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from smtp_wire import ALICE, RunningServer, Wire, add_accounts, stored_messages

Factory = object  # tests/conftest.py's ServerFactory (not importable: no package)
FAST_AUTH = {"MAILWRIGHT_AUTH_FAILURE_BASE_DELAY": "0.01",
             "MAILWRIGHT_AUTH_FAILURE_MAX_DELAY": "0.02"}


def make(factory: Factory, **settings: str) -> RunningServer:
    env = {**FAST_AUTH, **{f"MAILWRIGHT_SMTP_{k.upper()}": v for k, v in settings.items()}}
    return add_accounts(factory(env))  # type: ignore[operator]


_OPEN: list[Wire] = []


@pytest.fixture(autouse=True)
def _close_sessions() -> Iterator[None]:
    """Every Wire a test opened is closed after it, whatever happened."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def connect(srv: RunningServer) -> Wire:
    w = Wire(srv.host, srv.port("smtp"))
    _OPEN.append(w)
    return w


def session(srv: RunningServer) -> Wire:
    w = connect(srv)
    w.expect(220)
    w.send(b"EHLO client.example\r\n").expect(250)
    return w


@pytest.fixture
def small(server_factory: Factory) -> RunningServer:
    return make(server_factory, max_message_size="2000", max_data_line="200",
                max_recipients="2", max_errors="3", max_auth_failures="2")


@pytest.fixture
def bystander(small: RunningServer) -> Iterator[Wire]:
    """A session opened before the offender's; each test uses it while the offender is still
    connected, and a new client is served after the test."""
    w = session(small)
    yield w
    w.close()
    assert served(small)


def served(srv: RunningServer, source: str = "127.0.0.1") -> bool:
    """A complete, ordinary delivery by smtplib (a message to alice)."""
    before = len(stored_messages(srv, ALICE))
    with smtplib.SMTP(srv.host, srv.port("smtp"), timeout=10,
                      source_address=(source, 0)) as client:
        client.sendmail("other@remote.example", [ALICE], b"Subject: other\r\n\r\nfine\r\n")
    return len(stored_messages(srv, ALICE)) == before + 1


def still_served(w: Wire) -> None:
    w.send(b"NOOP\r\n").expect(250)


def transaction(w: Wire) -> None:
    w.send(b"MAIL FROM:<x@remote.example>\r\n").expect(250)
    w.send(b"RCPT TO:<alice@example.test>\r\n").expect(250)


def test_command_line_limit(small: RunningServer, bystander: Wire) -> None:
    w = session(small)
    w.send(b"NOOP " + b"a" * 2000 + b"\r\n").expect(500, "5.5.2")
    still_served(bystander)
    still_served(w)  # the line was dropped, the session is in step


def test_data_line_limit(small: RunningServer, bystander: Wire) -> None:
    w = session(small)
    transaction(w)
    w.send(b"DATA\r\n").expect(354)
    w.send(b"Subject: x\r\n" + b"y" * 300 + b"\r\n.\r\n").expect(500, "5.5.2")
    still_served(bystander)
    still_served(w)


@pytest.mark.parametrize("how", ["DATA", "BDAT", "SIZE="])
def test_message_size_limit(small: RunningServer, bystander: Wire, how: str) -> None:
    w = session(small)
    if how == "SIZE=":
        w.send(b"MAIL FROM:<x@remote.example> SIZE=2001\r\n").expect(552, "5.3.4")
    else:
        transaction(w)
        if how == "DATA":
            w.send(b"DATA\r\n").expect(354)
            w.send((b"z" * 98 + b"\r\n") * 30 + b".\r\n")
        else:  # RFC 3030: the chunk is read whole, then refused
            w.send(b"BDAT 3000 LAST\r\n" + b"z" * 3000)
        w.expect(552, "5.3.4")
    still_served(bystander)
    still_served(w)
    assert stored_messages(small, ALICE) == []


def test_recipient_limit(small: RunningServer, bystander: Wire) -> None:
    w = session(small)
    transaction(w)
    w.send(b"RCPT TO:<bob@example.test>\r\n").expect(250)
    w.send(b"RCPT TO:<alice@example.test>\r\n").expect(452, "4.5.3")
    still_served(bystander)


def test_error_limit(small: RunningServer, bystander: Wire) -> None:
    w = session(small)
    w.send(b"XX1\r\nXX2\r\nXX3\r\n")
    for _ in range(3):
        w.expect(500, "5.5.2")
    w.expect(421, "4.7.0")
    assert w.closed()
    still_served(bystander)


def test_auth_failure_limit(small: RunningServer, bystander: Wire) -> None:
    w = session(small)
    bad = base64.b64encode(b"\0alice@example.test\0wrong")
    w.send(b"AUTH PLAIN " + bad + b"\r\n").expect(535, "5.7.8")
    still_served(bystander)
    w.send(b"AUTH PLAIN " + bad + b"\r\n").expect(535, "5.7.8")
    lines = w.expect(421, "4.7.0")
    assert "authentication failures" in lines[-1]
    assert w.closed()
    still_served(bystander)


def test_commands_per_second_paces_one_client_only(server_factory: Factory) -> None:
    srv = make(server_factory, max_commands_per_second="20")
    flooder, other = session(srv), session(srv)
    elapsed: list[float] = []

    def flood() -> None:
        started = time.monotonic()
        flooder.send(b"NOOP\r\n" * 60)  # pipelined: 3 seconds' worth at 20 per second
        for _ in range(60):
            flooder.expect(250)  # slowed down, never refused
        elapsed.append(time.monotonic() - started)

    thread = threading.Thread(target=flood)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    still_served(other)
    assert time.monotonic() - started < 0.5  # not queued behind the flood
    thread.join(15)
    assert elapsed
    assert elapsed[0] >= 1.0  # at least two one-second waits, whatever the phase
    flooder.close()
    other.close()


def trickle(w: Wire, data: bytes, interval: float) -> threading.Thread:
    """Send `data` a byte every `interval` seconds from a thread (slowloris)."""

    def run() -> None:
        try:
            for ch in data:
                w.send(bytes([ch]))
                time.sleep(interval)
        except OSError:
            pass  # closed by the server: what the test expects

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("slowloris", [False, True])
def test_command_deadline(server_factory: Factory, slowloris: bool) -> None:
    """command_timeout bounds the whole next command line: silence and a byte every 0.2 s
    (slowloris) both get 421 4.4.2 after 1 s, while a client sending commands is served."""
    srv = make(server_factory, command_timeout="1")
    w, other = session(srv), session(srv)
    started = time.monotonic()
    if slowloris:
        trickle(w, b"NOOP and more", 0.2)
    for _ in range(4):
        time.sleep(0.2)
        still_served(other)
    w.expect(421, "4.4.2")
    assert time.monotonic() - started < 3
    assert w.closed()
    still_served(other)
    other.close()
    assert served(srv)


def test_session_time_limit(server_factory: Factory) -> None:
    srv = make(server_factory, max_session_time="1.5")
    w = session(srv)
    trickle(w, b"NOOP\r\n" * 100, 0.01)  # busy all along: only the session limit applies
    time.sleep(0.7)
    other = session(srv)  # its own 1.5 s start later
    started = time.monotonic()
    while True:
        code, lines = w.reply()
        if code != 250:
            break
        assert time.monotonic() - started < 3
    assert code == 421
    assert lines[-1].startswith("4.4.2 Session time limit")
    assert w.closed()
    still_served(other)
    other.close()


def test_connections_per_ip(server_factory: Factory) -> None:
    srv = make(server_factory, max_connections_per_ip="2")
    held = [session(srv), session(srv)]
    refused = connect(srv)
    refused.expect(421, "4.7.0")
    assert refused.closed()
    assert served(srv, source="127.0.0.2")  # another address, at the same time
    still_served(held[0])
    for w in held:
        w.close()


def test_connections_in_total_per_protocol(server_factory: Factory) -> None:
    srv = make(server_factory, max_connections="2", max_connections_per_ip="0")
    held = [session(srv), session(srv)]
    with socket.create_connection((srv.host, srv.port("smtp")), source_address=("127.0.0.3", 0),
                                  timeout=10) as sock:
        assert sock.recv(1024).startswith(b"421 ")
    # The limit is SMTP's: POP3 and IMAP go on serving.
    with socket.create_connection((srv.host, srv.port("pop3")), timeout=10) as sock:
        assert sock.recv(1024).startswith(b"+OK")
    with socket.create_connection((srv.host, srv.port("imap")), timeout=10) as sock:
        assert sock.recv(1024).startswith(b"* OK")
    held[0].send(b"QUIT\r\n").expect(221)
    held[0].close()
    deadline = time.monotonic() + 5
    while srv.call(lambda: srv.server.active_sessions) > 1:  # the slot is released
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert served(srv)
    held[1].close()
