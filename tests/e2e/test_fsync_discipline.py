"""Every acknowledgment follows the fsyncs of what it acknowledges: the proof kill -9 cannot give.

The real `mailwright serve` runs under strace (tests/support/strace_log.py says what is
recorded and what each reply needs). The test drives it with real clients: SMTP DATA from
several connections at once (group commits), a submission whose remote copy the queue
delivers to a loopback aiosmtpd peer, IMAP APPEND and STORE, POP3 DELE + QUIT. The same
scenario with `store.durable = false` must be caught: every reply in it is flagged, so the
checker can fail.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import imaplib
import os
import poplib
import re
import shutil
import signal
import smtplib
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support.serve_process import cli, serve_env, start
from support.smtp_peer import SmtpPeer
from support.strace_log import STRACE_OPTIONS, Ack, Verdict, check, read_log

ALICE, ALICE_PW = "alice@example.test", "pw-alice"
SENDERS, PER_SENDER = 4, 3
# Lines of 1,000 octets: a message above the store's INLINE_FSYNC_MAX (256 KB).
LARGE_LINES = 300
TIMEOUT = 20.0


@pytest.fixture(scope="module")
def strace() -> list[str]:
    """The strace command line, or a skip: no strace, or ptrace not permitted (a container
    without CAP_SYS_PTRACE, Yama)."""
    binary = shutil.which("strace")
    if binary is None:
        pytest.skip("strace is not installed")
    reason = ""
    for extra in (["--seccomp-bpf"], []):  # seccomp-bpf: stop only at the traced calls
        command = [binary, *extra, *STRACE_OPTIONS]
        probe = subprocess.run(
            [*command, "-o", "/dev/null", "true"], capture_output=True, text=True, timeout=30
        )
        if probe.returncode == 0:
            return command
        reason = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else "failed"
    pytest.skip(f"strace cannot trace here (ptrace not permitted?): {reason}")


@dataclasses.dataclass
class Scenario:
    data: Path
    # Each acknowledgment with the Subject of the message it stores, if it stores one.
    acks: list[tuple[Ack, str | None]] = dataclasses.field(default_factory=list)
    # Subject -> SHA-256 of the stored bytes (the blob's address), from IMAP FETCH BODY[].
    blobs: dict[str, str] = dataclasses.field(default_factory=dict)

    def with_blobs(self) -> list[Ack]:
        """The acknowledgments, each naming the message file it stores."""
        out = []
        for ack, subject in self.acks:
            if subject is not None:
                sha = self.blobs[subject]
                ack = dataclasses.replace(ack, blob=self.data / "blobs" / sha[:2] / sha)
            out.append(ack)
        return out


def message(subject: str, to: str = ALICE) -> bytes:
    return (f"From: {ALICE}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n"
            + "some text\r\n" * 20).encode()


def stop_traced(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server (strace's child), then wait for strace to write out its log."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    try:
        pids = [int(pid) for pid in children.read_text().split()]
    except OSError:
        pids = []

    def signal_all(signum: int) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal_all(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        signal_all(signal.SIGKILL)
        proc.kill()
        proc.wait(timeout=10)


def queue_size(data: Path) -> int:
    with contextlib.closing(
        sqlite3.connect(f"file:{data / 'mailwright.db'}?mode=ro", uri=True)
    ) as db:
        return int(db.execute("SELECT count(*) FROM queue").fetchone()[0])


def local_port(sock: Any) -> int:
    """The client's own port: the server's socket for this connection ends there (-yy)."""
    return int(sock.getsockname()[1])


def last_tag(imap: imaplib.IMAP4) -> bytes:
    """The tag of imaplib's last command (its `tagpre` is bytes at run time)."""
    prefix: Any = imap.tagpre
    return bytes(prefix) + str(imap.tagnum - 1).encode()


def smtp_sender(port: int, worker: int, scenario: Scenario, errors: list[BaseException]) -> None:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT) as client:
            client.ehlo()
            local = local_port(client.sock)
            for n in range(PER_SENDER):
                subject = f"fsync-{worker}-{n}"
                client.mail(f"w{worker}@remote.test")
                client.rcpt(ALICE)
                code, text = client.data(message(subject))
                assert code == 250, (code, text)
                ack = Ack(f"SMTP DATA {subject}", local, subject.encode(), local, b"250 " + text)
                scenario.acks.append((ack, subject))
    except BaseException as exc:  # reported by the test thread
        errors.append(exc)


