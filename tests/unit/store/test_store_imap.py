"""The store's IMAP operations: mailboxes, subscriptions, messages, flags, expunge, copy, move."""

from __future__ import annotations

import asyncio
import hashlib
import random
import sqlite3
from pathlib import Path

import pytest
from store_helpers import Deliver

from mailwright.store import (
    Account,
    AlreadyExists,
    Forbidden,
    InUse,
    InvalidName,
    MailboxInfo,
    NotFound,
    SqliteStore,
    normalize_mailbox_name,
)
from mailwright.store.schema import MIGRATIONS, migrate

DEFAULTS = ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]


def _rows(data_dir: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(data_dir / "mailwright.db")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _blob_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "blobs").glob("*/*") if p.is_file())


def _names(store: SqliteStore, account: Account) -> list[str]:
    return [m.name for m in store.list_mailboxes(account.id)]


def _box(store: SqliteStore, account: Account, name: str) -> MailboxInfo:
    info = store.mailbox(account.id, name)
    assert info is not None
    return info


async def _append(
    store: SqliteStore,
    account: Account,
    mailbox: str,
    data: bytes,
    flags: tuple[str, ...] = (),
    internal_date: int | None = None,
) -> int:
    staged = store.stage()
    staged.write(data)
    result = await store.append(account.id, mailbox, staged, flags, internal_date)
    return result.uid


def _uids(store: SqliteStore, mailbox_id: int) -> list[int]:
    return [m.uid for m in store.mailbox_messages(mailbox_id)]


# ----- names -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "canonical"),
    [("INBOX", "INBOX"), ("inbox", "INBOX"), ("InBoX/x", "INBOX/x"), ("Work/inbox", "Work/inbox")],
)
def test_inbox_is_case_insensitive_other_names_are_not(given: str, canonical: str) -> None:
    assert normalize_mailbox_name(given) == canonical


@pytest.mark.parametrize("bad", ["", "/a", "a/", "a//b", "a\r\nb", "x" * 1001])
def test_invalid_mailbox_names_are_refused(bad: str) -> None:
    with pytest.raises(InvalidName):
        normalize_mailbox_name(bad)


# ----- mailboxes ---------------------------------------------------------------------------------
def test_new_account_lists_default_mailboxes_subscribed(store: SqliteStore, alice: Account) -> None:
    boxes = store.list_mailboxes(alice.id)
    assert [b.name for b in boxes] == DEFAULTS
    assert all(b.subscribed and b.uidnext == 1 for b in boxes)
    assert len({b.uidvalidity for b in boxes}) == len(boxes)
    assert {b.name: b.special_use for b in boxes}["Sent"] == "\\Sent"
    assert store.subscriptions(alice.id) == DEFAULTS
    assert store.list_mailboxes(9999) == []
    assert store.mailbox(alice.id, "inbox") == _box(store, alice, "INBOX")
    assert store.mailbox(alice.id, "nope") is None
    assert store.mailbox(alice.id, "a//b") is None


@pytest.mark.asyncio
async def test_create_makes_missing_parents_with_fresh_uidvalidity(
    store: SqliteStore, alice: Account
) -> None:
    before = max(b.uidvalidity for b in store.list_mailboxes(alice.id))
    info = await store.create_mailbox(alice.id, "a/b/c/", special_use="\\Archive")
    assert info.name == "a/b/c"
    assert info.special_use == "\\Archive"
    assert not info.subscribed, "CREATE does not subscribe"
    assert _names(store, alice) == sorted([*DEFAULTS, "a", "a/b", "a/b/c"])
    created = [_box(store, alice, n).uidvalidity for n in ("a", "a/b", "a/b/c")]
    assert min(created) > before
    assert len(set(created)) == 3
    await store.create_mailbox(alice.id, "a/d")
    with pytest.raises(AlreadyExists):
        await store.create_mailbox(alice.id, "a/b")
    with pytest.raises(AlreadyExists):
        await store.create_mailbox(alice.id, "inbox")
    with pytest.raises(NotFound):
        await store.create_mailbox(9999, "x")
    with pytest.raises(InvalidName):
        await store.create_mailbox(alice.id, "x//y")


