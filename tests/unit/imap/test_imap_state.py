"""IMAP states (RFC 9051 3): every (state, command class) pair, transitions, read-only rules."""

from __future__ import annotations

import datetime
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.imap import commands as c
from mailwright.imap import search as s
from mailwright.imap.sequence import SequenceSet
from mailwright.imap.state import (
    ALLOWED,
    READ_ONLY_REFUSED,
    State,
    allowed,
    close_expunges,
    next_state,
    refused_read_only,
    selects_read_only,
)

SEQ = SequenceSet(((1, None),))

# One instance of every command class.
SAMPLES: dict[type[c.Command], c.Command] = {
    c.Capability: c.Capability("a"),
    c.Noop: c.Noop("a"),
    c.Logout: c.Logout("a"),
    c.StartTls: c.StartTls("a"),
    c.Authenticate: c.Authenticate("a", "PLAIN"),
    c.Login: c.Login("a", "u", "p"),
    c.Enable: c.Enable("a", ("UTF8=ACCEPT",)),
    c.Select: c.Select("a", "INBOX"),
    c.Examine: c.Examine("a", "INBOX"),
    c.Create: c.Create("a", "x"),
    c.Delete: c.Delete("a", "x"),
    c.Rename: c.Rename("a", "x", "y"),
    c.Subscribe: c.Subscribe("a", "x"),
    c.Unsubscribe: c.Unsubscribe("a", "x"),
    c.List: c.List("a", "", ("*",)),
    c.Lsub: c.Lsub("a", "", "*"),
    c.Namespace: c.Namespace("a"),
    c.Status: c.Status("a", "INBOX", ("MESSAGES",)),
    c.Append: c.Append("a", "INBOX", (), datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
                       10, True),
    c.Idle: c.Idle("a"),
    c.Check: c.Check("a"),
    c.Close: c.Close("a"),
    c.Unselect: c.Unselect("a"),
    c.Expunge: c.Expunge("a"),
    c.Search: c.Search("a", s.FlagKey("ALL")),
    c.Fetch: c.Fetch("a", SEQ, (c.FetchAttr("FLAGS"),)),
    c.Store: c.Store("a", SEQ, "+", False, ("\\Seen",)),
    c.Copy: c.Copy("a", SEQ, "x"),
    c.Move: c.Move("a", SEQ, "x"),
    c.Id: c.Id("a", None),
}

N, A, S, L = "N", "A", "S", "L"  # not authenticated, authenticated, selected, logout
_STATE = {N: State.NOT_AUTHENTICATED, A: State.AUTHENTICATED, S: State.SELECTED, L: State.LOGOUT}

# The expected table, written out from the RFCs independently of state.py.
EXPECTED: dict[type[c.Command], str] = {
    c.Capability: "NAS",  # RFC 9051 6.1: any state
    c.Noop: "NAS",
    c.Logout: "NAS",
    c.Id: "NAS",  # RFC 2971 3.1
    c.StartTls: "N",  # RFC 9051 6.2
    c.Authenticate: "N",
    c.Login: "N",
    c.Enable: "A",  # RFC 5161 3.1: before any mailbox is selected
    c.Select: "AS",  # RFC 9051 6.3
    c.Examine: "AS",
    c.Create: "AS",
    c.Delete: "AS",
    c.Rename: "AS",
    c.Subscribe: "AS",
    c.Unsubscribe: "AS",
    c.List: "AS",
    c.Lsub: "AS",
    c.Namespace: "AS",
    c.Status: "AS",
    c.Append: "AS",
    c.Idle: "AS",  # RFC 2177 3
    c.Check: "S",  # RFC 9051 6.4
    c.Close: "S",
    c.Unselect: "S",
    c.Expunge: "S",
    c.Search: "S",
    c.Fetch: "S",
    c.Store: "S",
    c.Copy: "S",
    c.Move: "S",
}

PAIRS = [(st_, cls) for st_ in (N, A, S, L) for cls in EXPECTED]


def test_samples_cover_every_command_class() -> None:
    assert set(SAMPLES) == set(get_args(c.Command)) == set(EXPECTED)


def test_allowed_table_names_only_command_classes() -> None:
    assert set(ALLOWED) == set(State)
    for classes in ALLOWED.values():
        assert classes <= set(get_args(c.Command))


@pytest.mark.parametrize(("state", "cls"), PAIRS, ids=[f"{p[0]}-{p[1].__name__}" for p in PAIRS])
def test_every_state_command_pair(state: str, cls: type[c.Command]) -> None:
    assert allowed(_STATE[state], SAMPLES[cls]) is (state in EXPECTED[cls])


def test_uid_expunge_is_selected_only() -> None:
    cmd = c.Expunge("a", SEQ)
    assert [allowed(x, cmd) for x in State] == [False, False, True, False]


@pytest.mark.parametrize(("state", "cls", "ok", "after"), [
    (N, c.Login, True, A),
    (N, c.Login, False, N),
    (N, c.Authenticate, True, A),
    (N, c.Authenticate, False, N),
    (N, c.StartTls, True, N),
    (N, c.Logout, True, L),
    (A, c.Select, True, S),
    (A, c.Select, False, A),
    (A, c.Examine, True, S),
    (A, c.Examine, False, A),
    (A, c.Logout, True, L),
    (A, c.Create, True, A),
    (S, c.Select, True, S),
    (S, c.Select, False, A),  # RFC 9051 6.3.2: a failed SELECT closes the selected mailbox
    (S, c.Examine, True, S),
    (S, c.Examine, False, A),  # RFC 9051 6.3.3
    (S, c.Close, True, A),
    (S, c.Close, False, S),
    (S, c.Unselect, True, A),
    (S, c.Fetch, True, S),
    (S, c.Expunge, True, S),
    (S, c.Logout, True, L),
    (S, c.Logout, False, L),
])
def test_transitions(state: str, cls: type[c.Command], ok: bool, after: str) -> None:
    assert next_state(_STATE[state], SAMPLES[cls], ok) is _STATE[after]


@given(st.sampled_from(list(State)), st.sampled_from(list(SAMPLES.values())), st.booleans())
def test_next_state_only_moves_on_the_documented_commands(
    state: State, cmd: c.Command, ok: bool
) -> None:
    after = next_state(state, cmd, ok)
    movers = (c.Login, c.Authenticate, c.Select, c.Examine, c.Close, c.Unselect, c.Logout)
    if not isinstance(cmd, movers):
        assert after is state
    if after is State.SELECTED:
        assert isinstance(cmd, c.Select | c.Examine) or state is State.SELECTED
    if state is State.LOGOUT:
        assert after is State.LOGOUT


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda k: k.__name__)
def test_read_only_refuses_only_changes_to_the_mailbox(cls: type[c.Command]) -> None:
    assert refused_read_only(SAMPLES[cls]) is (cls in (c.Store, c.Expunge, c.Move))


def test_read_only_refuses_uid_expunge_and_uid_forms() -> None:
    assert refused_read_only(c.Expunge("a", SEQ))
    assert refused_read_only(c.Store("a", SEQ, "", True, (), uid=True))
    assert refused_read_only(c.Move("a", SEQ, "x", uid=True))
    assert not refused_read_only(c.Copy("a", SEQ, "x", uid=True))
    assert ALLOWED[State.SELECTED] >= READ_ONLY_REFUSED


def test_examine_selects_read_only_and_close_then_keeps_deleted() -> None:
    assert selects_read_only(SAMPLES[c.Examine])
    assert not selects_read_only(SAMPLES[c.Select])
    assert close_expunges(read_only=False)
    assert not close_expunges(read_only=True)
