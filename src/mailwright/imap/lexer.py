"""The lexical layer of the IMAP grammar (RFC 9051 9): atoms, strings (quoted and literal),
mailbox names, flags, sequence sets and dates, read from one whole command.

`Reader` reports a malformed token by raising `Bad`, which `grammar` turns into a `SyntaxErr`
value at its top; `Bad` never leaves the `imap` package. Recursion depth is counted by
`Reader.enter`, so nesting is bounded by `MAX_NESTING`.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Final

from mailwright.imap import mutf7
from mailwright.imap.sequence import SequenceSet, parse_sequence_set

# Real commands nest two or three levels (FETCH (BODY[HEADER.FIELDS (..)])); a SEARCH of a mail
# client's filter rarely passes ten. Each level costs a few Python frames; 64 stays far from the
# interpreter's recursion limit of 1000.
MAX_NESTING: Final = 64


@dataclass(frozen=True, slots=True)
class SyntaxErr:
    """Answered with a tagged BAD (or "* BAD" when `tag` is None): RFC 9051 7.1.3."""

    tag: str | None
    text: str


class Bad(Exception):
    """Internal: unwinds the recursive descent; turned into SyntaxErr at the top."""


# RFC 9051 9: ATOM-CHAR is any CHAR except atom-specials: ( ) { SP CTL % * " \ ]
ATOM_SPECIALS: Final = frozenset(b'(){ %*"\\]')
ATOM_CHARS: Final = frozenset(b for b in range(0x21, 0x7F) if b not in ATOM_SPECIALS)
ASTRING_CHARS: Final = ATOM_CHARS | {ord("]")}
LIST_CHARS: Final = ASTRING_CHARS | {ord("%"), ord("*")}
TAG_CHARS: Final = ASTRING_CHARS - {ord("+")}
SEQ_CHARS: Final = frozenset(b"0123456789:*,$")
NZ_DIGITS: Final = frozenset(b"123456789")
_LITERAL: Final = re.compile(rb"~?\{(\d{1,10})(\+?)\}\r\n")
_MONTHS: Final = {m: i + 1 for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}
_SYSTEM_FLAGS: Final = {f.upper(): f for f in (
    "\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent")}
# Clients use short tags ("A0001", imaplib's "ABCD12"); a tag is echoed in every tagged
# response, so a long one would only amplify output.
MAX_TAG: Final = 64


def tag_of(data: bytes) -> str | None:
    """The tag at the start of a command, if it is a valid tag (for the BAD of a broken line)."""
    end = 0
    while end < len(data) and data[end] in TAG_CHARS:
        end += 1
    if end == 0 or end > MAX_TAG or (end < len(data) and data[end] != 0x20):
        return None
    return data[:end].decode("ascii")


class Reader:
    def __init__(self, data: bytes, utf8: bool) -> None:
        self.data = data
        self.pos = 0
        self.utf8 = utf8
        self.depth = 0
        # SEARCH CHARSET other than UTF-8/US-ASCII: keep the octets (as latin-1) so that the
        # session, not the grammar, answers NO [BADCHARSET] (RFC 9051 6.4.4).
        self.lenient = False

    # ----- lexical -----------------------------------------------------------------------------
    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self) -> int:
        return self.data[self.pos] if self.pos < len(self.data) else -1

    def sp(self) -> None:
        if self.peek() != 0x20:
            raise Bad("expected a space" if not self.at_end() else "missing argument")
        self.pos += 1

    def char(self, ch: bytes) -> None:
        if self.peek() != ch[0]:
            raise Bad(f"expected {ch.decode()!r}")
        self.pos += 1

    def end(self) -> None:
        if not self.at_end():
            raise Bad("unexpected characters after the command")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise Bad(f"nesting too deep (limit {MAX_NESTING})")

    def run(self, chars: frozenset[int]) -> bytes:
        start = self.pos
        data = self.data
        while self.pos < len(data) and data[self.pos] in chars:
            self.pos += 1
        return data[start : self.pos]

    def atom(self) -> str:
        word = self.run(ATOM_CHARS)
        if not word:
            raise Bad("expected an atom")
        return word.decode("ascii")

    def keyword(self) -> str:
        return self.atom().upper()

    def number(self) -> int:
        digits = self.run(frozenset(b"0123456789"))
        if not digits or len(digits) > 20:
            raise Bad("expected a number")
        return int(digits)

    def quoted(self) -> bytes:
        self.char(b'"')
        out = bytearray()
        data = self.data
        while True:
            if self.pos >= len(data):
                raise Bad("unterminated quoted string")
            b = data[self.pos]
            self.pos += 1
            if b == 0x22:
                return bytes(out)
            if b == 0x5C:
                if self.pos >= len(data) or data[self.pos] not in b'"\\':
                    raise Bad("bad escape in quoted string")
                b = data[self.pos]
                self.pos += 1
            elif b in (0, 0x0A, 0x0D):
                # 8-bit octets are allowed: RFC 9051 9 QUOTED-CHAR includes UTF8-2/3/4, and
                # clients send UTF-8 passwords quoted. `text` still demands valid UTF-8, and
                # `mailbox_name` modified UTF-7 from IMAP4rev1 clients.
                raise Bad("bad character in quoted string")
            out.append(b)

    def literal(self) -> bytes:
        m = _LITERAL.match(self.data, self.pos)
        if m is None or self.data[self.pos] == 0x7E:  # literal8 only as APPEND data
            raise Bad("bad literal")
        n = int(m.group(1))
        start = m.end()
        self.pos = start + n
        value = self.data[start : self.pos]
        if 0 in value:  # RFC 9051 9: a literal is CHAR8 (%x01-ff); NUL only in literal8
            raise Bad("NUL in literal")
        return value

    def string(self) -> bytes:
        p = self.peek()
        if p == 0x22:
            return self.quoted()
        if p == 0x7B:
            return self.literal()
        raise Bad("expected a string")

    def astring(self, chars: frozenset[int] = ASTRING_CHARS) -> bytes:
        if self.peek() in (0x22, 0x7B):
            return self.string()
        word = self.run(chars)
        if not word:
            raise Bad("expected a string or atom")
        return word

    def nil_or_string(self) -> bytes | None:
        if self.peek() in (0x22, 0x7B):
            return self.string()
        if self.keyword() != "NIL":
            raise Bad("expected a string or NIL")
        return None

    def text(self, raw: bytes) -> str:
        if self.lenient:
            return raw.decode("latin-1")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Bad("string is not UTF-8") from None

    def mailbox_name(self, raw: bytes, normalize: bool = True) -> str:
        """RFC 9051 5.1: INBOX in any case is INBOX; names are mUTF-7 unless UTF8=ACCEPT."""
        if self.utf8:
            name = self.text(raw)
        else:
            if not raw.isascii():
                raise Bad("mailbox name must be modified UTF-7 (RFC 3501 5.1.3)")
            decoded = mutf7.decode(raw.decode("ascii"))
            if isinstance(decoded, mutf7.Mutf7Error):
                raise Bad(decoded.text)
            name = decoded
        if any(ch < " " or ch == "\x7f" for ch in name):  # also when hidden in &...-
            raise Bad("control character in mailbox name")
        # ASCII case only: "\u0131nbox".upper() is "INBOX" in Python, not in RFC 9051 5.1.
        if normalize and name.isascii() and name.upper() == "INBOX":
            return "INBOX"
        return name

    def mailbox(self) -> str:
        return self.mailbox_name(self.astring())

    def sequence_set(self) -> SequenceSet:
        text = self.run(SEQ_CHARS).decode("ascii")
        seq = parse_sequence_set(text)
        if isinstance(seq, str):
            raise Bad(seq)
        return seq

    def paren_list(self) -> list[bytes]:
        """ "(" [word *(SP word)] ")" of atoms/flags; empty list allowed."""
        self.char(b"(")
        items: list[bytes] = []
        if self.peek() == 0x29:
            self.pos += 1
            return items
        while True:
            items.append(self.flag_bytes())
            if self.peek() == 0x29:
                self.pos += 1
                return items
            self.sp()

    def flag_bytes(self) -> bytes:
        if self.peek() == 0x5C:
            self.pos += 1
            word = self.run(ATOM_CHARS)
            if word == b"" and self.peek() == 0x2A:  # "\*" only in PERMANENTFLAGS; refuse here
                raise Bad("\\* is not a flag")
            if not word:
                raise Bad("expected a flag")
            return b"\\" + word
        word = self.run(ATOM_CHARS)
        if not word:
            raise Bad("expected a flag or keyword")
        return word

    def flag(self, raw: bytes) -> str:
        text = raw.decode("ascii")
        return _SYSTEM_FLAGS.get(text.upper(), text) if text.startswith("\\") else text


def flag_tuple(r: Reader, raws: list[bytes]) -> tuple[str, ...]:
    return tuple(r.flag(f) for f in raws)


def parse_date(r: Reader) -> datetime.date:
    quoted = r.peek() == 0x22
    if quoted:
        r.pos += 1
    raw = r.run(frozenset(b"0123456789-" + bytes(range(0x41, 0x5B)) + bytes(range(0x61, 0x7B))))
    if quoted:
        r.char(b'"')
    parts = raw.decode("ascii").split("-")
    if len(parts) != 3 or not (1 <= len(parts[0]) <= 2) or len(parts[2]) != 4:
        raise Bad("bad date (expected d-Mon-yyyy)")
    day, mon, year = parts
    month = _MONTHS.get(mon.upper())
    if month is None or not day.isdigit() or not year.isdigit():
        raise Bad("bad date (expected d-Mon-yyyy)")
    try:
        return datetime.date(int(year), month, int(day))
    except ValueError:
        raise Bad("no such date") from None


_DATE_TIME: Final = re.compile(
    rb'"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"')


def parse_date_time(r: Reader) -> datetime.datetime:
    """RFC 9051 9 date-time: "dd-Mon-yyyy hh:mm:ss +zzzz" (day may be space-padded)."""
    m = _DATE_TIME.match(r.data, r.pos)
    if m is None:
        raise Bad('bad date-time (expected "dd-Mon-yyyy hh:mm:ss +zzzz")')
    r.pos = m.end()
    month = _MONTHS.get(m.group(2).decode().upper())
    if month is None:
        raise Bad("bad month in date-time")
    sign = 1 if m.group(7) == b"+" else -1
    offset = datetime.timedelta(hours=int(m.group(8)), minutes=int(m.group(9)))
    try:
        return datetime.datetime(
            int(m.group(3)), month, int(m.group(1)), int(m.group(4)), int(m.group(5)),
            int(m.group(6)), tzinfo=datetime.timezone(sign * offset))
    except ValueError:
        raise Bad("no such date-time") from None