def drive(scenario: Scenario, ports: dict[str, int], peer: SmtpPeer) -> None:
    """The client side: every acknowledgment it gets goes into `scenario.acks`."""
    data = scenario.data
    # 1. Concurrent SMTP deliveries: several DATA replies may share one group commit.
    errors: list[BaseException] = []
    threads = [threading.Thread(target=smtp_sender, args=(ports["smtp"], w, scenario, errors))
               for w in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 2)
    assert not errors, errors

    # 2. A submission to a remote recipient; the queue delivers it, and the removal of its
    # row is durable before the server answers anything the test asks after seeing it gone.
    with smtplib.SMTP("127.0.0.1", ports["submission"], timeout=TIMEOUT) as client:
        client.login(ALICE, ALICE_PW)
        local = local_port(client.sock)
        client.mail(ALICE)
        client.rcpt("friend@example.net")
        client.rcpt(ALICE)  # a local copy too: its blob is then visible over IMAP
        code, text = client.data(message("fsync-remote", "friend@example.net"))
        assert code == 250, (code, text)
        ack = Ack("SMTP DATA fsync-remote (queued)", local, b"fsync-remote", local,
                  b"250 " + text)
        scenario.acks.append((ack, "fsync-remote"))
        peer.wait_for(1, TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while queue_size(data):
            assert time.monotonic() < deadline, "the delivered message stayed queued"
            time.sleep(0.05)
        # The removal is committed (visible): from now on, a reply must come after its fsync.
        code, text = client.noop()
        assert code == 250
        ack = Ack("queue removal after the peer's 250", peer.port, b"250 2.0.0 OK queued",
                  local, b"250 " + text + b"\r\n")
        scenario.acks.append((ack, None))

    # 3. IMAP APPEND (twice) and STORE.
    imap = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=TIMEOUT)
    try:
        imap.login(ALICE, ALICE_PW)
        local = local_port(imap.sock)
        for n in range(2):
            subject = f"fsync-append-{n}"
            raw = message(subject)
            if n:  # a large one: written out as it arrives, fsynced in the store's pool
                raw += (b"y" * 998 + b"\r\n") * LARGE_LINES
            typ, answer = imap.append("INBOX", None, None, raw)
            assert typ == "OK", answer
            tag = last_tag(imap)
            ack = Ack(f"IMAP APPEND {subject}", local, tag + b" APPEND", local, tag + b" OK")
            scenario.acks.append((ack, subject))
        imap.select("INBOX")
        typ, answer = imap.store("1", "+FLAGS", "(\\Flagged)")
        assert typ == "OK", answer
        tag = last_tag(imap)
        scenario.acks.append((Ack("IMAP STORE", local, tag + b" STORE", local, tag + b" OK"),
                              None))
        # The content address of every message: the SHA-256 of the stored bytes.
        typ, fetched = imap.fetch("1:*", "(BODY.PEEK[])")
        assert typ == "OK"
        for item in fetched:
            if isinstance(item, tuple):
                found = re.search(rb"^Subject: (\S+)\r$", item[1], re.M)
                assert found is not None
                scenario.blobs[found.group(1).decode()] = hashlib.sha256(item[1]).hexdigest()
        imap.logout()
    finally:
        with contextlib.suppress(Exception):
            imap.shutdown()

    # 4. POP3 DELE + QUIT: the +OK comes after the expunge is committed.
    pop = poplib.POP3("127.0.0.1", ports["pop3"], timeout=TIMEOUT)
    local = local_port(pop.sock)
    pop.user(ALICE)
    pop.pass_(ALICE_PW)
    pop.dele(1)
    assert pop.quit().startswith(b"+OK")
    scenario.acks.append((Ack("POP3 DELE + QUIT", local, b"QUIT", local, b"+OK"), None))


def run_traced(tmp_path: Path, strace: list[str], durable: bool) -> tuple[Scenario, list[Verdict]]:
    data = tmp_path / "data"
    cli(data, "domain", "add", "example.test")
    cli(data, "account", "add", ALICE, "--password-stdin", stdin=f"{ALICE_PW}\n")
    scenario = Scenario(data)
    log = tmp_path / "strace.log"
    with SmtpPeer(starttls=False) as peer:
        env = serve_env(
            "smtp", "submission", "imap", "pop3",
            MAILWRIGHT_STORE_DURABLE="true" if durable else "false",
            MAILWRIGHT_ROUTES=f"example.net=127.0.0.1:{peer.port}",
            MAILWRIGHT_DNS_SERVERS="127.0.0.1:9",  # never asked: the route is static
            MAILWRIGHT_DKIM_SIGN="false",
        )
        proc, ports = start(data, env, prefix=[*strace, "-o", str(log)])
        try:
            drive(scenario, ports, peer)
        finally:
            stop_traced(proc)
    return scenario, check(read_log(log), data / "mailwright.db-wal", scenario.with_blobs())


def describe(verdicts: list[Verdict]) -> str:
    return "\n".join(f"{v.ack.label}: {'; '.join(v.problems) or 'ok'}" for v in verdicts)


def test_every_acknowledgment_follows_its_fsyncs(tmp_path: Path, strace: list[str]) -> None:
    _, verdicts = run_traced(tmp_path, strace, durable=True)
    assert len(verdicts) == SENDERS * PER_SENDER + 6
    assert all(not v.problems for v in verdicts), describe(verdicts)
    commits = {v.commit for v in verdicts}
    # Evidence for the report (pytest -s): acknowledgments checked, commits that covered them.
    print(f"\nfsync discipline: {len(verdicts)} acknowledgments checked, "
          f"{len(commits)} WAL commit syncs covered them")


def test_checker_catches_a_server_that_does_not_fsync(tmp_path: Path, strace: list[str]) -> None:
    _, verdicts = run_traced(tmp_path, strace, durable=False)
    flagged = [v for v in verdicts if v.problems]
    assert flagged == verdicts, describe(verdicts)
