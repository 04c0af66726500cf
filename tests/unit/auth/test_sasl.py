import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.auth.sasl import (
    Credentials,
    SaslError,
    decode_base64,
    parse_login_field,
    parse_plain,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\x00alice@example.test\x00s3cret", Credentials("alice@example.test", "s3cret")),
        (b"admin\x00alice\x00pw", Credentials("alice", "pw", "admin")),
        ("\x00j\u00fcrgen\x00p\u00e4ss".encode(), Credentials("j\u00fcrgen", "p\u00e4ss")),
    ],
)
def test_plain_decodes_rfc4616_fields(raw: bytes, expected: Credentials) -> None:
    assert parse_plain(decode_base64(b64(raw))) == expected


@pytest.mark.parametrize(
    "raw",
    [b"", b"alice\x00pw", b"\x00\x00pw", b"\x00alice\x00", b"a\x00b\x00c\x00d", b"\x00\xff\x00pw",
     b"\x00" + b"a" * 256 + b"\x00pw"],
)
def test_plain_rejects_malformed_responses(raw: bytes) -> None:
    with pytest.raises(SaslError):
        parse_plain(raw)


def test_equals_sign_is_an_empty_initial_response() -> None:
    assert decode_base64("=") == b""


@pytest.mark.parametrize("text", ["not base64!", "YWJj=x", "\u00e9"])
def test_invalid_base64_is_a_sasl_error(text: str) -> None:
    with pytest.raises(SaslError):
        decode_base64(text)


def test_login_field_rejects_empty_and_nul() -> None:
    assert parse_login_field(b"alice", "username") == "alice"
    for bad in (b"", b"a\x00b", b"\xff"):
        with pytest.raises(SaslError):
            parse_login_field(bad, "username")


@given(st.binary(max_size=600))
def test_any_bytes_give_credentials_or_sasl_error(data: bytes) -> None:
    with contextlib.suppress(SaslError):
        parse_plain(data)


@given(st.text(max_size=200))
def test_any_text_decodes_or_raises_sasl_error(text: str) -> None:
    with contextlib.suppress(SaslError):
        decode_base64(text)
