"""Delivery status notifications: RFC 3464 reports in an RFC 6522 multipart/report.

Invariants:
- One report covers one message and any number of its recipients; each recipient block says
  what happened to it (Action, Status, Diagnostic-Code, Remote-MTA) so a mail client, or a
  mailing-list manager, can act on it without reading prose (RFC 3464 2.3). Actions: failed,
  delayed, and the success ones, delivered / relayed / expanded (RFC 3464 2.3.3).
- The original travels back whole only in a report of a failure, when the sender asked for it
  (RET=FULL, RFC 3461 4.3) and it is small enough; otherwise only its header section does, so
  a bounce of a 40 MiB message is not itself 40 MiB. RFC 3461 4.3: a DSN that reports no
  failure returns the header only, whatever RET says.
- A report about internationalised mail (a non-ASCII address or header, SMTPUTF8) uses the
  RFC 6533 types: message/global-delivery-status with "utf-8" typed addresses, message/global
  or message/global-headers for the original; `is_international` tells the sender of the
  report that it needs SMTPUTF8 (and 8BITMIME) on the wire. ASCII mail gets the RFC 3464
  types, which every client reads.
- The report is from the null sender's mailbox MAILER-DAEMON and carries
  `Auto-Submitted: auto-replied` (RFC 3834 5), so responders and our own queue never answer it
  (it is sent with an empty MAIL FROM: no DSN of a DSN, RFC 3461 6.2).
- Built with the stdlib `email` package; the original's header lines are kept as they were
  (no refolding), and the result is CRLF bytes ready for the queue. Pure: no I/O here.
"""

from __future__ import annotations

import email.policy
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import formatdate, make_msgid
from typing import Final, Literal

# Above this, only the header section is returned whatever RET says (Postfix returns whole
# messages up to its bounce_size_limit of 50 kB; 100 KiB keeps typical attachments out).
MAX_RETURNED_SIZE: Final = 100 * 1024
SUBJECT_FAILED: Final = "Undelivered Mail Returned to Sender"
SUBJECT_DELAYED: Final = "Delayed Mail (still being retried)"
SUBJECT_SUCCESS: Final = "Successful Mail Delivery Report"  # Postfix's wording

Action = Literal["failed", "delayed", "delivered", "relayed", "expanded"]
SUCCESS_ACTIONS: Final = frozenset({"delivered", "relayed", "expanded"})

# SMTP policy (CRLF), and the original's headers emitted exactly as received.
_POLICY: Final = email.policy.SMTP.clone(refold_source="none")
# RFC 6532: the report's own header fields in UTF-8, not RFC 2047 words.
_POLICY_UTF8: Final = _POLICY.clone(utf8=True)
_XTEXT: Final = re.compile(r"\+([0-9A-Fa-f]{2})")
# RFC 6533 3: utf-8-addr-xtext escapes non-ASCII (and "\", "+", "=") as \x{HEX}.
_UTF8_XTEXT: Final = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")


@dataclass(frozen=True, slots=True)
class DsnRecipient:
    final_recipient: str  # the address we tried ("a@b", or already typed "rfc822;a@b")
    original_recipient: str | None  # ORCPT (RFC 3461 4.2), e.g. "rfc822;a@b" (xtext allowed)
    action: Action
    status: str  # RFC 3463, e.g. "5.1.1"
    diagnostic: str | None  # "smtp; 550 5.1.1 no such user"
    remote_mta: str | None  # the host that said so
    last_attempt: float | None
    will_retry_until: float | None


def build_dsn(
    *,
    reporting_mta: str,
    to: str,
    recipients: Sequence[DsnRecipient],
    original: bytes,
    ret: Literal["FULL", "HDRS"],
    envid: str | None,
    arrival: float,
    now: float,
) -> bytes:
    """The whole report as CRLF bytes (module docstring). `original` may be only the header
    section (then pass ret="HDRS"); `envid` and ORCPT values are given as xtext."""
    if not recipients:
        raise ValueError("a DSN needs at least one recipient")
    failed = any(r.action == "failed" for r in recipients)
    full = failed and ret == "FULL" and len(original) <= MAX_RETURNED_SIZE
    utf8 = is_international(to, recipients, original)
    policy = _POLICY_UTF8 if utf8 else _POLICY
    report = EmailMessage(policy=policy)
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{reporting_mta}>"
    report["To"] = to
    report["Subject"] = _subject(recipients)
    report["Date"] = formatdate(now, usegmt=True)
    report["Message-ID"] = make_msgid(domain=reporting_mta)
    report["Auto-Submitted"] = "auto-replied"  # RFC 3834 5
    report["MIME-Version"] = "1.0"
    report.set_type("multipart/report")
    report.set_param("report-type", "delivery-status")  # RFC 6522 3, for RFC 6533 too

    human = EmailMessage(policy=policy)
    human.set_content(_human_text(reporting_mta, recipients, full), charset="utf-8")
    del human["MIME-Version"]
    human["Content-Description"] = "Notification"

    blocks = [_per_message(reporting_mta, envid, arrival, policy)]
    blocks += [_per_recipient(r, utf8, policy) for r in recipients]
    status = EmailMessage(policy=policy)
    if utf8:
        status["Content-Type"] = "message/global-delivery-status"  # RFC 6533
        status["Content-Transfer-Encoding"] = "8bit"
        # The stdlib knows only message/delivery-status: the blocks go as prepared text
        # (surrogate-escaped bytes, written back as they are by _Generator).
        text = b"".join(block.as_bytes(policy=policy) for block in blocks)
        status.set_payload(text.decode("ascii", "surrogateescape"))
    else:
        status["Content-Type"] = "message/delivery-status"
        payload: list[Message[str, str] | str] = list(blocks)
        status.set_payload(payload)  # RFC 3464 2.1: one block per message, then per recipient
    status["Content-Description"] = "Delivery report"

    report.attach(human)
    report.attach(status)
    report.attach(_returned(original, full, utf8))
    out = io.BytesIO()
    _Generator(out, policy=policy).flatten(report)
    return out.getvalue()


