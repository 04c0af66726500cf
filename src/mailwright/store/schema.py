"""The SQLite schema and its versioned migrations.

Invariants:
- `schema_version` holds exactly one row: the number of migrations applied. Migrations are
  append-only; a released migration is never edited, a change is a new migration.
- `migrate()` runs under BEGIN IMMEDIATE, so a server and an admin CLI opening the same data
  directory at the same moment cannot both apply a migration.
- A database newer than this code is refused (`SchemaTooNew`): running old code on a new schema
  could silently misread it.

The first schema already carries what IMAP needs (RFC 3501 / 9051 UIDVALIDITY and UIDNEXT,
RFC 7162 CONDSTORE/QRESYNC mod-sequences and the expunged-UID memory for VANISHED, RFC 6154
special-use mailboxes). Migration 2 moves subscriptions to their own table (see there).
Migration 3 adds the parsed metadata (`blob_meta`, then one JSON text per blob) and the
full-text index; migration 4 splits that JSON into columns and lets the index be written in
the background (`blob_text_pending`); textindex.py describes both.

A migration is a sequence of steps: SQL statements, or a Python function for what SQL cannot
do (migration 3 reads the blob files); all steps of all pending migrations run in the one
transaction, so a crash or an error half-way leaves the database at its old version.

- UIDs only grow: `mailboxes.uidnext` is only ever incremented and survives expunges.
- `meta('last_uidvalidity')` makes every mailbox incarnation's UIDVALIDITY unique and
  increasing (RFC 3501 2.3.1.1: a reused name with a reused UIDVALIDITY would let clients
  confuse two mailboxes).
- `blobs.refcount` counts the messages and queue rows that reference a blob. A blob whose count
  reaches 0 keeps its row until the background collector (blobgc.py) re-checks the count in its
  own transaction and removes the row, then (after that commit) the file.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from mailwright.message import FORMAT_VERSION, MessageInfo, analyze
from mailwright.store import textindex
from mailwright.store.api import StorageUnavailable, StoreError

log = logging.getLogger(__name__)

# Where the file of a blob is (BlobFiles.path), for steps that read them; None when the caller
# has no data directory (then such a step may only meet an empty blobs table).
BlobPath = Callable[[str], Path]
Step = str | Callable[[sqlite3.Connection, BlobPath | None], None]
Migration = Sequence[Step]  # run in order inside one transaction


def _backfill_blob_text(conn: sqlite3.Connection, blob_path: BlobPath | None) -> None:
    """Migration 3: analyze every blob (or take its blobs.meta if current) and index it.

    Reads each file once, inside the migration's transaction: an upgrade costs about the
    analysis time of the whole store (~0.3 ms per 4 KB message on the 2-core target, so
    ~30 s per 100,000 blobs) once, at the first start of the new version. A blob whose file is
    missing or unreadable gets neither row; `message_info` then fails for it as reading the
    message would, and SEARCH checks it the slow way (sqlite.py).

    Writes the rows of migration 3's tables as they were then (meta: `MessageInfo.to_json()`);
    migration 4 converts them.
    """
    rows = conn.execute("SELECT sha256, meta FROM blobs").fetchall()
    if rows and blob_path is None:
        raise RuntimeError("migration 3 needs the data directory to read the blob files")
    for sha, meta in rows:
        assert blob_path is not None
        try:
            raw = blob_path(sha).read_bytes()
        except OSError as exc:
            log.warning("blob %s not indexed: %s", sha, exc)
            continue
        info: MessageInfo | None = None
        if meta is not None:
            try:
                info = MessageInfo.from_json(meta)
            except (ValueError, KeyError, TypeError):
                info = None
        if info is None:
            info = analyze(raw)
            meta = info.to_json()
        header, body = textindex.index_text(raw, info)
        (meta_id,) = conn.execute(
            "INSERT INTO blob_meta (sha256, meta) VALUES (?, ?) RETURNING id", (sha, meta)
        ).fetchone()
        conn.execute(
            "INSERT INTO blob_text (rowid, header, body) VALUES (?, ?, ?)",
            (meta_id, textindex.fold(header), textindex.fold(body)),
        )
    # Superseded by blob_meta (textindex.py says why); nothing wrote it before, but be sure.
    conn.execute("UPDATE blobs SET meta = NULL WHERE meta IS NOT NULL")


def _split_blob_meta(conn: sqlite3.Connection, blob_path: BlobPath | None) -> None:
    """Migration 4: each blob_meta_3 row's JSON into the columns of the new blob_meta, same id
    (the rowid of its blob_text row). The decoded text is dropped: blob_text holds it. A row
    that is not of the current FORMAT_VERSION keeps its id with v = 0, so that readers analyze
    its file instead (as they did with such a row before). ~30 us a row."""
    insert = (
        "INSERT INTO blob_meta (id, sha256, v, size, envelope, body, bodystructure, parts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )
    for meta_id, sha, meta in conn.execute("SELECT id, sha256, meta FROM blob_meta_3"):
        try:
            info = MessageInfo.from_json(meta)
        except (ValueError, KeyError, TypeError):
            conn.execute(insert, (meta_id, sha, 0, 0, b"", b"", b"", b""))
            continue
        conn.execute(
            insert,
            (meta_id, sha, FORMAT_VERSION, info.size, info.envelope, info.body,
             info.bodystructure, textindex.pack_parts(info.parts)),
        )


MIGRATIONS: Final[Sequence[Migration]] = (
    # 1: the initial schema.
    (
        """CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE domains (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created INTEGER NOT NULL
        )""",
        # AUTOINCREMENT: ids of removed accounts and mailboxes are never handed out again, so a
        # session still holding an old id cannot reach a new account's mail.
        """CREATE TABLE accounts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            address TEXT NOT NULL UNIQUE,
            domain_id INTEGER NOT NULL REFERENCES domains(id),
            password_hash TEXT NOT NULL,
            pop3_policy TEXT NOT NULL DEFAULT 'delete' CHECK (pop3_policy IN ('delete', 'keep')),
            created INTEGER NOT NULL
        )""",
        "CREATE INDEX accounts_domain ON accounts(domain_id)",
        # source is "user@domain" or "@domain" (catch-all); target any address.
        """CREATE TABLE aliases (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            target TEXT NOT NULL,
            domain_id INTEGER NOT NULL REFERENCES domains(id),
            created INTEGER NOT NULL,
            UNIQUE (source, target)
        )""",
        "CREATE INDEX aliases_target ON aliases(target)",
        "CREATE INDEX aliases_domain ON aliases(domain_id)",
        """CREATE TABLE mailboxes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            uidvalidity INTEGER NOT NULL,
            uidnext INTEGER NOT NULL DEFAULT 1,
            highestmodseq INTEGER NOT NULL DEFAULT 1,
            special_use TEXT,
            subscribed INTEGER NOT NULL DEFAULT 1,
            created INTEGER NOT NULL,
            UNIQUE (account_id, name)
        )""",
        # meta: parsed metadata (ENVELOPE, BODYSTRUCTURE, header offsets) filled by IMAP later.
        """CREATE TABLE blobs (
            sha256 TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            refcount INTEGER NOT NULL,
            created INTEGER NOT NULL,
            meta TEXT
        ) WITHOUT ROWID""",
        # flags: space-separated system flags and keywords (RFC 3501 2.3.2), e.g. "\\Seen $Junk".
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
            uid INTEGER NOT NULL,
            blob TEXT NOT NULL REFERENCES blobs(sha256),
            internal_date INTEGER NOT NULL,
            size INTEGER NOT NULL,
            flags TEXT NOT NULL DEFAULT '',
            modseq INTEGER NOT NULL,
            pop3_deleted INTEGER NOT NULL DEFAULT 0,
            UNIQUE (mailbox_id, uid)
        )""",
        "CREATE INDEX messages_blob ON messages(blob)",
        "CREATE INDEX messages_modseq ON messages(mailbox_id, modseq)",
        # RFC 7162 3.2.10 / 3.2.5: expunged UIDs with their mod-sequence, for VANISHED (EARLIER).
        """CREATE TABLE expunged (
            mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
            uid INTEGER NOT NULL,
            modseq INTEGER NOT NULL,
            PRIMARY KEY (mailbox_id, uid)
        ) WITHOUT ROWID""",
        # One row per (message, remote recipient). Params are JSON objects (RFC 3461 DSN etc.).
        """CREATE TABLE queue (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            blob TEXT NOT NULL REFERENCES blobs(sha256),
            mail_from TEXT NOT NULL,
            mail_params TEXT NOT NULL,
            rcpt TEXT NOT NULL,
            rcpt_params TEXT NOT NULL,
            origin TEXT NOT NULL,
            created INTEGER NOT NULL,
            next_attempt INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            status TEXT NOT NULL DEFAULT 'queued'
        )""",
        "CREATE INDEX queue_due ON queue(status, next_attempt)",
        "CREATE INDEX queue_blob ON queue(blob)",
    ),
    # 2: subscriptions by name. RFC 3501 6.3.6 / RFC 9051 6.3.7: a subscription may name a
    # mailbox that does not exist, and deleting a mailbox must not unilaterally remove its
    # subscription, so a flag on the mailbox row cannot hold it. From here on this table is
    # the only truth; `mailboxes.subscribed` is no longer read.
    (
        """CREATE TABLE subscriptions (
            account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            PRIMARY KEY (account_id, name)
        ) WITHOUT ROWID""",
        "INSERT INTO subscriptions (account_id, name) "
        "SELECT account_id, name FROM mailboxes WHERE subscribed = 1",
    ),
    # 3: ENVELOPE/BODYSTRUCTURE stored at delivery (blob_meta.meta = MessageInfo.to_json()) and
    # a full-text index for SEARCH TEXT/BODY (blob_text, FTS5, its rowid = blob_meta.id), one
    # row each per blob. From here on `blobs.meta` is no longer used: large values in that
    # WITHOUT ROWID table slow every lookup of it (textindex.py has the numbers).
    (
        # id is the rowid of the blob's blob_text row. Plain rowid table: its rows are large.
        """CREATE TABLE blob_meta (
            id INTEGER PRIMARY KEY,
            sha256 TEXT NOT NULL UNIQUE REFERENCES blobs(sha256),
            meta TEXT NOT NULL
        )""",
        "CREATE VIRTUAL TABLE blob_text USING fts5("
        "header, body, tokenize = 'trigram case_sensitive 1')",
        _backfill_blob_text,
    ),
    # 4: blob_meta's fields in columns of their own instead of one JSON text, without the
    # decoded text (blob_text holds it): a cold FETCH of 10,000 ENVELOPEs no longer decodes
    # JSON. And the full-text index written in the background: blob_text_pending lists the
    # blob_meta ids whose blob_text row is not written yet (textindex.py says why and how);
    # the trigger drops a pending row with its blob, whoever deletes the blob_meta row.
    # Existing rows are all indexed already.
    (
        "ALTER TABLE blob_meta RENAME TO blob_meta_3",
        # v: the FORMAT_VERSION of the analysis; parts: textindex.pack_parts.
        """CREATE TABLE blob_meta (
            id INTEGER PRIMARY KEY,
            sha256 TEXT NOT NULL UNIQUE REFERENCES blobs(sha256),
            v INTEGER NOT NULL,
            size INTEGER NOT NULL,
            envelope BLOB NOT NULL,
            body BLOB NOT NULL,
            bodystructure BLOB NOT NULL,
            parts BLOB NOT NULL
        )""",
        _split_blob_meta,
        "DROP TABLE blob_meta_3",
        "CREATE TABLE blob_text_pending (id INTEGER PRIMARY KEY)",
        """CREATE TRIGGER blob_meta_gone AFTER DELETE ON blob_meta BEGIN
            DELETE FROM blob_text_pending WHERE id = old.id;
        END""",
        # FTS5 merges in the indexer's own bounded ops (textindex.py MERGE_PAGES), not inside
        # whichever commit fills a level; 64 segments a level before it must merge at once.
        "INSERT INTO blob_text (blob_text, rank) VALUES ('automerge', 0)",
        "INSERT INTO blob_text (blob_text, rank) VALUES ('crisismerge', 64)",
    ),
    # 5: outbound delivery (issue 5). delay_warned: the delay DSN of the row was sent (RFC
    # 3464: once). The runner reads due rows by next_attempt alone (`status` is unused).
    (
        "ALTER TABLE queue ADD COLUMN delay_warned INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX queue_next ON queue(next_attempt, id)",
    ),
)

