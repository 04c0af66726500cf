"""Limits with clear replies: size, line lengths, recipients, errors, timeouts; smuggling."""

from __future__ import annotations

import smtplib
import socket
import time

import pytest
from smtp_wire import ALICE, BOB, RunningServer, Wire, add_accounts, body_of, stored_messages


@pytest.fixture
def small(server_factory: object) -> RunningServer:
    srv = server_factory({  # type: ignore[operator]
        "MAILWRIGHT_SMTP_MAX_MESSAGE_SIZE": "2000",
        "MAILWRIGHT_SMTP_MAX_DATA_LINE": "200",
        "MAILWRIGHT_SMTP_MAX_RECIPIENTS": "2",
        "MAILWRIGHT_SMTP_MAX_ERRORS": "4",
        "MAILWRIGHT_SMTP_COMMAND_TIMEOUT": "0.5",
        "MAILWRIGHT_SMTP_DATA_TIMEOUT": "0.5",
    })
    return add_accounts(srv)


def start(srv: RunningServer) -> Wire:
    w = Wire(srv.host, srv.port("smtp"))
    w.expect(220)
    w.send(b"EHLO c\r\n").expect(250)
    return w


def test_mail_size_parameter_over_limit_552(small: RunningServer) -> None:
    w = start(small)
    try:
        w.send(b"MAIL FROM:<x@remote.example> SIZE=2001\r\n").expect(552, "5.3.4")
        w.send(b"MAIL FROM:<x@remote.example> SIZE=2000\r\n").expect(250)
    finally:
        w.close()


