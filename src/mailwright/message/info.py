"""`analyze()`: everything IMAP needs from one message, computed once at delivery."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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

    `text` may be deferred (`deferred`, `analyze(defer_text=True)`): then a function computes it
    at each read instead of the object holding it. Why: only the full-text index needs it, and
    decoding it is most of the analysis' cost (~0.2 of ~0.3 ms for 4 KB), so the store computes
    it in the background and keeps it only in its index (store/textindex.py); FETCH, which reads
    ENVELOPE and BODYSTRUCTURE of thousands of messages, never pays for it.
    """

    size: int
    envelope: bytes
    body: bytes
    bodystructure: bytes
    parts: Mapping[str, Section]
    text: str
    # Set by `deferred` only, with `text` left unset: `__getattr__` calls it.
    _text_source: Callable[[], str] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @classmethod
    def deferred(
        cls,
        size: int,
        envelope: bytes,
        body: bytes,
        bodystructure: bytes,
        parts: Mapping[str, Section],
        text: Callable[[], str],
    ) -> MessageInfo:
        """A MessageInfo whose `text` is `text()`, called at each read (never held)."""
        info = object.__new__(cls)
        setter = object.__setattr__
        setter(info, "size", size)
        setter(info, "envelope", envelope)
        setter(info, "body", body)
        setter(info, "bodystructure", bodystructure)
        setter(info, "parts", parts)
        setter(info, "_text_source", text)
        return info

    if not TYPE_CHECKING:  # for the type checker, `text` is a plain attribute

        def __getattr__(self, name: str) -> Any:
            # Only reached for a slot that is not set: `text` of a deferred MessageInfo.
            if name == "text":
                source = object.__getattribute__(self, "_text_source")
                if source is not None:
                    return source()
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def to_json(self) -> str:
        """A JSON form (TEXT); wire bytes go through latin-1: exact and 8-bit safe. The store
        kept this in blob_meta.meta up to schema version 3 (store/schema.py migration 4)."""
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


def analyze(raw: bytes, *, defer_text: bool = False) -> MessageInfo:
    """Parse a stored message (CRLF lines, trace fields first) once. Never raises on any bytes.

    `defer_text`: leave `text` to be computed when read (`MessageInfo.deferred`, from `raw`)."""
    top = parse(raw)
    size = len(raw)
    env = envelope(first_fields(raw, top.start, top.body_start, ENVELOPE_FIELDS))
    body = render(raw, top, extended=False)
    bodystructure = render(raw, top, extended=True)
    parts = part_index(top)
    if defer_text:
        text = functools.partial(search_text, raw, top)
        return MessageInfo.deferred(size, env, body, bodystructure, parts, text)
    return MessageInfo(size, env, body, bodystructure, parts, search_text(raw, top))
