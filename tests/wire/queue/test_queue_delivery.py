"""The queue runner against real peers: the test DNS server, aiosmtpd MXes on loopback and our
real server as the sender's. Time moves only through `world.run_due(seconds)`."""

from __future__ import annotations

import dataclasses
import email
import re
import smtplib
from typing import Any

import pytest
from queue_world import ALICE, World, message
from support.dnsserver import DnsServer
from support.smtp_peer import SmtpPeer

RunningServer = Any


@pytest.fixture
def world(server: RunningServer, dns_server: DnsServer) -> World:
    return World(server, dns_server)


@pytest.fixture
def peer(smtp_peer_factory: Any) -> SmtpPeer:
    peer: SmtpPeer = smtp_peer_factory(host="127.0.0.2")
    return peer


def mx(dns: DnsServer, domain: str, *hosts: tuple[int, str, str]) -> None:
    """MX records for `domain`: (preference, host name, its IPv4 address)."""
    for preference, host, address in hosts:
        dns.add(domain, "MX", (preference, host))
        dns.add(host, "A", address)


def with_port(world: World, port: int) -> World:
    """The runner again, with remote MXes on `port` (one number for the whole test network)."""
    world.config = dataclasses.replace(world.config, remote_smtp_port=port)
    world.runner = world._build()
    return world


def dsn_fields(raw: bytes) -> dict[str, str]:
    """Per-recipient and per-message fields of the message/delivery-status part."""
    parsed = email.message_from_bytes(raw)
    for part in parsed.walk():
        if part.get_content_type() == "message/delivery-status":
            text = b"".join(
                p.as_bytes() if hasattr(p, "as_bytes") else bytes(p)
                for p in (part.get_payload() or [])
            ).decode("utf-8", "replace")
            fields: dict[str, str] = {}
            for name, value in re.findall(r"(?m)^([A-Za-z-]+):\s*(.*)$", text):
                fields.setdefault(name.lower(), value.strip())
            return fields
    raise AssertionError("no message/delivery-status part in:\n" + raw.decode(errors="replace"))


def only_dsn(world: World) -> bytes:
    [raw] = world.inbox()
    assert raw.startswith(b"Return-Path: <>\r\n")  # sent with the null reverse-path
    return raw


# ----- delivery --------------------------------------------------------------------------------
def test_delivers_to_the_mx_over_starttls(world: World, peer: SmtpPeer) -> None:
    mx(world.dns, "example.net", (10, "mx.example.net", "127.0.0.2"))
    with_port(world, peer.port)
    world.send(["friend@example.net"], message("over tls"))
    assert world.run_due(1) == 1
    [received] = peer.messages
    assert received.tls
    assert received.mail_from == ALICE
    assert received.recipients == ["friend@example.net"]
    # Our Return-Path is not relayed (RFC 5321 4.4); our Received line is.
    assert received.data.startswith(b"Received: from ")
    assert b"Return-Path" not in received.data
    assert b"Subject: over tls\r\n" in received.data
    assert world.server.store.queue_size() == 0
    assert world.inbox() == []  # no DSN for a success without NOTIFY=SUCCESS


def test_mx_preference_fallback_when_the_first_host_is_down(
    world: World, peer: SmtpPeer
) -> None:
    # mx1 (preference 10) is on an address where nothing listens: connection refused.
    mx(world.dns, "example.net", (10, "mx1.example.net", "127.0.0.3"),
       (20, "mx2.example.net", "127.0.0.2"))
    with_port(world, peer.port)
    world.send(["friend@example.net"], message("fallback"))
    world.run_due(1)
    [received] = peer.messages
    assert received.recipients == ["friend@example.net"]
    assert world.server.store.queue_size() == 0


def test_4xx_is_retried_on_schedule_then_delivered(world: World, peer: SmtpPeer) -> None:
    mx(world.dns, "example.net", (10, "mx.example.net", "127.0.0.2"))
    with_port(world, peer.port)
    peer.rcpt_reply = "451 4.3.0 try again later"
    world.send(["friend@example.net"], message("retry"))
    world.run_due(1)
    [entry] = world.server.store.queue_entries()
    assert entry.attempts == 1
    assert entry.next_attempt == world.t0 + 1 + 300  # the schedule's first step, 5m
    assert "451 4.3.0 try again later" in (entry.last_error or "")
    assert world.run_due(299) == 0  # not due yet
    peer.rcpt_reply = None
    assert world.run_due(301) == 1
    [received] = peer.messages
    assert received.recipients == ["friend@example.net"]
    assert world.server.store.queue_size() == 0


def test_5xx_bounces_to_the_senders_inbox_with_the_status(world: World, peer: SmtpPeer) -> None:
    mx(world.dns, "example.net", (10, "mx.example.net", "127.0.0.2"))
    with_port(world, peer.port)
    peer.rcpt_replies["nobody@example.net"] = "550 5.1.1 no such user here"
    world.send(["friend@example.net", "nobody@example.net"], message("half bounce"))
    world.run_due(1)
    [received] = peer.messages
    assert received.recipients == ["friend@example.net"]
    assert world.server.store.queue_size() == 0
    raw = only_dsn(world)
    fields = dsn_fields(raw)
    assert fields["action"] == "failed"
    assert fields["status"] == "5.1.1"
    assert fields["final-recipient"].lower().replace(" ", "") == "rfc822;nobody@example.net"
    assert "550 5.1.1 no such user here" in fields["diagnostic-code"]
    assert fields["remote-mta"].lower().endswith("mx.example.net")
    assert b"Subject: half bounce" in raw  # the original (or its header) comes back
    assert raw.count(b"Final-Recipient:") == 1  # only the failed recipient is reported