def test_message_over_size_is_drained_then_552(small: RunningServer) -> None:
    w = start(small)
    try:
        w.send(b"MAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        w.expect(250)
        w.expect(250)
        w.expect(354)
        w.send((b"x" * 100 + b"\r\n") * 50 + b".\r\n").expect(552, "5.3.4")
        w.send(b"NOOP\r\n").expect(250)  # still in step
    finally:
        w.close()
    assert stored_messages(small, ALICE) == []


def test_smtplib_too_big(small: RunningServer) -> None:
    with smtplib.SMTP(small.host, small.port("smtp")) as client, pytest.raises(
        smtplib.SMTPSenderRefused
    ) as info:
        client.sendmail("x@remote.example", [ALICE], b"x" * 5000)
    assert info.value.smtp_code == 552


def test_command_line_too_long_keeps_connection(wire: Wire) -> None:
    wire.send(b"EHLO c\r\n").expect(250)
    wire.send(b"NOOP " + b"a" * 5000 + b"\r\nNOOP\r\n")
    wire.expect(500, "5.5.2")
    wire.expect(250, "2.0.0")
    wire.send(b"MAIL FROM:<" + b"a" * 990 + b"@x.example>\r\n").expect(500, "5.5.2")
    wire.send(b"QUIT\r\n").expect(221)


def test_data_line_too_long_rejects_message(small: RunningServer) -> None:
    w = start(small)
    try:
        w.send(b"MAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        w.expect(250)
        w.expect(250)
        w.expect(354)
        w.send(b"ok\r\n" + b"y" * 500 + b"\r\n.\r\n").expect(500, "5.5.2")
        w.send(b"NOOP\r\n").expect(250)
    finally:
        w.close()


def test_too_many_recipients_452(small: RunningServer) -> None:
    w = start(small)
    try:
        w.send(b"MAIL FROM:<x@remote.example>\r\n").expect(250)
        w.send(b"RCPT TO:<alice@example.test>\r\n").expect(250)
        w.send(b"RCPT TO:<bob@example.test>\r\n").expect(250)
        w.send(b"RCPT TO:<alice@example.test>\r\n").expect(452, "4.5.3")
    finally:
        w.close()


def test_too_many_errors_421_and_close(small: RunningServer) -> None:
    w = start(small)
    try:
        w.send(b"BAD1\r\nBAD2\r\nBAD3\r\nBAD4\r\nNOOP\r\n")
        for _ in range(4):
            w.expect(500, "5.5.2")
        w.expect(421, "4.7.0")
        assert w.closed()
    finally:
        w.close()


def test_idle_timeout_421(small: RunningServer) -> None:
    w = start(small)
    try:
        started = time.monotonic()
        w.expect(421, "4.4.2")
        assert time.monotonic() - started < 5
        assert w.closed()
    finally:
        w.close()


def test_data_timeout_421(small: RunningServer) -> None:
    w = start(small)
    try:
        w.send(b"MAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        w.expect(250)
        w.expect(250)
        w.expect(354)
        w.send(b"Subject: half\r\n")
        w.expect(421, "4.4.2")
    finally:
        w.close()
    assert stored_messages(small, ALICE) == []


@pytest.mark.parametrize("smuggle", [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n"])
def test_smtp_smuggling_never_injects_a_second_message(mx: RunningServer, smuggle: bytes) -> None:
    """Regression, CVE-2023-51764: a bare-LF or bare-CR "end of data" must not end the message
    for us. Bare-LF variants are one message (normalised to CRLF); bare CR refuses it."""
    w = Wire(mx.host, mx.port("smtp"))
    try:
        w.expect(220)
        w.send(b"EHLO c\r\nMAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@example.test>\r\n")
        w.expect(250)
        w.expect(250)
        w.expect(250)
        w.send(b"DATA\r\n").expect(354)
        w.send(
            b"Subject: first" + smuggle
            + b"MAIL FROM:<ceo@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
            + b"Subject: smuggled\r\n\r\n.\r\n"
        )
        if b"\r." in smuggle or smuggle.startswith(b"\r."):
            w.expect(554, "5.6.0")
            expected_alice = 0
        else:
            w.expect(250)
            expected_alice = 1
        w.send(b"QUIT\r\n").expect(221)
    finally:
        w.close()
    stored = stored_messages(mx, ALICE)
    assert len(stored) == expected_alice
    for message in stored:
        assert b"Subject: smuggled" in body_of(message)  # inside the one message
    assert stored_messages(mx, BOB) == []


def test_sendmail_with_lf_only_bytes_is_accepted_as_crlf(mx: RunningServer) -> None:
    """smtplib.sendmail(..., msg.as_bytes()) sends LF-only lines: ordinary, so accepted."""
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"] = "lf only"
    msg.set_content(".starts with a dot\nsecond line\n")
    with smtplib.SMTP(mx.host, mx.port("smtp")) as client:
        client.sendmail("x@remote.example", [ALICE], msg.as_bytes())
    [stored] = stored_messages(mx, ALICE)
    body = body_of(stored)
    assert b"\r\n.starts with a dot\r\nsecond line\r\n" in body
    assert b"\n" not in body.replace(b"\r\n", b"")


def test_server_survives_a_rude_client(mx: RunningServer) -> None:
    rude = socket.create_connection((mx.host, mx.port("smtp")))
    rude.sendall(b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.test>\r\n"
                 b"DATA\r\n\x00\xff garbage half a messa")
    rude.close()
    garbage = socket.create_connection((mx.host, mx.port("smtp")))
    garbage.sendall(bytes(range(256)) * 40)
    garbage.close()
    with smtplib.SMTP(mx.host, mx.port("smtp")) as client:
        client.sendmail("x@remote.example", [ALICE], b"Subject: ok\r\n\r\nfine\r\n")
    [stored] = stored_messages(mx, ALICE)
    assert body_of(stored) == b"Subject: ok\r\n\r\nfine\r\n"


def test_connections_per_ip_limit_gets_421(server_factory: object) -> None:
    srv = server_factory({"MAILWRIGHT_SMTP_MAX_CONNECTIONS_PER_IP": "1"})  # type: ignore[operator]
    first = Wire(srv.host, srv.port("smtp"))
    try:
        first.expect(220)
        second = Wire(srv.host, srv.port("smtp"))
        try:
            second.expect(421, "4.7.0")
            assert second.closed()
        finally:
            second.close()
        first.send(b"NOOP\r\n").expect(250)  # the first one is unaffected
    finally:
        first.close()


def test_shutdown_tells_idle_clients_421(server_factory: object) -> None:
    srv = server_factory()  # type: ignore[operator]
    w = Wire(srv.host, srv.port("smtp"))
    try:
        w.expect(220)
        w.send(b"EHLO c\r\n").expect(250)
        srv.stop()
        w.expect(421, "4.3.2")
        assert w.closed()
    finally:
        w.close()
