"""SPF (RFC 7208) evaluation against the real test DNS server."""

from __future__ import annotations

import pytest
from support.dnsserver import DnsServer

from mailwright.mailauth.spf import check_helo, check_mail_from
from mailwright.mailauth.spf_macro import MacroError, expand
from mailwright.mailauth.spf_record import SpfSyntaxError, parse_record
from mailwright.net.resolver import Resolver

IP = "192.0.2.10"


async def spf(dns: DnsServer, record: str | None, ip: str = IP, sender: str = "a@example.org",
              helo: str = "mx.sender.example") -> str:
    if record is not None:
        dns.add("example.org", "TXT", record)
    resolver = Resolver(dns.spec, timeout=0.5)
    return (await check_mail_from(resolver, ip, sender, helo, "mail.example.test")).result


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ("v=spf1 ip4:192.0.2.0/24 -all", "pass"),
        ("v=spf1 ip4:198.51.100.1 -all", "fail"),
        ("v=spf1 ip4:198.51.100.1 ~all", "softfail"),
        ("v=spf1 ip4:198.51.100.1 ?all", "neutral"),
        ("v=spf1 ip4:198.51.100.1", "neutral"),
        ("v=spf1 -ip4:192.0.2.10 +all", "fail"),
        ("v=spf1 ip6:2001:db8::/32 -all", "fail"),
        ("v=spf1 a -all", "pass"),
        ("v=spf1 a:other.example/24 -all", "pass"),
        ("v=spf1 mx -all", "fail"),  # the MX is 192.0.2.8
        ("v=spf1 mx/30 -all", "pass"),
        ("v=spf1 exists:%{i}.allow.example -all", "pass"),
        ("v=spf1 exists:%{l}.users.example -all", "pass"),
        ("v=spf1 exists:%{ir}.allow.example -all", "fail"),
        ("V=SPF1 IP4:192.0.2.10 -ALL", "pass"),
        ("v=spf1 bogus:x -all", "permerror"),
        ("v=spf1 ip4:192.0.2.10 ip4:300.1.1.1", "permerror"),  # syntax checked before matching
        ("v=spf1 redirect=a.example redirect=b.example", "permerror"),
        ("v=spf1 exists:%{z}.example -all", "permerror"),
        ("v=spf1 unknown-mod=%{d} ip4:192.0.2.10 -all", "pass"),
        ("v=spf1 include:nothing.example -all", "permerror"),
        ("v=spf1 include:inc.example -all", "pass"),
        ("v=spf1 redirect=inc.example", "pass"),
        ("v=spf1 -all redirect=inc.example", "fail"),
        ("v=spf1 include:failing.example ~all", "softfail"),
        ("v=spf1 ptr -all", "pass"),
        ("v=spf1 ptr:elsewhere.example -all", "fail"),
    ],
)
@pytest.mark.asyncio
async def test_record_results(dns_server: DnsServer, record: str, expected: str) -> None:
    dns_server.add("example.org", "A", IP)
    dns_server.add("example.org", "MX", (10, "mx.example.org"))
    dns_server.add("mx.example.org", "A", "192.0.2.8")
    dns_server.add("other.example", "A", "192.0.2.200")
    dns_server.add("192.0.2.10.allow.example", "A", "127.0.0.2")
    dns_server.add("a.users.example", "A", "127.0.0.2")
    dns_server.add("inc.example", "TXT", "v=spf1 ip4:192.0.2.0/28 -all")
    dns_server.add("failing.example", "TXT", "v=spf1 -all")
    dns_server.add("10.2.0.192.in-addr.arpa", "PTR", "host.example.org")
    dns_server.add("host.example.org", "A", IP)
    assert await spf(dns_server, record) == expected


@pytest.mark.asyncio
async def test_no_record_is_none_and_two_records_permerror(dns_server: DnsServer) -> None:
    assert await spf(dns_server, None) == "none"
    dns_server.add("example.org", "TXT", "some other text")
    assert await spf(dns_server, None) == "none"
    dns_server.add("example.org", "TXT", "v=spf1 -all")
    dns_server.add("example.org", "TXT", "v=spf1 +all")
    assert await spf(dns_server, None) == "permerror"


@pytest.mark.asyncio
async def test_ipv6_client(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "AAAA", "2001:db8::25")
    assert await spf(dns_server, "v=spf1 a//64 -all", ip="2001:db8::1") == "pass"
    assert await spf(dns_server, None, ip="2001:db9::1") == "fail"


@pytest.mark.asyncio
async def test_ipv4_mapped_client_is_ipv4(dns_server: DnsServer) -> None:
    assert await spf(dns_server, "v=spf1 ip4:192.0.2.10 -all", ip="::ffff:192.0.2.10") == "pass"


