"""kill -9 the real `mailwright serve` while its queue runner is in the middle of a delivery,
restart it, and count what the remote peer got: once or twice, never zero.

The peer answers every line a second late, so the kill lands at a known point of the session:
- "before the data": the runner's session is open (its greeting still pending), nothing of the
  message sent: it must arrive exactly once, after the restart;
- "after the data": the peer has the whole message but its 250 is still pending, so we never
  learnt it: the restart sends it again, a duplicate (RFC 5321 4.5.4 accepts that; a loss it
  does not).
"""

from __future__ import annotations

import signal
import smtplib
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from support.serve_process import cli, serve_env, start
from support.smtp_peer import SmtpPeer

from mailwright.store import open_store

SUBJECT = b"Subject: survives a crash\r\n"


def start_server(data: Path, peer: SmtpPeer) -> tuple[subprocess.Popen[bytes], int]:
    env = serve_env(
        "submission",
        MAILWRIGHT_ROUTES=f"example.net=127.0.0.1:{peer.port}",
        MAILWRIGHT_DNS_SERVERS="127.0.0.1:9",  # never asked: the route is static
        MAILWRIGHT_DKIM_SIGN="false",
    )
    proc, ports = start(data, env)
    return proc, ports["submission"]


def queue_size(data: Path) -> int:
    store = open_store(data)
    try:
        return store.queue_size()
    finally:
        store.close()


def copies(peer: SmtpPeer) -> int:
    return sum(SUBJECT in m.data for m in peer.messages)


@pytest.mark.parametrize("kill_at", ["before the data", "after the data"])
def test_delivery_survives_kill_9(tmp_path: Path, smtp_peer_factory: Any, kill_at: str) -> None:
    data = tmp_path / "data"
    cli(data, "domain", "add", "example.test")
    cli(data, "account", "add", "alice@example.test", "--password-stdin", stdin="pw-alice\n")
    peer: SmtpPeer = smtp_peer_factory(starttls=False)
    peer.delay = 1.0
    proc, port = start_server(data, peer)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.login("alice@example.test", "pw-alice")
            client.sendmail("alice@example.test", ["friend@example.net"],
                            b"From: alice@example.test\r\n" + SUBJECT + b"\r\nbody\r\n")
        if kill_at == "before the data":
            # (The peer signals new sessions and messages, not single commands.)
            peer.wait_until(lambda: len(peer.sessions) >= 1, 30)
        else:
            peer.wait_for(1, 30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert queue_size(data) == 1  # the 250 was never recorded: still queued
    expected = 1 if kill_at == "before the data" else 2
    peer.delay = 0.0
    proc, _port = start_server(data, peer)  # the restarted runner finds the row due
    try:
        peer.wait_until(lambda: copies(peer) >= expected, 30)
        deadline = time.monotonic() + 30
        while queue_size(data) and time.monotonic() < deadline:  # the 250 recorded
            time.sleep(0.05)
        assert queue_size(data) == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert copies(peer) == expected
