"""The IMAP framing core: literals, LITERAL+/-, APPEND streaming, limits, resynchronisation,
IDLE and SASL lines, and garbage (STYLE.md 8, 9)."""

from __future__ import annotations

import time
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.imap import commands as c
from mailwright.imap import search as s
from mailwright.imap.grammar import SyntaxErr
from mailwright.imap.parser import (
    NEED_DATA,
    AppendChunk,
    AppendEnd,
    Closed,
    Continuation,
    Done,
    Event,
    ImapParser,
    NeedData,
    SaslResponse,
    TooBig,
)


def feed(p: ImapParser, data: bytes) -> list[Event]:
    p.receive_data(data)
    out: list[Event] = []
    while not isinstance(ev := p.next_event(), NeedData):
        out.append(ev)
        if isinstance(ev, Closed):
            break
    return out


def appended(events: list[Event]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, AppendChunk))


def test_synchronizing_literal_asks_for_continuation_then_waits() -> None:
    p = ImapParser()
    assert feed(p, b"a LOGIN {3}\r\n") == [Continuation("a")]
    assert feed(p, b"bo") == []
    assert feed(p, b"b {2}\r\n") == [Continuation("a")]
    assert feed(p, b"pw\r\n") == [c.Login("a", "bob", "pw")]


def test_literal_plus_needs_no_continuation() -> None:
    p = ImapParser()
    assert feed(p, b"a LOGIN {3+}\r\nbob {2+}\r\npw\r\nb NOOP\r\n") == [
        c.Login("a", "bob", "pw"), c.Noop("b")]


def test_literal_may_hold_crlf_and_parens() -> None:
    p = ImapParser()
    assert feed(p, b'a SEARCH SUBJECT {6+}\r\n(x\r\n)" ALL\r\n') == [
        c.Search("a", s.And((s.TextKey("SUBJECT", '(x\r\n)"'), s.FlagKey("ALL"))))]


def test_literal_minus_refuses_big_nonsync_literal_and_skips_it() -> None:
    p = ImapParser(literal_minus=True)
    events = feed(p, b"a LOGIN {5000+}\r\n" + b"x" * 5000 + b" pw\r\nb NOOP\r\n")
    assert isinstance(events[0], SyntaxErr)
    assert events[0].tag == "a"
    assert "LITERAL-" in events[0].text
    assert events[1:] == [c.Noop("b")]
    assert feed(p, b"a LOGIN {4096+}\r\n" + b"x" * 4096 + b" pw\r\n") == [
        c.Login("a", "x" * 4096, "pw")]


def test_oversize_sync_literal_is_bad_and_client_sends_nothing() -> None:
    p = ImapParser(max_literal=10)
    assert feed(p, b"a LOGIN {11}\r\n") == [SyntaxErr("a", "literal too big (limit 10 octets)")]
    assert feed(p, b"b NOOP\r\n") == [c.Noop("b")]


def test_oversize_nonsync_literal_is_skipped_without_buffering() -> None:
    p = ImapParser(max_literal=10)
    assert len(feed(p, b"a LOGIN {100000+}\r\n")) == 1
    for _ in range(10):
        assert feed(p, b"y" * 10000) == []
        assert not p.has_buffered_input
    assert feed(p, b" {3+}\r\nabc\r\nb NOOP\r\n") == [c.Noop("b")]


def test_append_streams_message_in_chunks() -> None:
    p = ImapParser()
    head = feed(p, b"a APPEND Drafts (\\Draft) {10}\r\n")
    assert head == [c.Append("a", "Drafts", ("\\Draft",), None, 10, True), Continuation("a")]
    assert feed(p, b"01234") == [AppendChunk(b"01234")]
    assert feed(p, b"56789\r") == [AppendChunk(b"56789")]
    assert feed(p, b"\nb NOOP\r\n") == [AppendEnd("a"), c.Noop("b")]


def test_append_byte_by_byte() -> None:
    p = ImapParser()
    events: list[Event] = []
    for b in b"a APPEND INBOX {5+}\r\nhello\r\nb NOOP\r\n":
        events += feed(p, bytes([b]))
    assert events[0] == c.Append("a", "INBOX", (), None, 5, False)
    assert appended(events) == b"hello"
    assert events[-2:] == [AppendEnd("a"), c.Noop("b")]


