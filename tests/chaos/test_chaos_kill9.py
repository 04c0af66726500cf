"""kill -9 the real server at random moments under mixed load, restart it on the same data
directory, and check after every kill that nothing acknowledged was lost or changed.

Short form (the normal suite): 10 kills. Long form: `CHAOS_KILLS=50 .venv/bin/python -m pytest
tests/chaos -q -s` (`-s` shows the closing summary; CHAOS_SEED=<n> replays a run's choices of
moments and operations, though never the exact interleaving).

After each kill (chaos_load.py has the load and the ledger):
- `check_store(repair=True)` (what `mailwright check --repair` runs) finds at most temp files
  and unreferenced message files (what a crash may legally leave), removes them, and a second
  check is clean: no row without its file, no truncated or altered file, counters in order;
- every acknowledged message is there, byte for byte after our trace fields, in the mailbox it
  was acknowledged in, with the flags STORE acknowledged; any message found at all is whole;
- acknowledged expunges, moves and POP3 deletes stay done;
- UIDVALIDITY never changes, UIDNEXT never goes back, a UID never comes back or changes hands
  (also checked over IMAP after each restart, and in every APPENDUID and COPYUID);
- every message accepted for the remote domain is still queued or arrived at the peer.
At the end the queue drains (each remote message arrives at least once) and `mailwright check`
exits 0. kill -9 keeps the page cache: this proves crash consistency, not fsync discipline.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import argon2
from chaos_load import (
    ACCOUNTS,
    DOMAIN,
    MAX_MESSAGE_SIZE,
    REMOTE_DOMAIN,
    Ledger,
    Load,
    Verifier,
    password,
)
from support.serve_process import MAILWRIGHT, serve_env, start
from support.smtp_peer import SmtpPeer

from mailwright.store import open_store
from mailwright.store.check import check_store

KILLS = int(os.environ.get("CHAOS_KILLS", "10"))
# Once every client has had something acknowledged (at most WARM_SECONDS), the load runs this
# long (uniformly drawn) before the kill: the kill lands anywhere among the operations.
WARM_SECONDS = 5.0
LOAD_SECONDS = (0.0, 1.2)
# The share of kills that land within 0.3 s of the listeners being bound instead.
EARLY_KILLS = 0.2
CRASH_LEFTOVERS = frozenset({"temp-file", "orphan-file"})
DRAIN_SECONDS = 60.0


def make_accounts(data: Path) -> None:
    """The accounts, with cheap argon2id hashes (verification takes the cost stored in the
    hash): each round's clients log in again, and at the default cost (~150 ms of CPU each on
    this 2-core target) the logins would take much of each round's time."""
    hasher = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    store = open_store(data)
    try:
        store.add_domain(DOMAIN)
        for address in ACCOUNTS:
            store.add_account(address, hasher.hash(password(address)))
    finally:
        store.close()


def queue_size(data: Path) -> int:
    conn = sqlite3.connect(data / "mailwright.db")
    try:
        return int(conn.execute("SELECT count(*) FROM queue").fetchone()[0])
    finally:
        conn.close()


def test_acknowledged_work_survives_repeated_kill_9(tmp_path: Path) -> None:
    assert KILLS >= 1, "CHAOS_KILLS must be at least 1"
    seed = int(os.environ.get("CHAOS_SEED", str(time.time_ns() % 2**31)))
    rng = random.Random(seed)
    data = tmp_path / "data"
    make_accounts(data)
    ledger = Ledger()
    verifier = Verifier(data, ledger)
    leftovers = 0
    peer = SmtpPeer(starttls=False).start()
    env = serve_env(
        "smtp", "submission", "imap", "pop3",
        MAILWRIGHT_ROUTES=f"{REMOTE_DOMAIN}=127.0.0.1:{peer.port}",
        MAILWRIGHT_DNS_SERVERS="127.0.0.1:9",  # never asked: the route is static
        MAILWRIGHT_DKIM_SIGN="false",
        MAILWRIGHT_QUEUE_RETRY_SCHEDULE="1s",
        MAILWRIGHT_QUEUE_POLL_INTERVAL="0.5",
        MAILWRIGHT_SMTP_MAX_MESSAGE_SIZE=str(MAX_MESSAGE_SIZE),
    )
    proc: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    try:
        for kill in range(1, KILLS + 1):
            proc, ports = start(data, env)
            load = Load(ports, ledger, rng.randrange(2**31)).start()
            if rng.random() < EARLY_KILLS:  # amid the start: recovery, clean-up scan, logins
                time.sleep(rng.uniform(0.0, 0.3))
            else:
                load.warm(WARM_SECONDS)
                # Beside the running server under load: read-only, and nothing to report
                # (files in flight are young while the store is open; suspects are looked at
                # twice).
                live = check_store(data)
                assert live.problems == [], f"seed {seed}, kill {kill}, live: {live.problems}"
                assert live.store_in_use
                time.sleep(rng.uniform(*LOAD_SECONDS))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            load.stop()

            report = check_store(data, repair=True)
            unexpected = [p for p in report.problems if p.kind not in CRASH_LEFTOVERS]
            assert not unexpected, f"seed {seed}, kill {kill}: {unexpected}"
            assert report.clean, f"seed {seed}, kill {kill}: {report.remaining}"
            leftovers += len(report.problems)
            again = check_store(data)
            assert again.problems == [], f"seed {seed}, kill {kill}: {again.problems}"

            problems = verifier.verify([m.data for m in list(peer.messages)])
            assert not problems, f"seed {seed}, kill {kill}: {problems[:10]}"

        # The last restart: the queue delivers everything it holds.
        proc, _ = start(data, env)
        deadline = time.monotonic() + DRAIN_SECONDS
        while queue_size(data) and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert queue_size(data) == 0, f"seed {seed}: the queue did not drain"
        arrived = [m.data for m in list(peer.messages)]
        problems = verifier.verify(arrived)
        assert not problems, f"seed {seed}, after the drain: {problems[:10]}"
        tokens = {t for t in ledger.remote if any(t.encode() in d for d in arrived)}
        assert tokens == ledger.remote, f"seed {seed}: remote mail lost"
        final = subprocess.run(
            [*MAILWRIGHT, "check", "--data", str(data)], capture_output=True, text=True,
            timeout=120, env=serve_env(),
        )
        assert final.returncode == 0, final.stdout + final.stderr
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        peer.stop()

    acknowledged = len(ledger.delivered.keys() | ledger.remote) + ledger.acks["imap APPEND"]
    print(
        f"\nchaos (seed {seed}): {KILLS} kills survived in {time.monotonic() - started:.0f} s; "
        f"{acknowledged} acknowledged messages (of {len(ledger.attempted)} attempted), "
        f"{verifier.checked} checks of acknowledged facts over all kills; acknowledgments: "
        f"{dict(sorted(ledger.acks.items()))}; {leftovers} crash leftovers repaired; "
        f"{len(peer.messages)} arrivals at the peer for {len(ledger.remote)} remote messages"
    )
    for kind in ("smtp 250", "submission 250", "imap APPEND", "imap STORE", "imap EXPUNGE",
                 "imap MOVE", "pop3 QUIT +OK", "smtp refused (550)", "smtp refused (552)"):
        assert ledger.acks[kind], f"seed {seed}: no {kind} acknowledged in {KILLS} rounds"
