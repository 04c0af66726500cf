"""mailwright.net.resolver against the real test DNS server (tests/support/dnsserver.py)."""

from __future__ import annotations

import asyncio
import time

import dns.rdatatype
import pytest
from support.dnsserver import DnsServer

from mailwright.config import ConfigError, DnsConfig
from mailwright.net.resolver import (
    NO_SOA_NEGATIVE_TTL,
    DnsTemporaryError,
    Resolver,
    parse_servers,
)


def make(dns: DnsServer, timeout: float = 2.0) -> Resolver:
    return Resolver(dns.spec, timeout=timeout)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", []),
        ("127.0.0.1", [("127.0.0.1", 53)]),
        ("127.0.0.1:5353, 10.0.0.1", [("127.0.0.1", 5353), ("10.0.0.1", 53)]),
        ("[::1]:5353", [("::1", 5353)]),
        ("::1", [("::1", 53)]),
    ],
)
def test_parse_servers(spec: str, expected: list[tuple[str, int]]) -> None:
    assert parse_servers(spec) == expected


@pytest.mark.parametrize("spec", ["dns.example:53", "127.0.0.1:x", "127.0.0.1:70000", "[::1"])
def test_malformed_servers_are_a_config_error(spec: str) -> None:
    with pytest.raises(ConfigError):
        Resolver(spec)


def test_from_config_uses_servers_and_timeout() -> None:
    resolver = Resolver.from_config(DnsConfig(servers="127.0.0.1:5353", timeout=1.5))
    assert resolver._resolver.lifetime == 1.5


@pytest.mark.asyncio
async def test_mx_sorted_by_preference_ties_keep_dns_order(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "MX", (20, "MX-B.example.org"))
    dns_server.add("example.org", "MX", (10, "mx-a.example.org."))
    dns_server.add("example.org", "MX", (20, "mx-c.example.org"))
    assert await make(dns_server).mx("example.org") == [
        (10, "mx-a.example.org"),
        (20, "mx-b.example.org"),
        (20, "mx-c.example.org"),
    ]


@pytest.mark.asyncio
async def test_null_mx(dns_server: DnsServer) -> None:
    dns_server.add("nomail.example", "MX", (0, "."))
    assert await make(dns_server).mx("nomail.example") == [(0, "")]


@pytest.mark.asyncio
async def test_nxdomain_versus_nodata(dns_server: DnsServer) -> None:
    dns_server.add("a-only.example", "A", "192.0.2.1")
    resolver = make(dns_server)
    assert await resolver.mx("missing.example") is None
    assert await resolver.mx("a-only.example") == []
    assert await resolver.txt("missing.example") is None
    assert await resolver.txt("a-only.example") == []
    assert await resolver.addresses("missing.example") == []


@pytest.mark.asyncio
async def test_empty_non_terminal_is_nodata(dns_server: DnsServer) -> None:
    dns_server.add("sel._domainkey.example.org", "TXT", "v=DKIM1; p=")
    assert await make(dns_server).txt("_domainkey.example.org") == []


@pytest.mark.asyncio
async def test_addresses_ipv4_then_ipv6(dns_server: DnsServer) -> None:
    dns_server.add("host.example", "AAAA", "2001:db8::1")
    dns_server.add("host.example", "A", "192.0.2.7")
    resolver = make(dns_server)
    assert await resolver.addresses("host.example") == ["192.0.2.7", "2001:db8::1"]
    assert await resolver.a("host.example") == ["192.0.2.7"]
    assert await resolver.aaaa("host.example") == ["2001:db8::1"]


@pytest.mark.asyncio
async def test_txt_strings_are_joined_and_long_answers_use_tcp(dns_server: DnsServer) -> None:
    long = "v=DKIM1; k=rsa; p=" + "A" * 2000  # several 255-octet strings; > 1232 so TC then TCP
    dns_server.add("k._domainkey.example", "TXT", long)
    dns_server.add("k._domainkey.example", "TXT", "second")
    assert await make(dns_server).txt("k._domainkey.example") == [long, "second"]


@pytest.mark.asyncio
async def test_cname_is_followed(dns_server: DnsServer) -> None:
    dns_server.add("alias.example", "CNAME", "real.example")
    dns_server.add("real.example", "A", "192.0.2.9")
    assert await make(dns_server).a("alias.example") == ["192.0.2.9"]


@pytest.mark.asyncio
async def test_ptr(dns_server: DnsServer) -> None:
    dns_server.add("7.2.0.192.in-addr.arpa", "PTR", "Mail.Example.org.")
    resolver = make(dns_server)
    assert await resolver.ptr("192.0.2.7") == ["mail.example.org"]
    assert await resolver.ptr("192.0.2.8") == []


