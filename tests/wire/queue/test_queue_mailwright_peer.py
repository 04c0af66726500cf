"""Two mailwright servers: the sender's background runner (as `serve` runs it, no test clock)
relays over a static route (MAILWRIGHT_ROUTES) to the other's MX listener, which stores the
message in the recipient's INBOX."""

from __future__ import annotations

import asyncio
import smtplib
from typing import Any

from support.dnsserver import DnsServer

RunningServer = Any


def test_background_runner_delivers_to_a_second_mailwright(
    server_factory: Any, dns_server: DnsServer
) -> None:
    quiet_dns = {"MAILWRIGHT_DNS_SERVERS": dns_server.spec, "MAILWRIGHT_INBOUND_CHECKS": "false"}
    remote: RunningServer = server_factory(quiet_dns)
    bob = remote.add_account("bob@remote.test", "bob-pw")
    inbox = remote.store.mailbox(bob.id, "INBOX")
    subscription = remote.call(remote.store.changes.subscribe, inbox.id)
    sender: RunningServer = server_factory(
        {**quiet_dns, "MAILWRIGHT_ROUTES": f"remote.test=127.0.0.1:{remote.port('smtp')}"}
    )
    sender.add_account("alice@example.test", "alice-pw")
    body = b"From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: across\r\n\r\nHi Bob\r\n"
    with smtplib.SMTP(sender.host, sender.port("submission")) as client:
        client.login("alice@example.test", "alice-pw")
        client.sendmail("alice@example.test", ["bob@remote.test"], body)
    # The deliverer wakes the runner; wait for the remote store's own change event.
    remote.run(asyncio.wait_for(subscription.wait(), 20))
    [stored] = remote.store.pop3_messages(bob.id)
    raw = remote.store.blob_path(stored.blob).read_bytes()
    assert raw.startswith(b"Return-Path: <alice@example.test>\r\n")  # the remote's own
    assert raw.count(b"Return-Path:") == 1  # ours was not relayed
    assert raw.count(b"Received: from ") == 2  # our trace line and the remote's
    assert raw.endswith(b"Subject: across\r\n\r\nHi Bob\r\n")
    runner = sender.server.queue_runner
    sender.run(runner.drain())  # the 250 is recorded, the session closed
    assert sender.store.queue_size() == 0
    assert runner.sessions_opened == 1
