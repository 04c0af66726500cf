"""FETCH responses (RFC 9051 6.4.5 / 7.5.2, RFC 3516) against real messages analysed by
`mailwright.message.analyze`, with `read_range` slicing the raw bytes as the store file would."""

from __future__ import annotations

import base64
import re

import pytest

from mailwright.imap import commands as c
from mailwright.imap.fetch import (
    UnknownCte,
    fetch_items,
    info_formatter,
    internal_date,
    record_formatter,
)
from mailwright.message import analyze
from mailwright.store.api import MessageRecord


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


PLAIN = crlf(
    "Return-Path: <a@x.example>\n"
    "From: Alice <a@x.example>\n"
    "To: Bob <b@y.example>\n"
    "Subject: hello\n"
    "Date: Mon, 23 Nov 2026 00:00:00 +0000\n"
    "Message-ID: <1@x.example>\n"
    "\n"
    "Hello Bob,\n"
    "how are you?\n"
)

ALTERNATIVE = crlf(
    "From: a@x.example\n"
    "Subject: alt\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/alternative; boundary="ALT"\n'
    "\n"
    "preamble\n"
    "--ALT\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "caf=C3=A9 plain\n"
    "--ALT\n"
    "Content-Type: text/html; charset=utf-8\n"
    "\n"
    "<p>html</p>\n"
    "--ALT--\n"
)

ATTACHMENT_DATA = bytes(range(256)) * 4
ATTACHMENT_B64 = base64.encodebytes(ATTACHMENT_DATA).decode().replace("\n", "\r\n")
MIXED = crlf(
    "From: a@x.example\n"
    "Subject: mixed\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="MIX"\n'
    "\n"
    "--MIX\n"
    'Content-Type: multipart/alternative; boundary="ALT"\n'
    "\n"
    "--ALT\n"
    "Content-Type: text/plain\n"
    "\n"
    "plain text\n"
    "--ALT\n"
    "Content-Type: text/html\n"
    "\n"
    "<b>html text</b>\n"
    "--ALT--\n"
    "\n"
    "--MIX\n"
    "Content-Type: application/octet-stream; name=blob.bin\n"
    "Content-Disposition: attachment; filename=blob.bin\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
) + ATTACHMENT_B64.encode() + crlf(
    "--MIX\n"
    "Content-Type: application/x-odd\n"
    "Content-Transfer-Encoding: x-uuencode\n"
    "\n"
    "begin 644 x\n"
    "--MIX--\n"
)

NESTED = crlf(
    "From: outer@x.example\n"
    "Subject: fwd\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="OUT"\n'
    "\n"
    "--OUT\n"
    "Content-Type: text/plain\n"
    "\n"
    "see attached\n"
    "--OUT\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "From: inner@y.example\n"
    "To: z@y.example\n"
    "Subject: inner\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="IN"\n'
    "\n"
    "--IN\n"
    "Content-Type: text/plain\n"
    "\n"
    "inner one\n"
    "--IN\n"
    "Content-Type: text/plain\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "aW5uZXIgdHdv\n"
    "--IN--\n"
    "\n"
    "--OUT--\n"
)


# --- a reader of FETCH responses, as imaplib and imapclient read them ---------------------------

Value = bytes | list["Value"]


def read_fetch(wire: bytes) -> tuple[int, dict[bytes, Value]]:
    """Parse `* n FETCH (...)` CRLF; every "{n}" / "~{n}" must be followed by exactly n bytes."""
    m = re.match(rb"\* (\d+) FETCH ", wire)
    assert m, wire[:40]
    items, pos = _value(wire, m.end())
    assert wire[pos:] == b"\r\n", f"trailing {wire[pos:pos + 20]!r}"
    assert isinstance(items, list)
    assert len(items) % 2 == 0, items
    out: dict[bytes, Value] = {}
    for key, val in zip(items[::2], items[1::2], strict=True):
        assert isinstance(key, bytes)
        assert key not in out, f"{key!r} twice"
        out[key] = val
    return int(m.group(1)), out


