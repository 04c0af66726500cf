"""What the harnesses share: decisions steered by the input, and checks of wire output."""

from __future__ import annotations

from collections.abc import Iterator

# The first HEADER bytes of a stream harness's input steer it (read size, limits, the session's
# decisions), so the fuzzer explores those too; the rest is what the client sends.
HEADER = 6


class Steer:
    """Reads the header: byte 0 the read size, byte 1 a limits selector, bytes 2-5 32 decision
    bits used in turn (cycling), as a session's accept/refuse choices."""

    def __init__(self, data: bytes) -> None:
        head = data[:HEADER].ljust(HEADER, b"\x00")
        self.read_size = head[0]  # 0: everything in one read
        self.limits = head[1]
        self._bits = int.from_bytes(head[2:HEADER], "little")
        self._next = 0
        self.stream = data[HEADER:]

    def flag(self) -> bool:
        bit = (self._bits >> (self._next % 32)) & 1
        self._next += 1
        return bool(bit)

    def reads(self) -> Iterator[bytes]:
        """The stream cut into socket reads, then b"" (EOF)."""
        size = self.read_size or max(1, len(self.stream))
        for i in range(0, len(self.stream), size):
            yield self.stream[i : i + size]
        yield b""


def check_wire_lines(out: bytes) -> None:
    """A rendered reply is whole CRLF lines: no bare CR or LF that could inject a reply."""
    assert out.endswith(b"\r\n"), out[-40:]
    inner = out.replace(b"\r\n", b"")
    assert b"\r" not in inner, out[:200]
    assert b"\n" not in inner, out[:200]


def read_imap_data(data: bytes) -> None:
    """Read `data` as IMAP response data (RFC 9051 9: NIL, numbers, quoted, literals, lists)
    the way a client would; AssertionError if it is not well-formed."""
    pos = _read(data, 0, 0)
    assert pos == len(data), f"trailing bytes at {pos}: {data[pos : pos + 20]!r}"


def _read(data: bytes, pos: int, depth: int) -> int:
    assert depth < 200, "nesting"
    c = data[pos : pos + 1]
    if c == b"(":
        pos += 1
        first = True
        while data[pos : pos + 1] != b")":
            assert pos < len(data), "unterminated list"
            # SP between items, except between lists: body-type-mpart = 1*body SP subtype and
            # env-from = "(" 1*address ")" (RFC 9051 9) concatenate theirs.
            if not first and data[pos : pos + 1] != b"(":
                assert data[pos : pos + 1] == b" ", f"no space at {pos}"
                pos += 1
            pos = _read(data, pos, depth + 1)
            first = False
        return pos + 1
    if c == b'"':
        pos += 1
        while data[pos : pos + 1] != b'"':
            assert pos < len(data), "unterminated quoted"
            ch = data[pos]
            assert ch not in (0, 10, 13), "CR, LF or NUL in a quoted string"
            assert ch < 0x80, "8-bit in a quoted string (IMAP4rev1 clients cannot read it)"
            if ch == 0x5C:
                pos += 1
                assert data[pos : pos + 1] in (b'"', b"\\"), "bad escape"
            pos += 1
        return pos + 1
    if c == b"{":
        close = data.index(b"}\r\n", pos)
        n = int(data[pos + 1 : close])
        start = close + 3
        assert start + n <= len(data), "short literal"
        assert b"\x00" not in data[start : start + n], "NUL in a literal"
        return start + n
    if data.startswith(b"NIL", pos):
        return pos + 3
    end = pos
    while end < len(data) and data[end : end + 1].isdigit():
        end += 1
    assert end > pos, f"unexpected {data[pos : pos + 20]!r}"
    return end
