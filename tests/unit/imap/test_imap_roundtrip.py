"""Round trips: every command form the grammar allows, rendered then parsed, gives itself back
(STYLE.md 9; issue 4 "round trips of every command form that the RFC grammar allows")."""

from __future__ import annotations

import datetime
import string as _string
from typing import get_args

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.imap import commands as c
from mailwright.imap import search as s
from mailwright.imap.grammar import ESEARCH_RETURN, STATUS_ITEMS
from mailwright.imap.lexer import ATOM_CHARS
from mailwright.imap.parser import (
    AppendChunk,
    AppendEnd,
    Continuation,
    Event,
    ImapParser,
    NeedData,
)
from mailwright.imap.render import render
from mailwright.imap.sequence import SequenceSet

TAGS = st.text(alphabet=_string.ascii_letters + _string.digits + ".", min_size=1, max_size=8)
ATOMS = st.text(alphabet="".join(sorted(chr(b) for b in ATOM_CHARS)), min_size=1, max_size=10)
UPPER_ATOMS = ATOMS.map(str.upper)
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)
RAW_NAMES = st.text(st.characters(exclude_categories=["Cs", "Cc"]), max_size=20)


def _inbox(name: str) -> str:
    return "INBOX" if name.isascii() and name.upper() == "INBOX" else name


NAMES = RAW_NAMES.map(_inbox) | st.sampled_from(["INBOX", "Sent Items", "a/b", "&", "~x"])
PATTERNS = st.text(st.characters(exclude_categories=["Cs", "Cc"]) | st.sampled_from("%*"),
                   max_size=20)
NUMS = st.integers(min_value=1, max_value=2**32 - 1)
SEQ_NUM = st.none() | NUMS
SEQS = st.builds(
    SequenceSet, st.lists(st.tuples(SEQ_NUM, SEQ_NUM), min_size=1, max_size=5).map(tuple)
) | st.just(SequenceSet((), saved=True))
SYSTEM_FLAGS = st.sampled_from(["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"])
FLAGS = st.lists(SYSTEM_FLAGS | ATOMS, max_size=4).map(tuple)
DATES = st.dates(min_value=datetime.date(1000, 1, 1), max_value=datetime.date(9999, 12, 31))
TZS = st.integers(min_value=-1439, max_value=1439).map(
    lambda m: datetime.timezone(datetime.timedelta(minutes=m)))
DATE_TIMES = st.datetimes(
    min_value=datetime.datetime(1000, 1, 2), max_value=datetime.datetime(9999, 12, 30),
    timezones=TZS,
).map(lambda d: d.replace(microsecond=0))

_LEAF_KEYS = st.one_of(
    st.builds(s.FlagKey, st.sampled_from(sorted(s.FLAG_KEYS))),
    st.builds(s.KeywordKey, ATOMS, st.booleans()),
    st.builds(s.TextKey, st.sampled_from(sorted(s.TEXT_KEYS)), TEXT),
    st.builds(s.HeaderKey, TEXT, TEXT),
    st.builds(s.DateKey, st.sampled_from(sorted(s.DATE_KEYS)), DATES),
    st.builds(s.SizeKey, st.booleans(), st.integers(min_value=0, max_value=2**63)),
    st.builds(s.SetKey, SEQS, st.booleans()),
)
SEARCH_KEYS: st.SearchStrategy[s.SearchKey] = st.recursive(
    _LEAF_KEYS,
    lambda kids: st.one_of(
        st.builds(s.Not, kids),
        st.builds(s.Or, kids, kids),
        st.builds(s.And, st.lists(kids, min_size=2, max_size=3).map(tuple)),
    ),
    max_leaves=12,
)

_SECTION_TEXT = st.sampled_from([None, "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT",
                                 "MIME"])
PARTS = st.lists(st.integers(min_value=1, max_value=10_000), max_size=3).map(tuple)


@st.composite
def sections(draw: st.DrawFn) -> c.Section:
    part = draw(PARTS)
    text = draw(_SECTION_TEXT)
    if text == "MIME" and not part:
        text = None
    fields: tuple[str, ...] = ()
    if text is not None and text.startswith("HEADER.FIELDS"):
        fields = tuple(draw(st.lists(UPPER_ATOMS, min_size=1, max_size=3)))
    return c.Section(part, text, fields)


PARTIALS = st.none() | st.tuples(st.integers(0, 2**40), st.integers(1, 2**40))
FETCH_ITEMS = st.one_of(
    st.builds(c.FetchAttr, st.sampled_from([
        "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822", "RFC822.HEADER", "RFC822.SIZE",
        "RFC822.TEXT", "BODY", "BODYSTRUCTURE", "UID"])),
    st.builds(c.FetchBody, sections(), st.booleans(), PARTIALS),
    st.builds(c.FetchBinary, PARTS, st.booleans(), PARTIALS),
    st.builds(c.FetchBinary, PARTS, st.just(False), st.none(), st.just(True)),
)
_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}


