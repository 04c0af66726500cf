"""Open-relay matrix: every old way of asking a mail server to relay, over a real unauthenticated
connection to the MX listener ("smtp") and to submission, is refused, and nothing reaches the
outbound queue. A local domain written differently (case, trailing dot, IDN) stays local.

Why each trick once worked somewhere: the percent hack and bang paths were honoured by sendmail
rulesets (`user%remote@relay`, UUCP `remote!user`); source routes `@a,@b:user@c` were RFC 821
relaying; quoted local parts and `user@local@remote` confused parsers that split on the first
"@"; IP literals and case/trailing-dot/IDN spellings slipped past string comparisons of
"is this domain mine". Here only the domain decides (delivery/deliverer.py `resolve`), after
canonicalisation, and relaying needs an authenticated session.
"""

from __future__ import annotations

from typing import Any

import pytest
from access_wire import Line, add_account, password_hash

RunningServer = Any

ALICE, PASSWORD = "alice@example.test", "relay-test-password"
CAROL = "carol@bücher.example"  # a local account on an IDN domain (stored as xn--bcher-kva)
SENDER = "sender@remote.test"

# (RCPT path inside <>, expected reply on the MX listener). 554 5.7.1 relay denied: the domain
# is remote; 550 5.1.1: the domain is local, and no such user (the trick is just a strange
# local part); 501 5.1.3: not an address we accept at all; 553: non-ASCII without SMTPUTF8.
REMOTE_TRICKS = [
    pytest.param("user@remote.test", 554, id="plain-remote"),
    pytest.param("user%remote.test@example.test", 550, id="percent-hack"),
    pytest.param("user%remote.test@EXAMPLE.TEST.", 550, id="percent-hack-odd-local"),
    pytest.param("user%remote.test", 501, id="percent-hack-no-domain"),
    pytest.param("@a.test,@b.test:user@remote.test", 554, id="source-route"),
    pytest.param("@example.test:user@remote.test", 554, id="source-route-via-local"),
    pytest.param("@mail.example.test:user@remote.test", 554, id="source-route-via-us"),
    pytest.param('"user@remote.test"@example.test', 550, id="quoted-local-part"),
    pytest.param('"user%remote.test"@example.test', 550, id="quoted-percent"),
    pytest.param('"remote.test!user"@example.test', 550, id="quoted-bang"),
    pytest.param("user@example.test@remote.test", 501, id="local-at-remote"),
    pytest.param("user@remote.test@example.test", 501, id="remote-at-local"),
    pytest.param("remote.test!user@example.test", 550, id="bang-path-at-local"),
    pytest.param("remote.test!user", 501, id="bang-path"),
    pytest.param("user@[127.0.0.1]", 501, id="ipv4-literal-loopback"),
    pytest.param("user@[192.0.2.1]", 501, id="ipv4-literal-remote"),
    pytest.param("user@[IPv6:::1]", 501, id="ipv6-literal"),
    pytest.param("user%remote.test@[127.0.0.1]", 501, id="percent-at-literal"),
    pytest.param("user@REMOTE.TEST", 554, id="uppercase-remote"),
    pytest.param("user@remote.test.", 554, id="trailing-dot-remote"),
    pytest.param("user@Remote.Test.", 554, id="mixed-case-trailing-dot-remote"),
    pytest.param("user@bücher.test", 554, id="idn-utf8"),
    pytest.param("user@xn--bcher-kva.test", 554, id="idn-punycode"),
    pytest.param("user@XN--BCHER-KVA.TEST.", 554, id="idn-punycode-uppercase-dot"),
    pytest.param("user@remote\u3002test", 554, id="idn-ideographic-full-stop"),
    pytest.param("user@example.test.remote.test", 554, id="local-as-prefix"),
    pytest.param("user@remote-example.test", 554, id="local-as-suffix"),
    pytest.param("user@mail.example.test", 554, id="server-hostname-not-a-domain"),
    pytest.param("postmaster@remote.test", 554, id="remote-postmaster"),
    pytest.param("alice@example.test.remote.test", 554, id="local-user-remote-domain"),
]

# RCPT paths that name a local account however they are spelled: accepted and delivered here.
LOCAL_SPELLINGS = [
    pytest.param("alice@EXAMPLE.TEST", ALICE, id="uppercase-domain"),
    pytest.param("alice@example.test.", ALICE, id="trailing-dot"),
    pytest.param("ALICE@Example.Test.", ALICE, id="mixed-case-trailing-dot"),
    pytest.param("@remote.test,@b.test:alice@example.test", ALICE, id="source-route-dropped"),
    pytest.param("carol@bücher.example", CAROL, id="idn-utf8"),
    pytest.param("carol@xn--bcher-kva.example", CAROL, id="idn-punycode"),
    pytest.param("carol@BÜCHER.example.", CAROL, id="idn-uppercase-trailing-dot"),
]