@pytest.mark.asyncio
async def test_servfail_is_temporary(dns_server: DnsServer) -> None:
    dns_server.fail("broken.example")
    resolver = make(dns_server)
    with pytest.raises(DnsTemporaryError):
        await resolver.txt("broken.example")
    with pytest.raises(DnsTemporaryError):
        await resolver.addresses("broken.example")


@pytest.mark.asyncio
async def test_timeout_is_temporary(dns_server: DnsServer) -> None:
    dns_server.fail("slow.example", "timeout")
    with pytest.raises(DnsTemporaryError):
        await make(dns_server, timeout=0.3).mx("slow.example")


@pytest.mark.asyncio
async def test_failures_are_not_cached(dns_server: DnsServer) -> None:
    dns_server.add("flaky.example", "TXT", "hello")
    dns_server.fail("flaky.example")
    resolver = make(dns_server)
    with pytest.raises(DnsTemporaryError):
        await resolver.txt("flaky.example")
    dns_server.heal("flaky.example")
    assert await resolver.txt("flaky.example") == ["hello"]


@pytest.mark.asyncio
async def test_answers_cached_for_their_ttl(dns_server: DnsServer) -> None:
    dns_server.add("cached.example", "TXT", "one", ttl=300)
    dns_server.add("nocache.example", "TXT", "zero", ttl=0)
    resolver = make(dns_server)
    assert await resolver.txt("cached.example") == ["one"]
    dns_server.remove("cached.example")
    assert await resolver.txt("CACHED.example.") == ["one"]  # same key, served from the cache
    assert await resolver.txt("nocache.example") == ["zero"]
    assert await resolver.txt("nocache.example") == ["zero"]
    asked = [q for q in dns_server.queries if q[1] == "TXT"]
    assert asked.count(("cached.example", "TXT")) == 1
    assert asked.count(("nocache.example", "TXT")) == 2


@pytest.mark.asyncio
async def test_cache_is_bounded_lru(dns_server: DnsServer) -> None:
    for name in ("a.example", "b.example", "c.example"):
        dns_server.add(name, "TXT", name, ttl=300)
    resolver = Resolver(dns_server.spec, timeout=2.0, cache_size=2)
    await resolver.txt("a.example")
    await resolver.txt("b.example")
    await resolver.txt("a.example")  # a is now the most recent
    await resolver.txt("c.example")  # evicts b
    before = resolver.lookups
    await resolver.txt("a.example")
    assert resolver.lookups == before
    await resolver.txt("b.example")
    assert resolver.lookups == before + 1


@pytest.mark.asyncio
async def test_concurrent_lookups_of_one_name_share_one_query(dns_server: DnsServer) -> None:
    dns_server.add("_dmarc.burst.example", "TXT", "v=DMARC1; p=none")
    resolver = make(dns_server)
    answers = await asyncio.gather(*(resolver.txt("_dmarc.burst.example") for _ in range(10)))
    assert answers == [["v=DMARC1; p=none"]] * 10
    assert resolver.lookups == 1


@pytest.mark.asyncio
async def test_a_shared_failure_reaches_every_waiter(dns_server: DnsServer) -> None:
    dns_server.fail("broken.example")
    resolver = make(dns_server)
    outcomes = await asyncio.gather(
        *(resolver.txt("broken.example") for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(o, DnsTemporaryError) for o in outcomes)
    assert resolver.lookups == 1


@pytest.mark.asyncio
async def test_negative_answer_without_soa_is_cached_briefly(dns_server: DnsServer) -> None:
    resolver = make(dns_server)
    assert await resolver.txt("_dmarc.nothing.example") is None
    assert await resolver.txt("_dmarc.nothing.example") is None
    assert resolver.lookups == 1
    # ... and only briefly: the entry expires after NO_SOA_NEGATIVE_TTL seconds.
    key = ("_dmarc.nothing.example", dns.rdatatype.TXT)
    assert resolver._cache[key][0] - time.monotonic() <= NO_SOA_NEGATIVE_TTL


@pytest.mark.asyncio
async def test_a_cancelled_caller_leaves_its_query_to_finish(dns_server: DnsServer) -> None:
    """dnspython cancelled mid-query can leak its UDP socket: the query itself runs on, ends
    within the timeout, and `aclose` waits for it."""
    dns_server.fail("slow.example", "timeout")
    resolver = make(dns_server, timeout=0.3)
    caller = asyncio.ensure_future(resolver.txt("slow.example"))
    await asyncio.sleep(0)  # the caller runs up to its wait for the query (no I/O before it)
    (query,) = resolver._queries
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert not query.done()
    await resolver.aclose()
    assert query.done()
    assert not query.cancelled()
    assert not resolver._queries
