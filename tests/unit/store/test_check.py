"""`check_store` (store/check.py): each kind of damage is made by hand, reported, and either
repaired by `repair=True` (what a crash may leave, counters) or reported as beyond repair
(a live message's file), never by deleting the message."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import time
from pathlib import Path

import pytest

from mailwright.store import Envelope, EnvelopeRecipient, SqliteStore
from mailwright.store.check import CheckError, CheckReport, check_store

HELLO = b"From: a@remote.test\r\nSubject: hello\r\n\r\nHello there.\r\n"
SECOND = b"From: a@remote.test\r\nSubject: second\r\n\r\nAnother one.\r\n"
REMOTE = b"From: alice@example.test\r\nSubject: out\r\n\r\nTo the world.\r\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_file(data_dir: Path, data: bytes) -> Path:
    digest = sha(data)
    return data_dir / "blobs" / digest[:2] / digest


def sql(
    data_dir: Path, statement: str, params: tuple[object, ...] = ()
) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(data_dir / "mailwright.db", isolation_level=None)
    try:
        return conn.execute(statement, params).fetchall()
    finally:
        conn.close()


def kinds(report: CheckReport) -> list[str]:
    return sorted(p.kind for p in report.problems)


def age(path: Path, seconds: float = 7200) -> None:
    """Make a file look `seconds` old (ctime cannot be set: tests use grace=0 with a store open)."""
    then = time.time() - seconds
    os.utime(path, (then, then))


async def _fill(store: SqliteStore) -> None:
    alice = store.add_account("alice@example.test", "h")
    bob = store.add_account("bob@example.test", "h")
    for data, accounts, remotes in (
        (HELLO, [alice.id, bob.id], []),
        (SECOND, [alice.id], []),
        (REMOTE, [], [EnvelopeRecipient("far@remote.test")]),
    ):
        staged = store.stage()
        staged.write(data)
        await store.deliver(staged, Envelope("a@remote.test"), accounts, remotes)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A closed store: alice and bob with HELLO, alice with SECOND, REMOTE queued."""
    data = tmp_path / "data"
    store = SqliteStore(data)
    try:
        store.add_domain("example.test")
        asyncio.run(_fill(store))
    finally:
        store.close()
    return data


def test_a_healthy_store_is_clean(data_dir: Path) -> None:
    seen: list[tuple[int, int]] = []
    report = check_store(data_dir, progress=lambda done, total: seen.append((done, total)))
    assert report.problems == []
    assert report.clean
    assert (report.messages, report.queued, report.blobs) == (3, 1, 3)
    assert report.mailboxes == 12  # six special-use mailboxes each
    assert report.bytes_verified == len(HELLO) + len(SECOND) + len(REMOTE)
    assert seen[-1] == (3, 3)
    assert not report.store_in_use


def test_no_store_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CheckError):
        check_store(tmp_path / "nothing")


def test_temp_file_left_by_a_crash_is_removed(data_dir: Path) -> None:
    leftover = data_dir / "tmp" / "0123abcd.tmp"
    leftover.write_bytes(b"half a message")
    listeners = data_dir / ".listeners.json.4242.tmp"
    listeners.write_text("{")
    report = check_store(data_dir)
    assert kinds(report) == ["temp-file", "temp-file"]
    assert all(p.repairable and not p.repaired for p in report.problems)
    assert leftover.exists()  # read-only without repair
    repaired = check_store(data_dir, repair=True)
    assert repaired.clean
    assert all(p.repaired for p in repaired.problems)
    assert not leftover.exists()
    assert not listeners.exists()
    assert check_store(data_dir).problems == []


def test_young_files_are_in_flight_while_the_store_is_open(data_dir: Path) -> None:
    store = SqliteStore(data_dir)  # as a running server: deliveries may be in flight
    try:
        staged = store.stage()  # a message being received: its temp file exists
        staged.write(b"Subject: arriving\r\n\r\n...")
        orphan = blob_file(data_dir, b"in flight")
        orphan.parent.mkdir(exist_ok=True)
        orphan.write_bytes(b"in flight")  # published, its commit not yet made
        report = check_store(data_dir, repair=True)
        assert report.store_in_use
        assert report.problems == []
        assert report.in_flight == 2
        assert staged.path.exists()
        assert orphan.exists()
        # Past the grace period they are leftovers even while the store is open.
        report = check_store(data_dir, repair=True, grace=0)
        assert kinds(report) == ["orphan-file", "temp-file"]
        assert report.clean
        assert not staged.path.exists()
        assert not orphan.exists()
        staged.abort()
    finally:
        store.close()


