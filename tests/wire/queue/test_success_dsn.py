"""Success DSNs (RFC 3461 NOTIFY=SUCCESS) with real peers: "relayed" after a 250 from an
aiosmtpd MX that does not offer DSN, nothing from us when it does, "delivered" for a local
mailbox, none for NEVER or the null sender, and an RFC 6533 report that leaves with SMTPUTF8.
DSNs are read back over IMAP, as the sender's mail client would."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import imaplib
import re
import smtplib
import time
from email.message import Message
from typing import Any

import pytest
from queue_world import ALICE, ALICE_PW, World, message
from support.dnsserver import DnsServer
from support.smtp_peer import SmtpPeer

RunningServer = Any
BOB = "bob@example.test"


@pytest.fixture
def world(server: RunningServer, dns_server: DnsServer) -> World:
    return World(server, dns_server)


def network(world: World, peer: SmtpPeer, domain: str = "example.net") -> None:
    """`domain`'s MX is the peer on 127.0.0.2; the runner uses the peer's port."""
    world.dns.add(domain, "MX", (10, f"mx.{domain}"))
    world.dns.add(f"mx.{domain}", "A", "127.0.0.2")
    world.config = dataclasses.replace(world.config, remote_smtp_port=peer.port)
    world.runner = world._build()


def submit(world: World, sender: str, to: list[str], body: bytes, notify: str | None) -> None:
    """Submit as alice (authenticated) with NOTIFY on every RCPT; test time starts after."""
    with smtplib.SMTP(world.server.host, world.server.port("submission")) as client:
        client.login(ALICE, ALICE_PW)
        client.sendmail(sender, to, body, rcpt_options=[f"NOTIFY={notify}"] if notify else [])
    world.t0 = world.now = float(int(time.time()))


def imap_inbox(world: World, user: str = ALICE, password: str = ALICE_PW) -> list[bytes]:
    imap = imaplib.IMAP4(world.server.host, world.server.port("imap"), timeout=10)
    try:
        imap.login(user, password)
        imap.select("INBOX", readonly=True)
        typ, data = imap.uid("SEARCH", "ALL")
        assert typ == "OK"
        raws: list[bytes] = []
        for uid in data[0].split():
            typ, fetched = imap.uid("FETCH", uid, "(BODY.PEEK[])")
            assert typ == "OK"
            item = fetched[0]
            assert isinstance(item, tuple)
            raws.append(item[1])
        return raws
    finally:
        imap.logout()


def status_fields(raw: bytes) -> tuple[dict[str, str], dict[str, str]]:
    """(per-message, per-recipient) fields of the report's (global-)delivery-status part."""
    text = raw.decode("utf-8")
    at = re.search(r"Content-Type: message/(global-)?delivery-status", text)
    assert at is not None, text
    body = text[text.index("\r\n\r\n", at.start()) + 4 : text.index("\r\n--", at.start())]
    blocks = [b for b in body.split("\r\n\r\n") if b.strip()]
    per_message, per_recipient = (
        dict(re.findall(r"(?m)^([A-Za-z-]+): (.*?)\r?$", b)) for b in blocks[:2]
    )
    return per_message, per_recipient


def parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=email.policy.default)


# ----- relayed: the remote side took it ------------------------------------------------------
def test_peer_without_dsn_gives_a_relayed_dsn_in_the_senders_inbox(
    world: World, smtp_peer_factory: Any
) -> None:
    peer: SmtpPeer = smtp_peer_factory(host="127.0.0.2", dsn=False)
    network(world, peer)
    submit(world, ALICE, ["friend@example.net"], message("tell me"), "SUCCESS,FAILURE")
    assert world.run_due(1) == 1
    [received] = peer.messages
    assert received.rcpt == [("friend@example.net", {})]  # the peer was not given NOTIFY
    assert world.server.store.queue_size() == 0
    [raw] = imap_inbox(world)
    report = parse(raw)
    assert report["Subject"] == "Successful Mail Delivery Report"
    assert report.get_content_type() == "multipart/report"
    per_message, rcpt = status_fields(raw)
    assert per_message["Reporting-MTA"] == "dns; mail.example.test"
    assert rcpt["Final-Recipient"] == "rfc822; friend@example.net"
    assert rcpt["Action"] == "relayed"
    assert rcpt["Status"] == "2.0.0"
    assert rcpt["Remote-MTA"] == "dns; mx.example.net"
    assert rcpt["Diagnostic-Code"] == "smtp; 250 2.0.0 OK queued"
    assert b"Subject: tell me" in raw
    assert b"Hello friend@example.net!" not in raw  # a success report: headers only


def test_peer_offering_dsn_gets_notify_and_we_send_nothing(
    world: World, smtp_peer_factory: Any
) -> None:
    peer: SmtpPeer = smtp_peer_factory(host="127.0.0.2", dsn=True)
    network(world, peer)
    submit(world, ALICE, ["friend@example.net"], message("your turn"), "SUCCESS")
    world.run_due(1)
    [received] = peer.messages
    [(_, params)] = received.rcpt
    assert params["NOTIFY"] == "SUCCESS"  # the peer reports now (RFC 3461 5.2.2)
    assert world.server.store.queue_size() == 0
    assert imap_inbox(world) == []


