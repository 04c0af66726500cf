"""Decoded text of a message for the full-text index (SEARCH TEXT/BODY, RFC 3501 6.4.4).

Subject, From, To and Cc are decoded from RFC 2047; each text/* part is decoded from its
transfer encoding and charset; HTML loses its tags roughly (a regex, not a parser: the index
needs words, not a rendering). The result is at most MAX_TEXT characters. Decoding errors are
replaced, never raised: a message with a broken part is still delivered and searchable.
"""

from __future__ import annotations

import binascii
import html
import re
from email.header import decode_header, make_header

from mailwright.message.headers import first_fields
from mailwright.message.limits import MAX_TEXT, MAX_TEXT_HEADER
from mailwright.message.mime import Entity, param

# Header fields whose decoded values open the search text, in this order (imap/search_eval.py
# relies on the order to tell header text from body text).
SEARCH_HEADERS = (b"subject", b"from", b"to", b"cc")
# `<[^<>]*>` rather than `<[^>]*>`: each match attempt stops at the next "<", so a flood of
# "<" without ">" stays linear instead of quadratic.
_TAG = re.compile(r"<[^<>]*>")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
# Runs of two or more spaces (see `_squeeze`).
_SPACE_RUN = re.compile("  +")


def decode_header_value(value: bytes) -> str:
    """An RFC 2047 header value as text; undecodable pieces are left as they are."""
    s = value[:MAX_TEXT_HEADER].decode("utf-8", "replace")
    try:
        return str(make_header(decode_header(s)))
    except Exception:  # the stdlib raises several types on bad encoded-words and charsets
        return s


def decode_transfer(data: bytes, cte: bytes) -> bytes:
    """Undo Content-Transfer-Encoding (RFC 2045 6); unknown encodings are taken as identity."""
    cte = cte.strip().lower()
    if cte == b"base64":
        # Lenient by construction: junk characters dropped, data after the first "=" ignored,
        # padding restored, so a2b_base64 cannot fail.
        cleaned = _NOT_BASE64.sub(b"", data.partition(b"=")[0])
        if len(cleaned) % 4 == 1:
            cleaned = cleaned[:-1]
        return binascii.a2b_base64(cleaned + b"=" * (-len(cleaned) % 4))
    if cte == b"quoted-printable":
        return binascii.a2b_qp(data)
    return data


def decode_charset(data: bytes, charset: bytes | None) -> str:
    name = (charset or b"utf-8").decode("ascii", "replace").strip()
    try:
        return data.decode(name, "replace")
    except Exception:  # unknown or non-text codec names come from the sender
        return data.decode("utf-8", "replace")


def _part_text(raw: bytes, ent: Entity) -> str:
    # Three raw bytes per decoded character is the worst case (quoted-printable "=XX").
    data = raw[ent.body_start : min(ent.end, ent.body_start + 3 * MAX_TEXT)]
    data = decode_transfer(data, ent.fields.get(b"content-transfer-encoding", b""))
    text = decode_charset(data, param(ent.params, b"CHARSET"))
    if ent.subtype == b"HTML":
        text = html.unescape(_TAG.sub(" ", text))
    return text


def _squeeze(text: str) -> str:
    """Each run of spaces, tabs, CR, FF and VT as one space (not LF: lines stay lines).

    Not `re.sub(r"[ \t\r\f\v]+", " ", text)`, which gives the same result: that regex
    matches at every single space of the text, ~120 us for 4 KB of prose against ~6 us here
    (this is most of the cost of indexing a message's text)."""
    for char in "\t\r\f\v":
        if char in text:
            text = text.replace(char, " ")
    return _SPACE_RUN.sub(" ", text) if "  " in text else text


def search_text(raw: bytes, top: Entity) -> str:
    """Header values then text parts, joined by newlines, cut at MAX_TEXT characters."""
    pieces: list[str] = []
    budget = MAX_TEXT
    fields = first_fields(raw, top.start, top.body_start, frozenset(SEARCH_HEADERS))
    for name in SEARCH_HEADERS:
        if name in fields:
            pieces.append(decode_header_value(fields[name]))
            budget -= len(pieces[-1]) + 1
    stack = [top]
    while stack and budget > 0:
        ent = stack.pop()
        if ent.is_multipart:
            stack.extend(reversed(ent.children))
        elif ent.message is not None:
            stack.append(ent.message)
        elif ent.maintype == b"TEXT" and not ent.opaque:
            text = _squeeze(_part_text(raw, ent))[:budget]
            pieces.append(text)
            budget -= len(text) + 1
    text = "\n".join(pieces)[:MAX_TEXT].replace("\x00", " ")
    # Lone surrogates (from a codec's replacement) cannot be stored as UTF-8 in SQLite.
    return text.encode("utf-8", "replace").decode("utf-8")
