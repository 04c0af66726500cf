"""The selected mailbox's view: sequence numbers, pending expunges and the updates it releases."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from mailwright.imap.base import SessionBase
from mailwright.imap.selected import SelectedMailbox
from mailwright.imap.sequence import SequenceSet, parse_sequence_set
from mailwright.store.api import FlagChange, MessageRecord
from mailwright.store.changes import Appended, Change, Expunged, FlagsChanged, MailboxDeleted


def record(uid: int, flags: frozenset[str] = frozenset(), modseq: int = 1) -> MessageRecord:
    return MessageRecord(uid, f"blob{uid}", 100, 0, flags, modseq)


def view(*uids: int) -> SelectedMailbox:
    return SelectedMailbox(1, "INBOX", [record(u) for u in uids], False, 7)


def seq(text: str) -> SequenceSet:
    parsed = parse_sequence_set(text)
    assert isinstance(parsed, SequenceSet)
    return parsed


def test_resolve_sequence_numbers_and_uids() -> None:
    v = view(3, 5, 9, 12)
    assert v.resolve(seq("1:*"), uid=False) == [3, 5, 9, 12]
    assert v.resolve(seq("2,4"), uid=False) == [5, 12]
    assert v.resolve(seq("*:3"), uid=False) == [9, 12]
    assert v.resolve(seq("7"), uid=False) == []  # past EXISTS (the session says BAD first)
    assert v.resolve(seq("3:9"), uid=False) == [9, 12]
    assert v.resolve(seq("4,1:2,2"), uid=False) == [3, 5, 12]
    assert v.resolve(seq("1:*,3"), uid=True) == [3, 5, 9, 12]
    assert v.resolve(seq("10:4"), uid=True) == [5, 9]
    assert v.resolve(seq("4:9"), uid=True) == [5, 9]
    assert v.resolve(seq("13:*"), uid=True) == [12]  # RFC 9051 6.4.8: n:* names the last
    assert v.resolve(seq("$"), uid=True, saved=[5, 99]) == [5]
    assert view().resolve(seq("1:*"), uid=False) == []


def test_expunge_responses_keep_numbers_right() -> None:
    v = view(1, 2, 3, 4, 5)
    v.expunged([2, 4])
    assert v.updates(allow_expunge=False) == []  # FETCH/STORE/SEARCH: numbers stay
    assert v.msn(4) == 4
    assert v.is_gone(4)
    # 2 is message 2; after it goes, 4 is message 3.
    assert v.updates(allow_expunge=True) == [b"* 2 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n"]
    assert v.uids == [1, 3, 5]
    assert v.msn(5) == 3


def test_new_messages_then_exists_and_flag_changes_once() -> None:
    v = view(1, 2)
    v.appended([record(3), record(4)])
    v.flags_changed(1, frozenset({"\\Seen"}), 5)
    out = v.updates(allow_expunge=False)
    assert out == [b"* 4 EXISTS\r\n", b"* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n"]
    v.flags_changed(1, frozenset({"\\Seen"}), 5)  # the same change again: nothing new
    assert v.updates(allow_expunge=True) == []


def test_own_store_is_not_echoed() -> None:
    v = view(1)
    v.set_record(record(1, frozenset({"\\Flagged"}), 9))
    v.flags_changed(1, frozenset({"\\Flagged"}), 9)
    assert not v.has_updates


def test_appended_then_expunged_before_told_is_never_announced() -> None:
    v = view(1)
    v.appended([record(2)])
    v.expunged([2])
    assert v.updates(allow_expunge=True) == []
    assert v.exists == 1


@given(st.sets(st.integers(1, 40), max_size=40), st.sets(st.integers(1, 40), max_size=40))
def test_expunge_responses_replay_to_the_same_list(uids: set[int], gone: set[int]) -> None:
    v = view(*sorted(uids))
    client = sorted(uids)  # what the client believes, updated only by the responses
    v.expunged(gone)
    for line in v.updates(allow_expunge=True):
        n = int(line.split()[1])
        del client[n - 1]
    assert client == v.uids == sorted(uids - gone)


def test_sequence_numbers_beyond_exists() -> None:
    v = view(3, 5, 9)
    assert not v.beyond_exists(seq("1:3"))
    assert not v.beyond_exists(seq("*"))
    assert not v.beyond_exists(seq("3:*,2"))
    assert v.beyond_exists(seq("4"))
    assert v.beyond_exists(seq("1,4:*"))
    assert view().beyond_exists(seq("*"))  # RFC 9051 9: "*" of an empty mailbox too
    assert view().beyond_exists(seq("1:*"))


def test_numbered_walks_uids_to_their_numbers() -> None:
    v = view(3, 5, 9, 12)
    v.expunged([5])  # still numbered until the client is told
    assert [(n, u) for n, u, _ in v.numbered([3, 5, 7, 12, 40])] == [(1, 3), (2, 5), (4, 12)]
    assert list(v.numbered([])) == []


def test_a_new_keyword_sends_flags_and_permanentflags_once() -> None:
    v = SelectedMailbox(1, "INBOX", [record(1, frozenset({"$Old"})), record(2)], False, 7)
    v.set_record(record(2, frozenset({"\\Seen", "$Old"}), 2))
    assert v.flag_list_update() == []  # nothing new
    v.set_record(record(2, frozenset({"$New"}), 3))
    assert v.flag_list_update() == [
        b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $New $Old)\r\n",
        b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $New $Old \\*)] "
        b"Flags permitted\r\n",
    ]
    assert v.flag_list_update() == []
    v.flags_changed(1, frozenset({"Other"}), 9)  # another session's keyword: in updates()
    out = v.updates(allow_expunge=False)
    assert out[0].startswith(b"* FLAGS (")
    assert b"Other" in out[0]
    assert out[-1] == b"* 1 FETCH (UID 1 FLAGS (Other))\r\n"


def test_read_only_view_sends_flags_without_permanentflags() -> None:
    v = SelectedMailbox(1, "INBOX", [record(1)], True, 7)
    v.appended([record(2, frozenset({"Fresh"}))])
    out = v.updates(allow_expunge=True)
    assert out == [b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft Fresh)\r\n",
                   b"* 2 EXISTS\r\n"]


def test_flags_sent_drops_a_pending_flag_update() -> None:
    v = view(1, 2)
    v.flags_changed(1, frozenset({"\\Seen"}), 5)
    v.flags_changed(2, frozenset({"\\Seen"}), 6)
    v.flags_sent([1])  # a FETCH FLAGS just told the client about 1
    assert v.updates(allow_expunge=False) == [b"* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n"]


def test_session_folds_bus_events_into_its_view_without_reading_the_store() -> None:
    """IDLE wake-ups: Appended carries the records, so no session reads the mailbox again
    (1,000 sessions on one INBOX would each reload it for every delivery)."""
    class NoStore:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"the session read the store: {name}")

    session = SessionBase.__new__(SessionBase)  # only what apply_changes touches
    session.store = NoStore()  # type: ignore[assignment]  # a stand-in that fails any read
    session.selected = v = view(1, 2)
    events: list[Change] = [
        Appended(1, (record(3), record(4))),
        Expunged(1, (4,)),  # appended, then expunged before the client heard of it
        FlagsChanged(1, (FlagChange(1, frozenset({"\\Seen"}), 5),)),
        Appended(1, (record(5, frozenset({"$Work"}), 6),)),
    ]
    asyncio.run(session.apply_changes(events))
    assert v.updates(allow_expunge=True)[-2:] == [
        b"* 4 EXISTS\r\n",
        b"* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n",
    ]
    assert v.uids == [1, 2, 3, 5]
    assert v.records[5].flags == {"$Work"}


class _Transport:
    def __init__(self) -> None:
        self.unsent = 0

    def get_write_buffer_size(self) -> int:
        return self.unsent


class _Conn:
    def __init__(self) -> None:
        self.writer = self  # the session reads conn.writer.transport
        self.transport = _Transport()
        self.lines: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.lines.append(data)


def test_push_in_idle_writes_updates_at_once_and_declines_what_the_loop_must_do() -> None:
    session = SessionBase.__new__(SessionBase)
    conn = _Conn()
    session.conn = conn  # type: ignore[assignment]  # only write() and the buffer size
    session.selected = v = view(1, 2)
    assert session.push_in_idle([Appended(1, (record(3),)), Expunged(1, (1,))])
    assert conn.lines == [b"* 1 EXPUNGE\r\n", b"* 2 EXISTS\r\n"]  # IDLE allows EXPUNGE
    # The mailbox went: the IDLE loop says BYE. The client reads slowly: the loop waits.
    assert not session.push_in_idle([MailboxDeleted(1)])
    assert not v.deleted, "declined events are left for the loop, not half applied"
    conn.transport.unsent = 1 << 20
    assert not session.push_in_idle([Appended(1, (record(4),))])
    assert v.uids == [2, 3]
    session.selected = None
    assert not session.push_in_idle([Appended(1, (record(5),))])