# ----- delivered: a local mailbox ----------------------------------------------------------
def test_local_delivery_with_notify_success_gives_a_delivered_dsn(world: World) -> None:
    world.server.add_account(BOB, "bob-pw")
    submit(world, ALICE, [BOB], message("for bob", BOB), "SUCCESS,FAILURE")
    [delivered] = imap_inbox(world, BOB, "bob-pw")
    assert b"Subject: for bob" in delivered
    [raw] = imap_inbox(world)  # no runner pass needed: reported at delivery
    assert raw.startswith(b"Return-Path: <>\r\n")
    assert parse(raw)["Subject"] == "Successful Mail Delivery Report"
    _, rcpt = status_fields(raw)
    assert rcpt["Action"] == "delivered"
    assert rcpt["Status"] == "2.0.0"
    assert rcpt["Final-Recipient"] == f"rfc822; {BOB}"
    assert world.server.store.queue_size() == 0


def test_notify_never_and_the_null_sender_get_no_success_dsn(
    world: World, smtp_peer_factory: Any
) -> None:
    peer: SmtpPeer = smtp_peer_factory(host="127.0.0.2", dsn=False)
    network(world, peer)
    world.server.add_account(BOB, "bob-pw")
    submit(world, ALICE, ["a@example.net", BOB], message("never"), "NEVER")
    submit(world, "", ["b@example.net", BOB], message("from null"), "SUCCESS")
    submit(world, ALICE, ["c@example.net", BOB], message("default"), None)
    world.run_due(1)
    assert sorted(r for m in peer.messages for r in m.recipients) == [
        "a@example.net", "b@example.net", "c@example.net"
    ]
    assert len(imap_inbox(world, BOB, "bob-pw")) == 3
    assert world.server.store.queue_size() == 0
    assert imap_inbox(world) == []


# ----- RFC 6533: an internationalised report leaves with SMTPUTF8 --------------------------------
def test_utf8_success_dsn_to_a_remote_sender_goes_out_with_smtputf8(
    world: World, smtp_peer_factory: Any
) -> None:
    peer: SmtpPeer = smtp_peer_factory(host="127.0.0.2", dsn=False, smtputf8=True)
    network(world, peer, "example.org")
    world.server.add_account(BOB, "bob-pw")
    sender = "jörg@example.org"
    body = (f"From: Jörg <{sender}>\r\nTo: {BOB}\r\nSubject: grüße\r\n"
            "Message-ID: <g1@example.org>\r\n\r\nHallo Bob!\r\n").encode()
    with smtplib.SMTP(world.server.host, world.server.port("smtp")) as client:  # the MX
        client.sendmail(sender, [BOB], body, mail_options=["SMTPUTF8", "BODY=8BITMIME"],
                        rcpt_options=["NOTIFY=SUCCESS"])
    world.t0 = world.now = float(int(time.time()))
    [row] = world.server.store.queue_entries()
    assert (row.mail_from, row.rcpt) == ("", sender)
    assert "SMTPUTF8" in row.mail_params
    world.run_due(1)
    [received] = peer.messages
    assert received.mail_from in ("", "<>")  # aiosmtpd keeps the null path as "<>"
    assert "SMTPUTF8" in received.mail_params
    assert received.mail_params.get("BODY") == "8BITMIME"
    assert received.recipients == [sender]
    data = received.data
    assert f"To: {sender}\r\n".encode() in data  # UTF-8 header (RFC 6532)
    assert b"Content-Type: message/global-delivery-status" in data
    assert b"Content-Type: message/global-headers" in data
    assert "Subject: grüße".encode() in data
    _, rcpt = status_fields(data)
    assert rcpt["Action"] == "delivered"
    assert rcpt["Final-Recipient"] == f"rfc822; {BOB}"
    assert world.server.store.queue_size() == 0


def test_utf8_dsn_is_dropped_not_downgraded_for_a_peer_without_smtputf8(
    world: World, smtp_peer_factory: Any
) -> None:
    peer: SmtpPeer = smtp_peer_factory(host="127.0.0.2", smtputf8=False)
    network(world, peer, "example.org")
    world.server.add_account(BOB, "bob-pw")
    with smtplib.SMTP(world.server.host, world.server.port("smtp")) as client:
        client.sendmail("jörg@example.org", [BOB], f"Subject: hi\r\nTo: {BOB}\r\n\r\nx\r\n",
                        mail_options=["SMTPUTF8"], rcpt_options=["NOTIFY=SUCCESS"])
    world.t0 = world.now = float(int(time.time()))
    world.run_due(1)
    assert peer.messages == []  # 553 5.6.7 without a byte sent; a DSN is never bounced
    assert world.server.store.queue_size() == 0


def test_a_success_dsn_that_cannot_be_stored_is_logged_and_blocks_nothing(
    world: World, smtp_peer_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    peer: SmtpPeer = smtp_peer_factory(host="127.0.0.2", dsn=False)
    network(world, peer)
    submit(world, ALICE, ["friend@example.net"], message("gone"), "SUCCESS")
    submit(world, "", ["other@example.net"], message("next"), None)
    world.server.store.remove_account(ALICE)  # the sender's mailbox went meanwhile
    world.run_due(1)
    assert sorted(r for m in peer.messages for r in m.recipients) == [
        "friend@example.net", "other@example.net"
    ]
    assert world.server.store.queue_size() == 0  # recorded once, never retried
    assert f"DSN to <{ALICE}> dropped" in caplog.text
