"""Commands on the selected mailbox's messages: FETCH, SEARCH, STORE, COPY, MOVE, EXPUNGE,
UID EXPUNGE, CLOSE, UNSELECT, and their UID forms (RFC 9051 6.4, RFC 4315, RFC 6851, RFC 3691,
RFC 4731, RFC 5182, RFC 3516).

Message data comes from the store's records (flags, dates, sizes) and `MessageInfo` (ENVELOPE,
BODYSTRUCTURE, part offsets) computed at delivery; bodies are read as byte ranges of the message
file.

Other sessions: each FETCH, STORE, SEARCH, COPY and MOVE first folds the changes other sessions
committed into the view without telling the client (`_take_in_changes`), so it answers from
the current state; the untagged updates follow at its end as far as RFC 9051 7.5.2 allows
(EXPUNGE not after FETCH, STORE, SEARCH). A message expunged elsewhere keeps its sequence
number until then (RFC 2180 4.1): FETCH answers from what is still there (flags; the body while
its file exists) and ends with `NO [EXPUNGEISSUED]` for what is gone; UID FETCH, which may
carry the EXPUNGE at once, leaves it out; STORE, SEARCH and COPY leave it out. A command that
finds the selected mailbox deleted ends the session with BYE, as any other command would.

Speed (issue 4, 10,000 messages): FETCH of record items (FLAGS, UID, ...) and of ENVELOPE,
BODY, BODYSTRUCTURE uses the formatters of `fetch.py` instead of the general `fetch_items`;
responses are written in 64 KiB chunks; SEARCH compiles its key once (`search_eval`) and lets
the full-text index rule out messages before a header key reads their header.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from mailwright.imap import commands as c
from mailwright.imap import responses as r
from mailwright.imap.base import SessionBase
from mailwright.imap.fetch import (
    UnknownCte,
    fetch_items,
    flag_bytes,
    info_formatter,
    record_formatter,
)
from mailwright.imap.search import And, HeaderKey, Not, Or, SearchKey, TextKey
from mailwright.imap.search_eval import SearchContext, esearch_result, search
from mailwright.imap.selected import SelectedMailbox
from mailwright.imap.sequence import SequenceSet
from mailwright.message import MessageInfo
from mailwright.store.api import (
    SYSTEM_FLAGS,
    FlagChange,
    FlagMode,
    MessageRecord,
    NotFound,
    Store,
    StoreError,
    TextField,
)

# Messages read whole into memory for section fetches; bigger ones are read by range.
_WHOLE_READ_LIMIT: Final = 256 * 1024
# A FETCH of this many messages runs its file reads in a worker thread, in batches, so that a
# FETCH 1:* of bodies never stalls the other sessions on the event loop.
_FETCH_BATCH: Final = 200
# Untagged responses are written in chunks of about this size (see `_write_lines`).
_WRITE_CHUNK: Final = 64 * 1024
# Below this size a message's whole header is in the full-text index's header column, whose
# budget is 256 KiB of text (store/textindex.py MAX_INDEX_HEADER): its answer for a header
# key's value can be trusted to be a superset.
_INDEX_HEADER_TRUSTED: Final = 128 * 1024
_MODES: Final[dict[str, FlagMode]] = {"+": "add", "-": "remove", "": "replace"}
_CHARSETS: Final = frozenset({"UTF-8", "US-ASCII"})


class MessageCommands(SessionBase):
    async def dispatch(self, cmd: c.Command) -> bool:
        match cmd:
            case c.Fetch():
                return await self._fetch(cmd)
            case c.Search():
                return await self._search(cmd)
            case c.Store():
                return await self._store(cmd)
            case c.Copy(tag, seq, mailbox, uid):
                return await self._copy(tag, seq, mailbox, uid, move=False)
            case c.Move(tag, seq, mailbox, uid):
                return await self._copy(tag, seq, mailbox, uid, move=True)
            case c.Expunge(tag, uid_set):
                return await self._expunge(tag, uid_set)
            case c.Close(tag):
                return await self._close(tag, expunge=not self.require_selected().read_only)
            case c.Unselect(tag):
                return await self._close(tag, expunge=False)
            case _:
                return await super().dispatch(cmd)

    def _uids(self, seq: SequenceSet, uid: bool) -> list[int] | None:
        """The UIDs `seq` names, ascending; None when it names a message sequence number
        above EXISTS, which the caller answers with BAD (RFC 9051 9, seq-number)."""
        view = self.require_selected()
        if not uid and not seq.saved and view.beyond_exists(seq):
            return None
        return view.resolve(seq, uid, self.saved_result)

    def _bad_sequence(self, tag: str) -> bool:
        return self.bad(tag, "Invalid message sequence number (above EXISTS)")

    async def _finish(self, tag: str, text: str, uid_command: bool,
                      code: r.Code | None = None) -> bool:
        await self.send_updates(allow_expunge=uid_command)
        return self.ok(tag, text, code)

    async def _take_in_changes(self) -> None:
        """Fold what other sessions committed into the view without telling the client yet:
        the command then answers from the current state (flags; which messages are gone,
        RFC 2180 4.1) while sequence numbers stay as the client knows them. The untagged
        updates go out at the command's end, as far as RFC 9051 7.5.2 allows."""
        if self.subscription is not None:
            pending = self.subscription.pending()
            if pending:
                await self.apply_changes(pending)

    async def _write_lines(self, lines: Iterable[bytes]) -> None:
        """Write untagged responses in chunks of about `_WRITE_CHUNK` octets, waiting for a
        slow reader between chunks (one transport write per message costs more than the
        message's formatting)."""
        out: list[bytes] = []
        size = 0
        for line in lines:
            out.append(line)
            size += len(line)
            if size >= _WRITE_CHUNK:
                self.conn.write(b"".join(out))
                out.clear()
                size = 0
                await self.flush()
        if out:
            self.conn.write(b"".join(out))
            await self.flush()

    async def _selected_gone(self, tag: str) -> bool:
        """The store says the selected mailbox does not exist: another session deleted it.
        Its MailboxDeleted event was published before our write ran, so `send_updates` ends
        the session with BYE, as at any other command (base.send_updates); NO otherwise."""
        await self.send_updates(allow_expunge=True)
        return self.no(tag, "Mailbox does not exist", r.NONEXISTENT)

    # ----- FETCH --------------------------------------------------------------------------------
    async def _fetch(self, cmd: c.Fetch) -> bool:
        view = self.require_selected()
        uids = self._uids(cmd.sequence, cmd.uid)
        if uids is None:
            return self._bad_sequence(cmd.tag)
        await self._take_in_changes()
        if cmd.uid:  # a UID FETCH may tell of the expunge at once: skip what is gone
            uids = [u for u in uids if not view.is_gone(u)]
        if any(isinstance(i, c.FetchAttr) and i.name == "FLAGS" for i in cmd.items):
            view.flags_sent(uids)
        fmt = record_formatter(cmd.items, uid=cmd.uid)
        if fmt is not None:  # FLAGS, UID, sizes, dates: from the records, on the loop
            await self._write_lines(b"* %d FETCH (%s)\r\n" % (n, fmt(rec))
                                    for n, _, rec in view.numbered(uids))
            return await self._finish(cmd.tag, "FETCH completed", cmd.uid)
        seen: list[int] = []
        missing = False
        unknown_cte: UnknownCte | None = None
        for start in range(0, len(uids), _FETCH_BATCH):
            batch = list(view.numbered(uids[start:start + _FETCH_BATCH]))
            try:
                lines = await asyncio.to_thread(_fetch_batch, self.store, batch, cmd,
                                                view.read_only, self.utf8)
            except UnknownCte as exc:
                unknown_cte = exc
                break
            out: list[bytes] = []
            for (_, uid, _), line in zip(batch, lines, strict=True):
                if line is None:
                    missing = True
                    continue
                data, sets_seen = line
                out.append(data)
                if sets_seen:
                    seen.append(uid)
            await self._write_lines(out)
        if seen:  # what the responses said (FLAGS with \Seen) is made true
            view.flags_sent(seen)
            try:
                changes = await self.store.store_flags(view.mailbox_id, seen, "add",
                                                       ["\\Seen"])
            except NotFound:
                return await self._selected_gone(cmd.tag)
            self._apply_own(view, changes)
        if unknown_cte is not None:  # RFC 3516 4.2: "MUST fail the request"
            await self.send_updates(allow_expunge=cmd.uid)
            return self.no(cmd.tag, str(unknown_cte), r.UNKNOWN_CTE)
        if missing:
            await self.send_updates(allow_expunge=cmd.uid)
            return self.no(cmd.tag, "Some messages were expunged meanwhile", r.EXPUNGEISSUED)
        return await self._finish(cmd.tag, "FETCH completed", cmd.uid)

    def _apply_own(self, view: SelectedMailbox, changes: Sequence[FlagChange]) -> None:
        """Our own STORE is committed: the view holds the new flags (so the change bus's echo
        of it is not sent again)."""
        for change in changes:
            rec = view.records.get(change.uid)
            if rec is not None:
                view.set_record(MessageRecord(rec.uid, rec.blob, rec.size, rec.internal_date,
                                              change.flags, change.modseq))

    # ----- SEARCH -------------------------------------------------------------------------------
    async def _search(self, cmd: c.Search) -> bool:
        opts = {o.upper() for o in cmd.return_options or ()}
        if cmd.charset is not None and cmd.charset not in _CHARSETS:
            if "SAVE" in opts:  # RFC 5182 2.1: a failed SEARCH with SAVE empties "$"
                self.saved_result = frozenset()
            return self.no(cmd.tag, "Unsupported charset",
                           r.Code("BADCHARSET", b"(UTF-8 US-ASCII)"))
        view = self.require_selected()
        await self._take_in_changes()
        found: dict[tuple[str, str], frozenset[int]] = {}
        for field, needle in _index_needles(cmd.key):
            found[(field, needle)] = await asyncio.to_thread(
                self.store.search_text, view.mailbox_id, field, needle)
        msns = [(i + 1, u) for i, u in enumerate(view.uids) if not view.is_gone(u)]
        records = [(n, view.records[u]) for n, u in msns]
        result = await asyncio.to_thread(
            _evaluate, self.store, cmd, records, view, found, self.saved_result)
        if "SAVE" in opts:  # RFC 5182 2.1: keep the result as UIDs for "$"
            saved = _saved(result, opts)
            self.saved_result = frozenset(u if cmd.uid else view.uids[u - 1] for u in saved)
        if cmd.return_options is None and not self.rev2:
            self.conn.write(r.search(result))
        elif opts != {"SAVE"}:  # SAVE alone returns no ESEARCH data (RFC 5182 2.1)
            res = esearch_result(result, opts - {"SAVE"})
            self.conn.write(r.esearch(cmd.tag, uid=cmd.uid, min_=res.min, max_=res.max,
                                      count=res.count,
                                      all_=result if res.all is not None else None))
        return await self._finish(cmd.tag, "SEARCH completed", cmd.uid)

    # ----- STORE --------------------------------------------------------------------------------
    async def _store(self, cmd: c.Store) -> bool:
        view = self.require_selected()
        if any(f.lower() == "\\recent" for f in cmd.flags):
            return self.bad(cmd.tag, "\\Recent cannot be stored")
        if any(f.startswith("\\") and f not in SYSTEM_FLAGS for f in cmd.flags):
            # RFC 9051 2.3.2: a flag-extension is reserved for future RFCs (Dovecot: BAD
            # "Invalid system flag"); \\* is a PERMANENTFLAGS marker, not a flag.
            return self.bad(cmd.tag, "Invalid system flag")
        named = self._uids(cmd.sequence, cmd.uid)
        if named is None:
            return self._bad_sequence(cmd.tag)
        await self._take_in_changes()
        uids = [u for u in named if not view.is_gone(u)]
        if uids:
            try:
                changes = await self.store.store_flags(view.mailbox_id, uids, _MODES[cmd.mode],
                                                       cmd.flags)
            except NotFound:
                return await self._selected_gone(cmd.tag)
            self._apply_own(view, changes)
            for line in view.flag_list_update():  # a new keyword: FLAGS before the FETCHes
                self.conn.write(line)
        if not cmd.silent:  # every message named, changed or not (RFC 9051 6.4.6)
            view.flags_sent(uids)
            if cmd.uid:
                lines = (b"* %d FETCH (UID %d FLAGS %s)\r\n" % (n, uid, flag_bytes(rec.flags))
                         for n, uid, rec in view.numbered(uids))
            else:
                lines = (b"* %d FETCH (FLAGS %s)\r\n" % (n, flag_bytes(rec.flags))
                         for n, _, rec in view.numbered(uids))
            await self._write_lines(lines)
        return await self._finish(cmd.tag, "STORE completed", cmd.uid)

    # ----- COPY / MOVE --------------------------------------------------------------------------
    async def _copy(self, tag: str, seq: SequenceSet, mailbox: str, uid: bool,
                    move: bool) -> bool:
        view = self.require_selected()
        account = self.require_account()
        named = self._uids(seq, uid)
        if named is None:
            return self._bad_sequence(tag)
        target = await asyncio.to_thread(self.store.mailbox, account.id, mailbox)
        if target is None:
            return self.no(tag, "Mailbox does not exist", r.TRYCREATE)
        await self._take_in_changes()
        uids = [u for u in named if not view.is_gone(u)]
        verb = "MOVE" if move else "COPY"
        if not uids:
            return await self._finish(tag, f"{verb} completed (nothing to do)", uid)
        try:
            op = self.store.move if move else self.store.copy
            pairs = await op(view.mailbox_id, uids, target.id)
        except NotFound:  # the source (BYE from send_updates) or the target went meanwhile
            await self.send_updates(allow_expunge=True)
            return self.no(tag, "Mailbox does not exist", r.TRYCREATE)
        code = r.code_copyuid(target.uidvalidity, [a for a, _ in pairs], [b for _, b in pairs]) \
            if pairs else None
        if not move:
            return await self._finish(tag, f"{verb} completed", uid, code)
        # RFC 6851 4.3: COPYUID goes in an untagged OK before the EXPUNGE responses.
        if code is not None:
            self.conn.write(r.untagged_status("OK", "Moved", code))
        view.expunged(a for a, _ in pairs)
        return await self._finish(tag, "MOVE completed", True)

    # ----- EXPUNGE / CLOSE / UNSELECT -------------------------------------------------------------
    async def _expunge(self, tag: str, uid_set: SequenceSet | None) -> bool:
        view = self.require_selected()
        uids = None if uid_set is None else view.resolve(uid_set, True, self.saved_result)
        if uids is not None and not uids:
            return await self._finish(tag, "EXPUNGE completed", True)
        try:
            removed = await self.store.expunge(view.mailbox_id, uids)
        except NotFound:
            return await self._selected_gone(tag)
        view.expunged(removed)
        return await self._finish(tag, "EXPUNGE completed", True)

    async def _close(self, tag: str, expunge: bool) -> bool:
        view = self.require_selected()
        if expunge:
            with contextlib.suppress(StoreError):  # CLOSE never fails (RFC 9051 6.4.1)
                await self.store.expunge(view.mailbox_id)  # silently: no EXPUNGE responses
        self.unselect()
        verb = "CLOSE" if expunge or view.read_only else "UNSELECT"
        return self.ok(tag, f"{verb} completed")