@pytest.mark.asyncio
async def test_names_are_case_sensitive_except_inbox(store: SqliteStore, alice: Account) -> None:
    await store.create_mailbox(alice.id, "work")
    await store.create_mailbox(alice.id, "Work")
    await store.create_mailbox(alice.id, "inbox/Sub")
    assert {"work", "Work", "INBOX/Sub"} <= set(_names(store, alice))


@pytest.mark.asyncio
async def test_mailbox_status_counts(store: SqliteStore, alice: Account) -> None:
    await _append(store, alice, "INBOX", b"one\r\n", ("\\Seen",))
    await _append(store, alice, "INBOX", b"two!\r\n", ("\\Deleted", "\\seen"))
    await _append(store, alice, "INBOX", b"three\r\n", ("$Junk",))
    status = store.mailbox_status(alice.id, "inbox")
    assert status is not None
    inbox = _box(store, alice, "INBOX")
    assert (status.messages, status.unseen, status.deleted, status.recent) == (3, 1, 1, 0)
    assert status.size == len(b"one\r\ntwo!\r\nthree\r\n")
    assert (status.uidnext, status.uidvalidity, status.highestmodseq) == (
        4,
        inbox.uidvalidity,
        inbox.highestmodseq,
    )
    empty = store.mailbox_status(alice.id, "Trash")
    assert empty is not None
    assert (empty.messages, empty.unseen, empty.size) == (0, 0, 0)
    assert store.mailbox_status(alice.id, "nope") is None


@pytest.mark.asyncio
async def test_delete_mailbox_rules(store: SqliteStore, alice: Account) -> None:
    await store.create_mailbox(alice.id, "a/b")
    with pytest.raises(Forbidden):
        await store.delete_mailbox(alice.id, "inbox")
    with pytest.raises(InUse):
        await store.delete_mailbox(alice.id, "a")
    with pytest.raises(NotFound):
        await store.delete_mailbox(alice.id, "nope")
    await store.delete_mailbox(alice.id, "a/b")
    await store.delete_mailbox(alice.id, "a")
    assert _names(store, alice) == DEFAULTS


@pytest.mark.asyncio
async def test_recreated_mailbox_has_new_uidvalidity_and_no_old_messages(
    store: SqliteStore, alice: Account
) -> None:
    old = await store.create_mailbox(alice.id, "x")
    await _append(store, alice, "x", b"m\r\n")
    await store.delete_mailbox(alice.id, "x")
    new = await store.create_mailbox(alice.id, "x")
    assert new.uidvalidity > old.uidvalidity
    assert new.id != old.id
    assert store.mailbox_messages(new.id) == []


@pytest.mark.asyncio
async def test_delete_mailbox_releases_blobs_and_gc_removes_unshared_files(
    store: SqliteStore, alice: Account, data_dir: Path
) -> None:
    box = await store.create_mailbox(alice.id, "x")
    await _append(store, alice, "x", b"only here\r\n")
    await _append(store, alice, "x", b"shared\r\n")
    await _append(store, alice, "INBOX", b"shared\r\n")
    assert len(_blob_files(data_dir)) == 2
    await store.delete_mailbox(alice.id, "x")
    store.collect_garbage()
    assert [p.read_bytes() for p in _blob_files(data_dir)] == [b"shared\r\n"]
    assert _rows(data_dir, "SELECT refcount FROM blobs") == [(1,)]
    assert _rows(data_dir, "SELECT count(*) FROM expunged WHERE mailbox_id = ?", (box.id,)) == [
        (0,)
    ]


