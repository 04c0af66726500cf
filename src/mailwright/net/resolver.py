"""DNS for the outbound queue and the inbound checks: dnspython's async resolver, our servers.

Invariants:
- Every lookup goes to the configured servers (`[dns] servers`, "host[:port],[v6]:port"; empty:
  /etc/resolv.conf, or 127.0.0.1:53 when that file is missing, as glibc does) and gives up after
  `[dns] timeout` seconds in total.
- Three outcomes, kept apart because SMTP and SPF/DMARC treat them differently:
  the records; "no such name" (NXDOMAIN: None from mx/txt) versus "the name exists, no records of
  that type" (NODATA: []); and a temporary failure (timeout, SERVFAIL, REFUSED, network error),
  which is always `DnsTemporaryError`, never an empty answer: a DNS outage must never look like
  "no SPF record" or "no MX" (RFC 7208 5, RFC 5321 5.1).
- Answers are cached for their TTL in a bounded LRU (`[dns] cache_size` entries). Negative
  answers are cached for the SOA minimum the server sent with them (RFC 2308 5); without an SOA,
  for NO_SOA_NEGATIVE_TTL seconds only.
- Concurrent lookups of one name and type share one query: 10 messages from one sender arriving
  at once ask for its SPF and DMARC records once, not ten times (a burst of identical queries is
  what upstream resolvers rate-limit, turning a busy minute into timeouts).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Final, TypeVar, cast

import dns.asyncresolver
import dns.exception
import dns.message
import dns.nameserver
import dns.rdatatype
import dns.resolver
import dns.reversename

from mailwright.config import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from mailwright.config import DnsConfig

T = TypeVar("T")

# RFC 6891 / DNS flag day 2020: an EDNS payload that avoids IP fragmentation.
EDNS_PAYLOAD: Final = 1232
# RFC 2308 5: negative answers are cached for the SOA MINIMUM; cap it as resolvers do (3 h).
MAX_NEGATIVE_TTL: Final = 10800
# RFC 2308 5 advises against caching a negative answer without an SOA, because caching servers
# could bounce it between them forever; we serve no one, so that loop cannot form, and a few
# seconds spare the upstream resolver one query per message during a burst.
NO_SOA_NEGATIVE_TTL: Final = 5
# Positive answers: one day at most, so a changed record is seen eventually even if its TTL is huge.
MAX_TTL: Final = 86400


class DnsTemporaryError(Exception):
    """A lookup that may succeed later: timeout, SERVFAIL, REFUSED, network error."""


class _Negative(Exception):
    """Internal: NXDOMAIN (nxdomain=True) or NODATA, with the TTL it may be cached for."""

    def __init__(self, nxdomain: bool, ttl: int) -> None:
        super().__init__("nxdomain" if nxdomain else "nodata")
        self.nxdomain = nxdomain
        self.ttl = ttl


def parse_servers(servers: str) -> list[tuple[str, int]]:
    """'1.2.3.4,127.0.0.1:5353,[::1]:5353,::1' -> [(address, port)]; ConfigError if malformed."""
    result: list[tuple[str, int]] = []
    for item in (part.strip() for part in servers.split(",")):
        if not item:
            continue
        host, port_text = item, ""
        if item.startswith("["):
            host, sep, rest = item[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise ConfigError(f"dns.servers: malformed server {item!r}")
            port_text = rest[1:]
        elif item.count(":") == 1:
            host, _, port_text = item.partition(":")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"dns.servers: {host!r} is not an IP address") from None
        port = 53
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise ConfigError(f"dns.servers: bad port in {item!r}")
            port = int(port_text)
        result.append((host, port))
    return result


class Resolver:
    """Async DNS lookups with a TTL-bounded LRU cache (see the module docstring)."""

    def __init__(self, servers: str = "", *, timeout: float = 5.0, cache_size: int = 10000) -> None:
        addresses = parse_servers(servers)
        if addresses:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [dns.nameserver.Do53Nameserver(a, p) for a, p in addresses]
        else:
            try:
                resolver = dns.asyncresolver.Resolver(configure=True)
            except dns.resolver.NoResolverConfiguration:
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = ["127.0.0.1"]
        resolver.lifetime = timeout
        resolver.timeout = timeout
        resolver.use_edns(0, 0, EDNS_PAYLOAD)
        resolver.search = []
        self._resolver = resolver
        self._timeout = timeout
        self._cache_size = cache_size
        self._cache: OrderedDict[tuple[str, int], tuple[float, object]] = OrderedDict()
        self._inflight: dict[tuple[str, int], asyncio.Future[object]] = {}
        self._queries: set[asyncio.Future[dns.resolver.Answer]] = set()
        self.lookups = 0  # queries actually sent (cache misses), for tests and the bench

    @classmethod
    def from_config(cls, config: DnsConfig) -> Resolver:
        return cls(config.servers, timeout=config.timeout, cache_size=config.cache_size)

    # ----- public lookups -----------------------------------------------------------------------
    async def mx(self, domain: str) -> list[tuple[int, str]] | None:
        """MX records by preference (stable: ties keep DNS order); None for NXDOMAIN.

        A null MX (RFC 7505, exchange ".") comes back as (0, "").
        """

        def convert(answer: dns.resolver.Answer) -> list[tuple[int, str]]:
            records = [(int(r.preference), _host(r.exchange.to_text())) for r in answer]
            return sorted(records, key=lambda rec: rec[0])

        return await self._lookup(domain, dns.rdatatype.MX, convert)

    async def txt(self, name: str) -> list[str] | None:
        """TXT records, each one's strings joined (RFC 7208 3.3); None for NXDOMAIN."""

        def convert(answer: dns.resolver.Answer) -> list[str]:
            return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]

        return await self._lookup(name, dns.rdatatype.TXT, convert)

    async def a(self, host: str) -> list[str]:
        return await self._lookup(host, dns.rdatatype.A, _addresses) or []

    async def aaaa(self, host: str) -> list[str]:
        return await self._lookup(host, dns.rdatatype.AAAA, _addresses) or []

    async def addresses(self, host: str) -> list[str]:
        """IPv4 then IPv6 addresses; [] when the host has none or does not exist."""
        return await self.a(host) + await self.aaaa(host)

    async def ptr(self, ip: str) -> list[str]:
        """Names for an address (lower-case, no trailing dot); [] when there are none."""
        name = dns.reversename.from_address(ip).to_text()

        def convert(answer: dns.resolver.Answer) -> list[str]:
            return [_host(r.target.to_text()) for r in answer]

        return await self._lookup(name, dns.rdatatype.PTR, convert) or []

    async def aclose(self) -> None:
        """Let queries whose callers were cancelled finish (each within the timeout), so that
        none is cut off with its socket open when the event loop closes."""
        if self._queries:
            await asyncio.wait(list(self._queries))

    # ----- machinery ----------------------------------------------------------------------------
    async def _lookup(
        self, name: str, rdtype: int, convert: Callable[[dns.resolver.Answer], list[T]]
    ) -> list[T] | None:
        """Cached lookup: the converted records, [] for NODATA, None for NXDOMAIN."""
        key = (name.rstrip(".").lower(), rdtype)
        while True:
            hit = self._cache.get(key)
            if hit is not None:
                if hit[0] > time.monotonic():
                    self._cache.move_to_end(key)
                    return hit[1]  # type: ignore[return-value]  # stored below for this same key
                del self._cache[key]
            pending = self._inflight.get(key)
            if pending is None:
                break
            try:
                return cast("list[T] | None", await asyncio.shield(pending))
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # we were cancelled
                # The lookup we waited for was cancelled with its caller: do it ourselves.
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._fetch(key, name, rdtype, convert)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody waiting is not an error
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._inflight[key]

    async def _fetch(
        self,
        key: tuple[str, int],
        name: str,
        rdtype: int,
        convert: Callable[[dns.resolver.Answer], list[T]],
    ) -> list[T] | None:
        """Query, convert and cache (see `_lookup`)."""
        result: list[T] | None
        try:
            answer = await self._query(name, rdtype)
        except _Negative as neg:
            result, ttl = (None if neg.nxdomain else []), neg.ttl
        else:
            result = convert(answer)
            ttl = min(max(0, int(answer.expiration - time.time())), MAX_TTL)
        if ttl > 0 and self._cache_size > 0:
            self._cache[key] = (time.monotonic() + ttl, result)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return result

    async def _query(self, name: str, rdtype: int) -> dns.resolver.Answer:
        """One lookup; raises _Negative (NXDOMAIN/NODATA) or DnsTemporaryError."""
        self.lookups += 1
        qname = name.rstrip(".") + "."
        what = f"{name} {_tname(rdtype)}"
        # The query runs as its own task that a cancelled caller does not cancel: dnspython
        # cancelled while it opens its UDP socket leaves the transport open (a leaked socket per
        # cancelled lookup). It ends by itself within the timeout; `aclose` waits for it.
        query = asyncio.ensure_future(
            self._resolver.resolve(qname, dns.rdatatype.RdataType.make(rdtype), search=False)
        )
        self._queries.add(query)
        query.add_done_callback(_forget(self._queries))
        try:
            return await asyncio.shield(query)
        except dns.resolver.NXDOMAIN as exc:
            responses = exc.responses()  # type: ignore[no-untyped-call]  # untyped in dnspython
            raise _Negative(True, _negative_ttl(responses.values())) from None
        except dns.resolver.NoAnswer as exc:
            response = exc.response()  # type: ignore[no-untyped-call]  # untyped in dnspython
            raise _Negative(False, _negative_ttl([response])) from None
        except dns.resolver.YXDOMAIN:
            raise _Negative(True, 0) from None
        except dns.resolver.LifetimeTimeout:
            raise DnsTemporaryError(f"DNS timeout looking up {what}") from None
        except dns.resolver.NoNameservers:
            raise DnsTemporaryError(f"DNS server failure looking up {what}") from None
        except (dns.exception.DNSException, OSError) as exc:
            raise DnsTemporaryError(f"DNS error looking up {what}: {exc}") from None


def _forget(
    queries: set[asyncio.Future[dns.resolver.Answer]],
) -> Callable[[asyncio.Future[dns.resolver.Answer]], None]:
    """Done callback: drop a finished query, and mark its exception (if any) as seen, since a
    cancelled caller will not look at it."""

    def done(query: asyncio.Future[dns.resolver.Answer]) -> None:
        queries.discard(query)
        if not query.cancelled():
            query.exception()

    return done


def _addresses(answer: dns.resolver.Answer) -> list[str]:
    return [r.address for r in answer]


def _negative_ttl(responses: Iterable[dns.message.Message]) -> int:
    """RFC 2308 5: min(SOA TTL, SOA MINIMUM) from the authority section; NO_SOA_NEGATIVE_TTL
    without an SOA."""
    best = 0
    found = False
    for response in responses:
        for rrset in response.authority:
            if rrset.rdtype == dns.rdatatype.SOA:
                found = True
                ttl = min(rrset.ttl, min(r.minimum for r in rrset))
                best = max(best, min(ttl, MAX_NEGATIVE_TTL))
    return best if found else NO_SOA_NEGATIVE_TTL


def _host(text: str) -> str:
    return text.rstrip(".").lower()


def _tname(rdtype: int) -> str:
    return dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rdtype))
