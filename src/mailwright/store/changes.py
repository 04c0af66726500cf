"""The change bus: in-process publish/subscribe of committed mailbox changes (IMAP IDLE etc.).

Invariants:
- Commit first, then publish. The store publishes from a `Transaction.after_commit` hook,
  which the writer runs only once the batch's COMMIT succeeded, and only for the ops whose
  savepoint survived (writer.py). A rolled-back op or batch publishes nothing, so a subscriber
  never sees a change that a reader could not see yet or ever.
- Events of one mailbox reach each subscriber in commit order: the writer thread publishes in
  commit order and every subscriber's event loop receives them through `call_soon_threadsafe`,
  which is FIFO.
- Publishing never blocks and never raises into the store: a subscriber whose event loop has
  closed is dropped.
- Events carry what changed, as committed (`Appended` the new messages' records, `FlagsChanged`
  the new flags and MODSEQs), so a subscriber folds them into its view without a read: one
  delivery to a mailbox that 1,000 sessions have selected costs no query at all, not 1,000.
- Publishing is one `call_soon_threadsafe` per event loop, not per subscriber: each costs a
  wake-up write to the loop's self-pipe from the writer thread, holding the GIL. On the loop the
  subscriptions are served in slices (`PUSH_SLICE`), so a fan-out to 1,000 sessions does not hold
  up the loop's other callbacks (the delivering session's reply) until it is done.
- A subscriber may take events synchronously as they arrive (`Subscription.listener`), with
  no task to wake: made for an IMAP session in IDLE, which can write its "* n EXISTS" right
  there (imap/base.py `push_in_idle`). Taking them so never reorders them: the listener is
  offered events only while nothing is queued.
- Nothing here is durable: a subscriber that needs the state after a restart reads the store
  (UIDs, MODSEQs and the `expunged` table); the bus only says "look again, here is what changed".
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from mailwright.store.api import FlagChange, MessageRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Appended:
    """New messages (deliver, APPEND, COPY, MOVE, RENAME of INBOX), as the commit wrote them."""

    mailbox_id: int
    records: tuple[MessageRecord, ...]  # in UID order

    @property
    def uids(self) -> tuple[int, ...]:
        return tuple(m.uid for m in self.records)


@dataclass(frozen=True, slots=True)
class FlagsChanged:
    mailbox_id: int
    changes: tuple[FlagChange, ...]


@dataclass(frozen=True, slots=True)
class Expunged:
    mailbox_id: int
    uids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MailboxDeleted:
    """The mailbox is gone (DELETE, or the account was removed by a future caller)."""

    mailbox_id: int


Change = Appended | FlagsChanged | Expunged | MailboxDeleted


class Subscription:
    """One subscriber's queue of changes to one mailbox. Use on the event loop that made it."""

    def __init__(self, bus: ChangeBus, mailbox_id: int, loop: asyncio.AbstractEventLoop) -> None:
        self.mailbox_id = mailbox_id
        self._bus = bus
        self._loop = loop
        self._events: deque[Change] = deque()
        self._ready = asyncio.Event()
        self.closed = False
        # Offered the events as they arrive, on the loop, while nothing is queued; returns
        # True when it handled them (they are not queued), False to have them queued for
        # `pending`/`wait` as usual. It must not block (imap/base.py `push_in_idle`).
        self.listener: Callable[[list[Change]], bool] | None = None

    def _push(self, events: list[Change]) -> None:  # on our loop
        if self.closed:
            return
        listener = self.listener
        if listener is not None and not self._events:
            try:
                if listener(events):
                    return
            except Exception:  # a bug there must not cost the other subscribers their events
                log.exception("change listener failed; the events are queued instead")
        self._events.extend(events)
        self._ready.set()

    def pending(self) -> list[Change]:
        """Take every event received so far, without waiting (NOOP / after a command)."""
        events = list(self._events)
        self._events.clear()
        self._ready.clear()
        return events

    async def wait(self) -> list[Change]:
        """Wait until at least one event arrived, then take them all (IDLE)."""
        while not self._events:
            self._ready.clear()
            await self._ready.wait()
        return self.pending()

    def close(self) -> None:
        """Stop receiving; idempotent."""
        if not self.closed:
            self.closed = True
            self._bus._remove(self)
            self._events.clear()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ChangeBus:
    """Subscribers by mailbox id. `publish` is thread-safe (the writer thread calls it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[int, set[Subscription]] = {}
        # Weak: a closed loop (a test's, a finished thread's) must not be kept alive here.
        self._inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopInbox] = (
            weakref.WeakKeyDictionary()
        )

    def subscribe(self, mailbox_id: int) -> Subscription:
        """Must be called on a running event loop; events are delivered on it."""
        sub = Subscription(self, mailbox_id, asyncio.get_running_loop())
        with self._lock:
            self._subs.setdefault(mailbox_id, set()).add(sub)
        return sub

    def subscribers(self, mailbox_id: int) -> int:
        with self._lock:
            return len(self._subs.get(mailbox_id, ()))

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.mailbox_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.mailbox_id]

    def publish(self, events: list[Change]) -> None:
        """Hand committed events to their subscribers' loops. Call only after the commit."""
        deliveries: dict[asyncio.AbstractEventLoop, list[tuple[Subscription, list[Change]]]] = {}
        by_sub: dict[Subscription, list[Change]] = {}
        with self._lock:
            for event in events:
                for sub in self._subs.get(event.mailbox_id, ()):
                    mine = by_sub.get(sub)
                    if mine is None:
                        mine = by_sub[sub] = []
                        deliveries.setdefault(sub._loop, []).append((sub, mine))
                    mine.append(event)
            inboxes = [(self._inbox(loop), batch) for loop, batch in deliveries.items()]
        for inbox, batch in inboxes:
            try:
                inbox.loop.call_soon_threadsafe(inbox.add, batch)
            except RuntimeError:  # that loop is closed: its sessions are gone
                for sub, _ in batch:
                    self._remove(sub)

    def _inbox(self, loop: asyncio.AbstractEventLoop) -> _LoopInbox:
        inbox = self._inboxes.get(loop)
        if inbox is None:
            inbox = self._inboxes[loop] = _LoopInbox(loop)
        return inbox


# Subscriptions served per turn of a loop. A delivery to a mailbox that 1,000 sessions IDLE on
# pushes to each at once (`Subscription.listener`, ~20 us apiece); in slices of this many, the
# other callbacks of the loop (say, the delivering SMTP session's 250) run between the slices
# instead of after all of them.
PUSH_SLICE = 64


class _LoopInbox:
    """Per event loop: the (subscription, events) pairs published to it, served FIFO in slices
    (so one subscription's events stay in commit order across publishes)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._queue: deque[tuple[Subscription, list[Change]]] = deque()
        self._scheduled = False

    def add(self, batch: list[tuple[Subscription, list[Change]]]) -> None:  # on the loop
        self._queue.extend(batch)
        if not self._scheduled:
            self._scheduled = True
            self._serve()

    def _serve(self) -> None:
        queue = self._queue
        for _ in range(min(PUSH_SLICE, len(queue))):
            sub, events = queue.popleft()
            sub._push(events)
        if queue:
            self.loop.call_soon(self._serve)
        else:
            self._scheduled = False
