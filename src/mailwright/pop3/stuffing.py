"""Streaming RETR/TOP output: byte-stuffing and the TOP cut. Pure; fed file chunks in order.

RFC 1939 3: in a multi-line response, each line that begins with "." gets one more "." in front,
and the response ends with CRLF "." CRLF. Stored messages use CRLF already, so stuffing is one
`bytes.replace(b"\\n.", b"\\n..")` per chunk plus remembering whether a chunk ended a line.
"""

from __future__ import annotations


class ByteStuffer:
    """Feed the message in chunks; `finish()` closes the multi-line response."""

    def __init__(self) -> None:
        self._at_line_start = True
        self._empty = True

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        out = chunk.replace(b"\n.", b"\n..")
        if self._at_line_start and chunk[0:1] == b".":
            out = b"." + out
        self._at_line_start = chunk.endswith(b"\n")
        self._empty = False
        return out

    def finish(self) -> bytes:
        """The terminator; a message not ending in a line break gets CRLF first."""
        if self._at_line_start:
            return b".\r\n"
        self._at_line_start = True
        return b"\r\n.\r\n"


def stuff(message: bytes) -> bytes:
    """The whole multi-line body of a RETR for `message` (stuffed and terminated)."""
    s = ByteStuffer()
    return s.feed(message) + s.finish()


class TopCutter:
    """TOP msg n (RFC 1939 7): the header, the blank line after it, and n lines of the body.

    Fed in chunks; returns the part of each chunk to send. `done` becomes True once everything
    wanted has been returned, so the caller can stop reading the file. A message without a blank
    line is all header and is sent whole.
    """

    def __init__(self, lines: int) -> None:
        self._remaining = lines
        self._in_header = True
        # The last bytes of the header seen so far, so that a blank line split across two chunks
        # is still found; the message starts as if after a line feed (an empty header).
        self._tail = b"\n"
        self.done = False

    def feed(self, chunk: bytes) -> bytes:
        if self.done or not chunk:
            return b""
        pos = 0
        if self._in_header:
            end = self._header_end(chunk)
            if end is None:
                return chunk
            pos = end
            self._in_header = False
            if self._remaining == 0:
                self.done = True
                return chunk[:pos]
        # Body: count n line feeds from `pos`.
        cut = pos
        while self._remaining > 0:
            lf = chunk.find(b"\n", cut)
            if lf < 0:
                return chunk
            cut = lf + 1
            self._remaining -= 1
        self.done = True
        return chunk[:cut]

    def _header_end(self, chunk: bytes) -> int | None:
        """Offset in `chunk` just past the blank line that ends the header, if it is there."""
        data = self._tail + chunk
        ends = [i + 2 for i in (data.find(b"\n\n"),) if i >= 0]
        ends += [i + 3 for i in (data.find(b"\n\r\n"),) if i >= 0]
        if ends:
            return min(ends) - len(self._tail)
        self._tail = data[-2:]
        return None
