"""IMAP connection states (RFC 9051 3, RFC 3501 3) and the commands each state allows.

Everything that affects the state machine lives here (as h11 `_state.py` says of itself):
`ALLOWED` says which command classes a state accepts, `TRANSITIONS` says where a command leads
on success or failure, and `READ_ONLY_REFUSED` says which commands a mailbox selected with
EXAMINE refuses. Anything not in `TRANSITIONS` leaves the state as it is.

Pure: no I/O. The session asks `allowed()` before running a command (a command outside its
state answers BAD, RFC 9051 6: "commands ... are valid in ... state"), then calls
`next_state()` with the outcome.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

from mailwright.imap.commands import (
    Append,
    Authenticate,
    Capability,
    Check,
    Close,
    Command,
    Copy,
    Create,
    Delete,
    Enable,
    Examine,
    Expunge,
    Fetch,
    Id,
    Idle,
    List,
    Login,
    Logout,
    Lsub,
    Move,
    Namespace,
    Noop,
    Rename,
    Search,
    Select,
    StartTls,
    Status,
    Store,
    Subscribe,
    Unselect,
    Unsubscribe,
)


class State(enum.Enum):
    """RFC 9051 3.1-3.4."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


# RFC 9051 6.1: CAPABILITY, NOOP, LOGOUT are valid in any state; RFC 2971 3.1: so is ID.
_ANY_STATE: Final[frozenset[type[Command]]] = frozenset({Capability, Noop, Logout, Id})

# RFC 9051 6.3 (valid in authenticated and selected state), plus IDLE (RFC 2177 3: "in the
# authenticated or selected state"). ENABLE is not here: RFC 5161 3.1 and RFC 9051 6.3.1 allow
# it only in the authenticated state, "before any mailbox is selected".
_AUTHENTICATED_OR_SELECTED: Final[frozenset[type[Command]]] = frozenset({
    Select, Examine, Create, Delete, Rename, Subscribe, Unsubscribe, List, Lsub, Namespace,
    Status, Append, Idle,
})

ALLOWED: Final[Mapping[State, frozenset[type[Command]]]] = {
    # RFC 9051 6.2: STARTTLS, AUTHENTICATE, LOGIN.
    State.NOT_AUTHENTICATED: _ANY_STATE | {StartTls, Authenticate, Login},
    State.AUTHENTICATED: _ANY_STATE | _AUTHENTICATED_OR_SELECTED | {Enable},
    # RFC 9051 6.4, RFC 3691 (UNSELECT), RFC 6851 (MOVE), RFC 4315 2.1 (UID EXPUNGE is an
    # `Expunge` with a uid_set). CHECK is RFC 3501 6.4.1 (gone from 9051 but still sent).
    State.SELECTED: _ANY_STATE | _AUTHENTICATED_OR_SELECTED | {
        Check, Close, Unselect, Expunge, Search, Fetch, Store, Copy, Move,
    },
    # RFC 9051 3.4: the server closes the connection; nothing more is read.
    State.LOGOUT: frozenset(),
}

# (state, command class, succeeded) -> next state. RFC 9051 3 figure 1 and:
# - 6.3.2 / 6.3.3: a SELECT or EXAMINE that fails while a mailbox is selected leaves the
#   session in the authenticated state (the old mailbox is closed first, without expunge).
# - 6.1.3: LOGOUT always ends in the logout state.
TRANSITIONS: Final[Mapping[tuple[State, type[Command], bool], State]] = {
    (State.NOT_AUTHENTICATED, Login, True): State.AUTHENTICATED,
    (State.NOT_AUTHENTICATED, Authenticate, True): State.AUTHENTICATED,
    (State.AUTHENTICATED, Select, True): State.SELECTED,
    (State.AUTHENTICATED, Examine, True): State.SELECTED,
    (State.SELECTED, Select, True): State.SELECTED,
    (State.SELECTED, Examine, True): State.SELECTED,
    (State.SELECTED, Select, False): State.AUTHENTICATED,
    (State.SELECTED, Examine, False): State.AUTHENTICATED,
    (State.SELECTED, Close, True): State.AUTHENTICATED,
    (State.SELECTED, Unselect, True): State.AUTHENTICATED,
    **{
        (s, Logout, ok): State.LOGOUT
        for s in State
        if s is not State.LOGOUT
        for ok in (True, False)
    },
}

# Commands that change a mailbox selected read-only (EXAMINE, RFC 9051 6.3.3) answer NO:
# STORE (6.4.6), EXPUNGE and UID EXPUNGE (6.4.3, 6.4.9), MOVE (RFC 6851 3.3: it expunges the
# source). COPY only reads the source; APPEND names its target, so neither is here. CLOSE on a
# read-only mailbox is not refused, it just removes nothing (RFC 9051 6.4.1): `close_expunges`.
READ_ONLY_REFUSED: Final[frozenset[type[Command]]] = frozenset({Store, Expunge, Move})


def allowed(state: State, cmd: Command) -> bool:
    """Whether `cmd` is valid in `state` (otherwise the session answers BAD)."""
    return type(cmd) in ALLOWED[state]


def next_state(state: State, cmd: Command, ok: bool) -> State:
    """The state after `cmd` ran in `state` and succeeded (`ok`) or failed."""
    return TRANSITIONS.get((state, type(cmd), ok), state)


def refused_read_only(cmd: Command) -> bool:
    """True when `cmd` must answer NO because the selected mailbox is read-only (EXAMINE)."""
    return type(cmd) in READ_ONLY_REFUSED


def selects_read_only(cmd: Command) -> bool:
    """True for EXAMINE: the mailbox it selects is read-only (RFC 9051 6.3.3)."""
    return isinstance(cmd, Examine)


def close_expunges(read_only: bool) -> bool:
    """CLOSE removes \\Deleted messages only from a read-write mailbox (RFC 9051 6.4.1)."""
    return not read_only
