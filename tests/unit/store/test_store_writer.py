"""The group-commit writer, failure mapping and concurrent readers."""

from __future__ import annotations

import asyncio
import errno
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from store_helpers import Deliver

from mailwright.store import (
    Account,
    Envelope,
    SqliteStore,
    StorageUnavailable,
    blobs,
)
from mailwright.store import (
    sqlite as sqlite_backend,
)
from mailwright.store.writer import Transaction, Writer, map_error


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Writer]:
    conn = sqlite3.connect(tmp_path / "w.db", isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE t (v INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE child (p INTEGER REFERENCES t(v))")
    w = Writer(conn, durable=True)
    yield w
    w.close()


def _values(tmp_path: Path) -> list[int]:
    conn = sqlite3.connect(tmp_path / "w.db")
    try:
        return [row[0] for row in conn.execute("SELECT v FROM t ORDER BY v")]
    finally:
        conn.close()


def _insert(value: int) -> Callable[[Transaction], int]:
    def op(tx: Transaction) -> int:
        tx.conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
        return value

    return op


def _hold(writer: Writer) -> threading.Event:
    """Occupy the writer thread until the returned event is set, so the next ops queue up."""
    release = threading.Event()
    started = threading.Event()

    def op(tx: Transaction) -> None:
        started.set()
        release.wait(10)

    writer.submit(op)
    assert started.wait(10)
    return release


def test_queued_ops_share_one_commit_and_fail_alone(writer: Writer, tmp_path: Path) -> None:
    release = _hold(writer)

    def boom(tx: Transaction) -> None:
        tx.conn.execute("INSERT INTO t (v) VALUES (2)")
        raise ValueError("bug in op")

    futures: list[Future[Any]] = [
        writer.submit(_insert(1)),
        writer.submit(boom),
        writer.submit(_insert(3)),
    ]
    release.set()
    assert futures[0].result(10) == 1
    with pytest.raises(ValueError, match="bug in op"):
        futures[1].result(10)
    assert futures[2].result(10) == 3
    assert writer.commits == 2  # the holder's batch, then one for all three
    assert writer.largest_batch == 3
    writer.close()
    assert _values(tmp_path) == [1, 3]


def test_background_ops_run_alone_after_every_queued_write(
    writer: Writer, tmp_path: Path
) -> None:
    """The deferred blob clean-up never delays nor joins a caller's write (writer.py)."""
    release = _hold(writer)
    order: list[str] = []

    def tagged(name: str, value: int) -> Callable[[Transaction], int]:
        def op(tx: Transaction) -> int:
            order.append(name)
            return _insert(value)(tx)

        return op

    background = [writer.submit(tagged(f"bg{n}", 10 + n), background=True) for n in range(2)]
    foreground = [writer.submit(tagged(f"fg{n}", n)) for n in range(3)]
    commits = writer.commits
    release.set()
    for future in [*background, *foreground]:
        future.result(10)
    assert order == ["fg0", "fg1", "fg2", "bg0", "bg1"]
    assert writer.commits == commits + 1 + 1 + 2  # the holder, the writes, one per background
    writer.submit(tagged("last", 99), background=True)
    writer.close()  # commits queued background ops too
    assert _values(tmp_path) == [0, 1, 2, 10, 11, 99]


def test_failed_commit_fails_the_whole_batch(writer: Writer, tmp_path: Path) -> None:
    """Nothing half-visible: an op that only breaks at COMMIT takes its batch-mates down too."""
    release = _hold(writer)

    def dangling(tx: Transaction) -> None:
        tx.conn.execute("PRAGMA defer_foreign_keys = ON")
        tx.conn.execute("INSERT INTO child (p) VALUES (999)")

    futures: list[Future[Any]] = [writer.submit(_insert(1)), writer.submit(dangling)]
    release.set()
    for future in futures:
        with pytest.raises(sqlite3.IntegrityError):
            future.result(10)
    assert writer.run(_insert(2)) == 2  # the writer carries on
    writer.close()
    assert _values(tmp_path) == [2]


def test_cancelled_op_is_skipped(writer: Writer, tmp_path: Path) -> None:
    release = _hold(writer)
    cancelled = writer.submit(_insert(1))
    kept = writer.submit(_insert(2))
    assert cancelled.cancel()
    release.set()
    assert kept.result(10) == 2
    writer.close()
    assert _values(tmp_path) == [2]


def test_close_commits_what_was_submitted(writer: Writer, tmp_path: Path) -> None:
    release = _hold(writer)
    futures = [writer.submit(_insert(v)) for v in range(10)]
    threading.Timer(0.05, release.set).start()
    writer.close()
    writer.close()
    assert [f.result(0) for f in futures] == list(range(10))
    assert _values(tmp_path) == list(range(10))
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(_insert(11))


@pytest.mark.asyncio
async def test_fifty_concurrent_deliveries_share_few_commits(
    store: SqliteStore, alice: Account, deliver: Deliver
) -> None:
    before = store.writer.commits
    await asyncio.gather(*(deliver(b"message %d\r\n" % n, [alice.id]) for n in range(50)))
    commits = store.writer.commits - before
    assert commits < 25, f"{commits} commits for 50 deliveries: no group commit"
    messages = store.pop3_messages(alice.id)
    assert [m.uid for m in messages] == list(range(1, 51))
    bodies = {store.blob_path(m.blob).read_bytes() for m in messages}
    assert bodies == {b"message %d\r\n" % n for n in range(50)}


@pytest.mark.asyncio
async def test_reads_from_many_threads_while_writing(
    store: SqliteStore, alice: Account, deliver: Deliver
) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: list[list[int]] = []

    def reader() -> None:
        counts: list[int] = []
        try:
            while not stop.is_set():
                counts.append(len(store.pop3_messages(alice.id)))
                assert store.get_account(alice.address) == alice
        except BaseException as exc:
            errors.append(exc)
        seen.append(counts)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for batch in range(5):
            await asyncio.gather(
                *(deliver(b"%d-%d\r\n" % (batch, n), [alice.id]) for n in range(10))
            )
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert errors == []
    for counts in seen:
        assert counts == sorted(counts), "a reader saw the mailbox shrink"
    assert len(store.pop3_messages(alice.id)) == 50


# ----- StorageUnavailable ------------------------------------------------------------------------
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EDQUOT])
def test_map_error_disk_conditions(code: int) -> None:
    assert isinstance(map_error(OSError(code, "x")), StorageUnavailable)


