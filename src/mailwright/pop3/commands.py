"""POP3 commands as typed, frozen values (RFC 1939 5-7, RFC 2449 5, RFC 2595 4, RFC 5034 4).

Message numbers are kept as parsed (any non-negative integer): whether a number names a message
is the maildrop's question, answered with `-ERR no such message`, not a syntax error.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class User:
    """USER name (RFC 1939 7)."""

    name: str


@dataclass(frozen=True, slots=True)
class Pass:
    """PASS string (RFC 1939 7): the whole rest of the line, spaces included."""

    password: str

    def __repr__(self) -> str:  # never show a password in a log or a test failure
        return "Pass(password=<hidden>)"


@dataclass(frozen=True, slots=True)
class Auth:
    """AUTH [mechanism [initial-response]] (RFC 5034 4).

    `mechanism` is None for a bare AUTH, which lists the mechanisms (a de-facto extension that
    Outlook and Thunderbird probe). `initial` is the base64 text as sent ("=" is an empty one).
    """

    mechanism: str | None = None
    initial: str | None = None

    def __repr__(self) -> str:
        shown = None if self.initial is None else "<hidden>"
        return f"Auth(mechanism={self.mechanism!r}, initial={shown})"


@dataclass(frozen=True, slots=True)
class Capa:
    """CAPA (RFC 2449 5)."""


@dataclass(frozen=True, slots=True)
class Stls:
    """STLS (RFC 2595 4)."""


@dataclass(frozen=True, slots=True)
class Stat:
    """STAT (RFC 1939 5)."""


@dataclass(frozen=True, slots=True)
class List:
    """LIST [msg] (RFC 1939 5)."""

    msg: int | None = None


@dataclass(frozen=True, slots=True)
class Retr:
    """RETR msg (RFC 1939 5)."""

    msg: int


@dataclass(frozen=True, slots=True)
class Dele:
    """DELE msg (RFC 1939 5)."""

    msg: int


@dataclass(frozen=True, slots=True)
class Noop:
    """NOOP (RFC 1939 5)."""


@dataclass(frozen=True, slots=True)
class Rset:
    """RSET (RFC 1939 5)."""


@dataclass(frozen=True, slots=True)
class Quit:
    """QUIT (RFC 1939 4 in AUTHORIZATION, 6 in TRANSACTION)."""


@dataclass(frozen=True, slots=True)
class Top:
    """TOP msg n (RFC 1939 7): the headers, the blank line and n body lines."""

    msg: int
    lines: int


@dataclass(frozen=True, slots=True)
class Uidl:
    """UIDL [msg] (RFC 1939 7)."""

    msg: int | None = None


@dataclass(frozen=True, slots=True)
class SaslResponse:
    """One client line during an AUTH exchange (RFC 5034 4): base64 text, or "*" to cancel."""

    data: str

    @property
    def cancelled(self) -> bool:
        return self.data == "*"

    def __repr__(self) -> str:
        return "SaslResponse(<hidden>)"


Command = (
    User | Pass | Auth | Capa | Stls | Stat | List | Retr | Dele | Noop | Rset | Quit | Top | Uidl
)
