"""The deferred blob clean-up (blobgc.py): expunge only drops references; unreferenced blobs lose
their rows, index rows and file later, never while referenced again, and also after a crash."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path

import pytest
from store_helpers import Deliver

from mailwright.store import Account, SqliteStore, blobgc

MESSAGE = b"Subject: zebra crossing\r\n\r\nA zebra walks by.\r\n"
SHA = hashlib.sha256(MESSAGE).hexdigest()


def _rows(data_dir: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(data_dir / "mailwright.db")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _traces(data_dir: Path, sha: str) -> dict[str, object]:
    """What a blob keeps until the clean-up: its row (refcount; None: no row), its meta row
    (its full-text row goes with it, textindex.py) and its file."""
    refcount = _rows(data_dir, "SELECT refcount FROM blobs WHERE sha256 = ?", (sha,))
    return {
        "refcount": refcount[0][0] if refcount else None,
        "meta": _rows(data_dir, "SELECT count(*) FROM blob_meta WHERE sha256 = ?", (sha,))[0][0],
        "file": (data_dir / "blobs" / sha[:2] / sha).exists(),
    }


GONE = {"refcount": None, "meta": 0, "file": False}


def _pause(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """No clean-up runs on its own: only `collect_garbage()` removes anything."""
    monkeypatch.setattr(store._gc, "schedule", lambda: None)


async def _expunge_all(store: SqliteStore, mailbox_id: int) -> list[int]:
    uids = [m.uid for m in store.mailbox_messages(mailbox_id)]
    await store.store_flags(mailbox_id, uids, "add", ["\\Deleted"])
    return await store.expunge(mailbox_id)


def _inbox(store: SqliteStore, account: Account) -> int:
    info = store.mailbox(account.id, "INBOX")
    assert info is not None
    return info.id


@pytest.mark.asyncio
async def test_expunge_leaves_the_blob_to_the_clean_up_and_search_ignores_it(
    store: SqliteStore,
    alice: Account,
    deliver: Deliver,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _pause(store, monkeypatch)
    await deliver(MESSAGE, [alice.id])
    inbox = _inbox(store, alice)
    assert store.search_text(inbox, "TEXT", "zebra") == {1}
    assert await _expunge_all(store, inbox) == [1]
    # Committed: the message is gone for every reader, its blob unreferenced but still whole.
    assert _traces(data_dir, SHA) == {"refcount": 0, "meta": 1, "file": True}
    assert store.mailbox_messages(inbox) == []
    assert store.search_text(inbox, "TEXT", "zebra") == frozenset()
    assert store.search_text(inbox, "TEXT", "ze") == frozenset()  # the instr() path too
    store.collect_garbage()
    assert _traces(data_dir, SHA) == GONE
    assert _rows(data_dir, "SELECT count(*) FROM blob_text") == [(0,)], "its index row too"


@pytest.mark.asyncio
async def test_a_blob_delivered_again_before_the_clean_up_is_kept(
    store: SqliteStore,
    alice: Account,
    bob: Account,
    deliver: Deliver,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _pause(store, monkeypatch)
    await deliver(MESSAGE, [alice.id])
    await _expunge_all(store, _inbox(store, alice))
    await deliver(MESSAGE, [bob.id])  # the same bytes, between the expunge and the clean-up
    store.collect_garbage()
    assert _traces(data_dir, SHA) == {"refcount": 1, "meta": 1, "file": True}
    inbox = _inbox(store, bob)
    assert store.search_text(inbox, "BODY", "walks") == {1}
    [message] = store.mailbox_messages(inbox)
    assert store.blob_path(message.blob).read_bytes() == MESSAGE
    assert store.message_info(message.blob).size == len(MESSAGE)


@pytest.mark.asyncio
async def test_unreferenced_blobs_left_behind_are_collected_at_the_next_start(
    store: SqliteStore,
    alice: Account,
    deliver: Deliver,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A crash between the expunge's commit and the clean-up: the candidates were only in
    memory, the zero refcounts are on disk."""
    _pause(store, monkeypatch)
    monkeypatch.setattr(store._gc, "close", lambda: None)  # as if it never ran
    await deliver(MESSAGE, [alice.id])
    await deliver(b"kept\r\n", [alice.id])
    inbox = _inbox(store, alice)
    await store.store_flags(inbox, [1], "add", ["\\Deleted"])
    await store.expunge(inbox)
    await store.aclose()
    assert _traces(data_dir, SHA)["refcount"] == 0
    reopened = SqliteStore(data_dir, durable=True)
    try:
        reopened.collect_garbage()  # waits for the start-up scan and what it queued
        assert _traces(data_dir, SHA) == GONE
        [kept] = reopened.mailbox_messages(inbox)
        assert reopened.blob_path(kept.blob).read_bytes() == b"kept\r\n"
    finally:
        reopened.close()