@pytest.mark.asyncio
async def test_rename_moves_children_and_keeps_uids_and_uidvalidity(
    store: SqliteStore, alice: Account
) -> None:
    a = await store.create_mailbox(alice.id, "a")
    await store.create_mailbox(alice.id, "a/b")
    await store.create_mailbox(alice.id, "ab")  # a sibling sharing the prefix is left alone
    uid = await _append(store, alice, "a/b", b"m\r\n")
    renamed = await store.rename_mailbox(alice.id, "a", "x/y")
    assert (renamed.id, renamed.name, renamed.uidvalidity) == (a.id, "x/y", a.uidvalidity)
    assert {"x", "x/y", "x/y/b", "ab"} <= set(_names(store, alice))
    assert not {"a", "a/b"} & set(_names(store, alice))
    assert _uids(store, _box(store, alice, "x/y/b").id) == [uid]
    with pytest.raises(AlreadyExists):
        await store.rename_mailbox(alice.id, "ab", "x")
    with pytest.raises(AlreadyExists):
        await store.rename_mailbox(alice.id, "ab", "inbox")
    with pytest.raises(Forbidden):
        await store.rename_mailbox(alice.id, "x", "x/z")
    with pytest.raises(NotFound):
        await store.rename_mailbox(alice.id, "nope", "z")


@pytest.mark.asyncio
async def test_rename_inbox_moves_messages_and_leaves_inbox_empty(
    store: SqliteStore, alice: Account, deliver: Deliver, data_dir: Path
) -> None:
    await store.create_mailbox(alice.id, "INBOX/kid")
    await deliver(b"one\r\n", [alice.id])
    await deliver(b"two\r\n", [alice.id])
    inbox = _box(store, alice, "INBOX")
    old = await store.rename_mailbox(alice.id, "inbox", "Old/Mail")
    assert old.name == "Old/Mail"
    assert old.uidvalidity > inbox.uidvalidity, "a new mailbox: a new UIDVALIDITY"
    assert [m.blob for m in store.mailbox_messages(old.id)] == [
        hashlib.sha256(b"one\r\n").hexdigest(),
        hashlib.sha256(b"two\r\n").hexdigest(),
    ]
    assert old.uidnext > max(_uids(store, old.id))
    after = _box(store, alice, "INBOX")
    assert (after.id, after.uidvalidity) == (inbox.id, inbox.uidvalidity)
    assert store.mailbox_messages(inbox.id) == []
    assert store.pop3_messages(alice.id) == []
    assert after.highestmodseq > inbox.highestmodseq
    assert "INBOX/kid" in _names(store, alice), "inferiors of INBOX are not renamed"
    expunged = _rows(data_dir, "SELECT uid FROM expunged WHERE mailbox_id = ?", (inbox.id,))
    assert sorted(expunged) == [(1,), (2,)]
    await deliver(b"three\r\n", [alice.id])
    assert _uids(store, inbox.id) == [3], "INBOX never reuses UIDs"


@pytest.mark.asyncio
async def test_subscriptions_are_by_name_and_survive_delete(
    store: SqliteStore, alice: Account
) -> None:
    await store.set_subscribed(alice.id, "not/yet", True)
    await store.set_subscribed(alice.id, "not/yet", True)  # idempotent
    assert "not/yet" in store.subscriptions(alice.id)
    info = await store.create_mailbox(alice.id, "not/yet")
    assert info.subscribed
    await store.delete_mailbox(alice.id, "not/yet")
    assert "not/yet" in store.subscriptions(alice.id), "RFC 3501 6.3.6"
    await store.set_subscribed(alice.id, "inbox", False)
    assert not _box(store, alice, "INBOX").subscribed
    assert "INBOX" not in store.subscriptions(alice.id)
    with pytest.raises(NotFound):
        await store.set_subscribed(9999, "x", True)