SCHEMA_VERSION: Final = len(MIGRATIONS)


class SchemaTooNew(StoreError):
    """The database was written by a newer mailwright; refuse rather than misread it."""


def current_version(conn: sqlite3.Connection) -> int:
    """0 for an empty database."""
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    version = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(version[0]) if version else 0


def migrate(
    conn: sqlite3.Connection,
    migrations: Sequence[Migration] = MIGRATIONS,
    blob_path: BlobPath | None = None,
) -> int:
    """Bring the database to len(migrations) in one transaction; returns the version.

    `conn` must be in autocommit mode (isolation_level=None) so that we own the transaction.
    `blob_path` locates blob files for the steps that read them (the store passes its own).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        version = current_version(conn)
        if version > len(migrations):
            raise SchemaTooNew(
                f"database schema version {version} is newer than this mailwright "
                f"({len(migrations)}); upgrade mailwright"
            )
        for steps in migrations[version:]:
            for step in steps:
                if isinstance(step, str):
                    conn.execute(step)
                else:
                    step(conn, blob_path)
        if version < len(migrations):
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (len(migrations),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(migrations)


def allocate_uidvalidity(conn: sqlite3.Connection, count: int) -> int:
    """The first of `count` fresh UIDVALIDITY values: time-based (like Dovecot), but strictly
    above every value handed out before, so a mailbox recreated in the same second (or after
    the clock stepped back) never gets an old incarnation's value. 32-bit (RFC 3501 9)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'last_uidvalidity'").fetchone()
    last = int(row[0]) if row else 0
    first = max(int(time.time()), last + 1)
    if first + count - 1 >= 2**32:
        raise StorageUnavailable("UIDVALIDITY space exhausted")
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('last_uidvalidity', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (str(first + count - 1),),
    )
    return first