def test_map_error_leaves_bugs_alone() -> None:
    bug = OSError(errno.ENOENT, "x")
    assert map_error(bug) is bug
    assert isinstance(map_error(sqlite3.OperationalError("database is locked")), StorageUnavailable)
    assert isinstance(map_error(sqlite3.OperationalError("disk I/O error")), StorageUnavailable)
    syntax = sqlite3.OperationalError("near 'SELEC': syntax error")
    assert map_error(syntax) is syntax
    assert map_error(KeyError("k")).__class__ is KeyError


def _enospc(fd: int, data: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.asyncio
async def test_disk_full_while_receiving_raises_storage_unavailable(
    store: SqliteStore, alice: Account, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blobs, "_write_all", _enospc)
    staged = store.stage()
    with pytest.raises(StorageUnavailable):
        staged.write(b"x" * (blobs.WRITE_BUFFER + 1))
    small = store.stage()
    small.write(b"small\r\n")  # buffered: the failure comes when it is finished
    with pytest.raises(StorageUnavailable):
        await store.deliver(small, Envelope("a@b.test"), [alice.id], [])
    assert store.pop3_messages(alice.id) == []
    # The clean-up runs once the concurrent worker (linking the blob) is done too.
    for _ in range(500):
        if not list((data_dir / "tmp").iterdir()):
            break
        await asyncio.sleep(0.01)
    assert list((data_dir / "tmp").iterdir()) == []
    monkeypatch.undo()
    await Deliver(store)(b"fine now\r\n", [alice.id])
    assert len(store.pop3_messages(alice.id)) == 1


@pytest.mark.asyncio
async def test_read_only_blob_dir_raises_storage_unavailable(
    store: SqliteStore, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    def erofs(src: object, dst: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("mailwright.store.blobs.os.link", erofs)
    with pytest.raises(StorageUnavailable):
        await Deliver(store)(b"x\r\n", [alice.id])
    monkeypatch.undo()
    assert store.pop3_messages(alice.id) == []


def test_locked_database_raises_storage_unavailable(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_backend, "BUSY_TIMEOUT_MS", 50)
    store = SqliteStore(data_dir, durable=False)
    other = sqlite3.connect(data_dir / "mailwright.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        with pytest.raises(StorageUnavailable):
            store.add_domain("example.test")
        other.execute("ROLLBACK")
        store.add_domain("example.test")
        assert store.list_domains() == ["example.test"]
    finally:
        other.close()
        store.close()


def test_prepare_steps_of_a_batch_run_concurrently_before_the_ops(tmp_path: Path) -> None:
    """Each prepare waits for the other at a barrier: run one after another they would time out."""
    from concurrent.futures import ThreadPoolExecutor

    conn = sqlite3.connect(tmp_path / "w.db", isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (v INTEGER PRIMARY KEY)")
    pool = ThreadPoolExecutor(4)
    writer = Writer(conn, durable=True, pool=pool)
    try:
        release = _hold(writer)
        barrier = threading.Barrier(2, timeout=5)
        order: list[str] = []

        def prepare(name: str) -> Callable[[], None]:
            def step() -> None:
                barrier.wait()
                order.append(f"prepare {name}")

            return step

        def op(name: str, value: int) -> Callable[[Transaction], int]:
            def run(tx: Transaction) -> int:
                order.append(f"op {name}")
                tx.conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
                return value

            return run

        a = writer.submit(op("a", 1), prepare=prepare("a"))
        b = writer.submit(op("b", 2), prepare=prepare("b"))
        commits = writer.commits
        release.set()
        assert (a.result(10), b.result(10)) == (1, 2)
        assert writer.commits == commits + 2  # the held op's batch, then a and b together
        assert sorted(order[:2]) == ["prepare a", "prepare b"]
        assert order[2:] == ["op a", "op b"]
    finally:
        writer.close()
        pool.shutdown()
    assert _values(tmp_path) == [1, 2]


def test_a_failing_prepare_fails_only_its_own_op(writer: Writer, tmp_path: Path) -> None:
    release = _hold(writer)

    def disk_full() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    bad = writer.submit(_insert(1), prepare=disk_full)
    good = writer.submit(_insert(2), prepare=lambda: None)
    release.set()
    assert good.result(10) == 2
    with pytest.raises(StorageUnavailable):
        bad.result(10)
    assert _values(tmp_path) == [2]