# ----- messages ----------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_append_is_durable_with_flags_and_date(
    store: SqliteStore, alice: Account, data_dir: Path
) -> None:
    staged = store.stage()
    staged.write(b"Subject: draft\r\n\r\nbody\r\n")
    result = await store.append(alice.id, "Drafts", staged, ["\\draft", "$Work"], 1_000_000_000)
    drafts = _box(store, alice, "Drafts")
    assert (result.uid, result.uidvalidity) == (1, drafts.uidvalidity)
    store.close()
    reopened = SqliteStore(data_dir)
    try:
        [record] = reopened.mailbox_messages(drafts.id)
        assert record.uid == 1
        assert record.flags == frozenset({"\\Draft", "$Work"})
        assert record.internal_date == 1_000_000_000
        assert record.size == len(b"Subject: draft\r\n\r\nbody\r\n")
        assert reopened.blob_path(record.blob).read_bytes() == b"Subject: draft\r\n\r\nbody\r\n"
        status = reopened.mailbox_status(alice.id, "Drafts")
        assert status is not None
        assert record.modseq == status.highestmodseq
    finally:
        reopened.close()
    assert list((data_dir / "tmp").iterdir()) == []


@pytest.mark.asyncio
async def test_large_append_is_byte_identical(store: SqliteStore, alice: Account) -> None:
    data = bytes(range(256)) * 2048  # 512 KiB: above INLINE_FSYNC_MAX
    uid = await _append(store, alice, "INBOX", data)
    [record] = store.mailbox_messages(_box(store, alice, "INBOX").id)
    assert record.uid == uid
    assert store.blob_path(record.blob).read_bytes() == data


@pytest.mark.asyncio
async def test_append_to_missing_mailbox_fails_and_leaves_nothing(
    store: SqliteStore, alice: Account, data_dir: Path
) -> None:
    staged = store.stage()
    staged.write(b"x\r\n")
    with pytest.raises(NotFound):
        await store.append(alice.id, "nope", staged)
    assert _rows(data_dir, "SELECT count(*) FROM blobs") == [(0,)]
    assert list((data_dir / "tmp").iterdir()) == []
    staged = store.stage()
    staged.write(b"x\r\n")
    with pytest.raises(ValueError, match="flag"):
        await store.append(alice.id, "INBOX", staged, ["bad flag"])
    assert list((data_dir / "tmp").iterdir()) == []


@pytest.mark.asyncio
async def test_store_flags_modes_and_modseq(store: SqliteStore, alice: Account) -> None:
    for n in range(3):
        await _append(store, alice, "INBOX", b"m%d\r\n" % n, ("\\Seen",) if n == 2 else ())
    box = _box(store, alice, "INBOX")
    added = await store.store_flags(box.id, [1, 2, 3, 99], "add", ["\\seen", "$Work"])
    assert [c.uid for c in added] == [1, 2, 3]
    assert all(c.flags == {"\\Seen", "$Work"} for c in added)
    modseqs = [c.modseq for c in added]
    assert modseqs == sorted(modseqs)
    assert len(set(modseqs)) == 3
    assert modseqs[0] > box.highestmodseq
    assert await store.store_flags(box.id, [1], "add", ["\\Seen"]) == [], "no change, no report"
    removed = await store.store_flags(box.id, [1, 2], "remove", ["$Work"])
    assert [(c.uid, c.flags) for c in removed] == [(1, {"\\Seen"}), (2, {"\\Seen"})]
    assert removed[0].modseq > modseqs[-1]
    replaced = await store.store_flags(box.id, [3], "replace", ["\\Flagged"])
    assert replaced[0].flags == {"\\Flagged"}
    records = {m.uid: m for m in store.mailbox_messages(box.id)}
    assert records[3].flags == {"\\Flagged"}
    assert records[3].modseq == replaced[0].modseq == _box(store, alice, "INBOX").highestmodseq
    with pytest.raises(NotFound):
        await store.store_flags(9999, [1], "add", ["\\Seen"])
    with pytest.raises(ValueError, match="Recent"):
        await store.store_flags(box.id, [1], "add", ["\\Recent"])


