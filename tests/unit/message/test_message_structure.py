"""BODY / BODYSTRUCTURE (RFC 3501 7.4.2) and the part index, cross-checked by byte ranges."""

from __future__ import annotations

from message_helpers import crlf, read_sexp

from mailwright.message import MessageInfo, analyze

TRACE = "Return-Path: <b@example.net>\nReceived: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\n"


def _slice(raw: bytes, span: tuple[int, int] | None) -> bytes:
    assert span is not None
    return raw[span[0] : span[1]]


def test_plain_text_message() -> None:
    raw = crlf(TRACE + "From: a@x.test\nSubject: hi\n\nline one\nline two\n")
    info = analyze(raw)
    assert info.size == len(raw)
    assert info.body == b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 20 2)'
    assert info.bodystructure == (
        b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 20 2 NIL NIL NIL NIL)'
    )
    assert set(info.parts) == {"", "1"}
    whole = info.parts[""]
    assert _slice(raw, whole.content()) == raw
    assert _slice(raw, whole.header()).startswith(b"Return-Path:")
    assert _slice(raw, whole.header()).endswith(b"Subject: hi\r\n\r\n")
    assert _slice(raw, whole.text()) == b"line one\r\nline two\r\n"
    assert _slice(raw, info.parts["1"].content()) == b"line one\r\nline two\r\n"
    assert _slice(raw, info.parts["1"].mime()) == _slice(raw, whole.header())
    assert info.parts["1"].header() is None


ALTERNATIVE = (
    TRACE + "From: a@x.test\nSubject: alt\nMIME-Version: 1.0\n"
    'Content-Type: multipart/alternative; boundary="b1"\n\n'
    "This is a multi-part message in MIME format.\n"
    "--b1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
    "Caf=C3=A9 menu\n"
    "--b1\nContent-Type: text/html; charset=utf-8\n\n"
    "<p>Caf&eacute; <b>menu</b></p>\n"
    "--b1--\n"
)


def test_multipart_alternative() -> None:
    raw = crlf(ALTERNATIVE)
    info = analyze(raw)
    assert info.bodystructure == (
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 14 0 NIL NIL NIL NIL)'
        b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" 30 0 NIL NIL NIL NIL)'
        b' "ALTERNATIVE" ("BOUNDARY" "b1") NIL NIL NIL)'
    )
    assert info.body == (
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 14 0)'
        b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" 30 0) "ALTERNATIVE")'
    )
    assert _slice(raw, info.parts["1"].content()) == b"Caf=C3=A9 menu"
    assert _slice(raw, info.parts["1"].mime()) == (
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    assert _slice(raw, info.parts["2"].content()) == b"<p>Caf&eacute; <b>menu</b></p>"
    assert "Café menu" in info.text
    assert "<b>" not in info.text
    assert "alt" in info.text.splitlines()[0]


def test_multipart_mixed_with_attachment() -> None:
    raw = crlf(
        TRACE + "From: a@x.test\nContent-Type: multipart/mixed; boundary=outer\n\n"
        "--outer\n\nno headers at all\n"
        '--outer\nContent-Type: application/pdf; name="r.pdf"\n'
        "Content-Transfer-Encoding: base64\nContent-ID: <c1@x>\nContent-Description: Report\n"
        'Content-Disposition: attachment; filename="r.pdf"\nContent-Language: en, de\n'
        "Content-Location: http://x.test/r.pdf\n\n"
        "JVBERi0xLjQK\n"
        "--outer--\nepilogue\n"
    )
    info = analyze(raw)
    assert info.bodystructure == (
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 17 0 NIL NIL NIL NIL)'
        b'("APPLICATION" "PDF" ("NAME" "r.pdf") "<c1@x>" "Report" "BASE64" 12 NIL'
        b' ("ATTACHMENT" ("FILENAME" "r.pdf")) ("en" "de") "http://x.test/r.pdf")'
        b' "MIXED" ("BOUNDARY" "outer") NIL NIL NIL)'
    )
    assert info.parts["1"].mime() == (info.parts["1"].start, info.parts["1"].start + 2)
    assert _slice(raw, info.parts["1"].content()) == b"no headers at all"
    assert _slice(raw, info.parts["2"].content()) == b"JVBERi0xLjQK"
    assert "JVBER" not in info.text


