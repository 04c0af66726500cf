"""kill -9 the real server while clients deliver; every message that got its 250 must survive.

This proves crash-consistency (the page cache survives kill -9, so it does not prove fsync
discipline by itself; the store's unit tests and the durability design cover that).
"""

from __future__ import annotations

import hashlib
import signal
import smtplib
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

from support.serve_process import cli, serve_env, start

from mailwright.store import open_store

ROUNDS = 3
SENDERS = 4


def start_server(data: Path) -> tuple[subprocess.Popen[bytes], int]:
    proc, ports = start(data, serve_env("smtp"))
    return proc, ports["smtp"]


def sender(port: int, worker: int, stop: threading.Event, acked: dict[str, bytes]) -> None:
    n = 0
    while not stop.is_set():
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                while not stop.is_set():
                    n += 1
                    subject = f"crash-{worker}-{n}-{time.monotonic_ns()}"
                    body = (
                        f"From: w{worker}@remote.test\r\nTo: alice@example.test\r\n"
                        f"Subject: {subject}\r\n\r\n" + ("line of text\r\n" * 40)
                    ).encode()
                    client.sendmail(f"w{worker}@remote.test", ["alice@example.test"], body)
                    acked[subject] = body  # only after the 250
        except (OSError, smtplib.SMTPException):
            time.sleep(0.01)  # the server is down (killed); reconnect when it is back


def stored_messages(data: Path) -> dict[str, bytes]:
    store = open_store(data)
    try:
        account = store.get_account("alice@example.test")
        assert account is not None
        found: dict[str, bytes] = {}
        for message in store.pop3_messages(account.id):
            raw = store.blob_path(message.blob).read_bytes()
            assert hashlib.sha256(raw).hexdigest() == message.blob
            for line in raw.split(b"\r\n"):
                if line.startswith(b"Subject: "):
                    found[line[9:].decode()] = raw
                    break
        return found
    finally:
        store.close()


def test_acknowledged_messages_survive_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cli(data, "domain", "add", "example.test")
    cli(data, "account", "add", "alice@example.test", "--password-stdin", stdin="pw-alice\n")
    acked: dict[str, bytes] = {}
    for _ in range(ROUNDS):
        proc, port = start_server(data)
        stop = threading.Event()
        threads = [
            threading.Thread(target=sender, args=(port, w, stop, acked), daemon=True)
            for w in range(SENDERS)
        ]
        for thread in threads:
            thread.start()
        before = len(acked)
        deadline = time.monotonic() + 20
        while len(acked) < before + 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # mid-load: some transactions are in flight
        proc.wait(timeout=10)
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        assert len(acked) > before, "no message was acknowledged in this round"

    stored = stored_messages(data)
    missing = sorted(set(acked) - set(stored))
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {missing[:3]}"
    for subject, body in acked.items():
        assert stored[subject].endswith(body), f"{subject} is not byte-identical"

    with sqlite3.connect(data / "mailwright.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()

    # UIDs never go backwards: a message delivered now gets a UID above every earlier one.
    proc, port = start_server(data)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail("late@remote.test", ["alice@example.test"],
                            b"Subject: after-restart\r\n\r\nhi\r\n")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    store = open_store(data)
    try:
        account = store.get_account("alice@example.test")
        assert account is not None
        uids = [m.uid for m in store.pop3_messages(account.id)]
        assert uids == sorted(uids)
        assert len(set(uids)) == len(uids)
        last = store.blob_path(store.pop3_messages(account.id)[-1].blob).read_bytes()
        assert b"Subject: after-restart" in last
    finally:
        store.close()
