"""MX role: the tutorial flow, local delivery, relay policy, trace headers, stored bytes."""

from __future__ import annotations

import smtplib

import pytest
from smtp_wire import ALICE, ALICE_PW, BOB, RunningServer, Wire, body_of, stored_messages


def test_ehlo_advertises_extensions(wire: Wire) -> None:
    lines = wire.send(b"EHLO client.example\r\n").expect(250)
    assert lines[0].startswith("mail.example.test")
    keywords = {line.split(" ")[0] for line in lines[1:]}
    assert {"PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "STARTTLS",
            "AUTH", "CHUNKING", "DSN", "HELP"} <= keywords
    assert "AUTH PLAIN LOGIN" in lines  # loopback: plaintext allowed by default
    assert f"SIZE {50 * 1024 * 1024}" in lines


def test_helo_works_without_enhanced_codes(wire: Wire) -> None:
    wire.send(b"HELO client.example\r\n").expect(250)
    wire.send(b"NOOP\r\n")
    assert wire.reply() == (250, ["OK"])


def test_tutorial_connect_login_sendmail(mx: RunningServer) -> None:
    client = smtplib.SMTP()
    client.connect(mx.host, mx.port("smtp"))
    try:
        client.login(ALICE, ALICE_PW)
        refused = client.sendmail(ALICE, [BOB], b"Subject: tutorial\r\n\r\nHello Bob\r\n")
        assert refused == {}
    finally:
        client.quit()
    [stored] = stored_messages(mx, BOB)
    assert stored.startswith(f"Return-Path: <{ALICE}>\r\nReceived: from ".encode())
    assert b"with ESMTPA id " in stored  # RFC 3848: authenticated, not TLS
    assert f"for <{BOB}>".encode() in stored
    assert body_of(stored) == b"Subject: tutorial\r\n\r\nHello Bob\r\n"


def test_unauthenticated_local_delivery_is_stored_exactly(mx: RunningServer) -> None:
    body = b"Subject: exact\r\n\r\n.leading dot\r\n..two\r\n\r\ntrailing \r\nend"
    with smtplib.SMTP(mx.host, mx.port("smtp")) as client:
        client.sendmail("someone@remote.example", [ALICE], body)
    [stored] = stored_messages(mx, ALICE)
    assert b"with ESMTP id " in stored
    assert body_of(stored) == body + b"\r\n"  # smtplib adds the final CRLF


def test_one_copy_for_several_recipients_no_for_clause(mx: RunningServer) -> None:
    with smtplib.SMTP(mx.host, mx.port("smtp")) as client:
        client.sendmail("x@remote.example", [ALICE, BOB], b"Subject: both\r\n\r\nhi\r\n")
    [a] = stored_messages(mx, ALICE)
    [b] = stored_messages(mx, BOB)
    assert a == b
    assert b"\tfor <" not in a


def test_relay_refused_without_auth(wire: Wire) -> None:
    wire.send(b"EHLO c\r\n").expect(250)
    wire.send(b"MAIL FROM:<x@remote.example>\r\n").expect(250, "2.1.0")
    wire.send(b"RCPT TO:<victim@elsewhere.example>\r\n").expect(554, "5.7.1")
    # Percent hacks and source routes name the local domain or are dropped: never relayed.
    wire.send(b"RCPT TO:<victim%elsewhere.example@example.test>\r\n").expect(550, "5.1.1")
    wire.send(b"RCPT TO:<@example.test:victim@elsewhere.example>\r\n").expect(554, "5.7.1")
    wire.send(b"DATA\r\n").expect(503, "5.5.1")


def test_relay_allowed_when_authenticated(mx: RunningServer) -> None:
    with smtplib.SMTP(mx.host, mx.port("smtp")) as client:
        client.login(ALICE, ALICE_PW)
        assert client.sendmail(ALICE, ["friend@remote.example"], b"Subject: out\r\n\r\nx\r\n") == {}
    assert mx.store.queue_size() == 1


def test_unknown_local_user_550_511(wire: Wire) -> None:
    wire.send(b"EHLO c\r\nMAIL FROM:<x@remote.example>\r\n")
    wire.expect(250)
    wire.expect(250)
    wire.send(b"RCPT TO:<nobody@example.test>\r\n").expect(550, "5.1.1")
    wire.send(b"RCPT TO:<ALICE@Example.TEST>\r\n").expect(250, "2.1.5")


