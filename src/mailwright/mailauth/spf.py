"""SPF (RFC 7208): check_host() for the MAIL FROM and HELO identities, async, on our Resolver.

Why not pyspf: pyspf 2.0.14 is synchronous and does its own DNS (dnspython's stub resolver or
pydns), so it would block the event loop and ignore our configured servers, timeouts and cache.
This evaluator asks `mailwright.net.resolver.Resolver` for everything.

Invariants:
- Results are the seven of RFC 7208 2.6: pass, fail, softfail, neutral, none, temperror,
  permerror. A DNS failure is temperror (never a pass, never an exception).
- At most 10 mechanisms/modifiers that query DNS (include, a, mx, ptr, exists, redirect) and at
  most 2 void lookups (NXDOMAIN or no records) per evaluation, else permerror (RFC 7208 4.6.4);
  at most 10 MX hosts per "mx" (else permerror) and 10 PTR names per "ptr" (the rest ignored).
- One evaluation lasts at most `OVERALL_TIMEOUT` (RFC 7208 4.6.4 asks for at least 20 s).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from mailwright.mailauth.spf_macro import MacroError, expand, truncate_domain
from mailwright.mailauth.spf_record import (
    Mechanism,
    Record,
    SpfSyntaxError,
    is_spf_record,
    parse_record,
)
from mailwright.net.resolver import DnsTemporaryError

if TYPE_CHECKING:
    from mailwright.net.resolver import Resolver

# RFC 7208 4.6.4.
MAX_LOOKUPS: Final = 10
MAX_VOID_LOOKUPS: Final = 2
MAX_MX_HOSTS: Final = 10
MAX_PTR_NAMES: Final = 10
OVERALL_TIMEOUT: Final = 20.0
_LABEL: Final = re.compile(r"^[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?$", re.IGNORECASE)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class SpfResult:
    result: str  # pass fail softfail neutral none temperror permerror
    domain: str  # the identity's domain (the checked one at the top level)
    reason: str  # what decided it, for the Authentication-Results comment and logs
    explanation: str | None = None  # exp= text on fail (RFC 7208 6.2)


class _PermError(Exception):
    pass


class _TempError(Exception):
    pass


def valid_domain(domain: str) -> bool:
    """RFC 7208 4.3: a multi-label name with labels of 1..63 octets (else the result is none)."""
    name = domain.rstrip(".")
    if not name or len(name) > 253 or "." not in name:
        return False
    return all(_LABEL.match(label) for label in name.split("."))


async def check_mail_from(
    resolver: Resolver, ip: str, mail_from: str, helo: str, hostname: str
) -> SpfResult:
    """The MAIL FROM identity; for the null reverse-path, postmaster@HELO (RFC 7208 2.4)."""
    sender = mail_from or f"postmaster@{helo}"
    local, _, domain = sender.rpartition("@")
    if not local:
        sender = f"postmaster@{domain}"  # RFC 7208 4.3
    return await _run(resolver, ip, sender, domain, helo, hostname)


async def check_helo(resolver: Resolver, ip: str, helo: str, hostname: str) -> SpfResult:
    """The HELO identity (RFC 7208 2.3); none for an address literal or a one-label name."""
    if helo.startswith("[") or not valid_domain(helo):
        return SpfResult("none", helo, "HELO is not a domain name")
    return await _run(resolver, ip, f"postmaster@{helo}", helo, helo, hostname)


async def _run(
    resolver: Resolver, ip: str, sender: str, domain: str, helo: str, hostname: str
) -> SpfResult:
    evaluation = _Evaluation(resolver, ip, sender, helo, hostname)
    domain = domain.rstrip(".").lower()
    try:
        async with asyncio.timeout(OVERALL_TIMEOUT):
            result, reason = await evaluation.check_host(domain, top=True)
    except TimeoutError:
        return SpfResult("temperror", domain, "SPF evaluation took too long")
    except _TempError as exc:
        return SpfResult("temperror", domain, str(exc))
    except _PermError as exc:
        return SpfResult("permerror", domain, str(exc))
    return SpfResult(result, domain, reason, evaluation.explanation)


class _Evaluation:
    """One check_host() run with its lookup counters (RFC 7208 4.6.4)."""

    def __init__(self, resolver: Resolver, ip: str, sender: str, helo: str, hostname: str):
        address = ipaddress.ip_address(ip)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # RFC 7208 5: an IPv4 client on an IPv6 socket
        self.ip: IpAddress = address
        self.resolver = resolver
        self.sender = sender
        self.helo = helo
        self.hostname = hostname
        self.lookups = 0
        self.voids = 0
        self.explanation: str | None = None
        self._validated_ptr: str | None = None

    # ----- counters -----------------------------------------------------------------------------
    def _count(self, what: str) -> None:
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            raise _PermError(f"more than {MAX_LOOKUPS} DNS lookups (at {what})")

    def _void(self, found: bool) -> None:
        if not found:
            self.voids += 1
            if self.voids > MAX_VOID_LOOKUPS:
                raise _PermError(f"more than {MAX_VOID_LOOKUPS} void DNS lookups")

    # ----- DNS ----------------------------------------------------------------------------------
    async def _addresses_of(self, name: str) -> list[str] | None:
        """The addresses of `name` in the client's family; None for NXDOMAIN-or-nothing."""
        try:
            if self.ip.version == 4:
                found = await self.resolver.a(name)
            else:
                found = await self.resolver.aaaa(name)
        except DnsTemporaryError as exc:
            raise _TempError(str(exc)) from None
        return found or None

    # ----- check_host() (RFC 7208 4) ------------------------------------------------------------
    async def check_host(self, domain: str, *, top: bool = False) -> tuple[str, str]:
        if not valid_domain(domain):
            if top:
                return "none", f"{domain!r} is not a valid domain name"
            raise _PermError(f"invalid domain name {domain!r}")
        try:
            texts = await self.resolver.txt(domain)
        except DnsTemporaryError as exc:
            raise _TempError(str(exc)) from None
        records = [t for t in texts or [] if is_spf_record(t)]
        if not records:
            return "none", f"no SPF record at {domain}"
        if len(records) > 1:
            raise _PermError(f"more than one SPF record at {domain}")  # RFC 7208 4.5
        try:
            record = parse_record(records[0])
        except SpfSyntaxError as exc:
            raise _PermError(f"SPF record of {domain}: {exc}") from None
        return await self._evaluate(record, domain, top)

    async def _evaluate(self, record: Record, domain: str, top: bool) -> tuple[str, str]:
        for mechanism in record.mechanisms:
            if await self._matches(mechanism, domain):
                result = mechanism.result
                if result == "fail" and top and record.exp is not None:
                    self.explanation = await self._explain(record.exp, domain)
                return result, f"{self.ip} matched {mechanism} at {domain}"
        if record.redirect is not None:  # RFC 7208 6.1: only when no mechanism matched
            self._count("redirect")
            await self._prepare_p(record.redirect)
            target = self._expand(record.redirect, domain)
            result, reason = await self.check_host(target)
            if result == "none":
                raise _PermError(f"redirect to {target}, which has no SPF record")
            return result, reason
        return "neutral", f"no mechanism of {domain} matched {self.ip}"  # RFC 7208 4.7

    async def _matches(self, mech: Mechanism, domain: str) -> bool:
        match mech.name:
            case "all":
                return True
            case "ip4" | "ip6":
                assert mech.network is not None
                return self.ip.version == mech.network.version and self.ip in mech.network
            case "a":
                self._count("a")
                found = await self._addresses_of(await self._target(mech, domain))
                self._void(found is not None)
                return self._in(found or [], mech)
            case "mx":
                return await self._mx(mech, domain)
            case "ptr":
                self._count("ptr")
                target = await self._target(mech, domain)
                return any(
                    name == target or name.endswith("." + target)
                    for name in await self._validated_names()
                )
            case "exists":
                self._count("exists")
                try:
                    found_v4 = await self.resolver.a(await self._target(mech, domain))
                except DnsTemporaryError as exc:
                    raise _TempError(str(exc)) from None
                self._void(bool(found_v4))
                return bool(found_v4)
            case "include":
                self._count("include")
                target = await self._target(mech, domain)
                result, _ = await self.check_host(target)
                # RFC 7208 5.2: the include's result decides only "match" or an error.
                if result == "pass":
                    return True
                if result == "temperror":
                    raise _TempError(f"include:{target} gave temperror")
                if result in ("permerror", "none"):
                    raise _PermError(f"include:{target} gave {result}")
                return False
        raise AssertionError(f"unhandled mechanism {mech.name}")

    async def _mx(self, mech: Mechanism, domain: str) -> bool:
        self._count("mx")
        target = await self._target(mech, domain)
        try:
            records = await self.resolver.mx(target)
        except DnsTemporaryError as exc:
            raise _TempError(str(exc)) from None
        self._void(bool(records))
        hosts = [host for _, host in records or [] if host]
        if len(hosts) > MAX_MX_HOSTS:
            raise _PermError(f"mx:{target} has more than {MAX_MX_HOSTS} hosts")
        for host in hosts:
            if self._in(await self._addresses_of(host) or [], mech):
                return True
        return False

    def _in(self, addresses: list[str], mech: Mechanism) -> bool:
        prefix = mech.cidr4 if self.ip.version == 4 else mech.cidr6
        network = ipaddress.ip_network(f"{self.ip}/{prefix}", strict=False)
        return any(ipaddress.ip_address(a) in network for a in addresses)

    async def _validated_names(self) -> list[str]:
        """RFC 7208 5.5: PTR names whose own addresses include the client's (first 10)."""
        try:
            names = await self.resolver.ptr(str(self.ip))
        except DnsTemporaryError:
            return []  # RFC 7208 5.5: a DNS error on the PTR lookup makes ptr not match
        validated = []
        for name in names[:MAX_PTR_NAMES]:
            try:
                found = await self._addresses_of(name)
            except _TempError:
                continue
            if found and str(self.ip) in {str(ipaddress.ip_address(a)) for a in found}:
                validated.append(name)
        return validated

    # ----- macros -------------------------------------------------------------------------------
    async def _target(self, mech: Mechanism, domain: str) -> str:
        if not mech.domain:
            return domain
        await self._prepare_p(mech.domain)
        return self._expand(mech.domain, domain)

    def _values(self, domain: str) -> dict[str, str]:
        local, _, sender_domain = self.sender.rpartition("@")
        if self.ip.version == 4:
            i, v = str(self.ip), "in-addr"
        else:
            i, v = ".".join(self.ip.exploded.replace(":", "")), "ip6"  # RFC 7208 7.3
        return {
            "s": self.sender,
            "l": local,
            "o": sender_domain,
            "d": domain,
            "i": i,
            "p": self._validated_ptr or "unknown",
            "v": v,
            "h": self.helo,
            "c": str(self.ip),
            "r": self.hostname,
            "t": str(int(time.time())),
        }

    def _expand(self, spec: str, domain: str) -> str:
        try:
            return truncate_domain(expand(spec, self._values(domain)).rstrip(".").lower())
        except MacroError as exc:
            raise _PermError(str(exc)) from None

    async def _explain(self, exp: str, domain: str) -> str | None:
        """RFC 7208 6.2: exp= names a TXT record with a macro-string; any problem: no text."""
        try:
            await self._prepare_p(exp)
            target = self._expand(exp, domain)
            texts = await self.resolver.txt(target)
            if texts is None or len(texts) != 1:
                return None
            await self._prepare_p(texts[0])
            return expand(texts[0], self._values(domain), explanation=True)
        except (DnsTemporaryError, MacroError, _PermError, _TempError):
            return None

    async def _prepare_p(self, text: str) -> None:
        """The "p" macro (RFC 7208 7.3) is expensive and discouraged: computed only for a
        string that uses it, once per evaluation ("unknown" when no name validates)."""
        if "%{p" in text.lower() and self._validated_ptr is None:
            names = await self._validated_names()
            self._validated_ptr = names[0] if names else "unknown"
