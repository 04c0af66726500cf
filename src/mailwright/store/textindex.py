"""Parsed metadata and the full-text index of blobs: `blobs.meta` and the FTS5 table `blob_text`.

What is kept, per blob (not per message: a blob is shared by every copy of the same bytes):
- a row of `blob_meta` (id, sha256, meta): `meta` is `MessageInfo.to_json()` (ENVELOPE, BODY,
  BODYSTRUCTURE as ready-to-send IMAP bytes, part offsets, decoded text), computed once when
  the blob is new to the store. Not in `blobs.meta`: blobs is a WITHOUT ROWID table, whose
  b-tree keys are whole rows, so 5 KB of JSON there made every blobs lookup by key (each
  delivery's, each expunge's, each join) 4 times slower, and a 10,000-message join 10 times
  (measured: 290 ms against 28 ms); that column stays NULL (schema.py, migration 3).
- a row of `blob_text` (FTS5, trigram tokenizer) whose rowid is `blob_meta.id`, with two
  columns: `header`, every top-level header field as "name: decoded value" lines, and `body`,
  the decoded text parts (`MessageInfo.text` without the header values `search_text` puts
  first). SEARCH BODY looks in `body`, SEARCH TEXT in both (RFC 9051 6.4.4), as the pure
  evaluator's `default_text_match` (imap/search_eval.py) does.

Invariants:
- The analysis runs outside the SQL transaction and off the event loop: in the writer's prepare
  step or the store's pool (sqlite.py). The blob_meta row, the FTS row and the blob row are
  written in one transaction; both go in the transaction that drops the blob's last reference.
  So a blob that a message references has both rows, except a blob stored before schema
  migration 3 whose file could not be read then (SEARCH checks such messages the slow way).
- Case-insensitivity is Python's `str.casefold()` on both sides (the evaluator's `fold`): the
  index holds casefolded text and the needle is casefolded before the query, so the tokenizer
  runs with case_sensitive 1 and the FTS answer equals `fold(needle) in fold(text)` exactly,
  including full case folding ("STRASSE" finds "Straße", which SQLite's own simple folding would
  not). casefold works per character, so a folded substring is a substring of the folded text.
- The trigram tokenizer finds any substring of 3 or more characters through the index. Shorter
  needles cannot use it; they are checked with instr() on the mailbox's own rows only (a scan of
  its messages, not of the whole index).
- One difference from the evaluator remains, for needles with a line break (only a literal can
  carry one): the evaluator also matches across the boundary between the last header value and
  the body text of `MessageInfo.text`; the index keeps header and body in separate columns.

Costs (2-core target, 4 KB messages): the analysis ~0.3 ms of CPU per new blob (in the prepare
step, holding the GIL), the index row ~0.3-0.5 ms in the writer (SQLite's C code, GIL released)
and ~14 KB more written per message (meta ~4.5 KB, index ~5 KB, FTS content ~4 KB). A 1 MB text
part costs ~40 ms to index, in its batch's transaction. The index is global (all accounts): a
needle common everywhere makes the IN subquery return every blob that has it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from mailwright.message import MessageInfo, analyze
from mailwright.message.headers import iter_fields
from mailwright.message.limits import MAX_TEXT_HEADER
from mailwright.message.text import SEARCH_HEADERS, decode_header_value
from mailwright.store.api import TextField

# The schema of the index (schema.py migration 3 creates it with these words).
CREATE_TABLES: Final = (
    # id is the rowid of the blob's blob_text row. Plain rowid table: its rows are large.
    """CREATE TABLE blob_meta (
        id INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL UNIQUE REFERENCES blobs(sha256),
        meta TEXT NOT NULL
    )""",
    "CREATE VIRTUAL TABLE blob_text USING fts5("
    "header, body, tokenize = 'trigram case_sensitive 1')",
)
# Header text indexed per message. Search finds header words in the first 256 KiB of header
# values; a mail loop's thousands of Received: fields would otherwise grow the index for nothing.
MAX_INDEX_HEADER: Final = 256 * 1024
# The trigram tokenizer's shortest indexed substring.
TRIGRAM: Final = 3
# The in-memory cache of parsed MessageInfo: FETCH ENVELOPE/BODYSTRUCTURE of a whole mailbox
# should not decode 10,000 JSON rows every time. Bounded by entries and by an estimate of the
# memory they hold (`_cost`): a 4 KB message costs ~6 KB, so a 10,000-message mailbox fits
# several times; a few 1 MiB texts do not crowd out everything else for long.
INFO_CACHE_ENTRIES: Final = 20_000
INFO_CACHE_BYTES: Final = 128 * 1024 * 1024


def fold(text: str) -> str:
    """The case-insensitive form of both the indexed text and the needle (see module doc)."""
    return clean(text.casefold())


def clean(text: str) -> str:
    """Text SQLite can store and FTS5 can tokenize: no NUL, no lone surrogates (as
    message/text.py does for `MessageInfo.text`)."""
    text = text.replace("\x00", " ")
    if text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


@dataclass(frozen=True, slots=True)
class Analysis:
    """What a new blob's row and index row hold; computed off the transaction."""

    info: MessageInfo
    meta: str  # info.to_json()
    header: str  # folded index text
    body: str


