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
- Set-based: a store, expunge, copy or move costs a fixed number of statements whatever the
  number of messages (the UIDs go in as one JSON array), never one statement per message.
- Many rows come back as one JSON value (`_as_json`), not a row each: every row fetched (and
  every step of an executemany) is a GIL hand-off, and while another thread computes (the
  event loop, the text indexer) each waits up to the 5 ms switch interval. Measured with a
  busy thread: `mailbox_messages` of 10,000 messages 37-57 s row by row, 75-125 ms as one
  value; idle, both ~40 ms.
- Blob references: a message row holds one reference. Copy adds one per copy; expunge, delete
  and POP3 delete release theirs (`_release_blobs`: one grouped UPDATE; blobs left without any
  are removed after the commit, blobgc.py); move's copies take over the references its expunge
  gives up, so it changes none.
- Commit first, then publish: events go to `changes` from `Transaction.after_commit` hooks, which
  run only when the op's savepoint and the batch's COMMIT succeeded (changes.py). `Appended`
  carries the new messages' records, so a session in IDLE reads nothing to announce them.
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
# The messages columns a MessageRecord is made of (`_record`).
_RECORD_COLUMNS = "uid, blob, size, internal_date, flags, modseq"
# Messages flagged \Deleted: what EXPUNGE removes (flags are space-separated, `_flags_text`).
_DELETED = "instr(' ' || flags || ' ', ' \\Deleted ') > 0"
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
            (refs,) = conn.execute(
                "SELECT json_group_object(blob, n) FROM "
                "(SELECT blob, count(*) AS n FROM messages WHERE mailbox_id = ? GROUP BY blob)",
                (mailbox_id,),
            ).fetchone()
            conn.execute("DELETE FROM mailboxes WHERE id = ?", (mailbox_id,))  # cascades
            self._release_blobs(tx, Counter(json.loads(refs)))
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
        records = [_record(row) for row in _select_uids(conn, _RECORD_COLUMNS, inbox_id, None)]
        conn.execute(
            "UPDATE messages SET mailbox_id = ?, pop3_deleted = 0 WHERE mailbox_id = ?",
            (created.id, inbox_id),
        )
        conn.execute(
            "UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?",
            (uidnext, highest, created.id),
        )
        events: list[Change] = []
        if records:
            modseq = int(highest) + 1
            uids = [m.uid for m in records]
            _remember_expunged(conn, inbox_id, uids, modseq)
            conn.execute("UPDATE mailboxes SET highestmodseq = ? WHERE id = ?", (modseq, inbox_id))
            events = [Expunged(inbox_id, tuple(uids)), Appended(created.id, tuple(records))]
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
        # One JSON value, not a row each (see the module docstring): a SELECT of 10,000
        # messages took 37-57 s when another thread kept the GIL busy, 75-125 ms so.
        (found,) = self._one(_as_json(_RECORD_COLUMNS, "mailbox_id = ?"), (mailbox_id,))
        return [_record(row) for row in _sorted_rows(found)]

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
            record = MessageRecord(
                uid, message.sha256, message.size, date, _flags_of(flag_text), modseq
            )
            _publish_after_commit(tx, self.changes, [Appended(mailbox_id, (record,))])
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
            for uid, text, modseq in _select_uids(conn, "uid, flags, modseq", mailbox_id, wanted):
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
                # One statement (executemany steps once per row: a GIL hand-off each).
                conn.execute(
                    "WITH c (uid, flags, modseq) AS MATERIALIZED "
                    "(SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)) "
                    "UPDATE messages SET flags = c.flags, modseq = c.modseq FROM c "
                    "WHERE messages.mailbox_id = ? AND messages.uid = c.uid",
                    (
                        json.dumps([[c.uid, _flags_text(c.flags), c.modseq] for c in changes]),
                        mailbox_id,
                    ),
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
            return self._expunge_messages(tx, mailbox_id, wanted, _DELETED)

        return await self._awrite(op)

    def _expunge_messages(
        self,
        tx: Transaction,
        mailbox_id: int,
        uids: list[int] | None,
        condition: str = "1",
        *,
        release: bool = True,
    ) -> list[int]:
        """Expunge the mailbox's messages that match the SQL `condition` (only those in `uids`
        unless None): one DELETE, one INSERT remembering them in `expunged` with one new MODSEQ,
        and (unless `release` is False: MOVE's copies take the references over) one grouped
        refcount UPDATE, `_release_blobs`. Publishes Expunged after the commit. Returns the
        UIDs, ascending. Raises NotFound (no such mailbox). Also POP3's delete (sqlite.py)."""
        conn = tx.conn
        modseq = _highestmodseq(conn, mailbox_id) + 1
        if uids is not None and not uids:
            return []
        where, params = _uid_filter(mailbox_id, uids, condition)
        found, counts = conn.execute(
            f"SELECT (SELECT json_group_array(uid) FROM messages WHERE {where}), "
            "(SELECT json_group_object(blob, n) FROM "
            f"(SELECT blob, count(*) AS n FROM messages WHERE {where} GROUP BY blob))",
            params + params,
        ).fetchone()
        expunged: list[int] = sorted(json.loads(found))
        if not expunged:
            return []
        conn.execute(f"DELETE FROM messages WHERE {where}", params)
        _remember_expunged(conn, mailbox_id, expunged, modseq)
        conn.execute("UPDATE mailboxes SET highestmodseq = ? WHERE id = ?", (modseq, mailbox_id))
        if release:
            self._release_blobs(tx, Counter(json.loads(counts)))
        _publish_after_commit(tx, self.changes, [Expunged(mailbox_id, tuple(expunged))])
        return expunged

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
            rows = _select_uids(conn, "uid, blob, internal_date, size, flags", src, wanted)
            if not rows:
                return []
            # The copies take UIDs and MODSEQs first..first+n-1 of the destination, in source
            # UID order, as n single appends would: one UPDATE, one INSERT ... SELECT.
            n = len(rows)
            first_uid, first_modseq = conn.execute(
                "UPDATE mailboxes SET uidnext = uidnext + ?, highestmodseq = highestmodseq + ? "
                "WHERE id = ? RETURNING uidnext - ?, highestmodseq - ? + 1",
                (n, n, dst, n, n),
            ).fetchone()
            source_uids = [int(row[0]) for row in rows]
            conn.execute(
                "INSERT INTO messages (mailbox_id, uid, blob, internal_date, size, flags, modseq) "
                "SELECT ?, ? + o.key, m.blob, m.internal_date, m.size, m.flags, ? + o.key "
                "FROM json_each(?) AS o JOIN messages m ON m.mailbox_id = ? AND m.uid = o.value",
                (dst, first_uid, first_modseq, json.dumps(source_uids), src),
            )
            records = tuple(
                MessageRecord(first_uid + i, blob, size, date, _flags_of(flags), first_modseq + i)
                for i, (_, blob, date, size, flags) in enumerate(rows)
            )
            if move:  # the copies' new references and the source's released ones cancel out
                self._expunge_messages(tx, src, source_uids, release=False)
            else:
                refs = Counter(m.blob for m in records)
                conn.execute(
                    "UPDATE blobs SET refcount = blobs.refcount + j.value "
                    "FROM json_each(?) AS j WHERE blobs.sha256 = j.key",
                    (json.dumps(refs),),
                )
            _publish_after_commit(tx, self.changes, [Appended(dst, records)])
            return [(uid, m.uid) for uid, m in zip(source_uids, records, strict=True)]

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


def _uid_filter(
    mailbox_id: int, uids: list[int] | None, condition: str = "1"
) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause (and its parameters) for the mailbox's messages matching the SQL
    `condition`, limited to `uids` unless None. The UIDs go in as one JSON array rather than
    one statement per UID: a STORE or EXPUNGE on 10,000 messages is one statement."""
    if uids is None:
        return f"mailbox_id = ? AND ({condition})", (mailbox_id,)
    return (
        f"mailbox_id = ? AND ({condition}) AND uid IN (SELECT value FROM json_each(?))",
        (mailbox_id, json.dumps(uids)),
    )


def _as_json(columns: str, where: str) -> str:
    """A query for `columns` of the messages matching `where` as one JSON array of arrays."""
    return f"SELECT json_group_array(json_array({columns})) FROM messages WHERE {where}"


def _sorted_rows(found: str) -> list[Any]:
    """The rows of an `_as_json` result, in the order of their first column (the UID)."""
    rows: list[Any] = json.loads(found)
    rows.sort()
    return rows


def _select_uids(
    conn: sqlite3.Connection,
    columns: str,
    mailbox_id: int,
    uids: list[int] | None,
    condition: str = "1",
) -> list[Any]:
    """`columns` of `_uid_filter`'s messages, in UID order, fetched as one value (module
    docstring); the first column must be the UID."""
    if uids is not None and not uids:
        return []
    where, params = _uid_filter(mailbox_id, uids, condition)
    (found,) = conn.execute(_as_json(columns, where), params).fetchone()
    return _sorted_rows(found)


def _remember_expunged(
    conn: sqlite3.Connection, mailbox_id: int, uids: list[int], modseq: int
) -> None:
    """Record expunged UIDs with their MODSEQ for VANISHED (RFC 7162 3.2.10), one statement."""
    conn.execute(
        "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) "
        "SELECT ?, value, ? FROM json_each(?)",
        (mailbox_id, modseq, json.dumps(uids)),
    )


def _record(row: Sequence[Any]) -> MessageRecord:
    """A MessageRecord from the `_RECORD_COLUMNS` of a messages row."""
    uid, blob, size, date, flags, modseq = row
    return MessageRecord(
        uid=int(uid),
        blob=blob,
        size=int(size),
        internal_date=int(date),
        flags=_flags_of(flags),
        modseq=int(modseq),
    )