def test_append_mailbox_as_literal_then_message_literal() -> None:
    p = ImapParser()
    assert feed(p, b"a APPEND {5}\r\n") == [Continuation("a")]
    events = feed(p, b"inbox {3}\r\n")
    assert events == [c.Append("a", "INBOX", (), None, 3, True), Continuation("a")]
    assert feed(p, b"abc\r\n") == [AppendChunk(b"abc"), AppendEnd("a")]


def test_append_literal8() -> None:
    p = ImapParser()
    events = feed(p, b"a APPEND INBOX ~{3+}\r\n\x00\x01\x02\r\n")
    assert events[0] == c.Append("a", "INBOX", (), None, 3, False, binary=True)
    assert appended(events) == b"\x00\x01\x02"


def test_literal8_outside_append_is_bad() -> None:
    p = ImapParser()
    events = feed(p, b"a LOGIN ~{3+}\r\nbob pw\r\nb NOOP\r\n")
    assert isinstance(events[0], SyntaxErr)
    assert events[1:] == [c.Noop("b")]


def test_append_over_limit_is_too_big_sync() -> None:
    p = ImapParser(max_append=100)
    assert feed(p, b"a APPEND INBOX {101}\r\n") == [TooBig("a", 101)]
    assert feed(p, b"b NOOP\r\n") == [c.Noop("b")]


def test_append_over_limit_nonsync_is_skipped_without_buffering() -> None:
    p = ImapParser(max_append=100)
    assert feed(p, b"a APPEND INBOX {1000000+}\r\n") == [TooBig("a", 1_000_000)]
    for _ in range(100):
        assert feed(p, b"z" * 10_000) == []
        assert not p.has_buffered_input
    assert feed(p, b"\r\nb NOOP\r\n") == [c.Noop("b")]


def test_append_with_bad_head_is_bad_and_skips_nonsync_data() -> None:
    p = ImapParser()
    events = feed(p, b'a APPEND INBOX "bad date" {3+}\r\nabc\r\nb NOOP\r\n')
    assert isinstance(events[0], SyntaxErr)
    assert events[0].tag == "a"
    assert events[1:] == [c.Noop("b")]


def test_reject_append_before_continuation_expects_no_data() -> None:
    p = ImapParser()
    p.receive_data(b"a APPEND Nosuch {3}\r\n")
    assert isinstance(p.next_event(), c.Append)
    p.reject_append()  # the session answers NO [TRYCREATE] instead of "+"
    assert feed(p, b"b NOOP\r\n") == [c.Noop("b")]


def test_reject_append_nonsync_skips_the_message() -> None:
    p = ImapParser()
    p.receive_data(b"a APPEND Nosuch {3+}\r\n")
    assert isinstance(p.next_event(), c.Append)
    p.reject_append()
    assert feed(p, b"abc\r\nb NOOP\r\n") == [c.Noop("b")]


def test_reject_append_outside_append_is_a_bug() -> None:
    with pytest.raises(AssertionError):
        ImapParser().reject_append()


def test_multiappend_data_ends_append_with_error() -> None:
    p = ImapParser()
    events = feed(p, b"a APPEND INBOX {1+}\r\nx {2+}\r\nyy\r\nb NOOP\r\n")
    assert events[-2] == AppendEnd("a", "unexpected data after the message literal")
    assert events[-1] == c.Noop("b")


def test_nesting_limit_answers_bad_quickly() -> None:
    p = ImapParser(max_line=300_000)
    start = time.monotonic()
    events = feed(p, b"a SEARCH " + b"(" * 100_000 + b"ALL" + b")" * 100_000 + b"\r\nb NOOP\r\n")
    assert time.monotonic() - start < 2
    assert events[0] == SyntaxErr("a", "nesting too deep (limit 64)")
    assert events[1] == c.Noop("b")


def test_deep_not_chain_answers_bad() -> None:
    events = feed(ImapParser(), b"a SEARCH " + b"NOT " * 10_000 + b"ALL\r\n")
    assert events == [SyntaxErr("a", "nesting too deep (limit 64)")]


