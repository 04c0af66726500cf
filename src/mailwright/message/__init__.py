"""Parse a message once, at delivery: what IMAP FETCH and SEARCH need, as pure functions on bytes.

`analyze(raw)` returns a `MessageInfo`: size, ENVELOPE, BODY and BODYSTRUCTURE as ready-to-send
IMAP bytes, the byte offsets of every part number, and decoded text for the full-text index.
`MessageInfo.to_json()` / `from_json()` is a JSON form of it (the store keeps the fields in
columns of its own, store/textindex.py); its `text` may be computed on demand
(`MessageInfo.deferred`).
`header_fields()` serves BODY[HEADER.FIELDS (...)] and .NOT from a header's bytes.

Invariants:
- No I/O, no clock, no global state: the same bytes always give the same result.
- Offsets are positions in the raw bytes as stored (found in the bytes, never recomputed from a
  re-serialised message), so FETCH serves any section by reading a byte range of the file.
- Any input, however malformed, gives a result without raising; the limits in `limits.py`
  bound time and memory (depth, part count, header fields, address length, text size).
- Values are sent as they are on the wire: RFC 2047 encoded-words and 8-bit bytes are not
  decoded in ENVELOPE or BODYSTRUCTURE; only `text` is decoded.

The MIME tree is found in the raw bytes (`mime.py` says how), not with
`email.message_from_bytes`: the stdlib parser does not report where a part lies in the bytes, and
FETCH serves parts by byte range. The stdlib is used where it fits: `email.header` decodes
RFC 2047 words for the search text, and the tests cross-check part ranges against its parser.
"""

from __future__ import annotations

from mailwright.message.headers import header_fields
from mailwright.message.info import FORMAT_VERSION, MessageInfo, analyze
from mailwright.message.structure import Section

__all__ = ["FORMAT_VERSION", "MessageInfo", "Section", "analyze", "header_fields"]
