"""The group-commit writer: one thread, one write connection, one commit per batch.

Why: with synchronous=FULL every commit costs a WAL fsync (~1 ms here). Committing each
delivery alone caps throughput at ~1/fsync and makes concurrent senders queue behind each other.
Instead, every write is an *operation* (a callable) submitted to this writer:

    fut = writer.submit(op)                 # concurrent.futures.Future, from any thread
    result = await asyncio.wrap_future(fut) # on the event loop: no thread parked per caller

The writer thread loops:
  1. wait for work, then drain *everything* queued (the batch forms while the previous commit's
     fsync runs; no timer, so a lone write is never delayed),
  2. BEGIN IMMEDIATE (takes SQLite's write lock; another process, e.g. the admin CLI, waits at
     most busy_timeout and vice versa),
  3. run each op inside its own SAVEPOINT: an op that raises is rolled back alone and fails only
     its own future,
  4. fsync each directory the surviving ops asked for, once per batch and in parallel, then
     COMMIT: one WAL fsync for the whole batch,
  5. run the after-commit hooks (change-bus events, unlinking collected blob files), then
     resolve every future.

Background ops (`submit(..., background=True)`: the deferred blob clean-up, blobgc.py, and
the text indexer, indexer.py) wait until nothing else is queued, then run one per batch,
first come first served among themselves: they never share a transaction with, nor queue
ahead of, a caller's write. Each must be short (the next caller's write waits for it), so
they work in bounded slices (blobgc.OP_SECONDS, indexer.INDEX_OP_SECONDS).

If BEGIN, a directory fsync or COMMIT fails, or an op's error made SQLite roll back the whole
transaction itself (a full disk while its page cache spills), the whole batch is rolled back
and every op in it fails (with StorageUnavailable for a full/read-only disk or a locked
database): nothing is half-visible. A future that was cancelled before its batch started is
skipped.

Readers never touch this connection (WAL: they read the last commit without blocking it).

Where the other fsyncs go (measured on the 2-core target, ~0.6 ms per fsync when idle): an op
may come with a `prepare` step (a delivery's: fsync its file, link it to its address, fsync
that directory). The writer runs the prepare steps of a whole batch concurrently in its pool,
before BEGIN: one hand-off between threads per batch. A hand-off per delivery, as an earlier
design had, cost milliseconds of waiting each on this machine (a 0.4 ms fsync took 7 ms end to
end), and running a batch's fsyncs one after another in this thread made the batch as slow as
their sum. A large file is fsynced in the store's pool before its op is even submitted
(sqlite.py, INLINE_FSYNC_MAX), so that it does not hold up the batch. The writer adds a
directory fsync (deduplicated per batch) when an op had to (re)place a blob file.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any, Final, Generic, NoReturn, TypeVar

from mailwright.store.api import StorageUnavailable
from mailwright.store.blobs import fsync_dir, unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

# sqlite3.OperationalError texts that mean "try again later" rather than "bug".
_UNAVAILABLE_SQLITE: Final = (
    "database is locked",
    "database table is locked",
    "disk i/o error",
    "database or disk is full",
    "attempt to write a readonly database",
    "unable to open database file",
)
# The same by primary result code (the low byte of an extended one): a code does not depend on
# the message text, which an extended error (SQLITE_IOERR_FSYNC...) may word its own way.
_UNAVAILABLE_CODES: Final = frozenset({
    sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
})
# A batch larger than this is split: bounds one transaction's size and the latency of its
# first op (1,000 deliveries of a few rows each commit in well under 100 ms).
MAX_BATCH: Final = 1000


def map_error(exc: BaseException) -> BaseException:
    """StorageUnavailable for the temporary storage failures, else `exc` itself (a bug)."""
    if isinstance(exc, StorageUnavailable):
        return exc
    if isinstance(exc, OSError):
        return unavailable(exc) or exc
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        text = str(exc).lower()
        if (code is not None and code & 0xFF in _UNAVAILABLE_CODES) or any(
            marker in text for marker in _UNAVAILABLE_SQLITE
        ):
            return StorageUnavailable(f"storage unavailable: {exc}")
    return exc


def raise_mapped(exc: BaseException) -> NoReturn:
    """Raise `map_error(exc)`, chained to `exc` only when it is a different exception."""
    mapped = map_error(exc)
    if mapped is exc:
        raise exc
    raise mapped from exc


class Transaction:
    """What an op receives: the connection inside the batch, plus per-op durability hooks."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._dirs: list[Path] = []
        self._hooks: list[Callable[[], None]] = []

    def sync_dir(self, path: Path) -> None:
        """fsync `path` before this batch commits (a rename into it must be durable first)."""
        self._dirs.append(path)

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` in the writer thread after the commit (e.g. unlink unreferenced blobs)."""
        self._hooks.append(hook)


Op = Callable[[Transaction], T]


class _Item(Generic[T]):
    __slots__ = ("future", "op", "prepare")

    def __init__(self, op: Op[T], prepare: Callable[[], None] | None) -> None:
        self.op = op
        self.prepare = prepare
        self.future: Future[T] = Future()


class Writer:
    """Owns the write connection; see the module docstring."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        durable: bool,
        *,
        pool: Executor | None = None,
        name: str = "store-writer",
    ) -> None:
        """`conn`: autocommit mode (isolation_level=None), check_same_thread=False; now ours."""
        self._durable = durable
        self._pool = pool  # for directory fsyncs; must outlive the writer
        self._lock = threading.Condition()
        self._pending: list[_Item[Any]] = []
        self._background: deque[_Item[Any]] = deque()
        self._closing = False
        # Observability (and the tests' proof that batching happens).
        self.commits = 0
        self.ops = 0
        self.largest_batch = 0
        self._conn = conn
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(
        self,
        op: Op[T],
        prepare: Callable[[], None] | None = None,
        *,
        background: bool = False,
    ) -> Future[T]:
        """Queue `op` for the next batch. `prepare` (file work such as fsyncs) runs first,
        outside the transaction and concurrently with the other ops' prepares of the batch: one
        hand-off to the pool per batch, not one per op. If it raises, only this op fails.
        `background`: run it alone, once no other op is queued (see the module docstring)."""
        item = _Item(op, prepare)
        with self._lock:
            if self._closing:
                raise RuntimeError("store is closed")
            (self._background if background else self._pending).append(item)
            self._lock.notify()
        return item.future

    def run(self, op: Op[T]) -> T:
        """Submit and wait (for synchronous callers: the CLI, admin methods)."""
        return self.submit(op).result()

    def close(self) -> None:
        """Commit everything already submitted, then stop the thread and close the connection."""
        with self._lock:
            if self._closing:
                already = True
            else:
                already = False
                self._closing = True
                self._lock.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join()
        if not already:
            self._conn.close()

    # ----- the writer thread ---------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._background and not self._closing:
                    self._lock.wait()
                if self._pending:
                    batch = self._pending[:MAX_BATCH]
                    del self._pending[:MAX_BATCH]
                elif self._background:
                    batch = [self._background.popleft()]
                else:  # closing, and everything submitted is committed
                    return
            self._commit_batch(batch)

    def _commit_batch(self, batch: list[_Item[Any]]) -> None:
        live = [item for item in batch if item.future.set_running_or_notify_cancel()]
        live = self._prepare(live)
        if not live:
            return
        conn = self._conn
        outcomes: list[tuple[_Item[Any], bool, Any]] = []
        dirs: dict[Path, None] = {}
        hooks: list[Callable[[], None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            self._fail_all(live, map_error(exc))
            return
        try:
            for item in live:
                tx = Transaction(conn)
                conn.execute("SAVEPOINT op")
                try:
                    result = item.op(tx)
                except BaseException as exc:  # fails this op only
                    if not conn.in_transaction:
                        # SQLite rolled the whole transaction back itself (it may on
                        # SQLITE_FULL, _IOERR, _BUSY): the ops before this one are gone too.
                        raise
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    outcomes.append((item, False, map_error(exc)))
                    continue
                conn.execute("RELEASE op")
                outcomes.append((item, True, result))
                dirs.update(dict.fromkeys(tx._dirs))
                hooks.extend(tx._hooks)
            if self._durable:
                self._sync_dirs(list(dirs))
            conn.execute("COMMIT")
        except BaseException as exc:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("rollback failed")
            self._fail_all(live, map_error(exc))
            return
        self.commits += 1
        self.ops += len(live)
        self.largest_batch = max(self.largest_batch, len(live))
        for hook in hooks:
            try:
                hook()
            except Exception:  # an orphan file is legal; never fail a committed op
                log.exception("after-commit hook failed")
        for item, ok, value in outcomes:
            if ok:
                item.future.set_result(value)
            else:
                item.future.set_exception(value)

    def _prepare(self, items: list[_Item[Any]]) -> list[_Item[Any]]:
        """Run the batch's prepare steps concurrently; fail the items whose step raised."""
        todo = [(item, item.prepare) for item in items if item.prepare is not None]
        if not todo:
            return items
        if self._pool is None or len(todo) == 1:
            outcomes = [_attempt(step) for _, step in todo]
        else:
            futures = [self._pool.submit(_attempt, step) for _, step in todo]
            outcomes = [future.result() for future in futures]
        failed: set[int] = set()
        for (item, _), error in zip(todo, outcomes, strict=True):
            if error is not None:
                item.future.set_exception(map_error(error))
                failed.add(id(item))
        return [item for item in items if id(item) not in failed]

    def _sync_dirs(self, dirs: list[Path]) -> None:
        """fsync the batch's directories, in parallel when a pool was given (ext4 merges
        concurrent fsyncs into one journal commit; one after another costs one each)."""
        if self._pool is None or len(dirs) < 2:
            for directory in dirs:
                fsync_dir(directory)
            return
        for fut in [self._pool.submit(fsync_dir, directory) for directory in dirs]:
            fut.result()

    @staticmethod
    def _fail_all(items: list[_Item[Any]], exc: BaseException) -> None:
        for item in items:
            # A fresh instance each: one exception object raised in many tasks would collect
            # all their tracebacks.
            fresh = StorageUnavailable(str(exc)) if isinstance(exc, StorageUnavailable) else exc
            item.future.set_exception(fresh)


def _attempt(step: Callable[[], None]) -> BaseException | None:
    try:
        step()
    except BaseException as exc:  # reported on the op's own future
        return exc
    return None
