"""The POP3 line grammar: tables of (wire, expected value), fed whole, byte by byte and with
trailing bytes (STYLE.md 8), plus property tests: any bytes give a value, never an exception."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.pop3.commands import (
    Auth,
    Capa,
    Command,
    Dele,
    List,
    Noop,
    Pass,
    Quit,
    Retr,
    Rset,
    SaslResponse,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
)
from mailwright.pop3.core import NEED_DATA, BadSequence, Closed, LineTooLong, Pop3Connection
from mailwright.pop3.parser import SyntaxErr, parse_command
from mailwright.pop3.state import State

VALID: list[tuple[bytes, Command]] = [
    (b"USER alice@example.test", User("alice@example.test")),
    (b"user alice", User("alice")),
    (b"PASS secret", Pass("secret")),
    (b"PASS two words  ", Pass("two words  ")),  # RFC 1939 7: spaces belong to the password
    (b"PASS  lead", Pass(" lead")),
    (b"AUTH", Auth()),
    (b"AUTH plain", Auth("PLAIN")),
    (b"AUTH PLAIN AGFsaWNlAHNlY3JldA==", Auth("PLAIN", "AGFsaWNlAHNlY3JldA==")),
    (b"AUTH LOGIN =", Auth("LOGIN", "=")),
    (b"CAPA", Capa()),
    (b"STLS", Stls()),
    (b"STAT", Stat()),
    (b"stat", Stat()),
    (b"LIST", List()),
    (b"LIST 3", List(3)),
    (b"LIST  3 ", List(3)),
    (b"RETR 1", Retr(1)),
    (b"RETR 0", Retr(0)),  # a number that names no message: the maildrop's answer, not syntax
    (b"DELE 12", Dele(12)),
    (b"NOOP", Noop()),
    (b"RSET", Rset()),
    (b"QUIT", Quit()),
    (b"TOP 1 0", Top(1, 0)),
    (b"top 2 10", Top(2, 10)),
    (b"UIDL", Uidl()),
    (b"UIDL 7", Uidl(7)),
]

INVALID: list[bytes] = [
    b"",
    b"HELO",
    b"RETR",
    b"RETR x",
    b"RETR -1",
    b"RETR 1 2",
    b"RETR 12345678901",  # over MAX_NUMBER_DIGITS
    b"RETR \xd9\xa3",  # Arabic-Indic digit three: isdigit() but not ASCII
    b"DELE",
    b"TOP 1",
    b"TOP 1 x",
    b"TOP x 1",
    b"LIST a",
    b"STAT 1",
    b"QUIT now",
    b"USER",
    b"USER   ",
    b"USER a\x00b",
    b"PASS",
    b"AUTH PLAIN a b",
    b"AUTH PL@IN",
    b"\xff\xfe",
    b" STAT",
]


@pytest.mark.parametrize(("line", "expected"), VALID)
def test_valid_line_parses(line: bytes, expected: Command) -> None:
    assert parse_command(line) == expected


@pytest.mark.parametrize("line", INVALID)
def test_invalid_line_is_a_syntax_error_value(line: bytes) -> None:
    result = parse_command(line)
    assert isinstance(result, SyntaxErr)
    assert not result.reply.ok
    assert result.reply.encode().startswith(b"-ERR ")


def _core(state: State = State.AUTHORIZATION) -> Pop3Connection:
    core = Pop3Connection(max_line=300)
    core.state = state  # tests may jump straight to a state; sessions use set_state
    return core


def _events(core: Pop3Connection) -> list[object]:
    out: list[object] = []
    while (ev := core.next_event()) is not NEED_DATA:
        out.append(ev)
        if isinstance(ev, Closed):
            break
    return out


def _state_for(cmd: Command) -> State:
    return State.USER_GIVEN if isinstance(cmd, Pass) else (
        State.AUTHORIZATION if isinstance(cmd, User | Auth | Stls | Capa) else State.TRANSACTION
    )


@pytest.mark.parametrize(("line", "expected"), VALID)
def test_framing_whole(line: bytes, expected: Command) -> None:
    core = _core(_state_for(expected))
    core.receive_data(line + b"\r\n")
    assert _events(core) == [expected]


@pytest.mark.parametrize(("line", "expected"), VALID)
def test_framing_byte_by_byte(line: bytes, expected: Command) -> None:
    core = _core(_state_for(expected))
    data = line + b"\r\n"
    for i in range(len(data) - 1):
        core.receive_data(data[i : i + 1])
        assert core.next_event() is NEED_DATA
    core.receive_data(data[-1:])
    assert core.next_event() == expected
    assert core.next_event() is NEED_DATA


@pytest.mark.parametrize(("line", "expected"), VALID)
def test_framing_with_trailing_bytes(line: bytes, expected: Command) -> None:
    core = _core(_state_for(expected))
    core.receive_data(line + b"\r\nNOO")
    assert core.next_event() == expected
    assert core.next_event() is NEED_DATA
    assert core.buffered == 3


def test_bare_lf_ends_a_line() -> None:
    core = _core()
    core.receive_data(b"CAPA\nQUIT\r\n")
    assert _events(core) == [Capa(), Quit()]


def test_pipelined_commands_come_out_in_order() -> None:
    core = _core(State.TRANSACTION)
    core.receive_data(b"STAT\r\nLIST\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n")
    assert _events(core) == [Stat(), List(), Retr(1), Dele(1), Quit()]


def test_command_not_allowed_in_state_is_bad_sequence() -> None:
    core = _core()
    core.receive_data(b"STAT\r\nPASS x\r\n")
    events = _events(core)
    assert all(isinstance(e, BadSequence) for e in events)
    assert events[1].reply.text.startswith("No username")  # type: ignore[union-attr]


def test_over_long_line_is_reported_once_and_skipped() -> None:
    core = _core()
    core.receive_data(b"USER " + b"a" * 400)
    assert isinstance(core.next_event(), LineTooLong)
    core.receive_data(b"b" * 1000)
    assert core.next_event() is NEED_DATA
    core.receive_data(b"c\r\nCAPA\r\n")
    assert core.next_event() == Capa()


def test_over_long_line_with_its_crlf_in_one_read() -> None:
    core = _core()
    core.receive_data(b"USER " + b"a" * 297 + b"\r\nCAPA\r\n")  # 304 octets with CRLF > 300
    assert isinstance(core.next_event(), LineTooLong)
    assert core.next_event() == Capa()


def test_line_at_the_limit_is_accepted() -> None:
    core = _core(State.USER_GIVEN)
    password = "a" * (300 - len("PASS \r\n"))
    core.receive_data(f"PASS {password}\r\n".encode())
    assert core.next_event() == Pass(password)


def test_eof_gives_closed_after_complete_lines() -> None:
    core = _core()
    core.receive_data(b"CAPA\r\nQUI")
    core.receive_data(b"")
    assert core.next_event() == Capa()
    assert core.next_event() == Closed()


def test_sasl_state_returns_responses_not_commands() -> None:
    core = _core(State.SASL)
    core.receive_data(b"QUIT\r\n*\r\n")
    first, second = _events(core)
    assert first == SaslResponse("QUIT")
    assert isinstance(second, SaslResponse)
    assert second.cancelled


def test_discard_buffer_forgets_pipelined_plaintext() -> None:
    core = _core()
    core.receive_data(b"STLS\r\nUSER mallory\r\n")
    assert core.next_event() == Stls()
    core.discard_buffer()
    assert core.next_event() is NEED_DATA


def test_secrets_do_not_appear_in_repr() -> None:
    assert "hunter2" not in repr(Pass("hunter2"))
    assert "AGFsaWNl" not in repr(Auth("PLAIN", "AGFsaWNlAHNlY3JldA=="))
    assert "c2VjcmV0" not in repr(SaslResponse("c2VjcmV0"))


# ----- properties -----------------------------------------------------------------------------
_EVENT_TYPES = (
    User, Pass, Auth, Capa, Stls, Stat, List, Retr, Dele, Noop, Rset, Quit, Top, Uidl,
    SaslResponse, SyntaxErr, BadSequence, LineTooLong, Closed,
)


@given(st.binary(max_size=600))
def test_parse_command_never_raises(data: bytes) -> None:
    result = parse_command(data)
    assert isinstance(result, _EVENT_TYPES)


@given(
    st.lists(st.binary(max_size=400), max_size=8),
    st.sampled_from(list(State)),
)
def test_core_never_raises_on_any_bytes(chunks: list[bytes], state: State) -> None:
    core = _core(state)
    for chunk in chunks:
        core.receive_data(chunk)
        while (ev := core.next_event()) is not NEED_DATA:
            assert isinstance(ev, _EVENT_TYPES)
            if isinstance(ev, Closed):  # an empty chunk is EOF: Closed from then on
                return
    core.receive_data(b"")
    while (ev := core.next_event()) is not NEED_DATA:
        if isinstance(ev, Closed):
            break
        assert isinstance(ev, _EVENT_TYPES)


_COMMAND_LINES = st.sampled_from([line for line, _ in VALID])


@given(st.lists(_COMMAND_LINES, min_size=1, max_size=10), st.data())
def test_any_split_of_a_pipeline_gives_the_same_commands(
    lines: list[bytes], data: st.DataObject
) -> None:
    wire = b"".join(line + b"\r\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    whole, split = _core(), _core()
    whole.receive_data(wire)
    expected = _events(whole)
    got: list[object] = []
    start = 0
    for cut in [*cuts, len(wire)]:
        if cut > start:  # b"" would mean EOF
            split.receive_data(wire[start:cut])
        start = cut
        got += _events(split)
    assert got == expected