def test_expiry_sends_one_delay_warning_then_a_failure(server: RunningServer,
                                                       dns_server: DnsServer,
                                                       peer: SmtpPeer) -> None:
    world = World(server, dns_server, max_age=3 * 3600.0, delay_warning=3600.0)
    mx(world.dns, "example.net", (10, "mx.example.net", "127.0.0.2"))
    with_port(world, peer.port)
    peer.rcpt_reply = "452 4.2.2 mailbox full"
    world.send(["friend@example.net"], message("expires"))
    world.run_due(1)
    assert world.inbox() == []
    world.run_due(3700)  # waited over delay_warning: one "delayed" DSN
    [delayed] = world.inbox()
    fields = dsn_fields(delayed)
    assert fields["action"] == "delayed"
    assert fields["status"] == "4.2.2"
    [entry] = world.server.store.queue_entries()
    assert entry.delay_warned
    # The ladder caps at max_age: the last attempt is at created + max_age exactly.
    world.run_due(3 * 3600 - 10)
    assert len(world.inbox()) == 1  # still only the one warning
    [entry] = world.server.store.queue_entries()
    assert entry.next_attempt <= entry.created + 3 * 3600
    world.run_due(3 * 3600 + 5)
    assert world.server.store.queue_size() == 0
    delayed_again, failed = world.inbox()
    assert delayed_again == delayed
    fields = dsn_fields(failed)
    assert fields["action"] == "failed"
    assert "452 4.2.2 mailbox full" in fields["diagnostic-code"]
    assert peer.messages == []


def test_null_mx_bounces_at_once(world: World) -> None:
    world.dns.add("nomail.example", "MX", (0, "."))  # RFC 7505
    world.send(["someone@nomail.example"], message("null mx", "someone@nomail.example"))
    world.run_due(1)
    assert world.server.store.queue_size() == 0
    fields = dsn_fields(only_dsn(world))
    assert fields["action"] == "failed"
    assert fields["status"] == "5.1.10"


def test_notify_never_and_null_sender_get_no_dsn(world: World, peer: SmtpPeer) -> None:
    mx(world.dns, "example.net", (10, "mx.example.net", "127.0.0.2"))
    with_port(world, peer.port)
    peer.rcpt_reply = "550 5.1.1 nobody"
    with smtplib.SMTP(world.server.host, world.server.port("submission")) as client:
        client.login(ALICE, "alice-pw")
        client.sendmail(ALICE, ["a@example.net"], message("never"),
                        rcpt_options=["NOTIFY=NEVER"])
        client.sendmail("", ["b@example.net"], message("from null"))
    world.run_due(30)  # t0 was taken before these submissions
    assert world.server.store.queue_size() == 0
    assert world.inbox() == []


# ----- sessions --------------------------------------------------------------------------------
@pytest.fixture
def three_peers(smtp_peer_factory: Any) -> list[SmtpPeer]:
    first: SmtpPeer = smtp_peer_factory(host="127.0.0.2")
    rest = [smtp_peer_factory(host=f"127.0.0.{n}", port=first.port) for n in (3, 4)]
    return [first, *rest]


def test_twenty_recipients_over_three_hosts_one_session_each(
    world: World, three_peers: list[SmtpPeer]
) -> None:
    domains = ["a.example", "b.example", "c.example"]
    for n, domain in enumerate(domains):
        mx(world.dns, domain, (10, f"mx.{domain}", f"127.0.0.{n + 2}"))
    with_port(world, three_peers[0].port)
    rcpts = [f"user{i}@{domains[i % 3]}" for i in range(20)]
    world.send(rcpts, message("twenty"))
    assert world.run_due(1) == 20
    for n, peer in enumerate(three_peers):
        assert len(peer.sessions) == 1
        [received] = peer.messages
        assert sorted(received.recipients) == sorted(r for r in rcpts if r.endswith(domains[n]))
    assert world.server.store.queue_size() == 0


def test_next_message_to_the_same_host_reuses_the_session(
    server: RunningServer, dns_server: DnsServer, peer: SmtpPeer
) -> None:
    world = World(server, dns_server, max_connections_per_domain=1)
    mx(world.dns, "example.net", (10, "mx.example.net", "127.0.0.2"))
    with_port(world, peer.port)
    world.send(["one@example.net"], message("first"))
    world.send(["two@example.net"], message("second"))
    world.run_due(1)
    assert len(peer.messages) == 2
    assert len(peer.sessions) == 1
    assert "RSET" in peer.sessions[0].commands


# ----- DKIM -------------------------------------------------------------------------------------
def test_mail_from_a_local_domain_is_signed_and_verifies(world: World, peer: SmtpPeer) -> None:
    import dkim  # type: ignore[import-untyped]

    from mailwright.mailauth.dkim_sign import DkimSigner
    from mailwright.mailauth.keys import dns_record, generate_key

    keys = world.server.data_dir / "dkim"
    record = dns_record(generate_key(keys, "example.test", "mw", "rsa"))
    mx(world.dns, "example.net", (10, "mx.example.net", "127.0.0.2"))
    with_port(world, peer.port)
    world.runner.signer = DkimSigner(keys)
    world.send(["friend@example.net"], message("signed"))
    world.run_due(1)
    [received] = peer.messages
    assert received.data.startswith(b"DKIM-Signature: ")
    published = {f"{record.name}.".encode(): record.value.encode()}
    assert dkim.verify(received.data, dnsfunc=lambda name, timeout=5: published.get(name))
