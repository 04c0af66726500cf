"""Delivery, blobs, UIDs, POP3 views and the outbound queue."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from store_helpers import Deliver

from mailwright.store import (
    Account,
    Envelope,
    EnvelopeRecipient,
    NotFound,
    SqliteStore,
)


def _rows(data_dir: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(data_dir / "mailwright.db")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _blob_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "blobs").glob("*/*") if p.is_file())


def _tmp_files(data_dir: Path) -> list[Path]:
    return list((data_dir / "tmp").iterdir())


MESSAGE = b"Subject: hi\r\n\r\nHello\r\n"


@pytest.mark.asyncio
async def test_deliver_to_one_account_stores_identical_bytes(
    store: SqliteStore, alice: Account, deliver: Deliver, data_dir: Path
) -> None:
    await deliver(MESSAGE, [alice.id])
    [message] = store.pop3_messages(alice.id)
    sha = hashlib.sha256(MESSAGE).hexdigest()
    assert message.blob == sha
    assert message.size == len(MESSAGE)
    assert message.uid == 1
    path = store.blob_path(sha)
    assert path == data_dir / "blobs" / sha[:2] / sha
    assert path.read_bytes() == MESSAGE
    assert _tmp_files(data_dir) == []


@pytest.mark.asyncio
async def test_deliver_to_three_accounts_stores_one_file(
    store: SqliteStore,
    alice: Account,
    bob: Account,
    carol: Account,
    deliver: Deliver,
    data_dir: Path,
) -> None:
    await deliver(MESSAGE, [alice.id, bob.id, carol.id, alice.id])
    blobs = {m.blob for a in (alice, bob, carol) for m in store.pop3_messages(a.id)}
    assert len(blobs) == 1
    assert len(store.pop3_messages(alice.id)) == 1, "an account listed twice gets one copy"
    assert [p.read_bytes() for p in _blob_files(data_dir)] == [MESSAGE]
    assert _rows(data_dir, "SELECT refcount FROM blobs") == [(3,)]


@pytest.mark.asyncio
async def test_large_message_in_many_chunks_is_byte_identical(
    store: SqliteStore, alice: Account
) -> None:
    chunks = [bytes([i % 251]) * 7919 for i in range(40)]  # > the 64 KiB write buffer
    staged = store.stage()
    for chunk in chunks:
        staged.write(chunk)
    assert staged.size == sum(map(len, chunks))
    await store.deliver(staged, Envelope("a@b.test"), [alice.id], [])
    [message] = store.pop3_messages(alice.id)
    assert store.blob_path(message.blob).read_bytes() == b"".join(chunks)


@pytest.mark.asyncio
async def test_uids_grow_and_are_never_reused_after_expunge_and_reopen(
    store: SqliteStore, alice: Account, deliver: Deliver, data_dir: Path
) -> None:
    for n in range(3):
        await deliver(b"m%d\r\n" % n, [alice.id])
    listed = store.pop3_messages(alice.id)
    assert [m.uid for m in listed] == [1, 2, 3]
    assert len({m.uidl for m in listed}) == 3
    await store.pop3_commit(alice.id, [2, 3], "delete")
    store.close()

    reopened = SqliteStore(data_dir, durable=True)
    try:
        assert [m.uid for m in reopened.pop3_messages(alice.id)] == [1]
        await Deliver(reopened)(b"m3\r\n", [alice.id])
        after = reopened.pop3_messages(alice.id)
        assert [m.uid for m in after] == [1, 4]
        assert after[0].uidl == listed[0].uidl, "UIDL stable across restarts"
        assert after[1].uidl not in {m.uidl for m in listed}, "UIDL never reused"
    finally:
        reopened.close()


@pytest.mark.asyncio
async def test_uidl_is_uidvalidity_dot_uid(
    store: SqliteStore, alice: Account, deliver: Deliver, data_dir: Path
) -> None:
    await deliver(MESSAGE, [alice.id])
    [(uidvalidity,)] = _rows(
        data_dir,
        "SELECT uidvalidity FROM mailboxes WHERE account_id = ? AND name = 'INBOX'",
        (alice.id,),
    )
    [message] = store.pop3_messages(alice.id)
    assert message.uidl == f"{uidvalidity}.1"


@pytest.mark.asyncio
async def test_pop3_delete_expunges_records_modseq_and_collects_the_blob(
    store: SqliteStore, alice: Account, bob: Account, deliver: Deliver, data_dir: Path
) -> None:
    await deliver(b"shared\r\n", [alice.id, bob.id])
    await deliver(b"alice only\r\n", [alice.id])
    [(modseq_before,)] = _rows(
        data_dir,
        "SELECT highestmodseq FROM mailboxes WHERE account_id = ? AND name = 'INBOX'",
        (alice.id,),
    )
    shared, own = store.pop3_messages(alice.id)
    await store.pop3_commit(alice.id, [shared.uid, own.uid, 99], "delete")
    assert store.pop3_messages(alice.id) == []
    [(modseq_after,)] = _rows(
        data_dir,
        "SELECT highestmodseq FROM mailboxes WHERE account_id = ? AND name = 'INBOX'",
        (alice.id,),
    )
    assert modseq_after == int(str(modseq_before)) + 1
    assert sorted(_rows(data_dir, "SELECT uid, modseq FROM expunged")) == [
        (1, modseq_after),
        (2, modseq_after),
    ]
    # The shared blob is still Bob's; Alice's own one is gone (after the deferred clean-up),
    # file included.
    store.collect_garbage()
    assert not store.blob_path(own.blob).exists()
    assert store.blob_path(shared.blob).read_bytes() == b"shared\r\n"
    await store.pop3_commit(bob.id, [1], "delete")
    store.collect_garbage()
    assert _blob_files(data_dir) == []
    assert _rows(data_dir, "SELECT count(*) FROM blobs") == [(0,)]


@pytest.mark.asyncio
async def test_pop3_keep_hides_from_pop3_but_keeps_the_message(
    store: SqliteStore, carol: Account, deliver: Deliver, data_dir: Path
) -> None:
    await deliver(b"one\r\n", [carol.id])
    await deliver(b"two\r\n", [carol.id])
    first, second = store.pop3_messages(carol.id)
    await store.pop3_commit(carol.id, [first.uid], "keep")
    assert store.pop3_messages(carol.id) == [second]
    assert store.blob_path(first.blob).exists()
    [summary] = [s for s in store.list_accounts() if s.address == carol.address]
    assert summary.messages == 2
    assert _rows(data_dir, "SELECT count(*) FROM expunged") == [(0,)]


@pytest.mark.asyncio
async def test_pop3_commit_with_no_uids_is_a_no_op(store: SqliteStore, alice: Account) -> None:
    commits = store.writer.commits
    await store.pop3_commit(alice.id, [], "delete")
    assert store.writer.commits == commits


@pytest.mark.asyncio
async def test_pop3_commit_unknown_account_raises_not_found(store: SqliteStore) -> None:
    with pytest.raises(NotFound):
        await store.pop3_commit(12345, [1], "delete")


@pytest.mark.asyncio
async def test_remote_recipients_get_queue_rows_in_the_same_transaction(
    store: SqliteStore, alice: Account, data_dir: Path
) -> None:
    staged = store.stage()
    staged.write(MESSAGE)
    envelope = Envelope(
        "alice@example.test",
        {"BODY": "8BITMIME", "RET": "HDRS"},
        helo="client.test",
        client_ip="192.0.2.1",
        authenticated_as="alice@example.test",
    )
    await store.deliver(
        staged,
        envelope,
        [alice.id],
        [
            EnvelopeRecipient("Friend@remote.test", {"NOTIFY": "SUCCESS,FAILURE"}),
            EnvelopeRecipient("other@remote.test"),
        ],
    )
    assert store.queue_size() == 2
    rows = _rows(
        data_dir,
        "SELECT blob, mail_from, mail_params, rcpt, rcpt_params, origin, status, attempts "
        "FROM queue ORDER BY id",
    )
    sha = hashlib.sha256(MESSAGE).hexdigest()
    assert rows[0][:2] == (sha, "alice@example.test")
    assert json.loads(str(rows[0][2])) == {"BODY": "8BITMIME", "RET": "HDRS"}
    assert rows[0][3] == "Friend@remote.test"
    assert json.loads(str(rows[0][4])) == {"NOTIFY": "SUCCESS,FAILURE"}
    assert json.loads(str(rows[0][5]))["client_ip"] == "192.0.2.1"
    assert rows[0][6:] == ("queued", 0)
    assert json.loads(str(rows[1][4])) == {}
    assert _rows(data_dir, "SELECT refcount FROM blobs") == [(3,)]
    # Queued mail keeps its blob even when every local copy is gone.
    await store.pop3_commit(alice.id, [1], "delete")
    assert store.blob_path(sha).read_bytes() == MESSAGE


@pytest.mark.asyncio
async def test_remote_only_delivery(store: SqliteStore, deliver: Deliver) -> None:
    await deliver(MESSAGE, [], ("x@remote.test",))
    assert store.queue_size() == 1


@pytest.mark.asyncio
async def test_deliver_without_recipients_stores_nothing(
    store: SqliteStore, deliver: Deliver, data_dir: Path
) -> None:
    await deliver(MESSAGE, [])
    assert _blob_files(data_dir) == []
    assert _tmp_files(data_dir) == []


@pytest.mark.asyncio
async def test_deliver_to_unknown_account_fails_whole_and_leaves_nothing_visible(
    store: SqliteStore, alice: Account, deliver: Deliver, data_dir: Path
) -> None:
    with pytest.raises(NotFound):
        await deliver(MESSAGE, [alice.id, 4242], ("x@remote.test",))
    assert store.pop3_messages(alice.id) == []
    assert store.queue_size() == 0
    assert _rows(data_dir, "SELECT count(*) FROM blobs") == [(0,)]
    assert _tmp_files(data_dir) == []


@pytest.mark.asyncio
async def test_same_bytes_twice_share_one_file_until_both_are_gone(
    store: SqliteStore, alice: Account, deliver: Deliver, data_dir: Path
) -> None:
    await deliver(MESSAGE, [alice.id])
    await deliver(MESSAGE, [alice.id])
    first, second = store.pop3_messages(alice.id)
    assert first.blob == second.blob
    assert len(_blob_files(data_dir)) == 1
    await store.pop3_commit(alice.id, [first.uid], "delete")
    assert store.blob_path(second.blob).read_bytes() == MESSAGE
    await store.pop3_commit(alice.id, [second.uid], "delete")
    store.collect_garbage()
    assert _blob_files(data_dir) == []
    # A blob collected and delivered again comes back.
    await deliver(MESSAGE, [alice.id])
    [third] = store.pop3_messages(alice.id)
    assert store.blob_path(third.blob).read_bytes() == MESSAGE


@pytest.mark.asyncio
async def test_remove_account_collects_only_unshared_blobs(
    store: SqliteStore, alice: Account, bob: Account, deliver: Deliver, data_dir: Path
) -> None:
    await deliver(b"shared\r\n", [alice.id, bob.id])
    await deliver(b"private\r\n", [alice.id])
    store.remove_account(alice.address)
    store.collect_garbage()
    assert [p.read_bytes() for p in _blob_files(data_dir)] == [b"shared\r\n"]
    assert len(store.pop3_messages(bob.id)) == 1
    assert store.pop3_messages(alice.id) == []


def test_abort_removes_the_temp_file(store: SqliteStore, data_dir: Path) -> None:
    staged = store.stage()
    staged.write(b"partial")
    assert len(_tmp_files(data_dir)) == 1
    staged.abort()
    staged.abort()  # idempotent
    assert _tmp_files(data_dir) == []
    with pytest.raises(RuntimeError):
        staged.write(b"more")


def test_forgotten_staged_message_is_cleaned_up(store: SqliteStore, data_dir: Path) -> None:
    staged = store.stage()
    staged.write(b"partial")
    del staged
    gc.collect()
    assert _tmp_files(data_dir) == []


@pytest.mark.asyncio
async def test_delivered_mail_survives_close_and_reopen(
    data_dir: Path, store: SqliteStore, alice: Account, deliver: Deliver
) -> None:
    bodies = [b"message %d\r\n" % n for n in range(20)]
    for body in bodies:
        await deliver(body, [alice.id], ("r@remote.test",))
    await store.aclose()
    await store.aclose()  # safe twice
    reopened = SqliteStore(data_dir, durable=True)
    try:
        got = [reopened.blob_path(m.blob).read_bytes() for m in reopened.pop3_messages(alice.id)]
        assert got == bodies
        assert reopened.queue_size() == 20
    finally:
        reopened.close()


def test_ensure_keeps_own_or_committed_files_and_replaces_the_rest(
    store: SqliteStore, data_dir: Path
) -> None:
    """Under the write lock, just before the rows: which file may a new row point to?"""
    staged = store.stage()
    staged.write(MESSAGE)
    staged.finish(durable=True)
    store.files.publish(staged)
    target = store.blob_path(staged.sha256)
    assert target.read_bytes() == MESSAGE
    assert store.files.ensure(staged, committed=False) is None  # our own link
    # Garbage collection removed the address meanwhile: our file goes back.
    target.unlink()
    assert store.files.ensure(staged, committed=False) == target.parent
    assert target.read_bytes() == MESSAGE
    # An orphan (say, half-written before a crash) at the address is never trusted...
    orphan = store.stage()
    orphan.write(MESSAGE)
    orphan.finish(durable=True)
    target.unlink()
    target.write_bytes(b"garbage")
    assert store.files.ensure(orphan, committed=False) == target.parent
    assert target.read_bytes() == MESSAGE
    # ...but a file a committed row vouches for is.
    again = store.stage()
    again.write(MESSAGE)
    again.finish(durable=True)
    assert store.files.ensure(again, committed=True) is None
    for s in (staged, orphan, again):
        s.abort()
    assert _tmp_files(data_dir) == []
    assert target.read_bytes() == MESSAGE


@pytest.mark.asyncio
async def test_crash_leftover_at_an_address_is_replaced_on_delivery(
    store: SqliteStore, alice: Account, deliver: Deliver
) -> None:
    target = store.blob_path(hashlib.sha256(MESSAGE).hexdigest())
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(b"\0" * len(MESSAGE))  # a name made durable before its data
    await deliver(MESSAGE, [alice.id])
    [message] = store.pop3_messages(alice.id)
    assert store.blob_path(message.blob).read_bytes() == MESSAGE


@pytest.mark.asyncio
async def test_two_stores_on_one_directory_deliver_concurrently(
    store: SqliteStore, alice: Account, data_dir: Path
) -> None:
    """The admin CLI (or a second process) has its own writer; UIDs stay unique and dense."""
    other = SqliteStore(data_dir, durable=True)
    try:
        await asyncio.gather(
            *(
                Deliver(s)(b"%d-%d\r\n" % (i, n), [alice.id])
                for n in range(15)
                for i, s in enumerate((store, other))
            )
        )
        uids = [m.uid for m in other.pop3_messages(alice.id)]
        assert uids == list(range(1, 31))
    finally:
        other.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("size", [100, 256 * 1024, 256 * 1024 + 1, 3 * 1024 * 1024])
async def test_small_and_large_messages_are_stored_byte_identical(
    store: SqliteStore, alice: Account, data_dir: Path, size: int
) -> None:
    """Both paths: fsynced in the writer's batch (up to INLINE_FSYNC_MAX) and in the pool."""
    body = (b"x" * 998 + b"\r\n") * (size // 1000) + b"y" * (size % 1000)
    await Deliver(store)(body, [alice.id])
    [message] = store.pop3_messages(alice.id)
    stored = store.blob_path(message.blob).read_bytes()
    assert stored == body
    assert message.blob == hashlib.sha256(body).hexdigest()
    assert message.size == size
    store.close()
    assert _tmp_files(data_dir) == []