def test_100000_deep_list_at_default_limits_is_bad() -> None:
    events = feed(ImapParser(), b"a SEARCH " + b"(" * 100_000 + b"\r\nb NOOP\r\n")
    assert isinstance(events[0], SyntaxErr)
    assert events[1] == c.Noop("b")


def test_overlong_line_is_bad_then_parser_resynchronises() -> None:
    p = ImapParser(max_line=100)
    events = feed(p, b"a SEARCH " + b"x" * 500)
    assert events == [SyntaxErr("a", "line too long (limit 100 octets)")]
    assert not p.has_buffered_input
    assert feed(p, b"y" * 500 + b"\r\nb NOOP\r\n") == [c.Noop("b")]


def test_overlong_line_ending_in_nonsync_literal_skips_the_literal() -> None:
    p = ImapParser(max_line=100)
    events = feed(p, b"a LOGIN " + b"x" * 500 + b" {5+}\r\nab\r\nc\r\nb NOOP\r\n")
    assert isinstance(events[0], SyntaxErr)
    assert events[1:] == [c.Noop("b")]


def test_command_too_long_over_many_literals() -> None:
    p = ImapParser(max_command=1000, max_literal=600)
    events = feed(p, b"a LOGIN {600+}\r\n" + b"u" * 600 + b" {600+}\r\n" + b"p" * 600
                  + b"\r\nb NOOP\r\n")
    assert isinstance(events[0], SyntaxErr)
    assert events[1:] == [c.Noop("b")]


def test_bad_command_then_next_command_works() -> None:
    assert feed(ImapParser(), b"a FOO\r\nb NOOP\r\n") == [
        SyntaxErr("a", "unknown command FOO"), c.Noop("b")]


def test_bare_lf_and_empty_lines_are_tolerated() -> None:
    assert feed(ImapParser(), b"\r\n\na NOOP\nb NOOP\r\n") == [c.Noop("a"), c.Noop("b")]


def test_idle_done() -> None:
    p = ImapParser()
    assert feed(p, b"a IDLE\r\n") == [c.Idle("a")]
    p.start_idle("a")
    assert feed(p, b"DONE\r\nb NOOP\r\n") == [Done(), c.Noop("b")]


def test_idle_anything_but_done_is_bad() -> None:
    p = ImapParser()
    p.start_idle("a")
    assert feed(p, b"b NOOP\r\n") == [SyntaxErr("a", "expected DONE to end IDLE")]


def test_sasl_response_line() -> None:
    p = ImapParser()
    assert feed(p, b"a AUTHENTICATE PLAIN\r\n") == [c.Authenticate("a", "PLAIN")]
    p.start_sasl("a")
    events = feed(p, b"AGJvYgBwdw==\r\n")
    assert events == [SaslResponse(b"AGJvYgBwdw==")]
    assert "AGJ" not in repr(events[0])
    p.start_sasl("a")
    cancel = feed(p, b"*\r\n")[0]
    assert isinstance(cancel, SaslResponse)
    assert cancel.cancelled


def test_eof_gives_closed_after_buffered_commands() -> None:
    p = ImapParser()
    assert feed(p, b"a NOOP\r\nb NO") == [c.Noop("a")]
    assert feed(p, b"") == [Closed()]


def test_discard_buffer_forgets_plaintext_injection() -> None:
    p = ImapParser()
    p.receive_data(b"a STARTTLS\r\nb LOGIN evil x\r\n")
    assert p.next_event() == c.StartTls("a")
    p.discard_buffer()
    assert p.next_event() is NEED_DATA


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_garbage_never_crashes(data: bytes) -> None:
    p = ImapParser(max_line=256, max_literal=64, max_command=512, max_append=128)
    p.receive_data(data)
    p.receive_data(b"")
    for _ in range(10_000):
        ev = p.next_event()
        if ev is NEED_DATA or isinstance(ev, Closed):
            break
        assert isinstance(ev, (*get_args(c.Command), SyntaxErr, Continuation, TooBig,
                               AppendChunk, AppendEnd, Done, SaslResponse))
    else:
        pytest.fail("parser did not converge")