def is_international(to: str, recipients: Sequence[DsnRecipient], original: bytes) -> bool:
    """Whether the report needs the RFC 6533 types, and so SMTPUTF8 on the wire: a non-ASCII
    address (or a utf-8 typed ORCPT) or a non-ASCII header line in the original."""
    for r in recipients:
        for value in (r.final_recipient, r.original_recipient):
            if value and (not value.isascii() or _kind(value) == "utf-8"):
                return True
    return not to.isascii() or not header_section(original).isascii()


def xtext_encode(value: str) -> str:
    """RFC 3461 4: "+", "=" and octets outside "!".."~" as "+HH" (for an ORCPT we add)."""
    return "".join(
        c if "!" <= c <= "~" and c not in "+=" else f"+{ord(c):02X}" for c in value
    )


def utf8_xtext_encode(value: str) -> str:
    """RFC 6533 3 utf-8-addr-xtext: non-ASCII, "\\", "+" and "=" as \\x{HEX}."""
    return "".join(
        c if "!" <= c <= "~" and c not in "\\+=" else f"\\x{{{ord(c):X}}}" for c in value
    )


def header_section(original: bytes) -> bytes:
    """The header lines of a message (up to the first empty line), without that empty line."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = original.find(separator)
        if end >= 0:
            return original[: end + len(separator) // 2]
    return original


class _Generator(BytesGenerator):
    """BytesGenerator that writes the RFC 6533 message/global-* parts' text as it is: the stdlib
    would treat them as message/rfc822 and insist on ASCII."""

    def _handle_message_global_delivery_status(self, msg: Message) -> None:
        # The raw payload: get_payload() would decode the escaped bytes with a charset.
        payload = msg._payload  # type: ignore[attr-defined]  # not in the typeshed stubs
        assert isinstance(payload, str)
        self.write(payload)  # BytesGenerator.write turns the escapes back into bytes

    _handle_message_global_headers = _handle_message_global_delivery_status


def _subject(recipients: Sequence[DsnRecipient]) -> str:
    actions = {r.action for r in recipients}
    if "failed" in actions:
        return SUBJECT_FAILED
    if "delayed" in actions:
        return SUBJECT_DELAYED
    return SUBJECT_SUCCESS


# Per action: the paragraph that introduces its recipients in the human-readable part.
_INTRO: Final[dict[str, tuple[str, ...]]] = {
    "failed": (
        "Your message could not be delivered to the following recipients. This is a",
        "permanent error; the mail system has given up on them:",
    ),
    "delayed": (
        "Your message has not been delivered yet to the following recipients. The mail",
        "system is still trying; you do not need to send it again:",
    ),
    "delivered": (
        "Your message was delivered to the mailboxes of the following recipients:",
    ),
    "relayed": (
        "Your message was handed over to the mail system of the following recipients. That",
        "system does not send delivery reports, so you may hear nothing more about it:",
    ),
    "expanded": (
        "Your message was delivered to the following addresses, which pass it on to several",
        "recipients; you will not get a report for each of them:",
    ),
}


def _human_text(reporting_mta: str, recipients: Sequence[DsnRecipient], full: bool) -> str:
    lines = [f"This is the mail system at host {reporting_mta}.", ""]
    for action, intro in _INTRO.items():
        group = [r for r in recipients if r.action == action]
        if not group:
            continue
        lines += [*intro, ""]
        for r in group:
            lines.append(_explain(r))
            if action == "delayed" and r.will_retry_until is not None:
                until = formatdate(r.will_retry_until, usegmt=True)
                lines.append(f"    (will keep trying until {until})")
        lines.append("")
    what = "message" if full else "message's headers"
    lines.append(f"The delivery report and the original {what} are attached.")
    return "\n".join(lines) + "\n"


def _explain(r: DsnRecipient) -> str:
    address = _address(r.final_recipient)
    if r.diagnostic:
        why = r.diagnostic.split(";", 1)[-1].strip()
    elif r.action in SUCCESS_ACTIONS:
        why = r.action
    else:
        why = f"status {r.status}"
    where = f"host {r.remote_mta} said: " if r.remote_mta else ""
    return f"<{address}>: {where}{why}"


def _per_message(
    reporting_mta: str,
    envid: str | None,
    arrival: float,
    policy: email.policy.EmailPolicy[EmailMessage],
) -> Message:
    block = Message(policy=policy)
    block["Reporting-MTA"] = f"dns; {reporting_mta}"  # RFC 3464 2.2.2
    if envid:
        block["Original-Envelope-Id"] = _xtext_decode(envid)  # RFC 3464 2.2.1, RFC 3461 4.4
    block["Arrival-Date"] = formatdate(arrival, usegmt=True)  # RFC 3464 2.2.5
    return block


def _per_recipient(
    r: DsnRecipient, utf8: bool, policy: email.policy.EmailPolicy[EmailMessage]
) -> Message:
    block = Message(policy=policy)
    if r.original_recipient:  # RFC 3464 2.3.1: only when the client gave ORCPT
        block["Original-Recipient"] = _typed_address(r.original_recipient, utf8, xtext=True)
    block["Final-Recipient"] = _typed_address(r.final_recipient, utf8)  # RFC 3464 2.3.2
    block["Action"] = r.action  # RFC 3464 2.3.3
    block["Status"] = r.status  # RFC 3464 2.3.4
    if r.remote_mta:
        block["Remote-MTA"] = f"dns; {r.remote_mta}"  # RFC 3464 2.3.5
    if r.diagnostic:
        block["Diagnostic-Code"] = _typed(r.diagnostic, default="smtp")  # RFC 3464 2.3.6
    if r.last_attempt is not None:
        block["Last-Attempt-Date"] = formatdate(r.last_attempt, usegmt=True)  # 2.3.7
    if r.action == "delayed" and r.will_retry_until is not None:
        block["Will-Retry-Until"] = formatdate(r.will_retry_until, usegmt=True)  # 2.3.9
    return block


def _returned(original: bytes, full: bool, utf8: bool) -> EmailMessage:
    """The original (message/rfc822, RFC 6522 4; message/global, RFC 6532 3.7) or its header
    section (text/rfc822-headers; message/global-headers, RFC 6533)."""
    part = EmailMessage(policy=_POLICY)
    if full:
        part["Content-Type"] = "message/global" if utf8 else "message/rfc822"
        if not original.isascii():
            part["Content-Transfer-Encoding"] = "8bit"
        part["Content-Description"] = "Undelivered message"
        part.set_payload([BytesParser(policy=_POLICY).parsebytes(original)])
        return part
    headers = header_section(original)
    if utf8:
        part["Content-Type"] = "message/global-headers"
        part["Content-Transfer-Encoding"] = "8bit"
        text = re.sub(rb"\r?\n", b"\r\n", headers)
        part.set_payload(text.decode("ascii", "surrogateescape"))
    else:
        part.set_content(
            headers.decode("ascii").replace("\r\n", "\n"), subtype="rfc822-headers", cte="7bit"
        )
        del part["MIME-Version"]
    part["Content-Description"] = "Message headers"
    return part


def _typed_address(value: str, utf8: bool, *, xtext: bool = False) -> str:
    """An address field (RFC 3464 2.3.1/2.3.2): "rfc822; a@b", or for a non-ASCII address
    "utf-8; ..." (RFC 6533 3), written out in UTF-8 in a global report. `xtext`: the value is
    an ORCPT parameter, whose rfc822 address travels as xtext (RFC 3461 4.2)."""
    kind = _kind(value)
    address = _address(value)
    if kind == "rfc822" and xtext:
        address = _xtext_decode(address)
    if kind == "utf-8" or (kind in (None, "rfc822") and not address.isascii()):
        address = _UTF8_XTEXT.sub(lambda m: chr(int(m.group(1), 16)), address)
        return f"utf-8; {address if utf8 else utf8_xtext_encode(address)}"
    if kind in (None, "rfc822"):
        return f"rfc822; {address}"
    return _typed(value)  # another type (x400, ...): kept as given


def _kind(value: str) -> str | None:
    kind, sep, _ = value.partition(";")
    kind = kind.strip()
    return kind.lower() if sep and kind and " " not in kind and "@" not in kind else None


def _typed(value: str, default: str = "rfc822") -> str:
    """'a@b' -> 'rfc822; a@b'; an already typed 'rfc822;a@b' is kept (spacing normalised)."""
    kind, sep, rest = value.partition(";")
    if sep and kind.strip() and " " not in kind.strip() and "@" not in kind:
        return f"{kind.strip()}; {rest.strip()}"
    return f"{default}; {value.strip()}"


def _address(value: str) -> str:
    kind, sep, rest = value.partition(";")
    return rest.strip() if sep and "@" not in kind else value.strip()


def _xtext_decode(value: str) -> str:
    """RFC 3461 4: ORCPT and ENVID travel as xtext ('+2B' for '+')."""
    return _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), value)
