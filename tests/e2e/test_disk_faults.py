"""A full disk and a read-only disk: temporary errors, nothing stored lost, recovery by itself.

The real `mailwright serve` keeps its data on small tmpfs mounts (the tests run as root; they
skip where mounting is not allowed). What each protocol must answer while the disk cannot take
a write: SMTP 451/452 4.3.x and never 250 (RFC 3463 X.3.1 "mail system full"), IMAP a tagged
NO [UNAVAILABLE] (RFC 5530: a temporary failure; [OVERQUOTA] would blame the user's quota),
POP3 QUIT -ERR [SYS/TEMP] (RFC 3206) with the deletions not done. Reads go on working. Once
space comes back, the same server accepts the same operations: no restart.

A tmpfs with a file open for writing cannot be remounted read-only (EBUSY), and SQLite keeps
its database open for writing, so the read-only test puts the message files (blobs/, tmp/) on
a tmpfs of their own, reached through symlinks, and remounts that one; the database's own
full-disk errors (SQLITE_FULL) are covered by the disk-full test.
"""

from __future__ import annotations

import contextlib
import errno
import imaplib
import os
import poplib
import re
import shutil
import signal
import smtplib
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.serve_process import cli, serve_env, start

ALICE, ALICE_PW = "alice@example.test", "pw-alice"
TIMEOUT = 10.0
# Above the store's in-memory WRITE_BUFFER (64 KB): the message goes to disk as it arrives,
# so the failure comes mid-DATA / mid-literal, not at the commit.
LARGE = 200 * 1024

Mount = Callable[[Path, int], Path]


@pytest.fixture
def tmpfs() -> Iterator[Mount]:
    """mount(where, megabytes) -> where, a fresh tmpfs; unmounted at teardown, after the
    server (started inside the test) is gone."""
    mounted: list[Path] = []

    def mount(where: Path, megabytes: int) -> Path:
        where.mkdir(parents=True, exist_ok=True)
        if shutil.which("mount") is None or os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root and mount(8)")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(where)],
            capture_output=True, text=True, timeout=30,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        if subprocess.run(["umount", str(where)], capture_output=True, timeout=30).returncode:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


@contextlib.contextmanager
def serving(data: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, int]]]:
    proc, ports = start(data, serve_env("smtp", "imap", "pop3"))
    try:
        yield proc, ports
        assert proc.poll() is None, "the server died"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def setup_data(data: Path) -> None:
    cli(data, "domain", "add", "example.test")
    cli(data, "account", "add", ALICE, "--password-stdin", stdin=f"{ALICE_PW}\n")


def message(subject: str, size: int = 0) -> bytes:
    body = b"some text\r\n" * 20 + (b"z" * 98 + b"\r\n") * (size // 100)
    return f"From: {ALICE}\r\nTo: {ALICE}\r\nSubject: {subject}\r\n\r\n".encode() + body


def fill(directory: Path) -> Path:
    """Write a filler file until the file system has no block left; returns it."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return filler


def smtp_send(port: int, subject: str, size: int = 0) -> tuple[int, bytes]:
    """One message over SMTP: the final reply (an error at DATA, too)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT) as client:
        client.ehlo()
        client.mail("bob@remote.test")
        client.rcpt(ALICE)
        try:
            code, text = client.data(message(subject, size))
        except smtplib.SMTPDataError as exc:
            error = exc.smtp_error
            code, text = exc.smtp_code, error if isinstance(error, bytes) else error.encode()
        assert client.noop()[0] == 250  # the session goes on after the error
        return code, text


def imap_login(port: int) -> imaplib.IMAP4:
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=TIMEOUT)
    imap.login(ALICE, ALICE_PW)
    imap.select("INBOX")
    return imap


def stored(imap: imaplib.IMAP4) -> dict[str, bytes]:
    """Subject -> the stored message, byte for byte (FETCH BODY.PEEK[]: a read)."""
    typ, fetched = imap.fetch("1:*", "(BODY.PEEK[])")
    assert typ == "OK", fetched
    found: dict[str, bytes] = {}
    for item in fetched:
        if isinstance(item, tuple):
            subject = re.search(rb"^Subject: (\S+)\r$", item[1], re.M)
            assert subject is not None
            found[subject.group(1).decode()] = item[1]
    return found


def pop3_with_dele(port: int) -> poplib.POP3:
    pop = poplib.POP3("127.0.0.1", port, timeout=TIMEOUT)
    pop.user(ALICE)
    pop.pass_(ALICE_PW)
    pop.dele(1)
    return pop


def assert_temporary_smtp(reply: tuple[int, bytes]) -> None:
    code, text = reply
    assert code in (451, 452), reply
    assert text.startswith(b"4.3."), reply


def assert_unavailable(imap: imaplib.IMAP4, typ: str, answer: list[Any]) -> None:
    assert typ == "NO", answer
    assert answer[0] is not None
    assert answer[0].startswith(b"[UNAVAILABLE]"), answer


def no_temp_files(data: Path) -> None:
    """Staged files of failed writes are removed (once no worker touches them)."""
    deadline = time.monotonic() + TIMEOUT
    while left := list((data / "tmp").iterdir()):
        assert time.monotonic() < deadline, f"temp files left behind: {left}"
        time.sleep(0.05)