_TOKENS = st.sampled_from([
    b"a", b" ", b"\r\n", b"{3}", b"{2+}", b"~{1}", b"(", b")", b"[", b"]", b"<1.2>", b'"',
    b"\\", b"APPEND", b"INBOX", b"SEARCH", b"FETCH", b"UID", b"NOT", b"OR", b"1:*", b"BODY",
    b"LOGIN", b"LIST", b"RETURN", b"STATUS", b"&", b"-", b"\xff", b"\x00", b"*", b"%",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKENS, max_size=60), st.integers(min_value=1, max_value=7))
def test_token_soup_never_crashes_in_any_split(tokens: list[bytes], step: int) -> None:
    data = b"".join(tokens)
    p = ImapParser(max_line=128, max_literal=16, max_command=256, max_append=64)
    for i in range(0, len(data), step):
        p.receive_data(data[i : i + step])
        while (ev := p.next_event()) is not NEED_DATA:
            assert not isinstance(ev, Closed)
    # Whatever state the soup left, line ends drain it and the next command is understood.
    assert feed(p, b"\r\n" * 100 + b"zz NOOP\r\n")[-1] == c.Noop("zz")


def test_twenty_megabyte_append_never_buffers_more_than_a_read() -> None:
    p = ImapParser()
    size = 20 * 1024 * 1024
    head = feed(p, b"a APPEND INBOX {%d+}\r\n" % size)
    assert head == [c.Append("a", "INBOX", (), None, size, False)]
    block = b"x" * 65536
    total = 0
    for _ in range(size // len(block)):
        events = feed(p, block)
        assert not p.has_buffered_input
        total += sum(len(e.data) for e in events if isinstance(e, AppendChunk))
    assert total == size
    assert feed(p, b"\r\n") == [AppendEnd("a")]


def test_control_character_hidden_in_modified_utf7_is_bad() -> None:
    assert feed(ImapParser(), b"a SELECT tab&AAk-here\r\n") == [
        SyntaxErr("a", "control character in mailbox name")]


def test_dotless_i_inbox_is_not_inbox() -> None:
    p = ImapParser()
    p.enable_utf8()
    assert feed(p, 'a SELECT "\u0131nbox"\r\n'.encode()) == [
        c.Select("a", "\u0131nbox")]


def test_overlong_tag_answers_untagged_bad() -> None:
    assert feed(ImapParser(), b"x" * 65 + b" NOOP\r\n") == [
        SyntaxErr(None, "missing or invalid tag")]


def test_discard_buffer_mid_literal_returns_to_command_lines() -> None:
    p = ImapParser()
    assert feed(p, b"a LOGIN {10}\r\nabc") == [Continuation("a")]
    p.discard_buffer()
    assert feed(p, b"b NOOP\r\n") == [c.Noop("b")]


def test_idle_overlong_line_is_bad_then_usable() -> None:
    p = ImapParser(max_line=50)
    p.start_idle("i")
    assert feed(p, b"D" * 100 + b"\r\nb NOOP\r\n") == [
        SyntaxErr("i", "line too long (limit 50 octets)"), c.Noop("b")]


def test_status_appendlimit_and_empty_list_pattern() -> None:
    assert feed(ImapParser(), b'a STATUS x (APPENDLIMIT)\r\nb LIST "" ""\r\n') == [
        c.Status("a", "x", ("APPENDLIMIT",)), c.List("b", "", ("",))]


def test_stray_done_outside_idle_is_done_not_a_tag() -> None:
    """The session answers it with an untagged BAD; "DONE BAD" would confuse the client."""
    assert feed(ImapParser(), b"done\r\nb NOOP\r\n") == [Done(), c.Noop("b")]
    assert isinstance(feed(ImapParser(), b"DONE NOOP\r\n")[0], c.Noop)


def test_append_with_unknown_system_flag_is_bad_and_skipped() -> None:
    p = ImapParser()
    assert feed(p, b"a APPEND INBOX (\\Seen \\Foo) {5+}\r\nhello\r\nb NOOP\r\n") == [
        SyntaxErr("a", "unknown system flag \\Foo"), c.Noop("b")]
    events = feed(p, b"c APPEND INBOX (\\seen $Work) {1+}\r\nx\r\n")
    assert events[0] == c.Append("c", "INBOX", ("\\Seen", "$Work"), None, 1, False)