@pytest.mark.asyncio
async def test_store_flags_unchanged_since_skips_modified_messages(
    store: SqliteStore, alice: Account
) -> None:
    await _append(store, alice, "INBOX", b"a\r\n")
    await _append(store, alice, "INBOX", b"b\r\n")
    box = _box(store, alice, "INBOX")
    [first] = await store.store_flags(box.id, [1], "add", ["\\Flagged"])
    changed = await store.store_flags(
        box.id, [1, 2], "add", ["\\Seen"], unchanged_since=first.modseq - 1
    )
    assert [c.uid for c in changed] == [2]


@pytest.mark.asyncio
async def test_expunge_removes_only_deleted_and_uid_expunge_restricts(
    store: SqliteStore, alice: Account, data_dir: Path
) -> None:
    for n in range(4):
        await _append(store, alice, "INBOX", b"m%d\r\n" % n, ("\\Deleted",) if n != 0 else ())
    box = _box(store, alice, "INBOX")
    assert await store.expunge(box.id, [2, 3, 99]) == [2, 3]
    assert _uids(store, box.id) == [1, 4]
    assert await store.expunge(box.id) == [4]
    assert await store.expunge(box.id) == []
    assert _uids(store, box.id) == [1]
    rows = _rows(data_dir, "SELECT uid, modseq FROM expunged WHERE mailbox_id = ?", (box.id,))
    by_uid = dict(rows)
    assert by_uid[2] == by_uid[3] < by_uid[4] == _box(store, alice, "INBOX").highestmodseq
    store.collect_garbage()
    assert len(_blob_files(data_dir)) == 1
    assert store.pop3_messages(alice.id)[0].uid == 1, "POP3 sees the same expunge"
    uid = await _append(store, alice, "INBOX", b"new\r\n")
    assert uid == 5, "UIDs are never reused"
    with pytest.raises(NotFound):
        await store.expunge(9999)


@pytest.mark.asyncio
async def test_pop3_delete_and_imap_expunge_agree(
    store: SqliteStore, alice: Account, deliver: Deliver
) -> None:
    await deliver(b"a\r\n", [alice.id])
    await deliver(b"b\r\n", [alice.id])
    box = _box(store, alice, "INBOX")
    await store.pop3_commit(alice.id, [1], "delete")
    assert _uids(store, box.id) == [2]
    await store.store_flags(box.id, [2], "add", ["\\Deleted"])
    await store.expunge(box.id)
    assert store.pop3_messages(alice.id) == []


@pytest.mark.asyncio
async def test_copy_shares_one_blob_and_gc_waits_for_last_reference(
    store: SqliteStore, alice: Account, data_dir: Path
) -> None:
    await _append(store, alice, "INBOX", b"keep me\r\n", ("\\Seen", "$Work"), 1234)
    await _append(store, alice, "INBOX", b"second\r\n")
    inbox = _box(store, alice, "INBOX")
    archive = _box(store, alice, "Archive")
    await _append(store, alice, "Archive", b"already\r\n")
    assert await store.copy(inbox.id, [2, 1, 7], archive.id) == [(1, 2), (2, 3)]
    src, dst = store.mailbox_messages(inbox.id), store.mailbox_messages(archive.id)
    assert (dst[1].blob, dst[1].flags, dst[1].internal_date) == (src[0].blob, src[0].flags, 1234)
    assert len(_blob_files(data_dir)) == 3
    sha = src[0].blob
    assert _rows(data_dir, "SELECT refcount FROM blobs WHERE sha256 = ?", (sha,)) == [(2,)]
    await store.store_flags(inbox.id, [1], "add", ["\\Deleted"])
    await store.expunge(inbox.id)
    assert store.blob_path(sha).exists(), "the copy still references it"
    await store.store_flags(archive.id, [2], "add", ["\\Deleted"])
    await store.expunge(archive.id)
    store.collect_garbage()
    assert not store.blob_path(sha).exists()
    assert _rows(data_dir, "SELECT count(*) FROM blobs WHERE sha256 = ?", (sha,)) == [(0,)]
    assert await store.copy(inbox.id, [], archive.id) == []
    with pytest.raises(NotFound):
        await store.copy(inbox.id, [2], 9999)


