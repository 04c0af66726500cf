"""Every POP3 reply as bytes, and the one mapping from error values to the wire.

RFC 1939 3: a status indicator ("+OK" / "-ERR"), a keyword-free text, CRLF; multi-line replies
end with "." CRLF and byte-stuff lines that begin with ".". RFC 2449 8 puts an optional
response code in brackets right after "-ERR"; RFC 3206 adds SYS/TEMP, SYS/PERM and AUTH.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

# RFC 1939 3: a response line is at most 512 octets including CRLF.
MAX_RESPONSE_LINE: Final = 512


class RespCode(enum.Enum):
    """RFC 2449 8.1 and RFC 3206 response codes."""

    IN_USE = "IN-USE"  # RFC 2449 8.1.1: the maildrop is locked by another session
    LOGIN_DELAY = "LOGIN-DELAY"  # RFC 2449 8.1.2
    SYS_TEMP = "SYS/TEMP"  # RFC 3206 4: a temporary system problem; trying later may work
    SYS_PERM = "SYS/PERM"  # RFC 3206 4: a permanent system problem; retrying will not help
    AUTH = "AUTH"  # RFC 3206 5: the credentials are wrong


@dataclass(frozen=True, slots=True)
class Reply:
    """One single-line reply. Errors are values carrying this (STYLE.md 5)."""

    ok: bool
    text: str
    code: RespCode | None = None

    def encode(self) -> bytes:
        status = "+OK" if self.ok else "-ERR"
        code = f" [{self.code.value}]" if self.code is not None else ""
        text = f" {self.text}" if self.text else ""
        line = f"{status}{code}{text}".encode("utf-8", "replace")
        return line[: MAX_RESPONSE_LINE - 2] + b"\r\n"


def ok(text: str = "") -> bytes:
    return Reply(True, text).encode()


def err(text: str, code: RespCode | None = None) -> bytes:
    return Reply(False, text, code).encode()


def greeting(hostname: str) -> bytes:
    """RFC 1939 4. No APOP timestamp: APOP (MD5 over a shared secret) is off."""
    return ok(f"{hostname} mailwright POP3 ready")


def continuation(challenge: str = "") -> bytes:
    """RFC 5034 4: "+" SP base64 challenge (empty for PLAIN's first step)."""
    return b"+ " + challenge.encode("ascii") + b"\r\n"


def multiline(first: bytes, lines: Iterable[str]) -> bytes:
    """A +OK line followed by text lines, byte-stuffed (RFC 1939 3), and the terminator."""
    out = [first]
    for line in lines:
        data = line.encode("utf-8", "replace")
        if data.startswith(b"."):
            data = b"." + data
        out.append(data + b"\r\n")
    out.append(b".\r\n")
    return b"".join(out)


# Replies used in more than one place, so that each wording lives here only.
NO_SUCH_MESSAGE: Final = err("no such message")
INVALID_CREDENTIALS: Final = err("Invalid credentials", RespCode.AUTH)
TLS_REQUIRED: Final = err(
    "Plaintext authentication disallowed on an unencrypted connection: use STLS",
    RespCode.SYS_PERM,
)
IN_USE: Final = err("Maildrop already locked by another session", RespCode.IN_USE)
STORAGE_TEMP: Final = err("Mail storage unavailable, try again later", RespCode.SYS_TEMP)
LINE_TOO_LONG: Final = err("Line too long")
TOO_MANY_ERRORS: Final = err("Too many errors, closing connection")
IDLE_TIMEOUT: Final = err("Autologout: idle for too long")
SHUTTING_DOWN: Final = err("Server shutting down, try again later", RespCode.SYS_TEMP)
INTERNAL_ERROR: Final = err("Internal server error, closing connection", RespCode.SYS_TEMP)


def capabilities(*, authenticated: bool, tls_active: bool, plaintext_allowed: bool) -> list[str]:
    """CAPA's lines (RFC 2449 5-6).

    Before login we advertise how to log in: USER and SASL only where a password may be sent
    (RFC 2595 4 / RFC 8314 and the Authenticator's rule), STLS only on a plaintext connection
    (RFC 2595 4: not once TLS is active). After login, only what the TRANSACTION state offers.
    EXPIRE NEVER (RFC 2449 6.7): the server never deletes mail on its own; only a client's DELE
    removes (or, under the "keep" policy, hides) a message.
    """
    caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER"]
    if not authenticated:
        if plaintext_allowed:
            caps += ["USER", "SASL PLAIN LOGIN"]
        if not tls_active:
            caps.append("STLS")
    caps.append("IMPLEMENTATION mailwright")
    return caps
