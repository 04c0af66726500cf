"""Header blocks found in raw bytes: where a header ends, its fields, and HEADER.FIELDS output.

Everything works on offsets into the stored message, so that FETCH can serve a header from a byte
range. Lines end in CRLF as stored, but a bare LF is accepted everywhere (RFC 5322 2.2.3
unfolding removes the line break before whitespace; we never rewrite the bytes we return).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from mailwright.message.limits import MAX_FIELD_LINES, MAX_FIELD_VALUE, MAX_HEADER_FIELDS

# A blank line: the end of a header block (RFC 5322 2.1). Searched from just before the start so a
# header that is empty (the entity begins with a line break) is found too.
_BLANK_LINE = re.compile(rb"\n\r?\n")

# One field: a name of printable ASCII except ":" (RFC 5322 3.6.8), optional obsolete whitespace
# before the colon (4.5), then the value with its continuation lines. Only matched at line starts.
# At most MAX_FIELD_LINES continuation lines: the regex engine keeps state per repetition of the
# group (25 MB for a 10 MB value folded into 147,000 lines); the lines after them are skipped,
# as any line that starts with whitespace is.
_FIELD = re.compile(
    rb"(?m)^([!-9;-~]+)[ \t]*:([^\n]*(?:\n[ \t][^\n]*){0,%d})" % MAX_FIELD_LINES
)

_FOLD = re.compile(rb"\r?\n(?=[ \t])")


def header_end(raw: bytes, start: int, end: int) -> int:
    """Offset just after the blank line that ends the header starting at `start`.

    If the entity starts with a line break, its header is empty; if no blank line is found before
    `end`, the whole entity is header and the body is empty (RFC 3501 then serves an empty TEXT).
    """
    if raw.startswith(b"\r\n", start) and start + 2 <= end:
        return start + 2
    if raw.startswith(b"\n", start) and start + 1 <= end:
        return start + 1
    m = _BLANK_LINE.search(raw, start, end)
    return m.end() if m else end


def unfold(value: bytes) -> bytes:
    """RFC 5322 2.2.3: remove the line breaks of a folded value, then trim outer whitespace."""
    if b"\n" not in value:  # not folded (most fields): skip the regex
        return value.strip(b" \t\r\n")
    return _FOLD.sub(b"", value).strip(b" \t\r\n")


def iter_fields(raw: bytes, start: int, end: int) -> Iterator[tuple[bytes, bytes]]:
    """(lower-case name, unfolded value) of the first MAX_HEADER_FIELDS fields in raw[start:end];
    each value is cut to its first MAX_FIELD_VALUE octets before unfolding (never copied whole)."""
    for count, m in enumerate(_FIELD.finditer(raw, start, end)):
        if count >= MAX_HEADER_FIELDS:
            return
        value_start, value_end = m.span(2)
        yield m.group(1).lower(), unfold(raw[value_start : min(value_end,
                                                                value_start + MAX_FIELD_VALUE)])


def first_fields(raw: bytes, start: int, end: int, names: frozenset[bytes]) -> dict[bytes, bytes]:
    """The first occurrence of each of `names` (lower-case) in the header raw[start:end]."""
    found: dict[bytes, bytes] = {}
    for name, value in iter_fields(raw, start, end):
        if name in names and name not in found:
            found[name] = value
            if len(found) == len(names):
                break
    return found


def _split_raw_fields(raw_header: bytes) -> Iterator[tuple[bytes | None, bytes]]:
    """Each field as (lower-case name or None for a line that is no field, original bytes)."""
    pos = 0
    n = len(raw_header)
    current_name: bytes | None = None
    current_start = 0
    while pos < n:
        nl = raw_header.find(b"\n", pos)
        line_end = n if nl < 0 else nl + 1
        line = raw_header[pos:line_end]
        if line in (b"\r\n", b"\n"):
            break  # the blank line ending the header
        if line[:1] in (b" ", b"\t") and pos > 0:
            pos = line_end  # continuation of the current field
            continue
        if pos > current_start:
            yield current_name, raw_header[current_start:pos]
        current_start = pos
        colon = line.find(b":")
        name = line[:colon].rstrip(b" \t") if colon > 0 else b""
        current_name = name.lower() if name and _FIELD.match(line) else None
        pos = line_end
    if pos > current_start:
        yield current_name, raw_header[current_start:pos]


def header_fields(raw_header: bytes, names: Iterable[bytes | str], exclude: bool = False) -> bytes:
    """BODY[HEADER.FIELDS (names)] or, with exclude, BODY[HEADER.FIELDS.NOT (names)].

    RFC 3501 6.4.5: names match case-insensitively; the fields keep their original order and
    folding; the result ends with the blank line that ends a header (so it is CRLF alone when
    nothing matches). Lines that are not fields are never returned.
    """
    wanted = {(n.encode("ascii", "replace") if isinstance(n, str) else n).lower() for n in names}
    out: list[bytes] = []
    for name, field in _split_raw_fields(raw_header):
        if name is None or (name in wanted) == exclude:
            continue
        out.append(field if field.endswith(b"\n") else field + b"\r\n")
    out.append(b"\r\n")
    return b"".join(out)