def test_nested_message_rfc822() -> None:
    inner = (
        "From: Inner <in@x.test>\nSubject: inner\nContent-Type: multipart/mixed; boundary=in\n\n"
        "--in\n\ninner text\n--in\nContent-Type: image/png\n\nPNG\n--in--\n"
    )
    raw = crlf(
        TRACE + "Subject: fwd\nContent-Type: multipart/mixed; boundary=out\n\n"
        "--out\n\nsee below\n"
        "--out\nContent-Type: message/rfc822\n\n" + inner + "--out--\n"
    )
    info = analyze(raw)
    bs = read_sexp(info.bodystructure)
    assert isinstance(bs, list)
    msg = bs[1]
    assert isinstance(msg, list)
    assert msg[:7] == [b"MESSAGE", b"RFC822", None, None, None, b"7BIT", len(crlf(inner)) - 2]
    envelope = msg[7]
    assert isinstance(envelope, list)
    assert envelope[1] == b"inner"
    assert envelope[2] == [[b"Inner", None, b"in", b"x.test"]]
    body = msg[8]
    assert isinstance(body, list)
    assert body[-5:] == [b"MIXED", [b"BOUNDARY", b"in"], None, None, None]
    assert msg[9] == crlf(inner).count(b"\n") - 1  # its last line break is the delimiter's
    assert set(info.parts) == {"", "1", "2", "2.1", "2.2"}
    two = info.parts["2"]
    assert _slice(raw, two.content()) == crlf(inner)[:-2]
    assert _slice(raw, two.header()).startswith(b"From: Inner")
    assert _slice(raw, two.header()).endswith(b"boundary=in\r\n\r\n")
    assert _slice(raw, two.text()).startswith(b"--in\r\n")
    assert _slice(raw, info.parts["2.1"].content()) == b"inner text"
    assert _slice(raw, info.parts["2.2"].content()) == b"PNG"
    assert info.text.count("inner text") == 1


def test_single_part_message_rfc822_numbers_its_body() -> None:
    raw = crlf("Content-Type: message/rfc822\n\nSubject: in\n\nhello\n")
    info = analyze(raw)
    assert set(info.parts) == {"", "1", "1.1"}
    assert _slice(raw, info.parts["1"].header()) == b"Subject: in\r\n\r\n"
    assert _slice(raw, info.parts["1.1"].content()) == b"hello\r\n"


def test_digest_parts_default_to_message_rfc822() -> None:
    raw = crlf(
        "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nbody one\n--d--\n"
    )
    info = analyze(raw)
    assert info.body.startswith(b'(("MESSAGE" "RFC822" NIL NIL NIL "7BIT" ')
    assert _slice(raw, info.parts["1.1"].content()) == b"body one"


def test_multipart_without_boundary_is_text() -> None:
    raw = crlf("Content-Type: multipart/mixed\n\nno boundary here\n")
    info = analyze(raw)
    assert info.body == b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 18 1)'


def test_missing_close_delimiter_runs_to_end() -> None:
    raw = crlf("Content-Type: multipart/mixed; boundary=x\n\n--x\n\none\n--x\n\ntwo\n")
    info = analyze(raw)
    assert _slice(raw, info.parts["1"].content()) == b"one"
    assert _slice(raw, info.parts["2"].content()) == b"two\r\n"


def test_boundary_prefix_in_text_is_not_a_delimiter() -> None:
    raw = crlf(
        "Content-Type: multipart/mixed; boundary=x\n\n--x\n\n--xy is text\n --x too\n--x--\n"
    )
    info = analyze(raw)
    assert set(info.parts) == {"", "1"}
    assert _slice(raw, info.parts["1"].content()) == b"--xy is text\r\n --x too"


def test_invalid_content_type_is_text_plain() -> None:
    info = analyze(crlf("Content-Type: garbage\n\nx\n"))
    assert info.body == b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 3 1)'


def test_no_blank_line_means_empty_body() -> None:
    raw = b"Subject: only a header\r\n"
    info = analyze(raw)
    assert info.parts[""].text() == (len(raw), len(raw))
    assert info.body == b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 0 0)'


def test_base64_text_is_decoded_for_search() -> None:
    raw = crlf(
        "Subject: =?ISO-8859-1?Q?Gr=FC=DFe?=\nContent-Type: text/plain; charset=iso-8859-1\n"
        "Content-Transfer-Encoding: base64\n\nR3L832U=\n"
    )
    info = analyze(raw)
    assert info.text.splitlines() == ["Grüße", "Grüße"]


def test_unknown_charset_falls_back_to_utf8() -> None:
    raw = crlf("Content-Type: text/plain; charset=x-nonsense\n\nnaïve\n")
    assert "naïve" in analyze(raw).text


def test_json_round_trip() -> None:
    raw = crlf(ALTERNATIVE).replace(b"Subject: alt", b"Subject: caf\xc3\xa9 \xff")
    info = analyze(raw)
    again = MessageInfo.from_json(info.to_json())
    assert again == info
    assert isinstance(info.to_json(), str)
