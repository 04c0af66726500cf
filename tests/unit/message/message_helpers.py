"""A small reader of IMAP response data (RFC 3501 9: NIL, numbers, quoted, literals, lists).

Used to check that what `analyze` produces is well-formed, the way a client would read it.
"""

from __future__ import annotations

Value = bytes | int | None | list["Value"]


def read_sexp(data: bytes) -> Value:
    value, pos = _read(data, 0)
    assert pos == len(data), f"trailing bytes at {pos}: {data[pos : pos + 20]!r}"
    return value


def _read(data: bytes, pos: int) -> tuple[Value, int]:
    c = data[pos : pos + 1]
    if c == b"(":
        items: list[Value] = []
        pos += 1
        while data[pos : pos + 1] != b")":
            if data[pos : pos + 1] == b" ":
                pos += 1
            item, pos = _read(data, pos)
            items.append(item)
            assert pos < len(data), "unterminated list"
        return items, pos + 1
    if c == b'"':
        out = bytearray()
        pos += 1
        while data[pos : pos + 1] != b'"':
            ch = data[pos]
            assert ch not in (0, 10, 13), "CR, LF or NUL in a quoted string"
            assert ch < 0x80, "8-bit in a quoted string"
            if ch == 0x5C:
                pos += 1
                assert data[pos : pos + 1] in (b'"', b"\\")
            out.append(data[pos])
            pos += 1
        return bytes(out), pos + 1
    if c == b"{":
        close = data.index(b"}\r\n", pos)
        n = int(data[pos + 1 : close])
        start = close + 3
        assert b"\x00" not in data[start : start + n]
        return data[start : start + n], start + n
    if data.startswith(b"NIL", pos):
        return None, pos + 3
    end = pos
    while end < len(data) and data[end : end + 1].isdigit():
        end += 1
    assert end > pos, f"unexpected {data[pos : pos + 20]!r}"
    return int(data[pos:end]), end


def crlf(text: str) -> bytes:
    """A message written with \\n in a test, stored with CRLF as the store keeps it."""
    return text.replace("\n", "\r\n").encode("utf-8")
