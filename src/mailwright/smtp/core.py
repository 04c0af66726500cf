"""The pure SMTP server connection: bytes in, events out (h11's receive_data / next_event).

    core.receive_data(data)          # b"" means EOF
    ev = core.next_event()           # Command | SyntaxErr | BadSequence | DataChunk | DataEnd
                                     # | ChunkEnd | AuthResponse | ConnectionClosed | NEED_DATA
    core.transition(cmd, ok=...)     # the session reports its decision; state.py says what next
    core.start_data()                # after the session answered 354
    core.expect_auth_response()      # after the session sent a 334 challenge
    core.start_tls()                 # drop buffered plaintext, forget the session (RFC 3207 4.2)

Framing modes: command lines (CRLF, or a lenient bare LF, ends a line), DATA (dot-stuffed lines
ending at CRLF "." CRLF), BDAT chunks (exactly N octets, RFC 3030) and one SASL response line.
The core never holds more than one line (bounded by the limits) plus one unread socket read;
message content leaves as `DataChunk`s as soon as it is framed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from mailwright.smtp import responses
from mailwright.smtp.commands import Bdat, Command, Ehlo, Helo
from mailwright.smtp.limits import (
    DEFAULT_MAX_COMMAND_LINE,
    DEFAULT_MAX_DATA_LINE,
    DEFAULT_MAX_MESSAGE_SIZE,
    MAX_AUTH_LINE,
)
from mailwright.smtp.parser import SyntaxErr, parse_command
from mailwright.smtp.responses import Reply, render
from mailwright.smtp.state import State, allowed, next_state


class NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()


@dataclass(frozen=True, slots=True)
class BadSequence:
    """A well-formed command the current state does not allow (RFC 5321 4.1.4: 503)."""

    command: Command
    reply: Reply = responses.BAD_SEQUENCE


@dataclass(frozen=True, slots=True)
class DataChunk:
    """Message octets, dot-unstuffed (DATA) or raw (BDAT), CRLF line endings as received."""

    data: bytes


@dataclass(frozen=True, slots=True)
class DataEnd:
    """CRLF "." CRLF seen. `error` is set when the message must be refused (it was drained)."""

    error: Reply | None


@dataclass(frozen=True, slots=True)
class ChunkEnd:
    """All octets of a BDAT chunk were read; `error` set when the chunk must be refused."""

    command: Bdat
    error: Reply | None


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """One SASL response line (RFC 4954 4), CRLF removed. Its repr hides it (a password)."""

    line: bytes

    def __repr__(self) -> str:
        return "AuthResponse(<hidden>)"


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    pass


Event = (
    Command | SyntaxErr | BadSequence | DataChunk | DataEnd | ChunkEnd | AuthResponse
    | ConnectionClosed
)

_CR: Final = 13


class _Mode(enum.Enum):
    COMMAND = "command"
    DATA = "data"
    CHUNK = "chunk"
    AUTH = "auth"


class ServerConnection:
    def __init__(
        self,
        *,
        max_command_line: int = DEFAULT_MAX_COMMAND_LINE,
        max_data_line: int = DEFAULT_MAX_DATA_LINE,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self.max_command_line = max_command_line
        self.max_data_line = max_data_line
        self.max_message_size = max_message_size
        self.state = State.CONNECTED
        # RFC 2034 3: enhanced codes on every reply once the client used EHLO.
        self.esmtp = False
        self._buf = bytearray()
        self._eof = False
        self._mode = _Mode.COMMAND
        self._skip_line = False  # dropping the rest of an overlong line until LF
        # Message reading (DATA and BDAT).
        self._size = 0
        self._error: Reply | None = None
        self._line_start = True  # the previous data line ended with CRLF
        self._skip_last_cr = False
        self._end_pending = False
        self._chunk: Bdat | None = None
        self._chunk_left = 0
        self._chunk_refused = False  # BDAT out of sequence: drain, then 503
        # Bulk processing of clean DATA input (see _fast_data); tests turn it off to compare.
        self.fast_path = True

    # ----- input -------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        if not data:
            self._eof = True
        elif not self._eof:
            self._buf += data

    @property
    def has_buffered_input(self) -> bool:
        """True while unread client bytes remain (RFC 2920: flush replies only when False)."""
        return bool(self._buf)

    @property
    def reading_message(self) -> bool:
        """True inside DATA or a BDAT chunk (the session then applies the data timeout)."""
        return self._mode in (_Mode.DATA, _Mode.CHUNK)

    def next_event(self) -> Event | NeedData:
        if self._mode is _Mode.DATA:
            return self._next_data()
        if self._mode is _Mode.CHUNK:
            return self._next_chunk()
        line = self._next_line(MAX_AUTH_LINE if self._mode is _Mode.AUTH else None)
        if line is None or isinstance(line, SyntaxErr):
            if isinstance(line, SyntaxErr) and self._mode is _Mode.AUTH:
                self._mode = _Mode.COMMAND
            if line is None:
                return ConnectionClosed() if self._eof else NEED_DATA
            return line
        if self._mode is _Mode.AUTH:
            self._mode = _Mode.COMMAND
            return AuthResponse(line)
        cmd = parse_command(line)
        if isinstance(cmd, SyntaxErr):
            return cmd
        if isinstance(cmd, Bdat):
            # RFC 3030 2: the chunk follows whatever we answer, so it is always consumed.
            self._mode = _Mode.CHUNK
            self._chunk = cmd
            self._chunk_left = cmd.size
            self._chunk_refused = not allowed(self.state, cmd)
            if self._chunk_refused:
                return self._next_chunk()
            if self.state is State.RCPT:
                self._begin_message()
            if self._size + cmd.size > self.max_message_size:
                self._error = responses.TOO_BIG  # RFC 1870 + 3030: drain it, then 552
            return cmd
        if not allowed(self.state, cmd):
            return BadSequence(cmd)
        return cmd

    def _next_line(self, fixed_limit: int | None) -> bytes | SyntaxErr | None:
        """One command line without its line ending, or None if incomplete."""
        buf = self._buf
        while True:
            nl = buf.find(b"\n")
            if self._skip_line:
                if nl < 0:
                    buf.clear()
                    return None
                del buf[: nl + 1]
                self._skip_line = False
                continue
            limit = fixed_limit
            if limit is None:
                # RFC 4954 4: AUTH lines may carry up to 12288 octets of initial response.
                limit = MAX_AUTH_LINE if buf[:5].upper() == b"AUTH " else self.max_command_line
            if nl < 0:
                if len(buf) > limit:
                    # RFC 5321 4.5.3.1.4 counts the CRLF in the limit. Drop what we have and
                    # resynchronise at the next line ending, keeping the connection.
                    buf.clear()
                    self._skip_line = True
                    return SyntaxErr(responses.LINE_TOO_LONG)
                return None
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) + 2 > limit:
                return SyntaxErr(responses.LINE_TOO_LONG)
            return line

    # ----- DATA ----------------------------------------------------------------------------------
    def start_data(self) -> None:
        """Read the message that follows a 354 (RFC 5321 4.1.1.4)."""
        self._mode = _Mode.DATA
        self._begin_message()
        self._line_start = True
        self._skip_line = False
        self._end_pending = False

    def _begin_message(self) -> None:
        self._size = 0
        self._error = None

    def _fail(self, reply: Reply) -> None:
        if self._error is None:
            self._error = reply

    def _next_data(self) -> DataChunk | DataEnd | ConnectionClosed | NeedData:
        if self._end_pending:
            self._end_pending = False
            self._mode = _Mode.COMMAND
            return DataEnd(self._error)
        buf = self._buf
        if self.fast_path and self._line_start and not self._skip_line and self._error is None:
            fast = self._fast_data()
            if fast is not None:
                return fast
        out = bytearray()
        pos = 0
        ended = False
        max_line = self.max_data_line + 2  # the limit counts text; CRLF comes on top
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                if self._skip_line:
                    if len(buf) > pos:
                        self._skip_last_cr = buf[-1] == _CR
                    pos = len(buf)
                elif len(buf) - pos > max_line:
                    self._fail(responses.DATA_LINE_TOO_LONG)
                    self._skip_line = True
                    self._skip_last_cr = buf[-1] == _CR
                    pos = len(buf)
                break
            if self._skip_line:
                self._skip_line = False
                prev_cr = buf[nl - 1] == _CR if nl > pos else self._skip_last_cr
                self._line_start = prev_cr
                pos = nl + 1
                continue
            line = bytes(buf[pos : nl + 1])
            pos = nl + 1
            after_crlf = self._line_start
            crlf = line.endswith(b"\r\n")
            self._line_start = crlf
            # Only CRLF "." CRLF ends the message (RFC 5321 4.1.1.4, 2.3.8): "\n.\n",
            # "\r\n.\n" or "\n.\r\n" are content, so no relay can see a different end of
            # message than we do (SMTP smuggling, CVE-2023-51764). A bare LF still ends a
            # *line* and is stored as CRLF, as Postfix 3.9's default smtpd_forbid_bare_newline
            # = normalize does: Python's smtplib.sendmail(..., msg.as_bytes()) sends LF-only
            # lines, and refusing them would break ordinary clients. A bare CR inside a line
            # has no such excuse and refuses the message.
            if not crlf:
                line = line[:-1] + b"\r\n"
            if _CR in line[:-2]:
                self._fail(responses.BARE_CR)
            if after_crlf and crlf and line == b".\r\n":
                ended = True
                break
            if len(line) > max_line:
                self._fail(responses.DATA_LINE_TOO_LONG)
            if line.startswith(b".") and line != b".\r\n":
                line = line[1:]  # RFC 5321 4.5.2 transparency, at every line start
            self._size += len(line)
            if self._size > self.max_message_size:
                self._fail(responses.TOO_BIG)  # RFC 1870 6.3: drain, then 552
            if self._error is None:
                out += line
        del buf[:pos]
        if ended:
            if out:
                self._end_pending = True
                return DataChunk(bytes(out))
            self._mode = _Mode.COMMAND
            return DataEnd(self._error)
        if out:
            return DataChunk(bytes(out))
        return ConnectionClosed() if self._eof else NEED_DATA

    def _fast_data(self) -> DataChunk | DataEnd | None:
        """The common case in bulk (C-speed bytes operations instead of a loop per line).

        Applies only when the complete lines buffered are clean: CRLF endings only, no line over
        the limit, within the size limit. Otherwise returns None and the line loop below
        decides (and reports) precisely, so both paths give the same events.
        """
        buf = self._buf
        last_lf = buf.rfind(b"\n")
        if last_lf < 0:
            return None
        region = bytes(buf[: last_lf + 1])
        if region.startswith(b".\r\n"):
            end = 0
        else:
            end = region.find(b"\r\n.\r\n")
            end = end + 2 if end >= 0 else -1
        part = region if end < 0 else region[:end]
        crlf = part.count(b"\r\n")
        if part.count(b"\n") != crlf or part.count(b"\r") != crlf:
            return None
        max_line = self.max_data_line + 2
        if len(part) > max_line and max(map(len, part.split(b"\r\n"))) + 2 > max_line:
            return None
        if part.startswith(b"."):
            part = part[1:]
        unstuffed = part.replace(b"\r\n.", b"\r\n")
        if self._size + len(unstuffed) > self.max_message_size:
            return None
        self._size += len(unstuffed)
        if end < 0:
            del buf[: last_lf + 1]
            return DataChunk(unstuffed) if unstuffed else None
        del buf[: end + 3]
        if unstuffed:
            self._end_pending = True
            return DataChunk(unstuffed)
        self._mode = _Mode.COMMAND
        return DataEnd(None)

    # ----- BDAT ----------------------------------------------------------------------------------
    def _next_chunk(self) -> DataChunk | ChunkEnd | BadSequence | ConnectionClosed | NeedData:
        assert self._chunk is not None
        if self._chunk_left and self._buf:
            n = min(self._chunk_left, len(self._buf))
            data = bytes(self._buf[:n])
            del self._buf[:n]
            self._chunk_left -= n
            if not self._chunk_refused:
                self._size += n
                if self._size > self.max_message_size:
                    self._fail(responses.TOO_BIG)
                if self._error is None:
                    return DataChunk(data)
        if self._chunk_left == 0:
            cmd, self._chunk = self._chunk, None
            self._mode = _Mode.COMMAND
            if self._chunk_refused:
                return BadSequence(cmd)
            return ChunkEnd(cmd, self._error)
        return ConnectionClosed() if self._eof else NEED_DATA

    # ----- decisions from the session ---------------------------------------------------------
    def transition(self, command: Command, *, ok: bool) -> None:
        """Apply the state table (state.py) to a command the session accepted or refused."""
        if ok and isinstance(command, Ehlo):
            self.esmtp = True
        elif ok and isinstance(command, Helo):
            self.esmtp = False
        self.state = next_state(self.state, command, ok=ok)

    def expect_auth_response(self) -> None:
        """The next line is a SASL response, not a command (RFC 4954 4)."""
        self._mode = _Mode.AUTH

    def start_tls(self) -> None:
        """RFC 3207 4.2: discard pipelined plaintext and all knowledge from before TLS."""
        self._buf.clear()
        self._skip_line = False
        self._mode = _Mode.COMMAND
        self.state = State.CONNECTED
        self.esmtp = False

    # ----- output --------------------------------------------------------------------------------
    def render(self, reply: Reply) -> bytes:
        return render(reply, enhanced=self.esmtp)


__all__ = [
    "NEED_DATA",
    "AuthResponse",
    "BadSequence",
    "ChunkEnd",
    "ConnectionClosed",
    "DataChunk",
    "DataEnd",
    "Event",
    "ServerConnection",
    "SyntaxErr",
]