@pytest.mark.asyncio
async def test_move_is_copy_plus_expunge_without_blob_churn(
    store: SqliteStore, alice: Account, data_dir: Path
) -> None:
    await _append(store, alice, "INBOX", b"a\r\n", ("\\Flagged",))
    await _append(store, alice, "INBOX", b"b\r\n")
    inbox, trash = _box(store, alice, "INBOX"), _box(store, alice, "Trash")
    assert await store.move(inbox.id, [1], trash.id) == [(1, 1)]
    assert _uids(store, inbox.id) == [2]
    [moved] = store.mailbox_messages(trash.id)
    assert moved.flags == {"\\Flagged"}
    assert _rows(data_dir, "SELECT refcount FROM blobs WHERE sha256 = ?", (moved.blob,)) == [(1,)]
    assert _rows(data_dir, "SELECT uid FROM expunged WHERE mailbox_id = ?", (inbox.id,)) == [(1,)]
    assert store.blob_path(moved.blob).exists()
    # Back again: new UIDs on both sides, never the old ones.
    assert await store.move(trash.id, [1], inbox.id) == [(1, 3)]
    assert _uids(store, inbox.id) == [2, 3]
    assert await _append(store, alice, "Trash", b"c\r\n") == 2


@pytest.mark.asyncio
async def test_move_is_atomic_when_destination_is_missing(
    store: SqliteStore, alice: Account
) -> None:
    await _append(store, alice, "INBOX", b"a\r\n")
    inbox = _box(store, alice, "INBOX")
    before = store.mailbox_status(alice.id, "INBOX")
    with pytest.raises(NotFound):
        await store.move(inbox.id, [1], 9999)
    assert _uids(store, inbox.id) == [1]
    assert store.mailbox_status(alice.id, "INBOX") == before


@pytest.mark.asyncio
async def test_uids_and_modseqs_survive_restart(
    store: SqliteStore, alice: Account, data_dir: Path
) -> None:
    await _append(store, alice, "INBOX", b"a\r\n")
    await _append(store, alice, "INBOX", b"b\r\n")
    inbox = _box(store, alice, "INBOX")
    await store.move(inbox.id, [2], _box(store, alice, "Trash").id)
    await store.store_flags(inbox.id, [1], "add", ["\\Deleted"])
    await store.expunge(inbox.id)
    trash = _box(store, alice, "Trash")
    [flagged] = await store.store_flags(trash.id, [1], "add", ["$Kept"])
    made = await store.create_mailbox(alice.id, "made/here")
    await store.set_subscribed(alice.id, "made/here", True)
    highest = _box(store, alice, "INBOX").highestmodseq
    store.close()
    reopened = SqliteStore(data_dir)
    try:
        [kept] = reopened.mailbox_messages(trash.id)
        assert (kept.flags, kept.modseq) == (flagged.flags, flagged.modseq)
        assert reopened.mailbox(alice.id, "made/here") == MailboxInfo(
            made.id, "made/here", made.uidvalidity, 1, 1, None, True
        )
        staged = reopened.stage()
        staged.write(b"c\r\n")
        result = await reopened.append(alice.id, "INBOX", staged)
        assert result.uid == 3
        [record] = reopened.mailbox_messages(inbox.id)
        assert record.modseq > highest
    finally:
        reopened.close()


@pytest.mark.asyncio
async def test_rename_inbox_into_its_own_inferior(
    store: SqliteStore, alice: Account, deliver: Deliver
) -> None:
    await deliver(b"a\r\n", [alice.id])
    moved = await store.rename_mailbox(alice.id, "INBOX", "INBOX/old")
    assert _uids(store, moved.id) == [1]
    assert _uids(store, _box(store, alice, "INBOX").id) == []