# ----- helpers run in worker threads (no session state is changed there) --------------------------


def _fetch_batch(store: Store, batch: list[tuple[int, int, MessageRecord]], cmd: c.Fetch,
                 read_only: bool, utf8: bool) -> list[tuple[bytes, bool] | None]:
    """The responses for (msn, uid, record) triples; None for a message whose data is gone
    (expunged by another session and released meanwhile)."""
    infos = store.message_infos([rec.blob for _, _, rec in batch])
    out: list[tuple[bytes, bool] | None] = []
    fmt = info_formatter(cmd.items, uid=cmd.uid)
    if fmt is not None:  # ENVELOPE, BODYSTRUCTURE...: no file, no \Seen
        for n, _, rec in batch:
            info = infos.get(rec.blob)
            out.append(None if info is None else
                       (b"* %d FETCH (%s)\r\n" % (n, fmt(rec, info)), False))
        return out
    for n, _, rec in batch:
        info = infos.get(rec.blob)
        if info is None:
            out.append(None)
            continue
        reader = _RangeReader(store, rec)
        try:
            out.append(fetch_items(cmd.items, rec, info, reader.read, msn=n, uid=cmd.uid,
                                   read_only=read_only, utf8=utf8))
        except OSError:
            out.append(None)  # the file went with an expunge by another session
    return out


