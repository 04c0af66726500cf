"""ENVELOPE (RFC 3501 7.4.2) and IMAP string rendering."""

from __future__ import annotations

import pytest
from message_helpers import crlf, read_sexp

from mailwright.message import analyze
from mailwright.message.envelope import address_list, istring, nstring

TRACE = (
    "Return-Path: <bounce@example.net>\n"
    "Received: from a.example by b.example;\n\tMon, 1 Jan 2024 00:00:00 +0000\n"
)


def _env(headers: str) -> bytes:
    return analyze(crlf(TRACE + headers + "\nbody\n")).envelope


def test_rfc3501_example_envelope() -> None:
    env = _env(
        "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\n"
        "From: Terry Gray <gray@cac.washington.edu>\n"
        "Subject: IMAP4rev1 WG mtg summary and minutes\n"
        "To: imap@cac.washington.edu\n"
        "cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\n"
        "Message-Id: <B27397-0100000@cac.washington.edu>\n"
    )
    assert env == (
        b'("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'((NIL NIL "imap" "cac.washington.edu")) '
        b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) '
        b'NIL NIL "<B27397-0100000@cac.washington.edu>")'
    )


def test_missing_headers_are_nil() -> None:
    assert _env("X-Other: 1\n") == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_sender_and_reply_to_are_kept_when_present() -> None:
    env = read_sexp(
        _env("From: a@x.test\nSender: s@x.test\nReply-To: r@x.test\nIn-Reply-To: <p@x>\n")
    )
    assert isinstance(env, list)
    assert env[2] == [[None, None, b"a", b"x.test"]]
    assert env[3] == [[None, None, b"s", b"x.test"]]
    assert env[4] == [[None, None, b"r", b"x.test"]]
    assert env[8] == b"<p@x>"


def test_empty_sender_defaults_to_from() -> None:
    env = read_sexp(_env("From: a@x.test\nSender:\nReply-To:   \n"))
    assert isinstance(env, list)
    assert env[3] == env[4] == env[2] == [[None, None, b"a", b"x.test"]]


def test_envelope_uses_first_occurrence_and_unfolds() -> None:
    env = read_sexp(_env("Subject: one\n two\nSubject: second\n"))
    assert isinstance(env, list)
    assert env[1] == b"one two"


def test_trace_fields_are_not_envelope_fields() -> None:
    assert _env("") == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"undisclosed-recipients:;", b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))'),
        (
            b"Team: a@x.test, B <b@y.test>;, c@z.test",
            b'((NIL NIL "Team" NIL)(NIL NIL "a" "x.test")("B" NIL "b" "y.test")'
            b'(NIL NIL NIL NIL)(NIL NIL "c" "z.test"))',
        ),
        (
            b"Unclosed: a@x.test",
            b'((NIL NIL "Unclosed" NIL)(NIL NIL "a" "x.test")(NIL NIL NIL NIL))',
        ),
        (b"<@r1.test,@r2.test:u@h.test>", b'((NIL "@r1.test,@r2.test" "u" "h.test"))'),
        (b"u@h.test (Real Name)", b'(("Real Name" NIL "u" "h.test"))'),
        (b'"Doe, John" <j@h.test>', b'(("Doe, John" NIL "j" "h.test"))'),
        (b"localonly", b'((NIL NIL "localonly" ""))'),
        (b"", b"NIL"),
        (b" , ,", b"NIL"),
    ],
)
def test_address_list_forms(header: bytes, expected: bytes) -> None:
    assert address_list(header) == expected


def test_encoded_words_stay_as_on_the_wire() -> None:
    env = read_sexp(
        _env("Subject: =?UTF-8?B?w6l0w6k=?=\nFrom: =?ISO-8859-1?Q?Andr=E9?= <a@x.test>\n")
    )
    assert isinstance(env, list)
    assert env[1] == b"=?UTF-8?B?w6l0w6k=?="
    assert env[2] == [[b"=?ISO-8859-1?Q?Andr=E9?=", None, b"a", b"x.test"]]


def test_eight_bit_header_is_sent_as_literal() -> None:
    e = _env("Subject: café\nFrom: Zoë <z@x.test>\n")
    assert b"{5}\r\ncaf\xc3\xa9" in e
    assert b"{4}\r\nZo\xc3\xab" in e
    env = read_sexp(e)
    assert isinstance(env, list)
    assert env[1] == "café".encode()


def test_invalid_utf8_header_bytes_are_kept() -> None:
    raw = b"Subject: \xff\xfe bad\r\nFrom: \xff <a@x.test>\r\n\r\n"
    env = read_sexp(analyze(raw).envelope)
    assert isinstance(env, list)
    assert env[1] == b"\xff\xfe bad"
    assert env[2] == [[b"\xff", None, b"a", b"x.test"]]


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (b"plain", b'"plain"'),
        (b'say "hi" \\o/', b'"say \\"hi\\" \\\\o/"'),
        (b"", b'""'),
        (b"two\r\nlines", b"{10}\r\ntwo\r\nlines"),
        (b"nul\x00gone", b'"nulgone"'),
        (b"x" * 2000, b"{2000}\r\n" + b"x" * 2000),
    ],
)
def test_istring_quotes_or_uses_literal(value: bytes, wire: bytes) -> None:
    assert istring(value) == wire


def test_nstring_none_is_nil() -> None:
    assert nstring(None) == b"NIL"
