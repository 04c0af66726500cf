"""The SMTP transaction state machine in one table (RFC 5321 4.1.4, 3.3; RFC 3030 2).

Everything that decides whether a command may come next lives here: `ALLOWED` says which
commands each state accepts (anything else is 503 5.5.1 Bad sequence), and `ON_SUCCESS` says
where a command that the session accepted leads. A command the session refused leaves the
state unchanged, except where `ON_FAILURE` says otherwise (a failed DATA/BDAT ends the
transaction).

DATA and the SASL exchange are not states here: they are framing modes of the core (the next
bytes are not command lines), entered when the session accepts DATA or starts AUTH.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

from mailwright.smtp.commands import (
    Auth,
    Bdat,
    Command,
    Data,
    Ehlo,
    Expn,
    Helo,
    Help,
    Mail,
    Noop,
    Quit,
    Rcpt,
    Rset,
    StartTls,
    Vrfy,
)


class State(enum.Enum):
    CONNECTED = "connected"  # greeting sent; no HELO/EHLO yet (or reset by STARTTLS)
    GREETED = "greeted"  # HELO/EHLO done, no transaction
    MAIL = "mail"  # MAIL accepted, no recipient yet
    RCPT = "rcpt"  # at least one recipient accepted
    BDAT = "bdat"  # at least one BDAT chunk without LAST accepted (RFC 3030 2)


# RFC 5321 4.1.4: these may be issued at any time (EHLO/HELO and RSET also abort a transaction).
_ANYTIME: Final = frozenset({Ehlo, Helo, Rset, Noop, Quit, Vrfy, Expn, Help})

ALLOWED: Final[Mapping[State, frozenset[type[Command]]]] = {
    State.CONNECTED: _ANYTIME,
    # RFC 4954 4: AUTH is not permitted during a mail transaction; RFC 3207: nor is STARTTLS.
    State.GREETED: _ANYTIME | {Mail, Auth, StartTls},
    State.MAIL: _ANYTIME | {Rcpt},
    State.RCPT: _ANYTIME | {Rcpt, Data, Bdat},
    # RFC 3030 2: once BDAT started, more RCPT or a DATA would mix two message framings.
    State.BDAT: frozenset({Bdat, Rset, Noop, Quit, Ehlo, Helo}),
}

# The state after a command the session accepted. Commands not listed keep the state.
ON_SUCCESS: Final[Mapping[type[Command], Mapping[State, State]]] = {
    Ehlo: {s: State.GREETED for s in State},
    Helo: {s: State.GREETED for s in State},
    Rset: {s: (State.CONNECTED if s is State.CONNECTED else State.GREETED) for s in State},
    Mail: {State.GREETED: State.MAIL},
    Rcpt: {State.MAIL: State.RCPT, State.RCPT: State.RCPT},
    Data: {State.RCPT: State.GREETED},  # after the message (accepted or not)
    # A non-LAST chunk (see `next_state`): RCPT -> BDAT; LAST: -> GREETED.
    Bdat: {State.RCPT: State.BDAT, State.BDAT: State.BDAT},
    # RFC 3207 4.2: after TLS the server MUST discard all knowledge obtained from the client.
    StartTls: {State.GREETED: State.CONNECTED},
}

# A refused DATA or BDAT ends the transaction (RFC 3030 3: the client must RSET or start over).
ON_FAILURE: Final[Mapping[type[Command], Mapping[State, State]]] = {
    Data: {State.RCPT: State.GREETED},
    Bdat: {State.RCPT: State.GREETED, State.BDAT: State.GREETED},
}


def allowed(state: State, command: Command) -> bool:
    return type(command) in ALLOWED[state]


def next_state(state: State, command: Command, *, ok: bool) -> State:
    if isinstance(command, Bdat) and ok and command.last:
        return State.GREETED
    table = ON_SUCCESS if ok else ON_FAILURE
    return table.get(type(command), {}).get(state, state)


def in_transaction(state: State) -> bool:
    return state in (State.MAIL, State.RCPT, State.BDAT)
