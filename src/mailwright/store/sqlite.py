"""The default store backend: SQLite (WAL) for the index, content-addressed files for bodies.

Layout of a data directory:
    <data>/mailwright.db       SQLite, WAL mode; synchronous=FULL when durable, else OFF
    <data>/blobs/ab/<sha256>   immutable message files (blobs.py)
    <data>/tmp/                messages being received

Invariants:
- Every write goes through the one `Writer` (group commit, writer.py); reads use one connection
  per thread (threading.local) and never block the writer (WAL).
- Domains, accounts, aliases and their lookups live in the `SqliteAdminOps` mixin
  (sqlite_admin.py), the IMAP operations in `SqliteImapOps` (sqlite_imap.py); this module
  keeps the plumbing, delivery and POP3.
- A message becomes visible only in the commit that also makes it durable: its file fsynced
  and linked to its content address with that directory fsynced (blobs.py), then the rows
  committed (writer.py). The file work is the op's `prepare` step, which the writer runs for a
  whole batch concurrently; a file larger than INLINE_FSYNC_MAX is fsynced in a worker pool
  before the op is submitted, so one big fsync never holds up the other deliveries' commit.
- The check that a blob file may be referenced (`BlobFiles.ensure`) and garbage collection of
  blobs/ both run while holding SQLite's write lock (the GC re-checks under BEGIN IMMEDIATE
  after its commit), so a delivery of the same bytes in this or another process (the admin
  CLI) can never end up pointing at an unlinked or unfinished file.
- A delivery that fails (or is cancelled before its batch starts) leaves nothing visible; its
  temp file is removed once no worker touches it. A delivery cancelled after its batch started
  still commits (like an SMTP 250 lost on the wire).
- UIDs: `uidnext` only grows (RFC 3501 2.3.1.1), so a UID is never reused, even after expunge or
  restart; every change bumps the mailbox's HIGHESTMODSEQ (RFC 7162) and expunged UIDs are kept
  with their MODSEQ for QRESYNC.
- UIDL (RFC 1939 7) is "<uidvalidity>.<uid>" of the INBOX: unique and stable forever.
- A blob new to the store is analyzed once (`analyze()`: ENVELOPE, BODYSTRUCTURE, part
  offsets, search text) in the same prepare step or pool job as its fsync, never on the event
  loop nor inside the transaction; its meta and full-text index row go in with its row, and
  the index row goes with its last reference (textindex.py). A blob only the outbound queue
  references is not analyzed: no mailbox shows it (a later local delivery of it analyzes it).
- Commit first, then publish: deliveries, POP3 deletes and the IMAP operations (the
  `SqliteImapOps` mixin, sqlite_imap.py) tell the change bus (changes.py) from an after-commit
  hook only, so a subscriber never hears of a change it cannot read or that was rolled back.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, TypeVar

from mailwright.message import MessageInfo
from mailwright.store import textindex
from mailwright.store.api import (
    Envelope,
    EnvelopeRecipient,
    NotFound,
    Pop3Policy,
    StagedMessage,
    Store,
    StoredMessage,
    TextField,
)
from mailwright.store.blobs import WRITE_BUFFER, BlobFiles, StagedBlob, fsync_dir
from mailwright.store.changes import Appended, ChangeBus, Expunged
from mailwright.store.schema import migrate
from mailwright.store.sqlite_admin import SqliteAdminOps, check_policy
from mailwright.store.sqlite_imap import SqliteImapOps
from mailwright.store.writer import Transaction, Writer, raise_mapped

T = TypeVar("T")

DB_NAME: Final = "mailwright.db"
# The admin CLI writes from another process while the server runs: wait this long for SQLite's
# write lock before answering StorageUnavailable (a group commit holds it for milliseconds).
BUSY_TIMEOUT_MS: Final = 5000
# Threads fsyncing large staged messages (above INLINE_FSYNC_MAX), and (a second pool of this
# size) the writer's per-batch prepare steps and directory fsyncs; fsync releases the GIL.
FSYNC_WORKERS: Final = 8
# Files up to this size are fsynced in the writer's batch (its prepare step, writer.py). Why:
# on the 2-core benchmark machine every hand-off between threads cost milliseconds of waiting
# (a 0.4 ms fsync took 7 ms end to end through a pool), and the batch pays one hand-off for
# all its files (bench/: 4 KB at 10 senders went from ~400 to ~550-660 msg/s). Above this
# size, a file's fsync is long enough to delay the whole batch, so it runs in the pool before
# the op is submitted.
INLINE_FSYNC_MAX: Final = 256 * 1024
# Messages up to this size are analyzed in the batch's prepare step too (textindex.py), from the
# bytes StagedBlob kept in memory. The analysis holds the GIL (~0.3 ms for 4 KB, ~0.1 s per MB
# of text), so a larger message is fsynced and analyzed in the pool before its op is submitted,
# where it delays no other delivery's batch.
INLINE_ANALYSIS_MAX: Final = WRITE_BUFFER

def connect(path: Path, durable: bool, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with our pragmas. Autocommit mode: transactions are explicit (writer.py)."""
    try:
        conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
    except sqlite3.Error as exc:
        raise_mapped(exc)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'OFF'}")
        if readonly:
            conn.execute("PRAGMA query_only = ON")
        else:
            conn.execute("PRAGMA journal_mode = WAL")  # persistent; readers inherit it
    except BaseException as exc:
        conn.close()
        raise_mapped(exc)
    return conn