class _RangeReader:
    """Byte ranges of one message file: small files are read once, big ones by range."""

    __slots__ = ("blob", "data", "size", "store")

    def __init__(self, store: Store, rec: MessageRecord) -> None:
        # The path is found at the first read: most FETCHes (ENVELOPE, BODYSTRUCTURE) read
        # nothing, and building a Path costs as much as formatting their response.
        self.store = store
        self.blob = rec.blob
        self.size = rec.size
        self.data: bytes | None = None

    def read(self, start: int, end: int) -> bytes:
        path = self.store.blob_path(self.blob)
        if self.size <= _WHOLE_READ_LIMIT:
            if self.data is None:
                with open(path, "rb", buffering=0) as f:
                    self.data = f.readall()
            return self.data[start:end]
        with open(path, "rb") as f:
            f.seek(start)
            return f.read(max(0, end - start))


def _saved(result: list[int], opts: set[str]) -> list[int]:
    """What SAVE keeps (RFC 5182 2.1): with MIN and/or MAX as the only other options, just
    the message(s) they return; otherwise the whole result. `result` is ascending."""
    if not result or not opts - {"SAVE"} or opts - {"SAVE", "MIN", "MAX"}:
        return result
    picked = {result[0]} if "MIN" in opts else set()
    if "MAX" in opts:
        picked.add(result[-1])
    return sorted(picked)


