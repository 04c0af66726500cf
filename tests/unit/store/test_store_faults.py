"""SQLite's own disk errors in the writer thread: StorageUnavailable for the ops they hit,
and a writer that goes on (tests/e2e/test_disk_faults.py does the same with a real disk)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mailwright.store import StorageUnavailable
from mailwright.store.writer import Transaction, Writer, map_error


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "f.db", isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (v BLOB)")
    return conn


@pytest.fixture
def writer(conn: sqlite3.Connection) -> Iterator[Writer]:
    w = Writer(conn, durable=True)  # owns `conn`; the test touches it only while w is idle
    yield w
    w.close()


def _insert(size: int) -> Callable[[Transaction], None]:
    def op(tx: Transaction) -> None:
        tx.conn.execute("INSERT INTO t (v) VALUES (zeroblob(?))", (size,))

    return op


def _count(writer: Writer) -> int:
    return int(writer.run(lambda tx: tx.conn.execute("SELECT count(*) FROM t").fetchone()[0]))


def test_sqlite_full_fails_the_whole_batch_and_the_writer_goes_on(
    writer: Writer, conn: sqlite3.Connection
) -> None:
    # max_page_count is SQLite's own "disk full": SQLITE_FULL where a page cannot be had, and
    # SQLite then rolls the whole transaction back, not just the statement.
    conn.execute("PRAGMA max_page_count = 20")
    release = threading.Event()
    writer.submit(lambda tx: release.wait(10))
    small = writer.submit(_insert(100))  # the same batch as the big one, before it
    big = writer.submit(_insert(1 << 20))
    release.set()
    with pytest.raises(StorageUnavailable, match="full"):
        big.result(10)
    with pytest.raises(StorageUnavailable):  # its work went with the transaction
        small.result(10)
    assert _count(writer) == 0
    writer.run(_insert(100))  # not stuck: a small one still fits
    conn.execute("PRAGMA max_page_count = 1073741823")
    writer.run(_insert(1 << 20))  # space is back
    assert _count(writer) == 2


def test_read_only_database_fails_every_op_and_the_writer_goes_on(
    writer: Writer, conn: sqlite3.Connection
) -> None:
    conn.execute("PRAGMA query_only = ON")  # SQLITE_READONLY from BEGIN IMMEDIATE on
    for _ in range(2):
        with pytest.raises(StorageUnavailable, match="readonly"):
            writer.run(_insert(10))
    conn.execute("PRAGMA query_only = OFF")
    writer.run(_insert(10))
    assert _count(writer) == 1


@pytest.mark.parametrize(
    "code", [sqlite3.SQLITE_IOERR_FSYNC, sqlite3.SQLITE_READONLY_DBMOVED, sqlite3.SQLITE_FULL]
)
def test_map_error_by_result_code(code: int) -> None:
    """An extended code counts by its primary code, whatever its message says."""
    exc = sqlite3.OperationalError("some wording of its own")
    exc.sqlite_errorcode = code
    assert isinstance(map_error(exc), StorageUnavailable)
    bug = sqlite3.OperationalError("no such table: x")
    bug.sqlite_errorcode = sqlite3.SQLITE_ERROR
    assert map_error(bug) is bug