def analyze_blob(raw: bytes) -> Analysis:
    """Parse `raw` once and build its meta and index text. Pure CPU; never raises on bytes."""
    info = analyze(raw)
    header, body = index_text(raw, info)
    return Analysis(info, info.to_json(), fold(header), fold(body))


def _decoded(value: bytes) -> str:
    # decode_header_value without the email.header machinery when there is no encoded-word
    # (RFC 2047 words start with "=?"): same result, a tenth of the cost per field.
    if b"=?" in value:
        return decode_header_value(value)
    return value[:MAX_TEXT_HEADER].decode("utf-8", "replace")


def index_text(raw: bytes, info: MessageInfo) -> tuple[str, str]:
    """(header text, body text) of a stored message, not yet folded.

    Header text: each top-level field as "name: value", RFC 2047 decoded, one per line (what
    SEARCH TEXT matches besides the body, as `default_text_match` does). Body text:
    `info.text` without the decoded Subject/From/To/Cc values that `search_text` writes first,
    one per line; they are rebuilt the same way and cut off. If the text does not start with
    them (it was cut at MAX_TEXT), the whole text counts as body: a false match beats a miss.
    """
    top = info.parts.get("")
    end = top.message_body_start if top is not None else None
    if end is None:
        end = len(raw)
    lines: list[str] = []
    first: dict[bytes, str] = {}
    budget = MAX_INDEX_HEADER
    for name, value in iter_fields(raw, 0, end):
        decoded = _decoded(value)
        if name in SEARCH_HEADERS and name not in first:
            first[name] = decoded
        if budget > 0:
            line = f"{name.decode('latin-1')}: {decoded}"[:budget]
            lines.append(line)
            budget -= len(line) + 1
    prefix = clean("".join(first[n] + "\n" for n in SEARCH_HEADERS if n in first))
    text = info.text
    if prefix and text.startswith(prefix):
        body = text[len(prefix) :]
    elif prefix and text == prefix[:-1]:
        body = ""  # headers only, no text part: no newline after the last value
    else:
        body = text
    return "\n".join(lines), body


# ----- the rows (inside a writer op) -------------------------------------------------------------
def insert_rows(conn: sqlite3.Connection, sha: str, analysis: Analysis) -> None:
    """Add the blob_meta and index rows of a blob that has none."""
    (meta_id,) = conn.execute(
        "INSERT INTO blob_meta (sha256, meta) VALUES (?, ?) RETURNING id", (sha, analysis.meta)
    ).fetchone()
    conn.execute(
        "INSERT INTO blob_text (rowid, header, body) VALUES (?, ?, ?)",
        (meta_id, analysis.header, analysis.body),
    )


def delete_rows(conn: sqlite3.Connection, sha: str) -> None:
    """Remove a blob's blob_meta and index rows, if it has them."""
    row = conn.execute("DELETE FROM blob_meta WHERE sha256 = ? RETURNING id", (sha,)).fetchone()
    if row is not None:
        conn.execute("DELETE FROM blob_text WHERE rowid = ?", (row[0],))


def match_query(needle: str, field: TextField) -> str:
    """An FTS5 query for a folded needle as one string (FTS5 "string": double quotes, with
    a quote doubled; nothing inside is an operator, so "*", "-", ":" or "AND" are literal)."""
    phrase = '"' + needle.replace('"', '""') + '"'
    return phrase if field == "TEXT" else "body : " + phrase


