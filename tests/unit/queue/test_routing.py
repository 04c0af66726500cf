"""Router against the real test DNS server: MX order, implicit and null MX, routes, smart host."""

from __future__ import annotations

from typing import Any

import pytest
from support.dnsserver import DnsServer

from mailwright.config import ConfigError, QueueConfig
from mailwright.net.resolver import Resolver
from mailwright.queue.routing import Hop, Identity, NoRoute, Router

US = "mail.example.test"  # our hostname in the loop tests
# Not an address of this host (TEST-NET-3, RFC 5737): a wildcard listener does not cover it.
FOREIGN = "203.0.113.9"


def make_router(dns: DnsServer, identity: Identity | None = None, **queue: Any) -> Router:
    queue.setdefault("remote_smtp_port", 2525)
    return Router(QueueConfig(**queue), Resolver(dns.spec, timeout=1.0), identity)


def pairs(hops: list[Hop]) -> list[tuple[str, str]]:
    return [(hop.host, hop.address) for hop in hops]


@pytest.mark.asyncio
async def test_mx_hosts_in_preference_order_ipv4_first(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "MX", (20, "mx2.example.org"))
    dns_server.add("example.org", "MX", (10, "mx1.example.org"))
    dns_server.add("mx1.example.org", "AAAA", "::1")
    dns_server.add("mx1.example.org", "A", "127.0.0.2")
    dns_server.add("mx2.example.org", "A", "127.0.0.3")
    hops = await make_router(dns_server).hops("Example.ORG")
    assert pairs(hops) == [
        ("mx1.example.org", "127.0.0.2"),
        ("mx1.example.org", "::1"),
        ("mx2.example.org", "127.0.0.3"),
    ]
    assert all(hop.port == 2525 and hop.tls == "opportunistic" for hop in hops)
    assert all(hop.auth is None for hop in hops)


@pytest.mark.asyncio
async def test_mx_host_without_address_is_skipped(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "MX", (10, "gone.example.org"))
    dns_server.add("example.org", "MX", (20, "mx2.example.org"))
    dns_server.add("mx2.example.org", "A", "127.0.0.3")
    assert pairs(await make_router(dns_server).hops("example.org")) == [
        ("mx2.example.org", "127.0.0.3")
    ]


@pytest.mark.asyncio
async def test_mx_host_with_dns_failure_falls_back_to_the_next(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "MX", (10, "mx1.example.org"))
    dns_server.add("example.org", "MX", (20, "mx2.example.org"))
    dns_server.add("mx1.example.org", "A", "127.0.0.2")
    dns_server.fail("mx1.example.org")
    dns_server.add("mx2.example.org", "A", "127.0.0.3")
    assert pairs(await make_router(dns_server).hops("example.org")) == [
        ("mx2.example.org", "127.0.0.3")
    ]


@pytest.mark.asyncio
async def test_every_mx_host_failing_in_dns_is_temporary(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "MX", (10, "mx1.example.org"))
    dns_server.fail("mx1.example.org")
    with pytest.raises(NoRoute) as info:
        await make_router(dns_server).hops("example.org")
    assert not info.value.permanent
    assert info.value.status == "4.4.3"


@pytest.mark.asyncio
async def test_no_mx_uses_the_domain_address_implicit_mx(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "A", "127.0.0.4")
    dns_server.add("example.org", "TXT", "v=spf1 -all")
    assert pairs(await make_router(dns_server).hops("example.org")) == [
        ("example.org", "127.0.0.4")
    ]


@pytest.mark.asyncio
async def test_null_mx_is_a_permanent_5_1_10(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "MX", (0, "."))
    dns_server.add("example.org", "A", "127.0.0.4")  # must not be used as an implicit MX
    with pytest.raises(NoRoute) as info:
        await make_router(dns_server).hops("example.org")
    assert info.value.permanent
    assert info.value.status == "5.1.10"


@pytest.mark.asyncio
async def test_nxdomain_is_a_permanent_5_1_2(dns_server: DnsServer) -> None:
    with pytest.raises(NoRoute) as info:
        await make_router(dns_server).hops("nowhere.example")
    assert info.value.permanent
    assert info.value.status == "5.1.2"


@pytest.mark.asyncio
async def test_name_without_mx_or_address_is_permanent(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "TXT", "hello")
    with pytest.raises(NoRoute) as info:
        await make_router(dns_server).hops("example.org")
    assert info.value.permanent


@pytest.mark.asyncio
async def test_mx_servfail_is_a_temporary_4_4_3(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "MX", (10, "mx1.example.org"))
    dns_server.fail("example.org")
    with pytest.raises(NoRoute) as info:
        await make_router(dns_server).hops("example.org")
    assert not info.value.permanent
    assert info.value.status == "4.4.3"