@pytest.mark.asyncio
async def test_more_than_ten_lookups_is_permerror(dns_server: DnsServer) -> None:
    includes = " ".join(f"include:i{n}.example" for n in range(11))
    for n in range(11):
        dns_server.add(f"i{n}.example", "TXT", "v=spf1 ?all")
    assert await spf(dns_server, f"v=spf1 {includes} ip4:192.0.2.10 -all") == "permerror"
    dns_server.remove("example.org")
    ten = " ".join(f"include:i{n}.example" for n in range(10))
    assert await spf(dns_server, f"v=spf1 {ten} ip4:192.0.2.10 -all") == "pass"


@pytest.mark.asyncio
async def test_include_loop_hits_the_limit(dns_server: DnsServer) -> None:
    dns_server.add("loop.example", "TXT", "v=spf1 include:loop.example -all")
    assert await spf(dns_server, "v=spf1 include:loop.example -all") == "permerror"


@pytest.mark.asyncio
async def test_more_than_two_void_lookups_is_permerror(dns_server: DnsServer) -> None:
    record = "v=spf1 a:v1.example a:v2.example a:v3.example ip4:192.0.2.10 -all"
    assert await spf(dns_server, record) == "permerror"
    dns_server.remove("example.org")
    record = "v=spf1 a:v1.example a:v2.example ip4:192.0.2.10 -all"
    assert await spf(dns_server, record) == "pass"


@pytest.mark.asyncio
async def test_dns_failure_is_temperror(dns_server: DnsServer) -> None:
    dns_server.fail("example.org")
    assert await spf(dns_server, None) == "temperror"
    dns_server.heal("example.org")
    dns_server.fail("inc.example", "timeout")
    assert await spf(dns_server, "v=spf1 include:inc.example -all") == "temperror"


@pytest.mark.asyncio
async def test_redirect_to_domain_without_record_is_permerror(dns_server: DnsServer) -> None:
    assert await spf(dns_server, "v=spf1 redirect=nothing.example") == "permerror"


@pytest.mark.asyncio
async def test_null_sender_uses_helo(dns_server: DnsServer) -> None:
    dns_server.add("mx.sender.example", "TXT", "v=spf1 ip4:192.0.2.10 -all")
    resolver = Resolver(dns_server.spec, timeout=0.5)
    result = await check_mail_from(resolver, IP, "", "mx.sender.example", "mail.example.test")
    assert (result.result, result.domain) == ("pass", "mx.sender.example")
    helo = await check_helo(resolver, "192.0.2.99", "mx.sender.example", "mail.example.test")
    assert helo.result == "fail"
    literal = await check_helo(resolver, IP, "[192.0.2.10]", "mail.example.test")
    assert literal.result == "none"


@pytest.mark.asyncio
async def test_fail_carries_the_explanation(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "TXT", "v=spf1 -all exp=why.example.org")
    dns_server.add("why.example.org", "TXT", "%{i} may not send for %{d} (%{l})")
    resolver = Resolver(dns_server.spec, timeout=0.5)
    result = await check_mail_from(resolver, IP, "joe@example.org", "h.example", "mx.test")
    assert result.result == "fail"
    assert result.explanation == "192.0.2.10 may not send for example.org (joe)"


# RFC 7208 7.4 examples, with sender strong-bad@email.example.com and 192.0.2.3 / 2001:db8::cb01.
RFC_VALUES = {
    "s": "strong-bad@email.example.com", "l": "strong-bad", "o": "email.example.com",
    "d": "email.example.com", "i": "192.0.2.3", "v": "in-addr", "h": "mx.example.org",
}


@pytest.mark.parametrize(
    ("macro", "expanded"),
    [
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
        ("%%%_%-", "% %20"),
        ("%{L}", "strong-bad"),
        ("%{S}", "strong-bad%40email.example.com"),
    ],
)
def test_macro_expansion_rfc_examples(macro: str, expanded: str) -> None:
    assert expand(macro, RFC_VALUES) == expanded


@pytest.mark.parametrize("bad", ["%{x}", "%{d", "%a", "%{d0}", "%{c}"])
def test_bad_macros(bad: str) -> None:
    with pytest.raises(MacroError):
        expand(bad, RFC_VALUES)


@pytest.mark.parametrize(
    "record",
    ["v=spf1 a:", "v=spf1 ip4:1.2.3.4/33", "v=spf1 a/024", "v=spf1 include", "v=spf1 all:x",
     "v=spf1 ip6:1.2.3.4", "v=spf1 a:example"],
)
def test_syntax_errors(record: str) -> None:
    with pytest.raises(SpfSyntaxError):
        parse_record(record)
