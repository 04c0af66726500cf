"""`analyze()`: everything IMAP needs from one message, computed once at delivery."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailwright.message.envelope import ENVELOPE_FIELDS, envelope
from mailwright.message.headers import first_fields
from mailwright.message.mime import parse
from mailwright.message.structure import Section, part_index, render
from mailwright.message.text import search_text

# Bumped when the stored form or the analysis changes, so the store can re-analyze old rows.
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """The parsed facts of one stored message.

    `envelope`, `body` and `bodystructure` are ready-to-send IMAP bytes (they may hold literals,
    so they must be written as they are, never re-quoted). `parts` maps each part number
    ("", "1", "1.2", ...) to byte offsets in the raw message (see `Section`). `text` is the
    decoded text for the full-text index.
    """

    size: int
    envelope: bytes
    body: bytes
    bodystructure: bytes
    parts: Mapping[str, Section]
    text: str

    def to_json(self) -> str:
        """The blobs.meta form (TEXT); wire bytes go through latin-1: exact and 8-bit safe."""
        return json.dumps(
            {
                "v": FORMAT_VERSION,
                "size": self.size,
                "envelope": self.envelope.decode("latin-1"),
                "body": self.body.decode("latin-1"),
                "bodystructure": self.bodystructure.decode("latin-1"),
                "parts": {
                    k: [s.start, s.body_start, s.end, s.message_body_start]
                    for k, s in self.parts.items()
                },
                "text": self.text,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, data: str) -> MessageInfo:
        """Inverse of `to_json`; raises ValueError on another format version or a broken row."""
        d: dict[str, Any] = json.loads(data)
        if d.get("v") != FORMAT_VERSION:
            raise ValueError(f"message info format {d.get('v')!r}, expected {FORMAT_VERSION}")
        return cls(
            size=int(d["size"]),
            envelope=d["envelope"].encode("latin-1"),
            body=d["body"].encode("latin-1"),
            bodystructure=d["bodystructure"].encode("latin-1"),
            parts={
                k: Section(int(a), int(b), int(c), None if m is None else int(m))
                for k, (a, b, c, m) in d["parts"].items()
            },
            text=str(d["text"]),
        )


def analyze(raw: bytes) -> MessageInfo:
    """Parse a stored message (CRLF lines, trace fields first) once. Never raises on any bytes."""
    top = parse(raw)
    return MessageInfo(
        size=len(raw),
        envelope=envelope(first_fields(raw, top.start, top.body_start, ENVELOPE_FIELDS)),
        body=render(raw, top, extended=False),
        bodystructure=render(raw, top, extended=True),
        parts=part_index(top),
        text=search_text(raw, top),
    )
