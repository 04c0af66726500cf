"""Capture mode over the wire: mail for other domains is kept (box, IMAP, POP3), never queued;
local domains keep their real semantics; capture off still refuses to relay."""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
import poplib
import smtplib

import pytest
from capture_wire import (
    CAPTURE_ACCOUNT,
    CAPTURE_ENV,
    CAPTURE_PASSWORD,
    SENDER,
    RunningServer,
    box,
    captured,
    message,
    password_hash,
    send,
)

from mailwright.capture import Captured


def imap_inbox(server: RunningServer, mailbox: str = "INBOX") -> list[bytes]:
    with imaplib.IMAP4(server.host, server.port("imap")) as imap:
        imap.login(CAPTURE_ACCOUNT, CAPTURE_PASSWORD)
        typ, _ = imap.select(f'"{mailbox}"', readonly=True)
        assert typ == "OK"
        _, data = imap.uid("SEARCH", "ALL")
        bodies = []
        for uid in data[0].split():
            _, fetched = imap.uid("FETCH", uid, "(BODY.PEEK[])")
            bodies.append(fetched[0][1])
        return bodies


def test_external_mail_is_captured_not_queued(capture_server: RunningServer) -> None:
    send(capture_server, ["bob@example.com", "carol@example.org"], subject="Order 1")
    items = captured(capture_server)
    assert len(items) == 1
    item = items[0]
    assert item.mail_from == SENDER
    assert item.rcpts == ("bob@example.com", "carol@example.org")
    assert item.subject == "Order 1"
    assert item.mailbox == "INBOX"
    assert capture_server.store.queue_size() == 0
    assert capture_server.server.queue_runner is None  # nothing leaves, not even old mail
    [raw] = imap_inbox(capture_server)
    assert raw.startswith(
        b"X-Mailwright-Envelope-From: <app@shop.example>\r\n"
        b"X-Mailwright-Envelope-To: <bob@example.com>, <carol@example.org>\r\n"
        b"Return-Path: <app@shop.example>\r\n"
    )
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == "Order 1"
    # POP3 sees the same INBOX.
    pop = poplib.POP3(capture_server.host, capture_server.port("pop3"), timeout=10)
    try:
        pop.user(CAPTURE_ACCOUNT)
        pop.pass_(CAPTURE_PASSWORD)
        assert pop.stat()[0] == 1
    finally:
        pop.quit()


def test_local_domains_keep_real_semantics(capture_server: RunningServer) -> None:
    capture_server.ensure_domain("example.test")
    capture_server.store.add_account("alice@example.test", password_hash("pw-alice"))
    with smtplib.SMTP(capture_server.host, capture_server.port("smtp"), timeout=10) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail(SENDER, ["nobody@example.test"], b"Subject: x\r\n\r\nx\r\n")
        assert refused.value.recipients["nobody@example.test"][0] == 550
        rcpts = ["alice@example.test", "dave@elsewhere.example"]
        client.send_message(message(rcpts, "Mixed"), from_addr=SENDER, to_addrs=rcpts)
    alice = capture_server.store.get_account("alice@example.test")
    inbox = capture_server.store.mailbox(alice.id, "INBOX")
    [record] = capture_server.store.mailbox_messages(inbox.id)
    local_copy = capture_server.store.blob_path(record.blob).read_bytes()
    assert local_copy.startswith(b"Return-Path: <app@shop.example>\r\n")  # no envelope fields
    [item] = captured(capture_server)
    assert item.rcpts == ("dave@elsewhere.example",)  # the captured recipients only
    assert capture_server.store.queue_size() == 0


def test_alias_forward_to_a_remote_address_is_captured(capture_server: RunningServer) -> None:
    capture_server.add_alias("sales@example.test", "partner@remote.example")
    send(capture_server, ["sales@example.test"], subject="Forwarded")
    [item] = captured(capture_server)
    assert item.rcpts == ("partner@remote.example",)
    assert capture_server.store.queue_size() == 0


