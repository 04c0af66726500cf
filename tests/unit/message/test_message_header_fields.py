"""BODY[HEADER.FIELDS (...)] and .NOT (RFC 3501 6.4.5)."""

from __future__ import annotations

import pytest

from mailwright.message import header_fields

HEADER = (
    b"Received: from a\r\n\tby b\r\n"
    b"From: a@x.test\r\n"
    b"subject: Hello\r\n  world\r\n"
    b"To: b@x.test\r\n"
    b"Received: from c\r\n"
    b"\r\n"
)


def test_fields_keep_order_and_folding() -> None:
    assert header_fields(HEADER, [b"RECEIVED", b"Subject"]) == (
        b"Received: from a\r\n\tby b\r\nsubject: Hello\r\n  world\r\nReceived: from c\r\n\r\n"
    )


def test_not_excludes_named_fields() -> None:
    assert header_fields(HEADER, ["received", "SUBJECT"], exclude=True) == (
        b"From: a@x.test\r\nTo: b@x.test\r\n\r\n"
    )


def test_no_match_is_blank_line() -> None:
    assert header_fields(HEADER, [b"X-None"]) == b"\r\n"


def test_empty_header() -> None:
    assert header_fields(b"", [b"From"]) == b"\r\n"
    assert header_fields(b"\r\n", [b"From"], exclude=True) == b"\r\n"


def test_body_after_blank_line_is_ignored() -> None:
    raw = b"From: a@x.test\r\n\r\nFrom: not a header\r\n"
    assert header_fields(raw, [b"from"]) == b"From: a@x.test\r\n\r\n"


def test_last_field_without_line_break_gets_one() -> None:
    assert header_fields(b"To: b@x.test", [b"to"]) == b"To: b@x.test\r\n\r\n"


def test_whitespace_before_colon_is_the_same_field() -> None:
    assert header_fields(b"Subject : old style\r\n\r\n", [b"subject"]) == (
        b"Subject : old style\r\n\r\n"
    )


@pytest.mark.parametrize("exclude", [False, True])
def test_lines_that_are_not_fields_are_dropped(exclude: bool) -> None:
    raw = b"garbage line\r\n\tcontinued\r\nFrom: a@x.test\r\n\r\n"
    assert header_fields(raw, [b"from"] if not exclude else [b"x"], exclude) == (
        b"From: a@x.test\r\n\r\n"
    )


def test_field_name_is_not_a_prefix_match() -> None:
    assert header_fields(b"From-X: 1\r\nFrom: 2\r\n\r\n", [b"from"]) == b"From: 2\r\n\r\n"