@pytest.fixture
def mx(server_factory: Any) -> RunningServer:
    server = server_factory()
    add_account(server, ALICE, PASSWORD)
    add_account(server, CAROL, PASSWORD)
    return server


def inbox_count(server: RunningServer, address: str) -> int:
    account = server.store.get_account(address)
    assert account is not None
    return len(server.store.pop3_messages(account.id))


def nothing_delivered(server: RunningServer) -> None:
    assert server.store.queue_size() == 0, server.store.queue_entries()
    assert inbox_count(server, ALICE) == 0
    assert inbox_count(server, CAROL) == 0


def try_relay(server: RunningServer, listener: str, rcpt: str) -> tuple[int, int]:
    """(RCPT reply code, DATA reply code) of one unauthenticated attempt; sends a message if
    the server lets it."""
    utf8 = " SMTPUTF8" if not rcpt.isascii() else ""
    with Line(server.host, server.port(listener)) as c:
        assert c.smtp_reply()[0] == 220
        c.send(b"EHLO attacker.test\r\n")
        assert c.smtp_reply()[0] == 250
        c.send(f"MAIL FROM:<{SENDER}>{utf8}\r\n".encode())
        mail, _ = c.smtp_reply()
        c.send(f"RCPT TO:<{rcpt}>\r\n".encode())
        rcpt_code, _ = c.smtp_reply()
        c.send(b"DATA\r\n")
        data_code, _ = c.smtp_reply()
        if data_code == 354:
            c.send(b"Subject: relay?\r\n\r\nrelayed\r\n.\r\n")
            data_code, _ = c.smtp_reply()
        c.send(b"QUIT\r\n")
        assert c.smtp_reply()[0] == 221
    # Submission refuses MAIL without AUTH (RFC 6409 4.3, RFC 4954 6).
    assert mail == (250 if listener == "smtp" else 530)
    return rcpt_code, data_code


@pytest.mark.parametrize(("rcpt", "expected"), REMOTE_TRICKS)
def test_mx_refuses_relay_trick(mx: RunningServer, rcpt: str, expected: int) -> None:
    rcpt_code, data_code = try_relay(mx, "smtp", rcpt)
    assert rcpt_code == expected
    assert data_code in (503, 554)  # no valid recipient: nothing to send
    nothing_delivered(mx)


@pytest.mark.parametrize(("rcpt", "expected"), REMOTE_TRICKS)
def test_unauthenticated_submission_refuses_relay_trick(
    mx: RunningServer, rcpt: str, expected: int
) -> None:
    """Submission refuses MAIL (530 5.7.0), so every RCPT is out of sequence (503), or a
    syntax error (501) for what is no address at all."""
    rcpt_code, data_code = try_relay(mx, "submission", rcpt)
    assert rcpt_code == 503 or (expected == 501 and rcpt_code == 501)
    assert data_code == 503
    nothing_delivered(mx)


def test_non_ascii_remote_without_smtputf8_is_refused(mx: RunningServer) -> None:
    with Line(mx.host, mx.port("smtp")) as c:
        assert c.smtp_reply()[0] == 220
        c.send(f"EHLO a.test\r\nMAIL FROM:<{SENDER}>\r\nRCPT TO:<user@bücher.test>\r\n".encode())
        assert c.smtp_reply()[0] == 250
        assert c.smtp_reply()[0] == 250
        assert c.smtp_reply()[0] == 553
    nothing_delivered(mx)


@pytest.mark.parametrize(("rcpt", "owner"), LOCAL_SPELLINGS)
def test_local_domain_spellings_stay_local(mx: RunningServer, rcpt: str, owner: str) -> None:
    rcpt_code, data_code = try_relay(mx, "smtp", rcpt)
    assert (rcpt_code, data_code) == (250, 250)
    assert mx.store.queue_size() == 0
    assert inbox_count(mx, owner) == 1


def test_authenticated_submission_does_relay(mx: RunningServer) -> None:
    """The control experiment: the queue check above would see a relayed message."""
    import base64

    token = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
    assert password_hash(PASSWORD)
    with Line(mx.host, mx.port("submission")) as c:
        assert c.smtp_reply()[0] == 220
        c.send(f"EHLO a.test\r\nAUTH PLAIN {token}\r\n".encode())
        assert c.smtp_reply()[0] == 250
        assert c.smtp_reply()[0] == 235
        c.send(f"MAIL FROM:<{ALICE}>\r\nRCPT TO:<user@remote.test>\r\nDATA\r\n".encode())
        assert [c.smtp_reply()[0] for _ in range(3)] == [250, 250, 354]
        c.send(b"Subject: hi\r\n\r\nhello\r\n.\r\nQUIT\r\n")
        assert c.smtp_reply()[0] == 250
    assert mx.store.queue_size() == 1
