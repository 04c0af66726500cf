"""Links and one-time codes out of a message: the helpers every test of a sign-up flow rewrites.

Both read the decoded text/plain and text/html parts (attachments are skipped), so
quoted-printable soft breaks and base64 never split a link or a code. In HTML, links are the
`href` of `<a>` and `<area>` (html.parser unescapes `&amp;`), and codes are searched in the
visible text only, so a colour `#123456` or a digit-heavy URL is not mistaken for a code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import message_from_bytes, message_from_string, policy
from email.message import Message
from html.parser import HTMLParser
from typing import Final

# An absolute http(s) URL in plain text: runs to the next space, quote or angle bracket
# (RFC 3986 appendix C: those delimit URLs in running text).
_TEXT_URL: Final = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
# Sentence punctuation that ends a URL in prose far more often than it belongs to it.
_TRAILING: Final = ".,;:!?'\""
_CLOSERS: Final = {")": "(", "]": "[", "}": "{"}
# Tags whose text is not shown to a reader (and may hold any digits).
_HIDDEN_TAGS: Final = frozenset({"script", "style", "head", "title"})
DEFAULT_CODE_PATTERN: Final = r"\b\d{6}\b"

MessageLike = Message | bytes | str


def links(msg: MessageLike) -> list[str]:
    """Every http(s) link in the message, in order of appearance, each once.

    From text/plain parts: URLs in the text. From text/html parts: the `href` of `<a>` and
    `<area>` elements (absolute http/https only; `mailto:`, `#top` and relative ones are left
    out, as a test cannot follow them).
    """
    found: dict[str, None] = {}
    for subtype, text in _text_parts(_as_message(msg)):
        if subtype == "html":
            parser = _HtmlScan()
            parser.feed(text)
            parser.close()
            urls = [href for href in parser.hrefs if _TEXT_URL.fullmatch(href)]
        else:
            urls = [_trim(m.group()) for m in _TEXT_URL.finditer(text)]
        for url in urls:
            found.setdefault(url, None)
    return list(found)


def codes(msg: MessageLike, pattern: str | re.Pattern[str] = DEFAULT_CODE_PATTERN) -> list[str]:
    """Every match of `pattern` (default: a six-digit number) in the Subject and the text of
    the text/plain and text/html parts, in order, each once.

    A pattern with a group gives the first group ("code: (\\w{8})" gives the code alone).
    """
    regex = re.compile(pattern) if isinstance(pattern, str) else pattern
    message = _as_message(msg)
    texts = [str(message.get("Subject", ""))]
    for subtype, text in _text_parts(message):
        if subtype == "html":
            parser = _HtmlScan()
            parser.feed(text)
            parser.close()
            # Blocks end lines, so codes in adjacent cells do not run together.
            text = "\n".join(parser.text)
        texts.append(text)
    found: dict[str, None] = {}
    for text in texts:
        for match in regex.finditer(text):
            value = match.group(1) if regex.groups else match.group()
            if value is not None:
                found.setdefault(value, None)
    return list(found)


def _as_message(msg: MessageLike) -> Message:
    if isinstance(msg, Message):
        return msg
    if isinstance(msg, bytes):
        return message_from_bytes(msg, policy=policy.default)
    if isinstance(msg, str):
        return message_from_string(msg, policy=policy.default)
    raise TypeError(f"expected an email message, bytes or str, not {type(msg).__name__}")


def _text_parts(msg: Message) -> Iterator[tuple[str, str]]:
    """(subtype, decoded text) of each text/plain and text/html part that is not an attachment."""
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        subtype = part.get_content_subtype()
        if subtype not in ("plain", "html"):
            continue
        if part.get_content_disposition() == "attachment":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            text = payload.decode(charset, errors="replace")
        except LookupError:  # an unknown charset name: the bytes are most likely UTF-8
            text = payload.decode("utf-8", errors="replace")
        yield subtype, text


def _trim(url: str) -> str:
    """Drop punctuation that ends the sentence, and a closing bracket without its opener."""
    while url:
        last = url[-1]
        unbalanced = last in _CLOSERS and url.count(_CLOSERS[last]) < url.count(last)
        if last not in _TRAILING and not unbalanced:
            break
        url = url[:-1]
    return url


class _HtmlScan(HTMLParser):
    """Collects hrefs and the visible text of an HTML part."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.text: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
        elif tag in ("a", "area"):
            for name, value in attrs:
                if name == "href" and value:
                    self.hrefs.append(value.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.text.append(data)