@st.composite
def fetches(draw: st.DrawFn) -> c.Fetch:
    tag, seq, uid = draw(TAGS), draw(SEQS), draw(st.booleans())
    macro = draw(st.none() | st.sampled_from(sorted(_MACROS)))
    if macro is not None:
        return c.Fetch(tag, seq, tuple(c.FetchAttr(n) for n in _MACROS[macro]), uid, macro)
    return c.Fetch(tag, seq, tuple(draw(st.lists(FETCH_ITEMS, min_size=1, max_size=4))), uid)


STATUS = st.lists(st.sampled_from(sorted(STATUS_ITEMS)), min_size=1, max_size=4).map(tuple)
ID_PARAMS = st.none() | st.lists(st.tuples(TEXT, st.none() | TEXT), max_size=5).map(tuple)

COMMANDS: st.SearchStrategy[c.Command] = st.one_of(
    *(st.builds(k, TAGS) for k in (c.Capability, c.Noop, c.Logout, c.StartTls, c.Namespace,
                                   c.Idle, c.Check, c.Close, c.Unselect)),
    st.builds(c.Authenticate, TAGS, UPPER_ATOMS, st.none() | st.binary(max_size=40)),
    st.builds(c.Login, TAGS, TEXT, TEXT),
    st.builds(c.Enable, TAGS, st.lists(UPPER_ATOMS, min_size=1, max_size=3).map(tuple)),
    *(st.builds(k, TAGS, NAMES) for k in (c.Select, c.Examine, c.Delete, c.Subscribe,
                                          c.Unsubscribe)),
    st.builds(c.Create, TAGS, NAMES, st.lists(st.sampled_from(
        ["\\Sent", "\\Drafts", "\\Junk", "\\Trash", "\\Archive"]), max_size=2).map(tuple)),
    st.builds(c.Rename, TAGS, NAMES, NAMES),
    st.builds(c.List, TAGS, RAW_NAMES, st.lists(PATTERNS, min_size=1, max_size=3).map(tuple),
              st.lists(UPPER_ATOMS, max_size=3).map(tuple),
              st.lists(UPPER_ATOMS.filter(lambda a: a != "STATUS"), max_size=3).map(tuple),
              st.none() | STATUS),
    st.builds(c.Lsub, TAGS, RAW_NAMES, PATTERNS),
    st.builds(c.Status, TAGS, NAMES, STATUS),
    st.builds(c.Expunge, TAGS, st.none() | SEQS),
    st.builds(c.Search, TAGS, SEARCH_KEYS, st.booleans(), st.none() | st.just("UTF-8"),
              st.none() | st.lists(st.sampled_from(sorted(ESEARCH_RETURN)), max_size=3)
              .map(tuple)),
    fetches(),
    st.builds(c.Store, TAGS, SEQS, st.sampled_from(["", "+", "-"]), st.booleans(), FLAGS,
              st.booleans()),
    st.builds(c.Copy, TAGS, SEQS, NAMES, st.booleans()),
    st.builds(c.Move, TAGS, SEQS, NAMES, st.booleans()),
    st.builds(c.Id, TAGS, ID_PARAMS),
)


def _events(p: ImapParser, data: bytes) -> list[Event]:
    p.receive_data(data)
    out: list[Event] = []
    while not isinstance(ev := p.next_event(), NeedData):
        if not isinstance(ev, Continuation):
            out.append(ev)
    return out


def test_strategy_covers_every_command() -> None:
    names = {k.__name__ for k in get_args(c.Command)}
    assert len(names) == 30


@settings(max_examples=1500, deadline=None)
@given(COMMANDS)
def test_render_then_parse_roundtrips(cmd: c.Command) -> None:
    assert _events(ImapParser(), render(cmd)) == [cmd]


@settings(max_examples=500, deadline=None)
@given(COMMANDS)
def test_render_then_parse_roundtrips_with_utf8_accept(cmd: c.Command) -> None:
    p = ImapParser()
    p.enable_utf8()
    assert _events(p, render(cmd, utf8=True)) == [cmd]


@settings(max_examples=300, deadline=None)
@given(TAGS, NAMES, FLAGS, st.none() | DATE_TIMES, st.binary(max_size=300), st.booleans(),
       st.booleans(), st.integers(min_value=1, max_value=50))
def test_append_roundtrips_with_streamed_message(
    tag: str, name: str, flags: tuple[str, ...], date: datetime.datetime | None, body: bytes,
    sync: bool, binary: bool, step: int,
) -> None:
    cmd = c.Append(tag, name, flags, date, len(body), sync, binary)
    wire = render(cmd) + body + b"\r\n" + b"z NOOP\r\n"
    p = ImapParser()
    events: list[Event] = []
    for i in range(0, len(wire), step):
        events += _events(p, wire[i : i + step])
    assert events[0] == cmd
    assert b"".join(e.data for e in events if isinstance(e, AppendChunk)) == body
    assert events[-2:] == [AppendEnd(tag), c.Noop("z")]