def _value(data: bytes, pos: int) -> tuple[Value, int]:
    ch = data[pos:pos + 1]
    if ch == b"(":
        items: list[Value] = []
        pos += 1
        while data[pos:pos + 1] != b")":
            assert pos < len(data), "unterminated list"
            if data[pos:pos + 1] == b" ":
                pos += 1
            item, pos = _value(data, pos)
            items.append(item)
        return items, pos + 1
    if ch == b'"':
        out = bytearray()
        pos += 1
        while data[pos:pos + 1] != b'"':
            if data[pos:pos + 1] == b"\\":
                pos += 1
            assert data[pos:pos + 1] not in (b"", b"\r", b"\n")
            out += data[pos:pos + 1]
            pos += 1
        return bytes(out), pos + 1
    lit = re.compile(rb"~?\{(\d+)\}\r\n").match(data, pos)
    if lit:
        n = int(lit.group(1))
        body = data[lit.end():lit.end() + n]
        assert len(body) == n, "literal shorter than announced"
        return body, lit.end() + n
    # An atom; a "[...]" section inside it may hold spaces and parentheses.
    start = pos
    while pos < len(data) and data[pos:pos + 1] not in (b" ", b")", b"(", b"\r"):
        if data[pos:pos + 1] == b"[":
            pos = data.index(b"]", pos)
        pos += 1
    assert pos > start, f"empty atom at {data[pos:pos + 20]!r}"
    return data[start:pos], pos


# imaplib.Literal (not exported, so copied): how imaplib finds a literal at the end of a line.
IMAPLIB_LITERAL = re.compile(rb".*{(?P<size>\d+)}$", re.ASCII)


# --- helpers -------------------------------------------------------------------------------------


def record(raw: bytes, flags: frozenset[str] = frozenset()) -> MessageRecord:
    return MessageRecord(uid=42, blob="0" * 64, size=len(raw), internal_date=1_700_000_000,
                         flags=flags, modseq=7)


def fetch(raw: bytes, *items: c.FetchItem, flags: frozenset[str] = frozenset(),
          **kw: bool) -> tuple[dict[bytes, Value], bool]:
    reads: list[tuple[int, int]] = []

    def read_range(start: int, end: int) -> bytes:
        assert 0 <= start <= end <= len(raw)
        reads.append((start, end))
        return raw[start:end]

    wire, seen = fetch_items(items, record(raw, flags), analyze(raw), read_range, msn=3, **kw)
    msn, data = read_fetch(wire)
    assert msn == 3
    return data, seen


def body(*part: int, text: str | None = None, fields: tuple[str, ...] = (),
         peek: bool = True, partial: tuple[int, int] | None = None) -> c.FetchBody:
    return c.FetchBody(c.Section(part, text, fields), peek, partial)


def section_of(raw: bytes, *items: c.FetchItem) -> bytes:
    data, _ = fetch(raw, *items)
    (value,) = data.values()
    assert isinstance(value, bytes)
    return value


# --- tests ---------------------------------------------------------------------------------------


def test_plain_attributes_in_requested_order() -> None:
    items = [c.FetchAttr(n) for n in ("RFC822.SIZE", "FLAGS", "UID", "INTERNALDATE")]
    wire, seen = fetch_items(items, record(PLAIN, frozenset({"\\Seen", "$Work"})),
                             analyze(PLAIN), lambda a, b: PLAIN[a:b], msn=1)
    assert wire == (b'* 1 FETCH (RFC822.SIZE %d FLAGS (\\Seen $Work) UID 42 '
                    b'INTERNALDATE "14-Nov-2023 22:13:20 +0000")\r\n' % len(PLAIN))
    assert not seen


def test_internaldate_pads_the_day() -> None:
    assert internal_date(0) == b'"01-Jan-1970 00:00:00 +0000"'


