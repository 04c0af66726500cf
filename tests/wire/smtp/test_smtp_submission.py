"""Submission roles (RFC 6409, 8314), STARTTLS (RFC 3207) and AUTH (RFC 4954)."""

from __future__ import annotations

import base64
import smtplib

import pytest
from smtp_wire import (
    ALICE,
    ALICE_PW,
    BOB,
    BOB_PW,
    RunningServer,
    Wire,
    add_accounts,
    stored_messages,
)


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def test_submission_requires_auth_before_mail(mx: RunningServer) -> None:
    w = Wire(mx.host, mx.port("submission"))
    try:
        w.expect(220)
        w.send(b"EHLO c\r\n").expect(250)
        w.send(b"MAIL FROM:<alice@example.test>\r\n").expect(530, "5.7.0")
    finally:
        w.close()


def test_submission_starttls_login_send(mx: RunningServer) -> None:
    with smtplib.SMTP(mx.host, mx.port("submission")) as client:
        client.starttls(context=mx.ssl_context)
        client.login(ALICE, ALICE_PW)
        client.sendmail(ALICE, [BOB, "far@remote.example"], b"Subject: sub\r\n\r\nx\r\n")
    [stored] = stored_messages(mx, BOB)
    assert b"with ESMTPSA id " in stored
    assert b"(using TLSv1." in stored
    assert mx.store.queue_size() == 1


def test_submissions_implicit_tls(mx: RunningServer) -> None:
    with smtplib.SMTP_SSL(mx.host, mx.port("submissions"), context=mx.ssl_context) as client:
        code, features = client.ehlo()
        assert code == 250
        assert b"STARTTLS" not in features  # RFC 3207 4.2: not offered inside TLS
        assert b"AUTH PLAIN LOGIN" in features
        client.login(BOB, BOB_PW)
        client.sendmail(BOB, [ALICE], b"Subject: tls\r\n\r\nx\r\n")
    [stored] = stored_messages(mx, ALICE)
    assert b"with ESMTPSA id " in stored


def test_sender_must_be_owned(mx: RunningServer) -> None:
    mx.add_alias("a.liddell@example.test", ALICE)
    with smtplib.SMTP(mx.host, mx.port("submission")) as client:
        client.starttls(context=mx.ssl_context)
        client.login(ALICE, ALICE_PW)
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            client.sendmail(BOB, [ALICE], b"\r\nspoof\r\n")
        assert (info.value.smtp_code, info.value.smtp_error[:5]) == (553, b"5.7.1")
        client.rset()
        assert client.sendmail("a.liddell@example.test", [BOB], b"\r\nok\r\n") == {}


def test_auth_plain_with_initial_response(wire: Wire) -> None:
    wire.send(b"EHLO c\r\n").expect(250)
    wire.send(b"AUTH PLAIN " + b64(b"\0" + ALICE.encode() + b"\0" + ALICE_PW.encode()) + b"\r\n")
    wire.expect(235, "2.7.0")
    wire.send(b"AUTH PLAIN =\r\n").expect(503, "5.5.1")  # already authenticated


def test_auth_plain_with_challenge(wire: Wire) -> None:
    wire.send(b"EHLO c\r\nAUTH PLAIN\r\n").expect(250)
    assert wire.reply() == (334, [""])
    wire.send(b64(b"\0" + ALICE.encode() + b"\0" + ALICE_PW.encode()) + b"\r\n").expect(235)


def test_auth_login(wire: Wire) -> None:
    wire.send(b"EHLO c\r\nAUTH LOGIN\r\n").expect(250)
    assert wire.reply() == (334, ["VXNlcm5hbWU6"])
    wire.send(b64(ALICE.encode()) + b"\r\n")
    assert wire.reply() == (334, ["UGFzc3dvcmQ6"])
    wire.send(b64(ALICE_PW.encode()) + b"\r\n").expect(235, "2.7.0")


def test_auth_wrong_password_535(wire: Wire) -> None:
    wire.send(b"EHLO c\r\n").expect(250)
    wire.send(b"AUTH PLAIN " + b64(b"\0" + ALICE.encode() + b"\0wrong") + b"\r\n")
    wire.expect(535, "5.7.8")


def test_auth_cancel_with_star(wire: Wire) -> None:
    wire.send(b"EHLO c\r\nAUTH LOGIN\r\n").expect(250)
    wire.expect(334)
    wire.send(b"*\r\n").expect(501, "5.0.0")
    wire.send(b"NOOP\r\n").expect(250)


