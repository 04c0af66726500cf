"""The selected mailbox as one session sees it: message sequence numbers, cached flags, and the
changes other sessions made that this one has not told its client yet.

Pure: the session feeds it the store's records and the change bus's events, and asks it for
the untagged responses it may send now. The rules (RFC 9051 7.5.2 and 7.4.1, RFC 3501 7.4.1,
RFC 2180 4.1):
- Sequence numbers change only when this session's client is told: an EXPUNGE another session
  made stays "pending", its message keeps its number (and stays addressable) until a command
  that may carry EXPUNGE responses ends. FETCH, STORE and SEARCH (not their UID forms) may not.
- New messages are announced by EXISTS at the end of a command (never during IDLE-less quiet
  time); the count only grows between EXPUNGEs.
- A flag change by another session becomes an untagged FETCH (UID FLAGS) at the next chance;
  a change equal to what the client was last told is not repeated (our own STORE replies
  already told it, and the change bus echoes our writes back to us).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence

from mailwright.imap import responses as r
from mailwright.imap.fetch import flag_bytes
from mailwright.imap.sequence import SequenceSet
from mailwright.store.api import SYSTEM_FLAGS, MessageRecord


class SelectedMailbox:
    def __init__(self, mailbox_id: int, name: str, records: Sequence[MessageRecord],
                 read_only: bool, uidvalidity: int) -> None:
        self.mailbox_id = mailbox_id
        self.name = name
        self.read_only = read_only
        self.uidvalidity = uidvalidity
        self.uids: list[int] = [m.uid for m in records]  # ascending: index + 1 = sequence number
        self.records: dict[int, MessageRecord] = {m.uid: m for m in records}
        self._gone: set[int] = set()  # expunged elsewhere, still numbered for our client
        self._new: list[int] = []  # appended, not yet numbered for our client
        self._flags_told: set[int] = set()  # uids whose changed flags must be sent
        # The flags the client was given in FLAGS (system flags and every keyword in use),
        # computed when first needed, before the first change to a record; a keyword beyond
        # them makes FLAGS (and PERMANENTFLAGS) go out again (RFC 9051 7.3.5: "The update
        # from the FLAGS response MUST be recorded by the client"), as Dovecot does.
        self._known: set[str] | None = None
        self._flag_list_changed = False
        self.deleted = False  # the mailbox itself was deleted by another session

    # ----- numbers ----------------------------------------------------------------------------
    @property
    def exists(self) -> int:
        return len(self.uids)

    @property
    def last_uid(self) -> int:
        return self.uids[-1] if self.uids else 0

    def msn(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def numbered(self, uids: Iterable[int]) -> Iterator[tuple[int, int, MessageRecord]]:
        """(sequence number, uid, record) of each of `uids` (ascending, as `resolve` gives
        them) that the client has numbered: one forward walk, no lookup per message."""
        positions, records = self.uids, self.records
        end = len(positions)
        i = 0
        for uid in uids:
            i = bisect.bisect_left(positions, uid, i)
            if i < end and positions[i] == uid:
                rec = records.get(uid)
                if rec is not None:
                    yield i + 1, uid, rec

    def is_gone(self, uid: int) -> bool:
        """Expunged by another session; the client has not been told yet."""
        return uid in self._gone

    def resolve(self, seq: SequenceSet, uid: bool, saved: Iterable[int] = ()) -> list[int]:
        """The UIDs a sequence set names, ascending, without duplicates.

        Sequence numbers outside 1..EXISTS are ignored here; the session first answers BAD to
        a command that names one (`beyond_exists`). UIDs that do not exist are ignored (RFC
        9051 6.4.9: a UID set may name them). For UIDs, "*" is the highest UID in the
        mailbox, and n:* with n above it still names that message (RFC 9051 6.4.8). "$" is
        the saved search result (RFC 5182), kept as UIDs.
        """
        if seq.saved:
            have = set(self.uids)
            return sorted(u for u in set(saved) if u in have)
        if not self.uids:
            return []
        if uid:
            top = self.uids[-1]
            if len(seq.ranges) == 1:  # "1:*", "n": a slice, already ascending
                a, b = seq.ranges[0]
                lo, hi = top if a is None else a, top if b is None else b
                if lo > hi:
                    lo, hi = hi, lo
                i = bisect.bisect_left(self.uids, lo)
                return self.uids[i:bisect.bisect_right(self.uids, hi)]
            out: set[int] = set()
            for a, b in seq.ranges:
                lo, hi = top if a is None else a, top if b is None else b
                if lo > hi:
                    lo, hi = hi, lo
                i = bisect.bisect_left(self.uids, lo)
                j = bisect.bisect_right(self.uids, hi)
                out.update(self.uids[i:j])
            return sorted(out)
        n = len(self.uids)
        if len(seq.ranges) == 1:  # "1:*", "5", "3:7": a slice, already ascending
            a, b = seq.ranges[0]
            lo, hi = n if a is None else a, n if b is None else b
            if lo > hi:
                lo, hi = hi, lo
            return self.uids[max(lo, 1) - 1:hi] if lo <= n else []
        picked: set[int] = set()
        for a, b in seq.ranges:
            lo, hi = n if a is None else a, n if b is None else b
            if lo > hi:
                lo, hi = hi, lo
            lo, hi = max(lo, 1), min(hi, n)
            picked.update(range(lo, hi + 1))
        return [self.uids[i - 1] for i in sorted(picked)]

    def beyond_exists(self, seq: SequenceSet) -> bool:
        """Whether a message sequence set names a number above EXISTS, or "*" while the mailbox
        is empty: RFC 9051 9 (seq-number) "The server should respond with a tagged BAD
        response" (Dovecot: "Invalid messageset"). Not for UID sets, which may name UIDs that
        do not exist (RFC 9051 6.4.9), nor for "$"."""
        n = len(self.uids)
        return any(
            (n == 0) if x is None else x > n
            for pair in seq.ranges
            for x in pair
        )

    # ----- the FLAGS list ----------------------------------------------------------------------
    def _note_flags(self, flags: frozenset[str]) -> None:
        """Call before a record takes `flags`: remembers a keyword the client has not seen."""
        known = self._known
        if known is None:
            known = set(SYSTEM_FLAGS)
            for m in self.records.values():
                known.update(m.flags)
            self._known = known
        if not flags <= known:
            known.update(flags)
            self._flag_list_changed = True

    def flag_list_update(self) -> list[bytes]:
        """FLAGS and, when writable, PERMANENTFLAGS again if a new keyword came into use."""
        if not self._flag_list_changed or self._known is None:
            return []
        self._flag_list_changed = False
        out = [r.flags(self._known)]
        if not self.read_only:
            out.append(r.untagged_status("OK", "Flags permitted",
                                         r.code_permanentflags(self._known)))
        return out

    # ----- our own changes (already committed) ------------------------------------------------
    def set_record(self, record: MessageRecord) -> None:
        if record.uid in self.records:
            self._note_flags(record.flags)
            self.records[record.uid] = record

    def flags_sent(self, uids: Iterable[int]) -> None:
        """The client is being sent these messages' current flags (a FETCH or STORE answer):
        a pending change of them need not be sent again."""
        if self._flags_told:
            self._flags_told.difference_update(uids)

    def expunged_here(self, uids: Iterable[int]) -> list[bytes]:
        """This session's EXPUNGE/MOVE removed `uids`: the EXPUNGE responses, in the order that
        keeps each number right (ascending, each counted after the ones before it left)."""
        return self._remove(set(uids))

    # ----- changes from the bus ---------------------------------------------------------------
    def appended(self, records: Iterable[MessageRecord]) -> None:
        for m in records:
            if m.uid not in self.records and m.uid > self.last_uid_known():
                self._note_flags(m.flags)
                self.records[m.uid] = m
                self._new.append(m.uid)

    def last_uid_known(self) -> int:
        return max(self.uids[-1] if self.uids else 0, self._new[-1] if self._new else 0)

    def flags_changed(self, uid: int, flags: frozenset[str], modseq: int) -> None:
        old = self.records.get(uid)
        if old is None or uid in self._gone:
            return
        if old.modseq >= modseq:
            return  # we already hold this state (our own STORE, applied when it returned)
        self._note_flags(flags)
        self.records[uid] = _with_flags(old, flags, modseq)
        if old.flags != flags:
            self._flags_told.add(uid)

    def expunged(self, uids: Iterable[int]) -> None:
        for uid in uids:
            if uid in self._new:
                self._new.remove(uid)
                self.records.pop(uid, None)
            elif uid in self.records:
                self._gone.add(uid)
                self._flags_told.discard(uid)

    # ----- what to tell the client --------------------------------------------------------------
    def updates(self, allow_expunge: bool) -> list[bytes]:
        """Untagged responses that may be sent now: FLAGS if a keyword is new, EXPUNGEs (if
        allowed), then EXISTS for new messages, then FETCH FLAGS for changed ones."""
        out = self.flag_list_update()
        if allow_expunge and self._gone:
            out += self._remove(set(self._gone))
        if self._new:
            self._new.sort()
            self.uids.extend(self._new)
            self._new.clear()
            out.append(r.exists(len(self.uids)))
        if self._flags_told:
            for uid in sorted(self._flags_told):
                n = self.msn(uid)
                rec = self.records.get(uid)
                if n is not None and rec is not None:
                    out.append(r.fetch(n, b"UID %d FLAGS %s" % (uid, flag_bytes(rec.flags))))
            self._flags_told.clear()
        return out

    @property
    def has_updates(self) -> bool:
        return bool(self._gone or self._new or self._flags_told or self._flag_list_changed)

    def _remove(self, gone: set[int]) -> list[bytes]:
        out: list[bytes] = []
        kept: list[int] = []
        removed = 0
        for i, uid in enumerate(self.uids):
            if uid in gone:
                out.append(r.expunge(i + 1 - removed))
                removed += 1
                self.records.pop(uid, None)
            else:
                kept.append(uid)
        self.uids = kept
        self._gone -= gone
        self._flags_told -= gone
        return out


def _with_flags(m: MessageRecord, flags: frozenset[str], modseq: int) -> MessageRecord:
    return MessageRecord(m.uid, m.blob, m.size, m.internal_date, flags, modseq)
