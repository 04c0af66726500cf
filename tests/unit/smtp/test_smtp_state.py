"""The state table (state.py) checked for every (state, command) pair, as h2 does."""

from __future__ import annotations

import pytest

from mailwright.smtp.commands import ALL_COMMANDS, Auth, Bdat, Command, Data, Ehlo, Mail, Rcpt, Rset
from mailwright.smtp.core import NEED_DATA, BadSequence, ServerConnection
from mailwright.smtp.state import ALLOWED, State, next_state

WIRE: dict[type[Command], bytes] = {
    Ehlo: b"EHLO c", Mail: b"MAIL FROM:<a@b.example>", Rcpt: b"RCPT TO:<c@d.example>",
    Data: b"DATA", Bdat: b"BDAT 0 LAST", Rset: b"RSET", Auth: b"AUTH PLAIN",
}
for cls, line in {"Helo": b"HELO c", "Noop": b"NOOP", "Quit": b"QUIT", "Vrfy": b"VRFY x",
                  "Expn": b"EXPN x", "Help": b"HELP", "StartTls": b"STARTTLS"}.items():
    WIRE[next(c for c in ALL_COMMANDS if c.__name__ == cls)] = line


def test_every_command_has_a_wire_form() -> None:
    assert set(WIRE) == set(ALL_COMMANDS)


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("command", ALL_COMMANDS, ids=lambda c: c.__name__)
def test_core_follows_the_table(state: State, command: type[Command]) -> None:
    conn = ServerConnection()
    conn.state = state
    conn.receive_data(WIRE[command] + b"\r\n")
    ev = conn.next_event()
    if command in ALLOWED[state]:
        assert isinstance(ev, command)
    else:
        assert isinstance(ev, BadSequence)
        assert ev.reply.code == 503
    if command is Bdat and command in ALLOWED[state]:
        assert conn.next_event().__class__.__name__ == "ChunkEnd"
    assert conn.next_event() is NEED_DATA


def test_transitions() -> None:
    assert next_state(State.CONNECTED, Ehlo("c"), ok=True) is State.GREETED
    assert next_state(State.GREETED, Mail("a@b.c"), ok=True) is State.MAIL
    assert next_state(State.GREETED, Mail("a@b.c"), ok=False) is State.GREETED
    assert next_state(State.MAIL, Rcpt("a@b.c"), ok=True) is State.RCPT
    assert next_state(State.RCPT, Bdat(1, False), ok=True) is State.BDAT
    assert next_state(State.BDAT, Bdat(1, True), ok=True) is State.GREETED
    assert next_state(State.BDAT, Bdat(1, False), ok=False) is State.GREETED
    assert next_state(State.RCPT, Data(), ok=False) is State.GREETED
    assert next_state(State.RCPT, Rset(), ok=True) is State.GREETED
    assert next_state(State.CONNECTED, Rset(), ok=True) is State.CONNECTED
