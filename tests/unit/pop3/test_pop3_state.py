"""The state table (STYLE.md 4, 9): every (state, command) pair is checked."""

from __future__ import annotations

import pytest

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
    Stat,
    Stls,
    Top,
    Uidl,
    User,
)
from mailwright.pop3.core import BadSequence, Pop3Connection
from mailwright.pop3.state import ALLOWED, TRANSITIONS, State

SAMPLES: dict[type[Command], bytes] = {
    User: b"USER a", Pass: b"PASS b", Auth: b"AUTH PLAIN", Capa: b"CAPA", Stls: b"STLS",
    Stat: b"STAT", List: b"LIST", Retr: b"RETR 1", Dele: b"DELE 1", Noop: b"NOOP",
    Rset: b"RSET", Quit: b"QUIT", Top: b"TOP 1 1", Uidl: b"UIDL",
}

EXPECTED: dict[State, set[type[Command]]] = {
    State.AUTHORIZATION: {User, Auth, Capa, Stls, Quit},
    State.USER_GIVEN: {User, Pass, Auth, Capa, Stls, Quit},
    State.SASL: set(),
    State.TRANSACTION: {Stat, List, Retr, Dele, Noop, Rset, Quit, Top, Uidl, Capa},
    State.UPDATE: set(),
}


def test_every_command_has_a_sample() -> None:
    assert set(SAMPLES) == {t for allowed in EXPECTED.values() for t in allowed} | {Pass}


@pytest.mark.parametrize("state", [s for s in State if s is not State.SASL])
@pytest.mark.parametrize("command", list(SAMPLES))
def test_state_table_pair(state: State, command: type[Command]) -> None:
    core = Pop3Connection()
    core.state = state
    core.receive_data(SAMPLES[command] + b"\r\n")
    event = core.next_event()
    if command in EXPECTED[state]:
        assert type(event) is command
    else:
        assert isinstance(event, BadSequence)
        assert event.reply.encode().startswith(b"-ERR ")


def test_table_matches_expectation() -> None:
    assert {s: set(a) for s, a in ALLOWED.items()} == EXPECTED


def test_stls_never_allowed_after_login() -> None:
    # RFC 2595 4: STLS only in AUTHORIZATION.
    assert Stls not in ALLOWED[State.TRANSACTION]


def test_update_is_final() -> None:
    assert not any(src is State.UPDATE for src, _ in TRANSITIONS)


@pytest.mark.parametrize("dst", list(State))
def test_invalid_transition_raises(dst: State) -> None:
    core = Pop3Connection()
    core.state = State.UPDATE
    with pytest.raises(AssertionError):
        core.set_state(dst)


def test_transaction_only_reachable_from_a_login() -> None:
    sources = {src for src, dst in TRANSITIONS if dst is State.TRANSACTION}
    assert sources == {State.USER_GIVEN, State.SASL}
