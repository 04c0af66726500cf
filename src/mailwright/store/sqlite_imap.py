"""The IMAP operations of the SQLite store (a mixin of `SqliteStore`, kept apart for size).

Invariants, on top of sqlite.py's:
- Every write is one writer op (group commit, writer.py): all of it or none, durable when the
  caller's await returns. An op that references a new file uses deliver()'s discipline
  (`_write_with_blob`, `_place_blob`).
- UIDs only grow: a new UID is always the mailbox's `uidnext`, which is then incremented, in the
  same op; copy and move allocate in the destination the same way, so no UID is ever reused,
  also after expunge, move or a restart.
- MODSEQ only grows: every change takes `highestmodseq + 1` of its mailbox and stores it as the
  new HIGHESTMODSEQ (RFC 7162 3.1); a flag change gets one per changed message, an expunge one
  for all the UIDs it removes (recorded in `expunged` for VANISHED), as POP3's delete does.
- Blob references: a message row holds one reference. Copy adds one per copy; expunge, delete
  and POP3 delete release theirs (`_release_blobs`); move re-homes the row and changes none.
- Commit first, then publish: events go to `changes` from `Transaction.after_commit` hooks, which
  run only when the op's savepoint and the batch's COMMIT succeeded (changes.py).
- Flags are stored as one space-separated, sorted string; system flags in their canonical case
  ("\\Seen"), keywords as given (RFC 3501 2.3.2).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from mailwright.store.api import (
    FLAG_MODES,
    HIERARCHY_DELIMITER,
    INBOX,
    SYSTEM_FLAGS,
    AlreadyExists,
    AppendResult,
    FlagChange,
    FlagMode,
    Forbidden,
    InUse,
    InvalidName,
    MailboxInfo,
    MailboxStatus,
    MessageRecord,
    NotFound,
    StagedMessage,
    normalize_mailbox_name,
)
from mailwright.store.blobs import StagedBlob
from mailwright.store.changes import (
    Appended,
    Change,
    ChangeBus,
    Expunged,
    FlagsChanged,
    MailboxDeleted,
)
from mailwright.store.schema import allocate_uidvalidity
from mailwright.store.writer import Transaction

T = TypeVar("T")

_CANONICAL_SYSTEM: dict[str, str] = {flag.lower(): flag for flag in SYSTEM_FLAGS}
_MAILBOX_COLUMNS = (
    "b.id, b.name, b.uidvalidity, b.uidnext, b.highestmodseq, b.special_use, "
    "EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = b.account_id "
    "AND s.name = b.name)"
)


def canonical_flags(flags: Iterable[str]) -> frozenset[str]:
    """System flags in canonical case, keywords as given. A flag with white space (it could not
    be stored) or "\\Recent" (the server's, not the client's, RFC 3501 2.3.2) is a caller bug."""
    out: set[str] = set()
    for flag in flags:
        if not flag or any(c.isspace() for c in flag):
            raise ValueError(f"not a flag: {flag!r}")
        if flag.startswith("\\"):
            canonical = _CANONICAL_SYSTEM.get(flag.lower())
            if canonical is None:
                raise ValueError(f"not a storable system flag: {flag!r}")
            flag = canonical
        out.add(flag)
    return frozenset(out)


def _flags_text(flags: frozenset[str]) -> str:
    return " ".join(sorted(flags))


def _flags_of(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _info(row: Sequence[Any]) -> MailboxInfo:
    return MailboxInfo(
        id=int(row[0]),
        name=row[1],
        uidvalidity=int(row[2]),
        uidnext=int(row[3]),
        highestmodseq=int(row[4]),
        special_use=row[5],
        subscribed=bool(row[6]),
    )


def _ancestors(name: str) -> list[str]:
    """The parents of a name: "a/b/c" -> ["a", "a/b"]."""
    levels = name.split(HIERARCHY_DELIMITER)
    return [HIERARCHY_DELIMITER.join(levels[:i]) for i in range(1, len(levels))]


def _publish_after_commit(tx: Transaction, bus: ChangeBus, events: list[Change]) -> None:
    if events:
        tx.after_commit(lambda: bus.publish(events))


class SqliteImapOps:
    """Mailbox and message operations for IMAP; see the module docstring."""

    if TYPE_CHECKING:  # provided by SqliteStore

        @property
        def changes(self) -> ChangeBus: ...

        def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

        def _one(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

        async def _awrite(self, op: Callable[[Transaction], T]) -> T: ...

        async def _write_with_blob(
            self, message: StagedBlob, op: Callable[[Transaction], T], *, analyze: bool
        ) -> T: ...

        def _place_blob(
            self, tx: Transaction, message: StagedBlob, refs: int, *, analyze: bool
        ) -> None: ...

        def _release_blobs(self, tx: Transaction, counts: Counter[str]) -> None: ...

    # ----- mailboxes -----------------------------------------------------------------------
    def list_mailboxes(self, account_id: int) -> list[MailboxInfo]:
        rows = self._all(
            f"SELECT {_MAILBOX_COLUMNS} FROM mailboxes b WHERE b.account_id = ? ORDER BY b.name",
            (account_id,),
        )
        return [_info(row) for row in rows]

    def mailbox(self, account_id: int, name: str) -> MailboxInfo | None:
        try:
            canonical = normalize_mailbox_name(name)
        except InvalidName:
            return None
        row = self._one(
            f"SELECT {_MAILBOX_COLUMNS} FROM mailboxes b WHERE b.account_id = ? AND b.name = ?",
            (account_id, canonical),
        )
        return None if row is None else _info(row)

    def mailbox_status(self, account_id: int, name: str) -> MailboxStatus | None:
        info = self.mailbox(account_id, name)
        if info is None:
            return None
        # One read transaction for the counts and the mailbox row, so they agree.
        row = self._one(
            "SELECT count(m.id), "
            "  coalesce(sum(instr(' ' || m.flags || ' ', ' \\Seen ') = 0), 0), "
            "  coalesce(sum(instr(' ' || m.flags || ' ', ' \\Deleted ') > 0), 0), "
            "  coalesce(sum(m.size), 0), b.uidnext, b.uidvalidity, b.highestmodseq "
            "FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id WHERE b.id = ?",
            (info.id,),
        )
        if row is None or row[4] is None:  # deleted between the two reads
            return None
        messages, unseen, deleted, size, uidnext, uidvalidity, highestmodseq = row
        return MailboxStatus(
            id=info.id,
            messages=int(messages),
            recent=0,
            unseen=int(unseen),
            deleted=int(deleted),
            size=int(size),
            uidnext=int(uidnext),
            uidvalidity=int(uidvalidity),
            highestmodseq=int(highestmodseq),
        )

    def subscriptions(self, account_id: int) -> list[str]:
        rows = self._all(
            "SELECT name FROM subscriptions WHERE account_id = ? ORDER BY name", (account_id,)
        )
        return [name for (name,) in rows]

    async def create_mailbox(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> MailboxInfo:
        if name.endswith(HIERARCHY_DELIMITER) and name != HIERARCHY_DELIMITER:
            name = name[:-1]  # RFC 3501 6.3.3: a trailing delimiter only declares the intent
        canonical = normalize_mailbox_name(name)

        def op(tx: Transaction) -> MailboxInfo:
            _check_account(tx.conn, account_id)
            return _create(tx.conn, account_id, canonical, special_use)

        return await self._awrite(op)

    async def delete_mailbox(self, account_id: int, name: str) -> None:
        canonical = normalize_mailbox_name(name)
        if canonical == INBOX:
            raise Forbidden("INBOX cannot be deleted")

        def op(tx: Transaction) -> None:
            conn = tx.conn
            mailbox_id = _mailbox_id(conn, account_id, canonical)
            if _has_children(conn, account_id, canonical):
                raise InUse(f"mailbox {canonical} has inferior mailboxes")
            refs: Counter[str] = Counter(
                {
                    sha: n
                    for sha, n in conn.execute(
                        "SELECT blob, count(*) FROM messages WHERE mailbox_id = ? GROUP BY blob",
                        (mailbox_id,),
                    )
                }
            )
            conn.execute("DELETE FROM mailboxes WHERE id = ?", (mailbox_id,))  # cascades
            self._release_blobs(tx, refs)
            _publish_after_commit(tx, self.changes, [MailboxDeleted(mailbox_id)])

        await self._awrite(op)

    async def rename_mailbox(self, account_id: int, old: str, new: str) -> MailboxInfo:
        source = normalize_mailbox_name(old)
        target = normalize_mailbox_name(new)
        # INBOX is exempt: its messages go to a new mailbox, INBOX itself stays (6.3.5).
        if source != INBOX and target.startswith(source + HIERARCHY_DELIMITER):
            raise Forbidden(f"cannot rename {source} into itself")

        def op(tx: Transaction) -> MailboxInfo:
            conn = tx.conn
            source_id = _mailbox_id(conn, account_id, source)
            if _lookup(conn, account_id, target) is not None:
                raise AlreadyExists(f"mailbox {target} exists")
            if source == INBOX:
                return self._rename_inbox(tx, account_id, source_id, target)
            for parent in _ancestors(target):
                if _lookup(conn, account_id, parent) is None:
                    _create(conn, account_id, parent, None)
            try:
                conn.execute(
                    "UPDATE mailboxes SET name = ? || substr(name, ?) "
                    "WHERE account_id = ? AND (name = ? OR substr(name, 1, ?) = ?)",
                    (
                        target,
                        len(source) + 1,
                        account_id,
                        source,
                        len(source) + 1,
                        source + HIERARCHY_DELIMITER,
                    ),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"an inferior of {target} exists") from None
            return _info_by_id(conn, source_id)

        return await self._awrite(op)

    def _rename_inbox(
        self, tx: Transaction, account_id: int, inbox_id: int, target: str
    ) -> MailboxInfo:
        """RFC 3501 6.3.5: move every INBOX message to a new mailbox; INBOX stays, empty. For
        INBOX's sessions those messages are expunged; the new mailbox has a fresh UIDVALIDITY
        (it is a new incarnation), and keeps the UIDs and MODSEQs."""
        conn = tx.conn
        created = _create(conn, account_id, target, None)
        uidnext, highest = conn.execute(
            "SELECT uidnext, highestmodseq FROM mailboxes WHERE id = ?", (inbox_id,)
        ).fetchone()
        uids = [
            int(uid)
            for (uid,) in conn.execute(
                "UPDATE messages SET mailbox_id = ?, pop3_deleted = 0 WHERE mailbox_id = ? "
                "RETURNING uid",
                (created.id, inbox_id),
            )
        ]
        uids.sort()
        conn.execute(
            "UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?",
            (uidnext, highest, created.id),
        )
        events: list[Change] = []
        if uids:
            modseq = int(highest) + 1
            conn.executemany(
                "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)",
                [(inbox_id, uid, modseq) for uid in uids],
            )
            conn.execute("UPDATE mailboxes SET highestmodseq = ? WHERE id = ?", (modseq, inbox_id))
            events = [Expunged(inbox_id, tuple(uids)), Appended(created.id, tuple(uids))]
        _publish_after_commit(tx, self.changes, events)
        return _info_by_id(conn, created.id)

    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        canonical = normalize_mailbox_name(name)

        def op(tx: Transaction) -> None:
            _check_account(tx.conn, account_id)
            if subscribed:
                tx.conn.execute(
                    "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)",
                    (account_id, canonical),
                )
            else:
                tx.conn.execute(
                    "DELETE FROM subscriptions WHERE account_id = ? AND name = ?",
                    (account_id, canonical),
                )

        await self._awrite(op)

    # ----- messages ------------------------------------------------------------------------
    def mailbox_messages(self, mailbox_id: int) -> list[MessageRecord]:
        rows = self._all(
            "SELECT uid, blob, size, internal_date, flags, modseq FROM messages "
            "WHERE mailbox_id = ? ORDER BY uid",
            (mailbox_id,),
        )
        return [
            MessageRecord(
                uid=int(uid),
                blob=blob,
                size=int(size),
                internal_date=int(date),
                flags=_flags_of(flags),
                modseq=int(modseq),
            )
            for uid, blob, size, date, flags, modseq in rows
        ]

    async def append(
        self,
        account_id: int,
        mailbox: str,
        message: StagedMessage,
        flags: Sequence[str] = (),
        internal_date: int | None = None,
    ) -> AppendResult:
        if not isinstance(message, StagedBlob):
            raise TypeError("append() takes a message from this store's stage()")
        try:
            canonical = normalize_mailbox_name(mailbox)
            flag_text = _flags_text(canonical_flags(flags))
        except BaseException:
            message.abort()
            raise
        date = int(time.time()) if internal_date is None else int(internal_date)

        def op(tx: Transaction) -> AppendResult:
            conn = tx.conn
            mailbox_id = _mailbox_id(conn, account_id, canonical)
            self._place_blob(tx, message, 1, analyze=True)
            uid, modseq, uidvalidity = _next_uid(conn, mailbox_id)
            conn.execute(
                "INSERT INTO messages (mailbox_id, uid, blob, internal_date, size, flags, modseq) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (mailbox_id, uid, message.sha256, date, message.size, flag_text, modseq),
            )
            _publish_after_commit(tx, self.changes, [Appended(mailbox_id, (uid,))])
            return AppendResult(uidvalidity=uidvalidity, uid=uid)

        return await self._write_with_blob(message, op, analyze=True)

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        mode: FlagMode,
        flags: Sequence[str],
        unchanged_since: int | None = None,
    ) -> list[FlagChange]:
        if mode not in FLAG_MODES:
            raise ValueError(f"unknown flag mode {mode!r}; expected one of {FLAG_MODES}")
        given = canonical_flags(flags)
        wanted = sorted(set(uids))

        def op(tx: Transaction) -> list[FlagChange]:
            conn = tx.conn
            highest = _highestmodseq(conn, mailbox_id)
            changes: list[FlagChange] = []
            for uid, text, modseq in _rows_for_uids(
                conn, "SELECT uid, flags, modseq FROM messages", mailbox_id, wanted
            ):
                if unchanged_since is not None and modseq > unchanged_since:
                    continue  # RFC 7162 3.1.3: modified since; the caller reports it
                current = _flags_of(text)
                if mode == "add":
                    after = current | given
                elif mode == "remove":
                    after = current - given
                else:
                    after = given
                if after == current:
                    continue
                highest += 1
                changes.append(FlagChange(uid=uid, flags=after, modseq=highest))
            if changes:
                conn.executemany(
                    "UPDATE messages SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?",
                    [(_flags_text(c.flags), c.modseq, mailbox_id, c.uid) for c in changes],
                )
                conn.execute(
                    "UPDATE mailboxes SET highestmodseq = ? WHERE id = ?", (highest, mailbox_id)
                )
                event = FlagsChanged(mailbox_id, tuple(changes))
                _publish_after_commit(tx, self.changes, [event])
            return changes

        return await self._awrite(op)

    async def expunge(self, mailbox_id: int, uids: Sequence[int] | None = None) -> list[int]:
        wanted = None if uids is None else sorted(set(uids))

        def op(tx: Transaction) -> list[int]:
            conn = tx.conn
            _highestmodseq(conn, mailbox_id)  # NotFound
            doomed = _rows_for_uids(
                conn,
                "SELECT uid, blob FROM messages",
                mailbox_id,
                wanted,
                "instr(' ' || flags || ' ', ' \\Deleted ') > 0",
            )
            return self._expunge_rows(tx, mailbox_id, [(u, b) for u, b in doomed], release=True)

        return await self._awrite(op)

    def _expunge_rows(
        self, tx: Transaction, mailbox_id: int, rows: list[tuple[int, str]], *, release: bool
    ) -> list[int]:
        """Delete these (uid, blob) rows, remember them in `expunged` with one new MODSEQ, and
        publish Expunged after the commit. `release`: drop their blob references too."""
        if not rows:
            return []
        conn = tx.conn
        modseq = _highestmodseq(conn, mailbox_id) + 1
        uids = [uid for uid, _ in rows]
        conn.executemany(
            "DELETE FROM messages WHERE mailbox_id = ? AND uid = ?",
            [(mailbox_id, uid) for uid in uids],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)",
            [(mailbox_id, uid, modseq) for uid in uids],
        )
        conn.execute("UPDATE mailboxes SET highestmodseq = ? WHERE id = ?", (modseq, mailbox_id))
        if release:
            self._release_blobs(tx, Counter(blob for _, blob in rows))
        _publish_after_commit(tx, self.changes, [Expunged(mailbox_id, tuple(uids))])
        return uids

    async def copy(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> list[tuple[int, int]]:
        return await self._transfer(src_mailbox_id, uids, dst_mailbox_id, move=False)

    async def move(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> list[tuple[int, int]]:
        return await self._transfer(src_mailbox_id, uids, dst_mailbox_id, move=True)

    async def _transfer(
        self, src: int, uids: Sequence[int], dst: int, *, move: bool
    ) -> list[tuple[int, int]]:
        wanted = sorted(set(uids))

        def op(tx: Transaction) -> list[tuple[int, int]]:
            conn = tx.conn
            _highestmodseq(conn, src)  # NotFound
            _highestmodseq(conn, dst)
            rows = _rows_for_uids(
                conn,
                "SELECT uid, blob, internal_date, size, flags FROM messages",
                src,
                wanted,
            )
            pairs: list[tuple[int, int]] = []
            for uid, blob, date, size, flags in rows:
                new_uid, modseq, _ = _next_uid(conn, dst)
                conn.execute(
                    "INSERT INTO messages "
                    "(mailbox_id, uid, blob, internal_date, size, flags, modseq) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (dst, new_uid, blob, date, size, flags, modseq),
                )
                pairs.append((uid, new_uid))
            if not pairs:
                return []
            if move:  # the copy's new reference and the source's released one cancel out
                self._expunge_rows(tx, src, [(uid, blob) for uid, blob, *_ in rows], release=False)
            else:
                refs = Counter(blob for _, blob, *_ in rows)
                conn.executemany(
                    "UPDATE blobs SET refcount = refcount + ? WHERE sha256 = ?",
                    [(n, sha) for sha, n in refs.items()],
                )
            event = Appended(dst, tuple(new for _, new in pairs))
            _publish_after_commit(tx, self.changes, [event])
            return pairs

        return await self._awrite(op)


# ----- helpers (inside a writer op) --------------------------------------------------------------
def _check_account(conn: sqlite3.Connection, account_id: int) -> None:
    if conn.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone() is None:
        raise NotFound(f"no account with id {account_id}")


def _lookup(conn: sqlite3.Connection, account_id: int, name: str) -> int | None:
    row = conn.execute(
        "SELECT id FROM mailboxes WHERE account_id = ? AND name = ?", (account_id, name)
    ).fetchone()
    return None if row is None else int(row[0])


def _mailbox_id(conn: sqlite3.Connection, account_id: int, name: str) -> int:
    found = _lookup(conn, account_id, name)
    if found is None:
        raise NotFound(f"no mailbox {name}")
    return found


def _info_by_id(conn: sqlite3.Connection, mailbox_id: int) -> MailboxInfo:
    row = conn.execute(
        f"SELECT {_MAILBOX_COLUMNS} FROM mailboxes b WHERE b.id = ?", (mailbox_id,)
    ).fetchone()
    return _info(row)


def _has_children(conn: sqlite3.Connection, account_id: int, name: str) -> bool:
    prefix = name + HIERARCHY_DELIMITER
    return (
        conn.execute(
            "SELECT 1 FROM mailboxes WHERE account_id = ? AND substr(name, 1, ?) = ? LIMIT 1",
            (account_id, len(prefix), prefix),
        ).fetchone()
        is not None
    )


def _create(
    conn: sqlite3.Connection, account_id: int, name: str, special_use: str | None
) -> MailboxInfo:
    """Create `name` and its missing parents, each with a fresh UIDVALIDITY."""
    if _lookup(conn, account_id, name) is not None:
        raise AlreadyExists(f"mailbox {name} exists")
    missing = [p for p in _ancestors(name) if _lookup(conn, account_id, p) is None]
    todo = [*((p, None) for p in missing), (name, special_use)]
    first = allocate_uidvalidity(conn, len(todo))
    now = int(time.time())
    # subscribed = 0: the column is superseded by the subscriptions table (schema migration 2).
    conn.executemany(
        "INSERT INTO mailboxes (account_id, name, uidvalidity, special_use, subscribed, created) "
        "VALUES (?, ?, ?, ?, 0, ?)",
        [(account_id, n, first + i, special, now) for i, (n, special) in enumerate(todo)],
    )
    return _info_by_id(conn, _mailbox_id(conn, account_id, name))


def _highestmodseq(conn: sqlite3.Connection, mailbox_id: int) -> int:
    row = conn.execute("SELECT highestmodseq FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
    if row is None:
        raise NotFound(f"no mailbox with id {mailbox_id}")
    return int(row[0])


def _next_uid(conn: sqlite3.Connection, mailbox_id: int) -> tuple[int, int, int]:
    """(uid, modseq, uidvalidity) for one new message: both counters move on in this op."""
    uid, modseq, uidvalidity = conn.execute(
        "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 "
        "WHERE id = ? RETURNING uidnext - 1, highestmodseq, uidvalidity",
        (mailbox_id,),
    ).fetchone()
    return int(uid), int(modseq), int(uidvalidity)


def _rows_for_uids(
    conn: sqlite3.Connection,
    select: str,
    mailbox_id: int,
    uids: list[int] | None,
    condition: str = "1",
) -> list[Any]:
    """`select` (a "SELECT ... FROM messages") for the mailbox's messages matching the SQL
    `condition`, limited to `uids` unless None, in UID order. The UIDs go in as one JSON array
    rather than one statement per UID: a STORE on 10,000 messages is one query."""
    if uids is None:
        return conn.execute(
            f"{select} WHERE mailbox_id = ? AND ({condition}) ORDER BY uid", (mailbox_id,)
        ).fetchall()
    if not uids:
        return []
    return conn.execute(
        f"{select} WHERE mailbox_id = ? AND ({condition}) "
        "AND uid IN (SELECT value FROM json_each(?)) ORDER BY uid",
        (mailbox_id, json.dumps(uids)),
    ).fetchall()
