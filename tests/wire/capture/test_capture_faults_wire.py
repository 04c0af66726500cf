"""Injected faults over the wire: per-address at RCPT and after DATA/BDAT, timeout@ (the
server never answers, the client gives up), server-wide rates and delay; none without capture."""

from __future__ import annotations

import smtplib
import socket
import time

import pytest
from capture_wire import CAPTURE_ENV, SENDER, RunningServer, box, captured, password_hash, send

from mailwright.capture import FaultSettings

BODY = b"Subject: fault test\r\n\r\nbody\r\n"


@pytest.mark.parametrize(
    ("local", "code"),
    [("temperror", 451), ("permerror", 550), ("code-452", 452), ("code-554", 554),
     ("TempError+order-7", 451)],
)
def test_fault_at_rcpt(capture_server: RunningServer, local: str, code: int) -> None:
    rcpt = f"{local}@example.com"
    with smtplib.SMTP(capture_server.host, capture_server.port("smtp"), timeout=10) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail(SENDER, [rcpt], BODY)
        assert refused.value.recipients[rcpt][0] == code
        # The session goes on: an ordinary recipient is still taken.
        client.sendmail(SENDER, ["ok@example.com"], BODY)
    assert [c.rcpts for c in captured(capture_server)] == [("ok@example.com",)]


def test_partial_rcpt_fault_keeps_the_other_recipients(capture_server: RunningServer) -> None:
    with smtplib.SMTP(capture_server.host, capture_server.port("smtp"), timeout=10) as client:
        refused = client.sendmail(SENDER, ["permerror@example.com", "ok@example.com"], BODY)
    assert refused == {"permerror@example.com": (550, b"5.1.1 No such user (injected by "
                                                      b"mailwright capture mode)")}
    assert [c.rcpts for c in captured(capture_server)] == [("ok@example.com",)]


@pytest.mark.parametrize(
    ("local", "code"),
    [("data-temperror", 451), ("data-permerror", 550), ("data-code-552", 552)],
)
def test_fault_after_data(capture_server: RunningServer, local: str, code: int) -> None:
    rcpts = ["ok@example.com", f"{local}@example.com"]
    with smtplib.SMTP(capture_server.host, capture_server.port("smtp"), timeout=10) as client:
        with pytest.raises(smtplib.SMTPDataError) as failed:
            client.sendmail(SENDER, rcpts, BODY)  # both RCPTs accepted, then DATA fails
        assert failed.value.smtp_code == code
        assert client.noop()[0] == 250
    assert captured(capture_server) == []