def check_store(data: Path, *, orphans: bool = False) -> None:
    """After the server stopped: SQLite's integrity check, every row's file there, and
    `mailwright check` clean (with `orphans`: once --repair removed what a read-only disk
    kept the blob collector from removing, files no row references, which are legal; its
    exit code is 0 only when nothing is left)."""
    with contextlib.closing(sqlite3.connect(data / "mailwright.db")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        blobs = [sha for (sha,) in db.execute("SELECT blob FROM messages")]
    for sha in blobs:  # content-addressed: the name is the hash
        assert (data / "blobs" / sha[:2] / sha).is_file(), sha
    cli(data, "check", *(["--repair"] if orphans else []))


def test_disk_full(tmp_path: Path, tmpfs: Mount) -> None:
    data = tmpfs(tmp_path / "disk", 24) / "data"
    setup_data(data)
    with serving(data) as (_proc, ports):
        for n in range(3):
            assert smtp_send(ports["smtp"], f"before-{n}")[0] == 250
        imap = imap_login(ports["imap"])
        before = stored(imap)
        pop = pop3_with_dele(ports["pop3"])

        filler = fill(data.parent)
        t0 = time.monotonic()
        assert_temporary_smtp(smtp_send(ports["smtp"], "full-small"))
        assert_temporary_smtp(smtp_send(ports["smtp"], "full-large", LARGE))
        assert_unavailable(imap, *imap.append("INBOX", None, None, message("full-a")))
        assert_unavailable(imap, *imap.append("INBOX", None, None, message("full-b", LARGE)))
        assert_unavailable(imap, *imap.store("1", "+FLAGS", "(\\Flagged)"))
        # POP3: the expunge cannot commit, so nothing is deleted and the client is told.
        with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
            pop.quit()
        pop.close()
        # Reads still work, and everything stored before is intact.
        assert stored(imap) == before
        typ, flags = imap.fetch("1", "(FLAGS)")
        assert typ == "OK"
        assert flags[0] is not None
        assert b"\\Flagged" not in flags[0]
        no_temp_files(data)
        elapsed = time.monotonic() - t0

        filler.unlink()  # space is back: the same operations succeed, no restart
        assert smtp_send(ports["smtp"], "after-small")[0] == 250
        assert smtp_send(ports["smtp"], "after-large", LARGE)[0] == 250
        typ, answer = imap.append("INBOX", None, None, message("after-a"))
        assert typ == "OK", answer
        typ, answer = imap.store("1", "+FLAGS", "(\\Flagged)")
        assert typ == "OK", answer
        pop = pop3_with_dele(ports["pop3"])
        assert pop.quit().startswith(b"+OK")
        imap.noop()
        now = stored(imap)
        imap.logout()
        no_temp_files(data)
    assert elapsed < TIMEOUT, "the errors took too long: a wedged writer?"
    # The first message went with the successful POP3 QUIT; the rest is intact.
    assert {k: v for k, v in now.items() if k in before} == {
        k: v for k, v in before.items() if k != "before-0"
    }
    assert set(now) - set(before) == {"after-small", "after-large", "after-a"}
    check_store(data)


def test_read_only_message_files(tmp_path: Path, tmpfs: Mount) -> None:
    data = tmpfs(tmp_path / "db", 16) / "data"
    files = tmpfs(tmp_path / "files", 16)
    data.mkdir()
    for name in ("blobs", "tmp"):  # one file system for both: a link() cannot cross two
        (files / name).mkdir()
        (data / name).symlink_to(files / name)
    setup_data(data)
    with serving(data) as (proc, ports):
        for n in range(3):
            assert smtp_send(ports["smtp"], f"before-{n}")[0] == 250
        imap = imap_login(ports["imap"])
        typ, answer = imap.append("INBOX", None, None, message("before-append"))
        assert typ == "OK", answer
        before = stored(imap)

        remount = subprocess.run(["mount", "-o", "remount,ro", str(files)],
                                 capture_output=True, text=True, timeout=30)
        assert remount.returncode == 0, remount.stderr
        try:
            with pytest.raises(OSError, match="Read-only file system"):
                (files / "probe").write_bytes(b"x")
            assert_temporary_smtp(smtp_send(ports["smtp"], "ro-small"))
            assert_temporary_smtp(smtp_send(ports["smtp"], "ro-large", LARGE))
            assert_unavailable(imap, *imap.append("INBOX", None, None, message("ro-a")))
            # Reads work: IMAP FETCH, POP3 RETR; flags live in the database, still writable.
            assert stored(imap) == before
            typ, answer = imap.store("2", "+FLAGS", "(\\Flagged)")
            assert typ == "OK", answer
            pop = poplib.POP3("127.0.0.1", ports["pop3"], timeout=TIMEOUT)
            pop.user(ALICE)
            pop.pass_(ALICE_PW)
            _, lines, _ = pop.retr(1)
            assert b"Subject: before-0" in b"\r\n".join(lines)
            # The expunge commits; its file cannot go yet (an orphan is legal, see blobs.py).
            pop.dele(1)
            assert pop.quit().startswith(b"+OK")
            assert proc.poll() is None
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(files)], check=True, timeout=30)

        assert smtp_send(ports["smtp"], "after-small")[0] == 250
        assert smtp_send(ports["smtp"], "after-large", LARGE)[0] == 250
        typ, answer = imap.append("INBOX", None, None, message("after-a"))
        assert typ == "OK", answer
        now = stored(imap)
        imap.logout()
        no_temp_files(data)
    assert set(now) == (set(before) - {"before-0"}) | {"after-small", "after-large", "after-a"}
    assert all(now[k] == before[k] for k in before if k != "before-0")
    check_store(data, orphans=True)
    assert not list(files.glob("tmp/*"))
