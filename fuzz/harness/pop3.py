"""POP3: a client stream through the sans-I/O core (pop3/core.py), which frames lines and calls
the command parser (pop3/parser.py). Protocol errors are values (SyntaxErr, BadSequence,
LineTooLong): nothing may raise. The harness plays the session, moving the state only along
`state.TRANSITIONS` (the core raises AssertionError otherwise: a harness bug, not a finding).

Checked besides: the buffer stays within one line plus one read; every reply is one CRLF
line; a parsed command's numbers are in range.
"""

from __future__ import annotations

from mailwright.pop3.commands import (
    Auth,
    Dele,
    List,
    Pass,
    Quit,
    Retr,
    SaslResponse,
    Stls,
    Top,
    Uidl,
    User,
)
from mailwright.pop3.core import NEED_DATA, BadSequence, Closed, LineTooLong, Pop3Connection
from mailwright.pop3.parser import MAX_NUMBER_DIGITS, SyntaxErr
from mailwright.pop3.state import State

from ._support import Steer, check_wire_lines

_MAX_LINES = (8192, 8, 40, 255)


def fuzz_pop3(data: bytes) -> None:
    steer = Steer(data)
    core = Pop3Connection(max_line=_MAX_LINES[steer.limits & 3])
    count = 0
    for read in steer.reads():
        core.receive_data(read)
        while (ev := core.next_event()) is not NEED_DATA:
            count += 1
            assert count <= len(data) + 10, "events without input"
            state = core.state
            match ev:
                case Closed():
                    return
                case SyntaxErr(reply=reply) | BadSequence(reply=reply) | LineTooLong(reply=reply):
                    assert not reply.ok
                    check_wire_lines(reply.encode())
                case SaslResponse():
                    assert state is State.SASL
                    core.set_state(
                        State.SASL if steer.flag()
                        else State.TRANSACTION if steer.flag() else State.AUTHORIZATION
                    )
                case User(name=name):
                    assert name
                    assert not any(ord(c) < 32 for c in name)
                    if steer.flag():
                        core.set_state(State.USER_GIVEN)
                case Pass():
                    core.set_state(State.TRANSACTION if steer.flag() else State.AUTHORIZATION)
                case Auth(mechanism=mech):
                    if mech is not None and steer.flag():
                        core.set_state(State.SASL)
                case Stls():
                    if steer.flag():
                        core.discard_buffer()
                        core.set_state(State.AUTHORIZATION)
                case Quit():
                    if state is State.TRANSACTION:
                        core.set_state(State.UPDATE)
                        return
                case Retr(msg=n) | Dele(msg=n) | Top(msg=n) | List(msg=n) | Uidl(msg=n):
                    assert n is None or 0 <= n < 10**MAX_NUMBER_DIGITS
                case _:
                    pass
        assert core.buffered <= core.max_line + 1 + len(read), "buffer over one line and a read"
    raise AssertionError("no Closed after EOF")
