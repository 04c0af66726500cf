"""The full-text index written in the background (indexer.Indexer), SEARCH while blobs wait
for it, blob_meta's columns (packed part offsets, text read from the file) and migration 4."""

from __future__ import annotations

import functools
import json
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import INTL, PLAIN, Deliver, execute, same, sha256_hex

from mailwright.message import FORMAT_VERSION, MessageInfo, analyze
from mailwright.store import Account, SqliteStore, TextField, indexer, textindex
from mailwright.store.schema import MIGRATIONS, migrate

NESTED = (
    b"Subject: nested\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"outer words\r\n"
    b"--b1\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"Subject: inner\r\n"
    b"\r\n"
    b"inner words\r\n"
    b"--b1--\r\n"
)


def _count(data_dir: Path, table: str) -> int:
    conn = sqlite3.connect(data_dir / "mailwright.db")
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def _no_pending_within(data_dir: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _count(data_dir, "blob_text_pending"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _inbox(store: SqliteStore, account: Account) -> int:
    box = store.mailbox(account.id, "INBOX")
    assert box is not None
    return box.id


@pytest.fixture
def gate(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """While clear, indexer rounds do nothing, as if the indexer had not come to them yet (or
    the process had crashed): pending rows stay pending. Set, they run again."""
    event = threading.Event()
    real = indexer.Indexer._round

    def gated(self: indexer.Indexer, conn: sqlite3.Connection) -> bool:
        return real(self, conn) if event.is_set() else False

    monkeypatch.setattr(indexer.Indexer, "_round", gated)
    yield event
    event.set()


# ----- the index in the background -------------------------------------------------------------
@pytest.mark.asyncio
async def test_delivery_writes_meta_and_a_pending_row_not_the_index_row(
    store: SqliteStore, data_dir: Path, alice: Account, deliver: Deliver, gate: threading.Event
) -> None:
    await deliver(PLAIN, [alice.id])
    assert (_count(data_dir, "blob_meta"), _count(data_dir, "blob_text_pending")) == (1, 1)
    assert _count(data_dir, "blob_text") == 0
    assert same(store.message_info(sha256_hex(PLAIN)), analyze(PLAIN))  # FETCH needs no index
    gate.set()
    assert store.wait_for_index()
    assert (_count(data_dir, "blob_text"), _count(data_dir, "blob_text_pending")) == (1, 0)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("field", "needle", "uids"),
    [
        ("TEXT", "quarterly", {1}),
        ("BODY", "quarterly", set()),
        ("BODY", "NUMBERS ARE", {1}),
        ("TEXT", "x-custom: zebra", {1}),
        ("TEXT", "ZE", {1}),  # short: the instr() query
        ("BODY", "STRASSE", {2}),
        ("TEXT", "café crème", {2}),
        ("TEXT", "", {1, 2}),
        ("BODY", "absent", set()),
    ],
)
async def test_search_is_exact_while_blobs_wait_for_the_index(
    store: SqliteStore,
    alice: Account,
    deliver: Deliver,
    gate: threading.Event,
    field: TextField,
    needle: str,
    uids: set[int],
) -> None:
    await deliver(PLAIN, [alice.id])
    await deliver(INTL, [alice.id])
    inbox = _inbox(store, alice)
    assert store.search_text(inbox, field, needle) == uids  # pending: the indexer's memory
    other = SqliteStore(store.data_dir)  # another process: no memory, the files
    try:
        assert other.search_text(inbox, field, needle) == uids
    finally:
        other.close()
    gate.set()
    assert store.wait_for_index()
    assert store.search_text(inbox, field, needle) == uids  # the index


@pytest.mark.asyncio
async def test_pending_and_indexed_answers_agree(
    store: SqliteStore, alice: Account, deliver: Deliver, gate: threading.Event
) -> None:
    messages = [PLAIN, INTL, NESTED]
    for data in messages:
        await deliver(data, [alice.id])
    inbox = _inbox(store, alice)
    rng = random.Random(7)
    needles: list[tuple[TextField, str]] = []
    for raw in messages:
        header, body = textindex.index_text(raw, analyze(raw))
        for _ in range(40):
            source = rng.choice([header, body, header.upper(), body.swapcase()])
            start = rng.randrange(max(1, len(source)))
            needle = source[start : start + rng.choice([1, 2, 3, 5, 12])]
            needles.extend((field, needle) for field in ("TEXT", "BODY"))
    before = [store.search_text(inbox, f, n) for f, n in needles]
    gate.set()
    assert store.wait_for_index()
    assert [store.search_text(inbox, f, n) for f, n in needles] == before


@pytest.mark.asyncio
async def test_start_indexes_what_was_left_pending(
    data_dir: Path,
    store: SqliteStore,
    alice: Account,
    deliver: Deliver,
    gate: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for data in (PLAIN, INTL, NESTED):
        await deliver(data, [alice.id])
    store.close()  # the gate holds the drain back: as after a crash, the rows stay pending
    assert _count(data_dir, "blob_text_pending") == 3
    gate.set()
    monkeypatch.setattr(indexer, "BACKLOG_DELAY", 0.05)
    again = SqliteStore(data_dir)
    try:
        assert _no_pending_within(data_dir, 20)  # by itself: no wait_for_index() kick
        conn = sqlite3.connect(data_dir / "mailwright.db")
        try:
            rows = conn.execute(
                "SELECT x.sha256, t.header, t.body FROM blob_meta x "
                "JOIN blob_text t ON t.rowid = x.id"
            ).fetchall()
        finally:
            conn.close()
        expected = {sha256_hex(d): textindex.index_texts(d) for d in (PLAIN, INTL, NESTED)}
        assert {sha: (header, body) for sha, header, body in rows} == expected
        assert again.search_text(_inbox(again, alice), "BODY", "inner words") == {3}
    finally:
        again.close()


@pytest.mark.asyncio
async def test_close_finishes_what_this_process_added(
    data_dir: Path, store: SqliteStore, alice: Account, deliver: Deliver
) -> None:
    for n in range(30):
        await deliver(PLAIN + b"message %d\r\n" % n, [alice.id])
    store.close()
    assert (_count(data_dir, "blob_text"), _count(data_dir, "blob_text_pending")) == (30, 0)


@pytest.mark.asyncio
async def test_ops_are_cut_small_and_all_rows_get_written(
    store: SqliteStore,
    data_dir: Path,
    alice: Account,
    deliver: Deliver,
    gate: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(indexer, "INDEX_OP_TEXT", 1)  # one row per op
    for n in range(12):
        await deliver(PLAIN + b"message %d\r\n" % n, [alice.id])
    ops_before = store.writer.ops
    gate.set()
    assert store.wait_for_index()
    assert _count(data_dir, "blob_text") == 12
    assert store.writer.ops - ops_before >= 12  # plus a merge op after each
    assert store.search_text(_inbox(store, alice), "TEXT", "MESSAGE 11") == {12}


@pytest.mark.asyncio
async def test_released_blob_loses_its_pending_row(
    store: SqliteStore, data_dir: Path, alice: Account, deliver: Deliver, gate: threading.Event
) -> None:
    await deliver(PLAIN, [alice.id])
    execute(data_dir, "DELETE FROM blob_meta")  # what removing the blob does (trigger)
    assert _count(data_dir, "blob_text_pending") == 0
    gate.set()
    assert store.wait_for_index()
    assert _count(data_dir, "blob_text") == 0


@pytest.mark.asyncio
async def test_op_writes_only_rows_still_pending_for_the_same_blob(
    store: SqliteStore, data_dir: Path, alice: Account, deliver: Deliver, gate: threading.Event
) -> None:
    """The race guard: between the indexer's read and its op, a blob may be released and its
    id given to another blob, or another process may have indexed it."""
    await deliver(PLAIN, [alice.id])
    await deliver(INTL, [alice.id])
    conn = sqlite3.connect(data_dir / "mailwright.db")
    try:
        ids = dict(conn.execute("SELECT sha256, id FROM blob_meta").fetchall())
    finally:
        conn.close()
    plain_id, intl_id = ids[sha256_hex(PLAIN)], ids[sha256_hex(INTL)]
    work: list[tuple[int, str | None, str, str]] = [
        (plain_id, sha256_hex(INTL), "wrong", "blob"),  # the id now belongs to another blob
        (intl_id, sha256_hex(INTL), "right", "blob"),
        (999, None, "", ""),  # not pending at all
    ]
    write = store._indexer._write
    done = store.writer.run(functools.partial(write, work=work))
    assert done == [sha256_hex(INTL)]
    again = store.writer.run(functools.partial(write, work=work[1:2]))
    assert again == [sha256_hex(INTL)]  # no longer pending: done, nothing written twice
    conn = sqlite3.connect(data_dir / "mailwright.db")
    try:
        assert conn.execute("SELECT rowid, header FROM blob_text").fetchall() == [
            (intl_id, "right")
        ]
        assert conn.execute("SELECT id FROM blob_text_pending").fetchall() == [(plain_id,)]
    finally:
        conn.close()


# ----- blob_meta's columns --------------------------------------------------------------------
@pytest.mark.asyncio
async def test_stored_message_info_reads_its_text_from_the_file(
    store: SqliteStore, data_dir: Path, alice: Account, deliver: Deliver
) -> None:
    await deliver(NESTED, [alice.id])
    store.close()
    fresh = SqliteStore(data_dir)  # nothing cached
    try:
        info = fresh.message_infos([sha256_hex(NESTED)])[sha256_hex(NESTED)]
        assert isinstance(info.parts, textindex.PackedParts)
        assert info == analyze(NESTED)
        assert info.parts["2"].message_body_start is not None
        assert info.text == analyze(NESTED).text
        fresh.blob_path(sha256_hex(NESTED)).unlink()
        assert info.text == ""  # gone: nothing to search
        assert info.bodystructure == analyze(NESTED).bodystructure
    finally:
        fresh.close()


def test_packed_parts_round_trip() -> None:
    parts = analyze(NESTED).parts
    packed = textindex.pack_parts(parts)
    assert textindex.unpack_parts(packed) == parts
    assert dict(textindex.PackedParts(packed)) == parts
    assert len(packed) == len(",".join(parts)) + 1 + 32 * len(parts)
    for broken in (packed[:-1], packed.replace(b"\x00", b"-", 1), b",1\x00" + packed[-32:]):
        with pytest.raises(ValueError, match="packed"):
            textindex.unpack_parts(broken)


def test_deferred_text_is_computed_at_each_read() -> None:
    calls: list[int] = []

    def text() -> str:
        calls.append(1)
        return "decoded"

    eager = analyze(PLAIN)
    info = MessageInfo.deferred(
        eager.size, eager.envelope, eager.body, eager.bodystructure, eager.parts, text
    )
    assert (info.text, info.text) == ("decoded", "decoded")
    assert len(calls) == 2  # not held
    assert analyze(PLAIN, defer_text=True) == eager
    with pytest.raises(AttributeError, match="nothing"):
        info.nothing  # type: ignore[attr-defined]  # noqa: B018


# ----- migration 4 ------------------------------------------------------------------------------
def test_migration_4_splits_the_json_and_keeps_the_index(data_dir: Path) -> None:
    blobs = {sha256_hex(PLAIN): PLAIN, sha256_hex(INTL): INTL, sha256_hex(NESTED): NESTED}
    data_dir.mkdir(parents=True)
    for sha, raw in blobs.items():
        path = data_dir / "blobs" / sha[:2] / sha
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
    conn = sqlite3.connect(data_dir / "mailwright.db", isolation_level=None)
    try:
        migrate(conn, MIGRATIONS[:2])
        conn.execute("INSERT INTO domains (name, created) VALUES ('example.test', 0)")
        conn.execute(
            "INSERT INTO accounts (address, domain_id, password_hash, created) "
            "VALUES ('old@example.test', 1, 'h', 0)"
        )
        conn.execute(
            "INSERT INTO mailboxes (account_id, name, uidvalidity, uidnext, created) "
            "VALUES (1, 'INBOX', 1, 4, 0)"
        )
        for uid, (sha, raw) in enumerate(blobs.items(), start=1):
            conn.execute(
                "INSERT INTO blobs (sha256, size, refcount, created) VALUES (?, ?, 1, 0)",
                (sha, len(raw)),
            )
            conn.execute(
                "INSERT INTO messages (mailbox_id, uid, blob, internal_date, size, modseq) "
                "VALUES (1, ?, ?, 0, ?, 1)",
                (uid, sha, len(raw)),
            )
        assert migrate(conn, MIGRATIONS[:3], blob_path=lambda s: data_dir / "blobs" / s[:2] / s)
        old = dict(conn.execute("SELECT sha256, id FROM blob_meta").fetchall())
        # A row of an older analysis: kept, marked, and analyzed from the file when read.
        meta = json.loads(analyze(INTL).to_json())
        meta["v"] = 0
        conn.execute(
            "UPDATE blob_meta SET meta = ? WHERE sha256 = ?", (json.dumps(meta), sha256_hex(INTL))
        )
    finally:
        conn.close()
    store = SqliteStore(data_dir)
    try:
        conn = sqlite3.connect(data_dir / "mailwright.db")
        try:
            rows = conn.execute("SELECT sha256, id, v, parts FROM blob_meta").fetchall()
            config = dict(conn.execute("SELECT k, v FROM blob_text_config").fetchall())
            assert conn.execute("SELECT count(*) FROM blob_text_pending").fetchone() == (0,)
            assert conn.execute("SELECT count(*) FROM blob_text").fetchone() == (3,)
        finally:
            conn.close()
        assert {sha: meta_id for sha, meta_id, _, _ in rows} == old  # the index's rowids
        versions = {sha: v for sha, _, v, _ in rows}
        assert versions == {sha256_hex(PLAIN): FORMAT_VERSION, sha256_hex(INTL): 0,
                            sha256_hex(NESTED): FORMAT_VERSION}
        assert (config["automerge"], config["crisismerge"]) == (0, 64)
        for sha, raw in blobs.items():
            assert same(store.message_info(sha), analyze(raw))
        assert store.search_text(1, "BODY", "inner words") == {3}
        assert store.search_text(1, "TEXT", "café") == {2}
    finally:
        store.close()