def _index_needles(key: SearchKey) -> set[tuple[TextField, str]]:
    """The full-text index queries a search key needs: BODY and TEXT keys, and TEXT for the
    value of each header key (FROM, SUBJECT, HEADER ...), whose answer is a superset of the
    messages a header key can match (the index's header column holds every top-level field
    as "name: decoded value", store/textindex.py). NUL never reaches the index, so a needle
    with one is left to the evaluator."""
    match key:
        case TextKey(field="BODY", value=value):
            return {("BODY", value)}
        case TextKey(field="TEXT", value=value):
            return {("TEXT", value)}
        case TextKey(value=value) | HeaderKey(value=value) if value and "\x00" not in value:
            return {("TEXT", value)}
        case Not(key=inner):
            return _index_needles(inner)
        case Or(left=left, right=right):
            return _index_needles(left) | _index_needles(right)
        case And(keys=keys):
            out: set[tuple[TextField, str]] = set()
            for k in keys:
                out |= _index_needles(k)
            return out
        case _:
            return set()


def _evaluate(store: Store, cmd: c.Search, records: list[tuple[int, MessageRecord]],
              view: SelectedMailbox, found: dict[tuple[str, str], frozenset[int]],
              saved: frozenset[int]) -> list[int]:
    def info_of(rec: MessageRecord) -> MessageInfo:
        # Not kept here: each context asks once, and the store has its own LRU cache; a
        # dict of 10,000 infos (texts included) would outlive its use by the whole search.
        return store.message_info(rec.blob)

    def header_of(rec: MessageRecord) -> Callable[[], bytes]:
        def read() -> bytes:
            try:
                span = info_of(rec).parts[""].header()
                return _RangeReader(store, rec).read(*span) if span is not None else b""
            except (OSError, NotFound):
                return b""
        return read

    def text_match(field: str, needle: str, ctx: SearchContext) -> bool:
        return ctx.uid in found.get((field, needle), frozenset())

    def header_hint(needle: str, ctx: SearchContext) -> bool:
        hits = found.get(("TEXT", needle))
        # A huge header may be cut in the index (textindex.MAX_INDEX_HEADER); its message is
        # always looked at.
        return hits is None or ctx.uid in hits or ctx.size >= _INDEX_HEADER_TRUSTED

    last_msn, last_uid = len(view.uids), view.last_uid
    tz = datetime.UTC
    contexts = (
        SearchContext.from_record(rec, msn=n, info=functools.partial(info_of, rec),
                                  header=header_of(rec), last_msn=last_msn, last_uid=last_uid,
                                  tz=tz, saved=saved)
        for n, rec in records
    )
    return search(cmd.key, contexts, uid=cmd.uid, text_match=text_match,
                  header_hint=header_hint)
