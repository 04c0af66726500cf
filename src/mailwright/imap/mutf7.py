"""Modified UTF-7 for mailbox names (RFC 3501 5.1.3, kept by RFC 9051 5.1.3 for IMAP4rev1 clients).

Printable US-ASCII (0x20-0x7e) stands for itself, except "&", written "&-". Any other run of
characters is UTF-16BE, in base64 with "," for "/" and no padding, between "&" and "-".

`decode` is strict: it returns an error value for anything a conforming encoder would not
produce (RFC 3501 5.1.3: printable ASCII must not be base64-encoded, "&" must be "&-", encoded
runs must not be adjacent, unused bits must be zero). We check this by re-encoding, so that
each name has one spelling and two spellings can never denote the same mailbox.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Mutf7Error:
    """A mailbox name that is not valid modified UTF-7; `text` goes into a BAD."""

    text: str


def _is_direct(c: str) -> bool:
    return 0x20 <= ord(c) <= 0x7E


def _b64(run: str) -> str:
    raw = run.encode("utf-16-be", "surrogatepass")
    return base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",")


def encode(name: str) -> str:
    """Unicode name -> modified UTF-7 (ASCII). Never fails for any str without lone surrogates."""
    out: list[str] = []
    run: list[str] = []
    for c in name:
        if _is_direct(c):
            if run:
                out.append("&" + _b64("".join(run)) + "-")
                run.clear()
            out.append("&-" if c == "&" else c)
        else:
            run.append(c)
    if run:
        out.append("&" + _b64("".join(run)) + "-")
    return "".join(out)


def decode(wire: str) -> str | Mutf7Error:
    """Modified UTF-7 -> Unicode, or `Mutf7Error` for non-canonical or broken input."""
    out: list[str] = []
    i, n = 0, len(wire)
    while i < n:
        c = wire[i]
        if not _is_direct(c):
            return Mutf7Error("mailbox name has a character outside printable US-ASCII")
        if c != "&":
            out.append(c)
            i += 1
            continue
        end = wire.find("-", i + 1)
        if end < 0:
            return Mutf7Error("unterminated &...- sequence in mailbox name")
        chunk = wire[i + 1 : end]
        i = end + 1
        if not chunk:
            out.append("&")
            continue
        if len(chunk) % 4 == 1:
            return Mutf7Error("bad base64 length in mailbox name")
        b64 = chunk.replace(",", "/")
        try:
            raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
        except (binascii.Error, ValueError):
            return Mutf7Error("bad base64 in mailbox name")
        if len(raw) % 2:
            return Mutf7Error("odd number of UTF-16 octets in mailbox name")
        try:
            out.append(raw.decode("utf-16-be"))
        except UnicodeDecodeError:
            return Mutf7Error("unpaired UTF-16 surrogate in mailbox name")
    text = "".join(out)
    if encode(text) != wire:
        return Mutf7Error("mailbox name is not in canonical modified UTF-7")
    return text
