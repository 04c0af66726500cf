"""IMAP: whole client streams through the sans-I/O reader (imap/parser.py: framing, literals,
APPEND streaming, IDLE, AUTHENTICATE) and the grammar (imap/grammar.py, imap/lexer.py);
SEARCH programs through the grammar and the evaluator (imap/search_eval.py); modified UTF-7
mailbox names (imap/mutf7.py).

Protocol errors are values (SyntaxErr, TooBig, AppendEnd.error, Mutf7Error): nothing raises.
Checked besides:
- every parsed command renders back to itself (imap/render.py's promise);
- every BAD renders to one CRLF line, tagged with the client's tag;
- the reader holds at most one line plus one command plus one read (its docstring's bound);
- APPEND data is delivered exactly: as many octets as announced, never more;
- `matches` and the compiled `search` agree, and NOT inverts;
- mutf7: what decodes re-encodes to the same wire form, and encode/decode round-trips.
"""

from __future__ import annotations

import datetime
import functools

from mailwright.imap import commands as c
from mailwright.imap import mutf7
from mailwright.imap import responses as r
from mailwright.imap import search as s
from mailwright.imap.grammar import SyntaxErr, parse_command
from mailwright.imap.parser import (
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
from mailwright.imap.render import render
from mailwright.imap.search_eval import SearchContext, matches, message_header, search
from mailwright.message import analyze

from ._support import Steer, check_wire_lines

_MAX_LINES = (65536, 16, 64, 1024)
_MAX_LITERALS = (65536, 0, 10, 200)
_MAX_COMMANDS = (256 * 1024, 32, 200, 2048)
_MAX_APPENDS = (50 * 1024 * 1024, 0, 10, 1000)


def _parse_alone(wire: bytes, utf8: bool) -> list[Event]:
    p = ImapParser(utf8=utf8)
    p.receive_data(wire)
    out: list[Event] = []
    while not isinstance(ev := p.next_event(), NeedData):
        if not isinstance(ev, Continuation):
            out.append(ev)
    return out


def _check_command(cmd: c.Command, utf8: bool) -> None:
    if isinstance(cmd, c.Append):
        return  # its message octets follow; tests/unit/imap/test_imap_roundtrip.py covers it
    if isinstance(cmd, c.Search) and cmd.charset not in (None, "UTF-8", "US-ASCII"):
        # The grammar keeps such strings as latin-1 only so that the session can answer
        # NO [BADCHARSET] (RFC 9051 6.4.4); render() writes UTF-8, so they cannot round-trip.
        return
    wire = render(cmd, utf8=utf8)
    again = _parse_alone(wire, utf8)
    assert again == [cmd], (cmd, wire, again)


def fuzz_imap(data: bytes) -> None:
    steer = Steer(data)
    lim = steer.limits
    p = ImapParser(
        max_line=_MAX_LINES[lim & 3],
        max_literal=_MAX_LITERALS[(lim >> 2) & 3],
        max_command=_MAX_COMMANDS[(lim >> 4) & 3],
        max_append=_MAX_APPENDS[(lim >> 6) & 3],
        literal_minus=steer.flag(),
        utf8=steer.flag(),
    )
    append_left: int | None = None  # octets still due to the APPEND in progress
    count = 0
    for read in steer.reads():
        p.receive_data(read)
        while not isinstance(ev := p.next_event(), NeedData):
            count += 1
            assert count <= 2 * len(data) + 10, "events without input"
            match ev:
                case Closed():
                    return
                case SyntaxErr(tag=tag, text=text):
                    out = r.tagged(tag, "BAD", text) if tag else r.untagged_status("BAD", text)
                    check_wire_lines(out)
                case Continuation() | TooBig() | Done() | SaslResponse():
                    pass
                case AppendChunk(data=chunk):
                    assert append_left is not None
                    assert len(chunk) <= append_left
                    append_left -= len(chunk)
                case AppendEnd():
                    assert append_left == 0, append_left
                    append_left = None
                case c.Append(size=size):
                    assert size <= p.max_append
                    if steer.flag():
                        p.reject_append()
                    else:
                        append_left = size
                case c.Idle(tag=tag):
                    if steer.flag():
                        p.start_idle(tag)
                case c.Authenticate(tag=tag):
                    if steer.flag():
                        p.start_sasl(tag)
                case c.Enable(capabilities=caps):
                    if "UTF8=ACCEPT" in caps and steer.flag():
                        p.enable_utf8()
                case c.StartTls():
                    if steer.flag():
                        p.discard_buffer()
                case _:
                    pass
            if not isinstance(ev, c.Append) and isinstance(ev, c.Command):
                _check_command(ev, p.utf8)
        # Private state, read on purpose: the bound is the point of the framing layer.
        assert len(p._buf) <= p.max_line + len(read), "reader holds more than a line and a read"
        assert len(p._cmd) <= p.max_command + p.max_line + 2, "command over its limit"
    raise AssertionError("no Closed after EOF")


_SEARCH_MESSAGES = (
    b"Date: Tue, 05 Mar 2024 23:30:00 -0800\r\nFrom: Ann <ann@example.org>\r\n"
    b"To: bob@example.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nHello Bob\r\n",
    b"Subject: second\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n--x--\r\n",
    b"X: y\r\n z\r\nDate: junk\r\n\r\n\xff\xfe body\r\n",
)


@functools.cache
def _contexts() -> tuple[SearchContext, ...]:
    out = []
    for i, raw in enumerate(_SEARCH_MESSAGES, start=1):
        info = analyze(raw)
        out.append(SearchContext(
            msn=i, uid=i * 7, flags=frozenset({"\\Seen", "$x"} if i % 2 else {"\\Deleted"}),
            internal_date=1_700_000_000 + i * 86_400, size=len(raw), info=info,
            header=message_header(raw, info), last_msn=len(_SEARCH_MESSAGES),
            last_uid=7 * len(_SEARCH_MESSAGES), saved=frozenset({7}),
            tz=datetime.timezone(datetime.timedelta(hours=-8)),
        ))
    return tuple(out)


def fuzz_imap_search(data: bytes) -> None:
    """Byte 0 bit 0: UTF8=ACCEPT; bit 1: UID SEARCH. The rest is what follows "SEARCH "."""
    mode = data[0] if data else 0
    verb = b"a UID SEARCH " if mode & 2 else b"a SEARCH "
    cmd = parse_command(verb + data[1:], utf8=bool(mode & 1))
    if isinstance(cmd, SyntaxErr):
        check_wire_lines(r.tagged(cmd.tag or "a", "BAD", cmd.text))
        return
    assert isinstance(cmd, c.Search), cmd
    _check_command(cmd, bool(mode & 1))
    contexts = _contexts()
    plain = [ctx.msn for ctx in contexts if matches(cmd.key, ctx)]
    assert search(cmd.key, contexts) == plain
    negated = [ctx.msn for ctx in contexts if matches(s.Not(cmd.key), ctx)]
    assert sorted(plain + negated) == [ctx.msn for ctx in contexts]


def fuzz_mutf7(data: bytes) -> None:
    """Byte 0 bit 0: decode the rest as wire text (latin-1), else encode it as UTF-8 text."""
    mode, rest = (data[0] if data else 0), data[1:]
    if mode & 1:
        wire = rest.decode("latin-1")
        name = mutf7.decode(wire)
        if isinstance(name, mutf7.Mutf7Error):
            assert name.text
            return
        assert mutf7.encode(name) == wire
        return
    text = rest.decode("utf-8", "replace")
    wire = mutf7.encode(text)
    assert all(0x20 <= ord(ch) <= 0x7E for ch in wire), wire
    assert mutf7.decode(wire) == text
