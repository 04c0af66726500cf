"""IMAP string quoting round-trips both ways (issue 6: properties beside the fuzzers): what the
server writes (responses.py) reads back as the same octets, and what a client writes
(render.py) parses as the same string or mailbox name; a response text can never inject a
line; a tag or SEARCH program of any bytes only ever gives a command or a BAD."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.imap import mutf7, render
from mailwright.imap import responses as r
from mailwright.imap.commands import Search
from mailwright.imap.grammar import SyntaxErr, parse_command
from mailwright.imap.lexer import Reader

NO_NUL = st.binary(max_size=80).map(lambda b: b.replace(b"\x00", b""))


def _read_astring(wire: bytes, utf8: bool) -> bytes:
    reader = Reader(wire, utf8)
    value = reader.astring()
    reader.end()
    return value


@settings(max_examples=500, deadline=None)
@given(NO_NUL, st.booleans())
def test_server_strings_read_back_as_written(raw: bytes, utf8: bool) -> None:
    assert _read_astring(r.astring(raw, utf8), utf8) == raw
    assert _read_astring(r.string(raw, utf8), utf8) == raw
    if r.can_quote(raw, utf8):
        assert _read_astring(r.quoted(raw), utf8) == raw


@settings(max_examples=500, deadline=None)
@given(NO_NUL, st.booleans())
def test_client_strings_parse_back_as_written(raw: bytes, utf8: bool) -> None:
    assert _read_astring(render.string(raw, utf8=utf8), utf8) == raw


NAMES = st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=20)


@settings(max_examples=500, deadline=None)
@given(NAMES, st.booleans())
def test_mailbox_names_round_trip(name: str, utf8: bool) -> None:
    expected = "INBOX" if name.isascii() and name.upper() == "INBOX" else name
    for wire in (render.mailbox(name, utf8=utf8), r.mailbox(name, utf8)):
        reader = Reader(wire, utf8)
        assert reader.mailbox() == expected
        reader.end()
    assert mutf7.decode(mutf7.encode(name)) == name


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.sampled_from(["OK", "NO", "BAD"]), st.booleans())
def test_response_text_is_one_line(text: str, status: str, utf8: bool) -> None:
    out = r.tagged("a1", status, text, utf8=utf8)  # type: ignore[arg-type]
    assert out.endswith(b"\r\n")
    assert out.count(b"\n") == 1
    assert out.count(b"\r") == 1
    out = r.untagged_status("BYE", text, utf8=utf8)
    assert out.endswith(b"\r\n")
    assert out.count(b"\n") == 1
    assert out.count(b"\r") == 1


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_any_search_program_gives_a_search_or_a_bad(program: bytes, utf8: bool) -> None:
    result = parse_command(b"t SEARCH " + program, utf8)
    assert isinstance(result, Search | SyntaxErr)
    if isinstance(result, SyntaxErr):
        assert result.tag == "t"