@pytest.mark.asyncio
async def test_static_route_wins_over_mx_and_smart_host(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "MX", (10, "mx1.example.org"))
    dns_server.add("relay.test", "A", "127.0.0.9")
    router = make_router(
        dns_server,
        routes="example.org=127.0.0.1:2600, example.net=relay.test:2601",
        smarthost="127.0.0.5:587",
    )
    assert await router.hops("example.org") == [
        Hop("127.0.0.1", "127.0.0.1", 2600, "opportunistic")
    ]
    assert pairs(await router.hops("example.net")) == [("relay.test", "127.0.0.9")]
    assert router.route_key("example.org") == "example.org"
    assert router.route_key("other.test") == "smarthost"
    assert pairs(await router.hops("other.test")) == [("127.0.0.5", "127.0.0.5")]
    assert not any(name == "example.org" for name, _ in dns_server.queries)


@pytest.mark.asyncio
async def test_smart_host_carries_credentials_and_tls_mode(dns_server: DnsServer) -> None:
    dns_server.add("smtp.relay.test", "A", "127.0.0.7")
    router = make_router(
        dns_server, smarthost="smtp.relay.test", smarthost_tls="implicit",
        smarthost_user="me", smarthost_password="secret",
    )
    assert await router.hops("anything.example") == [
        Hop("smtp.relay.test", "127.0.0.7", 465, "implicit", False, ("me", "secret"))
    ]
    starttls = make_router(dns_server, smarthost="127.0.0.7:2587")
    [hop] = await starttls.hops("x.example")
    assert (hop.port, hop.tls) == (2587, "require")


@pytest.mark.asyncio
async def test_require_tls_policy_per_domain(dns_server: DnsServer) -> None:
    router = make_router(
        dns_server, routes="a.test=127.0.0.1:1,b.test=127.0.0.1:2", tls_require_domains="B.test"
    )
    assert [h.tls for h in await router.hops("a.test")] == ["opportunistic"]
    assert [h.tls for h in await router.hops("b.test")] == ["require"]
    everywhere = make_router(dns_server, routes="a.test=127.0.0.1:1", tls_policy="require")
    assert [h.tls for h in await everywhere.hops("a.test")] == ["require"]


@pytest.mark.asyncio
async def test_address_literal_domain_needs_no_dns(dns_server: DnsServer) -> None:
    router = make_router(dns_server)
    assert pairs(await router.hops("[127.0.0.8]")) == [("[127.0.0.8]", "127.0.0.8")]
    assert dns_server.queries == []


@pytest.mark.parametrize(
    ("queue", "reason"),
    [
        ({"routes": "example.org"}, "queue.routes"),
        ({"routes": "example.org=host:99999"}, "bad port"),
        ({"routes": "a.test=h:1,a.test=h:2"}, "twice"),
        ({"routes": "a.test="}, "malformed"),
        ({"routes": "a.test=[::1:25"}, "malformed"),
        ({"smarthost": "relay:port"}, "bad port"),
        ({"smarthost": "relay:25", "smarthost_tls": "maybe"}, "smarthost_tls"),
        ({"smarthost": "relay:25", "smarthost_user": "u"}, "go together"),
        ({"smarthost_user": "u", "smarthost_password": "p"}, "smarthost is not"),
        ({"smarthost": "r:25", "smarthost_tls": "none", "smarthost_user": "u",
          "smarthost_password": "p"}, "starttls or implicit"),
        ({"tls_policy": "dane"}, "tls_policy"),
        ({"remote_smtp_port": 0}, "remote_smtp_port"),
    ],
)
def test_bad_configuration_is_a_one_line_config_error(queue: dict[str, Any], reason: str) -> None:
    queue.setdefault("remote_smtp_port", 25)
    with pytest.raises(ConfigError) as info:
        Router(QueueConfig(**queue), Resolver("127.0.0.1:53"))
    assert reason in str(info.value)
    assert "\n" not in str(info.value)


# ----- loops back to ourselves (RFC 5321 5.1, Postfix "mail for X loops back to myself") -----
async def assert_loop(router: Router, domain: str) -> None:
    with pytest.raises(NoRoute) as info:
        await router.hops(domain)
    assert info.value.permanent
    assert info.value.status == "5.4.6"
    assert f"mail for {domain} loops back to myself" in info.value.text


@pytest.mark.asyncio
async def test_mx_that_is_our_hostname_and_worse_ones_are_dropped(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "MX", (5, "better.example.org"))
    dns_server.add("example.org", "MX", (10, "MAIL.example.test."))
    dns_server.add("example.org", "MX", (20, "worse.example.org"))
    for name, ip in [("better", "127.0.0.2"), ("worse", "127.0.0.3")]:
        dns_server.add(f"{name}.example.org", "A", ip)
    dns_server.add(US, "A", FOREIGN)
    router = make_router(dns_server, Identity(US))
    assert pairs(await router.hops("example.org")) == [("better.example.org", "127.0.0.2")]


@pytest.mark.asyncio
async def test_mx_whose_address_is_our_listening_socket_is_us(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "MX", (5, "better.example.org"))
    dns_server.add("example.org", "MX", (10, "alias.example.org"))
    dns_server.add("better.example.org", "A", "127.0.0.2")
    dns_server.add("alias.example.org", "A", FOREIGN)
    dns_server.add("alias.example.org", "AAAA", "::1")
    router = make_router(dns_server, Identity(US, [("::1", 2525)]))
    assert pairs(await router.hops("example.org")) == [("better.example.org", "127.0.0.2")]


