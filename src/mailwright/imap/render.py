"""Commands back to the wire: the inverse of `grammar.parse_command` (client side and tests).

`render(cmd)` gives the command's octets, CRLF included. Strings that are not atoms are
quoted, and those that cannot be quoted (CR, LF, 8-bit without UTF-8) become non-synchronizing
literals "{n+}" (RFC 7888), so the output can be sent in one write to a LITERAL+ server.
For `Append` only the head is rendered, up to and including the literal's "{n+}" CRLF; the
caller sends the message octets and the final CRLF. Mailbox names are encoded in modified
UTF-7 (RFC 3501 5.1.3) unless `utf8` (after ENABLE UTF8=ACCEPT).

The property `parse(render(cmd)) == cmd` holds for every command the parser can return
(tests/unit/imap/test_imap_roundtrip.py).
"""

from __future__ import annotations

import base64
import datetime
from typing import assert_never

from mailwright.imap import commands as c
from mailwright.imap import mutf7
from mailwright.imap import search as s
from mailwright.imap.lexer import ASTRING_CHARS, ATOM_CHARS, LIST_CHARS

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def string(value: str | bytes, chars: frozenset[int] = ASTRING_CHARS, utf8: bool = False) -> bytes:
    """An astring: atom if possible, else quoted, else a LITERAL+ literal."""
    raw = value.encode("utf-8") if isinstance(value, str) else value
    if raw and all(b in chars for b in raw):
        return raw
    if all(0 < b < 0x80 or (utf8 and b >= 0x80) for b in raw) and b"\r" not in raw \
            and b"\n" not in raw:
        return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d+}\r\n" % len(raw) + raw


def mailbox(name: str, chars: frozenset[int] = ASTRING_CHARS, utf8: bool = False) -> bytes:
    return string(name if utf8 else mutf7.encode(name), chars, utf8)


def _date(d: datetime.date) -> bytes:
    return f"{d.day}-{_MONTHS[d.month - 1]}-{d.year:04d}".encode()


def _date_time(dt: datetime.datetime) -> bytes:
    offset = dt.utcoffset() or datetime.timedelta()
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hh, mm = divmod(abs(minutes), 60)
    return (f'"{dt.day:02d}-{_MONTHS[dt.month - 1]}-{dt.year:04d} '
            f'{dt:%H:%M:%S} {sign}{hh:02d}{mm:02d}"').encode()


def _list(words: tuple[str, ...] | tuple[bytes, ...]) -> bytes:
    return b"(" + b" ".join(w.encode() if isinstance(w, str) else w for w in words) + b")"


def search_key(key: s.SearchKey, top: bool = False, utf8: bool = False) -> bytes:
    match key:
        case s.FlagKey(name):
            return name.encode()
        case s.KeywordKey(keyword, negated):
            return (b"UNKEYWORD " if negated else b"KEYWORD ") + keyword.encode()
        case s.TextKey(field, value):
            return field.encode() + b" " + string(value, utf8=utf8)
        case s.HeaderKey(name, value):
            return b"HEADER " + string(name, utf8=utf8) + b" " + string(value, utf8=utf8)
        case s.DateKey(op, date):
            return op.encode() + b" " + _date(date)
        case s.SizeKey(larger, size):
            return (b"LARGER " if larger else b"SMALLER ") + str(size).encode()
        case s.SetKey(sequence, uid):
            return (b"UID " if uid else b"") + str(sequence).encode()
        case s.Not(inner):
            return b"NOT " + search_key(inner, utf8=utf8)
        case s.Or(left, right):
            return b"OR " + search_key(left, utf8=utf8) + b" " + search_key(right, utf8=utf8)
        case s.And(keys):
            joined = b" ".join(search_key(k, utf8=utf8) for k in keys)
            return joined if top else b"(" + joined + b")"
        case _:
            assert_never(key)


def _section(sec: c.Section) -> bytes:
    parts = [str(n) for n in sec.part]
    if sec.text is not None:
        parts.append(sec.text)
    out = ".".join(parts).encode()
    if sec.fields:
        out += b" " + _list(tuple(string(f) for f in sec.fields))
    return b"[" + out + b"]"


def _partial(partial: tuple[int, int] | None) -> bytes:
    return b"" if partial is None else b"<%d.%d>" % partial


def fetch_item(item: c.FetchItem) -> bytes:
    match item:
        case c.FetchAttr(name):
            return name.encode()
        case c.FetchBody(section, peek, partial):
            return (b"BODY.PEEK" if peek else b"BODY") + _section(section) + _partial(partial)
        case c.FetchBinary(part, peek, partial, size):
            prefix = b"BINARY.SIZE" if size else b"BINARY.PEEK" if peek else b"BINARY"
            return prefix + b"[" + ".".join(map(str, part)).encode() + b"]" + _partial(partial)
        case _:
            assert_never(item)


def _uid_verb(cmd: c.Fetch | c.Store | c.Copy | c.Move, verb: bytes) -> bytes:
    """"[UID ]VERB sequence-set" (RFC 9051 6.4.9)."""
    return (b"UID " if cmd.uid else b"") + verb + b" " + str(cmd.sequence).encode()


