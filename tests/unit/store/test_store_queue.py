"""The outbound queue's store API: reading due rows, done/defer/warned, and the CLI's
retry/delete from another store on the same data directory (another process in real life)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from store_helpers import Deliver

from mailwright.store import Envelope, EnvelopeRecipient, NotFound, SqliteStore
from mailwright.store.api import Account

MESSAGE = b"Return-Path: <alice@example.test>\r\nSubject: out\r\n\r\nhello\r\n"


async def _queue(store: SqliteStore, *rcpts: str, sender: str = "alice@example.test") -> None:
    staged = store.stage()
    staged.write(MESSAGE)
    await store.deliver(
        staged,
        Envelope(sender, {"RET": "HDRS", "ENVID": "abc"}, helo="c.test", client_ip="192.0.2.9"),
        [],
        [EnvelopeRecipient(r, {"NOTIFY": "FAILURE"} if i == 0 else {}) for i, r in
         enumerate(rcpts)],
    )


@pytest.mark.asyncio
async def test_entries_carry_the_envelope_in_id_order(store: SqliteStore) -> None:
    await _queue(store, "a@remote.test", "b@other.test")
    entries = store.queue_entries()
    assert [e.rcpt for e in entries] == ["a@remote.test", "b@other.test"]
    first = entries[0]
    assert first.blob == hashlib.sha256(MESSAGE).hexdigest()
    assert first.mail_from == "alice@example.test"
    assert first.mail_params == {"RET": "HDRS", "ENVID": "abc"}
    assert first.rcpt_params == {"NOTIFY": "FAILURE"}
    assert first.origin["client_ip"] == "192.0.2.9"
    assert (first.attempts, first.last_error, first.delay_warned) == (0, None, False)
    assert first.next_attempt == first.created
    assert store.queue_entry(first.id) == first
    assert store.queue_entry(99999) is None
    assert store.queue_next_due() == first.next_attempt


@pytest.mark.asyncio
async def test_defer_moves_rows_out_of_the_due_set(store: SqliteStore) -> None:
    await _queue(store, "a@remote.test", "b@remote.test")
    a, b = store.queue_entries()
    await store.queue_defer([a.id], a.created + 300.5, "4.2.0 try later")
    due = store.queue_entries(due_before=a.created + 1)
    assert [e.id for e in due] == [b.id]
    later = store.queue_entry(a.id)
    assert later is not None
    assert (later.attempts, later.last_error, later.next_attempt) == (
        1, "4.2.0 try later", a.created + 300.5,
    )
    assert [e.id for e in store.queue_entries(due_before=a.created + 300.5)] == [b.id, a.id]
    assert store.queue_entries(limit=1)[0].id == b.id


@pytest.mark.asyncio
async def test_done_releases_the_blob_only_with_its_last_row(
    store: SqliteStore, alice: Account
) -> None:
    await _queue(store, "a@remote.test", "b@remote.test")
    a, b = store.queue_entries()
    await store.queue_done([a.id, 12345])  # an unknown id is ignored
    assert store.queue_size() == 1
    store.collect_garbage()
    assert store.blob_path(b.blob).exists()
    await store.queue_done([b.id])
    await store.queue_done([b.id])  # twice: no error, no double release
    store.collect_garbage()
    assert store.queue_size() == 0
    assert not store.blob_path(b.blob).exists()
    assert store.queue_next_due() is None


@pytest.mark.asyncio
async def test_local_copy_keeps_the_blob_after_queue_done(
    store: SqliteStore, alice: Account, deliver: Deliver
) -> None:
    await deliver(MESSAGE, [alice.id], ("x@remote.test",))
    (entry,) = store.queue_entries()
    await store.queue_done([entry.id])
    store.collect_garbage()
    assert store.blob_path(entry.blob).read_bytes() == MESSAGE


@pytest.mark.asyncio
async def test_mark_warned(store: SqliteStore) -> None:
    await _queue(store, "a@remote.test")
    (entry,) = store.queue_entries()
    await store.queue_mark_warned([entry.id])
    warned = store.queue_entry(entry.id)
    assert warned is not None
    assert warned.delay_warned


@pytest.mark.asyncio
async def test_cli_retry_and_delete_from_another_store(
    store: SqliteStore, data_dir: Path
) -> None:
    await _queue(store, "a@remote.test", "b@remote.test", "c@remote.test")
    a, b, c = store.queue_entries()
    far = a.created + 86400
    await store.queue_defer([a.id, b.id, c.id], far, "4.4.1 down")
    cli = SqliteStore(data_dir, durable=True)  # as `mailwright queue` opens it
    try:
        assert cli.queue_retry([a.id], now=a.created + 5) == 1
        assert [e.id for e in store.queue_entries(due_before=a.created + 5)] == [a.id]
        assert cli.queue_retry(now=a.created + 6) == 3
        assert len(store.queue_entries(due_before=a.created + 6)) == 3
        assert cli.queue_retry([424242]) == 0
        cli.queue_delete(b.id)
        with pytest.raises(NotFound):
            cli.queue_delete(b.id)
    finally:
        cli.close()
    assert [e.id for e in store.queue_entries()] == [a.id, c.id]
