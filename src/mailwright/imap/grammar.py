"""One complete IMAP command (its lines and literals inline, CRLF-joined) -> a Command or a
SyntaxErr. Pure; never raises on client input.

Grammar: RFC 9051 9 and RFC 3501 9, plus the extension grammars named in `commands`. The
framing in `parser` has already checked every literal's length, so a literal here is just
"{n}" or "{n+}" CRLF followed by n octets. Recursion is bounded by `MAX_NESTING`, counting
parenthesised lists and the operands of NOT and OR, so deep input answers BAD, never
RecursionError.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from mailwright.imap import commands as c
from mailwright.imap import search as s
from mailwright.imap.lexer import (
    ATOM_CHARS,
    LIST_CHARS,
    NZ_DIGITS,
    SEQ_CHARS,
    Bad,
    Reader,
    SyntaxErr,
    flag_tuple,
    parse_date,
    parse_date_time,
    tag_of,
)

__all__ = ["AppendHead", "SyntaxErr", "append_head", "parse_command", "tag_of"]

# RFC 2971 3.3: "no more than 30 field-value pairs".
MAX_ID_PAIRS: Final = 30

_SIMPLE_FETCH: Final = frozenset({
    "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822", "RFC822.HEADER", "RFC822.SIZE",
    "RFC822.TEXT", "BODY", "BODYSTRUCTURE", "UID",
})
_MACROS: Final = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
# RFC 9051 6.3.11 (SIZE and DELETED are RFC 8438 / RFC 9051), RECENT for IMAP4rev1 (RFC 3501),
# APPENDLIMIT from RFC 7889 3.
STATUS_ITEMS: Final = frozenset({
    "MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "SIZE", "DELETED", "APPENDLIMIT",
})
ESEARCH_RETURN: Final = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})




# RFC 9051 2.3.2: the system flags; \Recent only to be refused by the session. Anything else
# after a backslash is a flag-extension ("\" atom) that no standard defines, so a message
# cannot carry it (Dovecot answers BAD too).
_MESSAGE_SYSTEM_FLAGS: Final = frozenset({
    "\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "\\Recent"})


def _message_flags(r: Reader, raws: list[bytes]) -> tuple[str, ...]:
    """Flags for STORE and APPEND: keywords, and system flags (case-insensitive)."""
    flags = flag_tuple(r, raws)
    for flag in flags:
        if flag.startswith("\\") and flag not in _MESSAGE_SYSTEM_FLAGS:
            raise Bad(f"unknown system flag {flag[:30]}")
    return flags


# ----- SEARCH ------------------------------------------------------------------------------
def _search_key(r: Reader) -> s.SearchKey:
    r.enter()
    try:
        p = r.peek()
        if p == 0x28:
            r.pos += 1
            keys = [_search_key(r)]
            while r.peek() == 0x20:
                r.pos += 1
                keys.append(_search_key(r))
            r.char(b")")
            return keys[0] if len(keys) == 1 else s.And(tuple(keys))
        if p in SEQ_CHARS:
            return s.SetKey(r.sequence_set())
        word = r.keyword()
        if word in s.FLAG_KEYS:
            return s.FlagKey(word)
        r.sp()
        if word in s.TEXT_KEYS:
            return s.TextKey(word, r.text(r.astring()))
        if word in s.DATE_KEYS:
            return s.DateKey(word, parse_date(r))
        match word:
            case "NOT":
                return s.Not(_search_key(r))
            case "OR":
                left = _search_key(r)
                r.sp()
                return s.Or(left, _search_key(r))
            case "HEADER":
                name = r.text(r.astring())
                r.sp()
                return s.HeaderKey(name, r.text(r.astring()))
            case "KEYWORD" | "UNKEYWORD":
                return s.KeywordKey(r.atom(), negated=word == "UNKEYWORD")
            case "LARGER" | "SMALLER":
                return s.SizeKey(word == "LARGER", r.number())
            case "UID":
                return s.SetKey(r.sequence_set(), uid=True)
        raise Bad(f"unknown search key {word[:30]}")
    finally:
        r.depth -= 1


def _search(r: Reader, tag: str, uid: bool) -> c.Search:
    r.sp()
    return_opts: tuple[str, ...] | None = None
    charset: str | None = None
    save = r.pos
    if r.run(ATOM_CHARS).upper() == b"RETURN" and r.peek() == 0x20:
        r.sp()
        opts = tuple(x.decode("ascii").upper() for x in r.paren_list())
        if unknown := set(opts) - ESEARCH_RETURN:
            raise Bad(f"unknown RETURN option {sorted(unknown)[0][:30]}")
        return_opts = opts
        r.sp()
        save = r.pos
    else:
        r.pos = save
    if r.run(ATOM_CHARS).upper() == b"CHARSET" and r.peek() == 0x20:
        r.sp()
        charset = r.text(r.astring()).upper()
        r.lenient = charset not in ("UTF-8", "US-ASCII")
        r.sp()
    else:
        r.pos = save
    keys = [_search_key(r)]
    while r.peek() == 0x20:
        r.pos += 1
        keys.append(_search_key(r))
    key = keys[0] if len(keys) == 1 else s.And(tuple(keys))
    return c.Search(tag, key, uid=uid, charset=charset, return_options=return_opts)


# ----- FETCH -------------------------------------------------------------------------------
def _part(r: Reader) -> tuple[int, ...]:
    nums: list[int] = []
    while r.peek() in NZ_DIGITS:
        n = r.number()
        if n == 0 or n > 0xFFFFFFFF:
            raise Bad("bad section part number")
        nums.append(n)
        if r.peek() != 0x2E:
            break
        nxt = r.data[r.pos + 1 : r.pos + 2]
        if not nxt.isdigit():
            break
        r.pos += 1
    return tuple(nums)


def _section(r: Reader) -> c.Section:
    r.char(b"[")
    part = _part(r)
    if part and r.peek() == 0x2E:
        r.pos += 1
    elif part:
        r.char(b"]")
        return c.Section(part)
    if r.peek() == 0x5D:
        if part:
            raise Bad("bad section")
        r.pos += 1
        return c.Section()
    word = r.run(ATOM_CHARS - {ord("["), ord("]")}).decode("ascii").upper()
    fields: tuple[str, ...] = ()
    if word in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        r.sp()
        r.char(b"(")
        names = [r.text(r.astring()).upper()]
        while r.peek() == 0x20:
            r.pos += 1
            names.append(r.text(r.astring()).upper())
        r.char(b")")
        fields = tuple(names)
    elif word not in ("HEADER", "TEXT") and not (word == "MIME" and part):
        raise Bad("bad section")
    r.char(b"]")
    return c.Section(part, word, fields)


def _partial(r: Reader) -> tuple[int, int] | None:
    if r.peek() != 0x3C:
        return None
    r.pos += 1
    origin = r.number()
    r.char(b".")
    length = r.number()
    r.char(b">")
    if length == 0:
        raise Bad("partial length must be non-zero")
    return origin, length


def _fetch_item(r: Reader) -> c.FetchItem:
    word = r.run(ATOM_CHARS - {ord("["), ord("<")}).decode("ascii").upper()
    if word in ("BODY", "BODY.PEEK") and r.peek() == 0x5B:
        section = _section(r)
        return c.FetchBody(section, peek=word == "BODY.PEEK", partial=_partial(r))
    if word in ("BINARY", "BINARY.PEEK", "BINARY.SIZE"):
        r.char(b"[")
        part = _part(r)
        r.char(b"]")
        if word == "BINARY.SIZE":
            return c.FetchBinary(part, size=True)
        return c.FetchBinary(part, peek=word == "BINARY.PEEK", partial=_partial(r))
    if word in _SIMPLE_FETCH:
        return c.FetchAttr(word)
    raise Bad(f"unknown fetch item {word[:30]}" if word else "expected a fetch item")


def _fetch(r: Reader, tag: str, uid: bool) -> c.Fetch:
    r.sp()
    seq = r.sequence_set()
    r.sp()
    if r.peek() == 0x28:
        r.pos += 1
        items = [_fetch_item(r)]
        while r.peek() == 0x20:
            r.pos += 1
            items.append(_fetch_item(r))
        r.char(b")")
        return c.Fetch(tag, seq, tuple(items), uid=uid)
    save = r.pos
    word = r.run(ATOM_CHARS).decode("ascii").upper()
    if word in _MACROS and (r.at_end()):
        return c.Fetch(tag, seq, tuple(c.FetchAttr(n) for n in _MACROS[word]), uid, word)
    r.pos = save
    return c.Fetch(tag, seq, (_fetch_item(r),), uid=uid)


def _store(r: Reader, tag: str, uid: bool) -> c.Store:
    r.sp()
    seq = r.sequence_set()
    r.sp()
    mode = ""
    if r.peek() in (0x2B, 0x2D):
        mode = chr(r.peek())
        r.pos += 1
    word = r.keyword()
    if word not in ("FLAGS", "FLAGS.SILENT"):
        raise Bad("expected FLAGS or FLAGS.SILENT")
    r.sp()
    if r.peek() == 0x28:
        raws = r.paren_list()
    else:
        raws = [r.flag_bytes()]
        while r.peek() == 0x20:
            r.pos += 1
            raws.append(r.flag_bytes())
    return c.Store(tag, seq, mode, word.endswith(".SILENT"), _message_flags(r, raws), uid)


# ----- LIST / STATUS / ID ------------------------------------------------------------------
def _status_items(r: Reader) -> tuple[str, ...]:
    items = tuple(x.decode("ascii").upper() for x in r.paren_list())
    if not items:
        raise Bad("empty STATUS item list")
    if unknown := set(items) - STATUS_ITEMS:
        raise Bad(f"unknown STATUS item {sorted(unknown)[0][:30]}")
    return items


def _list(r: Reader, tag: str) -> c.List:
    r.sp()
    selection: tuple[str, ...] = ()
    if r.peek() == 0x28:
        selection = tuple(x.decode("ascii").upper() for x in r.paren_list())
        r.sp()
    reference = r.mailbox_name(r.astring(), normalize=False)
    r.sp()
    patterns: list[str] = []
    if r.peek() == 0x28:  # RFC 5258 3: several patterns
        r.pos += 1
        patterns.append(r.mailbox_name(r.astring(LIST_CHARS), normalize=False))
        while r.peek() == 0x20:
            r.pos += 1
            patterns.append(r.mailbox_name(r.astring(LIST_CHARS), normalize=False))
        r.char(b")")
    else:
        patterns.append(r.mailbox_name(r.astring(LIST_CHARS), normalize=False))
    options: list[str] = []
    status: tuple[str, ...] | None = None
    if not r.at_end():
        r.sp()
        if r.keyword() != "RETURN":
            raise Bad("expected RETURN")
        r.sp()
        r.char(b"(")
        while r.peek() != 0x29:
            if options or status is not None:
                r.sp()
            opt = r.keyword()
            if opt == "STATUS":  # RFC 5819 2
                r.sp()
                status = _status_items(r)
            else:
                options.append(opt)
        r.pos += 1
    return c.List(tag, reference, tuple(patterns), selection, tuple(options), status)


def _id(r: Reader, tag: str) -> c.Id:
    r.sp()
    if r.peek() != 0x28:
        if r.keyword() != "NIL":
            raise Bad("expected a parameter list or NIL")
        return c.Id(tag, None)
    r.pos += 1
    pairs: list[tuple[str, str | None]] = []
    while r.peek() != 0x29:
        if pairs:
            r.sp()
        key = r.text(r.string())
        r.sp()
        value = r.nil_or_string()
        pairs.append((key, None if value is None else r.text(value)))
        if len(pairs) > MAX_ID_PAIRS:
            raise Bad(f"too many ID pairs (RFC 2971 limit {MAX_ID_PAIRS})")
    r.pos += 1
    return c.Id(tag, tuple(pairs))


# ----- commands ----------------------------------------------------------------------------
_NO_ARGS: Final[dict[str, Callable[[str], c.Command]]] = {
    "CAPABILITY": c.Capability, "NOOP": c.Noop, "LOGOUT": c.Logout, "STARTTLS": c.StartTls,
    "NAMESPACE": c.Namespace, "IDLE": c.Idle, "CHECK": c.Check, "CLOSE": c.Close,
    "UNSELECT": c.Unselect,
}
_ONE_MAILBOX: Final[dict[str, Callable[[str, str], c.Command]]] = {
    "SELECT": c.Select, "EXAMINE": c.Examine, "DELETE": c.Delete,
    "SUBSCRIBE": c.Subscribe, "UNSUBSCRIBE": c.Unsubscribe,
}


def _authenticate(r: Reader, tag: str) -> c.Authenticate:
    r.sp()
    mech = r.keyword()
    if r.at_end():
        return c.Authenticate(tag, mech)
    r.sp()
    raw = r.run(ATOM_CHARS)  # base64 / "=" (RFC 4959 3)
    if raw == b"=":
        return c.Authenticate(tag, mech, b"")
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise Bad("initial response is not base64") from None
    if not raw:
        raise Bad("expected an initial response")
    return c.Authenticate(tag, mech, decoded)


def _create(r: Reader, tag: str) -> c.Create:
    r.sp()
    mailbox = r.mailbox()
    if r.at_end():
        return c.Create(tag, mailbox)
    r.sp()  # RFC 6154 5.1: (USE (\Sent ...))
    r.char(b"(")
    if r.keyword() != "USE":
        raise Bad("expected USE")
    r.sp()
    uses = flag_tuple(r, r.paren_list())
    r.char(b")")
    return c.Create(tag, mailbox, uses)


def _uid_command(r: Reader, tag: str) -> c.Command:
    r.sp()
    verb = r.keyword()
    match verb:
        case "FETCH":
            return _fetch(r, tag, True)
        case "SEARCH":
            return _search(r, tag, True)
        case "STORE":
            return _store(r, tag, True)
        case "COPY" | "MOVE":
            r.sp()
            seq = r.sequence_set()
            r.sp()
            box = r.mailbox()
            return c.Copy(tag, seq, box, True) if verb == "COPY" else c.Move(tag, seq, box, True)
        case "EXPUNGE":
            r.sp()
            return c.Expunge(tag, r.sequence_set())
    raise Bad(f"unknown UID command {verb[:30]}")


def _command(r: Reader, tag: str, verb: str) -> c.Command:
    if verb in _NO_ARGS:
        return _NO_ARGS[verb](tag)
    if verb in _ONE_MAILBOX:
        r.sp()
        return _ONE_MAILBOX[verb](tag, r.mailbox())
    match verb:
        case "AUTHENTICATE":
            return _authenticate(r, tag)
        case "LOGIN":
            r.sp()
            user = r.text(r.astring())
            r.sp()
            return c.Login(tag, user, r.text(r.astring()))
        case "ENABLE":
            caps = []
            while not r.at_end():
                r.sp()
                caps.append(r.keyword())
            if not caps:
                raise Bad("ENABLE needs at least one capability")
            return c.Enable(tag, tuple(caps))
        case "CREATE":
            return _create(r, tag)
        case "RENAME":
            r.sp()
            old = r.mailbox()
            r.sp()
            return c.Rename(tag, old, r.mailbox())
        case "LIST":
            return _list(r, tag)
        case "LSUB":
            r.sp()
            ref = r.mailbox_name(r.astring(), normalize=False)
            r.sp()
            return c.Lsub(tag, ref, r.mailbox_name(r.astring(LIST_CHARS), normalize=False))
        case "STATUS":
            r.sp()
            box = r.mailbox()
            r.sp()
            return c.Status(tag, box, _status_items(r))
        case "EXPUNGE":
            return c.Expunge(tag)
        case "SEARCH":
            return _search(r, tag, False)
        case "FETCH":
            return _fetch(r, tag, False)
        case "STORE":
            return _store(r, tag, False)
        case "COPY" | "MOVE":
            r.sp()
            seq = r.sequence_set()
            r.sp()
            box = r.mailbox()
            return c.Copy(tag, seq, box) if verb == "COPY" else c.Move(tag, seq, box)
        case "UID":
            return _uid_command(r, tag)
        case "ID":
            return _id(r, tag)
        case "APPEND":
            raise Bad("APPEND needs a message literal")
    raise Bad(f"unknown command {verb[:30]}")


def parse_command(data: bytes, utf8: bool = False) -> c.Command | SyntaxErr:
    """Parse one whole command (no final CRLF). `utf8`: UTF8=ACCEPT is enabled (RFC 9051 6.3.1)."""
    tag = tag_of(data)
    if tag is None:
        return SyntaxErr(None, "missing or invalid tag")
    r = Reader(data, utf8)
    r.pos = len(tag)
    try:
        r.sp()
        verb = r.keyword()
        cmd = _command(r, tag, verb)
        r.end()
    except Bad as e:
        return SyntaxErr(tag, str(e))
    return cmd


@dataclass(frozen=True, slots=True)
class AppendHead:
    """tag APPEND mailbox [flags] [date-time], everything before the message literal."""

    tag: str
    mailbox: str
    flags: tuple[str, ...]
    internal_date: datetime.datetime | None


def append_head(data: bytes, utf8: bool = False) -> AppendHead | SyntaxErr | None:
    """If `data` (a command up to a literal marker, the marker excluded) is an APPEND whose next
    literal is the message, its head; None when it is not (another command, or the literal
    is the mailbox name); SyntaxErr when it is an APPEND that cannot be valid."""
    tag = tag_of(data)
    if tag is None:
        return None
    r = Reader(data, utf8)
    r.pos = len(tag)
    try:
        r.sp()
        if r.keyword() != "APPEND":
            return None
        if r.at_end():
            return None  # the literal is the mailbox name
        r.sp()
        mailbox = r.mailbox()
        flags: tuple[str, ...] = ()
        date = None
        if not r.at_end():
            r.sp()
            if r.peek() == 0x28:
                flags = _message_flags(r, r.paren_list())
                if not r.at_end():
                    r.sp()
            if not r.at_end():
                date = parse_date_time(r)
        r.end()
    except Bad as e:
        return SyntaxErr(tag, str(e))
    return AppendHead(tag, mailbox, flags, date)
