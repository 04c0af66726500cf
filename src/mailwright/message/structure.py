"""BODY and BODYSTRUCTURE (RFC 3501 7.4.2 / RFC 9051 7.5.2) and the part-number index.

BODYSTRUCTURE carries extension data (md5, disposition, language, location for a single part;
params, disposition, language, location for a multipart); BODY is the same without it. Types,
subtypes, encodings, parameter and disposition names are upper-cased as in the RFC's examples;
values are sent as they are on the wire. An entity beyond a limit (`Entity.opaque`) is sent as a
basic APPLICATION/OCTET-STREAM part, so that no client tries to read a MESSAGE/RFC822 or MULTIPART
structure that we did not parse.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailwright.message.envelope import ENVELOPE_FIELDS, NIL, envelope, istring, nstring
from mailwright.message.headers import first_fields
from mailwright.message.mime import Entity, Params, parse_params, split_params


@dataclass(frozen=True, slots=True)
class Section:
    """Byte offsets in the raw message of one part number (RFC 3501 6.4.5 section-spec).

    `start`..`body_start` is the part's MIME header (with its blank line), `body_start`..`end`
    its content. For a message/rfc822 part, and for the whole message (part number ""),
    `message_body_start` is where the encapsulated message's header ends. The whole message is
    Section(0, 0, size, header_end), so that its content is BODY[] and HEADER/TEXT work alike.
    """

    start: int
    body_start: int
    end: int
    message_body_start: int | None = None

    def mime(self) -> tuple[int, int]:
        """BODY[n.MIME]."""
        return self.start, self.body_start

    def content(self) -> tuple[int, int]:
        """BODY[n] (and BODY[] for part "")."""
        return self.body_start, self.end

    def header(self) -> tuple[int, int] | None:
        """BODY[n.HEADER] and HEADER.FIELDS; None unless this part is a message."""
        if self.message_body_start is None:
            return None
        return self.body_start, self.message_body_start

    def text(self) -> tuple[int, int] | None:
        """BODY[n.TEXT]; None unless this part is a message."""
        if self.message_body_start is None:
            return None
        return self.message_body_start, self.end


def _params(params: Params) -> bytes:
    if not params:
        return NIL
    return b"(%s)" % b" ".join(b"%s %s" % (istring(k), istring(v)) for k, v in params)


def _disposition(value: bytes | None) -> bytes:
    if value is None:
        return NIL
    items = split_params(value[:65536])
    kind = items[0].strip(b" \t\r\n").upper()
    if not kind:
        return NIL
    return b"(%s %s)" % (istring(kind), _params(parse_params(items[1:])))


def _language(value: bytes | None) -> bytes:
    if value is None:
        return NIL
    tags = [t.strip(b" \t\r\n") for t in value.split(b",")]
    tags = [t for t in tags if t]
    if not tags:
        return NIL
    if len(tags) == 1:
        return istring(tags[0])
    return b"(%s)" % b" ".join(istring(t) for t in tags)


def _lines(raw: bytes, start: int, end: int) -> int:
    """body-fld-lines: the line breaks (LF) in the body, as Dovecot counts them.

    RFC 3501 only says "size of the body in text lines". Since the CRLF before a delimiter
    belongs to the delimiter (RFC 2046 5.1.1), a part's last line often has no break of its own
    and is not counted; counting as the most deployed server does keeps clients' expectations.
    """
    return raw.count(b"\n", start, end)


def render(raw: bytes, ent: Entity, extended: bool) -> bytes:
    """BODYSTRUCTURE (extended) or BODY of one entity, as wire bytes."""
    f = ent.fields
    if ent.is_multipart:
        kids = b"".join(render(raw, c, extended) for c in ent.children)
        if not extended:
            return b"(%s %s)" % (kids, istring(ent.subtype))
        return b"(%s %s %s %s %s %s)" % (
            kids,
            istring(ent.subtype),
            _params(ent.params),
            _disposition(f.get(b"content-disposition")),
            _language(f.get(b"content-language")),
            nstring(f.get(b"content-location")),
        )
    maintype, subtype, params = ent.maintype, ent.subtype, ent.params
    if ent.opaque:
        maintype, subtype, params = b"APPLICATION", b"OCTET-STREAM", ()
    cte = f.get(b"content-transfer-encoding", b"").upper() or b"7BIT"
    out = [
        istring(maintype),
        istring(subtype),
        _params(params),
        nstring(f.get(b"content-id")),
        nstring(f.get(b"content-description")),
        istring(cte),
        b"%d" % (ent.end - ent.body_start),
    ]
    if ent.message is not None:
        m = ent.message
        out.append(envelope(first_fields(raw, m.start, m.body_start, ENVELOPE_FIELDS)))
        out.append(render(raw, m, extended))
        out.append(b"%d" % _lines(raw, ent.body_start, ent.end))
    elif maintype == b"TEXT":
        out.append(b"%d" % _lines(raw, ent.body_start, ent.end))
    if extended:
        out.append(NIL)  # body-fld-md5: we do not compute or trust Content-MD5 (RFC 1864)
        out.append(_disposition(f.get(b"content-disposition")))
        out.append(_language(f.get(b"content-language")))
        out.append(nstring(f.get(b"content-location")))
    return b"(%s)" % b" ".join(out)


def part_index(top: Entity) -> dict[str, Section]:
    """Every part number of the message (RFC 3501 6.4.5), "" being the whole message."""
    index = {"": Section(0, 0, top.end, top.body_start)}

    def message(m: Entity, prefix: str) -> None:
        if m.is_multipart:
            for i, child in enumerate(m.children, 1):
                part(child, f"{prefix}{i}")
        else:
            part(m, f"{prefix}1")  # a non-multipart message has one part: its body

    def part(p: Entity, number: str) -> None:
        inner = p.message
        index[number] = Section(
            p.start, p.body_start, p.end, None if inner is None else inner.body_start
        )
        if p.is_multipart:
            for i, child in enumerate(p.children, 1):
                part(child, f"{number}.{i}")
        elif inner is not None:
            message(inner, f"{number}.")

    message(top, "")
    return index