def test_smtplib_reports_refused_recipient(mx: RunningServer) -> None:
    with smtplib.SMTP(mx.host, mx.port("smtp")) as client:
        refused = client.sendmail("x@remote.example", [ALICE, "ghost@example.test"], b"\r\nx\r\n")
    assert refused == {"ghost@example.test": (550, b"5.1.1 No such user here")}


@pytest.mark.parametrize(
    ("line", "code", "enhanced"),
    [
        (b"FOO\r\n", 500, "5.5.2"),
        (b"MAIL FROM:<a@b.example> BOGUS=1\r\n", 555, "5.5.4"),
        (b"RCPT TO:<a@b.example>\r\n", 503, "5.5.1"),
        (b"DATA\r\n", 503, "5.5.1"),
        (b"VRFY alice\r\n", 252, "2.5.2"),
        (b"EXPN list\r\n", 502, "5.5.1"),
        (b"HELP\r\n", 214, "2.0.0"),
        (b"NOOP\r\n", 250, "2.0.0"),
        (b"RSET\r\n", 250, "2.0.0"),
        (b"STARTTLS now\r\n", 501, "5.5.4"),
    ],
)
def test_single_command_replies(wire: Wire, line: bytes, code: int, enhanced: str) -> None:
    wire.send(b"EHLO c\r\n").expect(250)
    wire.send(line).expect(code, enhanced)
    wire.send(b"QUIT\r\n").expect(221, "2.0.0")


def test_mail_before_ehlo_is_503(wire: Wire) -> None:
    wire.send(b"MAIL FROM:<a@b.example>\r\n").expect(503)


def test_nested_mail_is_503(wire: Wire) -> None:
    wire.send(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nMAIL FROM:<a@b.example>\r\n")
    wire.expect(250)
    wire.expect(250, "2.1.0")
    wire.expect(503, "5.5.1")


def test_postmaster_without_domain_is_accepted_syntax(wire: Wire) -> None:
    wire.send(b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\n")
    wire.expect(250)
    wire.expect(250, "2.1.0")
    code, _ = wire.reply()
    assert code in (250, 550, 554)  # depends on whether postmaster@hostname is local


def test_smtputf8_address_needs_the_parameter(mx: RunningServer) -> None:
    mx.add_account("jörg@example.test", "pw-for-jörg-123")
    w = Wire(mx.host, mx.port("smtp"))
    try:
        w.expect(220)
        w.send(b"EHLO c\r\n").expect(250)
        w.send("MAIL FROM:<jörg@remote.example>\r\n".encode()).expect(553, "5.6.7")
        w.send("MAIL FROM:<jörg@remote.example> SMTPUTF8\r\n".encode()).expect(250)
        w.send("RCPT TO:<jörg@example.test>\r\n".encode()).expect(250, "2.1.5")
        w.send(b"DATA\r\n").expect(354)
        w.send("Subject: grüße\r\n\r\nü\r\n.\r\n".encode()).expect(250, "2.0.0")
    finally:
        w.close()
    [stored] = stored_messages(mx, "jörg@example.test")
    assert b"with UTF8SMTP id" in stored
    assert body_of(stored) == "Subject: grüße\r\n\r\nü\r\n".encode()


def test_dsn_parameters_are_accepted(wire: Wire) -> None:
    wire.send(b"EHLO c\r\n").expect(250)
    wire.send(b"MAIL FROM:<x@remote.example> RET=HDRS ENVID=abc123 BODY=8BITMIME\r\n").expect(250)
    wire.send(b"RCPT TO:<alice@example.test> NOTIFY=FAILURE,DELAY "
              b"ORCPT=rfc822;alice@example.test\r\n").expect(250, "2.1.5")
    wire.send(b"DATA\r\n").expect(354)
    wire.send(b"Subject: dsn\r\n\r\nx\r\n.\r\n").expect(250, "2.0.0")


def test_bare_postmaster_is_always_accepted(mx: RunningServer) -> None:
    """RFC 5321 4.5.1: <Postmaster> without a domain reaches a person (the first account)."""
    with smtplib.SMTP(mx.host, mx.port("smtp")) as client:
        client.sendmail("x@remote.example", ["Postmaster"], b"Subject: abuse report\r\n\r\nhi\r\n")
        client.sendmail("x@remote.example", ["postmaster@example.test"],
                        b"Subject: domain postmaster\r\n\r\nhi\r\n")
    subjects = b"".join(stored_messages(mx, ALICE))
    assert b"Subject: abuse report" in subjects
    assert b"Subject: domain postmaster" in subjects
