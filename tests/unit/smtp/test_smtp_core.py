"""The pure SMTP connection: framing, DATA, BDAT, limits and sequencing, without sockets."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.smtp import responses as R
from mailwright.smtp.commands import ALL_COMMANDS, Auth, Bdat, Data, Ehlo, Mail, Noop, Quit, Rcpt
from mailwright.smtp.core import (
    NEED_DATA,
    AuthResponse,
    BadSequence,
    ChunkEnd,
    ConnectionClosed,
    DataChunk,
    DataEnd,
    ServerConnection,
)
from mailwright.smtp.parser import SyntaxErr
from mailwright.smtp.responses import Reply
from mailwright.smtp.state import State

Feeder = Callable[[ServerConnection, bytes], list[object]]


def drain(conn: ServerConnection, *, accept: bool = True) -> list[object]:
    """Every event available now; accepted commands advance the state (as the session does)."""
    events: list[object] = []
    while (ev := conn.next_event()) is not NEED_DATA:
        events.append(ev)
        if isinstance(ev, ConnectionClosed):
            break
        if isinstance(ev, ALL_COMMANDS) and not isinstance(ev, Bdat) and accept:
            if isinstance(ev, Data):
                conn.start_data()
            else:
                conn.transition(ev, ok=True)
        if isinstance(ev, DataEnd):
            conn.transition(Data(), ok=ev.error is None)
        if isinstance(ev, ChunkEnd):
            conn.transition(ev.command, ok=ev.error is None)
    return events


def whole(conn: ServerConnection, data: bytes) -> list[object]:
    conn.receive_data(data)
    return drain(conn)


def bytewise(conn: ServerConnection, data: bytes) -> list[object]:
    events: list[object] = []
    for i in range(len(data)):
        conn.receive_data(data[i : i + 1])
        events += drain(conn)
    return events


FEEDERS = [whole, bytewise]


def merged(events: list[object]) -> list[object]:
    """Join adjacent DataChunks: how bytes are split across reads is not part of the contract."""
    out: list[object] = []
    for ev in events:
        if isinstance(ev, DataChunk) and out and isinstance(out[-1], DataChunk):
            out[-1] = DataChunk(out[-1].data + ev.data)
        else:
            out.append(ev)
    return out


def greeted(**limits: int) -> ServerConnection:
    conn = ServerConnection(**limits)
    conn.receive_data(b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n")
    drain(conn)
    assert conn.state is State.RCPT
    return conn


@pytest.fixture(params=FEEDERS, ids=lambda f: f.__name__)
def feed(request: pytest.FixtureRequest) -> Feeder:
    return request.param  # type: ignore[no-any-return]  # pytest's param is untyped


def test_full_transaction_transcript(feed: Feeder) -> None:
    conn = ServerConnection()
    wire = (
        b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n"
        b"Subject: x\r\n\r\n..dotted\r\nbody\r\n.\r\nQUIT\r\n"
    )
    assert merged(feed(conn, wire)) == [
        Ehlo("c.example"),
        Mail("a@b.example", {}),
        Rcpt("c@d.example", {}),
        Data(),
        DataChunk(b"Subject: x\r\n\r\n.dotted\r\nbody\r\n"),
        DataEnd(None),
        Quit(),
    ]
    assert conn.state is State.GREETED


def test_trailing_bytes_stay_buffered() -> None:
    conn = ServerConnection()
    conn.receive_data(b"NOOP\r\nNOO")
    assert conn.next_event() == Noop()
    assert conn.next_event() is NEED_DATA
    assert conn.has_buffered_input
    conn.receive_data(b"P\r\n")
    assert conn.next_event() == Noop()


def test_bare_lf_ends_a_command_line() -> None:
    conn = ServerConnection()
    conn.receive_data(b"NOOP\nQUIT\r\n")
    assert drain(conn) == [Noop(), Quit()]


def test_eof_gives_connection_closed() -> None:
    conn = ServerConnection()
    conn.receive_data(b"NOO")
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()


def test_rcpt_before_mail_is_bad_sequence() -> None:
    conn = ServerConnection()
    conn.receive_data(b"EHLO c\r\nRCPT TO:<c@d.example>\r\n")
    events = drain(conn)
    assert isinstance(events[1], BadSequence)
    assert events[1].reply.code == 503


def test_mail_before_ehlo_is_bad_sequence() -> None:
    conn = ServerConnection()
    conn.receive_data(b"MAIL FROM:<a@b.example>\r\n")
    assert isinstance(conn.next_event(), BadSequence)


def test_overlong_command_line_replies_500_and_resyncs(feed: Feeder) -> None:
    conn = ServerConnection(max_command_line=100)
    events = feed(conn, b"NOOP " + b"x" * 500 + b"\r\nNOOP\r\n")
    assert events == [SyntaxErr(R.LINE_TOO_LONG), Noop()]


def test_command_line_at_the_limit_is_accepted() -> None:
    conn = ServerConnection(max_command_line=100)
    line = b"NOOP " + b"x" * (100 - 7) + b"\r\n"
    assert len(line) == 100
    assert whole(conn, line) == [Noop()]
    assert whole(conn, b"NOOP " + b"x" * (100 - 6) + b"\r\n") == [SyntaxErr(R.LINE_TOO_LONG)]


def test_auth_line_may_exceed_the_command_limit() -> None:
    conn = ServerConnection(max_command_line=100)
    conn.receive_data(b"EHLO c\r\nAUTH PLAIN " + b"A" * 2000 + b"\r\n")
    drain(conn, accept=False)  # EHLO not applied: the AUTH is then out of sequence, not too long
    conn.transition(Ehlo("c"), ok=True)
    conn.receive_data(b"AUTH PLAIN " + b"A" * 2000 + b"\r\n")
    assert conn.next_event() == Auth("PLAIN", "A" * 2000)


def test_auth_response_line_is_not_parsed() -> None:
    conn = ServerConnection()
    conn.receive_data(b"QUIT\r\nNOOP\r\n")
    conn.expect_auth_response()
    assert conn.next_event() == AuthResponse(b"QUIT")
    assert conn.next_event() == Noop()
    assert "QUIT" not in repr(AuthResponse(b"QUIT"))


def test_data_dot_unstuffing_and_end(feed: Feeder) -> None:
    conn = greeted()
    events = merged(feed(conn, b"DATA\r\n..\r\n...x\r\n.y\r\n.\r\n"))
    assert events == [Data(), DataChunk(b".\r\n..x\r\ny\r\n"), DataEnd(None)]


def test_empty_message(feed: Feeder) -> None:
    conn = greeted()
    assert feed(conn, b"DATA\r\n.\r\n") == [Data(), DataEnd(None)]


@pytest.mark.parametrize(
    ("smuggle", "outcome"),
    [
        (b"\n.\n", None),  # bare LF terminator (sendmail, CVE-2023-51764): content
        (b"\r\n.\n", None),
        (b"\n.\r\n", None),  # a relay that turns LF into CRLF would end here; we do not
        (b"\r.\r", R.BARE_CR),
        (b"\r\n.\r", R.BARE_CR),
        (b"\r.\r\n", R.BARE_CR),
    ],
)
def test_smtp_smuggling_is_not_an_end_of_data(
    smuggle: bytes, outcome: Reply | None, feed: Feeder
) -> None:
    """Regression (CVE-2023-51764): only CRLF.CRLF ends DATA. Bare-LF variants stay content of
    the one message (normalised to CRLF); bare-CR variants refuse it as a whole."""
    conn = greeted()
    wire = (
        b"DATA\r\nSubject: a" + smuggle
        + b"MAIL FROM:<evil@x.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nspoof\r\n.\r\n"
    )
    events = merged(feed(conn, wire))
    assert events[0] == Data()
    assert events[-1] == DataEnd(outcome)
    assert not any(isinstance(e, Mail) for e in events)
    assert conn.state is State.GREETED
    if outcome is None:
        content = b"".join(e.data for e in events if isinstance(e, DataChunk))
        assert content.startswith(b"Subject: a\r\n")
        assert b"\r\nMAIL FROM:<evil@x.example>\r\n" in content
        assert b"\n" not in content.replace(b"\r\n", b"")


def test_bare_lf_lines_are_stored_with_crlf_and_unstuffed(feed: Feeder) -> None:
    """What smtplib.sendmail(..., msg.as_bytes()) sends: LF lines, dots doubled after LF."""
    conn = greeted()
    events = merged(feed(conn, b"DATA\r\nSubject: x\n\n..dot\nbody\n\r\n.\r\nNOOP\r\n"))
    content = b"".join(e.data for e in events if isinstance(e, DataChunk))
    assert content == b"Subject: x\r\n\r\n.dot\r\nbody\r\n\r\n"
    assert events[-2:] == [DataEnd(None), Noop()]


def test_data_line_too_long_is_drained_then_refused(feed: Feeder) -> None:
    conn = greeted(max_data_line=50)
    events = merged(feed(conn, b"DATA\r\nok\r\n" + b"y" * 200 + b"\r\nmore\r\n.\r\nNOOP\r\n"))
    assert events[-2:] == [DataEnd(R.DATA_LINE_TOO_LONG), Noop()]


def test_message_over_size_is_drained_then_552(feed: Feeder) -> None:
    conn = greeted(max_message_size=100)
    body = b"z" * 60 + b"\r\n"
    events = merged(feed(conn, b"DATA\r\n" + body * 5 + b".\r\nNOOP\r\n"))
    assert events[-2:] == [DataEnd(R.TOO_BIG), Noop()]
    chunks = b"".join(e.data for e in events if isinstance(e, DataChunk))
    assert len(chunks) <= 100


def test_eof_inside_data() -> None:
    conn = greeted()
    conn.receive_data(b"DATA\r\npartial\r\n")
    drain(conn)
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()


def test_bdat_chunks_stream(feed: Feeder) -> None:
    conn = greeted()
    events = merged(feed(conn, b"BDAT 5\r\nhelloBDAT 7 LAST\r\n world\nQUIT\r\n"))
    assert events == [
        Bdat(5, False),
        DataChunk(b"hello"),
        ChunkEnd(Bdat(5, False), None),
        Bdat(7, True),
        DataChunk(b" world\n"),
        ChunkEnd(Bdat(7, True), None),
        Quit(),
    ]
    assert conn.state is State.GREETED


def test_bdat_out_of_sequence_drains_then_503(feed: Feeder) -> None:
    conn = ServerConnection()
    events = feed(conn, b"EHLO c\r\nBDAT 9 LAST\r\nNOOP\r\nxxxNOOP\r\n")
    assert events[1:] == [BadSequence(Bdat(9, True)), Noop()]


def test_bdat_over_size_is_drained_then_552() -> None:
    conn = greeted(max_message_size=10)
    events = merged(whole(conn, b"BDAT 20 LAST\r\n" + b"q" * 20 + b"NOOP\r\n"))
    assert events == [Bdat(20, True), ChunkEnd(Bdat(20, True), R.TOO_BIG), Noop()]


def test_bdat_zero_last() -> None:
    conn = greeted()
    assert whole(conn, b"BDAT 0 LAST\r\n") == [Bdat(0, True), ChunkEnd(Bdat(0, True), None)]


def test_start_tls_discards_pipelined_input() -> None:
    conn = ServerConnection()
    conn.receive_data(b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<a@b.example>\r\n")
    drain(conn, accept=True)
    conn.receive_data(b"EHLO c\r\nSTARTTLS\r\nNOOP\r\n")
    conn.transition(conn.next_event(), ok=True)  # type: ignore[arg-type]
    assert conn.next_event().__class__.__name__ == "StartTls"
    conn.start_tls()
    assert conn.next_event() is NEED_DATA
    assert conn.state is State.CONNECTED
    assert not conn.esmtp


def test_enhanced_codes_only_after_ehlo() -> None:
    conn = ServerConnection()
    assert conn.render(R.OK) == b"250 OK\r\n"
    conn.transition(Ehlo("x"), ok=True)
    assert conn.render(R.OK) == b"250 2.0.0 OK\r\n"


def test_multiline_render() -> None:
    reply = R.Reply(250, "", "host", "PIPELINING", "HELP")
    assert R.render(reply) == b"250-host\r\n250-PIPELINING\r\n250 HELP\r\n"
    assert R.render(R.Reply(334, "", "")) == b"334 \r\n"


EVENT_TYPES = (
    *ALL_COMMANDS, SyntaxErr, BadSequence, DataChunk, DataEnd, ChunkEnd, AuthResponse,
    ConnectionClosed,
)


def _events(conn: ServerConnection) -> Iterator[object]:
    for _ in range(10_000):
        ev = conn.next_event()
        if ev is NEED_DATA:
            return
        yield ev
        if isinstance(ev, ConnectionClosed):
            return
        if isinstance(ev, Data):
            conn.start_data()
        elif isinstance(ev, ALL_COMMANDS) and not isinstance(ev, Bdat):
            conn.transition(ev, ok=True)
        elif isinstance(ev, ChunkEnd):
            conn.transition(ev.command, ok=ev.error is None)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8), st.booleans())
def test_garbage_never_crashes(chunks: list[bytes], eof: bool) -> None:
    conn = ServerConnection(max_command_line=64, max_data_line=64, max_message_size=512)
    for chunk in [*chunks, b""] if eof else chunks:
        conn.receive_data(chunk)
        for ev in _events(conn):
            assert isinstance(ev, EVENT_TYPES)


_cmd_lines = st.sampled_from([
    b"EHLO c\r\n", b"MAIL FROM:<a@b.example>\r\n", b"RCPT TO:<c@d.example>\r\n", b"DATA\r\n",
    b"BDAT 3\r\nabc", b"BDAT 2 LAST\r\nzz", b"RSET\r\n", b".\r\n", b"x\r\n", b"\n.\n", b"..\r\n",
    b"STARTTLS\r\n", b"AUTH PLAIN\r\n", b"\r\n",
])


@settings(deadline=None)  # no flaky timing on a loaded CI machine
@given(st.lists(_cmd_lines, max_size=30))
def test_command_soup_never_crashes(lines: list[bytes]) -> None:
    conn = ServerConnection()
    conn.receive_data(b"".join(lines))
    for ev in _events(conn):
        assert isinstance(ev, EVENT_TYPES)


_data_pieces = st.sampled_from([
    b"a", b"line\r\n", b".", b"..", b"\r\n", b"\n", b"\r", b".\r\n", b"\r\n.\r\n", b"x" * 70,
    b"NOOP\r\n",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(_data_pieces, max_size=40), st.integers(min_value=1, max_value=50))
def test_fast_path_matches_line_loop(pieces: list[bytes], split: int) -> None:
    """The bulk DATA path and the per-line loop agree on every input (same events)."""
    wire = b"".join(pieces) + b"\r\n.\r\n"
    results = []
    for fast in (True, False):
        conn = greeted(max_data_line=60, max_message_size=400)
        conn.fast_path = fast
        conn.receive_data(b"DATA\r\n")
        drain(conn)
        events: list[object] = []
        for i in range(0, len(wire), split):
            conn.receive_data(wire[i : i + split])
            events += drain(conn)
        results.append(merged(events))
    assert results[0] == results[1]