def test_orphan_blob_file_is_removed_and_a_referenced_one_kept(data_dir: Path) -> None:
    orphan = blob_file(data_dir, b"never committed")
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"never comm")  # possibly incomplete: a crash before the commit
    report = check_store(data_dir)
    [problem] = report.problems
    assert (problem.kind, problem.where) == ("orphan-file", str(orphan.relative_to(data_dir)))
    assert check_store(data_dir, repair=True).clean
    assert not orphan.exists()
    assert blob_file(data_dir, HELLO).exists()
    assert check_store(data_dir).problems == []


def test_missing_file_of_a_live_message_is_reported_not_repaired(data_dir: Path) -> None:
    blob_file(data_dir, HELLO).unlink()
    report = check_store(data_dir, repair=True)
    [problem] = report.problems
    assert problem.kind == "missing-file"
    assert not problem.repairable
    assert not problem.repaired
    assert "alice@example.test/INBOX UID 1" in problem.where
    assert "bob@example.test/INBOX UID 1" in problem.where
    assert not report.clean
    assert sql(data_dir, "SELECT count(*) FROM messages WHERE blob = ?", (sha(HELLO),)) == [(2,)]


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda raw: raw[:-3], "bytes"),  # truncated
        (lambda raw: raw.replace(b"Another", b"Brother"), "SHA-256"),  # same size, other bytes
    ],
)
def test_altered_file_of_a_live_message_is_reported(
    data_dir: Path, damage: object, expected: str
) -> None:
    path = blob_file(data_dir, SECOND)
    assert callable(damage)
    path.write_bytes(damage(path.read_bytes()))
    report = check_store(data_dir, repair=True)
    [problem] = report.problems
    assert problem.kind == "bad-file"
    assert expected in problem.detail
    assert problem.where == "alice@example.test/INBOX UID 2"
    assert not report.clean


def test_queued_message_without_its_file_is_reported(data_dir: Path) -> None:
    blob_file(data_dir, REMOTE).unlink()
    [problem] = check_store(data_dir).problems
    assert problem.kind == "missing-file"
    assert problem.where.startswith("queue id ")
    assert not problem.repairable


def test_counters_behind_their_rows_are_recomputed(data_dir: Path) -> None:
    sql(data_dir, "UPDATE mailboxes SET uidnext = 2, highestmodseq = 1 WHERE name = 'INBOX' "
        "AND account_id = (SELECT id FROM accounts WHERE address = 'alice@example.test')")
    sql(data_dir, "UPDATE blobs SET refcount = 1 WHERE sha256 = ?", (sha(HELLO),))
    sql(data_dir, "UPDATE meta SET value = '1' WHERE key = 'last_uidvalidity'")
    report = check_store(data_dir)
    assert kinds(report) == ["highestmodseq", "refcount", "uidnext", "uidvalidity"]
    assert check_store(data_dir, repair=True).clean
    assert check_store(data_dir).problems == []
    [(uidnext, highest)] = sql(
        data_dir, "SELECT uidnext, highestmodseq FROM mailboxes WHERE name = 'INBOX' "
        "AND account_id = (SELECT id FROM accounts WHERE address = 'alice@example.test')")
    assert uidnext == 3
    assert highest >= 3
    assert sql(data_dir, "SELECT refcount FROM blobs WHERE sha256 = ?", (sha(HELLO),)) == [(2,)]


