"""Deferred removal of unreferenced blobs: the costly half of an expunge, done after its commit.

Why: removing a blob means its `blobs` row, its `blob_meta` row, its full-text rows and its
file. FTS5 re-reads and re-tokenizes every document it deletes, and each `DELETE FROM blobs`
(foreign keys on: a statement journal) made it flush its pending deletes, so doing this for
each blob inside the user's transaction made EXPUNGE of 5,000 messages take 7-13 s (bench
imap-10k), holding the write lock every delivery waits for. Now the user's transaction only
takes the references away (one grouped UPDATE, sqlite.py `_release_blobs`); a blob whose
count reached 0 becomes a *candidate*, and background writer ops (writer.py: they run only
when no caller's write is queued) remove the candidates, in groups of GROUP (each kind of row
with one statement per group) for at most OP_SECONDS per transaction. The files go after that
commit.

Invariants:
- Only a row whose refcount is still <= 0 inside the clean-up's own transaction is removed. A
  candidate that got a reference back meanwhile (the same bytes delivered or appended again
  between the expunge and the clean-up) stays, with its metadata, index rows and file.
- Until then, a row with refcount 0 is a complete blob (its row, its blob_meta and full-text
  rows as textindex.py keeps them, its durable file): `_place_blob` (sqlite.py) treats it as
  committed and only adds the new references.
- Nothing is lost by a crash: the candidates are kept in memory only, but a row with refcount
  0 is garbage by definition, so every store start looks for such rows (`start_scan`: on a
  read connection in the pool, no write lock; ~0.15 s per million blobs) and queues them. That also
  collects what a close left: close keeps removing for at most CLOSE_DRAIN seconds, so that
  the admin CLI (a process of its own, which a running server does not hear from) removes
  what it released, such as a removed account's mail.
- The files are unlinked after the commit, under BEGIN IMMEDIATE, each only if its row is
  still gone: another process may have delivered the same bytes again in between, and
  `BlobFiles.ensure` then trusts the file at the address (sqlite.py, blobs.py).
- SEARCH never finds an expunged message through a candidate's index rows: `textindex.search`
  only tests the mailbox's current `messages` rows.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Final

from mailwright.store import textindex
from mailwright.store.blobs import BlobFiles, unavailable
from mailwright.store.writer import Transaction, Writer

log = logging.getLogger(__name__)

# How long one clean-up op removes blobs before it commits: a delivery that arrives meanwhile
# waits for it, so this bounds the delay the clean-up adds to an SMTP 250 (the same bound as
# the text indexer's ops, indexer.INDEX_OP_SECONDS). Removing a blob costs ~0.3 ms for a
# 4 KB message on the 2-core target (FTS5 re-tokenizes its text to delete it), so the 5,000
# blobs of bench imap-10k's EXPUNGE go in ~150 ops, ~5 s in the background (measured: ops
# of 9 ms at the median, 15 ms at most).
OP_SECONDS: Final = 0.008
# Blobs per group of statements: small enough that one group stays within OP_SECONDS, large
# enough that the per-statement cost (an FTS5 flush each) is shared.
GROUP: Final = 16
# At close, how long the clean-up may go on (about 30,000 4 KB messages' worth): bounds how long
# a stopping server or an admin command waits; the rest is found again at the next start.
CLOSE_DRAIN: Final = 10.0


class BlobCollector:
    """The candidates and the clean-up ops of one store; see the module docstring."""

    def __init__(self, writer: Writer, files: BlobFiles) -> None:
        self._writer = writer
        self._files = files
        self._lock = threading.Lock()
        self._candidates: set[str] = set()
        self._queued = False  # a clean-up op is submitted and not finished
        self._scan: Future[None] | None = None
        self.removed = 0  # blobs removed so far (observability)

    def released(self, shas: Iterable[str]) -> None:
        """These blobs reached refcount 0 in a committed transaction: collect them soon. Call
        from an after-commit hook (a rolled-back release must not be noted; an extra candidate
        would be harmless, only wasted work)."""
        with self._lock:
            self._candidates.update(shas)
        self.schedule()

    def schedule(self) -> None:
        """Queue one background clean-up op unless one is queued or there is nothing to do."""
        with self._lock:
            if self._queued or not self._candidates:
                return
            self._queued = True
        try:
            self._submit(scheduled=True)
        except RuntimeError:  # the store is closing: the next start's scan finds them
            with self._lock:
                self._queued = False

    def start_scan(
        self, submit: Callable[[Callable[[], None]], Future[None]],
        connect: Callable[[], sqlite3.Connection],
    ) -> None:
        """At store start: find the rows left with refcount 0 (a crash, another process, a
        close with work left) with `submit` (a pool) on a connection from `connect`."""
        self._scan = submit(lambda: self._find(connect))

    def _find(self, connect: Callable[[], sqlite3.Connection]) -> None:
        try:
            conn = connect()
            try:
                # One JSON value, not a row each (sqlite.py `_release_blobs` says why).
                (found,) = conn.execute(
                    "SELECT json_group_array(sha256) FROM blobs WHERE refcount <= 0"
                ).fetchone()
            finally:
                conn.close()
        except Exception:  # the next start tries again; nothing is lost meanwhile
            log.exception("looking for unreferenced blobs failed")
            return
        shas: list[str] = json.loads(found)
        if shas:
            log.info("%d unreferenced blob(s) left from before: collecting them", len(shas))
            self.released(shas)

    def collect_all(self, seconds: float | None = None) -> None:
        """Remove every candidate now, start-up scan included, and wait for it (tests, CLI),
        or stop after `seconds`. Not from the writer thread."""
        deadline = None if seconds is None else time.monotonic() + seconds
        if self._scan is not None:
            self._scan.result()
        while deadline is None or time.monotonic() < deadline:
            with self._lock:
                if not self._candidates and not self._queued:
                    return
            # Background ops run in order: this one ends after any already queued.
            self._submit(scheduled=False).result()

    def close(self) -> None:
        """Before the writer closes: go on removing for at most CLOSE_DRAIN seconds (see the
        module docstring). Never raises: what is left is found at the next start."""
        try:
            self.collect_all(CLOSE_DRAIN)
        except Exception:
            log.exception("blob clean-up at close failed; the next start retries")

    # ----- the clean-up op ---------------------------------------------------------------------
    def _submit(self, *, scheduled: bool) -> Future[int]:
        taken: list[str] = []
        future = self._writer.submit(lambda tx: self._step(tx, taken), background=True)
        future.add_done_callback(lambda done: self._finished(done, taken, scheduled))
        return future

    def _step(self, tx: Transaction, taken: list[str]) -> int:
        """Remove candidates, GROUP at a time, until OP_SECONDS have passed; `taken` gets
        every candidate taken from the set (put back if the batch fails)."""
        deadline = time.monotonic() + OP_SECONDS
        doomed: list[str] = []
        while True:
            with self._lock:
                group = [self._candidates.pop() for _ in range(min(GROUP, len(self._candidates)))]
            if not group:
                break
            taken.extend(group)
            doomed += _remove(tx.conn, group)
            if time.monotonic() >= deadline:
                break
        if doomed:
            conn = tx.conn
            tx.after_commit(lambda: self._unlink(conn, doomed))
        return len(doomed)

    def _unlink(self, conn: sqlite3.Connection, shas: list[str]) -> None:
        """After the commit: remove the files whose rows are still gone, under the write lock
        (see the module docstring). A file the disk will not let go (read-only) stays an
        orphan, which is legal: `mailwright check --repair` removes it later."""
        kept: OSError | None = None
        conn.execute("BEGIN IMMEDIATE")
        try:
            back = {
                sha
                for (sha,) in conn.execute(
                    "SELECT sha256 FROM blobs WHERE sha256 IN (SELECT value FROM json_each(?))",
                    (json.dumps(shas),),
                )
            }
            for sha in shas:
                if sha not in back:
                    try:
                        self._files.unlink(sha)
                    except OSError as exc:
                        if unavailable(exc) is None:
                            raise
                        kept = exc
        finally:
            conn.execute("COMMIT")
        if kept is not None:
            log.warning("unreferenced blob files left as orphans (%s); "
                        "`mailwright check --repair` removes them", kept.strerror)

    def _finished(self, done: Future[int], taken: list[str], scheduled: bool) -> None:
        """In the writer thread, after the op's batch (and its hooks) ended."""
        failed = done.cancelled() or done.exception() is not None
        with self._lock:
            if failed:  # rolled back: they are still candidates; the next release retries
                self._candidates.update(taken)
            else:
                self.removed += done.result()
            if scheduled:
                self._queued = False
        if failed:
            log.warning("blob clean-up failed; retried at the next release or start",
                        exc_info=None if done.cancelled() else done.exception())
        elif scheduled:
            self.schedule()


def _remove(conn: sqlite3.Connection, candidates: list[str]) -> list[str]:
    """Delete the rows of the candidates whose refcount is still <= 0; returns those."""
    doomed = [
        sha
        for (sha,) in conn.execute(
            "SELECT sha256 FROM blobs WHERE refcount <= 0 "
            "AND sha256 IN (SELECT value FROM json_each(?))",
            (json.dumps(candidates),),
        )
    ]
    if not doomed:
        return []
    shas = json.dumps(doomed)
    # The index rows first (textindex.py), then the blobs rows they reference.
    textindex.delete_rows(conn, shas)
    conn.execute("DELETE FROM blobs WHERE sha256 IN (SELECT value FROM json_each(?))", (shas,))
    return doomed
