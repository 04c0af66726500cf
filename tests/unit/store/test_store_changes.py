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
        assert await waiter == [Appended(inbox, (1,))]
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
        assert await _next(sub) == [Appended(inbox, (1,)), Appended(inbox, (2,))]
        changes = await store.store_flags(inbox, [1, 2], "add", ["\\Deleted"])
        assert await _next(sub) == [FlagsChanged(inbox, tuple(changes))]
        assert await store.expunge(inbox, [1]) == [1]
        assert await _next(sub) == [Expunged(inbox, (1,))]
        assert await store.copy(inbox, [2], trash) == [(2, 1)]
        assert await _next(tsub) == [Appended(trash, (1,))]
        assert await store.move(inbox, [2], trash) == [(2, 2)]
        assert await _next(sub) == [Expunged(inbox, (2,))]
        assert await _next(tsub) == [Appended(trash, (2,))]
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
        assert await _next(sub) == [Appended(inbox, (3,))]
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
        op: Callable[[Transaction], Any], prepare: Callable[[], None] | None = None
    ) -> Future[Any]:
        def wrapped(tx: Transaction) -> Any:
            op(tx)  # registers its publication, then the op's savepoint is rolled back
            raise RuntimeError("failed after the op")

        return real_submit(wrapped, prepare)

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
        assert await _next(sub) == [Appended(inbox, (2,))], "UID 2 was never committed"


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
    assert await _next(other) == [Appended(inbox, (1,))]
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
