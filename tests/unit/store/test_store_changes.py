"""The change bus: every committed mailbox change is published, after its commit, never a
rolled-back one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest
from store_helpers import Deliver

from mailwright.store import (
    Account,
    Appended,
    Change,
    Expunged,
    FlagsChanged,
    MailboxDeleted,
    SqliteStore,
    Subscription,
)
from mailwright.store.writer import Transaction


def _inbox(store: SqliteStore, account: Account) -> int:
    info = store.mailbox(account.id, "INBOX")
    assert info is not None
    return info.id


async def _next(sub: Subscription) -> list[Change]:
    return await asyncio.wait_for(sub.wait(), timeout=5)


def _appended(store: SqliteStore, mailbox_id: int, uids: tuple[int, ...]) -> Appended:
    """The Appended event of these messages as a read finds them: the event must carry exactly
    the committed records, since sessions in IDLE use them without reading."""
    records = {m.uid: m for m in store.mailbox_messages(mailbox_id)}
    return Appended(mailbox_id, tuple(records[uid] for uid in uids))


async def _append(store: SqliteStore, account: Account, mailbox: str, data: bytes) -> int:
    staged = store.stage()
    staged.write(data)
    return (await store.append(account.id, mailbox, staged)).uid


@pytest.mark.asyncio
async def test_delivery_is_published_after_it_is_visible(
    store: SqliteStore, alice: Account, deliver: Deliver
) -> None:
    inbox = _inbox(store, alice)
    with store.changes.subscribe(inbox) as sub:
        seen: list[list[int]] = []

        async def idle() -> list[Change]:
            events = await _next(sub)
            # Commit first, then publish: a reader sees the message when the event arrives.
            seen.append([m.uid for m in store.mailbox_messages(inbox)])
            return events

        waiter = asyncio.create_task(idle())
        await asyncio.sleep(0)
        await deliver(b"hello\r\n", [alice.id])
        assert await waiter == [_appended(store, inbox, (1,))]
        assert seen == [[1]]


@pytest.mark.asyncio
async def test_every_imap_operation_publishes_its_event(store: SqliteStore, alice: Account) -> None:
    inbox = _inbox(store, alice)
    trash_info = store.mailbox(alice.id, "Trash")
    assert trash_info is not None
    trash = trash_info.id
    with store.changes.subscribe(inbox) as sub, store.changes.subscribe(trash) as tsub:
        await _append(store, alice, "INBOX", b"a\r\n")
        await _append(store, alice, "INBOX", b"b\r\n")
        assert await _next(sub) == [_appended(store, inbox, (1,)), _appended(store, inbox, (2,))]
        changes = await store.store_flags(inbox, [1, 2], "add", ["\\Deleted"])
        assert await _next(sub) == [FlagsChanged(inbox, tuple(changes))]
        assert await store.expunge(inbox, [1]) == [1]
        assert await _next(sub) == [Expunged(inbox, (1,))]
        assert await store.copy(inbox, [2], trash) == [(2, 1)]
        assert await _next(tsub) == [_appended(store, trash, (1,))]
        assert await store.move(inbox, [2], trash) == [(2, 2)]
        assert await _next(sub) == [Expunged(inbox, (2,))]
        assert await _next(tsub) == [_appended(store, trash, (2,))]
        assert sub.pending() == []
        [seen] = await store.store_flags(trash, [1], "add", ["\\Seen"])
        assert seen.flags == {"\\Seen", "\\Deleted"}, "COPY copies flags"
        assert await _next(tsub) == [FlagsChanged(trash, (seen,))]
    assert store.changes.subscribers(inbox) == 0


@pytest.mark.asyncio
async def test_pop3_delete_publishes_expunged_and_keep_does_not(
    store: SqliteStore, alice: Account, carol: Account, deliver: Deliver
) -> None:
    await deliver(b"a\r\n", [alice.id, carol.id])
    await deliver(b"b\r\n", [alice.id, carol.id])
    inbox, carol_inbox = _inbox(store, alice), _inbox(store, carol)
    with store.changes.subscribe(inbox) as sub, store.changes.subscribe(carol_inbox) as csub:
        await store.pop3_commit(alice.id, [2, 1], "delete")
        assert await _next(sub) == [Expunged(inbox, (1, 2))]
        await store.pop3_commit(carol.id, [1], "keep")
        await store.pop3_commit(alice.id, [1], "delete")  # already gone: nothing to say
        await _append(store, alice, "INBOX", b"c\r\n")
        assert await _next(sub) == [_appended(store, inbox, (3,))]
        assert csub.pending() == []


@pytest.mark.asyncio
async def test_rename_inbox_and_delete_mailbox_publish(store: SqliteStore, alice: Account) -> None:
    inbox = _inbox(store, alice)
    box = await store.create_mailbox(alice.id, "x")
    await _append(store, alice, "INBOX", b"a\r\n")
    with store.changes.subscribe(inbox) as sub, store.changes.subscribe(box.id) as xsub:
        moved = await store.rename_mailbox(alice.id, "INBOX", "Old")
        assert await _next(sub) == [Expunged(inbox, (1,))]
        await store.delete_mailbox(alice.id, "x")
        assert await _next(xsub) == [MailboxDeleted(box.id)]
    with store.changes.subscribe(moved.id) as msub:
        await store.rename_mailbox(alice.id, "Old", "Older")  # same mailbox: nothing changed
        assert msub.pending() == []


@pytest.mark.asyncio
async def test_rolled_back_operations_publish_nothing(
    store: SqliteStore, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = _inbox(store, alice)
    await _append(store, alice, "INBOX", b"a\r\n")
    before = store.mailbox_messages(inbox)
    real_submit = store.writer.submit

    def failing_submit(
        op: Callable[[Transaction], Any],
        prepare: Callable[[], None] | None = None,
        *,
        background: bool = False,
    ) -> Future[Any]:
        def wrapped(tx: Transaction) -> Any:
            op(tx)  # registers its publication, then the op's savepoint is rolled back
            raise RuntimeError("failed after the op")

        return real_submit(wrapped, prepare, background=background)

    with store.changes.subscribe(inbox) as sub:
        monkeypatch.setattr(store.writer, "submit", failing_submit)
        with pytest.raises(RuntimeError, match="failed after"):
            await store.store_flags(inbox, [1], "add", ["\\Deleted"])
        with pytest.raises(RuntimeError, match="failed after"):
            await _append(store, alice, "INBOX", b"b\r\n")
        with pytest.raises(RuntimeError, match="failed after"):
            await store.move(inbox, [1], inbox)
        monkeypatch.undo()
        for _ in range(5):
            await asyncio.sleep(0)
        assert sub.pending() == []
        assert store.mailbox_messages(inbox) == before
        await _append(store, alice, "INBOX", b"c\r\n")
        [event] = await _next(sub)
        assert event == _appended(store, inbox, (2,)), "UID 2 was never committed"


@pytest.mark.asyncio
async def test_closed_subscription_receives_nothing(
    store: SqliteStore, alice: Account, deliver: Deliver
) -> None:
    inbox = _inbox(store, alice)
    sub = store.changes.subscribe(inbox)
    other = store.changes.subscribe(inbox)
    assert store.changes.subscribers(inbox) == 2
    sub.close()
    sub.close()
    await deliver(b"a\r\n", [alice.id])
    assert await _next(other) == [_appended(store, inbox, (1,))]
    assert sub.pending() == []
    other.close()
    assert store.changes.subscribers(inbox) == 0


@pytest.mark.asyncio
async def test_removed_account_publishes_mailbox_deleted(
    store: SqliteStore, alice: Account
) -> None:
    inbox = _inbox(store, alice)
    with store.changes.subscribe(inbox) as sub:
        await asyncio.to_thread(store.remove_account, alice.address)
        assert await _next(sub) == [MailboxDeleted(inbox)]


@pytest.mark.asyncio
async def test_appended_carries_the_committed_records(
    store: SqliteStore, alice: Account, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every publisher of Appended (deliver, APPEND, COPY, MOVE, RENAME of INBOX) hands over
    the records a read would give, in UID order: IMAP sessions use them without reading."""
    inbox = _inbox(store, alice)
    box = await store.create_mailbox(alice.id, "x")
    with store.changes.subscribe(inbox) as sub:
        await deliver(b"one\r\n", [alice.id])
        staged = store.stage()
        staged.write(b"two\r\n")
        await store.append(alice.id, "INBOX", staged, ["\\seen", "$Work"], 1234)
        events = await _next(sub)
    assert events == [_appended(store, inbox, (1,)), _appended(store, inbox, (2,))]
    appended = events[1]
    assert isinstance(appended, Appended)
    [record] = appended.records
    assert record.flags == {"\\Seen", "$Work"}
    assert (record.internal_date, record.size) == (1234, 5)
    with store.changes.subscribe(box.id) as xsub:
        assert await store.copy(inbox, [2, 1], box.id) == [(1, 1), (2, 2)]
        assert await store.move(inbox, [2], box.id) == [(2, 3)]
        events = await _next(xsub)
    assert events == [_appended(store, box.id, (1, 2)), _appended(store, box.id, (3,))]
    assert [e.uids for e in events if isinstance(e, Appended)] == [(1, 2), (3,)]
    published: list[Change] = []
    monkeypatch.setattr(store.changes, "publish", published.extend)
    old = await store.rename_mailbox(alice.id, "INBOX", "Old")
    assert published == [Expunged(inbox, (1,)), _appended(store, old.id, (1,))]