def search(
    conn: sqlite3.Connection, mailbox_id: int, field: TextField, needle: str
) -> tuple[set[int], list[tuple[int, str]]]:
    """UIDs of the mailbox's indexed messages that match, and (uid, blob) of its messages
    whose blob has no index row (the caller checks those the slow way).

    Each query scans the mailbox's messages by (mailbox_id) and finds each blob's id in
    blob_meta's sha256 index alone (a covering index: it holds the rowid)."""
    if "\x00" in needle:
        return set(), []  # no stored text holds a NUL (`clean`), so nothing can match
    want = fold(needle)
    if not want:
        rows = conn.execute(
            "SELECT m.uid, m.blob, 0 FROM messages m WHERE m.mailbox_id = ?", (mailbox_id,)
        ).fetchall()
    elif len(want) >= TRIGRAM:
        # The IN subquery runs once (an ephemeral index of the matching rowids, over all
        # accounts: the index is global), then each of the mailbox's messages is tested.
        rows = conn.execute(
            "SELECT m.uid, m.blob, x.id IS NULL FROM messages m "
            "LEFT JOIN blob_meta x ON x.sha256 = m.blob WHERE m.mailbox_id = ? AND "
            "(x.id IS NULL OR x.id IN (SELECT rowid FROM blob_text WHERE blob_text MATCH ?))",
            (mailbox_id, match_query(want, field)),
        ).fetchall()
    else:
        # Under 3 characters the trigram index cannot help (FTS5 would scan every row of
        # every account); instr() over this mailbox's rows only, looked up by rowid. instr,
        # not LIKE: exact on the folded text, no wildcard to escape, no ASCII-only folding.
        condition = "instr(t.body, ?) > 0"
        params: tuple[object, ...] = (mailbox_id, want)
        if field == "TEXT":
            condition = "(instr(t.body, ?) > 0 OR instr(t.header, ?) > 0)"
            params = (mailbox_id, want, want)
        rows = conn.execute(
            "SELECT m.uid, m.blob, x.id IS NULL FROM messages m "
            "LEFT JOIN blob_meta x ON x.sha256 = m.blob LEFT JOIN blob_text t ON t.rowid = x.id "
            f"WHERE m.mailbox_id = ? AND (x.id IS NULL OR {condition})",
            params,
        ).fetchall()
    found: set[int] = set()
    unindexed: list[tuple[int, str]] = []
    for uid, blob, missing in rows:
        if missing:
            unindexed.append((int(uid), blob))
        else:
            found.add(int(uid))
    return found, unindexed


def matches(raw: bytes, info: MessageInfo, field: TextField, needle: str) -> bool:
    """The same test as the index, on one message's bytes (for blobs without an index row)."""
    if "\x00" in needle:
        return False
    header, body = index_text(raw, info)
    want = fold(needle)
    return want in fold(body) or (field == "TEXT" and want in fold(header))


# ----- the MessageInfo cache ---------------------------------------------------------------------
def _cost(info: MessageInfo) -> int:
    """Rough bytes held by one cached MessageInfo (strings, bytes, the parts map)."""
    return (
        len(info.text)
        + len(info.envelope)
        + len(info.body)
        + len(info.bodystructure)
        + 100 * len(info.parts)
        + 300
    )


class InfoCache:
    """A thread-safe LRU of MessageInfo by blob SHA-256, bounded in entries and bytes.

    Blobs are immutable, so an entry never goes stale; a blob that is deleted and later stored
    again has the same bytes and so the same facts.
    """

    def __init__(
        self, max_entries: int = INFO_CACHE_ENTRIES, max_bytes: int = INFO_CACHE_BYTES
    ) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[MessageInfo, int]] = OrderedDict()
        self._bytes = 0
        self.max_entries = max_entries
        self.max_bytes = max_bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, sha: str) -> MessageInfo | None:
        with self._lock:
            entry = self._entries.get(sha)
            if entry is None:
                return None
            self._entries.move_to_end(sha)
            return entry[0]

    def get_many(self, shas: Iterable[str]) -> tuple[dict[str, MessageInfo], list[str]]:
        """(hits, misses), one lock round for the lot."""
        hits: dict[str, MessageInfo] = {}
        misses: list[str] = []
        with self._lock:
            entries = self._entries
            for sha in shas:
                entry = entries.get(sha)
                if entry is None:
                    misses.append(sha)
                else:
                    entries.move_to_end(sha)
                    hits[sha] = entry[0]
        return hits, misses

    def put_many(self, items: Iterable[tuple[str, MessageInfo]]) -> None:
        with self._lock:
            entries = self._entries
            for sha, info in items:
                cost = _cost(info)
                old = entries.pop(sha, None)
                if old is not None:
                    self._bytes -= old[1]
                if cost > self.max_bytes:
                    continue
                entries[sha] = (info, cost)
                self._bytes += cost
            while entries and (len(entries) > self.max_entries or self._bytes > self.max_bytes):
                _, (_, cost) = entries.popitem(last=False)
                self._bytes -= cost

    def put(self, sha: str, info: MessageInfo) -> None:
        self.put_many([(sha, info)])
