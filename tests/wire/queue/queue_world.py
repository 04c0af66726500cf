"""A small outbound network for the queue's wire tests: our real server (the sender's), the
test DNS server, aiosmtpd peers as remote MXes, and a QueueRunner the test drives by time.

The server's own background runner is stopped first, so that only the test's runner (same
store, same deliverer, a clock the test sets) delivers: every pass is `world.run_due(t)`,
which returns once every due row was attempted and recorded. Nothing sleeps.
"""

from __future__ import annotations

import dataclasses
import smtplib
import time
from collections.abc import Callable
from typing import Any

from support.dnsserver import DnsServer

from mailwright.net.resolver import Resolver
from mailwright.queue.routing import Router
from mailwright.queue.runner import QueueRunner, outbound_tls_context

RunningServer = Any  # tests/conftest.py's RunningServer (conftest is not importable)

ALICE = "alice@example.test"
ALICE_PW = "alice-pw"


class World:
    def __init__(self, server: RunningServer, dns: DnsServer, **queue: Any) -> None:
        self.server = server
        self.dns = dns
        self.t0 = float(int(time.time()))
        self.now = self.t0
        running = server.server.queue_runner
        if running is not None:
            server.run(running.stop())
        self.config = dataclasses.replace(server.config.queue, **queue)
        services = server.server.services
        assert services is not None
        self.deliverer = services.deliverer
        self.runner = self._build()
        self.alice = server.add_account(ALICE, ALICE_PW)

    def _build(self) -> QueueRunner:
        async def build() -> QueueRunner:  # on the server's loop (its semaphores and events)
            resolver = Resolver(self.dns.spec, timeout=2.0)
            clock: Callable[[], float] = lambda: self.now  # noqa: E731
            return QueueRunner(
                self.server.store,
                self.deliverer,
                Router(self.config, resolver),
                self.config,
                self.server.config.hostname,
                outbound_tls_context(),
                clock=clock,
            )

        return self.server.run(build())

    def send(self, to: list[str], body: bytes, sender: str = ALICE) -> None:
        """Submit as alice (authenticated, so relaying is allowed): rows for the remote ones."""
        with smtplib.SMTP(self.server.host, self.server.port("submission")) as client:
            client.login(ALICE, ALICE_PW)
            client.sendmail(sender, to, body)
        # Test time starts after the last submission: every row is due at run_due(0).
        self.t0 = self.now = float(int(time.time()))

    def run_due(self, at: float) -> int:
        """One runner pass at t0 + `at` seconds."""
        self.now = self.t0 + at
        return self.server.run(self.runner.run_due(now=self.now), timeout=60)

    def inbox(self) -> list[bytes]:
        """Alice's INBOX, oldest first (the DSNs land there)."""
        store = self.server.store
        return [
            store.blob_path(m.blob).read_bytes() for m in store.pop3_messages(self.alice.id)
        ]


def message(subject: str, to: str = "friend@example.net") -> bytes:
    return (
        f"From: Alice <{ALICE}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@example.test>\r\n\r\nHello {to}!\r\n"
    ).encode()