@pytest.mark.asyncio
async def test_same_address_on_another_port_is_not_us(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "MX", (10, "mx.example.org"))
    dns_server.add("mx.example.org", "A", "127.0.0.1")
    router = make_router(dns_server, Identity(US, [("127.0.0.1", 2526), ("127.0.0.2", 2525)]))
    assert pairs(await router.hops("example.org")) == [("mx.example.org", "127.0.0.1")]


@pytest.mark.asyncio
async def test_we_are_the_best_mx_loops(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "MX", (10, US))
    dns_server.add("example.org", "MX", (10, "peer.example.org"))  # same preference: dropped
    dns_server.add("example.org", "MX", (20, "backup.example.org"))
    dns_server.add("peer.example.org", "A", "127.0.0.2")
    dns_server.add("backup.example.org", "A", "127.0.0.3")
    await assert_loop(make_router(dns_server, Identity(US)), "example.org")


@pytest.mark.asyncio
async def test_better_mx_without_address_still_loops(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "MX", (5, "gone.example.org"))
    dns_server.add("example.org", "MX", (10, "mx.example.org"))
    dns_server.add("mx.example.org", "A", "127.0.0.1")
    await assert_loop(
        make_router(dns_server, Identity(US, [("127.0.0.1", 2525)])), "example.org"
    )


@pytest.mark.asyncio
async def test_better_mx_failing_in_dns_defers_instead_of_looping(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "MX", (5, "better.example.org"))
    dns_server.add("example.org", "MX", (10, US))
    dns_server.add("better.example.org", "A", "127.0.0.2")
    dns_server.fail("better.example.org")
    with pytest.raises(NoRoute) as info:
        await make_router(dns_server, Identity(US)).hops("example.org")
    assert not info.value.permanent
    assert info.value.status == "4.4.3"


@pytest.mark.asyncio
async def test_implicit_mx_that_is_us_loops(dns_server: DnsServer) -> None:
    dns_server.add("example.org", "A", "127.0.0.1")
    await assert_loop(
        make_router(dns_server, Identity(US, [("127.0.0.1", 2525)])), "example.org"
    )
    dns_server.add(US, "A", FOREIGN)  # our own name as a domain without MX
    await assert_loop(make_router(dns_server, Identity(US)), US)


@pytest.mark.asyncio
async def test_wildcard_listener_covers_local_addresses_only(dns_server: DnsServer) -> None:
    dns_server.add("local.example", "A", "127.0.0.7")  # all of 127/8 is this host
    dns_server.add("far.example", "A", FOREIGN)
    dns_server.add("local6.example", "AAAA", "::1")
    v4 = make_router(dns_server, Identity(US, [("0.0.0.0", 2525)]))
    await assert_loop(v4, "local.example")
    assert pairs(await v4.hops("far.example")) == [("far.example", FOREIGN)]
    # asyncio binds :: with IPV6_V6ONLY: it covers IPv6 addresses, not IPv4 ones.
    v6 = make_router(dns_server, Identity(US, [("::", 2525)]))
    await assert_loop(v6, "local6.example")
    assert pairs(await v6.hops("local.example")) == [("local.example", "127.0.0.7")]


@pytest.mark.asyncio
async def test_static_route_or_smart_host_to_ourselves_loops(dns_server: DnsServer) -> None:
    identity = Identity(US, [("127.0.0.1", 2525)])
    dns_server.add("relay.test", "A", "127.0.0.1")
    routed = make_router(dns_server, identity, routes="a.test=127.0.0.1:2525,b.test=127.0.0.1:2600")
    await assert_loop(routed, "a.test")
    assert pairs(await routed.hops("b.test")) == [("127.0.0.1", "127.0.0.1")]  # another port
    await assert_loop(make_router(dns_server, identity, smarthost="relay.test:2525"), "x.test")
    await assert_loop(make_router(dns_server, identity), "[127.0.0.1]")


@pytest.mark.parametrize(
    ("address", "port", "ours"),
    [
        ("127.0.0.1", 25, True),
        ("::ffff:127.0.0.1", 25, True),  # IPv4-mapped
        ("0.0.0.0", 25, True),  # connect() to the unspecified address reaches localhost
        ("127.0.0.1", 26, False),
        ("127.0.0.2", 25, False),
        ("mx.example.org", 25, False),
    ],
)
def test_identity_matches_sockets_as_connect_reaches_them(
    address: str, port: int, ours: bool
) -> None:
    assert Identity(US, [("127.0.0.1", 25)]).is_our_socket(address, port) is ours


def test_identity_name_ignores_case_and_trailing_dot() -> None:
    identity = Identity("Mail.Example.Test.")
    assert identity.is_our_name("mail.example.TEST")
    assert identity.is_our_name("mail.example.test.")
    assert not identity.is_our_name("example.test")
    assert not Identity("").is_our_name("")
