"""Message parsing at delivery and when IMAP serves it: `analyze` (message/: MIME tree, ENVELOPE,
BODY, BODYSTRUCTURE, search text), the store's blob analysis and index text
(store/textindex.py), FETCH of every part (imap/fetch.py) and header-field selection.

Documented errors: none for `analyze` and the index ("never raises on any bytes"); FETCH
raises only `UnknownCte` for BINARY of a part in an unknown transfer encoding.
Checked besides: part offsets nest inside the message and their parents; ENVELOPE, BODY and
BODYSTRUCTURE are well-formed IMAP data; the JSON and packed forms round-trip; the deferred
analysis equals the eager one; every FETCH response is one `* 1 FETCH (...)` response.
"""

from __future__ import annotations

from mailwright.imap import commands as c
from mailwright.imap.fetch import UnknownCte, fetch_items
from mailwright.message import MessageInfo, analyze, header_fields
from mailwright.message.limits import MAX_TEXT
from mailwright.store.api import MessageRecord
from mailwright.store.textindex import analyze_blob, index_texts, unpack_parts

from ._support import read_imap_data

_ATTRS = tuple(c.FetchAttr(n) for n in (
    "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822", "RFC822.HEADER", "RFC822.SIZE", "RFC822.TEXT",
    "BODY", "BODYSTRUCTURE", "UID"))
_FIELDS = ("FROM", "TO", "SUBJECT", "CONTENT-TYPE", "X-\u00e9")
# Enough part numbers to reach nested parts; a 10,000-part message is tested in the unit tests.
_MAX_PARTS_FETCHED = 6


def _check_offsets(info: MessageInfo, size: int) -> None:
    assert info.size == size
    assert info.parts[""].content() == (0, size)
    assert "1" in info.parts
    for number, s in info.parts.items():
        assert 0 <= s.start <= s.body_start <= s.end <= size, number
        if s.message_body_start is not None:
            assert s.body_start <= s.message_body_start <= s.end, number
        if number:
            parent = number.rpartition(".")[0]
            outer = info.parts[parent]
            assert outer.body_start <= s.start, number
            assert s.end <= outer.end, number


def _items(part: tuple[int, ...]) -> list[c.FetchItem]:
    sections = [
        c.Section(part), c.Section(part, "MIME"), c.Section(part, "HEADER"),
        c.Section(part, "TEXT"), c.Section(part, "HEADER.FIELDS", _FIELDS),
        c.Section(part, "HEADER.FIELDS.NOT", _FIELDS),
    ]
    items: list[c.FetchItem] = [c.FetchBody(sec, peek=True) for sec in sections]
    items.append(c.FetchBody(c.Section(part), partial=(1, 7)))
    return items


def fuzz_message(raw: bytes) -> None:
    info = analyze(raw)
    _check_offsets(info, len(raw))
    for data in (info.envelope, info.body, info.bodystructure):
        read_imap_data(data)
    assert len(info.text) <= MAX_TEXT
    assert "\x00" not in info.text
    info.text.encode("utf-8")  # no lone surrogates: the index stores UTF-8
    assert MessageInfo.from_json(info.to_json()) == info

    blob = analyze_blob(raw)
    assert unpack_parts(blob.parts) == dict(info.parts)
    assert (blob.info.envelope, blob.info.bodystructure) == (info.envelope, info.bodystructure)
    assert blob.info.text == info.text
    header, body = index_texts(raw)
    assert isinstance(header, str)
    assert isinstance(body, str)

    record = MessageRecord(uid=9, blob="0" * 64, size=len(raw), internal_date=1_700_000_000,
                           flags=frozenset({"$x"}), modseq=3)

    def read_range(start: int, end: int) -> bytes:
        assert 0 <= start <= end <= len(raw), (start, end)
        return raw[start:end]

    out, seen = fetch_items(_ATTRS, record, info, read_range, msn=1, uid=True, modseq=True)
    assert out.startswith(b"* 1 FETCH (")
    assert out.endswith(b")\r\n")
    assert seen
    for number in list(info.parts)[:_MAX_PARTS_FETCHED]:
        part = tuple(int(n) for n in number.split(".")) if number else ()
        out, _ = fetch_items(_items(part), record, info, read_range, msn=1, utf8=True)
        assert out.startswith(b"* 1 FETCH (")
        assert out.endswith(b")\r\n")
        for binary in (c.FetchBinary(part), c.FetchBinary(part, size=True)):
            unknown: str | None = None
            try:
                out, _ = fetch_items([binary], record, info, read_range, msn=1)
            except UnknownCte as exc:
                unknown = exc.part
            if unknown is not None:
                assert unknown == number, (unknown, number)  # only the part's own encoding
                assert number, "the whole message has no encoding to be unknown"
                continue
            assert out.startswith(b"* 1 FETCH (")
            assert out.endswith(b")\r\n")
    top = info.parts[""]
    head = raw[: top.message_body_start]
    picked = header_fields(head, [f.lower() for f in _FIELDS])
    assert picked.endswith(b"\r\n")
    assert header_fields(head, _FIELDS, exclude=True).endswith(b"\r\n")