def test_migration_2_keeps_existing_subscriptions(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    conn = sqlite3.connect(data_dir / "mailwright.db", isolation_level=None)
    try:
        migrate(conn, MIGRATIONS[:1])
        conn.execute("INSERT INTO domains (name, created) VALUES ('example.test', 0)")
        conn.execute(
            "INSERT INTO accounts (address, domain_id, password_hash, created) "
            "VALUES ('old@example.test', 1, 'h', 0)"
        )
        conn.executemany(
            "INSERT INTO mailboxes (account_id, name, uidvalidity, subscribed, created) "
            "VALUES (1, ?, ?, ?, 0)",
            [("INBOX", 1, 1), ("Hidden", 2, 0)],
        )
    finally:
        conn.close()
    store = SqliteStore(data_dir)
    try:
        assert store.subscriptions(1) == ["INBOX"]
        assert [(m.name, m.subscribed) for m in store.list_mailboxes(1)] == [
            ("Hidden", False),
            ("INBOX", True),
        ]
    finally:
        store.close()


@pytest.mark.asyncio
async def test_concurrent_appends_get_distinct_growing_uids(
    store: SqliteStore, alice: Account
) -> None:
    uids = await asyncio.gather(
        *(_append(store, alice, "INBOX", b"m%d\r\n" % n) for n in range(50))
    )
    assert sorted(uids) == list(range(1, 51))
    records = store.mailbox_messages(_box(store, alice, "INBOX").id)
    assert len({m.modseq for m in records}) == 50
    assert store.writer.largest_batch > 1, "group commit batches appends too"


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", range(3))
async def test_random_operations_never_reuse_uids_and_modseq_only_grows(
    store: SqliteStore, alice: Account, data_dir: Path, seed: int
) -> None:
    rng = random.Random(seed)
    boxes = [_box(store, alice, name).id for name in ("INBOX", "Trash", "Archive")]
    ever: dict[int, set[int]] = {box: set() for box in boxes}
    highest = dict.fromkeys(boxes, 0)

    def check() -> None:
        for box in boxes:
            info = next(m for m in store.list_mailboxes(alice.id) if m.id == box)
            assert info.highestmodseq >= highest[box]
            highest[box] = info.highestmodseq
            records = store.mailbox_messages(box)
            assert all(r.modseq <= info.highestmodseq for r in records)
            assert all(r.uid < info.uidnext for r in records)

    for step in range(60):
        box = rng.choice(boxes)
        name = next(m.name for m in store.list_mailboxes(alice.id) if m.id == box)
        uids = [m.uid for m in store.mailbox_messages(box)]
        picked = rng.sample(uids, k=min(len(uids), rng.randint(1, 3))) if uids else []
        action = rng.choice(["append", "append", "flag", "expunge", "copy", "move"])
        new: list[int] = []
        before = highest[box]
        if action == "append":
            new = [await _append(store, alice, name, b"s%d m%d\r\n" % (seed, step % 7))]
        elif action == "flag":
            changes = await store.store_flags(box, picked, "add", ["\\Deleted"])
            assert all(c.modseq > before for c in changes)
        elif action == "expunge":
            await store.expunge(box, picked if rng.random() < 0.5 else None)
        else:
            dst = rng.choice(boxes)
            transfer = store.copy if action == "copy" else store.move
            pairs = await transfer(box, picked, dst)
            new = [n for _, n in pairs]
            assert not set(new) & ever[dst], "a destination UID was reused"
            ever[dst].update(new)
            new = []
        assert not set(new) & ever[box], "an appended UID was reused"
        ever[box].update(new)
        check()
    store.collect_garbage()  # unreferenced blobs go in the background (blobgc.py)
    refs = _rows(data_dir, "SELECT sha256, refcount FROM blobs")
    counted = _rows(data_dir, "SELECT blob, count(*) FROM messages GROUP BY blob")
    assert sorted(refs) == sorted(counted), "blob refcounts match the message rows"
    assert {p.name for p in _blob_files(data_dir)} == {sha for sha, _ in refs}