@pytest.mark.parametrize(
    ("line", "code", "enhanced"),
    [
        (b"AUTH PLAIN not-base64!\r\n", 501, "5.5.2"),
        (b"AUTH PLAIN " + b64(b"only-one-field") + b"\r\n", 501, "5.5.2"),
        (b"AUTH CRAM-MD5\r\n", 504, "5.5.4"),
    ],
)
def test_auth_malformed(wire: Wire, line: bytes, code: int, enhanced: str) -> None:
    wire.send(b"EHLO c\r\n").expect(250)
    wire.send(line).expect(code, enhanced)


def test_auth_before_ehlo_and_during_transaction_is_503(wire: Wire) -> None:
    wire.send(b"AUTH PLAIN =\r\n").expect(503)
    wire.send(b"EHLO c\r\nMAIL FROM:<x@remote.example>\r\nAUTH PLAIN =\r\n")
    wire.expect(250)
    wire.expect(250)
    wire.expect(503, "5.5.1")


@pytest.fixture
def strict(server_factory: object) -> RunningServer:
    """A server where plaintext AUTH is not allowed even on loopback (as on a public address)."""
    srv = server_factory({"MAILWRIGHT_AUTH_ALLOW_PLAINTEXT_LOOPBACK": "false"})  # type: ignore[operator]
    return add_accounts(srv)


def test_plaintext_auth_refused_538_and_not_advertised(strict: RunningServer) -> None:
    w = Wire(strict.host, strict.port("submission"))
    try:
        w.expect(220)
        lines = w.send(b"EHLO c\r\n").expect(250)
        assert "STARTTLS" in lines
        assert not any(line.startswith("AUTH") for line in lines)
        w.send(b"AUTH PLAIN " + b64(b"\0" + ALICE.encode() + b"\0" + ALICE_PW.encode()) + b"\r\n")
        w.expect(538, "5.7.11")
        w.send(b"STARTTLS\r\n").expect(220, "2.0.0")
        w.starttls(strict.ssl_context, strict.host)
        lines = w.send(b"EHLO c\r\n").expect(250)
        assert "AUTH PLAIN LOGIN" in lines
        assert "STARTTLS" not in lines
        w.send(b"AUTH PLAIN " + b64(b"\0" + ALICE.encode() + b"\0" + ALICE_PW.encode()) + b"\r\n")
        w.expect(235, "2.7.0")
    finally:
        w.close()


def test_smtplib_login_over_starttls_on_strict_server(strict: RunningServer) -> None:
    with smtplib.SMTP(strict.host, strict.port("smtp")) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        client.starttls(context=strict.ssl_context)
        client.login(ALICE, ALICE_PW)


def test_starttls_discards_pipelined_commands(mx: RunningServer) -> None:
    """RFC 3207 4.2 / CVE-2011-0411: nothing sent before the handshake is executed after it."""
    w = Wire(mx.host, mx.port("submission"))
    try:
        w.expect(220)
        w.send(b"EHLO c\r\n").expect(250)
        w.send(b"STARTTLS\r\nNOOP\r\n")
        w.expect(220, "2.0.0")
        assert w.buf == b""
        w.starttls(mx.ssl_context, mx.host)
        # The first reply inside TLS must answer our EHLO, not the injected NOOP.
        lines = w.send(b"EHLO again\r\n").expect(250)
        assert lines[0].startswith("mail.example.test Hello again")
        # And the session was forgotten: MAIL needs EHLO (done) and AUTH (not yet).
        w.send(b"MAIL FROM:<alice@example.test>\r\n").expect(530, "5.7.0")
    finally:
        w.close()


def test_starttls_inside_tls_is_refused(mx: RunningServer) -> None:
    w = Wire(mx.host, mx.port("submissions"), tls=mx.ssl_context)
    try:
        w.expect(220)
        w.send(b"EHLO c\r\nSTARTTLS\r\n").expect(250)
        w.expect(503, "5.5.1")
    finally:
        w.close()


def test_smtplib_auth_login_with_initial_response(mx: RunningServer) -> None:
    """smtplib sends AUTH LOGIN <base64 user> (initial response), then answers one challenge."""
    with smtplib.SMTP(mx.host, mx.port("smtp")) as client:
        client.ehlo()
        client.user, client.password = ALICE, ALICE_PW
        code, _ = client.auth("LOGIN", client.auth_login)
        assert code == 235
