"""One POP3 command line -> a `Command` or a `SyntaxErr` value. Pure; never raises.

RFC 1939 3: a command is a case-insensitive keyword of three or four characters, possibly
followed by arguments, each separated by a single space. We accept runs of spaces between the
keyword and numeric arguments (lenient to sloppy clients), but PASS keeps the rest of the line
verbatim because RFC 1939 7 allows spaces inside a password.

Framing (finding the CRLF, the line-length limit) lives in `core`; this module sees one line
without its line terminator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
from mailwright.pop3.responses import Reply

# RFC 1939 3 calls message numbers and line counts "numeric" without a bound; ten digits cover
# any real maildrop and keep int() of an attacker's million-digit string off the table.
MAX_NUMBER_DIGITS: Final = 10
# RFC 2449 4: "Each argument may be up to 40 characters long". Usernames are e-mail addresses,
# which may be longer, so we allow RFC 5321 4.5.3.1.3's 256-octet path.
MAX_NAME: Final = 256
# SASL mechanism names are 1 to 20 characters (RFC 4422 3.1).
MAX_MECHANISM: Final = 20


@dataclass(frozen=True, slots=True)
class SyntaxErr:
    """A line the grammar refuses; `reply` is what the client gets (a -ERR)."""

    reply: Reply


def _err(text: str) -> SyntaxErr:
    return SyntaxErr(Reply(False, text))


def _number(text: str) -> int | None:
    if not text or len(text) > MAX_NUMBER_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def _no_args(cmd: Command) -> Callable[[str], Command | SyntaxErr]:
    def parse(rest: str) -> Command | SyntaxErr:
        if rest.strip(" "):
            return _err("Command takes no arguments")
        return cmd

    return parse


def _required_msg(make: Callable[[int], Command]) -> Callable[[str], Command | SyntaxErr]:
    def parse(rest: str) -> Command | SyntaxErr:
        args = rest.split()
        if len(args) != 1:
            return _err("Expected one message number")
        n = _number(args[0])
        return _err("Invalid message number") if n is None else make(n)

    return parse


def _optional_msg(
    make: Callable[[int | None], Command],
) -> Callable[[str], Command | SyntaxErr]:
    def parse(rest: str) -> Command | SyntaxErr:
        if not rest.split():
            return make(None)
        return _required_msg(make)(rest)

    return parse


def _top(rest: str) -> Command | SyntaxErr:
    args = rest.split()
    if len(args) != 2:
        return _err("Usage: TOP msg lines")
    n, lines = _number(args[0]), _number(args[1])
    if n is None:
        return _err("Invalid message number")
    if lines is None:
        return _err("Invalid number of lines")
    return Top(n, lines)


def _user(rest: str) -> Command | SyntaxErr:
    name = rest.strip(" ")
    if not name:
        return _err("Usage: USER name")
    if len(name) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return _err("Invalid user name")
    return User(name)


def _pass(rest: str) -> Command | SyntaxErr:
    if not rest:
        return _err("Usage: PASS password")
    return Pass(rest)


def _auth(rest: str) -> Command | SyntaxErr:
    args = rest.split()
    if not args:
        return Auth()
    if len(args) > 2:
        return _err("Usage: AUTH mechanism [initial-response]")
    mech = args[0].upper()
    valid = all(c.isascii() and (c.isalnum() or c in "-_") for c in mech)
    if len(mech) > MAX_MECHANISM or not valid:
        return _err("Invalid mechanism name")
    return Auth(mech, args[1] if len(args) == 2 else None)


_PARSERS: Final[dict[str, Callable[[str], Command | SyntaxErr]]] = {
    "USER": _user,
    "PASS": _pass,
    "AUTH": _auth,
    "CAPA": _no_args(Capa()),
    "STLS": _no_args(Stls()),
    "STAT": _no_args(Stat()),
    "LIST": _optional_msg(List),
    "RETR": _required_msg(Retr),
    "DELE": _required_msg(Dele),
    "NOOP": _no_args(Noop()),
    "RSET": _no_args(Rset()),
    "QUIT": _no_args(Quit()),
    "TOP": _top,
    "UIDL": _optional_msg(Uidl),
}


def parse_command(line: bytes) -> Command | SyntaxErr:
    """Parse one line (without CRLF). Any bytes give a value; nothing raises."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return _err("Invalid UTF-8 in command")
    keyword, _, rest = text.partition(" ")
    parse = _PARSERS.get(keyword.upper()) if keyword.isascii() else None
    if parse is None:
        return _err("Unknown command" if keyword else "Empty command")
    return parse(rest)


def parse_sasl_response(line: bytes) -> str | SyntaxErr:
    """A line in an AUTH exchange (RFC 5034 4): base64 text or "*"; decoded later by auth.sasl."""
    try:
        text = line.decode("ascii").strip(" ")
    except UnicodeDecodeError:
        return _err("Invalid base64 in SASL response")
    return text
