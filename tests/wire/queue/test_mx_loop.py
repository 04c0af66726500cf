"""A real mailwright whose recipient domain routes back to itself (RFC 5321 5.1): its own
background runner bounces with 5.4.6 instead of relaying to its own MX listener, and when a
better MX exists but is down, the mail waits for it and never comes to us.

The MX listener gets a port picked just before the start, so that the DNS (the test server)
can name it: `remote_smtp_port` must equal it for an address to be "our socket".
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
import time
from typing import Any

import pytest
from support.dnsserver import DnsServer

RunningServer = Any  # tests/conftest.py's RunningServer
ALICE, ALICE_PW = "alice@example.test", "alice-pw"
HOSTNAME = "mail.example.test"  # conftest's TEST_HOSTNAME
FOREIGN = "203.0.113.9"  # not an address of this host (RFC 5737)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(
    server_factory: Any, dns: DnsServer, listen_host: str = "127.0.0.1"
) -> tuple[RunningServer, int]:
    """The server, and alice's account id (the DSNs land in her INBOX)."""
    port = free_port()
    running = server_factory(
        {
            "MAILWRIGHT_LISTEN_SMTP": f"{listen_host}:{port}",
            "MAILWRIGHT_REMOTE_SMTP_PORT": str(port),
            "MAILWRIGHT_DNS_SERVERS": dns.spec,
        }
    )
    return running, running.add_account(ALICE, ALICE_PW).id


def submit(running: RunningServer, rcpt: str) -> None:
    body = f"From: {ALICE}\r\nTo: {rcpt}\r\nSubject: loop\r\n\r\nround and round\r\n".encode()
    with smtplib.SMTP(running.host, running.port("submission")) as client:
        client.login(ALICE, ALICE_PW)
        client.sendmail(ALICE, [rcpt], body)


@pytest.mark.parametrize(
    ("listen_host", "records"),
    [
        # The MX host's address is our MX listener's socket.
        ("127.0.0.1", [("loop.test", "MX", (10, "mx.loop.test")),
                       ("mx.loop.test", "A", "127.0.0.1")]),
        # The MX host's name is our hostname (its address says nothing).
        ("127.0.0.1", [("loop.test", "MX", (10, HOSTNAME.upper() + ".")),
                       (HOSTNAME, "A", FOREIGN)]),
        # No MX: the domain's own address, which a wildcard listener accepts on.
        ("0.0.0.0", [("loop.test", "A", "127.0.0.1")]),
    ],
    ids=["mx-address", "mx-hostname", "implicit-mx-wildcard-listener"],
)
def test_mail_routed_back_to_ourselves_bounces_5_4_6(
    server_factory: Any,
    dns_server: DnsServer,
    listen_host: str,
    records: list[tuple[str, str, Any]],
) -> None:
    for name, rtype, value in records:
        dns_server.add(name, rtype, value)
    running, alice = start(server_factory, dns_server, listen_host)
    inbox = running.store.mailbox(alice, "INBOX")
    subscription = running.call(running.store.changes.subscribe, inbox.id)
    submit(running, "bob@loop.test")
    # The background runner (as `serve` runs it) is woken by the submission.
    running.run(asyncio.wait_for(subscription.wait(), 20))
    runner = running.server.queue_runner
    running.run(runner.drain())
    [dsn] = [running.store.blob_path(m.blob).read_bytes()
             for m in running.store.pop3_messages(alice)]
    assert b"Action: failed" in dsn
    assert b"Status: 5.4.6" in dsn
    assert b"mail for loop.test loops back to myself" in dsn
    assert runner.sessions_opened == 0  # not one SMTP session, to ourselves or anyone
    assert running.store.queue_size() == 0


def test_better_mx_down_defers_and_never_delivers_to_ourselves(
    server_factory: Any, dns_server: DnsServer
) -> None:
    dns_server.add("loop.test", "MX", (5, "other.loop.test"))
    dns_server.add("loop.test", "MX", (10, "us.loop.test"))
    dns_server.add("other.loop.test", "A", "127.0.0.2")  # nothing listens there: refused
    dns_server.add("us.loop.test", "A", "127.0.0.1")
    running, alice = start(server_factory, dns_server)
    runner = running.server.queue_runner
    running.run(runner.stop())  # the test makes the passes, so it knows when one is over
    submit(running, "bob@loop.test")
    assert running.run(runner.run_due(now=time.time() + 1)) == 1
    [row] = running.store.queue_entries()
    assert row.attempts == 1
    assert row.last_error is not None
    assert row.last_error.startswith("4.4.1")
    assert "127.0.0.2" in row.last_error
    assert runner.sessions_opened == 0  # we, the worse MX, were never tried
    assert running.store.pop3_messages(alice) == []  # no bounce either: it waits
