"""Delivery status notifications: RFC 3464 reports in an RFC 6522 multipart/report.

Invariants:
- One report covers one message and any number of its recipients; each recipient block says
  what happened to it (Action, Status, Diagnostic-Code, Remote-MTA) so a mail client, or a
  mailing-list manager, can act on it without reading prose (RFC 3464 2.3).
- The original travels back as message/rfc822 only when the sender asked for it (RET=FULL,
  RFC 3461 4.3) and it is small enough; otherwise only its header section does
  (text/rfc822-headers), so a bounce of a 40 MiB message is not itself 40 MiB.
- The report is from the null sender's mailbox MAILER-DAEMON and carries
  `Auto-Submitted: auto-replied` (RFC 3834 5), so responders and our own queue never answer it
  (the runner sends it with an empty MAIL FROM: no bounce of a bounce, RFC 3461 6.2).
- Built with the stdlib `email` package; the original's header lines are kept as they were
  (no refolding), and the result is CRLF bytes ready for the queue.
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import formatdate, make_msgid
from typing import Final, Literal

# Above this, only the header section is returned whatever RET says (Postfix returns whole
# messages up to its bounce_size_limit of 50 kB; 100 KiB keeps typical attachments out).
MAX_RETURNED_SIZE: Final = 100 * 1024
SUBJECT_FAILED: Final = "Undelivered Mail Returned to Sender"
SUBJECT_DELAYED: Final = "Delayed Mail (still being retried)"
# SMTP policy (CRLF), and the original's headers emitted exactly as received.
_POLICY: Final = email.policy.SMTP.clone(refold_source="none")
_XTEXT: Final = re.compile(r"\+([0-9A-Fa-f]{2})")


@dataclass(frozen=True, slots=True)
class DsnRecipient:
    final_recipient: str  # the address we tried ("a@b", or already typed "rfc822;a@b")
    original_recipient: str | None  # ORCPT (RFC 3461 4.2), e.g. "rfc822;a@b" (xtext allowed)
    action: Literal["failed", "delayed"]
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
    """The whole report as CRLF bytes (module docstring)."""
    if not recipients:
        raise ValueError("a DSN needs at least one recipient")
    failed = any(r.action == "failed" for r in recipients)
    report = EmailMessage(policy=_POLICY)
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{reporting_mta}>"
    report["To"] = to
    report["Subject"] = SUBJECT_FAILED if failed else SUBJECT_DELAYED
    report["Date"] = formatdate(now, usegmt=True)
    report["Message-ID"] = make_msgid(domain=reporting_mta)
    report["Auto-Submitted"] = "auto-replied"  # RFC 3834 5
    report["MIME-Version"] = "1.0"
    report.set_type("multipart/report")
    report.set_param("report-type", "delivery-status")  # RFC 6522 3

    human = EmailMessage(policy=_POLICY)
    human.set_content(_human_text(reporting_mta, recipients, now), charset="utf-8")
    del human["MIME-Version"]
    human["Content-Description"] = "Notification"

    status = EmailMessage(policy=_POLICY)
    status["Content-Type"] = "message/delivery-status"
    status["Content-Description"] = "Delivery report"
    blocks: list[Message[str, str] | str] = [_per_message(reporting_mta, envid, arrival)]
    blocks += [_per_recipient(r) for r in recipients]
    status.set_payload(blocks)  # RFC 3464 2.1: one block per message, then per recipient

    report.attach(human)
    report.attach(status)
    report.attach(_returned(original, ret))
    return report.as_bytes(policy=_POLICY)


def _human_text(reporting_mta: str, recipients: Sequence[DsnRecipient], now: float) -> str:
    failed = [r for r in recipients if r.action == "failed"]
    delayed = [r for r in recipients if r.action == "delayed"]
    lines = [f"This is the mail system at host {reporting_mta}.", ""]
    if failed:
        lines += [
            "Your message could not be delivered to the following recipients. This is a",
            "permanent error; the mail system has given up on them:",
            "",
        ]
        lines += [_explain(r) for r in failed] + [""]
    if delayed:
        lines += [
            "Your message has not been delivered yet to the following recipients. The mail",
            "system is still trying; you do not need to send it again:",
            "",
        ]
        for r in delayed:
            lines.append(_explain(r))
            if r.will_retry_until is not None:
                until = formatdate(r.will_retry_until, usegmt=True)
                lines.append(f"    (will keep trying until {until})")
        lines.append("")
    lines.append("The delivery report and the original message's headers are attached.")
    return "\n".join(lines) + "\n"


def _explain(r: DsnRecipient) -> str:
    address = _address(r.final_recipient)
    why = r.diagnostic.split(";", 1)[-1].strip() if r.diagnostic else f"status {r.status}"
    where = f"host {r.remote_mta} said: " if r.remote_mta else ""
    return f"<{address}>: {where}{why}"


def _per_message(reporting_mta: str, envid: str | None, arrival: float) -> Message:
    block = Message(policy=_POLICY)
    block["Reporting-MTA"] = f"dns; {reporting_mta}"  # RFC 3464 2.2.2
    if envid:
        block["Original-Envelope-Id"] = _xtext_decode(envid)  # RFC 3464 2.2.1, RFC 3461 4.4
    block["Arrival-Date"] = formatdate(arrival, usegmt=True)  # RFC 3464 2.2.5
    return block


def _per_recipient(r: DsnRecipient) -> Message:
    block = Message(policy=_POLICY)
    if r.original_recipient:  # RFC 3464 2.3.1: only when the client gave ORCPT
        block["Original-Recipient"] = _typed(_xtext_decode(r.original_recipient))
    block["Final-Recipient"] = _typed(r.final_recipient)  # RFC 3464 2.3.2
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


def _returned(original: bytes, ret: Literal["FULL", "HDRS"]) -> EmailMessage:
    """message/rfc822 (the whole original) or text/rfc822-headers (RFC 6522 4)."""
    if ret == "FULL" and len(original) <= MAX_RETURNED_SIZE:
        part = EmailMessage(policy=_POLICY)
        part["Content-Type"] = "message/rfc822"
        part["Content-Description"] = "Undelivered message"
        part.set_payload([BytesParser(policy=_POLICY).parsebytes(original)])
        return part
    headers = _header_section(original).decode("utf-8", errors="replace")
    part = EmailMessage(policy=_POLICY)
    part.set_content(  # 8bit only for SMTPUTF8 headers (RFC 6532)
        headers.replace("\r\n", "\n"), subtype="rfc822-headers",
        cte="7bit" if headers.isascii() else "8bit",
    )
    del part["MIME-Version"]
    part["Content-Description"] = "Undelivered message headers"
    return part


def _header_section(original: bytes) -> bytes:
    """The header lines of a message (up to the first empty line), without that empty line."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = original.find(separator)
        if end >= 0:
            return original[: end + len(separator) // 2]
    return original


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