def render(cmd: c.Command, utf8: bool = False) -> bytes:
    """`cmd` as the client sends it, CRLF included (for Append: the head, see the module doc)."""
    return cmd.tag.encode() + b" " + _body(cmd, utf8) + b"\r\n"


def _body(cmd: c.Command, utf8: bool) -> bytes:
    def box(name: str) -> bytes:
        return mailbox(name, utf8=utf8)

    match cmd:
        case c.Capability() | c.Noop() | c.Logout() | c.StartTls() | c.Namespace() | c.Idle() \
                | c.Check() | c.Close() | c.Unselect():
            return _NAMES[type(cmd)]
        case c.Authenticate(_, mech, ir):
            if ir is None:
                return b"AUTHENTICATE " + mech.encode()
            return b"AUTHENTICATE " + mech.encode() + b" " + (base64.b64encode(ir) or b"=")
        case c.Login(_, user, password):
            return b"LOGIN " + string(user, utf8=utf8) + b" " + string(password, utf8=utf8)
        case c.Enable(_, caps):
            return b"ENABLE " + " ".join(caps).encode()
        case c.Select(_, name):
            return b"SELECT " + box(name)
        case c.Examine(_, name):
            return b"EXAMINE " + box(name)
        case c.Create(_, name, uses):
            return b"CREATE " + box(name) + (b" (USE " + _list(uses) + b")" if uses else b"")
        case c.Delete(_, name):
            return b"DELETE " + box(name)
        case c.Rename(_, old, new):
            return b"RENAME " + box(old) + b" " + box(new)
        case c.Subscribe(_, name):
            return b"SUBSCRIBE " + box(name)
        case c.Unsubscribe(_, name):
            return b"UNSUBSCRIBE " + box(name)
        case c.List(_, ref, patterns, selection, options, status):
            out = b"LIST " + (_list(selection) + b" " if selection else b"") + box(ref) + b" "
            pats = [mailbox(p, LIST_CHARS, utf8) for p in patterns]
            out += pats[0] if len(pats) == 1 else _list(tuple(pats))
            opts = [o.encode() for o in options]
            if status is not None:
                opts.append(b"STATUS " + _list(status))
            return out + (b" RETURN " + _list(tuple(opts)) if opts else b"")
        case c.Lsub(_, ref, pattern):
            return b"LSUB " + box(ref) + b" " + mailbox(pattern, LIST_CHARS, utf8)
        case c.Status(_, name, items):
            return b"STATUS " + box(name) + b" " + _list(items)
        case c.Append(_, name, flags, date, size, sync, binary):
            out = b"APPEND " + box(name) + (b" " + _list(flags) if flags else b"")
            out += b" " + _date_time(date) if date is not None else b""
            return out + b" " + (b"~" if binary else b"") + (
                b"{%d}" if sync else b"{%d+}") % size
        case c.Expunge(_, uid_set):
            return b"EXPUNGE" if uid_set is None else b"UID EXPUNGE " + str(uid_set).encode()
        case c.Search(_, key, uid, charset, ret):
            out = b"UID SEARCH" if uid else b"SEARCH"
            if ret is not None:
                out += b" RETURN " + _list(ret)
            if charset is not None:
                out += b" CHARSET " + charset.encode()
            return out + b" " + search_key(key, top=True, utf8=utf8)
        case c.Fetch(_, _, items, _, macro):
            out = _uid_verb(cmd, b"FETCH") + b" "
            if macro is not None:
                return out + macro.encode()
            return out + _list(tuple(fetch_item(i) for i in items))
        case c.Store(_, _, mode, silent, flags):
            item = mode.encode() + (b"FLAGS.SILENT" if silent else b"FLAGS")
            return _uid_verb(cmd, b"STORE") + b" " + item + b" " + _list(flags)
        case c.Copy(_, _, name):
            return _uid_verb(cmd, b"COPY") + b" " + box(name)
        case c.Move(_, _, name):
            return _uid_verb(cmd, b"MOVE") + b" " + box(name)
        case c.Id(_, params):
            if params is None:
                return b"ID NIL"
            words = []
            for field_name, field_value in params:
                words.append(_quoted_or_literal(field_name, utf8))
                nil = field_value is None
                words.append(b"NIL" if nil else _quoted_or_literal(field_value or "", utf8))
            return b"ID " + _list(tuple(words))
        case _:
            assert_never(cmd)


def _quoted_or_literal(value: str, utf8: bool) -> bytes:
    """RFC 2971 fields and values are strings (never atoms)."""
    return string(value, frozenset(), utf8=utf8)


_NAMES: dict[type[c.Command], bytes] = {
    c.Capability: b"CAPABILITY", c.Noop: b"NOOP", c.Logout: b"LOGOUT", c.StartTls: b"STARTTLS",
    c.Namespace: b"NAMESPACE", c.Idle: b"IDLE", c.Check: b"CHECK", c.Close: b"CLOSE",
    c.Unselect: b"UNSELECT",
}
__all__ = ["ATOM_CHARS", "fetch_item", "mailbox", "render", "search_key", "string"]
