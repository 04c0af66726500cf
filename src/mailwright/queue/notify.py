"""Which DSNs a queue row asks for, and handing a DSN to local delivery or the queue.

Rules (RFC 3461 4.1, RFC 3464, RFC 5321 4.5.5 / 6.1):
- NOTIFY=NEVER: no DSN at all; NOTIFY lists SUCCESS, FAILURE, DELAY. Without NOTIFY we act as
  for NOTIFY=FAILURE,DELAY (RFC 3461 4.1 leaves the default to the MTA; Postfix does the same).
- No DSN for a message with the null reverse-path, and every DSN goes out with the null
  reverse-path: so a DSN that fails is dropped, never bounced back (no loops).
- RET=HDRS returns the header only; RET=FULL or no RET returns the whole message (the DSN
  builder falls back to the header when it is too big).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Literal

from mailwright.delivery import Deliverer
from mailwright.delivery.deliverer import Refusal
from mailwright.queue.dsn import DsnRecipient, build_dsn
from mailwright.queue.prepare import return_path_end
from mailwright.store.api import Envelope, EnvelopeRecipient, QueueEntry, Store

log = logging.getLogger(__name__)

Event = Literal["SUCCESS", "FAILURE", "DELAY"]
_XTEXT = re.compile(r"\+([0-9A-Fa-f]{2})")


def notify_wants(params: Mapping[str, str | None], event: Event) -> bool:
    value = params.get("NOTIFY")
    if not value:
        return event in ("FAILURE", "DELAY")
    words = {word.strip().upper() for word in value.split(",")}
    return "NEVER" not in words and event in words


def wants_dsn(entry: QueueEntry, event: Event) -> bool:
    return entry.mail_from != "" and notify_wants(entry.rcpt_params, event)


def xtext_decode(value: str) -> str:
    """RFC 3461 4: ORCPT and ENVID travel as xtext ("+" and two hex digits)."""
    return _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), value)


def original_recipient(entry: QueueEntry) -> str | None:
    """The ORCPT value for the DSN's Original-Recipient field (RFC 3464 2.3.1), decoded."""
    value = entry.rcpt_params.get("ORCPT")
    if not value or ";" not in value:
        return None
    kind, _, address = value.partition(";")
    return f"{kind.strip()};{xtext_decode(address)}"


def ret_of(entry: QueueEntry) -> Literal["FULL", "HDRS"]:
    return "HDRS" if (entry.mail_params.get("RET") or "").upper() == "HDRS" else "FULL"


def envid_of(entry: QueueEntry) -> str | None:
    value = entry.mail_params.get("ENVID")
    return xtext_decode(value) if value else None


class DsnSender:
    """Builds RFC 3464 reports for queue rows and stores them for the senders (their INBOX
    when local, else the queue) with the null sender. Used by the runner and `queue bounce`."""

    def __init__(self, store: Store, deliverer: Deliverer, hostname: str, max_age: float) -> None:
        self.store = store
        self.deliverer = deliverer
        self.hostname = hostname
        self.max_age = max_age

    async def send(
        self,
        entries: Sequence[QueueEntry],
        action: Literal["failed", "delayed"],
        status: str,
        diagnostic: str | None,
        remote_mta: str | None,
        now: float,
    ) -> None:
        """One DSN per (message, sender). Raises StorageUnavailable when one cannot be stored
        (the caller keeps its rows and tries again later)."""
        groups: dict[tuple[str, str], list[QueueEntry]] = defaultdict(list)
        for entry in entries:
            if entry.mail_from:  # never a DSN for a DSN (RFC 3461 6.2: no loops)
                groups[(entry.blob, entry.mail_from)].append(entry)
        for (blob, sender), rows in groups.items():
            report = await asyncio.to_thread(
                self._build, blob, rows, action, status, diagnostic, remote_mta, now
            )
            await self._deliver(sender, report)

    def _build(
        self,
        blob: str,
        rows: list[QueueEntry],
        action: Literal["failed", "delayed"],
        status: str,
        diagnostic: str | None,
        remote_mta: str | None,
        now: float,
    ) -> bytes:
        raw = self.store.blob_path(blob).read_bytes()
        original = raw[return_path_end(raw[:8192]) :]
        first = rows[0]
        recipients = [
            DsnRecipient(
                final_recipient=f"rfc822;{e.rcpt}",
                original_recipient=original_recipient(e),
                action=action,
                status=status,
                diagnostic=diagnostic,
                remote_mta=remote_mta,
                last_attempt=now,
                will_retry_until=e.created + self.max_age if action == "delayed" else None,
            )
            for e in rows
        ]
        return build_dsn(
            reporting_mta=self.hostname,
            to=first.mail_from,
            recipients=recipients,
            original=original,
            ret=ret_of(first),
            envid=envid_of(first),
            arrival=first.created,
            now=now,
        )

    async def _deliver(self, to: str, report: bytes) -> None:
        resolution = self.deliverer.resolve(to, may_relay=True)
        if isinstance(resolution, Refusal):
            log.warning("queue: DSN to <%s> dropped: %s", to, resolution.value)
            return
        staged = self.deliverer.stage()
        try:
            # Our Return-Path, as on any message we accept (the runner strips it to relay).
            staged.write(b"Return-Path: <>\r\n" + report)
        except BaseException:
            staged.abort()
            raise
        envelope = Envelope(mail_from="", helo=self.hostname, client_ip="127.0.0.1")
        await self.deliverer.deliver(staged, envelope, [(EnvelopeRecipient(to), resolution)])
