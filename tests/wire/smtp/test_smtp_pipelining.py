"""PIPELINING (RFC 2920), CHUNKING/BDAT (RFC 3030) and aiosmtplib over plain, STARTTLS, TLS."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import aiosmtplib
import pytest
from smtp_wire import ALICE, ALICE_PW, BOB, BOB_PW, RunningServer, Wire, body_of, stored_messages


def test_pipelined_replies_come_in_order(wire: Wire) -> None:
    wire.send(
        b"EHLO c\r\nMAIL FROM:<x@remote.example>\r\nRCPT TO:<nobody@example.test>\r\n"
        b"RCPT TO:<alice@example.test>\r\nRCPT TO:<out@remote.example>\r\n"
        b"RCPT TO:<bob@example.test>\r\n"
        b"DATA\r\n"
    )
    wire.expect(250)
    wire.expect(250, "2.1.0")
    wire.expect(550, "5.1.1")
    wire.expect(250, "2.1.5")
    wire.expect(554, "5.7.1")
    wire.expect(250, "2.1.5")
    wire.expect(354)
    wire.send(b"Subject: piped\r\n\r\nbody\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n")
    wire.expect(250, "2.0.0")
    wire.expect(250)
    wire.expect(250)
    wire.expect(221)


def test_pipelined_replies_arrive_in_one_write(wire: Wire) -> None:
    wire.send(b"EHLO c\r\n").expect(250)
    wire.send(b"NOOP\r\n" * 20)
    data = b""
    while data.count(b"\r\n") < 20:
        data += wire.sock.recv(65536)
    assert data == b"250 2.0.0 OK\r\n" * 20


def test_bdat_delivery(mx: RunningServer) -> None:
    w = Wire(mx.host, mx.port("smtp"))
    try:
        w.expect(220)
        w.send(b"EHLO c\r\nMAIL FROM:<x@remote.example> BODY=BINARYMIME\r\n"
               b"RCPT TO:<alice@example.test>\r\n")
        w.expect(250)
        w.expect(250)
        w.expect(250)
        w.send(b"BDAT 17\r\nSubject: chunks\r\n").expect(250, "2.0.0")
        w.send(b"BDAT 9\r\n\r\n.line\r\n")
        w.send(b"BDAT 6 LAST\r\nend\r\n\x00").expect(250, "2.0.0")
        w.expect(250, "2.0.0")
        w.send(b"QUIT\r\n").expect(221)
    finally:
        w.close()
    [stored] = stored_messages(mx, ALICE)
    assert body_of(stored) == b"Subject: chunks\r\n\r\n.line\r\nend\r\n\x00"


def test_bdat_without_recipients_is_drained_then_503(wire: Wire) -> None:
    wire.send(b"EHLO c\r\nBDAT 10 LAST\r\nQUIT\r\nQUITNOOP\r\n")
    wire.expect(250)
    wire.expect(503, "5.5.1")
    wire.expect(250)


def test_binarymime_refuses_data(wire: Wire) -> None:
    wire.send(b"EHLO c\r\nMAIL FROM:<x@remote.example> BODY=BINARYMIME\r\n"
              b"RCPT TO:<alice@example.test>\r\nDATA\r\n")
    wire.expect(250)
    wire.expect(250)
    wire.expect(250)
    wire.expect(503, "5.5.1")


def _message(sender: str, to: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg.set_content("hello from aiosmtplib\n")
    return msg


@pytest.mark.asyncio
async def test_aiosmtplib_plain_mx(mx: RunningServer) -> None:
    errors, _ = await aiosmtplib.send(
        _message("x@remote.example", ALICE, "plain"), hostname=mx.host, port=mx.port("smtp"),
        start_tls=False,
    )
    assert errors == {}
    [stored] = stored_messages(mx, ALICE)
    assert b"Subject: plain" in stored


@pytest.mark.asyncio
async def test_aiosmtplib_starttls_submission(mx: RunningServer) -> None:
    errors, _ = await aiosmtplib.send(
        _message(ALICE, BOB, "starttls"), hostname=mx.host, port=mx.port("submission"),
        start_tls=True, tls_context=mx.ssl_context, username=ALICE, password=ALICE_PW,
    )
    assert errors == {}
    [stored] = stored_messages(mx, BOB)
    assert b"with ESMTPSA" in stored


@pytest.mark.asyncio
async def test_aiosmtplib_implicit_tls_concurrent(mx: RunningServer) -> None:
    async def one(i: int) -> None:
        await aiosmtplib.send(
            _message(BOB, ALICE, f"tls {i}"), hostname=mx.host, port=mx.port("submissions"),
            use_tls=True, tls_context=mx.ssl_context, username=BOB, password=BOB_PW,
        )

    await asyncio.gather(*(one(i) for i in range(5)))
    assert len(stored_messages(mx, ALICE)) == 5


@pytest.mark.asyncio
async def test_aiosmtplib_relay_refused(mx: RunningServer) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await aiosmtplib.send(
            _message("x@remote.example", "y@elsewhere.example", "relay"), hostname=mx.host,
            port=mx.port("smtp"), start_tls=False,
        )
