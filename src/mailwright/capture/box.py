"""The capture box: outbound mail kept instead of relayed, in an ordinary account of the store.

Why an account and not a table of its own: IMAP and POP3 then see captured mail for free
(`capture.imap`: one INBOX for everything, or a mailbox per recipient domain), and listing,
fetching and expunging go through the store's API like any other mail.

Each captured copy is stored with two fields prepended (above Return-Path), which are where
`Captured.mail_from` and `Captured.rcpts` come from:

    X-Mailwright-Envelope-From: <sender>
    X-Mailwright-Envelope-To: <a@x>, <b@y>

They are trusted only as the first two fields of a stored message, so a message that arrives
with forged ones (delivered locally to the capture account) shows no envelope at all.

All coroutines run on the loop of the store's owner (the server's loop; the CLI's own
`asyncio.run`). `subscribe()` must be called on that loop.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import email.parser
import email.policy
import logging
import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Literal

from mailwright.capture.faults import FAULTS_FILE, FaultFile, FaultSettings
from mailwright.store.api import (
    INBOX,
    AlreadyExists,
    Envelope,
    InvalidAddress,
    MailboxInfo,
    MessageRecord,
    NotFound,
    StagedMessage,
    Store,
    normalize_address,
)
from mailwright.store.changes import Appended, Change, Subscription

log = logging.getLogger("mailwright.capture")

ImapMode = Literal["catch-all", "per-domain"]
IMAP_MODES: Final[tuple[ImapMode, ...]] = ("catch-all", "per-domain")
DEFAULT_ACCOUNT: Final = "captured@capture.test"
ENVELOPE_FROM: Final = "X-Mailwright-Envelope-From"
ENVELOPE_TO: Final = "X-Mailwright-Envelope-To"
# Parsed heads kept per blob (immutable, so never stale); a few MB at most.
HEAD_CACHE_SIZE: Final = 10_000
# Read a staged message in a worker thread above this size (blocking file I/O otherwise).
INLINE_READ_MAX: Final = 256 * 1024
# RFC 5322 2.1.1: lines SHOULD stay under 78 characters; a long recipient list is folded.
_FOLD_AT: Final = 78
_ANGLE: Final = re.compile(rb"<([^<>\r\n]*)>")
_HEAD_LIMIT: Final = 256 * 1024


@dataclass(frozen=True, slots=True)
class Captured:
    id: str  # stable, URL-safe: f"{mailbox_id}-{uid}"
    mailbox: str  # "INBOX" or the per-domain mailbox name
    mail_from: str  # envelope sender ("" for <>)
    rcpts: tuple[str, ...]  # envelope recipients captured in this copy
    subject: str  # decoded (RFC 2047)
    from_header: str  # decoded From:
    to_header: str  # decoded To:
    date: float  # arrival (internal date), epoch seconds
    size: int


@dataclass(frozen=True, slots=True)
class _Head:
    mail_from: str
    rcpts: tuple[str, ...]
    subject: str
    from_header: str
    to_header: str


_NO_HEAD: Final = _Head("", (), "", "", "")


def envelope_fields(mail_from: str, rcpts: Iterable[str]) -> bytes:
    """The two fields prepended to a captured copy (folded: one recipient list may be long)."""
    lines = [f"{ENVELOPE_TO}:"]
    items = [f"<{r}>" for r in rcpts]
    for i, item in enumerate(items):
        sep = "," if i < len(items) - 1 else ""
        if len(lines[-1]) + 1 + len(item) + len(sep) > _FOLD_AT and lines[-1] != f"{ENVELOPE_TO}:":
            lines.append("")
        lines[-1] += f" {item}{sep}"
    text = f"{ENVELOPE_FROM}: <{mail_from}>\r\n" + "\r\n".join(lines) + "\r\n"
    return text.encode("utf-8")


def parse_head(head: bytes) -> _Head:
    """Envelope (our two leading fields only) and the decoded Subject/From/To of a head."""
    mail_from, rcpts = "", ()
    prefix = ENVELOPE_FROM.encode() + b":"
    if head[: len(prefix)].lower() == prefix.lower():
        first, _, rest = head.partition(b"\n")
        senders = _ANGLE.findall(first)
        mail_from = senders[0].decode("utf-8", "replace") if senders else ""
        to_prefix = ENVELOPE_TO.encode() + b":"
        if rest[: len(to_prefix)].lower() == to_prefix.lower():
            value = bytearray()
            for i, line in enumerate(rest.split(b"\n")):
                if i and line[:1] not in (b" ", b"\t"):
                    break
                value += line
            rcpts = tuple(a.decode("utf-8", "replace") for a in _ANGLE.findall(bytes(value)))
    text = head.decode("utf-8", "replace")
    try:
        msg = email.parser.HeaderParser(policy=email.policy.default).parsestr(text)
    except Exception:  # the parser is lenient; this guards a bug in it, not bad input
        return _Head(mail_from, rcpts, "", "", "")
    return _Head(mail_from, rcpts, _field(msg, "Subject"), _field(msg, "From"),
                 _field(msg, "To"))


def _field(msg: email.message.Message, name: str) -> str:
    try:
        value = msg[name]
    except Exception:  # a malformed address list can raise while being parsed
        raw = msg.get_all(name, failobj=[])
        value = raw[0] if raw else None
    return "" if value is None else " ".join(str(value).split())


def _key(address: str) -> str:
    try:
        return normalize_address(address)
    except InvalidAddress:
        return address.strip().strip("<>").lower()


def parse_id(captured_id: str) -> tuple[int, int] | None:
    mailbox, sep, uid = captured_id.partition("-")
    if not sep or not mailbox.isdigit() or not uid.isdigit():
        return None
    return int(mailbox), int(uid)


class CaptureBox:
    """Captured mail (module docstring) and the fault settings of capture mode."""

    def __init__(
        self,
        store: Store,
        *,
        account: str = DEFAULT_ACCOUNT,
        imap: ImapMode = "catch-all",
        data_dir: Path | None = None,
        faults: FaultSettings | None = None,
    ) -> None:
        if imap not in IMAP_MODES:
            raise ValueError(f"capture imap mode must be one of {IMAP_MODES}, got {imap!r}")
        self.store = store
        self.account = normalize_address(account)
        self.imap: ImapMode = imap
        self._faults = faults or FaultSettings()
        self._fault_file = FaultFile(data_dir / FAULTS_FILE) if data_dir is not None else None
        self._heads: dict[str, _Head] = {}
        self._subscriptions: set[CaptureSubscription] = set()

    # ----- the account ------------------------------------------------------------------------
    def ensure_account(self, password: str) -> None:
        """Create the account (and its domain) if missing, or set its password if it changed.
        Blocking (argon2id, ~150 ms): the server runs it in a worker thread at start."""
        from mailwright.auth.passwords import hash_password, verify_password

        domain = self.account.rpartition("@")[2]
        with contextlib.suppress(AlreadyExists):
            self.store.add_domain(domain)
        found = self.store.get_credentials(self.account)
        if found is None:
            with contextlib.suppress(AlreadyExists):
                self.store.add_account(self.account, hash_password(password), "keep")
        elif not verify_password(found[1], password):
            self.store.set_password_hash(self.account, hash_password(password))

    def account_id(self) -> int | None:
        account = self.store.get_account(self.account)
        return account.id if account is not None else None

    def _mailboxes(self) -> list[MailboxInfo]:
        """INBOX and every mailbox without a special use (the per-domain ones)."""
        account_id = self.account_id()
        if account_id is None:
            return []
        return [
            m for m in self.store.list_mailboxes(account_id)
            if m.name == INBOX or m.special_use is None
        ]

    # ----- capturing (delivery/deliverer.py) ------------------------------------------------------
    async def capture(
        self, message: StagedMessage, envelope: Envelope, rcpts: Sequence[str]
    ) -> None:
        """Keep `message` for `rcpts`: one copy (catch-all), or one per recipient domain,
        each with the envelope fields. Durable on return. `message` itself is left to the
        caller. Raises NotFound (no capture account), StorageUnavailable."""
        if not rcpts:
            return
        if message.size > INLINE_READ_MAX:
            raw = await asyncio.to_thread(message.read)
        else:
            raw = message.read()
        account_id = self.account_id()
        if account_id is None:
            raise NotFound(f"capture account {self.account} does not exist")
        groups: dict[str, list[str]] = {}
        for rcpt in rcpts:
            mailbox = INBOX if self.imap == "catch-all" else _key(rcpt).rpartition("@")[2]
            groups.setdefault(mailbox or INBOX, []).append(rcpt)
        for mailbox, addresses in groups.items():
            staged = self.store.stage()
            try:
                staged.write(envelope_fields(envelope.mail_from, addresses))
                staged.write(raw)
                if mailbox == INBOX:
                    await self.store.deliver(staged, envelope, [account_id], [])
                else:
                    await self._ensure_mailbox(account_id, mailbox)
                    await self.store.append(account_id, mailbox, staged)
            except BaseException:
                staged.abort()
                raise

    async def _ensure_mailbox(self, account_id: int, name: str) -> None:
        info = self.store.mailbox(account_id, name)
        if info is None:
            try:
                info = await self.store.create_mailbox(account_id, name)
            except AlreadyExists:
                info = self.store.mailbox(account_id, name)
        if info is not None:
            # Before the append commits, so that no subscriber misses it.
            for sub in self._subscriptions:
                sub._watch(info.id)

    # ----- reading ----------------------------------------------------------------------------
    async def list(
        self, *, to: str | None = None, query: str | None = None, limit: int = 200,
        offset: int = 0,
    ) -> list[Captured]:
        """Newest first; `to` matches an envelope recipient, `query` is a case-insensitive
        substring of subject, From, To, sender or recipients."""
        return await asyncio.to_thread(self._list, to, query, limit, offset)

    def _list(
        self, to: str | None, query: str | None, limit: int, offset: int
    ) -> builtins.list[Captured]:
        # (`list` is a method here: annotations in this class say builtins.list.)
        rows: builtins.list[tuple[MailboxInfo, MessageRecord]] = []
        for mailbox in self._mailboxes():
            rows.extend((mailbox, record) for record in self.store.mailbox_messages(mailbox.id))
        rows.sort(key=lambda r: (r[1].internal_date, r[0].id, r[1].uid), reverse=True)
        wanted = _key(to) if to else None
        needle = query.casefold() if query else None
        found: list[Captured] = []
        skip = max(0, offset)
        for mailbox, record in rows:
            captured = self._make(mailbox, record)
            if wanted is not None and all(_key(r) != wanted for r in captured.rcpts):
                continue
            if needle is not None and not _matches(captured, needle):
                continue
            if skip:
                skip -= 1
                continue
            if len(found) >= limit:
                break
            found.append(captured)
        return found

    def _make(self, mailbox: MailboxInfo, record: MessageRecord) -> Captured:
        head = self._head(record.blob)
        return Captured(
            id=f"{mailbox.id}-{record.uid}", mailbox=mailbox.name, mail_from=head.mail_from,
            rcpts=head.rcpts, subject=head.subject, from_header=head.from_header,
            to_header=head.to_header, date=float(record.internal_date), size=record.size,
        )

    def _head(self, blob: str) -> _Head:
        """Blocking file read on a cache miss: call in a worker thread."""
        head = self._heads.get(blob)
        if head is None:
            from mailwright.queue.notify import read_head

            try:
                head = parse_head(read_head(self.store.blob_path(blob), _HEAD_LIMIT))
            except OSError:  # expunged and collected meanwhile
                return _NO_HEAD
            if len(self._heads) >= HEAD_CACHE_SIZE:
                # Worker threads share the cache: another may have evicted the same key.
                with contextlib.suppress(RuntimeError, StopIteration, KeyError):
                    self._heads.pop(next(iter(self._heads)))
            self._heads[blob] = head
        return head

    def _find(self, captured_id: str) -> tuple[MailboxInfo, MessageRecord] | None:
        parsed = parse_id(captured_id)
        if parsed is None:
            return None
        mailbox_id, uid = parsed
        for mailbox in self._mailboxes():
            if mailbox.id == mailbox_id:
                for record in self.store.mailbox_messages(mailbox_id):
                    if record.uid == uid:
                        return mailbox, record
        return None

    async def get(self, id: str) -> Captured | None:
        def run() -> Captured | None:
            found = self._find(id)
            return self._make(*found) if found is not None else None

        return await asyncio.to_thread(run)

    async def raw(self, id: str) -> bytes | None:
        """The stored bytes, with our envelope fields and trace headers."""
        def run() -> bytes | None:
            found = self._find(id)
            if found is None:
                return None
            try:
                return self.store.blob_path(found[1].blob).read_bytes()
            except OSError:
                return None

        return await asyncio.to_thread(run)

    # ----- removing ---------------------------------------------------------------------------
    async def delete(self, id: str) -> bool:
        found = await asyncio.to_thread(self._find, id)
        if found is None:
            return False
        mailbox, record = found
        return bool(await self._expunge(mailbox.id, [record.uid]))

    async def clear(self) -> int:
        """Remove every captured message (all capture mailboxes); returns how many."""
        def uids() -> list[tuple[int, list[int]]]:
            return [
                (m.id, [r.uid for r in self.store.mailbox_messages(m.id)])
                for m in self._mailboxes()
            ]

        count = 0
        for mailbox_id, wanted in await asyncio.to_thread(uids):
            if wanted:
                count += len(await self._expunge(mailbox_id, wanted))
        return count

    async def _expunge(
        self, mailbox_id: int, uids: builtins.list[int]
    ) -> builtins.list[int]:
        # The store expunges \Deleted messages only (IMAP's model): flag, then expunge those.
        try:
            await self.store.store_flags(mailbox_id, uids, "add", ["\\Deleted"])
            return await self.store.expunge(mailbox_id, uids)
        except NotFound:  # the mailbox went meanwhile
            return []

    # ----- new mail ---------------------------------------------------------------------------
    def subscribe(self) -> CaptureSubscription:
        """New captured mail as it is committed (the store's change bus). On the store's loop."""
        sub = CaptureSubscription(self)
        for mailbox in self._mailboxes():
            sub._watch(mailbox.id)
        self._subscriptions.add(sub)
        return sub

    async def _captured(self, mailbox_id: int, record: MessageRecord) -> Captured | None:
        def run() -> Captured | None:
            for mailbox in self._mailboxes():
                if mailbox.id == mailbox_id:
                    return self._make(mailbox, record)
            return None

        return await asyncio.to_thread(run)

    # ----- faults -----------------------------------------------------------------------------
    @property
    def faults(self) -> FaultSettings:
        """The settings in effect: `<data>/capture-faults.json` when there is one (re-read when
        it changes: `mailwright captured faults` writes it), else the last ones set here."""
        if self._fault_file is None:
            return self._faults
        return self._fault_file.current(self._faults)

    def set_faults(self, faults: FaultSettings) -> None:
        """Effective at once for new commands; written to the data directory's file so that
        the CLI sees them (and can change them)."""
        if not isinstance(faults, FaultSettings):
            raise TypeError("set_faults() takes a FaultSettings")
        self._faults = faults
        if self._fault_file is not None:
            self._fault_file.save(faults)


def _matches(captured: Captured, needle: str) -> bool:
    fields = (captured.subject, captured.from_header, captured.to_header, captured.mail_from,
              *captured.rcpts)
    return any(needle in f.casefold() for f in fields)


class CaptureSubscription:
    """An async iterator of newly captured mail; `close()` ends it (and any waiting `async
    for`). Made by `CaptureBox.subscribe()`; use on the loop that made it."""

    def __init__(self, box: CaptureBox) -> None:
        self._box = box
        self._subs: dict[int, Subscription] = {}
        self._pending: deque[tuple[int, MessageRecord]] = deque()
        self._ready = asyncio.Event()
        self.closed = False

    def _watch(self, mailbox_id: int) -> None:
        if self.closed or mailbox_id in self._subs:
            return
        sub = self._box.store.changes.subscribe(mailbox_id)
        sub.listener = self._on_changes
        self._subs[mailbox_id] = sub

    def _on_changes(self, events: list[Change]) -> bool:
        for event in events:
            if isinstance(event, Appended):
                self._pending.extend((event.mailbox_id, r) for r in event.records)
        if self._pending:
            self._ready.set()
        return True  # handled: nothing queued in the store's subscription

    def __aiter__(self) -> CaptureSubscription:
        return self

    async def __anext__(self) -> Captured:
        while not self.closed:
            if self._pending:
                mailbox_id, record = self._pending.popleft()
                captured = await self._box._captured(mailbox_id, record)
                if captured is not None:
                    return captured
                continue
            self._ready.clear()
            await self._ready.wait()
        raise StopAsyncIteration

    async def next(self) -> Captured:
        """The next captured message (wrap in `asyncio.timeout` to bound the wait);
        StopAsyncIteration once closed."""
        return await self.__anext__()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            for sub in self._subs.values():
                sub.close()
            self._subs.clear()
            self._pending.clear()
            self._box._subscriptions.discard(self)
            self._ready.set()

    def __enter__(self) -> CaptureSubscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
