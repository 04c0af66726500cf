"""Router against the real test DNS server: MX order, implicit and null MX, routes, smart host."""

from __future__ import annotations

from typing import Any

import pytest
from support.dnsserver import DnsServer

from mailwright.config import ConfigError, QueueConfig
from mailwright.net.resolver import Resolver
from mailwright.queue.routing import Hop, NoRoute, Router


def make_router(dns: DnsServer, **queue: Any) -> Router:
    queue.setdefault("remote_smtp_port", 2525)
    return Router(QueueConfig(**queue), Resolver(dns.spec, timeout=1.0))


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
