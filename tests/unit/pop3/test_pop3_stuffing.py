"""Byte-stuffing (RFC 1939 3) and the TOP cut (RFC 1939 7), whole and in every chunking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.pop3.responses import capabilities, multiline
from mailwright.pop3.stuffing import ByteStuffer, TopCutter, stuff

MESSAGE = b"From: a@x\r\nSubject: hi\r\n\r\nline 1\r\n.line 2\r\n..line 3\r\nline 4\r\n"


@pytest.mark.parametrize(
    ("message", "wire"),
    [
        (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),  # a lone dot must not end the response early
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
        (b".a\r\n..b\r\n", b"..a\r\n...b\r\n.\r\n"),
        (b"no final newline", b"no final newline\r\n.\r\n"),
        (b"", b".\r\n"),
        (b"x.y\r\n", b"x.y\r\n.\r\n"),  # dots inside a line are left alone
    ],
)
def test_stuff(message: bytes, wire: bytes) -> None:
    assert stuff(message) == wire


def _unstuff(wire: bytes) -> bytes:
    """What poplib does: strip the terminator, then one leading dot per line."""
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n"
    body = wire[: -len(b".\r\n")]
    lines = body.split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b"..") else line for line in lines)


_LINE = st.binary(max_size=20).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


@given(st.lists(st.sampled_from([b".", b"..", b"", b"a", b".x"]) | _LINE, max_size=20), st.data())
def test_stuffing_in_chunks_matches_whole_and_round_trips(
    lines: list[bytes], data: st.DataObject
) -> None:
    message = b"".join(line + b"\r\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(message)), max_size=5)))
    stuffer = ByteStuffer()
    out, start = b"", 0
    for cut in [*cuts, len(message)]:
        out += stuffer.feed(message[start:cut])
        start = cut
    out += stuffer.finish()
    assert out == stuff(message)
    assert _unstuff(out) == message
    # The only terminator is the last line.
    assert b"\r\n.\r\n" not in out[:-3]
    assert not out.startswith(b".\r\n") or message == b""


def _top(message: bytes, n: int, chunk: int) -> bytes:
    cutter = TopCutter(n)
    out = b""
    for i in range(0, len(message), chunk):
        out += cutter.feed(message[i : i + chunk])
        if cutter.done:
            break
    return out


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1000])
@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, b"From: a@x\r\nSubject: hi\r\n\r\n"),
        (1, b"From: a@x\r\nSubject: hi\r\n\r\nline 1\r\n"),
        (2, b"From: a@x\r\nSubject: hi\r\n\r\nline 1\r\n.line 2\r\n"),
        (99, MESSAGE),
    ],
)
def test_top(n: int, expected: bytes, chunk: int) -> None:
    assert _top(MESSAGE, n, chunk) == expected
    assert stuff(_top(MESSAGE, n, chunk)).endswith(b"\r\n.\r\n")


@pytest.mark.parametrize("chunk", [1, 4, 1000])
def test_top_of_header_only_message_is_whole(chunk: int) -> None:
    message = b"From: a@x\r\nSubject: no body\r\n"
    assert _top(message, 0, chunk) == message


@pytest.mark.parametrize("chunk", [1, 1000])
def test_top_with_empty_header(chunk: int) -> None:
    assert _top(b"\r\nbody 1\r\nbody 2\r\n", 1, chunk) == b"\r\nbody 1\r\n"


def test_top_with_bare_lf_message() -> None:
    assert _top(b"A: b\n\nx\ny\n", 1, 1) == b"A: b\n\nx\n"


def test_multiline_stuffs_text_lines() -> None:
    assert multiline(b"+OK\r\n", ["a", ".b"]) == b"+OK\r\na\r\n..b\r\n.\r\n"


def test_capabilities_before_login_on_plaintext() -> None:
    caps = capabilities(authenticated=False, tls_active=False, plaintext_allowed=False)
    assert "STLS" in caps
    assert "USER" not in caps
    assert not any(c.startswith("SASL") for c in caps)
    for required in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"):
        assert required in caps


def test_capabilities_inside_tls() -> None:
    caps = capabilities(authenticated=False, tls_active=True, plaintext_allowed=True)
    assert "STLS" not in caps
    assert "USER" in caps
    assert "SASL PLAIN LOGIN" in caps
    assert "IMPLEMENTATION mailwright" in caps
    assert "EXPIRE NEVER" in caps


def test_capabilities_after_login() -> None:
    caps = capabilities(authenticated=True, tls_active=False, plaintext_allowed=True)
    assert "STLS" not in caps
    assert "USER" not in caps