def test_uid_fetch_always_includes_uid_first() -> None:
    data, _ = fetch(PLAIN, c.FetchAttr("FLAGS"), uid=True)
    assert list(data) == [b"UID", b"FLAGS"]
    assert data[b"UID"] == b"42"


def test_uid_fetch_does_not_repeat_a_requested_uid() -> None:
    data, _ = fetch(PLAIN, c.FetchAttr("UID"), c.FetchAttr("FLAGS"), uid=True)
    assert list(data) == [b"UID", b"FLAGS"]


def test_modseq_item_and_condstore_flag() -> None:
    data, _ = fetch(PLAIN, c.FetchAttr("MODSEQ"))
    assert data[b"MODSEQ"] == [b"7"]
    data, _ = fetch(PLAIN, c.FetchAttr("FLAGS"), modseq=True)
    assert list(data) == [b"FLAGS", b"MODSEQ"]


def test_envelope_body_bodystructure_come_from_the_analysis() -> None:
    info = analyze(MIXED)
    items = [c.FetchAttr("ENVELOPE"), c.FetchAttr("BODY"), c.FetchAttr("BODYSTRUCTURE")]
    wire, _ = fetch_items(items, record(MIXED), info, lambda a, b: MIXED[a:b], msn=9)
    assert wire == (b"* 9 FETCH (ENVELOPE " + info.envelope + b" BODY " + info.body
                    + b" BODYSTRUCTURE " + info.bodystructure + b")\r\n")
    read_fetch(wire)


def test_rfc822_forms_of_a_plain_message() -> None:
    head, _, text = PLAIN.partition(b"\r\n\r\n")
    data, seen = fetch(PLAIN, c.FetchAttr("RFC822.HEADER"), c.FetchAttr("RFC822.TEXT"),
                       c.FetchAttr("RFC822"))
    assert data[b"RFC822.HEADER"] == head + b"\r\n\r\n"
    assert data[b"RFC822.TEXT"] == text
    assert data[b"RFC822"] == PLAIN
    assert seen


def test_body_sections_of_a_plain_message() -> None:
    head, _, text = PLAIN.partition(b"\r\n\r\n")
    assert section_of(PLAIN, body()) == PLAIN
    assert section_of(PLAIN, body(text="HEADER")) == head + b"\r\n\r\n"
    assert section_of(PLAIN, body(text="TEXT")) == text
    assert section_of(PLAIN, body(1)) == text  # a single-part message: part 1 is its body


def test_header_fields_and_not() -> None:
    data, _ = fetch(PLAIN, body(text="HEADER.FIELDS", fields=("SUBJECT", "FROM")))
    assert data == {b"BODY[HEADER.FIELDS (SUBJECT FROM)]":
                    b"From: Alice <a@x.example>\r\nSubject: hello\r\n\r\n"}
    data, _ = fetch(PLAIN, body(text="HEADER.FIELDS.NOT",
                                fields=("RETURN-PATH", "DATE", "MESSAGE-ID", "TO")))
    assert data == {b"BODY[HEADER.FIELDS.NOT (RETURN-PATH DATE MESSAGE-ID TO)]":
                    b"From: Alice <a@x.example>\r\nSubject: hello\r\n\r\n"}
    assert section_of(PLAIN, body(text="HEADER.FIELDS", fields=("X-NONE",))) == b"\r\n"


def test_partial_answers_with_origin_only() -> None:
    data, _ = fetch(PLAIN, body(partial=(0, 10)), body(text="TEXT", partial=(6, 3)))
    assert data == {b"BODY[]<0>": PLAIN[:10], b"BODY[TEXT]<6>": b"Bob"}


def test_partial_beyond_the_end_is_empty() -> None:
    data, _ = fetch(PLAIN, body(partial=(10_000, 5)))
    assert data == {b"BODY[]<10000>": b""}


