"""`mailwright check`: the store's rows against its message files, and its own counters.

What a crash may legally leave (blobs.py invariant 4, blobgc.py): temp files in tmp/, files
under blobs/ that no row references (a delivery whose commit never happened), blob rows with
refcount 0 that the collector has not removed yet (not a problem). `repair` removes the first
two. Anything else found is damage (a bug, a disk, a hand): a missing or altered file of a
live message, counters behind their rows, broken foreign keys. Counters are recomputed from
the rows and a blob nothing refers to whose file is bad is dropped (as the collector would);
the rest is reported, never "fixed" by deleting a message row.

Safe beside a running server:
- The database part reads one snapshot (WAL: one read transaction, the writer never waits).
- Files are looked at after that snapshot, so every suspect is looked at again against a fresh
  read before it is reported: an expunge and the blob collector may have removed a row and its
  file meanwhile, a delivery may have committed an orphan's row.
- A file no row references may be a delivery in flight. While any store has the directory open
  (datalock.py) only files older than `grace` count as leftovers; when none has, all do.
- Repairs run under SQLite's write lock (BEGIN IMMEDIATE), each re-checking the rows first, as
  the collector does (blobgc.py); `BlobFiles.ensure` replaces a file at an address that no
  committed row vouches for, so removing an orphan under that lock never races a delivery.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from mailwright.store import datalock
from mailwright.store.api import StoreError
from mailwright.store.blobgc import _remove as remove_unreferenced
from mailwright.store.datalock import DEFAULT_GRACE
from mailwright.store.schema import SCHEMA_VERSION, SchemaTooNew, current_version
from mailwright.store.sqlite import DB_NAME, connect
from mailwright.store.writer import raise_mapped

# Orphan files removed per write-locked transaction: each holds up deliveries for its length.
REPAIR_GROUP: Final = 256
# Messages named per broken blob (the rest are counted).
EXAMPLES: Final = 5
# integrity_check lines reported (SQLite stops at 100 by itself).
MAX_DB_LINES: Final = 20
READ_CHUNK: Final = 1 << 20

_BLOB_NAME: Final = re.compile(r"[0-9a-f]{64}")
_FANOUT: Final = re.compile(r"[0-9a-f]{2}")
_LISTENERS_TMP: Final = re.compile(r"\.listeners\.json\.\d+\.tmp")

Progress = Callable[[int, int], None]  # (blobs verified, blobs in all)


class CheckError(StoreError):
    """There is no store to check (or it cannot be read at all)."""


@dataclass
class Problem:
    kind: str  # a short name, e.g. "missing-file", "orphan-file", "uidnext"
    where: str  # a mailbox "alice@example.test/INBOX", a path under the data directory...
    detail: str
    repairable: bool
    repaired: bool = False


@dataclass
class CheckReport:
    problems: list[Problem] = field(default_factory=list)
    mailboxes: int = 0
    messages: int = 0
    queued: int = 0
    blobs: int = 0
    bytes_verified: int = 0
    in_flight: int = 0  # unreferenced files left alone: young, and the store was in use
    store_in_use: bool = False

    @property
    def remaining(self) -> list[Problem]:
        return [p for p in self.problems if not p.repaired]

    @property
    def clean(self) -> bool:
        return not self.remaining


def check_store(
    data_dir: Path,
    *,
    repair: bool = False,
    grace: float = DEFAULT_GRACE,
    progress: Progress | None = None,
) -> CheckReport:
    """Check (and with `repair`, fix what a crash may leave) the store in `data_dir`."""
    data_dir = Path(data_dir)
    if not (data_dir / DB_NAME).is_file():
        raise CheckError(f"no store in {data_dir} ({DB_NAME} is missing)")
    try:
        checker = _Checker(data_dir, grace)
    except sqlite3.DatabaseError as exc:  # not even its schema can be read: nothing to compare
        return CheckReport([Problem("database", DB_NAME, f"cannot be opened: {exc}", False)])
    try:
        checker.database()
        checker.files(progress)
        lock = _try_exclusive(data_dir) if repair else None
        try:
            in_use = lock is None if repair else _in_use(data_dir)
            checker.orphans(in_use)
            if repair:
                checker.repair(in_use)
        finally:
            if lock is not None:
                datalock.release(lock)
    finally:
        checker.close()
    return checker.report


def _in_use(data_dir: Path) -> bool:
    try:
        return datalock.in_use(data_dir)
    except OSError:  # cannot even open the lock file (read-only): assume the worst
        return True


def _try_exclusive(data_dir: Path) -> int | None:
    try:
        return datalock.try_exclusive(data_dir)
    except OSError:  # as above: then only old files go
        return None


def _age(st: os.stat_result, now: float) -> float:
    """Seconds since the file last changed: a link (publish) updates ctime, a write mtime."""
    return now - max(st.st_mtime, st.st_ctime)


def _seconds(value: float) -> str:
    value = max(0, int(value))
    if value < 120:
        return f"{value}s"
    if value < 7200:
        return f"{value // 60}m"
    return f"{value // 3600}h"


class _Checker:
    def __init__(self, data_dir: Path, grace: float) -> None:
        self.data_dir = data_dir
        self.grace = grace
        self.report = CheckReport()
        self.db = data_dir / DB_NAME
        self.conn = connect(self.db, durable=True, readonly=True)
        self.blob_rows: dict[str, tuple[int, int]] = {}  # sha -> (size, refcount)
        # The database could not be read whole: no file may be called unreferenced then.
        self.db_damaged = False
        # Repairs found (each with the problems they settle).
        self.fix_mailboxes: list[tuple[int, Problem]] = []
        self.fix_uidvalidity: list[Problem] = []
        self.fix_refcounts: list[tuple[str, Problem]] = []
        self.drop_blobs: list[tuple[str, Problem]] = []  # unreferenced rows with a bad file
        self.orphan_files: list[tuple[Path, Problem]] = []
        self.temp_files: list[tuple[Path, Problem]] = []

    def close(self) -> None:
        self.conn.close()

    def _add(self, kind: str, where: str, detail: str, repairable: bool) -> Problem:
        problem = Problem(kind, where, detail, repairable)
        self.report.problems.append(problem)
        return problem

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise_mapped(exc)

    # ----- the database: one snapshot ----------------------------------------------------------
    def database(self) -> None:
        self._read("BEGIN")
        try:
            version = current_version(self.conn)
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(f"database schema {version} is newer than this mailwright")
            if version == 0:
                raise CheckError(f"{self.db} holds no mailwright schema")
            lines = [row[0] for row in self._read("PRAGMA integrity_check")]
            if lines != ["ok"]:
                self.db_damaged = True
                for line in lines[:MAX_DB_LINES]:
                    self._add("database", DB_NAME, f"integrity_check: {line}", False)
            for table, rowid, parent, _ in self._read("PRAGMA foreign_key_check"):
                self._add("foreign-key", f"{table} row {rowid}",
                          f"refers to a {parent} row that does not exist", False)
            self._mailboxes()
            self._blob_rows()
        except sqlite3.DatabaseError as exc:  # not mapped to StorageUnavailable: damage
            self.db_damaged = True
            self._add("database", DB_NAME, f"cannot be read: {exc}", False)
        finally:
            if self.conn.in_transaction:  # read only: nothing to commit
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")

    def _mailboxes(self) -> None:
        rows = self._read(
            "SELECT b.id, coalesce(a.address, '#' || b.account_id) || '/' || b.name, "
            "b.uidvalidity, b.uidnext, b.highestmodseq, "
            "(SELECT max(uid) FROM messages m WHERE m.mailbox_id = b.id), "
            "(SELECT max(modseq) FROM messages m WHERE m.mailbox_id = b.id), "
            "(SELECT max(uid) FROM expunged e WHERE e.mailbox_id = b.id), "
            "(SELECT max(modseq) FROM expunged e WHERE e.mailbox_id = b.id), "
            "(SELECT count(*) FROM messages m JOIN expunged e "
            " ON e.mailbox_id = m.mailbox_id AND e.uid = m.uid WHERE m.mailbox_id = b.id), "
            "(SELECT count(*) FROM messages m WHERE m.mailbox_id = b.id) "
            "FROM mailboxes b LEFT JOIN accounts a ON a.id = b.account_id ORDER BY b.id"
        )
        self.report.mailboxes = len(rows)
        top_validity = 0
        for (mailbox_id, where, validity, uidnext, highest, max_uid, max_modseq, max_gone_uid,
             max_gone_modseq, both, count) in rows:
            self.report.messages += count
            top_validity = max(top_validity, validity)
            top_uid = max(max_uid or 0, max_gone_uid or 0)
            top_modseq = max(max_modseq or 0, max_gone_modseq or 0)
            if uidnext <= top_uid:
                self.fix_mailboxes.append((mailbox_id, self._add(
                    "uidnext", where, f"UIDNEXT {uidnext} but UID {top_uid} was given", True)))
            if highest < top_modseq:
                self.fix_mailboxes.append((mailbox_id, self._add(
                    "highestmodseq", where,
                    f"HIGHESTMODSEQ {highest} below a MODSEQ {top_modseq} in use", True)))
            if both:
                self._add("expunged", where,
                          f"{both} UID(s) present and also recorded as expunged", False)
        row = self._read("SELECT value FROM meta WHERE key = 'last_uidvalidity'")
        last = int(row[0][0]) if row else 0
        if last < top_validity:
            self.fix_uidvalidity.append(self._add(
                "uidvalidity", "meta", f"last UIDVALIDITY {last} below {top_validity} in use",
                True))

    def _blob_rows(self) -> None:
        refs: dict[str, int] = {}
        for blob, n in self._read("SELECT blob, count(*) FROM messages GROUP BY blob"):
            refs[blob] = n
        queued = 0
        for blob, n in self._read("SELECT blob, count(*) FROM queue GROUP BY blob"):
            refs[blob] = refs.get(blob, 0) + n
            queued += n
        self.report.queued = queued
        for sha, size, refcount in self._read("SELECT sha256, size, refcount FROM blobs"):
            self.blob_rows[sha] = (size, refcount)
            actual = refs.get(sha, 0)
            if refcount != actual and not (actual == 0 and refcount <= 0):
                self.fix_refcounts.append((sha, self._add(
                    "refcount", f"blob {sha[:16]}",
                    f"refcount {refcount}, but {actual} message/queue row(s) refer to it",
                    True)))
        self.report.blobs = len(self.blob_rows)
        for where, uid, size, blob_size in self._read(
            "SELECT coalesce(a.address, '#' || b.account_id) || '/' || b.name, m.uid, m.size, "
            "x.size FROM messages m JOIN blobs x ON x.sha256 = m.blob "
            "JOIN mailboxes b ON b.id = m.mailbox_id LEFT JOIN accounts a ON a.id = b.account_id "
            "WHERE m.size != x.size"
        ):
            self._add("message-size", f"{where} UID {uid}",
                      f"row says {size} bytes, its file's row {blob_size}", False)

    # ----- the files of the rows -----------------------------------------------------------------
    def _verify(self, sha: str, size: int) -> str | None:
        """What is wrong with the file of blob `sha` (None: nothing); counts the bytes read."""
        path = self.data_dir / "blobs" / sha[:2] / sha
        digest = hashlib.sha256()
        read = 0
        try:
            with open(path, "rb") as f:
                actual = os.fstat(f.fileno()).st_size
                if actual != size:
                    return f"file has {actual} bytes, row says {size}"
                while chunk := f.read(READ_CHUNK):
                    digest.update(chunk)
                    read += len(chunk)
        except FileNotFoundError:
            return "file missing"
        except OSError as exc:
            return f"file unreadable: {exc.strerror or exc}"
        finally:
            self.report.bytes_verified += read
        if read != size:
            return f"file has {read} bytes, row says {size}"
        if digest.hexdigest() != sha:
            return f"content does not match its SHA-256 (it is {digest.hexdigest()[:16]}...)"
        return None

    def files(self, progress: Progress | None) -> None:
        total = len(self.blob_rows)
        suspects: list[str] = []
        for done, (sha, (size, _)) in enumerate(sorted(self.blob_rows.items()), 1):
            if self._verify(sha, size) is not None:
                suspects.append(sha)
            if progress is not None:
                progress(done, total)
        if not suspects:
            return
        if self.db_damaged:  # no second look possible; nothing repaired either
            for sha in suspects:
                wrong = self._verify(sha, self.blob_rows[sha][0]) or "changed while checked"
                self._add("bad-file", f"blob {sha[:16]}", wrong, False)
            return
        # Look again against the rows as they are now (the module docstring says why).
        for sha, size, n_messages, n_queue in self._read(
            "SELECT x.sha256, x.size, "
            "(SELECT count(*) FROM messages WHERE blob = x.sha256), "
            "(SELECT count(*) FROM queue WHERE blob = x.sha256) "
            "FROM blobs x WHERE x.sha256 IN (SELECT value FROM json_each(?))",
            (json.dumps(suspects),),
        ):
            again = self._verify(sha, size)
            if again is None:
                continue
            if n_messages or n_queue:
                self._add("bad-file" if "missing" not in again else "missing-file",
                          self._users(sha, n_messages, n_queue),
                          f"{again} (blob {sha[:16]}...); cannot repair: restore it from a "
                          "backup", False)
            else:  # nothing needs it: drop the row (and what is left of the file)
                self.drop_blobs.append((sha, self._add(
                    "unreferenced-bad-file", f"blob {sha[:16]}",
                    f"{again}; no message or queue row refers to it", True)))

    def _users(self, sha: str, n_messages: int, n_queue: int) -> str:
        names = [
            f"{where} UID {uid}"
            for where, uid in self._read(
                "SELECT coalesce(a.address, '#' || b.account_id) || '/' || b.name, m.uid "
                "FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
                "LEFT JOIN accounts a ON a.id = b.account_id WHERE m.blob = ? "
                "ORDER BY m.mailbox_id, m.uid LIMIT ?",
                (sha, EXAMPLES),
            )
        ]
        if n_messages > len(names):
            names.append(f"{n_messages - len(names)} more message(s)")
        if n_queue:
            ids = [str(i) for (i,) in self._read(
                "SELECT id FROM queue WHERE blob = ? ORDER BY id LIMIT ?", (sha, EXAMPLES))]
            names.append(f"queue id {', '.join(ids)}" + (" ..." if n_queue > len(ids) else ""))
        return "; ".join(names)

    # ----- files no row refers to ----------------------------------------------------------------
    def orphans(self, in_use: bool) -> None:
        """Orphan blobs, temp files and stray entries; young ones are in flight while in use."""
        self.report.store_in_use = in_use
        now = time.time()
        candidates: list[Path] = []
        root = self.data_dir / "blobs"
        for entry in _scan(root):
            if entry.is_dir(follow_symlinks=False) and _FANOUT.fullmatch(entry.name):
                for item in _scan(Path(entry.path)):
                    path = Path(item.path)
                    if not (item.is_file(follow_symlinks=False)
                            and _BLOB_NAME.fullmatch(item.name)
                            and item.name[:2] == entry.name):
                        self._add("stray-file", self._rel(path), "not a message file", False)
                    elif item.name not in self.blob_rows:
                        candidates.append(path)
            else:
                self._add("stray-file", self._rel(Path(entry.path)), "not a message file", False)
        known = set(self.blob_rows) if self.db_damaged else self._still_known(
            [p.name for p in candidates])
        for path in candidates:
            if path.name not in known:
                self._unreferenced(path, now, in_use, self.orphan_files, "orphan-file",
                                   "message file no row refers to")
        for entry in _scan(self.data_dir / "tmp"):
            path = Path(entry.path)
            if entry.is_file(follow_symlinks=False):
                self._unreferenced(path, now, in_use, self.temp_files, "temp-file",
                                   "temporary file")
            else:
                self._add("stray-file", self._rel(path), "not a temporary file", False)
        for entry in _scan(self.data_dir):
            if _LISTENERS_TMP.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                self._unreferenced(Path(entry.path), now, in_use, self.temp_files, "temp-file",
                                   "temporary file")

    def _still_known(self, shas: list[str]) -> set[str]:
        if not shas:
            return set()
        return {
            sha for (sha,) in self._read(
                "SELECT sha256 FROM blobs WHERE sha256 IN (SELECT value FROM json_each(?))",
                (json.dumps(shas),),
            )
        }

    def _unreferenced(
        self, path: Path, now: float, in_use: bool, into: list[tuple[Path, Problem]],
        kind: str, what: str,
    ) -> None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return  # committed and cleaned up meanwhile
        age = _age(st, now)
        if in_use and age < self.grace:
            self.report.in_flight += 1
            return
        if self.db_damaged and kind == "orphan-file":  # maybe its row is what is damaged
            self._add(kind, self._rel(path), f"{what} ({st.st_size} bytes); kept: the "
                      "database is damaged", False)
            return
        into.append((path, self._add(
            kind, self._rel(path),
            f"{what} ({st.st_size} bytes, {_seconds(age)} old); a crash's leftover", True)))

    def _rel(self, path: Path) -> str:
        with contextlib.suppress(ValueError):
            return str(path.relative_to(self.data_dir))
        return str(path)

    # ----- repair --------------------------------------------------------------------------------
    def repair(self, in_use: bool) -> None:
        conn = connect(self.db, durable=True)
        try:
            if self.fix_mailboxes or self.fix_uidvalidity or self.fix_refcounts or self.drop_blobs:
                self._repair_rows(conn)
            self._repair_orphans(conn, in_use)
        finally:
            conn.close()
        self._repair_temps(in_use)

    def _repair_rows(self, conn: sqlite3.Connection) -> None:
        """Counters from the rows as they are under the write lock (never lowered), refcounts
        recomputed, unreferenced blobs with a bad file dropped as the collector would."""
        mailboxes = json.dumps(sorted({mailbox_id for mailbox_id, _ in self.fix_mailboxes}))
        shas = json.dumps(sorted({sha for sha, _ in self.fix_refcounts + self.drop_blobs}))
        doomed: list[str] = []
        _execute(conn, "BEGIN IMMEDIATE")
        try:
            conn.execute(
                "UPDATE mailboxes SET "
                "uidnext = max(uidnext, "
                " coalesce((SELECT max(uid) FROM messages WHERE mailbox_id = mailboxes.id), 0) + 1,"
                " coalesce((SELECT max(uid) FROM expunged WHERE mailbox_id = mailboxes.id), 0) + 1"
                "), highestmodseq = max(highestmodseq, "
                " coalesce((SELECT max(modseq) FROM messages WHERE mailbox_id = mailboxes.id), 0),"
                " coalesce((SELECT max(modseq) FROM expunged WHERE mailbox_id = mailboxes.id), 0)"
                ") WHERE id IN (SELECT value FROM json_each(?))",
                (mailboxes,),
            )
            if self.fix_uidvalidity:
                conn.execute(  # text, as schema.allocate_uidvalidity writes it
                    "INSERT INTO meta (key, value) SELECT 'last_uidvalidity', "
                    "CAST(max(uidvalidity) AS TEXT) FROM mailboxes WHERE true "
                    "ON CONFLICT (key) DO UPDATE SET value = CAST(max(CAST(value AS INTEGER), "
                    "CAST(excluded.value AS INTEGER)) AS TEXT)"
                )
            conn.execute(
                "UPDATE blobs SET refcount = "
                "(SELECT count(*) FROM messages WHERE blob = blobs.sha256) + "
                "(SELECT count(*) FROM queue WHERE blob = blobs.sha256) "
                "WHERE sha256 IN (SELECT value FROM json_each(?))",
                (shas,),
            )
            if self.drop_blobs:
                doomed = remove_unreferenced(conn, [sha for sha, _ in self.drop_blobs])
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise_mapped(exc)
        for _, problem in self.fix_mailboxes:
            problem.repaired = True
        for problem in self.fix_uidvalidity:
            problem.repaired = True
        for _, problem in self.fix_refcounts:
            problem.repaired = True
        gone = set(doomed)
        for sha, problem in self.drop_blobs:
            problem.repaired = sha in gone  # else: a reference came back meanwhile
        paths = [self.data_dir / "blobs" / sha[:2] / sha for sha in doomed]
        self._unlink_unreferenced(conn, [(p, None) for p in paths], in_use=False)

    def _repair_orphans(self, conn: sqlite3.Connection, in_use: bool) -> None:
        self._unlink_unreferenced(conn, self.orphan_files, in_use)

    def _unlink_unreferenced(
        self, conn: sqlite3.Connection, files: Sequence[tuple[Path, Problem | None]],
        in_use: bool,
    ) -> None:
        """Unlink blob files whose row is still absent, under the write lock, in groups."""
        for start in range(0, len(files), REPAIR_GROUP):
            group = files[start : start + REPAIR_GROUP]
            _execute(conn, "BEGIN IMMEDIATE")
            try:
                known = {
                    sha for (sha,) in conn.execute(
                        "SELECT sha256 FROM blobs WHERE sha256 IN "
                        "(SELECT value FROM json_each(?))",
                        (json.dumps([p.name for p, _ in group]),),
                    )
                }
                now = time.time()
                for path, problem in group:
                    if path.name in known or (in_use and not _old(path, now, self.grace)):
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    if problem is not None:
                        problem.repaired = True
            finally:
                _execute(conn, "COMMIT")

    def _repair_temps(self, in_use: bool) -> None:
        now = time.time()
        for path, problem in self.temp_files:
            if in_use and not _old(path, now, self.grace):
                continue
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                problem.detail += f"; cannot remove: {exc.strerror or exc}"
                continue
            problem.repaired = True


def _old(path: Path, now: float, grace: float) -> bool:
    """Still unchanged for `grace` seconds (a missing file counts as old: it is gone)."""
    try:
        return _age(path.stat(), now) >= grace
    except FileNotFoundError:
        return True


def _scan(directory: Path) -> Iterable[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return sorted(entries, key=lambda e: e.name)
    except FileNotFoundError:
        return []


def _execute(conn: sqlite3.Connection, sql: str) -> None:
    try:
        conn.execute(sql)
    except sqlite3.Error as exc:
        raise_mapped(exc)
