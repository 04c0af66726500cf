"""The sans-I/O POP3 server connection (STYLE.md 1): bytes in, events out, as h11 does.

    core.receive_data(data)          # b"" means the client closed the connection
    ev = core.next_event()           # Command | SaslResponse | ProtocolError | Closed | NEED_DATA

The core frames lines, enforces the line-length limit, parses, and checks each command against
`state.ALLOWED`. The session (I/O, store, auth) decides outcomes and moves the state with
`set_state`, which only accepts the transitions listed in `state.TRANSITIONS`.

Pipelining (RFC 2449 6.6): every complete line in the buffer is returned in order; the session
flushes its replies when `next_event` says NEED_DATA.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from mailwright.pop3.commands import Command, SaslResponse
from mailwright.pop3.parser import SyntaxErr, parse_command, parse_sasl_response
from mailwright.pop3.responses import Reply
from mailwright.pop3.state import ALLOWED, TRANSITIONS, State, out_of_sequence_text

# RFC 2449 4: "command lines ... MUST NOT exceed 255 octets, including the terminating CRLF".
# SASL initial responses (RFC 5034 4) do not fit in that, so the framing limit is the config's
# `max_command_line` (default 8192); this is only the fallback for a core built without one.
DEFAULT_MAX_LINE: Final = 8192


class _NeedData(enum.Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = _NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class Closed:
    """The client closed its side; nothing more will come."""


@dataclass(frozen=True, slots=True)
class BadSequence:
    """A well-formed command that the current state does not allow (RFC 1939 3)."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line over the limit; it is discarded up to its end and answered once."""

    reply: Reply


ProtocolError = SyntaxErr | BadSequence | LineTooLong
Event = Command | SaslResponse | ProtocolError | Closed


class Pop3Connection:
    """Server side of one POP3 connection, without I/O."""

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.max_line = max_line
        self.state = State.AUTHORIZATION
        self._buffer = bytearray()
        self._scan_from = 0  # bytes before this offset hold no LF (avoid rescanning)
        self._discarding = False  # inside an over-long line, dropping bytes until its LF
        self._eof = False

    # ----- input -------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        if not data:
            self._eof = True
        elif not self._eof:
            self._buffer += data

    def discard_buffer(self) -> None:
        """STLS (RFC 2595 4): forget everything the client sent before the TLS handshake."""
        self._buffer.clear()
        self._scan_from = 0
        self._discarding = False

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def next_event(self) -> Event | _NeedData:
        line = self._next_line()
        if isinstance(line, LineTooLong):
            return line
        if line is None:
            return Closed() if self._eof else NEED_DATA
        if self.state is State.SASL:
            sasl = parse_sasl_response(line)
            return sasl if isinstance(sasl, SyntaxErr) else SaslResponse(sasl)
        cmd = parse_command(line)
        if isinstance(cmd, SyntaxErr):
            return cmd
        if type(cmd) not in ALLOWED[self.state]:
            return BadSequence(Reply(False, out_of_sequence_text(self.state, type(cmd))))
        return cmd

    def _next_line(self) -> bytes | LineTooLong | None:
        while True:
            lf = self._buffer.find(b"\n", self._scan_from)
            if lf < 0:
                if len(self._buffer) > self.max_line:
                    # Keep nothing of an over-long line: report it once, then drop to its LF.
                    self._buffer.clear()
                    self._scan_from = 0
                    if not self._discarding:
                        self._discarding = True
                        return LineTooLong(Reply(False, "Line too long"))
                    return None
                self._scan_from = len(self._buffer)
                return None
            line = bytes(self._buffer[:lf])
            del self._buffer[: lf + 1]
            self._scan_from = 0
            if self._discarding:
                self._discarding = False
                continue
            if len(line) + 1 > self.max_line:
                return LineTooLong(Reply(False, "Line too long"))
            # RFC 1939 3 says CRLF; a bare LF is accepted too (no smuggling risk in commands).
            return line[:-1] if line.endswith(b"\r") else line

    # ----- state ---------------------------------------------------------------------------------
    def set_state(self, new: State) -> None:
        if (self.state, new) not in TRANSITIONS:
            raise AssertionError(f"invalid POP3 transition {self.state} -> {new}")
        self.state = new