def test_fault_after_bdat(capture_server: RunningServer) -> None:
    with (
        socket.create_connection((capture_server.host, capture_server.port("smtp")), 10) as s,
        s.makefile("rb") as f,
    ):

        def reply() -> bytes:
            while True:
                line = f.readline()
                if line[3:4] != b"-":
                    return line

        reply()
        s.sendall(b"EHLO client.test\r\n")
        reply()
        s.sendall(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<data-code-554@example.com>\r\n")
        assert reply().startswith(b"250")
        assert reply().startswith(b"250")
        s.sendall(b"BDAT %d LAST\r\n" % len(BODY) + BODY)
        assert reply().startswith(b"554 5.7.1 ")
    assert captured(capture_server) == []


def test_timeout_at_rcpt_client_gives_up(capture_server: RunningServer) -> None:
    client = smtplib.SMTP(capture_server.host, capture_server.port("smtp"), timeout=10)
    try:
        client.ehlo()
        client.mail(SENDER)
        client.sock.settimeout(0.5)  # type: ignore[union-attr]
        started = time.monotonic()
        with pytest.raises((TimeoutError, smtplib.SMTPServerDisconnected)):
            client.rcpt("timeout@example.com")
        assert time.monotonic() - started >= 0.45
    finally:
        client.close()
    assert captured(capture_server) == []


def test_timeout_server_closes_after_its_command_timeout(server_factory: RunningServer) -> None:
    server = server_factory({**CAPTURE_ENV, "MAILWRIGHT_SMTP_COMMAND_TIMEOUT": "1.5"})
    with (
        socket.create_connection((server.host, server.port("smtp")), 10) as s,
        s.makefile("rb") as f,
    ):
        f.readline()
        s.sendall(b"HELO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<timeout@example.com>\r\n")
        assert f.readline().startswith(b"250")
        assert f.readline().startswith(b"250")
        started = time.monotonic()
        s.sendall(b"NOOP\r\n")  # ignored: no reply to anything any more
        rest = f.read()  # until the server closes
        elapsed = time.monotonic() - started
    assert rest.startswith(b"421 ")  # its own idle timeout, then close
    assert b"250" not in rest
    assert 1.0 <= elapsed < 5


def test_data_timeout_gives_no_reply_after_data(capture_server: RunningServer) -> None:
    client = smtplib.SMTP(capture_server.host, capture_server.port("smtp"), timeout=10)
    try:
        client.ehlo()
        client.mail(SENDER)
        assert client.rcpt("data-timeout@example.com")[0] == 250
        assert client.docmd("DATA")[0] == 354
        client.sock.settimeout(0.5)  # type: ignore[union-attr]
        client.send(BODY + b".\r\n")
        with pytest.raises((TimeoutError, smtplib.SMTPServerDisconnected)):
            client.getreply()
    finally:
        client.close()
    assert captured(capture_server) == []


def test_rates_one_fail_everything(capture_server: RunningServer) -> None:
    capture = box(capture_server)
    capture_server.call(capture.set_faults, FaultSettings(rcpt_fail_rate=1.0))
    with smtplib.SMTP(capture_server.host, capture_server.port("smtp"), timeout=10) as client:
        for i in range(5):
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                client.sendmail(SENDER, [f"r{i}@example.com"], BODY)
            assert refused.value.recipients[f"r{i}@example.com"][0] == 451
    capture_server.call(capture.set_faults, FaultSettings(data_fail_rate=1.0, fail_code=554))
    with smtplib.SMTP(capture_server.host, capture_server.port("smtp"), timeout=10) as client:
        for _ in range(3):
            with pytest.raises(smtplib.SMTPDataError) as failed:
                client.sendmail(SENDER, ["r@example.com"], BODY)
            assert failed.value.smtp_code == 554
    capture_server.call(capture.set_faults, FaultSettings())
    send(capture_server, ["fine@example.com"])
    assert [c.rcpts for c in captured(capture_server)] == [("fine@example.com",)]


def test_rates_from_the_configuration(server_factory: RunningServer) -> None:
    server = server_factory({**CAPTURE_ENV, "MAILWRIGHT_CAPTURE_RCPT_FAIL_RATE": "1",
                             "MAILWRIGHT_CAPTURE_FAIL_CODE": "450"})
    assert box(server).faults == FaultSettings(rcpt_fail_rate=1.0, fail_code=450)
    with (
        smtplib.SMTP(server.host, server.port("smtp"), timeout=10) as client,
        pytest.raises(smtplib.SMTPRecipientsRefused) as refused,
    ):
        client.sendmail(SENDER, ["x@example.com"], BODY)
    assert refused.value.recipients["x@example.com"][0] == 450


def test_reply_delay(capture_server: RunningServer) -> None:
    capture_server.call(box(capture_server).set_faults, FaultSettings(reply_delay=0.2))
    with smtplib.SMTP(capture_server.host, capture_server.port("smtp"), timeout=10) as client:
        started = time.monotonic()
        assert client.noop()[0] == 250
        assert client.noop()[0] == 250
        elapsed = time.monotonic() - started
    assert elapsed >= 0.4


def test_code_421_closes_the_connection(capture_server: RunningServer) -> None:
    with smtplib.SMTP(capture_server.host, capture_server.port("smtp"), timeout=10) as client:
        client.ehlo()
        client.mail(SENDER)
        assert client.rcpt("code-421@example.com")[0] == 421
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()


def test_no_faults_without_capture_mode(server: RunningServer) -> None:
    server.ensure_domain("example.test")
    server.store.add_account("temperror@example.test", password_hash("pw-temp"))
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=10) as client:
        assert client.sendmail(SENDER, ["temperror@example.test"], BODY) == {}
