"""The POP3 session states and everything that depends on them, in one table (STYLE.md 4).

RFC 1939 3: AUTHORIZATION until the client identifies itself, TRANSACTION once the maildrop is
locked and opened, UPDATE after QUIT. We split AUTHORIZATION in three so the table says it all:
- AUTHORIZATION: nothing given yet;
- USER_GIVEN: after a successful USER, waiting for PASS (RFC 1939 7);
- SASL: inside an AUTH exchange, where each line is a SASL response, not a command (RFC 5034 4).
Anything not in `ALLOWED[state]` is answered with a -ERR and changes nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

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


class State(enum.Enum):
    AUTHORIZATION = "authorization"
    USER_GIVEN = "user-given"
    SASL = "sasl"
    TRANSACTION = "transaction"
    UPDATE = "update"


_AUTHORIZATION: Final = frozenset({User, Auth, Capa, Stls, Quit})

ALLOWED: Final[Mapping[State, frozenset[type[Command]]]] = {
    State.AUTHORIZATION: _AUTHORIZATION,
    # RFC 1939 7: after USER the client may send PASS or QUIT; like Dovecot and Courier we also
    # let it start over with another USER or AUTH, or ask CAPA.
    State.USER_GIVEN: _AUTHORIZATION | {Pass},
    State.SASL: frozenset(),  # lines are SASL responses; see `core`
    # RFC 1939 5-7 and RFC 2449 5 (CAPA in both states). STLS is only for AUTHORIZATION
    # (RFC 2595 4); NOOP only for TRANSACTION (RFC 1939 5).
    State.TRANSACTION: frozenset({Stat, List, Retr, Dele, Noop, Rset, Quit, Top, Uidl, Capa}),
    State.UPDATE: frozenset(),
}

# The transitions the session may ask for (anything else is a bug, and `core` raises).
TRANSITIONS: Final[frozenset[tuple[State, State]]] = frozenset(
    {
        (State.AUTHORIZATION, State.USER_GIVEN),
        (State.USER_GIVEN, State.USER_GIVEN),  # a second USER replaces the first
        (State.USER_GIVEN, State.AUTHORIZATION),  # PASS failed, or AUTH started over
        (State.AUTHORIZATION, State.SASL),
        (State.USER_GIVEN, State.SASL),
        (State.SASL, State.AUTHORIZATION),  # cancelled or failed
        (State.SASL, State.SASL),  # LOGIN's second step
        (State.USER_GIVEN, State.TRANSACTION),  # PASS accepted and maildrop locked
        (State.SASL, State.TRANSACTION),  # AUTH succeeded and maildrop locked
        (State.TRANSACTION, State.UPDATE),  # QUIT
        (State.AUTHORIZATION, State.AUTHORIZATION),  # STLS: the session starts over
    }
)


def out_of_sequence_text(state: State, command: type[Command]) -> str:
    """The -ERR text for a command not allowed in `state`."""
    if command is Pass:
        return "No username given: send USER first"
    if command is Stls and state is State.TRANSACTION:
        return "STLS is only allowed before authentication"
    if state in (State.AUTHORIZATION, State.USER_GIVEN):
        return "Not authenticated: log in first"
    if state is State.TRANSACTION:
        return "Already authenticated"
    return "Command not allowed now"
