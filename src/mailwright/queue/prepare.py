"""Turning a stored blob into what goes on the wire: skip our own Return-Path, find the From:
domain to sign for, and the DKIM-Signature lines.

Why skip: the stored file starts with the Return-Path line smtp/session.py writes for local
delivery (RFC 5321 4.4: it is added by the final delivery MTA only, so a relaying MTA must not
pass it on). The Received line after it stays: it is our trace line for this hop.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Final, Protocol

# Our trace headers are a few hundred octets; read this much to find their end.
_HEAD_READ: Final = 8192


class Signer(Protocol):
    """What the runner needs of a DKIM signer (mailauth.dkim_sign.DkimSigner is one)."""

    def sign(self, message: bytes, *, domain: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Prepared:
    offset: int  # first octet to send
    prefix: bytes  # DKIM-Signature lines to send first (b"" when unsigned)


def return_path_end(head: bytes) -> int:
    """Octets taken by the leading Return-Path field(s) (with folded continuation lines)."""
    pos = 0
    while head[pos : pos + 12].lower() == b"return-path:":
        end = head.find(b"\n", pos)
        if end < 0:
            return pos  # truncated: leave it rather than cut a line in half
        pos = end + 1
        while head[pos : pos + 1] in (b" ", b"\t"):
            end = head.find(b"\n", pos)
            if end < 0:
                return pos
            pos = end + 1
    return pos


def from_domain(message: bytes) -> str | None:
    """The domain of the (first) From: address, lower-case; None when there is none."""
    end = message.find(b"\r\n\r\n")
    head = message if end < 0 else message[: end + 2]
    parsed = BytesHeaderParser(policy=compat32).parsebytes(head)
    value = parsed.get("From")
    if value is None:
        return None
    for _name, address in email.utils.getaddresses([str(value)]):
        if "@" in address:
            return address.rpartition("@")[2].strip().rstrip(".").lower() or None
    return None


def prepare(path: Path, signer: Signer | None, sign: bool) -> Prepared:
    """Blocking (file reads, signing): run it in a worker thread. `sign`: the sender is ours."""
    with path.open("rb") as file:
        head = file.read(_HEAD_READ)
        offset = return_path_end(head)
        if signer is None or not sign:
            return Prepared(offset, b"")
        file.seek(offset)
        message = file.read()
    domain = from_domain(message)
    if domain is None:
        return Prepared(offset, b"")
    return Prepared(offset, signer.sign(message, domain=domain))
