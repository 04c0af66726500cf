"""Which DSNs a queue row asks for, and building them from the stored message.

Rules (RFC 3461 4.1, RFC 3464, RFC 5321 4.5.5 / 6.1):
- NOTIFY=NEVER: no DSN at all; NOTIFY lists SUCCESS, FAILURE, DELAY. Without NOTIFY we act as
  for NOTIFY=FAILURE,DELAY (RFC 3461 4.1 leaves the default to the MTA; Postfix does the same).
- No DSN for a message with the null reverse-path, and every DSN goes out with the null
  reverse-path: so a DSN that fails is dropped, never bounced back (no loops).
- RET=HDRS returns the header only; RET=FULL or no RET returns the whole message in a failure
  report (the builder falls back to the header when it is too big, and success and delay
  reports carry the header only, RFC 3461 4.3). When only the header goes back, only the head
  of the stored file is read (`read_head`, bounded), never the whole message.
- SUCCESS (RFC 3461 5.2.2, 6.2): the runner reports "relayed" after a remote 2xx from a peer
  that did not offer DSN; a peer that did was given NOTIFY and reports itself. Local delivery
  (delivery.Deliverer) reports "delivered" or, for an alias with several targets, "expanded".
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from mailwright.queue.dsn import (
    MAX_RETURNED_SIZE,
    Action,
    DsnRecipient,
    build_dsn,
    is_international,
)
from mailwright.queue.prepare import return_path_end
from mailwright.store.api import QueueEntry, Store

if TYPE_CHECKING:
    from mailwright.delivery import Deliverer

Event = Literal["SUCCESS", "FAILURE", "DELAY"]
_XTEXT = re.compile(r"\+([0-9A-Fa-f]{2})")
# The returned header section is read up to this much; a header longer than that (already
# absurd: SMTP servers cap whole messages near it) is cut at its last full line.
HEAD_LIMIT: Final = 1024 * 1024
_HEAD_CHUNK: Final = 64 * 1024
# Our Return-Path and trace lines sit in this much of the file (prepare.py reads the same).
_TRACE_READ: Final = 8192


def notify_wants(params: Mapping[str, str | None], event: Event) -> bool:
    value = params.get("NOTIFY")
    if not value:
        return event in ("FAILURE", "DELAY")
    words = {word.strip().upper() for word in value.split(",")}
    return "NEVER" not in words and event in words


def without_success(params: Mapping[str, str | None]) -> dict[str, str | None]:
    """The RCPT parameters for the targets of an alias that expanded to several (RFC 3461
    6.2.7.3): the "expanded" DSN was the success report, so SUCCESS is not passed on (NEVER
    when nothing is left), as Postfix's local(8) does."""
    result = dict(params)
    value = params.get("NOTIFY")
    if value:
        words = [w.strip().upper() for w in value.split(",") if w.strip()]
        kept = [w for w in words if w != "SUCCESS"]
        result["NOTIFY"] = ",".join(kept) if kept else "NEVER"
    return result


def wants_dsn(entry: QueueEntry, event: Event) -> bool:
    return entry.mail_from != "" and notify_wants(entry.rcpt_params, event)


def xtext_decode(value: str) -> str:
    """RFC 3461 4: ORCPT and ENVID travel as xtext ("+" and two hex digits)."""
    return _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), value)


def original_recipient(entry: QueueEntry) -> str | None:
    """The ORCPT value ("type;xtext", decoded by the builder) for Original-Recipient."""
    value = entry.rcpt_params.get("ORCPT")
    return value if value and ";" in value else None


def ret_of(entry: QueueEntry) -> Literal["FULL", "HDRS"]:
    return "HDRS" if (entry.mail_params.get("RET") or "").upper() == "HDRS" else "FULL"


def read_head(path: Path, limit: int = HEAD_LIMIT) -> bytes:
    """The start of a stored message up to and including the empty line that ends its header
    section, reading at most `limit` octets (blocking: call it in a worker thread)."""
    data = bytearray()
    with path.open("rb") as file:
        while len(data) < limit:
            chunk = file.read(min(_HEAD_CHUNK, limit - len(data)))
            if not chunk:
                return bytes(data)
            start = max(0, len(data) - 3)  # a separator may straddle two chunks
            data += chunk
            ends = [e + len(s) for s in (b"\r\n\r\n", b"\n\n") if (e := data.find(s, start)) >= 0]
            if ends:
                return bytes(data[: min(ends)])
    cut = data.rfind(b"\n")
    return bytes(data[: cut + 1]) if cut >= 0 else bytes(data)


@dataclass(frozen=True, slots=True)
class Report:
    """A built DSN and where it goes (the null sender always sends it)."""

    to: str
    data: bytes
    international: bool  # needs SMTPUTF8 (RFC 6533)


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
        action: Action,
        status: str,
        diagnostic: str | None,
        remote_mta: str | None,
        now: float,
    ) -> None:
        """One DSN per (message, sender). Raises StorageUnavailable when one cannot be stored
        (the caller keeps its rows and tries again later)."""
        await self.store_reports(
            await self.build(entries, action, status, diagnostic, remote_mta, now)
        )

    async def build(
        self,
        entries: Sequence[QueueEntry],
        action: Action,
        status: str,
        diagnostic: str | None,
        remote_mta: str | None,
        now: float,
    ) -> list[Report]:
        """The reports `send` would store. Build them while the rows exist: the message file
        goes with its last row (the runner's success DSNs are stored after `queue_done`)."""
        groups: dict[tuple[str, str], list[QueueEntry]] = defaultdict(list)
        for entry in entries:
            if entry.mail_from:  # never a DSN for a DSN (RFC 3461 6.2: no loops)
                groups[(entry.blob, entry.mail_from)].append(entry)
        reports: list[Report] = []
        for (blob, sender), rows in groups.items():
            data, international = await asyncio.to_thread(
                self._build, blob, rows, action, status, diagnostic, remote_mta, now
            )
            reports.append(Report(sender, data, international))
        return reports

    async def store_reports(self, reports: Sequence[Report]) -> None:
        """Raises StorageUnavailable when one cannot be stored."""
        for report in reports:
            await self.deliverer.deliver_report(
                report.to, report.data, international=report.international
            )

    def _build(
        self,
        blob: str,
        rows: list[QueueEntry],
        action: Action,
        status: str,
        diagnostic: str | None,
        remote_mta: str | None,
        now: float,
    ) -> tuple[bytes, bool]:
        """(report, needs SMTPUTF8). Blocking file reads: runs in a worker thread."""
        first = rows[0]
        path = self.store.blob_path(blob)
        ret = ret_of(first) if action == "failed" else "HDRS"  # RFC 3461 4.3
        # stat first: the whole file is read only when it may go back whole.
        if ret == "FULL" and path.stat().st_size <= MAX_RETURNED_SIZE + _TRACE_READ:
            raw = path.read_bytes()
        else:
            raw, ret = read_head(path), "HDRS"
        original = raw[return_path_end(raw[:_TRACE_READ]) :]
        recipients = [
            DsnRecipient(
                final_recipient=e.rcpt,
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
        report = build_dsn(
            reporting_mta=self.hostname,
            to=first.mail_from,
            recipients=recipients,
            original=original,
            ret=ret,
            envid=first.mail_params.get("ENVID"),  # xtext: the builder decodes it
            arrival=first.created,
            now=now,
        )
        return report, is_international(first.mail_from, recipients, original)
