"""Replies and their wire form: RFC 5321 4.2 (multiline with "-"), RFC 2034 enhanced codes.

Enhanced status codes (RFC 3463) are carried by every Reply; RFC 2034 3 says a server that
advertises ENHANCEDSTATUSCODES puts them on every reply after EHLO (except the greeting and
the 334 SASL continuation), so `render` gets told whether to include them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    enhanced: str  # "x.y.z" (RFC 3463) or "" for replies that have none (220, 334)
    lines: tuple[str, ...]

    def __init__(self, code: int, enhanced: str, *lines: str) -> None:
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "enhanced", enhanced)
        object.__setattr__(self, "lines", lines or ("",))

    @property
    def is_error(self) -> bool:
        return self.code >= 400

    @property
    def text(self) -> str:
        return " ".join(self.lines)


@functools.lru_cache(maxsize=512)  # replies repeat; rendering is on every command's path
def render(reply: Reply, *, enhanced: bool = True) -> bytes:
    """The reply as CRLF-terminated lines; "-" after the code on every line but the last.

    Text is ASCII by construction; any non-ASCII a caller slipped in (say, an echoed address)
    is replaced, never raised on.
    """
    out = []
    last = len(reply.lines) - 1
    for i, line in enumerate(reply.lines):
        sep = " " if i == last else "-"
        parts = [reply.enhanced] if enhanced and reply.enhanced else []
        if line:
            parts.append(line)
        out.append(f"{reply.code}{sep}" + " ".join(parts))
    return ("\r\n".join(out) + "\r\n").encode("ascii", "replace")


# Replies used from more than one place. Codes: RFC 5321 4.2.2/4.2.3, enhanced: RFC 3463.
OK = Reply(250, "2.0.0", "OK")
BAD_SEQUENCE = Reply(503, "5.5.1", "Bad sequence of commands")
UNKNOWN_COMMAND = Reply(500, "5.5.2", "Command not recognized")
LINE_TOO_LONG = Reply(500, "5.5.2", "Line too long")
DATA_LINE_TOO_LONG = Reply(500, "5.5.2", "Message has a line that is too long; not accepted")
TOO_BIG = Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
BARE_CR = Reply(
    554, "5.6.0", "Message contains a bare CR; lines must end with CRLF (RFC 5321 2.3.8)"
)
TOO_MANY_ERRORS = Reply(421, "4.7.0", "Too many errors, closing connection")
TIMEOUT = Reply(421, "4.4.2", "Idle timeout, closing connection")
NEED_AUTH = Reply(530, "5.7.0", "Authentication required")
ENCRYPTION_REQUIRED = Reply(
    538, "5.7.11", "Encryption required for requested authentication mechanism"
)
AUTH_OK = Reply(235, "2.7.0", "Authentication successful")
AUTH_FAILED = Reply(535, "5.7.8", "Authentication credentials invalid")
AUTH_CANCELLED = Reply(501, "5.0.0", "Authentication cancelled")
AUTH_MALFORMED = Reply(501, "5.5.2", "Malformed authentication response")
NOT_OWNER = Reply(553, "5.7.1", "Sender address not owned by the authenticated user")
RELAY_DENIED = Reply(554, "5.7.1", "Relay access denied")
NO_SUCH_USER = Reply(550, "5.1.1", "No such user here")
BAD_ADDRESS = Reply(501, "5.1.3", "Bad recipient address syntax")
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients")
NON_ASCII_ADDRESS = Reply(553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter")
STORAGE_UNAVAILABLE = Reply(451, "4.3.0", "Temporary storage failure, try again later")
SHUTTING_DOWN = Reply(421, "4.3.2", "Service shutting down, try again later")
INSUFFICIENT_STORAGE = Reply(452, "4.3.1", "Insufficient system storage")
INTERNAL_ERROR = Reply(421, "4.3.0", "Internal error, closing connection")
