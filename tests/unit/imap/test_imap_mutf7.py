"""Modified UTF-7 mailbox names (RFC 3501 5.1.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.imap.mutf7 import Mutf7Error, decode, encode

VECTORS = [
    ("~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501
    ("INBOX", "INBOX"),
    ("A&B", "A&-B"),
    ("&", "&-"),
    ("Entw\u00fcrfe", "Entw&APw-rfe"),
    ("\U0001f600", "&2D3eAA-"),  # outside the BMP: a UTF-16 surrogate pair
    ("", ""),
    ("\u00e9\u00e8", "&AOkA6A-"),
    ("tab\there", "tab&AAk-here"),
]


@pytest.mark.parametrize(("text", "wire"), VECTORS)
def test_known_vectors(text: str, wire: str) -> None:
    assert encode(text) == wire
    assert decode(wire) == text


@pytest.mark.parametrize("wire", [
    "&Jjo",  # unterminated
    "&AGE-",  # "a" must not be base64-encoded
    "&AOk-&AOg-",  # adjacent encoded runs must be one
    "&AOl-",  # non-zero padding bits
    "&A-",  # bad base64 length
    "&AO-",  # odd number of octets
    "&2D0-",  # lone high surrogate
    "&!!!-",  # not base64
    "caf\u00e9",  # 8-bit character
    "a\x01b",  # control character
    "&AOk/AOg-",  # "/" instead of ","
])
def test_invalid_input_is_an_error_value(wire: str) -> None:
    assert isinstance(decode(wire), Mutf7Error)


@given(st.text())
def test_round_trip(text: str) -> None:
    wire = encode(text)
    assert wire.isascii()
    assert all(0x20 <= ord(ch) <= 0x7E for ch in wire)
    assert decode(wire) == text


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_decode_never_raises(wire: str) -> None:
    result = decode(wire)
    assert isinstance(result, Mutf7Error) or encode(result) == wire
