"""The background writer of the full-text index: `Indexer` (textindex.py describes the design).

Invariants (more in textindex.py):
- Only the indexer's thread computes index text for pending blobs, and only its background
  writer ops (writer.py) write blob_text rows for them; an op writes a row only while the
  blob's pending row exists and its blob_meta row still has the sha256 the text was made from,
  and deletes the pending row in the same transaction.
- Memory is bounded: the bytes of new blobs (KEEP_RAW_TOTAL), the texts of one round
  (INDEX_BATCH, INDEX_BATCH_TEXT). What does not fit is read back from the file.
- It never blocks a caller's write for long: each op is about INDEX_OP_TEXT of text or
  MERGE_PAGES of merging, and the writer runs background ops only when no caller's op waits.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Final

from mailwright.store.textindex import index_texts
from mailwright.store.writer import Transaction, Writer

log = logging.getLogger(__name__)

# Bytes of new blobs this process keeps in memory until they are indexed (each up to
# textindex.KEEP_RAW_MAX); past that the indexer reads their files back.
KEEP_RAW_TOTAL: Final = 32 * 1024 * 1024
# Pending ids taken per round, oldest first: their texts are computed together, then written
# in ops of INDEX_OP_TEXT queued together (so no thread hand-off between the ops of a round).
INDEX_BATCH: Final = 200
# ... and at most this much folded text per round (a few huge messages are a round of their own).
INDEX_BATCH_TEXT: Final = 8 * 1024 * 1024
# Folded text written per background op (one transaction). A delivery that arrives during an
# op waits for it, so this bounds the delay the index adds to an SMTP 250: ~16 rows of 4 KB
# messages, ~4 ms of inserts and as much for FTS5 to write them at the commit (measured: a
# transaction of 16 such rows took 3.9 ms at the median, 9.5 ms at p99). A round's ops are
# queued together: between two of them the writer lets any caller's write go first.
INDEX_OP_TEXT: Final = 64 * 1024
# ... and an op stops early after this long (a few huge texts in one op).
INDEX_OP_SECONDS: Final = 0.010
# FTS5 merges its segments in ops of their own, MERGE_PAGES pages each (~5 ms), one after each
# insert op and then until nothing is left to merge, instead of automatically inside the
# commit that fills a level (`automerge` is 0, schema.py migration 4). Why: with automerge,
# every ~20th commit merged for 20-45 ms, a delay for whatever delivery came meanwhile; this
# way no op took more than ~15 ms, and the total cost fell by ~20 % (0.63 against 0.76 ms per
# 4 KB message, 30,000 rows in ops of 16). `crisismerge` 64 bounds the segments per level if
# the merges fall behind under sustained load.
MERGE_PAGES: Final = 100
# The first look at rows left pending from before (a crash, another process) waits this long
# unless a local commit comes first: an admin command opening the store for a moment must not
# take up a running server's work (and its write lock) every time.
BACKLOG_DELAY: Final = 2.0
# close() keeps indexing what this process added for at most this long; the rest stays pending
# for the next start.
CLOSE_DRAIN: Final = 10.0
# After a failed round (disk full, database locked by another process), wait before retrying.
RETRY_DELAY: Final = 1.0

# (id, sha256 or None for a pending row whose blob_meta row is gone, folded header, folded body)
_Work = tuple[int, str | None, str, str]


class Indexer:
    """The thread that writes blob_text rows for pending blobs (see the module docstring).

    `added` (from an after-commit hook) tells it of new pending blobs; `texts_for` lends SEARCH
    the text of a blob it has not indexed yet; `close` drains and stops it.
    """

    def __init__(
        self,
        writer: Writer,
        connect: Callable[[], sqlite3.Connection],
        blob_path: Callable[[str], Path],
    ) -> None:
        self._writer = writer
        self._connect = connect  # a read connection, opened in the thread
        self._blob_path = blob_path
        self._cond = threading.Condition()
        # Blobs this process made pending and that are not indexed yet: their bytes when kept
        # (KEEP_RAW_MAX, KEEP_RAW_TOTAL), else None, and the `_added` count when added.
        self._mine: dict[str, tuple[bytes | None, int]] = {}
        self._kept = 0  # bytes of `_mine`
        self._added = 0
        # Folded texts computed for the current round, waiting for their op.
        self._texts: dict[str, tuple[str, str]] = {}
        self._wake = False  # a round is wanted
        self._waiting = False  # the thread waits for `_wake` (no op of its own in flight)
        self._closing = False
        self._deadline = 0.0  # when closing: give up on the rest then
        self.indexed = 0  # blob_text rows written (observability and tests)
        self.rounds = 0
        self._thread = threading.Thread(target=self._run, name="store-indexer", daemon=True)
        self._thread.start()

    # ----- from other threads ----------------------------------------------------------------
    def added(self, items: Iterable[tuple[str, bytes | None]]) -> None:
        """These blobs (sha256, bytes or None) got a pending row in a committed transaction.
        Call from an after-commit hook (the rows must be visible to a reader)."""
        with self._cond:
            for sha, raw in items:
                if raw is not None and self._kept + len(raw) > KEEP_RAW_TOTAL:
                    raw = None  # read back from the file when indexed
                old = self._mine.get(sha)
                if old is not None and old[0] is not None:
                    self._kept -= len(old[0])
                self._added += 1
                self._mine[sha] = (raw, self._added)
                if raw is not None:
                    self._kept += len(raw)
            self._wake = True
            self._cond.notify()

    def texts_for(self, sha: str) -> tuple[str, str] | None:
        """The folded (header, body) of a blob not indexed yet, if this process has it (the
        texts of the round in progress, or the bytes of a blob it added); else None."""
        with self._cond:
            texts = self._texts.get(sha)
            raw = self._mine.get(sha, (None, 0))[0]
        if texts is None and raw is not None:
            texts = index_texts(raw)
        return texts

    def kick(self) -> None:
        """Look for pending rows now (also those from before: no BACKLOG_DELAY)."""
        with self._cond:
            self._wake = True
            self._cond.notify()

    @property
    def idle(self) -> bool:
        """The thread waits for work: no round, op or merge of its own is under way."""
        with self._cond:
            return self._waiting and not self._wake

    def close(self, drain: float = CLOSE_DRAIN) -> None:
        """Index what this process added (for at most `drain` seconds), then stop the thread.
        Call before the writer closes: the thread's ops need it."""
        with self._cond:
            self._closing = True
            self._deadline = time.monotonic() + drain
            self._cond.notify()
        self._thread.join()

    # ----- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        delay: float | None = BACKLOG_DELAY
        try:
            while True:
                with self._cond:
                    self._waiting = True
                    self._cond.wait_for(lambda: self._wake or self._closing, timeout=delay)
                    self._waiting = False
                    self._wake = False
                    if self._closing and self._drained():
                        return
                delay = None
                try:
                    if conn is None:
                        conn = self._connect()
                    while True:
                        progressed = self._round(conn)
                        with self._cond:
                            if self._closing and (not progressed or self._drained()):
                                return
                        if not progressed:
                            break
                except RuntimeError as exc:  # the writer is closed: the rest stays pending
                    if not self._closing:  # the store closes the indexer first
                        log.warning("full-text indexer stopped: %s", exc)
                    return
                except Exception:  # a full disk, a lock held by another process: retry later
                    log.exception("full-text indexing failed; retrying in %.0f s", RETRY_DELAY)
                    with self._cond:
                        self._texts.clear()
                        self._cond.wait_for(lambda: self._closing, timeout=RETRY_DELAY)
                        if self._closing:
                            return
                        self._wake = True
        finally:
            if conn is not None:
                conn.close()

    def _drained(self) -> bool:
        """While closing: nothing of this process' is left, or no time is (under the lock)."""
        return not self._mine or time.monotonic() > self._deadline

    def _round(self, conn: sqlite3.Connection) -> bool:
        """Index the oldest pending blobs (a few background ops); False when that did nothing
        (none pending, or only rows another process or a release changed meanwhile: the
        next commit wakes the thread again). With none pending, merge the index's segments
        until FTS5 says there is nothing left to merge or new work comes."""
        with self._cond:
            seen = self._added
        rows = conn.execute(
            "SELECT p.id, x.sha256 FROM blob_text_pending p "
            "LEFT JOIN blob_meta x ON x.id = p.id ORDER BY p.id LIMIT ?",
            (INDEX_BATCH,),
        ).fetchall()
        self.rounds += 1
        if len(rows) < INDEX_BATCH:
            # Every pending row was seen: a blob added before this read and not among them
            # was indexed by another process or released meanwhile.
            pending = {sha for _, sha in rows}
            with self._cond:
                for sha, (raw, when) in list(self._mine.items()):
                    if when <= seen and sha not in pending:
                        self._forget(sha, raw)
        if not rows:
            self._merge_all()
            return False
        futures: list[Future[Any]] = []
        for chunk in self._chunks(self._texts_of(rows)):
            write = functools.partial(self._write, work=chunk)
            futures.append(self._writer.submit(write, background=True))
            futures.append(self._writer.submit(_merge, background=True))
        done = [sha for future in futures[::2] for sha in future.result()]
        for future in futures[1::2]:
            future.result()
        with self._cond:
            for sha in done:
                self._texts.pop(sha, None)
                entry = self._mine.get(sha)
                if entry is not None:
                    self._forget(sha, entry[0])
        self.indexed += len(done)
        return bool(done)

    def _merge_all(self) -> None:
        """Merge ops, one at a time, while FTS5 has work left and nothing else is wanted."""
        while True:
            with self._cond:
                if self._wake or self._closing:
                    return
            if not self._writer.submit(_merge, background=True).result():
                return

    @staticmethod
    def _chunks(work: list[_Work]) -> Iterator[list[_Work]]:
        """`work` cut into ops of about INDEX_OP_TEXT characters (at least one row each)."""
        chunk: list[_Work] = []
        size = 0
        for item in work:
            chunk.append(item)
            size += len(item[2]) + len(item[3])
            if size >= INDEX_OP_TEXT:
                yield chunk
                chunk, size = [], 0
        if chunk:
            yield chunk

    def _forget(self, sha: str, raw: bytes | None) -> None:
        del self._mine[sha]
        if raw is not None:
            self._kept -= len(raw)

    def _texts_of(self, rows: list[tuple[int, str | None]]) -> list[_Work]:
        """The work of one round: the folded texts of `rows`, computed here (off the writer)
        unless a previous round did; at most INDEX_BATCH_TEXT characters of them."""
        work: list[_Work] = []
        total = 0
        with self._cond:  # texts left from an op that ran out of time, for these rows only
            self._texts = {sha: self._texts[sha] for _, sha in rows if sha in self._texts}
        for meta_id, sha in rows:
            if sha is None:
                work.append((meta_id, None, "", ""))
                continue
            with self._cond:
                texts = self._texts.get(sha)
                raw = self._mine.get(sha, (None, 0))[0]
            if texts is None:
                if raw is None:
                    raw = self._read(sha)
                texts = index_texts(raw)
                with self._cond:
                    self._texts[sha] = texts
                time.sleep(0)  # let the event loop's thread have the GIL between messages
            work.append((meta_id, sha, *texts))
            total += len(texts[0]) + len(texts[1])
            if total >= INDEX_BATCH_TEXT:
                break
        return work

    def _read(self, sha: str) -> bytes:
        try:
            return self._blob_path(sha).read_bytes()
        except FileNotFoundError:  # released meanwhile: the op finds its rows gone
            return b""
        except OSError as exc:
            # Indexed without text rather than left pending: an unreadable file must not stop
            # the queue behind it (FETCH of that message fails the same way).
            log.warning("blob %s unreadable, indexed without its text: %s", sha, exc)
            return b""

    def _write(self, tx: Transaction, work: list[_Work]) -> list[str]:
        """The background op: write blob_text rows until INDEX_OP_SECONDS have passed; returns
        the sha256 of the blobs that need no more work (written, or no longer pending)."""
        conn = tx.conn
        deadline = time.monotonic() + INDEX_OP_SECONDS
        done: list[str] = []
        for meta_id, sha, header, body in work:
            row = conn.execute(
                "SELECT x.sha256 FROM blob_text_pending p LEFT JOIN blob_meta x ON x.id = p.id "
                "WHERE p.id = ?",
                (meta_id,),
            ).fetchone()
            if row is None or row[0] != sha:
                # No longer pending (indexed by another process, or released), or the id now
                # belongs to another blob, which the next round reads afresh.
                if sha is not None and row is None:
                    done.append(sha)
                continue
            conn.execute("DELETE FROM blob_text_pending WHERE id = ?", (meta_id,))
            if sha is None:
                continue  # a pending row left without its blob_meta row
            # OR REPLACE: a row somehow left from before must not stop the queue for good.
            conn.execute(
                "INSERT OR REPLACE INTO blob_text (rowid, header, body) VALUES (?, ?, ?)",
                (meta_id, header, body),
            )
            done.append(sha)
            if time.monotonic() >= deadline:
                break
        return done


def _merge(tx: Transaction) -> bool:
    """A background op: up to MERGE_PAGES pages of FTS5 segment merging. True when FTS5 did
    some, so that there may be more (its documented test: total changes grew by 2 or more)."""
    conn = tx.conn
    before = conn.total_changes
    conn.execute("INSERT INTO blob_text (blob_text, rank) VALUES ('merge', ?)", (MERGE_PAGES,))
    return conn.total_changes - before >= 2
