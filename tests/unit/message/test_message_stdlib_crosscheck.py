"""Part byte ranges agree with the parts that the stdlib `email` parser finds."""

from __future__ import annotations

import email
import email.policy
from email.message import Message

import pytest
from message_helpers import crlf, read_sexp

from mailwright.message import analyze

THUNDERBIRD_LIKE = (
    "Return-Path: <a@x.test>\nReceived: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\n"
    "From: A <a@x.test>\nTo: B <b@y.test>\nSubject: report\nMIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="------------mixed"\n\n'
    "This is a multi-part message in MIME format.\n"
    "--------------mixed\n"
    'Content-Type: multipart/alternative; boundary="------------alt"\n\n'
    "--------------alt\nContent-Type: text/plain; charset=UTF-8; format=flowed\n"
    "Content-Transfer-Encoding: 7bit\n\nHello,\n\nsee attached.\n\n"
    "--------------alt\nContent-Type: text/html; charset=UTF-8\n"
    "Content-Transfer-Encoding: 7bit\n\n<html><body>Hello,<br>see attached.</body></html>\n\n"
    "--------------alt--\n"
    '--------------mixed\nContent-Type: text/csv; charset=UTF-8; name="data.csv"\n'
    'Content-Disposition: attachment; filename="data.csv"\nContent-Transfer-Encoding: base64\n\n'
    "YSxiCjEsMgo=\n\n"
    "--------------mixed\nContent-Type: message/rfc822\n\n"
    "From: C <c@z.test>\nSubject: old\n\nold body\n\n"
    "--------------mixed--\n"
)


def _leaves(msg: Message, prefix: str = "") -> list[tuple[str, Message]]:
    """(part number, part) of each leaf of a message, numbered as IMAP does (RFC 3501 6.4.5)."""
    if msg.get_content_maintype() == "multipart":
        return _part_leaves(msg, prefix.rstrip("."), prefix)
    return _part_leaves(msg, prefix + "1", prefix)


def _part_leaves(part: Message, number: str, prefix: str) -> list[tuple[str, Message]]:
    if part.get_content_maintype() == "multipart":
        out: list[tuple[str, Message]] = []
        for i, sub in enumerate(part.get_payload(), 1):
            assert isinstance(sub, Message)
            out += _part_leaves(sub, f"{number}.{i}" if number else str(i), prefix)
        return out
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload(0)
        assert isinstance(inner, Message)
        return _leaves(inner, number + ".")
    return [(number, part)]


@pytest.mark.parametrize("text", [THUNDERBIRD_LIKE])
def test_leaf_parts_match_stdlib(text: str) -> None:
    raw = crlf(text)
    info = analyze(raw)
    parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
    leaves = _leaves(parsed, "")
    assert [n for n, _ in leaves] == ["1.1", "1.2", "2", "3.1"]
    for number, part in leaves:
        start, end = info.parts[number].content()
        payload = part.get_payload(decode=False)
        assert isinstance(payload, str)
        assert raw[start:end].decode() == payload, number
    bs = read_sexp(info.bodystructure)
    assert isinstance(bs, list)
    assert bs[3] == b"MIXED"
    alt = bs[0]
    assert isinstance(alt, list)
    assert alt[2] == b"ALTERNATIVE"
    csv = bs[1]
    assert isinstance(csv, list)
    assert csv[:7] == [
        b"TEXT",
        b"CSV",
        [b"CHARSET", b"UTF-8", b"NAME", b"data.csv"],
        None,
        None,
        b"BASE64",
        14,
    ]
    assert csv[9] == [b"ATTACHMENT", [b"FILENAME", b"data.csv"]]
    assert "a,b\n1,2" in info.text
    assert "see attached." in info.text
    assert "old body" in info.text
