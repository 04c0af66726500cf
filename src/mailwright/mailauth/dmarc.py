"""DMARC (RFC 7489): policy discovery, identifier alignment and the result.

Invariants:
- The record is looked up at _dmarc.<From domain>, then at _dmarc.<organizational domain>
  (RFC 7489 6.6.3); the organizational domain comes from the Public Suffix List
  (`publicsuffixlist`, RFC 7489 3.2). A DNS failure in discovery is temperror, never "no policy".
- pass when SPF or any DKIM signature passes for an aligned domain (relaxed: same
  organizational domain; strict: the same name; RFC 7489 3.1). When nothing aligned passes but
  an aligned-or-maybe-aligned check failed temporarily, the result is temperror: it could have
  passed. Otherwise fail.
- The policy applied to a failure is p= (or sp= for a subdomain of the domain where the record
  was found), sampled by pct= (RFC 7489 6.6.4: outside the sample, the next weaker policy).
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from publicsuffixlist import PublicSuffixList

from mailwright.net.resolver import DnsTemporaryError

if TYPE_CHECKING:
    from mailwright.mailauth.dkim_verify import DkimResult
    from mailwright.mailauth.spf import SpfResult
    from mailwright.net.resolver import Resolver

POLICIES: Final = ("none", "quarantine", "reject")
_TAG: Final = re.compile(r"^\s*([a-z][a-z0-9_]*)\s*=\s*(.*?)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    p: str
    sp: str
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100


@dataclass(frozen=True, slots=True)
class Discovery:
    """The outcome of policy discovery for one From domain."""

    record: DmarcRecord | None  # None: no policy (or temperror)
    domain: str  # where the record was found ("" when none)
    temperror: str | None = None  # the DNS failure, when discovery could not finish


@dataclass(frozen=True, slots=True)
class DmarcResult:
    result: str  # pass fail none temperror (RFC 8601 / RFC 7489 11.2)
    from_domain: str
    policy: str  # the policy to apply: none, quarantine or reject (after sp= and pct=)
    published: str  # the p=/sp= value that applied, before pct= ("" without a record)
    reason: str


@functools.cache
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


def organizational_domain(domain: str) -> str:
    """RFC 7489 3.2: the public suffix plus one label (the name itself if it is a suffix)."""
    domain = domain.rstrip(".").lower()
    return _psl().privatesuffix(domain) or domain


def parse_record(text: str) -> DmarcRecord | None:
    """A DMARC record, or None when it is not one we may apply (RFC 7489 6.3, 6.6.3)."""
    parts = text.split(";")
    tags: dict[str, str] = {}
    for index, part in enumerate(parts):
        if not part.strip():
            continue
        m = _TAG.match(part)
        if m is None:
            if index == 0:
                return None
            continue  # RFC 7489 6.3: unknown or malformed tags are ignored
        name, value = m.group(1).lower(), m.group(2)
        if index == 0 and (name != "v" or value != "DMARC1"):
            return None
        tags.setdefault(name, value)
    p = tags.get("p", "").lower()
    if p not in POLICIES:
        # RFC 7489 6.6.3: without a valid p=, a record with a rua= is treated as p=none;
        # otherwise there is no DMARC processing.
        if "rua" in tags:
            p = "none"
        else:
            return None
    sp = tags.get("sp", p).lower()
    if sp not in POLICIES:
        sp = p
    adkim = tags.get("adkim", "r").lower()
    aspf = tags.get("aspf", "r").lower()
    try:
        pct = min(100, max(0, int(tags.get("pct", "100"))))
    except ValueError:
        pct = 100
    return DmarcRecord(
        p=p,
        sp=sp,
        adkim=adkim if adkim in ("r", "s") else "r",
        aspf=aspf if aspf in ("r", "s") else "r",
        pct=pct,
    )


async def discover(resolver: Resolver, from_domain: str) -> Discovery:
    """RFC 7489 6.6.3: the From domain's record, else its organizational domain's."""
    candidates = [from_domain]
    org = organizational_domain(from_domain)
    if org != from_domain:
        candidates.append(org)
    for domain in candidates:
        try:
            texts = await resolver.txt(f"_dmarc.{domain}")
        except DnsTemporaryError as exc:
            return Discovery(None, "", str(exc))
        records = [t for t in texts or [] if t.startswith("v=DMARC1")]
        if len(records) != 1:
            continue  # none, or several: no policy here (RFC 7489 6.6.3 step 3)
        record = parse_record(records[0])
        if record is not None:
            return Discovery(record, domain)
    return Discovery(None, "")


def aligned(identifier: str, from_domain: str, mode: str) -> bool:
    """RFC 7489 3.1.1-3.1.2: strict: the same name; relaxed: the same organizational domain."""
    identifier, from_domain = identifier.rstrip(".").lower(), from_domain.rstrip(".").lower()
    if mode == "s":
        return identifier == from_domain
    return organizational_domain(identifier) == organizational_domain(from_domain)


def evaluate(
    from_domain: str,
    discovery: Discovery,
    spf: SpfResult | None,
    dkim: Sequence[DkimResult],
    *,
    sample: Callable[[], float] = random.random,
) -> DmarcResult:
    """The DMARC result and the policy to apply (see the module docstring)."""
    if discovery.temperror is not None:
        return DmarcResult("temperror", from_domain, "none", "", discovery.temperror)
    record = discovery.record
    if record is None:
        return DmarcResult("none", from_domain, "none", "", "no DMARC record")
    published = record.p if from_domain == discovery.domain else record.sp
    spf_aligned = spf is not None and aligned(spf.domain, from_domain, record.aspf)
    dkim_aligned = [r for r in dkim if r.domain and aligned(r.domain, from_domain, record.adkim)]
    if spf_aligned and spf is not None and spf.result == "pass":
        return DmarcResult("pass", from_domain, "none", published, "SPF aligned and passed")
    if any(r.result == "pass" for r in dkim_aligned):
        return DmarcResult("pass", from_domain, "none", published, "DKIM aligned and passed")
    if (spf_aligned and spf is not None and spf.result == "temperror") or any(
        r.result == "temperror" for r in dkim_aligned
    ):
        return DmarcResult(
            "temperror", from_domain, "none", published, "an aligned check failed temporarily"
        )
    policy = published
    if policy != "none" and sample() * 100 >= record.pct:
        policy = POLICIES[POLICIES.index(policy) - 1]  # RFC 7489 6.6.4: outside pct=
    return DmarcResult("fail", from_domain, policy, published, "no aligned pass")