@pytest.mark.asyncio
async def test_a_listener_takes_events_as_they_come_but_never_out_of_order(
    store: SqliteStore, alice: Account, deliver: Deliver, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = _inbox(store, alice)
    taken: list[list[Change]] = []
    accept = True

    def listener(events: list[Change]) -> bool:
        taken.append(events)
        return accept

    with store.changes.subscribe(inbox) as sub, store.changes.subscribe(inbox) as other:
        sub.listener = listener
        await deliver(b"a\r\n", [alice.id])
        assert taken == [[_appended(store, inbox, (1,))]]
        assert sub.pending() == []  # handled: not queued
        accept = False
        await deliver(b"b\r\n", [alice.id])
        await deliver(b"c\r\n", [alice.id])
        # Declined, so queued; with one queued, the next is not offered (it would overtake).
        assert len(taken) == 2
        assert sub.pending() == [_appended(store, inbox, (2,)), _appended(store, inbox, (3,))]

        def broken(events: list[Change]) -> bool:
            raise RuntimeError("listener bug")

        sub.listener = broken
        await deliver(b"d\r\n", [alice.id])
        assert sub.pending() == [_appended(store, inbox, (4,))], "queued instead"
        assert "change listener failed" in caplog.text
        assert [e.uids for e in other.pending() if isinstance(e, Appended)] == [
            (1,), (2,), (3,), (4,)
        ]
