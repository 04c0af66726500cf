"""STARTTLS command injection (CVE-2011-0411; RFC 3207 4.2, RFC 2595 3.1, RFC 9051 6.2.1): a man
in the middle appends plaintext commands to the client's STARTTLS / STLS in the same packet. If
the server kept them buffered, it would run them inside the TLS session, as if the client had
sent them there (an injected AUTH or MAIL, say). On all three protocols they must be discarded:
the server's first words after the handshake answer the client's first TLS command, and nothing
the attacker sent has happened.

Passwords are refused without TLS here (allow_plaintext_loopback=false), so an injected login
could only succeed by being executed inside TLS.
"""

from __future__ import annotations

import base64
import ssl
from typing import Any

import pytest
from access_wire import Line, add_account

RunningServer = Any

ALICE, PASSWORD = "alice@example.test", "injection-test-password"
PLAIN = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()


@pytest.fixture
def srv(server_factory: Any) -> RunningServer:
    server = server_factory({"MAILWRIGHT_AUTH_ALLOW_PLAINTEXT_LOOPBACK": "false"})
    add_account(server, ALICE, PASSWORD)
    return server


def handshake(c: Line, server: RunningServer) -> None:
    c.starttls(server.ssl_context)
    # An executed injection would answer now, unasked; the server must wait for us.
    assert c.silent(0.5), f"unsolicited data after the handshake: {c.buf!r}"


SMTP_INJECTIONS = [
    pytest.param("RSET\r\n", id="rset"),
    pytest.param("NOOP\r\nNOOP\r\n", id="two-noops"),
    pytest.param("EHLO evil.test\r\nMAIL FROM:<evil@remote.test>\r\n", id="ehlo-mail"),
    pytest.param(f"EHLO evil.test\r\nAUTH PLAIN {PLAIN}\r\n", id="auth"),
]


@pytest.mark.parametrize("listener", ["smtp", "submission"])
@pytest.mark.parametrize("injected", SMTP_INJECTIONS)
def test_smtp_starttls_discards_pipelined_commands(
    srv: RunningServer, listener: str, injected: str
) -> None:
    with Line(srv.host, srv.port(listener)) as c:
        assert c.smtp_reply()[0] == 220
        c.send(b"EHLO client.test\r\n")
        assert c.smtp_reply()[0] == 250
        c.send("STARTTLS\r\n" + injected)  # one write: one packet on loopback
        assert c.smtp_reply()[0] == 220
        handshake(c, srv)
        c.send(b"EHLO client.test\r\n")
        code, _ = c.smtp_reply()
        assert code == 250
        # Neither an injected MAIL nor an injected AUTH took effect.
        c.send(b"RCPT TO:<alice@example.test>\r\n")
        assert c.smtp_reply()[0] == 503  # no MAIL transaction
        c.send(b"MAIL FROM:<alice@example.test>\r\n")
        code, _ = c.smtp_reply()
        assert code == (250 if listener == "smtp" else 530)  # submission: not authenticated
        c.send(b"QUIT\r\n")
        assert c.smtp_reply()[0] == 221


def test_smtp_injection_in_a_second_packet_never_runs(srv: RunningServer) -> None:
    """Plaintext that arrives after the 220 was sent meets the TLS layer: the handshake fails
    (or, if the server read it with STARTTLS, it is discarded); either way it never runs."""
    with Line(srv.host, srv.port("smtp")) as c:
        assert c.smtp_reply()[0] == 220
        c.send(b"EHLO client.test\r\n")
        assert c.smtp_reply()[0] == 250
        c.send(b"STARTTLS\r\n")
        c.send(f"EHLO evil.test\r\nAUTH PLAIN {PLAIN}\r\n")
        assert c.smtp_reply()[0] == 220
        try:
            handshake(c, srv)
        except (ssl.SSLError, ConnectionError, EOFError):
            return  # the handshake failed on the plaintext: nothing ran
        c.send(b"EHLO client.test\r\n")
        assert c.smtp_reply()[0] == 250
        c.send(b"MAIL FROM:<alice@example.test>\r\n")
        assert c.smtp_reply()[0] == 250


POP3_INJECTIONS = [
    pytest.param("CAPA\r\n", id="capa"),
    pytest.param("NOOP\r\n", id="noop"),
    pytest.param(f"USER {ALICE}\r\nPASS {PASSWORD}\r\n", id="user-pass"),
    pytest.param(f"AUTH PLAIN {PLAIN}\r\n", id="auth"),
]


@pytest.mark.parametrize("injected", POP3_INJECTIONS)
def test_pop3_stls_discards_pipelined_commands(srv: RunningServer, injected: str) -> None:
    with Line(srv.host, srv.port("pop3")) as c:
        assert c.line().startswith(b"+OK")
        c.send("STLS\r\n" + injected)
        assert c.line().startswith(b"+OK")
        handshake(c, srv)
        c.send(b"STAT\r\n")
        assert c.line().startswith(b"-ERR")  # not logged in: the injected login never ran
        c.send(b"QUIT\r\n")
        assert c.line().startswith(b"+OK")


IMAP_INJECTIONS = [
    pytest.param("b NOOP\r\n", id="noop"),
    pytest.param("b CAPABILITY\r\nc NOOP\r\n", id="capability-noop"),
    pytest.param(f'b LOGIN {ALICE} "{PASSWORD}"\r\n', id="login"),
    pytest.param(f"b AUTHENTICATE PLAIN {PLAIN}\r\n", id="authenticate"),
]


@pytest.mark.parametrize("injected", IMAP_INJECTIONS)
def test_imap_starttls_discards_pipelined_commands(srv: RunningServer, injected: str) -> None:
    with Line(srv.host, srv.port("imap")) as c:
        assert c.line().startswith(b"* OK")
        c.send("a STARTTLS\r\n" + injected)
        assert c.imap_until("a")[-1].startswith(b"a OK")
        handshake(c, srv)
        c.send(b"d SELECT INBOX\r\n")
        reply = c.imap_until("d")
        assert len(reply) == 1, reply
        assert reply[0].startswith(b"d BAD"), reply  # not authenticated
        c.send(b"e LOGOUT\r\n")
        assert c.imap_until("e")[-1].startswith(b"e OK")