@pytest.mark.asyncio
async def test_the_clean_up_removes_many_blobs_in_short_transactions_of_its_own(
    store: SqliteStore,
    alice: Account,
    deliver: Deliver,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(blobgc, "GROUP", 2)
    monkeypatch.setattr(blobgc, "OP_SECONDS", 0.0)  # one group per op
    for n in range(7):
        await deliver(b"message %d\r\n" % n, [alice.id])
    commits = store.writer.commits
    assert len(await _expunge_all(store, _inbox(store, alice))) == 7
    store.collect_garbage()
    assert _rows(data_dir, "SELECT count(*) FROM blobs") == [(0,)]
    assert _rows(data_dir, "SELECT count(*) FROM blob_meta") == [(0,)]
    assert not any(p.is_file() for p in (data_dir / "blobs").glob("*/*"))
    # STORE, EXPUNGE, then at least ceil(7 / 2) clean-up transactions.
    assert store.writer.commits >= commits + 2 + 4


@pytest.mark.asyncio
async def test_expunge_costs_the_same_statements_for_4_or_40_messages(
    store: SqliteStore,
    alice: Account,
    bob: Account,
    deliver: Deliver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Set-based: no statement per message or per blob in the user's transaction."""
    _pause(store, monkeypatch)
    for n in range(40):
        await deliver(b"alice %d\r\n" % n, [alice.id])
    for n in range(4):
        await deliver(b"bob %d\r\n" % n, [bob.id])
    assert store.wait_for_index()  # no index op may hold the writer while we trace it
    counts = []
    for account in (alice, bob):
        inbox = _inbox(store, account)
        await store.store_flags(inbox, [m.uid for m in store.mailbox_messages(inbox)], "add",
                                ["\\Deleted"])
        statements: list[str] = []
        conn = store.writer._conn
        conn.set_trace_callback(statements.append)
        try:
            await store.expunge(inbox)
        finally:
            conn.set_trace_callback(None)
        counts.append(_statements_of_op(statements, "DELETE FROM messages"))
    assert counts[0] == counts[1] < 15


def _statements_of_op(trace: list[str], marker: str) -> int:
    """Top-level statements of the writer op (SAVEPOINT op ... RELEASE op) that ran `marker`:
    background ops (the clean-up, the text indexer) commit in batches of their own and may
    appear in the trace too. Lines starting with "--" are a statement's own sub-statements
    (triggers, FTS5 internals)."""
    ops: list[list[str]] = []
    inside = False
    for sql in trace:
        if sql == "SAVEPOINT op":
            ops.append([])
            inside = True
        elif sql == "RELEASE op":
            inside = False
        elif inside and not sql.startswith("--"):
            ops[-1].append(sql)
    [op] = [op for op in ops if any(marker in sql for sql in op)]
    return len(op)


@pytest.mark.asyncio
async def test_close_removes_what_this_process_released(
    store: SqliteStore,
    alice: Account,
    deliver: Deliver,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The admin CLI removes an account and exits: a running server would not hear of it."""
    await deliver(MESSAGE, [alice.id])
    _pause(store, monkeypatch)
    await asyncio.to_thread(store.remove_account, alice.address)
    assert _traces(data_dir, SHA)["refcount"] == 0
    await store.aclose()
    assert _traces(data_dir, SHA) == GONE
