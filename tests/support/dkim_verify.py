"""Verify DKIM signatures the way a receiver does: dkimpy, keys fetched from the test DNS server.

`dkim.verify()` checks only the first signature; `verify_each()` checks every DKIM-Signature of
a message (dual-signed mail has two). The key lookup is a real DNS query (dnspython, UDP with
TCP fallback for the ~400-octet RSA record) to the `DnsServer` the test published the key in.
"""

from __future__ import annotations

from collections.abc import Callable

import dkim  # type: ignore[import-untyped]  # dkimpy ships no type information
import dns.exception
import dns.rdatatype
import dns.resolver
from support.dnsserver import DnsServer

TxtLookup = Callable[..., bytes | None]


def txt_lookup(server: DnsServer) -> TxtLookup:
    """A dkimpy `dnsfunc` (name: bytes, timeout) -> the TXT text, or None, asking `server`."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = server.port

    def lookup(name: bytes, timeout: float = 5.0) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode("ascii"), dns.rdatatype.TXT, lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        # RFC 6376 3.6.2.2: the strings of one TXT record are concatenated.
        return b"".join(answer[0].strings)

    return lookup


def signature_tags(message: bytes) -> list[dict[bytes, bytes]]:
    """The tag=value pairs of each DKIM-Signature header field, top first."""
    parsed = dkim.DKIM(message)
    return [
        dkim.util.parse_tag_value(value)
        for name, value in parsed.headers
        if name.lower() == b"dkim-signature"
    ]


def verify_each(message: bytes, dnsfunc: TxtLookup) -> list[bool]:
    """One result per DKIM-Signature (top first), each checked against its published key."""
    results: list[bool] = []
    for index in range(len(signature_tags(message))):
        try:
            results.append(bool(dkim.DKIM(message).verify(idx=index, dnsfunc=dnsfunc)))
        except dkim.DKIMException:
            results.append(False)
    return results
