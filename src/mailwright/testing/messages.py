"""The message type the testing helpers return, and `MailTimeout`."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Final


class MailMessage(EmailMessage):
    """An `EmailMessage` that knows its SMTP envelope.

    `envelope_from` is the MAIL FROM address ("" for the null sender); `envelope_rcpts` the RCPT
    TO addresses this copy was kept for: for captured mail, those the capture box recorded; for
    a local mailbox, the account's address. `capture_id` is the capture box's id (else None).
    """

    envelope_from: str = ""
    envelope_rcpts: tuple[str, ...] = ()
    capture_id: str | None = None


class MailTimeout(AssertionError, TimeoutError):
    """`wait_for` found no matching message in time; the text lists what did arrive.

    An AssertionError, so pytest reports it as a failed expectation, and a TimeoutError, for
    code that catches that."""


_PARSER: Final = BytesParser(
    _class=MailMessage, policy=email.policy.default.clone(message_factory=MailMessage)
)


def parse_message(raw: bytes) -> MailMessage:
    """Parse stored bytes into a MailMessage with the modern email policy.

    Line ends become "\n" first, the convention of Python's email package, so that
    `get_content()` gives the text as the application wrote it (the wire and the store use
    CRLF, which would otherwise show up in every text part)."""
    message = _PARSER.parsebytes(raw.replace(b"\r\n", b"\n"))
    assert isinstance(message, MailMessage)
    return message
