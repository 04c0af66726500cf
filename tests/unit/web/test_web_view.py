"""What the web inbox shows of a message (mailwright.web.view): bodies, parts, headers, and
no exception whatever bytes the application under test sent."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.web.view import MAX_INLINED_IMAGES_BYTES, inline_images, parse

CRLF = b"\r\n"


def mime(*lines: str) -> bytes:
    return CRLF.join(line.encode("utf-8") for line in lines)


ALTERNATIVE_WITH_ATTACHMENTS = mime(
    "From: a@x.test",
    "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="out"',
    "",
    "--out",
    'Content-Type: multipart/alternative; boundary="alt"',
    "",
    "--alt",
    "Content-Type: text/plain; charset=iso-8859-1",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    "caf=E9",
    "--alt",
    'Content-Type: multipart/related; boundary="rel"',
    "",
    "--rel",
    "Content-Type: text/html; charset=utf-8",
    "",
    '<img src="cid:pic@x">',
    "--rel",
    "Content-Type: image/png",
    "Content-ID: <pic@x>",
    "Content-Transfer-Encoding: base64",
    "",
    base64.b64encode(b"\x89PNG fake").decode(),
    "--rel--",
    "--alt--",
    "--out",
    "Content-Type: message/rfc822",
    'Content-Disposition: attachment; filename="fwd.eml"',
    "",
    "Subject: inner",
    "",
    "inner body",
    "--out--",
    "",
)


def test_bodies_parts_and_attachments() -> None:
    view = parse(ALTERNATIVE_WITH_ATTACHMENTS)
    assert ("Subject", "Grüße") in view.headers
    assert view.text == "café"
    assert view.html == '<img src="cid:pic@x">'
    assert [p.content_type for p in view.parts] == [
        "text/plain", "text/html", "image/png", "message/rfc822",
    ]
    assert (view.text_part, view.html_part) == (0, 1)
    assert [p.index for p in view.attachments] == [2, 3]
    png, fwd = view.attachments
    assert png.content_id == "pic@x"
    assert png.payload == b"\x89PNG fake"
    assert fwd.filename == "fwd.eml"
    assert b"Subject: inner" in fwd.payload


def test_cid_images_become_data_uris_within_budget() -> None:
    view = parse(ALTERNATIVE_WITH_ATTACHMENTS)
    assert view.html is not None
    html = inline_images(view.html, view.parts)
    encoded = base64.b64encode(b"\x89PNG fake").decode()
    assert html == f'<img src="data:image/png;base64,{encoded}">'
    big = mime(
        'Content-Type: multipart/related; boundary="b"', "", "--b",
        "Content-Type: text/html", "", '<img src="cid:a"><img src="cid:a">', "--b",
        "Content-Type: image/gif", "Content-ID: <a>", "Content-Transfer-Encoding: base64", "",
        base64.b64encode(b"G" * (MAX_INLINED_IMAGES_BYTES // 2 + 1)).decode(), "--b--", "",
    )
    view = parse(big)
    assert view.html is not None
    html = inline_images(view.html, view.parts)
    assert html.count("data:image/gif") == 1  # the second copy would pass the budget
    assert html.endswith('<img src="cid:a">')


def test_plain_message_without_mime() -> None:
    view = parse(b"Subject: hi\r\n\r\nline one\r\nline two\r\n")
    assert view.text == "line one\nline two\n"
    assert view.html is None
    assert view.attachments == ()


def test_malformed_input_degrades() -> None:
    cases = [
        b"",
        b"no colon header line\r\n\r\nbody",
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\n\xff\xfe",
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64",
        b'Content-Type: multipart/mixed; boundary="never"\r\n\r\nno parts at all',
        b"Content-Type: multipart/mixed\r\n\r\n--\r\n",
        b"To: \"unterminated <<@@,,\r\nSubject: =?bogus?x?abc?=\r\n\r\nx",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Disposition: attachment; filename*=bogus''%ZZ\r\n\r\nx",
    ]
    for raw in cases:
        view = parse(raw)
        assert isinstance(view.headers, tuple)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    view = parse(raw)
    inline_images(view.html or "", view.parts)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([
    b"Content-Type: multipart/mixed; boundary=b\r\n", b"--b\r\n", b"--b--\r\n",
    b"Content-Type: text/html; charset=utf-7\r\n", b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n", b"Content-ID: <x>\r\n",
    b"Content-Type: message/rfc822\r\n", b"\r\n", b"=?utf-8?b?////?=\r\n", b"<img src=cid:x>\r\n",
    b"Content-Type: image/png\r\n", b"\xff\x00 junk\r\n",
]), max_size=40))
def test_never_raises_on_mime_shaped_junk(lines: list[bytes]) -> None:
    view = parse(b"".join(lines))
    inline_images(view.html or "", view.parts)
