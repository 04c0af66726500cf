"""What the web inbox shows of one stored message: headers, text, HTML, parts. Pure, no I/O.

The bytes come from a sender we do not trust (capture mode keeps whatever an application under
test sends), so nothing here may raise on a malformed message: an undecodable header, an unknown
charset or a broken base64 body degrades to its raw text instead of failing the request.
"""

from __future__ import annotations

import base64
import email
import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from typing import Final

# Inline images (cid:) are rewritten into data: URIs so the sandboxed view, whose CSP allows
# only data: images, shows them. Bounded so one message cannot make a 100 MB HTML response.
MAX_INLINED_IMAGES_BYTES: Final = 5 * 1024 * 1024
_CID_REF: Final = re.compile(r"""(?i)\bcid:([^"'()<>\s]+)""")


@dataclass(frozen=True, slots=True)
class Part:
    """A leaf MIME part, numbered in document order (what /parts/{n} serves)."""

    index: int
    content_type: str
    filename: str | None
    disposition: str | None  # "attachment", "inline" or None
    content_id: str | None  # without the angle brackets
    charset: str | None
    payload: bytes  # transfer-decoded


@dataclass(frozen=True, slots=True)
class MessageView:
    headers: tuple[tuple[str, str], ...]
    text: str | None
    html: str | None
    html_part: int | None
    text_part: int | None
    parts: tuple[Part, ...]

    @property
    def attachments(self) -> tuple[Part, ...]:
        """Every part but the text and HTML bodies that the Text and HTML tabs show."""
        bodies = {self.text_part, self.html_part}
        return tuple(p for p in self.parts if p.index not in bodies)


def parse(raw: bytes) -> MessageView:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    headers = tuple(_headers(msg))
    parts = tuple(_leaves(msg))
    text_part = _body_index(msg, parts, "plain")
    html_part = _body_index(msg, parts, "html")
    return MessageView(
        headers=headers,
        text=_text_of(parts[text_part]) if text_part is not None else None,
        html=_text_of(parts[html_part]) if html_part is not None else None,
        html_part=html_part,
        text_part=text_part,
        parts=parts,
    )


def inline_images(html: str, parts: tuple[Part, ...]) -> str:
    """Replace cid: references to image parts with data: URIs, up to MAX_INLINED_IMAGES_BYTES."""
    by_cid = {p.content_id: p for p in parts if p.content_id and p.content_type[:6] == "image/"}
    if not by_cid:
        return html
    budget = MAX_INLINED_IMAGES_BYTES

    def replace(match: re.Match[str]) -> str:
        nonlocal budget
        part = by_cid.get(match.group(1))
        if part is None or len(part.payload) > budget:
            return match.group(0)
        budget -= len(part.payload)
        encoded = base64.b64encode(part.payload).decode("ascii")
        return f"data:{part.content_type};base64,{encoded}"

    return _CID_REF.sub(replace, html)


def _headers(msg: Message) -> Iterator[tuple[str, str]]:
    policy = msg.policy
    for name, value in msg.raw_items():
        try:
            # The default policy decodes RFC 2047 words and parses addresses.
            text = str(policy.header_fetch_parse(name, value))
        except Exception:  # a header the email package cannot parse: show it as it came
            text = value if isinstance(value, str) else repr(value)
        yield name, " ".join(text.split())


def _leaves(msg: Message) -> Iterator[Part]:
    for index, part in enumerate(_leaf_messages(msg)):
        yield _part(index, part)


def _part(index: int, part: Message) -> Part:
    content_type = part.get_content_type()
    try:
        filename = part.get_filename()
    except Exception:
        filename = None
    try:
        disposition = part.get_content_disposition()
    except Exception:
        disposition = None
    cid = part.get("Content-ID")
    content_id = str(cid).strip().strip("<>").strip() if cid is not None else None
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return Part(
        index, content_type, filename, disposition, content_id or None, charset, _payload(part)
    )


def _payload(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            try:
                return inner[0].as_bytes(policy=email.policy.SMTP)
            except Exception:
                return str(inner[0]).encode("utf-8", "replace")
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def _body_index(msg: Message, parts: tuple[Part, ...], subtype: str) -> int | None:
    """The part `get_body()` picks (RFC 2046 alternatives, the richest last), by leaf number."""
    if not isinstance(msg, EmailMessage):
        return None
    try:
        body = msg.get_body(preferencelist=(subtype,))
    except Exception:
        body = None
    if body is None:
        return None
    for index, leaf in enumerate(_leaf_messages(msg)):
        if leaf is body:
            return parts[index].index
    return None


def _leaf_messages(msg: Message) -> Iterator[Message]:
    """Leaf parts in document order; a message/rfc822 part is one leaf (downloaded as .eml)."""
    stack: list[Message] = [msg]
    while stack:
        part = stack.pop()
        if part.get_content_maintype() == "multipart":
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend(c for c in reversed(children) if isinstance(c, Message))
                continue
        yield part


def _text_of(part: Part) -> str:
    """The body as text with "\n" line ends (the wire's CRLF is the raw view's business)."""
    # RFC 2046 4.1.2 makes us-ascii the default; utf-8 is its superset and what senders mean.
    try:
        text = part.payload.decode(part.charset or "utf-8", "replace")
    except LookupError:  # an unknown charset name
        text = part.payload.decode("utf-8", "replace")
    return text.replace("\r\n", "\n")