def test_partial_of_header_fields_slices_the_result() -> None:
    data, _ = fetch(PLAIN, body(text="HEADER.FIELDS", fields=("SUBJECT",), partial=(0, 7)))
    assert data == {b"BODY[HEADER.FIELDS (SUBJECT)]<0>": b"Subject"}


def test_partial_reads_only_the_window() -> None:
    reads: list[tuple[int, int]] = []

    def read_range(a: int, b: int) -> bytes:
        reads.append((a, b))
        return MIXED[a:b]

    fetch_items([body(2, partial=(100, 50))], record(MIXED), analyze(MIXED), read_range, msn=1)
    assert len(reads) == 1
    assert reads[0][1] - reads[0][0] == 50


def test_multipart_alternative_parts() -> None:
    assert section_of(ALTERNATIVE, body(1)) == b"caf=C3=A9 plain"
    assert section_of(ALTERNATIVE, body(2)) == b"<p>html</p>"
    assert section_of(ALTERNATIVE, body(1, text="MIME")) == (
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
    assert section_of(ALTERNATIVE, c.FetchBinary((1,), peek=True)) == "caf\u00e9 plain".encode()


def test_nested_multipart_part_numbers() -> None:
    assert section_of(MIXED, body(1, 1)) == b"plain text"
    assert section_of(MIXED, body(1, 2)) == b"<b>html text</b>"
    assert section_of(MIXED, body(1, 2, text="MIME")) == b"Content-Type: text/html\r\n\r\n"
    data, _ = fetch(MIXED, body(1, 2, text="MIME"), body(1, 2, partial=(3, 4)))
    assert list(data) == [b"BODY[1.2.MIME]", b"BODY[1.2]<3>"]
    assert data[b"BODY[1.2]<3>"] == b"html"


def test_base64_attachment_raw_and_binary() -> None:
    assert section_of(MIXED, body(2)) == ATTACHMENT_B64.encode().removesuffix(b"\r\n")
    assert section_of(MIXED, body(2, text="MIME")).startswith(b"Content-Type: application/")
    data, _ = fetch(MIXED, c.FetchBinary((2,), peek=True), c.FetchBinary((2,), size=True),
                    c.FetchBinary((2,), peek=True, partial=(256, 3)))
    assert data[b"BINARY[2]"] == ATTACHMENT_DATA
    assert data[b"BINARY.SIZE[2]"] == b"%d" % len(ATTACHMENT_DATA)
    assert data[b"BINARY[2]<256>"] == b"\x00\x01\x02"


def test_binary_with_nul_uses_literal8() -> None:
    raw, seen = fetch_items([c.FetchBinary((2,), peek=True)], record(MIXED), analyze(MIXED),
                            lambda a, b: MIXED[a:b], msn=1)
    assert b"BINARY[2] ~{%d}\r\n" % len(ATTACHMENT_DATA) in raw
    assert not seen
    no_nul, _ = fetch_items([c.FetchBinary((1, 1), peek=True)], record(MIXED), analyze(MIXED),
                            lambda a, b: MIXED[a:b], msn=1)
    assert b"BINARY[1.1] {10}\r\nplain text)" in no_nul


def test_binary_of_an_unknown_encoding_raises_unknown_cte() -> None:
    with pytest.raises(UnknownCte) as err:
        fetch(MIXED, c.FetchBinary((3,), peek=True))
    assert err.value.part == "3"
    assert err.value.cte == b"x-uuencode"
    # BODY[3] still serves the raw bytes.
    assert section_of(MIXED, body(3)) == b"begin 644 x"


def test_binary_of_whole_message_is_the_stored_bytes() -> None:
    assert section_of(PLAIN, c.FetchBinary((), peek=True)) == PLAIN


def test_missing_part_is_an_empty_string() -> None:
    data, _ = fetch(MIXED, body(9), body(1, 7, text="MIME"), body(1, 1, text="HEADER"),
                    c.FetchBinary((8,), peek=True), c.FetchBinary((8,), size=True))
    assert data == {b"BODY[9]": b"", b"BODY[1.7.MIME]": b"", b"BODY[1.1.HEADER]": b"",
                    b"BINARY[8]": b"", b"BINARY.SIZE[8]": b"0"}


def test_nested_message_rfc822_sections() -> None:
    inner = NESTED[NESTED.index(b"From: inner"):NESTED.index(b"\r\n--OUT--")]
    inner_head = inner[:inner.index(b"\r\n\r\n") + 4]
    assert section_of(NESTED, body(1)) == b"see attached"
    assert section_of(NESTED, body(2)) == inner
    assert section_of(NESTED, body(2, text="MIME")) == b"Content-Type: message/rfc822\r\n\r\n"
    assert section_of(NESTED, body(2, text="HEADER")) == inner_head
    assert section_of(NESTED, body(2, text="TEXT")) == inner[len(inner_head):]
    assert section_of(NESTED, body(2, text="HEADER.FIELDS", fields=("SUBJECT",))) == (
        b"Subject: inner\r\n\r\n")
    assert section_of(NESTED, body(2, 1)) == b"inner one"
    assert section_of(NESTED, body(2, 2)) == b"aW5uZXIgdHdv"
    assert section_of(NESTED, body(2, 2, text="MIME")) == (
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n")
    assert section_of(NESTED, c.FetchBinary((2, 2), peek=True)) == b"inner two"


@pytest.mark.parametrize(
    ("item", "sets_seen"),
    [
        (c.FetchBody(c.Section()), True),
        (c.FetchBody(c.Section(text="HEADER")), True),
        (c.FetchBody(c.Section(), peek=True), False),
        (c.FetchAttr("RFC822"), True),
        (c.FetchAttr("RFC822.TEXT"), True),
        (c.FetchAttr("RFC822.HEADER"), False),
        (c.FetchAttr("RFC822.SIZE"), False),
        (c.FetchAttr("BODY"), False),
        (c.FetchAttr("BODYSTRUCTURE"), False),
        (c.FetchAttr("ENVELOPE"), False),
        (c.FetchBinary(()), True),
        (c.FetchBinary((), peek=True), False),
        (c.FetchBinary((1,), size=True), False),
    ],
)
def test_seen_implication(item: c.FetchItem, sets_seen: bool) -> None:
    data, seen = fetch(PLAIN, item)
    assert seen is sets_seen
    if sets_seen:  # the changed flags go out in the same response (RFC 3501 6.4.5)
        assert data[b"FLAGS"] == [b"\\Seen"]
    else:
        assert b"FLAGS" not in data


def test_seen_not_implied_when_already_seen_or_read_only() -> None:
    data, seen = fetch(PLAIN, body(peek=False), flags=frozenset({"\\Seen"}))
    assert not seen
    assert list(data) == [b"BODY[]"]
    data, seen = fetch(PLAIN, body(peek=False), read_only=True)
    assert not seen
    assert list(data) == [b"BODY[]"]


def test_requested_flags_show_the_new_seen() -> None:
    data, seen = fetch(PLAIN, c.FetchAttr("FLAGS"), body(peek=False),
                       flags=frozenset({"\\Flagged"}))
    assert seen
    assert list(data) == [b"FLAGS", b"BODY[]"]
    assert data[b"FLAGS"] == [b"\\Seen", b"\\Flagged"]


def test_eight_bit_and_crlf_content_goes_out_as_exact_literals() -> None:
    raw = crlf("Subject: caf\u00e9\n\nline one\nline two \u00fc\n")
    data, _ = fetch(raw, body(), body(text="HEADER"), body(text="TEXT"))
    assert data[b"BODY[]"] == raw
    head, text = data[b"BODY[HEADER]"], data[b"BODY[TEXT]"]
    assert isinstance(head, bytes)
    assert isinstance(text, bytes)
    assert head + text == raw


@pytest.mark.parametrize("raw", [PLAIN, ALTERNATIVE, MIXED, NESTED])
def test_every_literal_size_matches_its_data(raw: bytes) -> None:
    info = analyze(raw)
    items: list[c.FetchItem] = [c.FetchAttr(n) for n in (
        "UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY", "BODYSTRUCTURE",
        "RFC822", "RFC822.HEADER", "RFC822.TEXT")]
    for key in info.parts:
        part = tuple(int(n) for n in key.split(".")) if key else ()
        items.append(body(*part))
        if part:
            items.append(body(*part, text="MIME"))
        items += [body(*part, text="HEADER"), body(*part, text="TEXT"),
                  body(*part, text="HEADER.FIELDS", fields=("SUBJECT",)),
                  body(*part, partial=(1, 5))]
    wire, _ = fetch_items(items, record(raw), info, lambda a, b: raw[a:b], msn=5, uid=True)
    _, data = read_fetch(wire)
    assert len(data) == len(set(items))  # nothing lost or doubled
    assert data[b"RFC822"] == raw


@pytest.mark.parametrize("raw", [PLAIN, MIXED, NESTED])
def test_imaplib_reads_the_response_line_by_line(raw: bytes) -> None:
    """imaplib's own framing: a line ending in {n} is followed by n octets, then more line."""
    wire, _ = fetch_items([c.FetchAttr("RFC822"), body(2), c.FetchAttr("BODYSTRUCTURE")],
                          record(raw), analyze(raw), lambda a, b: raw[a:b], msn=1)
    pos, literals = 0, []
    while pos < len(wire):
        end = wire.index(b"\r\n", pos) + 2
        line = wire[pos:end - 2]
        pos = end
        m = IMAPLIB_LITERAL.match(line)
        if m:
            size = int(m.group("size"))
            literals.append(wire[pos:pos + size])
            pos += size
    assert pos == len(wire)
    assert literals[0] == raw


FAST_ITEM_LISTS = [
    ("FLAGS",), ("UID", "FLAGS"), ("FLAGS", "UID"), ("UID",), ("RFC822.SIZE",),
    ("INTERNALDATE", "FLAGS", "RFC822.SIZE"), ("MODSEQ", "FLAGS"), ("FLAGS", "FLAGS"),
    ("ENVELOPE", "BODYSTRUCTURE"), ("UID", "ENVELOPE", "BODYSTRUCTURE"), ("BODY",),
    ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
]


@pytest.mark.parametrize("names", FAST_ITEM_LISTS)
@pytest.mark.parametrize("uid", [False, True])
def test_fast_formatters_answer_as_fetch_items(names: tuple[str, ...], uid: bool) -> None:
    """The session's fast paths for FETCH FLAGS / ENVELOPE BODYSTRUCTURE of many messages give
    the bytes `fetch_items` gives."""
    items = [c.FetchAttr(n) for n in names]
    rec = record(MIXED, frozenset({"\\Seen", "$Work", "\\Answered"}))
    info = analyze(MIXED)
    want, seen = fetch_items(items, rec, info, lambda a, b: MIXED[a:b], msn=3, uid=uid)
    assert not seen
    fmt = info_formatter(items, uid=uid)
    assert fmt is not None
    assert b"* 3 FETCH (%s)\r\n" % fmt(rec, info) == want
    fast = record_formatter(items, uid=uid)
    if {"ENVELOPE", "BODY", "BODYSTRUCTURE"} & set(names):
        assert fast is None
    else:
        assert fast is not None
        assert b"* 3 FETCH (%s)\r\n" % fast(rec) == want


@pytest.mark.parametrize("item", [c.FetchAttr("RFC822"), c.FetchAttr("RFC822.HEADER"),
                                  body(1), c.FetchBinary((1,), peek=True)])
def test_fast_formatters_refuse_what_reads_the_file(item: c.FetchItem) -> None:
    assert record_formatter([c.FetchAttr("FLAGS"), item]) is None
    assert info_formatter([c.FetchAttr("UID"), item]) is None
