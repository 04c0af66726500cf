"""The MIME tree of a message, with byte offsets into the raw message (RFC 2045, 2046).

Why not `email.message_from_bytes`: the stdlib parser yields the parts but not where they are in
the bytes, and FETCH BODY[1.2] must be served from a byte range of the stored file. So the tree
is found in the raw bytes directly:

- a header ends at the first blank line (`headers.header_end`); its Content-* fields are read
  with a field regex over that range, never copied out of the message;
- a multipart body is split at its delimiter lines, searched with `bytes.find` for
  "--" boundary at the start of a line, followed only by optional "--" and whitespace. As RFC
  2046 5.1.1 says, the line break before a delimiter belongs to the delimiter, so a part ends
  before it; the preamble and the epilogue belong to no part;
- a message/rfc822 body is parsed again as a message, one level deeper.

Every entity records [start, body_start, end): its header is raw[start:body_start] (including
the blank line) and its body raw[body_start:end]. Hostile input cannot raise or run away: a
multipart without a boundary or without any delimiter becomes text/plain, nesting past MAX_DEPTH
and parts past MAX_PARTS stay whole as opaque parts, and no recursion goes deeper than MAX_DEPTH.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailwright.message.headers import first_fields, header_end
from mailwright.message.limits import MAX_DEPTH, MAX_PARTS

Params = tuple[tuple[bytes, bytes], ...]

_CONTENT_FIELDS = frozenset(
    {
        b"content-type",
        b"content-transfer-encoding",
        b"content-id",
        b"content-description",
        b"content-disposition",
        b"content-language",
        b"content-location",
    }
)
_TOKEN_JUNK = b" \t\r\n\"'()<>@,;:\\/[]?="


@dataclass(slots=True)
class Entity:
    """One MIME entity: a whole message, a body part, or the message inside a message/rfc822."""

    start: int
    body_start: int
    end: int
    maintype: bytes = b"TEXT"
    subtype: bytes = b"PLAIN"
    params: Params = ()
    fields: dict[bytes, bytes] = field(default_factory=dict)
    children: list[Entity] = field(default_factory=list)  # parts of a multipart
    message: Entity | None = None  # the encapsulated message of a message/rfc822
    opaque: bool = False  # beyond a limit: shown as APPLICATION/OCTET-STREAM, not descended

    @property
    def is_multipart(self) -> bool:
        return self.maintype == b"MULTIPART" and not self.opaque

    @property
    def is_message(self) -> bool:
        return self.message is not None


def split_params(value: bytes) -> list[bytes]:
    """Split at ";" outside quoted strings (RFC 2045 5.1)."""
    if b'"' not in value:
        return value.split(b";")
    out: list[bytes] = []
    buf = bytearray()
    quoted = escaped = False
    for b in value:
        if escaped:
            escaped = False
        elif quoted and b == 0x5C:
            escaped = True
        elif b == 0x22:
            quoted = not quoted
        elif b == 0x3B and not quoted:
            out.append(bytes(buf))
            buf.clear()
            continue
        buf.append(b)
    out.append(bytes(buf))
    return out


def parse_params(items: list[bytes]) -> Params:
    """attribute=value pairs; names upper-cased, values unquoted, RFC 2231 forms kept as sent."""
    params: list[tuple[bytes, bytes]] = []
    for item in items:
        name, eq, value = item.partition(b"=")
        name = name.strip(b" \t\r\n")
        if not eq or not name:
            continue
        value = value.strip(b" \t\r\n")
        if value.startswith(b'"'):
            inner = value[1:-1] if value.endswith(b'"') and len(value) > 1 else value[1:]
            out = bytearray()
            i = 0
            while i < len(inner):
                if inner[i] == 0x5C and i + 1 < len(inner):
                    i += 1
                out.append(inner[i])
                i += 1
            value = bytes(out)
        params.append((name.upper(), value))
    return tuple(params)


def _token(value: bytes) -> bytes:
    value = value.strip(b" \t\r\n")
    return value.upper() if value and not any(c in _TOKEN_JUNK for c in value) else b""


def content_type(value: bytes | None, default: tuple[bytes, bytes]) -> tuple[bytes, bytes, Params]:
    """(TYPE, SUBTYPE, params); an absent or unreadable type is the default (RFC 2045 5.2)."""
    if value is None:
        return (*default, ())
    items = split_params(value[:65536])
    maintype, _, subtype = items[0].partition(b"/")
    maintype, subtype = _token(maintype), _token(subtype)
    params = parse_params(items[1:])
    if not maintype or not subtype:
        # RFC 2045 5.2: a syntactically invalid Content-Type is taken as text/plain; us-ascii.
        return b"TEXT", b"PLAIN", ((b"CHARSET", b"us-ascii"),)
    return maintype, subtype, params


def param(params: Params, name: bytes) -> bytes | None:
    for k, v in params:
        if k == name:
            return v
    return None


def _delimiters(raw: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    """[part_start, part_end) of each body part of the multipart body raw[start:end]."""
    delim = b"--" + boundary
    parts: list[tuple[int, int]] = []
    part_start: int | None = None
    pos = start
    while True:
        i = raw.find(delim, pos, end)
        if i < 0:
            break
        pos = i + 1
        if i != start and raw[i - 1] != 0x0A:
            continue
        j = i + len(delim)
        close = raw.startswith(b"--", j, end)
        if close:
            j += 2
        while j < end and raw[j] in b" \t":
            j += 1
        if j < end and raw[j] == 0x0D:
            j += 1
        if j < end and raw[j] != 0x0A:
            continue  # the delimiter is followed by more text: not a delimiter line
        line_start = i
        if line_start > start and raw[line_start - 1] == 0x0A:
            line_start -= 1
            if line_start > start and raw[line_start - 1] == 0x0D:
                line_start -= 1
        if part_start is not None:
            parts.append((part_start, max(part_start, line_start)))
        next_start = min(j + 1, end)
        if close:
            return parts
        part_start = next_start
        pos = next_start
    if part_start is not None:
        parts.append((part_start, end))  # no close delimiter: the last part runs to the end
    return parts


class _Parser:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.count = 0

    def entity(
        self, start: int, end: int, depth: int, default: tuple[bytes, bytes] = (b"TEXT", b"PLAIN")
    ) -> Entity:
        self.count += 1
        raw = self.raw
        body_start = header_end(raw, start, end)
        fields = first_fields(raw, start, body_start, _CONTENT_FIELDS)
        maintype, subtype, params = content_type(fields.get(b"content-type"), default)
        if maintype == b"TEXT" and param(params, b"CHARSET") is None:
            # RFC 2045 5.2 default charset; RFC 3501 shows it as ("CHARSET" "US-ASCII").
            params = ((b"CHARSET", b"us-ascii"), *params)
        ent = Entity(start, body_start, end, maintype, subtype, params, fields)
        too_deep = depth >= MAX_DEPTH or self.count >= MAX_PARTS
        if maintype == b"MULTIPART":
            boundary = param(params, b"BOUNDARY")
            spans = _delimiters(raw, body_start, end, boundary) if boundary else []
            if not spans:
                # No way to find parts: keep the body as one text part (as RFC 2046 5.1.7 says
                # of unknown multipart subtypes, the content must still be shown somehow).
                ent.maintype, ent.subtype, ent.params = (
                    b"TEXT",
                    b"PLAIN",
                    ((b"CHARSET", b"us-ascii"),),
                )
            elif too_deep:
                ent.opaque = True
            else:
                child_default = (
                    (b"MESSAGE", b"RFC822") if subtype == b"DIGEST" else (b"TEXT", b"PLAIN")
                )
                for s, e in spans:
                    if self.count >= MAX_PARTS:
                        break
                    ent.children.append(self.entity(s, e, depth + 1, child_default))
        elif maintype == b"MESSAGE" and subtype == b"RFC822":
            cte = fields.get(b"content-transfer-encoding", b"7bit").strip().lower()
            if too_deep or cte in (b"base64", b"quoted-printable"):
                ent.opaque = True  # an encoded message/rfc822 is invalid (RFC 2046 5.2.1)
            else:
                ent.message = self.entity(body_start, end, depth + 1)
        return ent


def parse(raw: bytes) -> Entity:
    """The MIME tree of a whole message; never raises on any bytes."""
    return _Parser(raw).entity(0, len(raw), 0)
