"""SEARCH evaluation never raises: any key tree, any message bytes, any parsed SEARCH line."""

from __future__ import annotations

import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.imap import search as s
from mailwright.imap.commands import Search
from mailwright.imap.grammar import parse_command
from mailwright.imap.lexer import ATOM_CHARS
from mailwright.imap.render import render
from mailwright.imap.search_eval import (
    SearchContext,
    compile_key,
    matches,
    message_header,
    search,
)
from mailwright.imap.sequence import SequenceSet
from mailwright.message import analyze

TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
ATOMS = st.text(alphabet="".join(sorted(chr(b) for b in ATOM_CHARS)), min_size=1, max_size=8)
SEQ_NUM = st.none() | st.integers(min_value=1, max_value=2**32 - 1)
SEQS = st.builds(
    SequenceSet, st.lists(st.tuples(SEQ_NUM, SEQ_NUM), min_size=1, max_size=4).map(tuple)
) | st.just(SequenceSet((), saved=True))
LEAVES = st.one_of(
    st.builds(s.FlagKey, st.sampled_from(sorted(s.FLAG_KEYS))),
    st.builds(s.KeywordKey, ATOMS, st.booleans()),
    st.builds(s.TextKey, st.sampled_from(sorted(s.TEXT_KEYS)), TEXT),
    st.builds(s.HeaderKey, TEXT | st.sampled_from(["Subject", "Date", "From"]), TEXT),
    st.builds(s.DateKey, st.sampled_from(sorted(s.DATE_KEYS)),
              st.dates(min_value=datetime.date(1000, 1, 1))),
    st.builds(s.SizeKey, st.booleans(), st.integers(min_value=0, max_value=2**63)),
    st.builds(s.SetKey, SEQS, st.booleans()),
)
KEYS: st.SearchStrategy[s.SearchKey] = st.recursive(
    LEAVES,
    lambda kids: st.one_of(
        st.builds(s.Not, kids),
        st.builds(s.Or, kids, kids),
        st.builds(s.And, st.lists(kids, min_size=1, max_size=3).map(tuple)),
    ),
    max_leaves=8,
)
HEADER_LINES = st.sampled_from([
    b"Date: Tue, 05 Mar 2024 23:30:00 -0800\r\n", b"Date: junk\r\n", b"Date: 1 Jan 0\r\n",
    b"Subject: =?utf-8?q?=C3=BC?=\r\n", b"Subject: =?x-bad?b?@@@?=\r\n", b"From: <a@b>\r\n",
    b"To: \xff\xfe\r\n", b"Content-Type: multipart/mixed; boundary=x\r\n",
    b"Content-Transfer-Encoding: base64\r\n", b"X: y\r\n z\r\n",
])
MESSAGES = st.builds(
    lambda lines, body: b"".join(lines) + b"\r\n" + body,
    st.lists(HEADER_LINES, max_size=6), st.binary(max_size=200),
) | st.binary(max_size=300)


def _context(raw: bytes, msn: int, flags: frozenset[str]) -> SearchContext:
    info = analyze(raw)
    return SearchContext(
        msn=msn, uid=msn * 7, flags=flags,
        internal_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC), size=len(raw),
        info=info, header=message_header(raw, info), last_msn=3, last_uid=21,
        saved=frozenset({7}),
    )


@settings(max_examples=300)
@given(KEYS, MESSAGES, st.frozensets(st.sampled_from(["\\Seen", "\\Deleted", "$x", "a"])))
def test_any_key_on_any_message_gives_a_bool(
    key: s.SearchKey, raw: bytes, flags: frozenset[str]
) -> None:
    ctx = _context(raw, 2, flags)
    result = matches(key, ctx)
    assert isinstance(result, bool)
    assert matches(s.Not(key), ctx) is not result
    assert matches(s.And((key, s.Not(key))), ctx) is False
    assert matches(s.Or(key, s.Not(key)), ctx) is True


@settings(max_examples=200)
@given(KEYS)
def test_keys_through_the_wire_evaluate_the_same(key: s.SearchKey) -> None:
    """Render the key, parse it back: the parser's tree evaluates as the original does."""
    ctxs = [_context(m, i + 1, frozenset()) for i, m in enumerate((b"Subject: a\r\n\r\nb",))]
    wire = render(Search("t", key, charset="UTF-8"))
    parsed = parse_command(wire[:-2])  # without the final CRLF, as the framing layer gives it
    assert isinstance(parsed, Search), parsed
    assert search(parsed.key, ctxs) == search(key, ctxs)


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_any_parsed_search_line_evaluates(criteria: bytes) -> None:
    cmd = parse_command(b"t SEARCH " + criteria)
    if isinstance(cmd, Search):
        ctx = _context(b"Subject: x\r\n\r\nbody", 1, frozenset())
        assert isinstance(matches(cmd.key, ctx), bool)


@settings(max_examples=300)
@given(KEYS, MESSAGES, st.frozensets(st.sampled_from(["\\Seen", "\\Deleted", "$x", "a"])),
       st.booleans())
def test_compiled_key_agrees_with_matches(
    key: s.SearchKey, raw: bytes, flags: frozenset[str], epoch_date: bool
) -> None:
    """`compile_key` (what `search` runs) answers as `matches` (the plain reading of the
    rules), with the internal date given as a datetime or as the store's epoch seconds, and
    and with a header hint saying "look" (the same answer) or "no header has it" (header keys
    with a value are then false)."""
    ctx = _context(raw, 2, flags)
    if epoch_date:
        ctx.internal_date = int(datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC).timestamp())
    want = matches(key, _context(raw, 2, flags))
    assert compile_key(key)(ctx) is want

    assert compile_key(key, header_hint=lambda needle, c: True)(ctx) is want
    assert compile_key(key, header_hint=lambda needle, c: False)(ctx) is matches(
        _strip_header_keys(key), _context(raw, 2, flags))


def _strip_header_keys(key: s.SearchKey) -> s.SearchKey:
    """`key` with every header key that has a value made false, as a hint of "never" does."""
    never = s.Not(s.FlagKey("ALL"))
    match key:
        case s.TextKey(field=f, value=v) if f not in ("BODY", "TEXT") and v:
            return never
        case s.HeaderKey(value=v) if v:
            return never
        case s.Not(key=inner):
            return s.Not(_strip_header_keys(inner))
        case s.Or(left=left, right=right):
            return s.Or(_strip_header_keys(left), _strip_header_keys(right))
        case s.And(keys=keys):
            return s.And(tuple(_strip_header_keys(k) for k in keys))
        case _:
            return key
