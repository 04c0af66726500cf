"""FETCH data items of one message (RFC 3501 6.4.5 / 7.4.2, RFC 9051 6.4.5 / 7.5.2, RFC 3516
BINARY, RFC 7162 MODSEQ), as the bytes of one `* n FETCH (...)` response.

Invariants:
- Pure: the message's bytes are reached only through the `read_range(start, end)` callable the
  session passes in; ENVELOPE, BODY and BODYSTRUCTURE come ready-made from `MessageInfo`, and
  sections are byte ranges from `MessageInfo.parts`, so the message is never re-parsed.
- Items are answered in the order requested; UID comes first when the command was UID FETCH
  and did not ask for it (RFC 9051 6.4.9: "UID ... MUST be included").
- Section data always goes out as a literal, so 8-bit and CR/LF content is exact; a section that
  does not exist is an empty string (RFC 9051 6.4.5).
- Whether the fetch sets \\Seen is returned, not done: the store update belongs to the session.
- An unknown Content-Transfer-Encoding under BINARY raises `UnknownCte`; the session answers
  `NO [UNKNOWN-CTE]` (RFC 3516 4.3). Every other input gives a response.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Sequence
from typing import Final, assert_never

from mailwright.imap import commands as c
from mailwright.imap import responses as r
from mailwright.message import MessageInfo, header_fields
from mailwright.message.headers import first_fields
from mailwright.message.text import decode_transfer
from mailwright.store.api import MessageRecord

ReadRange = Callable[[int, int], bytes]

_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                  "Dec")
# RFC 2045 6.1 mechanisms; identity ones need no decoding. Anything else is UNKNOWN-CTE.
_IDENTITY_CTE: Final = frozenset({b"", b"7bit", b"8bit", b"binary"})
_KNOWN_CTE: Final = _IDENTITY_CTE | {b"base64", b"quoted-printable"}
_CTE_FIELD: Final = frozenset({b"content-transfer-encoding"})


class UnknownCte(Exception):
    """BINARY of a part whose Content-Transfer-Encoding we cannot decode: answer
    `NO [UNKNOWN-CTE]` (RFC 3516 4.3)."""

    def __init__(self, part: str, cte: bytes) -> None:
        super().__init__(f"unknown Content-Transfer-Encoding {cte[:40]!r} in part {part!r}")
        self.part = part
        self.cte = cte


def internal_date(seconds: int) -> bytes:
    """INTERNALDATE as a quoted RFC 3501 date-time, "17-Jul-1996 02:44:25 +0000" (UTC)."""
    dt = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return (f'"{dt.day:02d}-{_MONTHS[dt.month - 1]}-{dt.year:04d} '
            f'{dt:%H:%M:%S} +0000"').encode()


def _part_key(part: tuple[int, ...]) -> str:
    return ".".join(map(str, part))


def _section_label(sec: c.Section, utf8: bool) -> bytes:
    """The section-spec echoed in the response, e.g. `1.2.HEADER.FIELDS (FROM TO)`."""
    words = [str(n) for n in sec.part]
    if sec.text is not None:
        words.append(sec.text)
    out = ".".join(words).encode()
    if sec.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        out += b" (" + b" ".join(r.astring(f, utf8) for f in sec.fields) + b")"
    return out


def _slice(data: bytes, partial: tuple[int, int] | None) -> bytes:
    if partial is None:
        return data
    origin, length = partial
    return data[origin:origin + length]


def _read(read_range: ReadRange, span: tuple[int, int] | None,
          partial: tuple[int, int] | None) -> bytes:
    """Bytes of `span`, or of its partial window only: a <0.1024> of a 20 MB part reads 1 KiB."""
    if span is None:
        return b""
    start, end = span
    if partial is not None:
        origin, length = partial
        start, end = min(end, start + origin), min(end, start + origin + length)
    return read_range(start, end) if end > start else b""


def _body_section(item: c.FetchBody, info: MessageInfo, read_range: ReadRange) -> bytes:
    """The data of BODY[section]<partial> (RFC 9051 6.4.5)."""
    sec = item.section
    part = info.parts.get(_part_key(sec.part))
    if part is None:
        return b""
    match sec.text:
        case None:
            return _read(read_range, part.content(), item.partial)
        case "MIME":
            if not sec.part:
                return b""  # MIME needs a part number; the top header is HEADER
            return _read(read_range, part.mime(), item.partial)
        case "HEADER":
            return _read(read_range, part.header(), item.partial)
        case "TEXT":
            return _read(read_range, part.text(), item.partial)
        case "HEADER.FIELDS" | "HEADER.FIELDS.NOT":
            span = part.header()
            if span is None:
                return b""
            raw = read_range(*span)
            data = header_fields(raw, sec.fields, exclude=sec.text == "HEADER.FIELDS.NOT")
            return _slice(data, item.partial)
        case _:
            return b""  # the parser only builds the five forms above


def _binary(part: tuple[int, ...], info: MessageInfo, read_range: ReadRange) -> bytes:
    """The decoded content of a part (RFC 3516 4.2); BINARY[] is the whole message as stored."""
    key = _part_key(part)
    sec = info.parts.get(key)
    if sec is None:
        return b""
    content = read_range(*sec.content()) if sec.end > sec.body_start else b""
    if not part:
        return content
    start, end = sec.mime()
    mime = read_range(start, end) if end > start else b""
    cte = first_fields(mime, 0, len(mime), _CTE_FIELD).get(b"content-transfer-encoding", b"")
    cte = cte.strip().lower()
    if cte not in _KNOWN_CTE:
        raise UnknownCte(key, cte)
    return content if cte in _IDENTITY_CTE else decode_transfer(content, cte)


def _literal(data: bytes) -> bytes:
    return r.literal(data) if data else b'""'


def _partial_label(partial: tuple[int, int] | None) -> bytes:
    return b"" if partial is None else b"<%d>" % partial[0]


def _sets_seen(item: c.FetchItem) -> bool:
    """RFC 9051 6.4.5: BODY[...] and BINARY[...] without PEEK, RFC822 and RFC822.TEXT."""
    match item:
        case c.FetchAttr(name):
            return name in ("RFC822", "RFC822.TEXT")
        case c.FetchBody(peek=peek):
            return not peek
        case c.FetchBinary(peek=peek, size=size):
            return not peek and not size
        case _:
            assert_never(item)


# FETCH items answered from the store's record alone (no MessageInfo, no file).
RECORD_ONLY: Final = frozenset({"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "MODSEQ"})
# Flag lists as wire bytes, by flag set: a mailbox has few distinct sets, and FETCH 1:* FLAGS
# of 10,000 messages (issue 4: <= 40 ms) must not sort each one. Bounded; cleared when full.
_FLAG_BYTES: dict[frozenset[str], bytes] = {}
_FLAG_BYTES_MAX: Final = 4096

RecordFormatter = Callable[[MessageRecord], bytes]


def flag_bytes(flags: frozenset[str]) -> bytes:
    """`r.flag_list(flags)`, memoised."""
    got = _FLAG_BYTES.get(flags)
    if got is None:
        if len(_FLAG_BYTES) >= _FLAG_BYTES_MAX:
            _FLAG_BYTES.clear()
        got = _FLAG_BYTES[flags] = r.flag_list(flags)
    return got


def _record_part(name: str) -> RecordFormatter:
    match name:
        case "UID":
            return lambda m: b"UID %d" % m.uid
        case "FLAGS":
            return lambda m: b"FLAGS " + flag_bytes(m.flags)
        case "INTERNALDATE":
            return lambda m: b"INTERNALDATE " + internal_date(m.internal_date)
        case "RFC822.SIZE":
            return lambda m: b"RFC822.SIZE %d" % m.size
        case "MODSEQ":
            return lambda m: b"MODSEQ (%d)" % m.modseq
        case _:
            raise ValueError(f"{name!r} needs more than the record")


def record_formatter(items: Sequence[c.FetchItem], *, uid: bool = False,
                     modseq: bool = False) -> RecordFormatter | None:
    """For a FETCH whose items all come from the record (`RECORD_ONLY`): a function giving
    the msg-att bytes of one message, the same as `fetch_items` would, much faster. None when
    an item needs more (then use `fetch_items`)."""
    names: list[str] = []
    for item in items:
        if not isinstance(item, c.FetchAttr) or item.name not in RECORD_ONLY:
            return None
        names.append(item.name)
    if uid and "UID" not in names:
        names.insert(0, "UID")
    if modseq and "MODSEQ" not in names:
        names.append("MODSEQ")
    # The forms every client sends, without the generic join.
    if names == ["UID", "FLAGS"]:
        return lambda m: b"UID %d FLAGS %s" % (m.uid, flag_bytes(m.flags))
    if names == ["FLAGS"]:
        return lambda m: b"FLAGS " + flag_bytes(m.flags)
    if names == ["FLAGS", "UID"]:
        return lambda m: b"FLAGS %s UID %d" % (flag_bytes(m.flags), m.uid)
    parts = [_record_part(n) for n in names]
    return lambda m: b" ".join([p(m) for p in parts])


# Items answered from the record and the ready-made MessageInfo, without the file.
INFO_ONLY: Final = frozenset({"ENVELOPE", "BODY", "BODYSTRUCTURE"})
InfoFormatter = Callable[[MessageRecord, MessageInfo], bytes]


def _info_part(name: str) -> InfoFormatter:
    match name:
        case "ENVELOPE":
            return lambda m, i: b"ENVELOPE " + i.envelope
        case "BODY":
            return lambda m, i: b"BODY " + i.body
        case "BODYSTRUCTURE":
            return lambda m, i: b"BODYSTRUCTURE " + i.bodystructure
        case _:
            part = _record_part(name)
            return lambda m, i: part(m)


def info_formatter(items: Sequence[c.FetchItem], *, uid: bool = False) -> InfoFormatter | None:
    """For a FETCH whose items come from the record and MessageInfo only (ENVELOPE, BODY,
    BODYSTRUCTURE and `RECORD_ONLY`; nothing that reads the file or sets \\Seen): a function
    giving the msg-att bytes of one message, as `fetch_items` would. None otherwise."""
    names: list[str] = []
    for item in items:
        if not isinstance(item, c.FetchAttr) or item.name not in INFO_ONLY | RECORD_ONLY:
            return None
        names.append(item.name)
    if uid and "UID" not in names:
        names.insert(0, "UID")
    if names == ["ENVELOPE", "BODYSTRUCTURE"]:  # what a mail client's list view asks
        return lambda m, i: b"ENVELOPE %s BODYSTRUCTURE %s" % (i.envelope, i.bodystructure)
    parts = [_info_part(n) for n in names]
    return lambda m, i: b" ".join([p(m, i) for p in parts])


def fetch_items(items: Sequence[c.FetchItem], record: MessageRecord, info: MessageInfo,
                read_range: ReadRange, *, msn: int, uid: bool = False, modseq: bool = False,
                read_only: bool = False, utf8: bool = False) -> tuple[bytes, bool]:
    """The `* msn FETCH (...)` response for `items` of one message, and whether \\Seen must be set.

    `uid` is True for UID FETCH (UID is then always sent); `modseq` for a CONDSTORE session
    that must see MODSEQ (RFC 7162 3.1.4.1); `read_only` for EXAMINE, where nothing sets
    \\Seen. When the fetch sets \\Seen on a message that lacks it, FLAGS is sent with \\Seen
    added (RFC 3501 6.4.5: the changed flags "SHOULD be included"), unless FLAGS was asked.
    Raises `UnknownCte` (answer NO [UNKNOWN-CTE]); nothing else.
    """
    may_set_seen, names = _plan(tuple(items))
    sets_seen = may_set_seen and not read_only and "\\Seen" not in record.flags
    flags = record.flags | {"\\Seen"} if sets_seen else record.flags
    out: list[bytes] = []
    if uid and "UID" not in names:
        out.append(b"UID %d" % record.uid)
    for item in items:
        out.append(_item(item, record, info, read_range, flags, utf8))
    if modseq and "MODSEQ" not in names:
        out.append(b"MODSEQ (%d)" % record.modseq)
    if sets_seen and "FLAGS" not in names:
        out.append(b"FLAGS " + flag_bytes(flags))
    return r.fetch(msn, b" ".join(out)), sets_seen


@functools.lru_cache(maxsize=256)
def _plan(items: tuple[c.FetchItem, ...]) -> tuple[bool, frozenset[str]]:
    """Per FETCH command, not per message: whether any item may set \\Seen, and the plain
    attribute names asked for."""
    names = frozenset(i.name for i in items if isinstance(i, c.FetchAttr))
    return any(map(_sets_seen, items)), names


def _item(item: c.FetchItem, record: MessageRecord, info: MessageInfo, read_range: ReadRange,
          flags: frozenset[str], utf8: bool) -> bytes:
    match item:
        case c.FetchAttr(name):
            return _attr(name, record, info, read_range, flags)
        case c.FetchBody(section, _, partial):
            data = _body_section(item, info, read_range)
            label = b"BODY[" + _section_label(section, utf8) + b"]" + _partial_label(partial)
            return label + b" " + _literal(data)
        case c.FetchBinary(part, _, partial, size):
            data = _binary(part, info, read_range)
            label = b"[" + _part_key(part).encode() + b"]"
            if size:
                return b"BINARY.SIZE" + label + b" %d" % len(data)
            data = _slice(data, partial)
            # RFC 3516 4.3: literal8 only when needed (NUL), so that more clients can read it.
            value = r.literal(data, binary=True) if b"\x00" in data else _literal(data)
            return b"BINARY" + label + _partial_label(partial) + b" " + value
        case _:
            assert_never(item)


def _attr(name: str, record: MessageRecord, info: MessageInfo, read_range: ReadRange,
          flags: frozenset[str]) -> bytes:
    top = info.parts[""]
    match name:
        case "UID":
            return b"UID %d" % record.uid
        case "FLAGS":
            return b"FLAGS " + flag_bytes(flags)
        case "INTERNALDATE":
            return b"INTERNALDATE " + internal_date(record.internal_date)
        case "RFC822.SIZE":
            return b"RFC822.SIZE %d" % record.size
        case "ENVELOPE":
            return b"ENVELOPE " + info.envelope
        case "BODY":
            return b"BODY " + info.body
        case "BODYSTRUCTURE":
            return b"BODYSTRUCTURE " + info.bodystructure
        case "MODSEQ":
            return b"MODSEQ (%d)" % record.modseq
        case "RFC822":
            return b"RFC822 " + _literal(_read(read_range, top.content(), None))
        case "RFC822.HEADER":
            return b"RFC822.HEADER " + _literal(_read(read_range, top.header(), None))
        case "RFC822.TEXT":
            return b"RFC822.TEXT " + _literal(_read(read_range, top.text(), None))
        case _:
            # The parser accepts only the names above; a new one must be added here.
            raise ValueError(f"unsupported FETCH attribute {name!r}")


__all__ = [
    "INFO_ONLY", "RECORD_ONLY", "InfoFormatter", "ReadRange", "RecordFormatter", "UnknownCte",
    "fetch_items", "flag_bytes", "info_formatter", "internal_date", "record_formatter",
]
