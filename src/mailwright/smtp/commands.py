"""SMTP commands as typed, frozen values (RFC 5321 4.1.1, plus RFC 3207, 4954, 3030).

Each command is parsed once (`parser.parse_command`) into one of these; the session dispatches
on them with `match` and `assert_never`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Ehlo:
    domain: str


@dataclass(frozen=True, slots=True)
class Helo:
    domain: str


@dataclass(frozen=True, slots=True)
class Mail:
    """MAIL FROM:<reverse-path> [params]; `address` is "" for the null path <> (RFC 5321 4.5.5)."""

    address: str
    params: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rcpt:
    address: str
    params: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Data:
    pass


@dataclass(frozen=True, slots=True)
class Bdat:
    """RFC 3030 2: BDAT <chunk-size> [LAST]; exactly `size` octets follow the command line."""

    size: int
    last: bool


@dataclass(frozen=True, slots=True)
class Rset:
    pass


@dataclass(frozen=True, slots=True)
class Noop:
    pass


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class Vrfy:
    argument: str


@dataclass(frozen=True, slots=True)
class Expn:
    argument: str


@dataclass(frozen=True, slots=True)
class Help:
    topic: str


@dataclass(frozen=True, slots=True)
class StartTls:
    pass


@dataclass(frozen=True, slots=True)
class Auth:
    """RFC 4954 4: AUTH mechanism [initial-response]; None when no initial response was given.

    An initial response of "=" means an empty one and is kept as "=" (sasl.decode_base64
    handles it). The repr hides the response: it carries a password.
    """

    mechanism: str
    initial: str | None = field(default=None, repr=False)


Command = (
    Ehlo | Helo | Mail | Rcpt | Data | Bdat | Rset | Noop | Quit | Vrfy | Expn | Help | StartTls
    | Auth
)

ALL_COMMANDS: tuple[type[Command], ...] = (
    Ehlo, Helo, Mail, Rcpt, Data, Bdat, Rset, Noop, Quit, Vrfy, Expn, Help, StartTls, Auth,
)
