"""Hostile input: analyze() never raises, stays bounded, and its offsets are always sane."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from message_helpers import read_sexp

from mailwright.message import MessageInfo, analyze, header_fields
from mailwright.message.limits import MAX_DEPTH, MAX_FIELD_VALUE, MAX_PARTS, MAX_TEXT


def _check(raw: bytes) -> MessageInfo:
    info = analyze(raw)
    assert info.size == len(raw)
    for number, s in info.parts.items():
        assert 0 <= s.start <= s.body_start <= s.end <= len(raw), number
        if s.message_body_start is not None:
            assert s.body_start <= s.message_body_start <= s.end, number
    assert info.parts[""].content() == (0, len(raw))
    for number, s in info.parts.items():
        if number:  # a part lies within its parent's content, after its previous sibling
            parent, _, last = number.rpartition(".")
            outer = info.parts[parent] if parent else info.parts[""]
            assert outer.body_start <= s.start, number
            assert s.end <= outer.end, number
            if int(last) > 1:
                assert (
                    info.parts[f"{parent}.{int(last) - 1}" if parent else str(int(last) - 1)].end
                    <= s.start
                )
    assert "1" in info.parts
    read_sexp(info.envelope)
    read_sexp(info.body)
    read_sexp(info.bodystructure)
    assert len(info.text) <= MAX_TEXT
    assert MessageInfo.from_json(info.to_json()) == info
    return info


# Fragments that steer random messages into the interesting paths of the parser.
_PIECES = st.sampled_from(
    [
        b"\r\n",
        b"\n",
        b"\r\n\r\n",
        b"--b",
        b"--b--",
        b"--c",
        b"Content-Type: multipart/mixed; boundary=b\r\n",
        b'Content-Type: multipart/alternative; boundary="c"\r\n',
        b"Content-Type: message/rfc822\r\n",
        b'Content-Type: text/html; charset="x\r\n',
        b"Content-Transfer-Encoding: base64\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b'Content-Disposition: attachment; filename="a\\"b"\r\n',
        b'From: "a" <b@c>, G: d@e;\r\n',
        b"To: (c (nested) <x@y>\r\n",
        b"Subject: =?utf-8?b?w6k=?=\r\n",
        b" folded\r\n",
        b"\xff\xfe\x00",
        b"<p>&amp;",
        b"=C3=",
        b"abc",
    ]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(_PIECES | st.binary(max_size=20), max_size=60).map(b"".join))
def test_structured_garbage_never_raises(raw: bytes) -> None:
    _check(raw)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_never_raise(raw: bytes) -> None:
    _check(raw)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512), st.lists(st.binary(max_size=10), max_size=4), st.booleans())
def test_header_fields_never_raise(raw: bytes, names: list[bytes], exclude: bool) -> None:
    out = header_fields(raw, names, exclude)
    assert out.endswith(b"\r\n")
    assert len(out) <= len(raw) + 2 * raw.count(b"\n") + 4


def test_ten_thousand_parts_are_quick() -> None:
    parts = b"".join(
        b"--z\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(10_000)
    )
    raw = b"Content-Type: multipart/mixed; boundary=z\r\n\r\n" + parts + b"--z--\r\n"
    t0 = time.perf_counter()
    info = _check(raw)
    assert time.perf_counter() - t0 < 10
    assert "10000" in info.parts
    s = info.parts["9999"]
    assert raw[s.body_start : s.end] == b"part 9998"


def test_thousand_deep_message_nesting_is_cut_at_the_limit() -> None:
    raw = b"Content-Type: message/rfc822\r\n\r\n" * 1000 + b"Subject: deep\r\n\r\nbottom\r\n"
    t0 = time.perf_counter()
    info = _check(raw)
    assert time.perf_counter() - t0 < 10
    deepest = max(info.parts, key=len)
    assert deepest.count(".") == MAX_DEPTH  # the part at MAX_DEPTH is opaque
    assert b'"APPLICATION" "OCTET-STREAM"' in info.bodystructure


def test_thousand_deep_multipart_nesting_is_cut_at_the_limit() -> None:
    raw = (
        b"".join(
            b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
            for i in range(1000)
        )
        + b"\r\nbottom\r\n"
    )
    info = _check(raw)
    assert max(p.count(".") for p in info.parts) < MAX_DEPTH


def test_huge_header_line_and_many_fields() -> None:
    raw = (
        b"Subject: "
        + b"x" * 5_000_000
        + b"\r\n"
        + b"To: "
        + b"a@b, " * 200_000
        + b"\r\n"
        + b"X: y\r\n" * 100_000
        + b"\r\nbody\r\n"
    )
    t0 = time.perf_counter()
    info = analyze(raw)
    assert time.perf_counter() - t0 < 10
    # The ENVELOPE subject is cut at MAX_FIELD_VALUE octets after the colon, less the space
    # that unfolding trims (the stored message keeps all 5 MB).
    assert info.envelope.startswith(b"(NIL {%d}\r\n" % (MAX_FIELD_VALUE - 1))


def test_huge_html_without_closing_brackets_is_linear() -> None:
    raw = b"Content-Type: text/html\r\n\r\n" + b"<" * 2_000_000
    t0 = time.perf_counter()
    analyze(raw)
    assert time.perf_counter() - t0 < 10


def test_parts_beyond_the_limit_are_not_split() -> None:
    parts = b"".join(b"--z\r\n\r\n%d\r\n" % i for i in range(MAX_PARTS + 5_000))
    raw = b"Content-Type: multipart/mixed; boundary=z\r\n\r\n" + parts + b"--z--\r\n"
    info = _check(raw)
    assert len(info.parts) == MAX_PARTS  # the top entity counts as one part, "" is extra


def test_many_colons_in_an_address_header_are_linear() -> None:
    raw = b"To: " + b"a " * 16_000 + b"@ " + b": " * 16_000 + b"\r\n\r\n"
    t0 = time.perf_counter()
    _check(raw)
    assert time.perf_counter() - t0 < 5


def test_text_has_no_nul_or_surrogates() -> None:
    raw = b"Subject: a\x00b\r\nContent-Type: text/plain; charset=utf-16-le\r\n\r\n\x00\xd8x"
    text = analyze(raw).text
    assert "\x00" not in text
    text.encode("utf-8")