def test_per_domain_mailboxes(server_factory: RunningServer) -> None:
    server = server_factory({**CAPTURE_ENV, "MAILWRIGHT_CAPTURE_IMAP": "per-domain"})
    send(server, ["a@example.com", "b@example.com", "c@other.org"], subject="Split")
    send(server, ["d@other.org"], subject="Second")
    items = captured(server)
    assert {(c.mailbox, c.rcpts) for c in items} == {
        ("example.com", ("a@example.com", "b@example.com")),
        ("other.org", ("c@other.org",)),
        ("other.org", ("d@other.org",)),
    }
    assert len(imap_inbox(server, "example.com")) == 1
    other = imap_inbox(server, "other.org")
    assert len(other) == 2
    assert b"X-Mailwright-Envelope-To: <c@other.org>\r\n" in other[0]
    assert imap_inbox(server) == []
    assert [c.subject for c in captured(server, to="D@other.org")] == ["Second"]
    assert server.store.queue_size() == 0


def test_submission_takes_mail_without_auth_in_capture_mode(
    capture_server: RunningServer,
) -> None:
    send(capture_server, ["x@example.com"], listener="submission")
    assert len(captured(capture_server)) == 1


def test_accept_any_auth(server_factory: RunningServer) -> None:
    server = server_factory({**CAPTURE_ENV, "MAILWRIGHT_CAPTURE_ACCEPT_ANY_AUTH": "true"})
    with smtplib.SMTP(server.host, server.port("submission"), timeout=10) as client:
        client.login("whoever@app.example", "any password at all")
        client.send_message(message("x@example.com"), from_addr="noreply@other.example",
                            to_addrs=["x@example.com"])
    [item] = captured(server)
    assert item.mail_from == "noreply@other.example"
    assert server.store.queue_size() == 0


def test_without_accept_any_auth_bad_credentials_fail(capture_server: RunningServer) -> None:
    with smtplib.SMTP(capture_server.host, capture_server.port("submission"), timeout=10) as c:
        with pytest.raises(smtplib.SMTPAuthenticationError) as failed:
            c.login("whoever@app.example", "wrong")
        assert failed.value.smtp_code == 535


def test_capture_off_still_refuses_to_relay(server: RunningServer) -> None:
    assert server.server.capture is None
    with (
        smtplib.SMTP(server.host, server.port("smtp"), timeout=10) as client,
        pytest.raises(smtplib.SMTPRecipientsRefused) as refused,
    ):
        client.sendmail(SENDER, ["bob@example.com"], b"Subject: x\r\n\r\nx\r\n")
    assert refused.value.recipients["bob@example.com"][0] == 554
    assert server.store.queue_size() == 0
    assert server.store.get_account(CAPTURE_ACCOUNT) is None


def test_subscribe_wakes_on_captured_mail(capture_server: RunningServer) -> None:
    capture = box(capture_server)

    async def subscribe() -> object:
        return capture.subscribe()

    sub = capture_server.run(subscribe())

    async def next_one() -> Captured:
        async with asyncio.timeout(10):
            return await sub.next()  # type: ignore[attr-defined, no-any-return]

    try:
        send(capture_server, ["watch@example.com"], subject="Live")
        item = capture_server.run(next_one())
        assert item.subject == "Live"
        assert item.rcpts == ("watch@example.com",)
    finally:
        capture_server.call(sub.close)  # type: ignore[attr-defined]


def test_box_delete_and_clear_are_seen_over_imap(capture_server: RunningServer) -> None:
    send(capture_server, ["one@example.com"], subject="One")
    send(capture_server, ["two@example.com"], subject="Two")
    capture = box(capture_server)
    items = captured(capture_server)
    assert [c.subject for c in items] == ["Two", "One"]
    assert capture_server.run(capture.delete(items[0].id)) is True
    assert len(imap_inbox(capture_server)) == 1
    assert capture_server.run(capture.clear()) == 1
    assert imap_inbox(capture_server) == []
