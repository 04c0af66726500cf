"""What every part of an IMAP session shares: the connection, its state, reply helpers, and the
selected mailbox with its change-bus subscription.

`session.ImapSession` is `MailboxCommands` + `MessageCommands` + this base. Each command module
implements `dispatch()` for its commands and passes the rest on with `super().dispatch()`.
"""

from __future__ import annotations

import asyncio
from typing import Final, Literal

from mailwright.imap import commands as c
from mailwright.imap import responses as r
from mailwright.imap.parser import ImapParser
from mailwright.imap.selected import SelectedMailbox
from mailwright.imap.state import State
from mailwright.net.connection import Connection
from mailwright.services import Services
from mailwright.store.api import Account
from mailwright.store.changes import (
    Appended,
    Change,
    Expunged,
    FlagsChanged,
    MailboxDeleted,
    Subscription,
)

# Unsent output above which a session waits for the client to read: bounds memory per slow
# reader (a FETCH 1:* of big bodies), as in pop3.session.
BACKLOG_LIMIT: Final = 64 * 1024


class Close(Exception):
    """End the session after the replies written so far are flushed."""


class SessionBase:
    def __init__(self, conn: Connection, services: Services, listener: str) -> None:
        self.conn = conn
        self.services = services
        self.listener = listener
        self.store = services.store
        self.config = services.config.imap
        self.hostname = services.config.hostname
        self.parser = ImapParser(max_append=self.config.max_message_size)
        self.state = State.NOT_AUTHENTICATED
        self.account: Account | None = None
        self.selected: SelectedMailbox | None = None
        self.subscription: Subscription | None = None
        self.utf8 = False
        self.enabled: set[str] = set()
        self.errors = 0  # client errors in a row; a command that succeeds resets it
        self.saved_result: frozenset[int] = frozenset()  # SEARCHRES "$", as UIDs (RFC 5182)

    @property
    def rev2(self) -> bool:
        """The client ENABLEd IMAP4rev2: answer as RFC 9051 says where it differs from 3501."""
        return "IMAP4REV2" in self.enabled

    # ----- replies ----------------------------------------------------------------------------
    def tagged(self, tag: str, status: Literal["OK", "NO", "BAD"], text: str,
               code: r.Code | None = None) -> None:
        self.conn.write(r.tagged(tag, status, text, code, self.utf8))

    def ok(self, tag: str, text: str, code: r.Code | None = None) -> bool:
        self.tagged(tag, "OK", text, code)
        return True

    def no(self, tag: str, text: str, code: r.Code | None = None) -> bool:
        self.tagged(tag, "NO", text, code)
        return False

    def bad(self, tag: str | None, text: str) -> bool:
        """A client error: BAD (untagged when no tag could be read), counted towards BYE."""
        if tag is None:
            self.conn.write(r.untagged_status("BAD", text))
        else:
            self.tagged(tag, "BAD", text)
        self.count_error()
        return False

    def count_error(self) -> None:
        """Count a client error; `max_errors` of them in a row end the session. In a row, as
        Dovecot counts its bad commands: a long-lived session (a week-old Thunderbird) that
        now and then sends something we refuse must not be cut off for its history."""
        self.errors += 1
        if self.errors >= self.config.max_errors:
            self.conn.write(r.untagged_status("BYE", "Too many errors"))
            raise Close

    async def flush(self, force: bool = False) -> None:
        """Back-pressure: wait while much output is unsent (see pop3.session._flush); with
        `force`, let the transport decide (drain) even below BACKLOG_LIMIT. With nothing unsent
        the transport cannot be paused, so drain would not wait: return before arming a
        timer. That is the common case, and it matters when one delivery wakes 1,000 sessions
        in IDLE, each of which flushes its "* n EXISTS"."""
        transport = self.conn.writer.transport
        unsent = transport.get_write_buffer_size()
        if unsent == 0 or (not force and unsent < BACKLOG_LIMIT):
            return
        try:
            async with asyncio.timeout(self.config.idle_timeout):
                await self.conn.drain()
        except TimeoutError:
            raise Close from None

    async def flush_quietly(self) -> None:
        try:
            async with asyncio.timeout(5):
                await self.conn.drain()
        except TimeoutError:
            pass

    def require_account(self) -> Account:
        assert self.account is not None, "the state table admits this only after login"
        return self.account

    def require_selected(self) -> SelectedMailbox:
        assert self.selected is not None, "the state table admits this only when selected"
        return self.selected

    # ----- the selected mailbox ---------------------------------------------------------------
    def unselect(self) -> None:
        if self.subscription is not None:
            self.subscription.close()
        self.subscription = None
        self.selected = None
        self.saved_result = frozenset()

    async def apply_changes(self, events: list[Change]) -> None:
        """Fold the change bus's events into the selected mailbox's view, in order. Reads
        nothing: the events carry the committed records and flags (store/changes.py), so one
        delivery that wakes 1,000 sessions on one mailbox costs no query. Async for the
        callers' sake (it never waits)."""
        view = self.selected
        if view is not None:
            _fold(view, events)

    def push_in_idle(self, events: list[Change]) -> bool:
        """A `Subscription.listener` for while the client IDLEs (RFC 2177): fold the events in
        and write the untagged responses at once, on the loop, as the IDLE loop's
        `apply_changes` + `send_updates(allow_expunge=True)` would, but without waking the
        session's task (measured: one delivery to 1,000 sessions in IDLE on one INBOX went
        from ~70-85 ms of the loop's CPU to ~20). Declines (returns False: the events queue
        for the IDLE loop) when the mailbox was deleted (the loop ends the session with BYE)
        or the client is slow to read (the loop waits for it: back-pressure)."""
        view = self.selected
        if (
            view is None
            or self.conn.writer.transport.get_write_buffer_size() >= BACKLOG_LIMIT
            or any(isinstance(event, MailboxDeleted) for event in events)
        ):
            return False
        _fold(view, events)
        for line in view.updates(allow_expunge=True):
            self.conn.write(line)
        return True

    async def send_updates(self, allow_expunge: bool) -> None:
        """Tell the client what changed in the selected mailbox, as far as allowed now."""
        if self.subscription is not None:
            pending = self.subscription.pending()
            if pending:
                await self.apply_changes(pending)
        view = self.selected
        if view is None:
            return
        if view.deleted:
            self.conn.write(r.untagged_status("BYE", "The selected mailbox was deleted"))
            raise Close
        for line in view.updates(allow_expunge):
            self.conn.write(line)
        await self.flush()

    async def dispatch(self, cmd: c.Command) -> bool:
        raise AssertionError(f"no handler for {type(cmd).__name__}")  # pragma: no cover


def _fold(view: SelectedMailbox, events: list[Change]) -> None:
    """The events into the view, in order (the view ignores what it already holds)."""
    for event in events:
        match event:
            case Appended(records=records):
                view.appended(records)
            case FlagsChanged(changes=changes):
                for change in changes:
                    view.flags_changed(change.uid, change.flags, change.modseq)
            case Expunged(uids=uids):
                view.expunged(uids)
            case MailboxDeleted():
                view.deleted = True
