"""The sans-I/O IMAP command reader (STYLE.md 1): bytes in, events out, as h11 does.

    p.receive_data(data)        # b"" means the client closed its side
    ev = p.next_event()         # Command | SyntaxErr | Continuation | TooBig | AppendChunk
                                # | AppendEnd | Done | SaslResponse | Closed | NEED_DATA
                                # (Done also for a stray "DONE" line outside IDLE)
    p.start_idle(tag)           # after the session sent "+ idling" (RFC 2177 3)
    p.start_sasl(tag)           # after the session sent a "+ <challenge>" (RFC 9051 6.2.2)
    p.reject_append()           # the session answers NO to an APPEND (its bytes are skipped)
    p.enable_utf8()             # after ENABLE UTF8=ACCEPT (RFC 9051 6.3.1, RFC 6855 3)
    p.discard_buffer()          # STARTTLS: forget plaintext sent before the handshake

Framing (RFC 9051 2.2, 4.3, 7.5): a command is one or more lines; a line that ends in a literal
marker "{n}" (synchronizing), "{n+}" (LITERAL+/LITERAL-, RFC 7888) or "~{n}" (literal8, only as
APPEND data) is followed by exactly n octets and then the rest of the command. For "{n}" the
parser returns `Continuation(tag)` and the session sends "+ ..." before the client sends more.

Literals other than APPEND data are buffered, up to `max_literal`; the whole command is bounded
by `max_command`. The APPEND message literal is never buffered: the parser returns the `Append`
head, then `AppendChunk`s as bytes arrive, then `AppendEnd`. A literal the parser refuses is
answered (BAD, or `TooBig` for an APPEND over the limit, for NO [TOOBIG] of RFC 9051 7.1 and
RFC 7889 4); a synchronizing one is then never sent by the client, a non-synchronizing one
is skipped without being kept, and the parser goes on with the next line.

Why not imap-codec. Issue 4 asks to adopt it if it covers the commands and is faster. We tried
version 0.1.0 from PyPI (Python bindings of the Rust crate, 2024-08) with
`CommandCodec.decode`. It is faster: about 3.5 us for "UID FETCH 1:* (FLAGS
BODY.PEEK[HEADER.FIELDS (From To Subject)])", where ours takes about 40 us for the grammar and
50 us through `ImapParser`. It does not cover the issue's commands, though. NAMESPACE,
LIST-EXTENDED (LIST (SUBSCRIBED) "" "*" RETURN (...)), STATUS with SIZE or DELETED and SEARCH
RETURN (ESEARCH) all fail with DecodeFailed, and so does SEARCH OLDER (RFC 5032). Other
problems:
- Results are reachable only as `as_dict()` dicts.
- Failures are exceptions that carry no tag for the BAD.
- `decode(buffer)` keeps no state, so an incomplete command is decoded again from the start
  after every read.
- An APPEND literal is buffered whole, as a list of ints.
- Modified UTF-7 mailbox names are not decoded.
So it fails the first condition, and we wrote our own. Speed was not a deciding factor: a
command is parsed once, and the store dominates.

Invariants: never raises on client input; holds at most one line (`max_line`) plus one
buffered command (`max_command`) plus the unread socket data; after any SyntaxErr it
resynchronises at the next line and stays usable.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Final

from mailwright.imap.commands import Append, Command
from mailwright.imap.grammar import AppendHead, SyntaxErr, append_head, parse_command, tag_of

# RFC 7162 4 asks clients to keep command lines to about 8192 octets and servers to accept
# more; mbsync's UID sets and long SEARCH lines go past that. Dovecot's imap_max_line_length
# is 64 KiB, and we use the same.
DEFAULT_MAX_LINE: Final = 65536
# A literal that is not APPEND data is a password, a mailbox name or a SEARCH string. 64 KiB is
# far above any of those and small enough to buffer.
DEFAULT_MAX_LITERAL: Final = 65536
# The lines and literals of one command, APPEND data excluded, kept in memory until parsed.
DEFAULT_MAX_COMMAND: Final = 256 * 1024
# APPENDLIMIT (RFC 7889) default, the same as SMTP's SIZE default (smtp.limits).
DEFAULT_MAX_APPEND: Final = 50 * 1024 * 1024
# RFC 7888 3: with LITERAL- a non-synchronizing literal may be at most 4096 octets.
LITERAL_MINUS_MAX: Final = 4096
# Enough of a discarded line's end to recognise a "{4294967295+}" marker after it.
_TAIL: Final = 24

_MARKER: Final = re.compile(rb"(~?)\{(\d{1,10})(\+?)\}\Z")


class NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()


@dataclass(frozen=True, slots=True)
class Continuation:
    """A synchronizing literal is pending: the session sends "+ Ready" (RFC 9051 7.5)."""

    tag: str


@dataclass(frozen=True, slots=True)
class TooBig:
    """An APPEND literal over `max_append`: answer "tag NO [TOOBIG]" (RFC 9051 7.1, RFC 7889).

    If it was non-synchronizing, its octets are being skipped; nothing else to do.
    """

    tag: str
    size: int


@dataclass(frozen=True, slots=True)
class AppendChunk:
    """Message octets of the APPEND in progress, in order, as they arrive."""

    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class AppendEnd:
    """The APPEND line is complete. `error` set: the command is BAD (e.g. MULTIAPPEND data)."""

    tag: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Done:
    """The DONE that ends IDLE (RFC 2177 3, RFC 9051 6.3.13)."""


@dataclass(frozen=True, slots=True)
class SaslResponse:
    """One AUTHENTICATE response line, CRLF removed; b"*" cancels (RFC 9051 6.2.2)."""

    line: bytes = field(repr=False)

    @property
    def cancelled(self) -> bool:
        return self.line == b"*"


@dataclass(frozen=True, slots=True)
class Closed:
    """The client closed its side and everything it sent has been returned."""


Event = (
    Command | SyntaxErr | Continuation | TooBig | AppendChunk | AppendEnd | Done | SaslResponse
    | Closed
)


class _Mode(enum.Enum):
    LINE = "line"  # reading command lines
    LITERAL = "literal"  # buffering a literal of the current command
    APPEND = "append"  # streaming APPEND message octets
    APPEND_END = "append-end"  # the CRLF after the APPEND literal
    SKIP = "skip"  # dropping the octets of a refused literal, then DISCARD
    DISCARD = "discard"  # dropping the rest of a refused command line
    IDLE = "idle"
    SASL = "sasl"


class _TooLong:
    pass


_TOO_LONG: Final = _TooLong()


class ImapParser:
    """Server side reading of one IMAP connection, without I/O."""

    def __init__(
        self,
        *,
        max_line: int = DEFAULT_MAX_LINE,
        max_literal: int = DEFAULT_MAX_LITERAL,
        max_command: int = DEFAULT_MAX_COMMAND,
        max_append: int = DEFAULT_MAX_APPEND,
        literal_minus: bool = False,
        utf8: bool = False,
    ) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self.max_command = max_command
        self.max_append = max_append
        # True when the server advertises LITERAL- rather than LITERAL+ (RFC 7888 4).
        self.literal_minus = literal_minus
        self.utf8 = utf8
        self._buf = bytearray()
        self._scan = 0  # bytes of _buf before this offset hold no LF
        self._cmd = bytearray()  # the current command: lines (CRLF-joined) and literals
        self._mode = _Mode.LINE
        self._left = 0  # octets left in the current literal
        self._tag = ""  # tag of the APPEND, IDLE or AUTHENTICATE in progress
        self._tail = b""  # end of the line being discarded
        self._pending: list[Event] = []
        self._eof = False

    # ----- input -------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        if not data:
            self._eof = True
        elif not self._eof:
            self._buf += data

    def discard_buffer(self) -> None:
        """STARTTLS (RFC 9051 6.2.1): drop what the client sent before the handshake."""
        self._buf.clear()
        self._scan = 0
        self._cmd.clear()
        self._pending.clear()
        self._mode = _Mode.LINE

    def enable_utf8(self) -> None:
        self.utf8 = True

    def start_idle(self, tag: str) -> None:
        self._mode, self._tag = _Mode.IDLE, tag

    def start_sasl(self, tag: str) -> None:
        self._mode, self._tag = _Mode.SASL, tag

    def reject_append(self) -> None:
        """Refuse the APPEND just returned: no more chunks; its remaining octets are skipped.

        For a synchronizing literal whose `Continuation` was not yet returned the client sends
        nothing (RFC 9051 7.5: a tagged NO instead of "+"), so there is nothing to skip.
        """
        if self._mode is not _Mode.APPEND:
            raise AssertionError("reject_append() outside an APPEND")
        cont = [e for e in self._pending if isinstance(e, Continuation)]
        if cont:
            self._pending.clear()
            self._mode = _Mode.LINE
        else:
            self._mode = _Mode.SKIP

    @property
    def has_buffered_input(self) -> bool:
        return bool(self._buf)

    # ----- events ------------------------------------------------------------------------------
    def next_event(self) -> Event | NeedData:
        if self._pending:
            return self._pending.pop(0)
        while True:
            ev = self._step()
            if ev is not None:
                return ev

    def _idle(self) -> Event | NeedData:
        return Closed() if self._eof else NEED_DATA

    def _step(self) -> Event | NeedData | None:
        mode = self._mode
        if mode is _Mode.LINE:
            return self._line()
        if mode is _Mode.LITERAL:
            if not self._buf:
                return self._idle()
            take = self._buf[: self._left]
            del self._buf[: len(take)]
            self._scan = 0
            self._cmd += take
            self._left -= len(take)
            if self._left == 0:
                self._mode = _Mode.LINE
            return None
        if mode is _Mode.APPEND:
            if self._left == 0:
                self._mode = _Mode.APPEND_END
                return None
            if not self._buf:
                return self._idle()
            chunk = bytes(self._buf[: self._left])
            del self._buf[: len(chunk)]
            self._scan = 0
            self._left -= len(chunk)
            return AppendChunk(chunk)
        if mode is _Mode.SKIP:
            if self._left == 0:
                self._mode, self._tail = _Mode.DISCARD, b""
                return None
            if not self._buf:
                return self._idle()
            n = min(self._left, len(self._buf))
            del self._buf[:n]
            self._scan = 0
            self._left -= n
            return None
        if mode is _Mode.DISCARD:
            return self._discard()
        if mode is _Mode.APPEND_END:
            return self._append_end()
        return self._special_line()

    def _take_line(self) -> bytes | _TooLong | None:
        """One line without its CRLF (a bare LF is accepted too), or None if incomplete."""
        lf = self._buf.find(b"\n", self._scan)
        if lf < 0:
            if len(self._buf) > self.max_line:
                return _TOO_LONG
            self._scan = len(self._buf)
            return None
        if lf + 1 > self.max_line:
            return _TOO_LONG
        line = bytes(self._buf[:lf])
        del self._buf[: lf + 1]
        self._scan = 0
        return line[:-1] if line.endswith(b"\r") else line

    def _too_long(self, tag: str | None, what: str) -> SyntaxErr:
        self._cmd.clear()
        self._mode, self._tail, self._scan = _Mode.DISCARD, b"", 0
        return SyntaxErr(tag, f"{what} too long (limit {self.max_line} octets)")

    def _discard(self) -> Event | NeedData | None:
        lf = self._buf.find(b"\n")
        if lf < 0:
            self._tail = (self._tail + bytes(self._buf))[-_TAIL:]
            self._buf.clear()
            self._scan = 0
            return self._idle()
        tail = (self._tail + bytes(self._buf[:lf]))[-_TAIL:].rstrip(b"\r")
        del self._buf[: lf + 1]
        self._scan = 0
        m = _MARKER.search(tail)
        if m is not None and m.group(3):  # {n+}: its octets come anyway (RFC 7888)
            self._mode, self._left = _Mode.SKIP, int(m.group(2))
        else:
            self._mode = _Mode.LINE  # a refused {n}: the client does not send it
        return None

    def _refuse(self, err: SyntaxErr | TooBig, size: int, nonsync: bool) -> SyntaxErr | TooBig:
        self._cmd.clear()
        if nonsync:
            self._mode, self._left = _Mode.SKIP, size
        else:
            self._mode = _Mode.LINE
        return err

    def _special_line(self) -> Event | NeedData | None:
        """The one line IDLE (DONE) or AUTHENTICATE (a SASL response) waits for."""
        line = self._take_line()
        if isinstance(line, _TooLong):
            return self._too_long(self._tag, "line")
        if line is None:
            return self._idle()
        mode, self._mode = self._mode, _Mode.LINE
        if mode is _Mode.SASL:
            return SaslResponse(line)
        if line.upper() == b"DONE":
            return Done()
        return SyntaxErr(self._tag, "expected DONE to end IDLE")

    def _line(self) -> Event | NeedData | None:
        line = self._take_line()
        if isinstance(line, _TooLong):
            return self._too_long(tag_of(bytes(self._cmd or self._buf[:80])), "line")
        if line is None:
            return self._idle()
        if len(self._cmd) + len(line) > self.max_command:
            err = SyntaxErr(tag_of(bytes(self._cmd or line[:80])), "command too long")
            m = _MARKER.search(line)
            return self._refuse(err, int(m.group(2)), True) if m and m.group(3) else err
        m = _MARKER.search(line)
        if m is None:
            data = bytes(self._cmd + line)
            self._cmd.clear()
            if not data:
                return None  # an empty line is ignored, as Dovecot does
            if data.upper() == b"DONE":
                # A DONE after the server already ended IDLE (say, with a BAD): answered
                # untagged, since a "DONE BAD" would be a tag the client never sent.
                return Done()
            return parse_command(data, self.utf8)
        return self._literal_marker(line, m)

    def _literal_marker(self, line: bytes, m: re.Match[bytes]) -> Event | None:
        binary, size, nonsync = bool(m.group(1)), int(m.group(2)), bool(m.group(3))
        prefix = bytes(self._cmd + line[: m.start()])
        tag = tag_of(prefix)
        if tag is None:
            return self._refuse(SyntaxErr(None, "missing or invalid tag"), size, nonsync)
        if nonsync and self.literal_minus and size > LITERAL_MINUS_MAX:
            text = f"non-synchronizing literal over {LITERAL_MINUS_MAX} octets (LITERAL-)"
            return self._refuse(SyntaxErr(tag, text), size, nonsync)
        # The APPEND message is the literal after the mailbox (RFC 9051 6.3.12).
        head = append_head(prefix[:-1], self.utf8) if prefix.endswith(b" ") else None
        if isinstance(head, SyntaxErr):
            return self._refuse(head, size, nonsync)
        if isinstance(head, AppendHead):
            return self._append(head, size, nonsync, binary)
        if binary:
            return self._refuse(SyntaxErr(tag, "literal8 is only for APPEND data"), size, nonsync)
        if size > self.max_literal or len(prefix) + size > self.max_command:
            text = f"literal too big (limit {self.max_literal} octets)"
            return self._refuse(SyntaxErr(tag, text), size, nonsync)
        self._cmd += line + b"\r\n"
        self._mode, self._left = _Mode.LITERAL, size
        return None if nonsync else Continuation(tag)

    def _append_end(self) -> Event | NeedData | None:
        line = self._take_line()
        if isinstance(line, _TooLong):
            self._too_long(None, "line")
            return AppendEnd(self._tag, "unexpected data after the message literal")
        if line is None:
            return self._idle()
        self._mode = _Mode.LINE
        if not line:
            return AppendEnd(self._tag)
        m = _MARKER.search(line)
        if m is not None and m.group(3):
            self._mode, self._left = _Mode.SKIP, int(m.group(2))
        # MULTIAPPEND (RFC 3502) is not offered, so more after the literal is a syntax error.
        return AppendEnd(self._tag, "unexpected data after the message literal")

    def _append(self, head: AppendHead, size: int, nonsync: bool, binary: bool) -> Event:
        self._cmd.clear()
        if size > self.max_append:
            return self._refuse(TooBig(head.tag, size), size, nonsync)
        self._mode, self._left, self._tag = _Mode.APPEND, size, head.tag
        if not nonsync:
            self._pending.append(Continuation(head.tag))
        return Append(
            head.tag, head.mailbox, head.flags, head.internal_date, size, not nonsync, binary
        )
