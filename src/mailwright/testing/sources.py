"""Where `MailServer` reads mail from: a local account's mailbox, or the capture box; and the
wait of `wait_for` on their change events.

Everything here runs on the server's event loop: the change bus delivers to the loop that
subscribed, and the capture box's coroutines belong to that loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final

from mailwright.testing.messages import MailMessage, MailTimeout, parse_message

if TYPE_CHECKING:
    from mailwright.capture.box import CaptureBox, Captured, CaptureSubscription
    from mailwright.store.api import Store
    from mailwright.store.changes import Subscription

# The capture box lists in pages of this size (its own default).
_PAGE: Final = 200
# Arrivals listed in a MailTimeout message; the earlier ones are only counted.
_TIMEOUT_LISTING: Final = 20


class Watch:
    """New messages of one source, as the change bus (or the capture box) reports them."""

    async def next(self) -> list[MailMessage]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class Source:
    async def read(self) -> list[MailMessage]:
        """What is there now, oldest first."""
        raise NotImplementedError

    def watch(self) -> Watch:
        """Subscribe (on the server's loop): what arrives from now on is reported."""
        raise NotImplementedError


class LocalSource(Source):
    """One mailbox of a local account."""

    def __init__(self, store: Store, account_id: int, address: str, mailbox: str) -> None:
        self.store = store
        self.account_id = account_id
        self.address = address
        self.mailbox = mailbox

    def _mailbox_id(self) -> int:
        info = self.store.mailbox(self.account_id, self.mailbox)
        if info is None:
            raise ValueError(f"{self.address} has no mailbox {self.mailbox!r}")
        return info.id

    def load(self, blob: str) -> MailMessage | None:
        try:
            raw = self.store.blob_path(blob).read_bytes()
        except FileNotFoundError:  # expunged and released meanwhile
            return None
        message = parse_message(raw)
        message.envelope_from = _strip_brackets(str(message.get("Return-Path", "")))
        message.envelope_rcpts = (self.address,)
        return message

    async def read(self) -> list[MailMessage]:
        records = self.store.mailbox_messages(self._mailbox_id())
        loaded = (self.load(record.blob) for record in records)
        return [message for message in loaded if message is not None]

    def watch(self) -> Watch:
        return _LocalWatch(self, self.store.changes.subscribe(self._mailbox_id()))


class _LocalWatch(Watch):
    def __init__(self, source: LocalSource, subscription: Subscription) -> None:
        self.source = source
        self.subscription = subscription

    async def next(self) -> list[MailMessage]:
        from mailwright.store.changes import Appended

        found: list[MailMessage] = []
        for event in await self.subscription.wait():
            if isinstance(event, Appended):
                for record in event.records:
                    message = self.source.load(record.blob)
                    if message is not None:
                        found.append(message)
        return found

    def close(self) -> None:
        self.subscription.close()


class CaptureSource(Source):
    """Captured mail: all of it (`rcpt` None), or the copies kept for one recipient."""

    def __init__(self, box: CaptureBox, rcpt: str | None) -> None:
        self.box = box
        self.rcpt = rcpt

    def wanted(self, rcpts: Iterable[str]) -> bool:
        return self.rcpt is None or self.rcpt in {_canonical(r) for r in rcpts}

    async def load(self, captured: Captured) -> MailMessage | None:
        raw = await self.box.raw(captured.id)
        if raw is None:  # deleted meanwhile
            return None
        message = parse_message(raw)
        message.envelope_from = captured.mail_from
        message.envelope_rcpts = tuple(captured.rcpts)
        message.capture_id = captured.id
        return message

    async def read(self) -> list[MailMessage]:
        listed: list[Captured] = []
        while True:
            page = await self.box.list(to=self.rcpt, limit=_PAGE, offset=len(listed))
            listed.extend(page)
            if len(page) < _PAGE:
                break
        # The box lists newest first; tests read mail in the order it was sent.
        listed.reverse()
        found: list[MailMessage] = []
        for captured in listed:
            if self.wanted(captured.rcpts):
                message = await self.load(captured)
                if message is not None:
                    found.append(message)
        return found

    def watch(self) -> Watch:
        return _CaptureWatch(self, self.box.subscribe())


class _CaptureWatch(Watch):
    def __init__(self, source: CaptureSource, subscription: CaptureSubscription) -> None:
        self.source = source
        self.subscription = subscription

    async def next(self) -> list[MailMessage]:
        captured = await self.subscription.__anext__()
        if not self.source.wanted(captured.rcpts):
            return []
        message = await self.source.load(captured)
        return [] if message is None else [message]

    def close(self) -> None:
        self.subscription.close()


async def wait_for_message(
    sources: list[Source],
    matches: Callable[[MailMessage], bool],
    within: float,
    wanted: str,
) -> MailMessage:
    """The first message of `sources` that `matches`, already there or arriving within
    `within` seconds; else MailTimeout whose text starts with `wanted` and lists what came.

    Subscribes to every source before reading any: a message committed in between is then
    both read and reported (seen twice, harmless), never neither.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    watches: list[Watch] = []
    pending: dict[asyncio.Future[list[MailMessage]], Watch] = {}
    seen: list[MailMessage] = []
    try:
        for source in sources:
            watches.append(source.watch())
        for source in sources:
            for message in await source.read():
                seen.append(message)
                if matches(message):
                    return message
        while True:
            waiting = set(pending.values())
            for watch in watches:
                if watch not in waiting:
                    pending[asyncio.ensure_future(watch.next())] = watch
            remaining = deadline - loop.time()
            if remaining <= 0 or not pending:
                break
            done, _ = await asyncio.wait(
                pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                break
            for future in done:
                del pending[future]
                for message in future.result():
                    seen.append(message)
                    if matches(message):
                        return message
    finally:
        for future in pending:
            future.cancel()
        if pending:
            await asyncio.wait(pending)
        for watch in watches:
            watch.close()
    raise MailTimeout(timeout_text(wanted, seen))


def describe_wanted(
    to: str | None, subject: str | None, predicate: Callable[..., object] | None, within: float
) -> str:
    parts = [f"to {to}" if to else "to anyone"]
    if subject is not None:
        parts.append(f"with a Subject containing {subject!r}")
    if predicate is not None:
        parts.append(f"matching {getattr(predicate, '__name__', repr(predicate))}")
    return f"no message {' '.join(parts)} within {within:g} s"


def timeout_text(wanted: str, seen: list[MailMessage]) -> str:
    if not seen:
        return f"{wanted}; no mail arrived at all"
    lines = [f"{wanted}; {len(seen)} message(s) arrived:"]
    if len(seen) > _TIMEOUT_LISTING:
        lines.append(f"  ... {len(seen) - _TIMEOUT_LISTING} earlier ones not shown")
    for message in seen[-_TIMEOUT_LISTING:]:
        rcpts = ", ".join(message.envelope_rcpts) or str(message.get("To", ""))
        sender = message.envelope_from or str(message.get("From", ""))
        lines.append(f"  - to {rcpts} from {sender or '<>'}: {str(message.get('Subject', ''))!r}")
    return "\n".join(lines)


def _strip_brackets(path: str) -> str:
    path = path.strip()
    return path[1:-1] if path.startswith("<") and path.endswith(">") else path


def _canonical(address: str) -> str:
    from mailwright.store.api import InvalidAddress, normalize_address

    try:
        return normalize_address(address)
    except InvalidAddress:
        return address.strip().lower()