class SqliteStore(SqliteAdminOps, SqliteImapOps, Store):
    def __init__(self, data_dir: Path, durable: bool = True) -> None:
        data_dir = Path(data_dir)
        self.data_dir = data_dir
        self.durable = durable
        self._db_path = data_dir / DB_NAME
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            self.files = BlobFiles(data_dir, durable)
        except OSError as exc:
            raise_mapped(exc)
        conn = connect(self._db_path, durable)
        try:
            migrate(conn, blob_path=self.files.path)
            if durable:
                fsync_dir(data_dir)  # the names of a new mailwright.db and its -wal file
        except BaseException as exc:
            conn.close()
            raise_mapped(exc)
        self._pool = ThreadPoolExecutor(FSYNC_WORKERS, thread_name_prefix="store-fsync")
        self._dir_pool = ThreadPoolExecutor(FSYNC_WORKERS, thread_name_prefix="store-dirsync")
        self.writer = Writer(conn, durable, pool=self._dir_pool)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._changes = ChangeBus()
        self._infos = textindex.InfoCache()

    @property
    def changes(self) -> ChangeBus:
        return self._changes

    # ----- plumbing ------------------------------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._readers_lock:
                if self._closed:
                    raise RuntimeError("store is closed")
                conn = connect(self._db_path, self.durable, readonly=True)
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise_mapped(exc)

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        # fetchall, not fetchone: a statement left mid-way keeps its read transaction open,
        # which would stop checkpoints from recycling the WAL.
        rows = self._all(sql, params)
        return rows[0] if rows else None

    def _write(self, op: Callable[[Transaction], T]) -> T:
        return self.writer.run(op)

    async def _awrite(self, op: Callable[[Transaction], T]) -> T:
        return await asyncio.wrap_future(self.writer.submit(op))

    def _release_blobs(self, tx: Transaction, counts: Counter[str]) -> None:
        """Drop `counts` references; blobs left with none lose their row now, their file after
        the commit (re-checked under the write lock, see the module docstring)."""
        conn = tx.conn
        gone: list[str] = []
        for sha, n in counts.items():
            row = conn.execute(
                "UPDATE blobs SET refcount = refcount - ? WHERE sha256 = ? RETURNING refcount",
                (n, sha),
            ).fetchone()
            if row is not None and row[0] <= 0:
                textindex.delete_rows(conn, sha)
                conn.execute("DELETE FROM blobs WHERE sha256 = ?", (sha,))
                gone.append(sha)
        if gone:
            tx.after_commit(lambda: self._collect(conn, gone))

    def _collect(self, conn: sqlite3.Connection, candidates: Iterable[str]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sha in candidates:
                if conn.execute("SELECT 1 FROM blobs WHERE sha256 = ?", (sha,)).fetchone() is None:
                    self.files.unlink(sha)
        finally:
            conn.execute("COMMIT")

    # ----- delivery ------------------------------------------------------------------------------
    def stage(self) -> StagedBlob:
        if self._closed:
            raise RuntimeError("store is closed")
        return self.files.stage()

    async def deliver(
        self,
        message: StagedMessage,
        envelope: Envelope,
        local_accounts: Sequence[int],
        remote_recipients: Sequence[EnvelopeRecipient],
    ) -> None:
        if not isinstance(message, StagedBlob):
            raise TypeError("deliver() takes a message from this store's stage()")
        accounts = list(dict.fromkeys(local_accounts))  # one copy per account, even via aliases
        remotes = list(remote_recipients)
        if not accounts and not remotes:
            message.abort()
            return
        # The file work (fsync, link, fsync the directory) and the analysis of a new blob are
        # the op's prepare step, run by the writer for the whole batch at once; the rows go in
        # the next group commit.
        await self._write_with_blob(
            message,
            lambda tx: self._deliver_op(tx, message, envelope, accounts, remotes),
            analyze=bool(accounts),
        )

    async def _write_with_blob(
        self, message: StagedBlob, op: Callable[[Transaction], T], *, analyze: bool
    ) -> T:
        """Commit `op`, which references `message`'s blob, with deliver()'s file discipline:
        the file is fsynced and linked in the op's prepare step (writer.py), or first in the
        pool when it is large (INLINE_FSYNC_MAX), so that the batch does not wait for it.
        `analyze`: the blob will be in a mailbox, so analyze it there too if it is new (in the
        pool as well when it is over INLINE_ANALYSIS_MAX)."""
        prepared: list[Future[Any]] = []
        try:
            if message.size > INLINE_FSYNC_MAX or (
                analyze and message.size > INLINE_ANALYSIS_MAX
            ):
                prepared.append(self._pool.submit(self._finish_large, message, analyze))
                await asyncio.wrap_future(prepared[0])
                analyze = False  # done (or not needed) in the pool
            written = self.writer.submit(
                op, prepare=lambda: self._prepare_blob(message, analyze)
            )
            prepared.append(written)
            return await asyncio.wrap_future(written)
        except BaseException:
            # Clean up only once no worker touches the file any more (a cancelled await does
            # not stop them). A blob already linked stays: an orphan is legal.
            _abort_when_done(message, prepared)
            raise

    def _finish_large(self, message: StagedBlob, analyze: bool) -> None:
        """In the pool, for a large message: fsync it, then analyze it if it is new (no file
        at its address: see `_prepare_blob`; a blob committed meanwhile is left to
        `_place_blob`, which sees it analyzed)."""
        message.finish(self.durable)
        if analyze and not self.files.path(message.sha256).exists():
            message.analysis = textindex.analyze_blob(message.raw())

    def _prepare_blob(self, message: StagedBlob, analyze: bool) -> None:
        """The writer's prepare step: fsync the file (unless the pool did, for a large one),
        link it to its address and fsync that directory (blobs.py); analyze it if it is new.

        "New" is "`publish` made its name", not a query: a committed blob always has its file,
        so a missing name means no row (and a query from this thread costs a fresh read
        transaction, ~0.2 ms under a busy writer). A name that exists but whose row is gone
        (a crash's orphan, or a blob released meanwhile) leaves the analysis to `_place_blob`,
        which checks under the write lock (rare)."""
        message.finish(self.durable)
        if self.files.publish(message) and analyze:
            message.analysis = textindex.analyze_blob(message.raw())

    def _place_blob(
        self, tx: Transaction, message: StagedBlob, refs: int, *, analyze: bool
    ) -> None:
        """Under the write lock: make the blob's address hold a durable file (blobs.py
        `ensure`) and add `refs` references to its row; the temp name goes after the commit.
        With `analyze`, a blob without meta and index rows gets them (from the prepare step)."""
        conn = tx.conn
        sha = message.sha256
        committed = conn.execute("SELECT 1 FROM blobs WHERE sha256 = ?", (sha,)).fetchone()
        analysis: textindex.Analysis | None = None
        if analyze and (
            committed is None
            or conn.execute("SELECT 1 FROM blob_meta WHERE sha256 = ?", (sha,)).fetchone() is None
        ):
            analysis = message.analysis
            if analysis is None:
                # The prepare step found a file at the address but the blob has no analysis:
                # an orphan file, a blob released since, or the same bytes delivered twice in
                # this batch. Rare; analyzing here, before ensure() may move the temp file,
                # is correct and only costs this batch a little time.
                analysis = textindex.analyze_blob(message.raw())
        relinked = self.files.ensure(message, committed is not None)
        if relinked is not None:
            tx.sync_dir(relinked)
        tx.after_commit(message.abort)  # the temp name; the blob keeps its own
        conn.execute(
            "INSERT INTO blobs (sha256, size, refcount, created) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (sha256) DO UPDATE SET refcount = refcount + excluded.refcount",
            (sha, message.size, refs, int(time.time())),
        )
        if analysis is not None:
            textindex.insert_rows(conn, sha, analysis)
            info = analysis.info  # FETCH of new mail finds it parsed already
            tx.after_commit(lambda: self._infos.put(sha, info))

    def _deliver_op(
        self,
        tx: Transaction,
        message: StagedBlob,
        envelope: Envelope,
        accounts: list[int],
        remotes: list[EnvelopeRecipient],
    ) -> None:
        conn = tx.conn
        inboxes: list[int] = []
        for account_id in accounts:
            row = conn.execute(
                "SELECT id FROM mailboxes WHERE account_id = ? AND name = 'INBOX'", (account_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no account with id {account_id}")
            inboxes.append(int(row[0]))
        sha, size, now = message.sha256, message.size, int(time.time())
        self._place_blob(tx, message, len(inboxes) + len(remotes), analyze=bool(inboxes))
        appended: list[Appended] = []
        for mailbox_id in inboxes:
            uid, modseq = conn.execute(
                "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 "
                "WHERE id = ? RETURNING uidnext - 1, highestmodseq",
                (mailbox_id,),
            ).fetchone()
            conn.execute(
                "INSERT INTO messages (mailbox_id, uid, blob, internal_date, size, modseq) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (mailbox_id, uid, sha, now, size, modseq),
            )
            appended.append(Appended(mailbox_id, (int(uid),)))
        if appended:
            tx.after_commit(lambda: self._changes.publish(list(appended)))
        if remotes:
            mail_params = json.dumps(dict(envelope.mail_params), sort_keys=True)
            origin = json.dumps(
                {
                    "helo": envelope.helo,
                    "client_ip": envelope.client_ip,
                    "authenticated_as": envelope.authenticated_as,
                },
                sort_keys=True,
            )
            conn.executemany(
                "INSERT INTO queue (blob, mail_from, mail_params, rcpt, rcpt_params, origin, "
                "created, next_attempt) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        sha,
                        envelope.mail_from,
                        mail_params,
                        rcpt.address,
                        json.dumps(dict(rcpt.params), sort_keys=True),
                        origin,
                        now,
                        now,
                    )
                    for rcpt in remotes
                ],
            )

    # ----- POP3 ----------------------------------------------------------------------------------
    def pop3_messages(self, account_id: int) -> list[StoredMessage]:
        rows = self._all(
            "SELECT m.uid, m.size, m.blob, b.uidvalidity FROM mailboxes b "
            "JOIN messages m ON m.mailbox_id = b.id "
            "WHERE b.account_id = ? AND b.name = 'INBOX' AND m.pop3_deleted = 0 "
            "ORDER BY m.uid",
            (account_id,),
        )
        return [
            StoredMessage(uid=uid, size=size, blob=blob, uidl=f"{uidvalidity}.{uid}")
            for uid, size, blob, uidvalidity in rows
        ]

    def blob_path(self, blob: str) -> Path:
        return self.files.path(blob)

    # ----- parsed messages and full-text search (textindex.py) ------------------------------------
    def message_info(self, blob: str) -> MessageInfo:
        info = self._infos.get(blob)
        if info is not None:
            return info
        row = self._one(
            "SELECT x.meta FROM blobs b LEFT JOIN blob_meta x ON x.sha256 = b.sha256 "
            "WHERE b.sha256 = ?",
            (blob,),
        )
        if row is None:
            raise NotFound(f"no blob {blob}")
        info = self._decode_info(blob, row[0])
        self._infos.put(blob, info)
        return info

    def message_infos(self, blobs: Sequence[str]) -> dict[str, MessageInfo]:
        found, misses = self._infos.get_many(dict.fromkeys(blobs))
        if not misses:
            return found
        rows = self._all(
            "SELECT b.sha256, x.meta FROM blobs b LEFT JOIN blob_meta x ON x.sha256 = b.sha256 "
            "WHERE b.sha256 IN (SELECT value FROM json_each(?))",
            (json.dumps(misses),),
        )
        fresh: list[tuple[str, MessageInfo]] = []
        for sha, meta in rows:
            try:
                info = self._decode_info(sha, meta)
            except NotFound:  # its file went with its last reference meanwhile
                continue
            found[sha] = info
            fresh.append((sha, info))
        self._infos.put_many(fresh)
        return found

    def _decode_info(self, sha: str, meta: str | None) -> MessageInfo:
        """MessageInfo from blob_meta.meta; a blob without (current) meta is analyzed from its
        file, not written back: readers never write, and migrations fill old rows."""
        if meta is not None:
            try:
                return MessageInfo.from_json(meta)
            except (ValueError, KeyError, TypeError):
                pass  # another FORMAT_VERSION, or a broken row: the file is the truth
        try:
            raw = self.files.path(sha).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {sha} has no file") from None
        except OSError as exc:
            raise_mapped(exc)
        return textindex.analyze_blob(raw).info

    def search_text(self, mailbox_id: int, field: TextField, needle: str) -> frozenset[int]:
        if field not in ("TEXT", "BODY"):
            raise ValueError(f"unknown search field {field!r}; expected TEXT or BODY")
        try:
            found, unindexed = textindex.search(self._reader(), mailbox_id, field, needle)
        except sqlite3.Error as exc:
            raise_mapped(exc)
        for uid, sha in unindexed:  # rows the migration could not index (unreadable file)
            try:
                raw = self.files.path(sha).read_bytes()
                info = self.message_info(sha)
            except (OSError, NotFound):
                continue  # no file, no text: nothing to find
            if textindex.matches(raw, info, field, needle):
                found.add(uid)
        return frozenset(found)

    async def pop3_commit(self, account_id: int, uids: Sequence[int], policy: Pop3Policy) -> None:
        check_policy(policy)
        wanted = sorted(set(uids))
        if not wanted:
            return
        await self._awrite(lambda tx: self._pop3_commit_op(tx, account_id, wanted, policy))

    def _pop3_commit_op(
        self, tx: Transaction, account_id: int, uids: list[int], policy: Pop3Policy
    ) -> None:
        conn = tx.conn
        row = conn.execute(
            "SELECT id, highestmodseq FROM mailboxes WHERE account_id = ? AND name = 'INBOX'",
            (account_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"no account with id {account_id}")
        mailbox_id, modseq = int(row[0]), int(row[1]) + 1
        changed = 0
        released: Counter[str] = Counter()
        expunged: list[int] = []
        for uid in uids:  # UIDs another session expunged meanwhile are simply gone
            if policy == "delete":
                found = conn.execute(
                    "DELETE FROM messages WHERE mailbox_id = ? AND uid = ? RETURNING blob",
                    (mailbox_id, uid),
                ).fetchone()
                if found is None:
                    continue
                released[found[0]] += 1
                conn.execute(
                    "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)",
                    (mailbox_id, uid, modseq),
                )
                expunged.append(uid)
                changed += 1
            else:
                changed += conn.execute(
                    "UPDATE messages SET pop3_deleted = 1, modseq = ? "
                    "WHERE mailbox_id = ? AND uid = ? AND pop3_deleted = 0",
                    (modseq, mailbox_id, uid),
                ).rowcount
        if changed:
            conn.execute(
                "UPDATE mailboxes SET highestmodseq = ? WHERE id = ?", (modseq, mailbox_id)
            )
        self._release_blobs(tx, released)
        if expunged:  # the same event an IMAP EXPUNGE publishes
            event = Expunged(mailbox_id, tuple(expunged))
            tx.after_commit(lambda: self._changes.publish([event]))

    # ----- queue ---------------------------------------------------------------------------------
    def queue_size(self) -> int:
        return int(self._one("SELECT count(*) FROM queue")[0])

    # ----- life cycle ----------------------------------------------------------------------------
    async def aclose(self) -> None:
        # A dedicated thread: joining the writer may wait for one commit.
        done: Future[None] = Future()

        def run() -> None:
            try:
                self.close()
                done.set_result(None)
            except BaseException as exc:
                done.set_exception(exc)

        threading.Thread(target=run, name="store-close", daemon=True).start()
        await asyncio.wrap_future(done)

    def close(self) -> None:
        """Finish pending fsyncs and commits, then close every connection. Idempotent."""
        with self._readers_lock:
            if self._closed:
                return
            self._closed = True
        self._pool.shutdown(wait=True)
        self.writer.close()
        self._dir_pool.shutdown(wait=True)
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()


def _abort_when_done(message: StagedBlob, futures: list[Future[Any]]) -> None:
    """Remove the temp file once every future touching it has finished."""
    remaining = [len(futures)]
    lock = threading.Lock()

    def done(_: Future[Any]) -> None:
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            message.abort()

    for future in futures:
        future.add_done_callback(done)
