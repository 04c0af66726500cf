"""The inbound checks for one message on the MX listener: SPF, DKIM, DMARC, the header, a verdict.

`InboundChecker.process(staged, ...)` reads the staged message, runs SPF (MAIL FROM and HELO),
DKIM (every signature) and DMARC discovery concurrently, decides (policy.py) and, unless the
message is refused, rewrites the staged file's header block: our Authentication-Results goes
right under our Return-Path, above our Received, and any incoming Authentication-Results that
claims our authserv-id is removed (RFC 8601 5). Nothing here raises for a DNS problem: every
DNS failure becomes a temperror result and, where it matters, a tempfail verdict.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from mailwright.mailauth import authres, dmarc, policy
from mailwright.mailauth.dkim_verify import DkimResult, verify_all
from mailwright.mailauth.spf import SpfResult, check_helo, check_mail_from

if TYPE_CHECKING:
    from mailwright.config import InboundConfig
    from mailwright.net.resolver import Resolver
    from mailwright.store.api import StagedMessage

log = logging.getLogger(__name__)

# Messages larger than this are read from their temp file in a worker thread.
INLINE_READ_MAX: Final = 256 * 1024
_BLANK_LINE: Final = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True, slots=True)
class InboundResult:
    verdict: policy.Verdict
    header: bytes  # the Authentication-Results field
    spf: SpfResult
    helo_spf: SpfResult
    dkim: list[DkimResult]
    dmarc: dmarc.DmarcResult


def split_header(message: bytes) -> tuple[list[bytes], int]:
    """The header fields (each with its continuation lines and line ending) and the offset of
    the blank line that ends the header block (len(message) when there is none)."""
    m = _BLANK_LINE.search(message)
    end = len(message)
    if m is not None:  # just after the last field's line break
        end = m.start() + (2 if message[m.start() : m.start() + 1] == b"\r" else 1)
    fields: list[bytes] = []
    for line in message[:end].splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields, end


def from_domain(fields: list[bytes]) -> str:
    """The RFC5322.From domain for DMARC: exactly one From field with one address (RFC 7489
    6.6.1), else "" (no DMARC evaluation)."""
    # A line without a colon ("From" alone) is no field at all, not a From field.
    split = [f.partition(b":") for f in fields]
    values = [value for name, colon, value in split if colon and name.strip().lower() == b"from"]
    if len(values) != 1:
        return ""
    text = re.sub(r"\r?\n[ \t]", " ", values[0].decode("utf-8", "replace")).strip()
    addresses = [a for _, a in email.utils.getaddresses([text]) if a]
    if len(addresses) != 1 or "@" not in addresses[0]:
        return ""
    return addresses[0].rpartition("@")[2].rstrip(".").lower()


class InboundChecker:
    """SPF/DKIM/DMARC for unauthenticated mail on the MX listener (see the module docstring)."""

    def __init__(
        self,
        resolver: Resolver,
        config: InboundConfig,
        hostname: str,
        *,
        sample: Callable[[], float] = random.random,
    ) -> None:
        self.resolver = resolver
        self.config = config
        self.hostname = hostname
        self.sample = sample  # DMARC pct= sampling (tests pass a fixed value)

    async def check(
        self, message: bytes, *, client_ip: str, helo: str, mail_from: str
    ) -> InboundResult:
        fields, _ = split_header(message)
        author_domain = from_domain(fields)
        spf, helo_spf, dkim, discovery = await asyncio.gather(
            check_mail_from(self.resolver, client_ip, mail_from, helo, self.hostname),
            check_helo(self.resolver, client_ip, helo, self.hostname),
            verify_all(message, self.resolver),
            self._discover(author_domain),
        )
        if author_domain:
            outcome = dmarc.evaluate(author_domain, discovery, spf, dkim, sample=self.sample)
        else:
            outcome = dmarc.DmarcResult("none", "", "none", "", "no single From address")
        verdict = policy.decide(self.config, spf, dkim, outcome)
        header = authres.format_header(
            self.hostname,
            spf=spf,
            mail_from=mail_from,
            helo_spf=helo_spf if helo_spf.result != "none" else None,
            dkim=dkim,
            dmarc=outcome,
        )
        return InboundResult(verdict, header, spf, helo_spf, dkim, outcome)

    async def _discover(self, domain: str) -> dmarc.Discovery:
        if not domain:
            return dmarc.Discovery(None, "")
        return await dmarc.discover(self.resolver, domain)

    async def process(
        self, staged: StagedMessage, *, client_ip: str, helo: str, mail_from: str
    ) -> InboundResult:
        """Check the staged message and, unless refused, add our header to it."""
        if staged.size > INLINE_READ_MAX:
            message = await asyncio.to_thread(staged.read)
        else:
            message = staged.read()
        result = await self.check(message, client_ip=client_ip, helo=helo, mail_from=mail_from)
        log.info(
            "inbound %s from=<%s>: spf=%s dkim=%s dmarc=%s -> %s (%s)",
            client_ip, mail_from, result.spf.result,
            ",".join(r.result for r in result.dkim) or "none",
            result.dmarc.result, result.verdict.action, result.verdict.reason,
        )
        if result.verdict.action in ("deliver", "junk"):
            head, length = self.new_head(message, result.header)
            if staged.size > INLINE_READ_MAX:
                await asyncio.to_thread(staged.replace_head, head, length)
            else:
                staged.replace_head(head, length)
        return result

    def new_head(self, message: bytes, header: bytes) -> tuple[bytes, int]:
        """(new header block, length of the old one): ours under the Return-Path, and incoming
        Authentication-Results with our authserv-id dropped (RFC 8601 5)."""
        fields, end = split_header(message)
        names = [f.split(b":", 1)[0] for f in fields]
        values = [f.split(b":", 1)[1] if b":" in f else b"" for f in fields]
        keep = authres.strip_ours(list(zip(names, values, strict=True)), self.hostname)
        kept = [f for f, k in zip(fields, keep, strict=True) if k]
        at = 1 if kept and kept[0].lower().startswith(b"return-path:") else 0
        kept.insert(at, header)
        return b"".join(kept), end