def test_expunged_uids_count_for_uidnext(data_dir: Path) -> None:
    inbox = "(SELECT id FROM mailboxes WHERE name = 'INBOX' AND account_id = " \
            "(SELECT id FROM accounts WHERE address = 'bob@example.test'))"
    sql(data_dir, f"INSERT INTO expunged (mailbox_id, uid, modseq) VALUES ({inbox}, 7, 50)")
    report = check_store(data_dir)
    assert kinds(report) == ["highestmodseq", "uidnext"]
    assert check_store(data_dir, repair=True).clean
    assert sql(data_dir, f"SELECT uidnext, highestmodseq FROM mailboxes WHERE id = {inbox}") \
        == [(8, 50)]


def test_uid_both_present_and_expunged_is_reported(data_dir: Path) -> None:
    sql(data_dir, "INSERT INTO expunged (mailbox_id, uid, modseq) SELECT mailbox_id, uid, "
        "modseq FROM messages WHERE uid = 1 LIMIT 1")
    report = check_store(data_dir, repair=True)
    assert kinds(report) == ["expunged"]
    assert not report.clean


def test_message_row_without_its_blob_row_breaks_a_foreign_key(data_dir: Path) -> None:
    conn = sqlite3.connect(data_dir / "mailwright.db", isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("INSERT INTO messages (mailbox_id, uid, blob, internal_date, size, modseq) "
                     "SELECT mailbox_id, 99, 'ff' || substr(blob, 3), 0, size, 1 FROM messages "
                     "LIMIT 1")
    finally:
        conn.close()
    report = check_store(data_dir, repair=True)
    assert "foreign-key" in kinds(report)
    assert not report.clean


def test_message_size_unlike_its_file_is_reported(data_dir: Path) -> None:
    sql(data_dir, "UPDATE messages SET size = 3 WHERE blob = ?", (sha(SECOND),))
    [problem] = check_store(data_dir).problems
    assert problem.kind == "message-size"
    assert not problem.repairable


def test_unreferenced_blob_with_a_bad_file_is_dropped(data_dir: Path) -> None:
    # The queue's row went (delivered) but the blob kept a count: the collector never ran.
    sql(data_dir, "DELETE FROM queue")
    blob_file(data_dir, REMOTE).unlink()
    report = check_store(data_dir)
    assert kinds(report) == ["refcount", "unreferenced-bad-file"]
    assert check_store(data_dir, repair=True).clean
    assert sql(data_dir, "SELECT count(*) FROM blobs WHERE sha256 = ?", (sha(REMOTE),)) == [(0,)]
    assert check_store(data_dir).problems == []


def test_stray_file_is_reported_not_removed(data_dir: Path) -> None:
    stray = data_dir / "blobs" / "notes.txt"
    stray.write_text("mine")
    report = check_store(data_dir, repair=True)
    assert kinds(report) == ["stray-file"]
    assert not report.clean
    assert stray.exists()


def test_damaged_database_keeps_every_file(data_dir: Path) -> None:
    """If the rows cannot be trusted, no file is called unreferenced and removed."""
    (data_dir / "mailwright.db-wal").unlink(missing_ok=True)
    raw = bytearray((data_dir / "mailwright.db").read_bytes())
    page = 4096
    for offset in range(page, len(raw), page):  # every page but the first: garbage
        raw[offset:offset + page] = b"\xa5" * page
    (data_dir / "mailwright.db").write_bytes(bytes(raw))
    report = check_store(data_dir, repair=True)
    assert "database" in kinds(report)
    assert not report.clean
    assert blob_file(data_dir, HELLO).exists()
    assert blob_file(data_dir, REMOTE).exists()


def test_damaged_table_keeps_every_file(data_dir: Path) -> None:
    conn = sqlite3.connect(data_dir / "mailwright.db", isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        [(root,)] = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'blobs'")
        [(page,)] = conn.execute("PRAGMA page_size")
    finally:
        conn.close()
    with open(data_dir / "mailwright.db", "r+b") as db:
        db.seek((root - 1) * page)
        db.write(b"\x0d" + b"\xff" * (page - 1))  # the blobs table's page: garbage
    report = check_store(data_dir, repair=True)
    assert "database" in kinds(report)
    assert not report.clean
    assert blob_file(data_dir, HELLO).exists()
    assert blob_file(data_dir, REMOTE).exists()
