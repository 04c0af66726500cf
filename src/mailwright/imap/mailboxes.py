"""Commands about mailboxes rather than messages: SELECT, EXAMINE, CREATE, DELETE, RENAME,
SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, NAMESPACE, STATUS (RFC 9051 6.3, RFC 3501 6.3, RFC 5258,
RFC 5819, RFC 6154, RFC 2342).

Store errors map to response codes (RFC 5530): NotFound -> NONEXISTENT, AlreadyExists ->
ALREADYEXISTS, InvalidName/Forbidden -> CANNOT, InUse -> HASCHILDREN (the only InUse is
DELETE of a parent, RFC 9051 6.3.5).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Final

from mailwright.imap import commands as c
from mailwright.imap import responses as r
from mailwright.imap.base import SessionBase
from mailwright.imap.listing import Entry, canonical_name, list_mailboxes, lsub_mailboxes
from mailwright.imap.selected import SelectedMailbox
from mailwright.imap.state import State
from mailwright.store.api import (
    SYSTEM_FLAGS,
    AlreadyExists,
    Forbidden,
    InUse,
    InvalidName,
    MailboxInfo,
    MailboxStatus,
    NotFound,
    StoreError,
)

_STATUS_ITEMS: Final = frozenset({
    "MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "SIZE", "DELETED", "APPENDLIMIT",
    "HIGHESTMODSEQ",
})


class MailboxCommands(SessionBase):
    async def dispatch(self, cmd: c.Command) -> bool:
        match cmd:
            case c.Select(tag, name):
                return await self._select(tag, name, read_only=False)
            case c.Examine(tag, name):
                return await self._select(tag, name, read_only=True)
            case c.Create():
                return await self._create(cmd)
            case c.Delete(tag, name):
                return await self._delete(tag, name)
            case c.Rename(tag, old, new):
                return await self._rename(tag, old, new)
            case c.Subscribe(tag, name):
                return await self._mailbox_op(tag, "SUBSCRIBE", self.store.set_subscribed(
                    self.require_account().id, name, True))
            case c.Unsubscribe(tag, name):
                return await self._mailbox_op(tag, "UNSUBSCRIBE", self.store.set_subscribed(
                    self.require_account().id, name, False))
            case c.List():
                return await self._list(cmd)
            case c.Lsub(tag, reference, pattern):
                return await self._lsub(tag, reference, pattern)
            case c.Namespace(tag):
                self.conn.write(r.namespace(utf8=self.utf8))
                return await self._done(tag, "NAMESPACE completed")
            case c.Status(tag, name, items):
                return await self._status(tag, name, items)
            case _:
                return await super().dispatch(cmd)

    async def _done(self, tag: str, text: str) -> bool:
        await self.send_updates(allow_expunge=True)
        return self.ok(tag, text)

    async def _mailbox_op(self, tag: str, verb: str, op: Awaitable[object]) -> bool:
        try:
            await op
        except StoreError as exc:
            return self._store_error(tag, exc)
        return await self._done(tag, f"{verb} completed")

    def _store_error(self, tag: str, exc: StoreError) -> bool:
        text = str(exc) or type(exc).__name__
        match exc:
            case NotFound():
                return self.no(tag, "Mailbox does not exist", r.NONEXISTENT)
            case AlreadyExists():
                return self.no(tag, "Mailbox already exists", r.ALREADYEXISTS)
            case InUse():
                # RFC 9051 6.3.5: "SHOULD include the HASCHILDREN response code".
                return self.no(tag, "Mailbox has inferior mailboxes; delete them first",
                               r.HASCHILDREN)
            case InvalidName() | Forbidden():
                return self.no(tag, text, r.CANNOT)
            case _:
                raise exc

    # ----- SELECT / EXAMINE -----------------------------------------------------------------------
    async def _select(self, tag: str, name: str, read_only: bool) -> bool:
        account = self.require_account()
        if self.selected is not None:
            self.unselect()
            # RFC 9051 6.3.2 / RFC 7162 3.2.11: the old mailbox is closed before the new one opens.
            self.conn.write(r.untagged_status("OK", "Previous mailbox closed", r.CLOSED))
        box = await asyncio.to_thread(self.store.mailbox, account.id, name)
        if box is None:
            return self.no(tag, "Mailbox does not exist", r.NONEXISTENT)
        # Subscribe before reading, so that nothing committed in between is missed; the view
        # ignores events it already holds.
        sub = self.store.changes.subscribe(box.id)
        try:
            records = await asyncio.to_thread(self.store.mailbox_messages, box.id)
            fresh = await asyncio.to_thread(self.store.mailbox, account.id, name)
        except BaseException:
            sub.close()
            raise
        if fresh is None or fresh.id != box.id:
            sub.close()
            return self.no(tag, "Mailbox does not exist", r.NONEXISTENT)
        view = SelectedMailbox(box.id, box.name, records, read_only, box.uidvalidity)
        self.selected, self.subscription = view, sub
        keywords = sorted({f for m in records for f in m.flags if not f.startswith("\\")})
        flags = [*SYSTEM_FLAGS, *keywords]
        write = self.conn.write
        write(r.flags(flags))
        write(r.exists(view.exists))
        if not self.rev2:
            write(r.recent(0))  # RFC 3501 7.3.2 requires it; we keep no \Recent
            unseen = next((i + 1 for i, m in enumerate(records) if "\\Seen" not in m.flags), None)
            if unseen is not None:
                write(r.untagged_status("OK", "First unseen", r.code_unseen(unseen)))
        write(r.untagged_status("OK", "UIDs valid", r.code_uidvalidity(box.uidvalidity)))
        uidnext = max(fresh.uidnext, view.last_uid + 1)
        write(r.untagged_status("OK", "Predicted next UID", r.code_uidnext(uidnext)))
        permanent = r.code_permanentflags(flags if not read_only else (), not read_only)
        write(r.untagged_status("OK", "Flags permitted" if not read_only else "Read-only",
                                permanent))
        if self.rev2:  # RFC 9051 6.3.2: the mailbox's LIST response
            write(r.list_((), box.name, utf8=self.utf8))
        mode = r.READ_ONLY if read_only else r.READ_WRITE
        verb = "EXAMINE" if read_only else "SELECT"
        return self.ok(tag, f"{verb} completed", mode)

    # ----- CREATE / RENAME ------------------------------------------------------------------------
    async def _create(self, cmd: c.Create) -> bool:
        if len(cmd.special_use) > 1:
            # RFC 6154 3: one special use per mailbox in this server.
            return self.no(cmd.tag, "Only one special-use attribute per mailbox",
                           r.Code("USEATTR"))
        use = cmd.special_use[0] if cmd.special_use else None
        if use is not None and use not in _SPECIAL_USES:
            return self.no(cmd.tag, f"Unsupported special use {use[:40]}", r.Code("USEATTR"))
        if _has_wildcard(cmd.mailbox):
            return self.no(cmd.tag, _WILDCARD_TEXT, r.CANNOT)
        return await self._mailbox_op(cmd.tag, "CREATE", self.store.create_mailbox(
            self.require_account().id, cmd.mailbox, use))

    async def _delete(self, tag: str, name: str) -> bool:
        account = self.require_account()
        view = self.selected
        # By id, not by name: the view's name is stale once another session renamed it.
        target = await asyncio.to_thread(self.store.mailbox, account.id, name)
        try:
            await self.store.delete_mailbox(account.id, name)
        except StoreError as exc:
            return self._store_error(tag, exc)
        if view is not None and target is not None and target.id == view.mailbox_id:
            # We deleted our own selected mailbox: close it, as a failed SELECT would.
            self.unselect()
            self.state = State.AUTHENTICATED
            self.conn.write(r.untagged_status("OK", "Selected mailbox deleted", r.CLOSED))
        return await self._done(tag, "DELETE completed")

    async def _rename(self, tag: str, old: str, new: str) -> bool:
        if _has_wildcard(new):
            return self.no(tag, _WILDCARD_TEXT, r.CANNOT)
        try:
            box = await self.store.rename_mailbox(self.require_account().id, old, new)
        except StoreError as exc:
            return self._store_error(tag, exc)
        view = self.selected
        if view is not None:
            # The selected mailbox itself, or one of its parents, changed name.
            prefix = canonical_name(old) + "/"
            if view.mailbox_id == box.id:
                view.name = box.name
            elif view.name.startswith(prefix):
                view.name = box.name + "/" + view.name[len(prefix):]
        return await self._done(tag, "RENAME completed")

    # ----- LIST / LSUB / STATUS -------------------------------------------------------------------
    async def _list(self, cmd: c.List) -> bool:
        account = self.require_account()
        boxes, subs = await asyncio.to_thread(self._list_inputs, account.id)
        try:
            # RETURN (STATUS ...) alone makes the command extended too (RFC 5258 1, 5819 2).
            returns = (*cmd.return_options, *(("STATUS",) if cmd.return_status is not None
                                              else ()))
            entries = list_mailboxes(boxes, subs, cmd.reference, cmd.patterns, cmd.selection,
                                     returns, imap4rev2=self.rev2)
        except ValueError as exc:
            return self.bad(cmd.tag, str(exc))
        for entry in entries:
            self.conn.write(self._list_line(entry, "LIST"))
            if cmd.return_status is not None and entry.exists and entry.name and (
                "\\Noselect" not in entry.attributes
            ):
                st = await asyncio.to_thread(self.store.mailbox_status, account.id, entry.name)
                if st is not None:
                    self.conn.write(r.status(entry.name, self._status_items(
                        st, cmd.return_status), self.utf8))
        return await self._done(cmd.tag, "LIST completed")

    def _list_inputs(self, account_id: int) -> tuple[list[MailboxInfo], list[str]]:
        return list(self.store.list_mailboxes(account_id)), self.store.subscriptions(account_id)

    def _list_line(self, entry: Entry, verb: str) -> bytes:
        extended = b'("CHILDINFO" ("SUBSCRIBED"))' if entry.child_info else b""
        return r.list_(entry.attributes, entry.name, utf8=self.utf8, extended=extended,
                       verb="LSUB" if verb == "LSUB" else "LIST")

    async def _lsub(self, tag: str, reference: str, pattern: str) -> bool:
        account = self.require_account()
        boxes, subs = await asyncio.to_thread(self._list_inputs, account.id)
        for entry in lsub_mailboxes(boxes, subs, reference, pattern):
            self.conn.write(self._list_line(entry, "LSUB"))
        return await self._done(tag, "LSUB completed")

    async def _status(self, tag: str, name: str, items: Sequence[str]) -> bool:
        unknown = [i for i in items if i not in _STATUS_ITEMS]
        if unknown:
            return self.bad(tag, f"Unknown STATUS item {unknown[0][:40]}")
        st = await asyncio.to_thread(self.store.mailbox_status, self.require_account().id, name)
        if st is None:
            return self.no(tag, "Mailbox does not exist", r.NONEXISTENT)
        # The name as LIST spells it ("inbox/x" is "INBOX/x"), so clients can match the two.
        self.conn.write(r.status(canonical_name(name), self._status_items(st, items), self.utf8))
        return await self._done(tag, "STATUS completed")

    def _status_items(self, st: MailboxStatus, items: Sequence[str]) -> list[tuple[str, int]]:
        values = {
            "MESSAGES": st.messages, "RECENT": st.recent, "UIDNEXT": st.uidnext,
            "UIDVALIDITY": st.uidvalidity, "UNSEEN": st.unseen, "SIZE": st.size,
            "DELETED": st.deleted, "APPENDLIMIT": self.config.max_message_size,
            "HIGHESTMODSEQ": st.highestmodseq,
        }
        return [(i, values[i]) for i in items if i in values]


# RFC 6154 2 (and RFC 8457 \Important is not offered).
_SPECIAL_USES: Final = frozenset({
    "\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash",
})

# RFC 9051 5.1: "%" and "*" are LIST wildcards, so a name holding one could not be listed on its
# own. RFC 3501 5.1 discourages them; Dovecot refuses them in new names, and so do we.
_WILDCARD_TEXT: Final = "Mailbox names cannot contain the LIST wildcards % and *"


def _has_wildcard(name: str) -> bool:
    return "%" in name or "*" in name
